"""Learning curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: A curve: x values, mean y values and (optionally) their std.
Curve = tuple[Sequence[float], Sequence[float], Sequence[float] | None]


def _finish(fig: Any, ax: Any, path: str | os.PathLike, xlabel: str, ylabel: str) -> Path:
    """Label, legend and grid, then write the PNG atomically (temp name, then rename) and close the figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def plot_curves(
    curves: Mapping[str, Curve],
    path: str | os.PathLike,
    title: str = "",
    xlabel: str = "gradient steps",
    ylabel: str = "evaluation return",
    baselines: Mapping[str, float] | None = None,
) -> Path:
    """
    Draw each curve (mean line, ± std band) and each baseline (a dashed horizontal line) into a PNG
    (see :func:`draw_curves`).

    :param curves: name -> (x, mean, std or None)
    :param path: the PNG to write (its folder is created)
    :param title: the figure title
    :param xlabel: x axis label
    :param ylabel: y axis label
    :param baselines: name -> constant value (e.g. the behaviour policy's return)
    :return: the path written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    draw_curves(ax, curves, baselines)
    if title:
        ax.set_title(title)
    return _finish(fig, ax, path, xlabel, ylabel)


def draw_curves(ax: Any, curves: Mapping[str, Curve], baselines: Mapping[str, float] | None = None) -> None:
    """
    Draw into the matplotlib axes ``ax``: each curve as its mean line and its ± std band (labelled
    ``"<name> ± 1 std"``), each baseline as a dashed horizontal line. Every curve and baseline has a colour of its
    own (matplotlib's colour cycle, in order), a baseline named ``random...`` gray.

    :param ax: the axes
    :param curves: name -> (x, mean, std or None)
    :param baselines: name -> constant value (e.g. the behaviour policy's return)
    """
    import matplotlib

    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = iter(cycle * (1 + (len(curves) + len(baselines or {})) // len(cycle)))
    for name, (x, mean, std) in curves.items():
        xs, ms, colour = np.asarray(x, dtype=float), np.asarray(mean, dtype=float), next(colours)
        ax.plot(xs, ms, label=name, linewidth=1.8, color=colour)
        if std is not None:
            ss = np.asarray(std, dtype=float)
            ax.fill_between(xs, ms - ss, ms + ss, alpha=0.2, color=colour, label=f"{name} ± 1 std")
    for name, value in (baselines or {}).items():
        colour = "gray" if name.startswith("random") else next(colours)
        ax.axhline(value, linestyle="--", linewidth=1.2, label=name, color=colour)


def read_value_estimates(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The columns of a ``value_estimates.csv`` (written by ``ValueEstimateCallback``), or of the one in a folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "value_estimates.csv"
    if not path.is_file():
        raise FileNotFoundError(f"value estimates: expected a value_estimates.csv at {path}, found none")
    with open(path) as f:
        header = f.readline().strip().split(",")
    expected = ["timesteps", "q_estimate", "discounted_return", "return"]
    if header != expected:
        raise ValueError(f"{path}: expected the columns {expected}, found {header}")
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {name: table[:, i] for i, name in enumerate(expected)}


def plot_value_estimates(
    runs: Mapping[str, str | os.PathLike],
    path: str | os.PathLike,
    title: str = "Extrapolation error: the critic's Q(s0, pi(s0)) (solid) vs the true discounted return (dashed)",
) -> Path:
    """
    The BCQ paper's value-estimate picture: per run, the critic's estimate and the discounted return
    actually obtained, against gradient steps, in one PNG (symlog y axis: off-policy estimates explode).

    :param runs: label -> ``value_estimates.csv`` or the folder holding it
    :param path: the PNG to write
    :param title: the figure title
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, run in runs.items():
        table = read_value_estimates(run)
        (line,) = ax.plot(table["timesteps"], table["q_estimate"], linewidth=1.8, label=f"{label}: Q estimate")
        ax.plot(table["timesteps"], table["discounted_return"], "--", color=line.get_color(), label=f"{label}: true")
    ax.set_yscale("symlog")
    ax.set_title(title, fontsize=9)
    return _finish(fig, ax, path, "gradient steps", "value (symlog)")


__all__ = ["Curve", "plot_curves", "plot_value_estimates", "read_value_estimates"]
