r"""
Rows of :data:`benchmarks.variants.VARIANTS` (one of d3rlpy's differences, another initialisation, ...) on a grid's
datasets and seeds, each trained and evaluated exactly as the grid trains its own algorithm.

    # RESULTS.md "IQL and AWAC on medium-expert at 10 seeds" (the grid's datasets made by `sb3-offline benchmark`)
    python -m benchmarks.grid_variants benchmarks/grids/hopper-d4rl-style.yaml --datasets medium-expert \
        --seeds 0 1 2 3 4 5 6 7 8 9 --output results/hopper-awac-variants --variants awac_torch_init \
        awac_d3_target_now awac_d3_value_after_now awac_d3_value_unclipped_now awac_wd_sum_now awac_d3_all

For each variant, every (dataset, seed) runs as the grid's trial of the variant's algorithm
(:func:`sb3_offline.benchmark.run_trial`: the grid's settings of that algorithm, its steps and evaluation), with the
variant's policy class, algorithm class and keyword arguments on top, into ``OUTPUT/<variant>/trials/``. A finished
trial is read back, so an interrupted run continues. Prints the final return per (dataset, variant), mean ± std over
seeds. Datasets a grid makes with ``collect`` entries are made on first use, as ``sb3-offline benchmark`` makes them.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.variants import VARIANTS, Variant
from sb3_offline.algorithms import ALGOS
from sb3_offline.benchmark import Grid, read_grid, run_trial
from sb3_offline.benchmark.engines import trial_folder


@contextmanager
def algorithm_class(algo: str, cls: type) -> Iterator[None]:
    """``ALGOS[algo]`` is ``cls`` inside the block (the grid's trials build ``ALGOS[name]``), restored after it."""
    saved = ALGOS[algo]
    ALGOS[algo] = cls
    try:
        yield
    finally:
        ALGOS[algo] = saved


def run_variant(grid: Grid, name: str, output: Path) -> list[dict[str, Any]]:
    """Every trial of the grid's algorithm ``VARIANTS[name].algo``, as variant ``name``, into ``output/name``."""
    row: Variant = VARIANTS[name]
    if row.algo not in grid.algorithms:
        raise ValueError(f"--variants {name}: its algorithm {row.algo!r} is not in the grid's {list(grid.algorithms)}")
    results = []
    with algorithm_class(row.algo, row.algorithm_class):
        for trial in grid.trials():
            if trial.kind != "sb3" or trial.algorithm != row.algo:
                continue
            kwargs = {**trial.kwargs, **row.kwargs, "policy": row.policy_class}
            variant_trial = dataclasses.replace(trial, kwargs=kwargs)
            result = run_trial(variant_trial, grid, trial_folder(output / name, variant_trial))
            print(f"{name} on {trial.dataset} seed {trial.seed}: final {result['final_return']:.1f}", flush=True)
            results.append(result)
    return results


def table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A markdown table: the final return per (dataset, variant), mean ± std over seeds."""
    lines = ["| dataset | variant | seeds | final return (mean ± std) |", "|---|---|---|---|"]
    datasets = dict.fromkeys(r["dataset"] for rows in results.values() for r in rows)
    for dataset in datasets:
        for name, rows in results.items():
            returns = [r["final_return"] for r in rows if r["dataset"] == dataset]
            if returns:
                mean, std = np.mean(returns), np.std(returns)
                lines.append(f"| {dataset} | {VARIANTS[name].label} | {len(returns)} | {mean:.1f} ± {std:.1f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("grid", help="a grid file (benchmarks/grids/*.yaml)")
    parser.add_argument("--variants", nargs="+", required=True, choices=sorted(VARIANTS))
    parser.add_argument("--datasets", nargs="+", default=None, help="only the grid's datasets whose id contains one")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="instead of the grid's seeds")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    grid, _ = read_grid(Path(args.grid))
    if args.datasets is not None:
        kept = [d for d in grid.datasets if any(text in d for text in args.datasets)]
        if not kept:
            parser.error(
                f"--datasets: expected text in one of the grid's datasets {grid.datasets}, found {args.datasets}"
            )
        grid = dataclasses.replace(grid, datasets=kept)
    if args.seeds is not None:
        grid = dataclasses.replace(grid, seeds=list(args.seeds))
    for name in args.variants:
        if VARIANTS[name].algo not in grid.algorithms:
            parser.error(
                f"--variants {name}: expected its algorithm {VARIANTS[name].algo!r} among the grid's "
                f"{list(grid.algorithms)}, found it missing"
            )
    results = {name: run_variant(grid, name, Path(args.output)) for name in args.variants}
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
