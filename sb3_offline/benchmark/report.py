"""
A finished grid's results a user can act on: ``DIR/results.csv`` (a row per trial), ``DIR/report.md`` (per dataset
mean ± std over seeds, per algorithm the IQM of all its runs with a stratified-bootstrap 95% CI and the mean over
datasets), ``DIR/performance_profile.png`` and a learning-curve PNG per dataset in ``DIR/curves/``.

The statistics are :mod:`sb3_offline.statistics`' (rliable's definitions), the curves
:func:`sb3_offline.plotting.plot_curves`. Scores are D4RL's normalized scores where every dataset records its
reference scores, else the returns (the report says which).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.benchmark.grid import Grid
from sb3_offline.benchmark.trial import write_text_atomically

#: The columns of results.csv, in order.
COLUMNS = (
    "algorithm",
    "dataset",
    "seed",
    "final_return",
    "best_return",
    "normalized_score",
    "best_normalized_score",
    "wall_s",
    "updates_per_s",
    "steps",
    "kind",
    "trial",
    "version",
    "commit",
)


def write_csv(results: Sequence[dict[str, Any]], path: Path) -> Path:
    """``results.csv``: one row per trial, :data:`COLUMNS`."""
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({key: "" if result.get(key) is None else result.get(key) for key in COLUMNS})
    return write_text_atomically(path, text.getvalue())


def _score_key(results: Sequence[dict[str, Any]]) -> str:
    """``normalized_score`` when every trial has one, else ``final_return``."""
    return "normalized_score" if all(r.get("normalized_score") is not None for r in results) else "final_return"


def _matrix(results: Sequence[dict[str, Any]], datasets: Sequence[str], key: str) -> np.ndarray | None:
    """``(seeds, datasets)`` scores of one algorithm; ``None`` unless every dataset has as many seeds."""
    columns = [[r[key] for r in sorted(results, key=lambda r: r["seed"]) if r["dataset"] == d] for d in datasets]
    if not columns[0] or any(len(column) != len(columns[0]) for column in columns):
        return None
    return np.asarray(columns, dtype=np.float64).T


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def plot_learning_curves(results: Sequence[dict[str, Any]], datasets: Sequence[str], output: Path) -> list[Path]:
    """A PNG per dataset: each algorithm's evaluation return (mean ± std over seeds) against gradient steps."""
    from sb3_offline.plotting import plot_curves

    paths = []
    for dataset in datasets:
        curves = {}
        for algorithm in dict.fromkeys(r["algorithm"] for r in results if r["dataset"] == dataset):
            runs = [
                r["curve"]
                for r in results
                if r["dataset"] == dataset and r["algorithm"] == algorithm and r.get("curve")
            ]
            steps = sorted(set.intersection(*(set(s for s, _, _ in run) for run in runs))) if runs else []
            if steps:
                means = np.asarray([[dict((s, m) for s, m, _ in run)[step] for step in steps] for run in runs])
                curves[f"{algorithm} ({len(runs)} seeds)"] = (steps, means.mean(axis=0), means.std(axis=0))
        if curves:
            paths.append(plot_curves(curves, output / "curves" / f"{_slug(dataset)}.png", title=dataset))
    return paths


def write_report(grid: Grid, results: Sequence[dict[str, Any]], output: Path, command: str = "") -> Path:
    """``results.csv``, ``report.md`` and the PNGs of ``results`` in ``output``; returns the report's path."""
    from sb3_offline.statistics import format_interval, interval_estimate, plot_performance_profiles

    write_csv(results, output / "results.csv")
    key = _score_key(results)
    what = "normalized score (D4RL's: 0 random, 100 expert)" if key == "normalized_score" else "final return"
    algorithms = list(dict.fromkeys(r["algorithm"] for r in results))
    versions = sorted({f"{r.get('version')} ({r.get('commit') or 'no git commit'})" for r in results})
    lines = [
        f"# {grid.name}",
        "",
        f"{len(results)} trials: {len(algorithms)} algorithms x {len(grid.datasets)} datasets x {len(grid.seeds)} "
        f"seeds, {grid.steps} gradient steps (an algorithm's n_timesteps where given), evaluated "
        f"every {grid.eval_every} steps over {grid.eval_episodes} "
        f"episodes (reset seed {grid.eval_seed}). sb3-offline {', '.join(versions)}.",
    ]
    if command:
        lines += ["", f"Remade by `{command}`."]
    if grid.left_out:
        lines += ["", grid.left_out + "."]
    lines += ["", f"## Final {what}, mean ± std over seeds", "", "| algorithm | " + " | ".join(grid.datasets) + " |"]
    lines.append("|---" * (len(grid.datasets) + 1) + "|")
    for algorithm in algorithms:
        cells = []
        for dataset in grid.datasets:
            values = [r[key] for r in results if r["algorithm"] == algorithm and r["dataset"] == dataset]
            cells.append(f"{np.mean(values):.1f} ± {np.std(values):.1f} ({len(values)})" if values else "n/a")
        lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Aggregate over datasets: IQM of every run with a stratified bootstrap 95% CI, and the mean",
        "",
        "| algorithm | IQM [95% CI] | mean | updates/s | wall s per trial |",
        "|---|---|---|---|---|",
    ]
    matrices = {}
    for algorithm in algorithms:
        runs = [r for r in results if r["algorithm"] == algorithm]
        matrix = _matrix(runs, grid.datasets, key)
        interval = "n/a (uneven seeds)"
        if matrix is not None:
            matrices[algorithm] = matrix
            point, bounds = interval_estimate(matrix)
            interval = format_interval(float(point), bounds)
        speed, wall = np.mean([r["updates_per_s"] for r in runs]), np.mean([r["wall_s"] for r in runs])
        lines.append(f"| {algorithm} | {interval} | {np.mean([r[key] for r in runs]):.1f} | {speed:.0f} | {wall:.1f} |")
    pictures = []
    if matrices:
        profile = plot_performance_profiles(matrices, output / "performance_profile.png", title=grid.name, xlabel=what)
        pictures.append(profile)
    pictures += plot_learning_curves(results, grid.datasets, output)
    lines += ["", "## Figures", ""] + [f"![{p.stem}]({p.relative_to(output)})" for p in pictures]
    return write_text_atomically(output / "report.md", "\n".join(lines) + "\n")


__all__ = ["COLUMNS", "plot_learning_curves", "write_csv", "write_report"]
