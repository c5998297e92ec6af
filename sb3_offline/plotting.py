"""Learning curves as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: A curve: x values, mean y values and (optionally) their std.
Curve = tuple[Sequence[float], Sequence[float], Sequence[float] | None]


def plot_curves(
    curves: Mapping[str, Curve],
    path: str | os.PathLike,
    title: str = "",
    xlabel: str = "gradient steps",
    ylabel: str = "evaluation return",
    baselines: Mapping[str, float] | None = None,
) -> Path:
    """
    Draw each curve (mean line, ± std band) and each baseline (a dashed horizontal line) into a PNG.

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
    for name, (x, mean, std) in curves.items():
        xs, ms = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
        (line,) = ax.plot(xs, ms, label=name, linewidth=1.8)
        if std is not None:
            ss = np.asarray(std, dtype=float)
            ax.fill_between(xs, ms - ss, ms + ss, alpha=0.2, color=line.get_color())
    for name, value in (baselines or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1.2, label=name, color="gray" if "random" in name else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


__all__ = ["Curve", "plot_curves"]
