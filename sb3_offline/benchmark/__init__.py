"""
``sb3-offline benchmark GRID.yaml --output DIR``: a grid of algorithms x datasets x seeds, on this machine (a
process pool) or on a Ray cluster (Ray Tune), and the results a user reads in a minute.

- :mod:`~sb3_offline.benchmark.grid`: the grid file, checked in full before anything runs;
- :mod:`~sb3_offline.benchmark.trial`: one trial and its files ``DIR/trials/<trial>/`` (written atomically);
- :mod:`~sb3_offline.benchmark.engines`: the local and Ray engines;
- :mod:`~sb3_offline.benchmark.report`: ``results.csv``, ``report.md`` and the figures.

``DIR/grid.yaml`` keeps the grid a folder holds: ``--resume`` continues that grid (the same file), runs only the
trials without a ``result.json`` and never one that finished.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sb3_offline.benchmark.engines import run_local, run_ray, trial_folder
from sb3_offline.benchmark.grid import Grid, GridError, Trial, read_grid
from sb3_offline.benchmark.report import COLUMNS, write_report
from sb3_offline.benchmark.trial import read_result, run_trial

ENGINES = ("local", "ray")


def _claim_output(grid_path: Path, content: dict[str, Any], output: Path, resume: bool) -> None:
    """
    Keep the grid in ``output/grid.yaml``; a folder holding another grid, or this one without ``resume``, is refused.
    """
    import yaml

    from sb3_offline.benchmark.trial import write_text_atomically

    saved = output / "grid.yaml"
    if saved.is_file():
        if yaml.safe_load(saved.read_text()) != content:
            raise GridError(f"--output {output}: holds another grid ({saved}) than {grid_path}: name another folder")
        if not resume:
            raise GridError(f"--output {output}: holds this grid already: pass --resume to continue it")
        return
    output.mkdir(parents=True, exist_ok=True)
    write_text_atomically(saved, grid_path.read_text())


def progress_line(result: dict[str, Any], index: int, total: int) -> str:
    """
    A finished trial in one line: ``[3/8] iql on pendulum/imperfect-v0 seed 1: final -250.1 (normalized 85.3),
    best -230.0, 12.3 s, 450 updates/s``.
    """
    score = result.get("normalized_score")
    normalized = f" (normalized {score:.1f})" if score is not None else ""
    return (
        f"[{index}/{total}] {result['algorithm']} on {result['dataset']} seed {result['seed']}: final "
        f"{result['final_return']:.1f}{normalized}, best {result['best_return']:.1f}, {result['wall_s']:.1f} s, "
        f"{result['updates_per_s']:.0f} updates/s"
    )


def run_grid(
    grid_path: str | Path,
    output: str | Path,
    engine: str = "local",
    address: str | None = None,
    workers: int = 1,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    resume: bool = False,
    torch_threads: int | None = 1,
    log: Callable[[str], None] = print,
    command: str = "",
) -> Path:
    """
    Run the grid of ``grid_path`` into ``output`` (see the module docstring) and write its report.

    :param engine: ``"local"`` (``workers`` processes) or ``"ray"`` (``address``, ``cpus_per_trial``,
        ``gpus_per_trial``; Ray's torch threads: ``int(cpus_per_trial)``)
    :param torch_threads: the local engine's torch threads per trial (``None``: torch's choice)
    :param log: where the progress lines go
    :param command: the command line, for the report
    :return: the path of ``report.md``
    """
    if engine not in ENGINES:
        raise ValueError(f"--engine: expected one of {ENGINES}, found {engine!r}")
    grid_path, output = Path(grid_path), Path(output)
    grid, content = read_grid(grid_path)  # every key checked before anything runs
    _claim_output(grid_path, content, output, resume)
    if grid.left_out:
        log(grid.left_out)
    trials = grid.trials()
    finished = {trial.name for trial in trials if read_result(trial_folder(output, trial)) is not None}
    pending = [trial for trial in trials if trial.name not in finished]
    log(f"{grid.name}: {len(trials)} trials, {len(finished)} finished before, {len(pending)} to run ({engine} engine)")
    done = [len(finished)]

    def report(result: dict[str, Any]) -> None:
        if result.get("trial") in finished:
            return
        done[0] += 1
        log(progress_line(result, done[0], len(trials)))

    metrics: list[dict[str, Any]] = []
    if pending and engine == "local":
        run_local(grid, pending, output, report, workers=workers, torch_threads=torch_threads)
    elif pending:
        metrics = run_ray(grid, trials, output, report, address, cpus_per_trial, gpus_per_trial, resume=resume)
    reported = {m.get("trial"): m for m in metrics}
    results = [read_result(trial_folder(output, trial)) or reported.get(trial.name) for trial in trials]
    missing = [trial.name for trial, result in zip(trials, results, strict=True) if result is None]
    if missing:
        raise RuntimeError(f"{output}: no result for the trials {missing}")
    path = write_report(grid, [r for r in results if r is not None], output, command)
    log(f"results: {output / 'results.csv'}; report: {path}")
    return path


__all__ = [
    "COLUMNS",
    "ENGINES",
    "Grid",
    "GridError",
    "Trial",
    "progress_line",
    "read_grid",
    "read_result",
    "run_grid",
    "run_local",
    "run_ray",
    "run_trial",
    "write_report",
]
