"""
Aggregate scores over seeds and datasets the way rliable does (Agarwal, Schwarzer, Castro, Courville, Bellemare,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021).

The definitions follow google-research/rliable 1.2.0 (``rliable/metrics.py`` ``aggregate_iqm``,
``rliable/library.py`` ``StratifiedBootstrap``, ``get_interval_estimates`` with ``method="percentile"``,
``create_performance_profile`` with score distributions), written again in numpy, vectorised over the bootstrap
replications: rliable 1.2.0 pins ``arch<8``, whose releases fail to import beside pandas 3 (``TypeError:
deprecate_kwarg() missing 1 required positional argument``), so it cannot be an extra of ours today.
``tests/test_statistics.py`` compares these functions with rliable's wherever rliable imports.

Scores are a ``(num_runs, num_tasks)`` matrix: one row per seed, one column per dataset (task).

- :func:`iqm`: the interquartile mean, the mean of the middle 50% of all scores (``scipy.stats.trim_mean(scores,
  0.25, axis=None)``: ``int(0.25 * n)`` scores cut at each end, so with fewer than 4 scores it is the mean).
- :func:`interval_estimate`: a statistic and its percentile confidence interval under the stratified bootstrap:
  each replication resamples, with replacement, the runs of every task separately (the tasks are kept).
- :func:`performance_profile`: the fraction of all runs whose score exceeds each threshold ``tau``, with its
  stratified-bootstrap confidence band; :func:`plot_performance_profiles` draws them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

#: rliable's ``get_interval_estimates`` default number of bootstrap replications
DEFAULT_REPS = 50_000


def _as_scores(scores: np.ndarray | Sequence[float] | Sequence[Sequence[float]], name: str = "scores") -> np.ndarray:
    """``scores`` as a float ``(num_runs, num_tasks)`` matrix (a 1-D array is one task)."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty (num_runs, num_tasks) matrix, found shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: expected finite scores, found {array[~np.isfinite(array)][0]}")
    return array


def trimmed_mean(values: np.ndarray, proportion: float = 0.25) -> np.ndarray:
    """
    ``scipy.stats.trim_mean(values, proportion, axis=-1)`` over the last axis: the mean after cutting
    ``int(proportion * n)`` of the smallest and as many of the largest values.
    """
    n = values.shape[-1]
    cut = int(proportion * n)
    return np.sort(values, axis=-1)[..., cut : n - cut].mean(axis=-1)


def iqm(scores: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> float:
    """The interquartile mean of all scores of all runs and tasks (rliable's ``aggregate_iqm``)."""
    return float(trimmed_mean(_as_scores(scores).reshape(-1)))


def _iqm_replications(resampled: np.ndarray) -> np.ndarray:
    """IQM of each replication of a ``(reps, num_runs, num_tasks)`` array."""
    return trimmed_mean(resampled.reshape(len(resampled), -1))


def stratified_resamples(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``(reps, num_runs, num_tasks)``: the runs of each task drawn with replacement (rliable's StratifiedBootstrap)."""
    num_runs, num_tasks = scores.shape
    runs = rng.integers(0, num_runs, size=(reps, num_runs, num_tasks))
    return scores[runs, np.arange(num_tasks)]


def interval_estimate(
    scores: np.ndarray | Sequence[float] | Sequence[Sequence[float]],
    statistic: Callable[[np.ndarray], np.ndarray] = _iqm_replications,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """
    A statistic of ``scores`` and its stratified-bootstrap percentile confidence interval.

    :param scores: ``(num_runs, num_tasks)`` (a 1-D array: one task)
    :param statistic: maps a ``(reps, num_runs, num_tasks)`` array to ``(reps, ...)`` values (default: the IQM)
    :param reps: bootstrap replications
    :param confidence: coverage of the interval
    :param seed: seed of the resampling (``None``: fresh entropy)
    :return: ``(point, interval)``: the statistic of ``scores`` (shape ``(...)``) and ``(2, ...)`` lower and upper
        bounds (the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the replications)
    """
    array = _as_scores(scores)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a value in (0, 1), found {confidence}")
    if reps < 1:
        raise ValueError(f"reps: expected at least 1, found {reps}")
    point = statistic(array[None])[0]
    replications = statistic(stratified_resamples(array, reps, np.random.default_rng(seed)))
    tail = 100 * (1 - confidence) / 2
    interval = np.percentile(replications, [tail, 100 - tail], axis=0)
    return np.asarray(point), interval


def performance_profile(
    scores: np.ndarray | Sequence[float] | Sequence[Sequence[float]],
    taus: np.ndarray | Sequence[float],
    reps: int = 2_000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """
    The score distribution: for each ``tau``, the fraction of all (run, task) scores above ``tau``, with its
    stratified-bootstrap band (rliable's ``create_performance_profile``, ``use_score_distribution=True``, 2,000
    replications by default as there).

    :return: ``(profile, band)``: ``(len(taus),)`` fractions and ``(2, len(taus))`` lower and upper bounds
    """
    thresholds = np.asarray(taus, dtype=np.float64).reshape(-1)

    def above(resampled: np.ndarray) -> np.ndarray:
        flat = resampled.reshape(len(resampled), -1)
        return (flat[:, :, None] > thresholds).mean(axis=1)

    return interval_estimate(scores, above, reps=reps, confidence=confidence, seed=seed)


def plot_performance_profiles(
    scores: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    taus: np.ndarray | Sequence[float] | None = None,
    title: str = "",
    xlabel: str = r"normalized score ($\tau$)",
    reps: int = 2_000,
    seed: int | None = 0,
) -> Path:
    """
    Draw one performance profile per algorithm (``scores[name]``: ``(num_runs, num_tasks)``) with its 95% band,
    as rliable's ``plot_performance_profiles`` does, into a PNG at ``path`` (written atomically).

    :param taus: thresholds (default: 101 points spanning all scores)
    :return: the path written
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sb3_offline.plotting import _finish

    matrices = {name: _as_scores(value, f"scores[{name!r}]") for name, value in scores.items()}
    if not matrices:
        raise ValueError("scores: expected at least one algorithm, found none")
    if taus is None:
        every = np.concatenate([m.reshape(-1) for m in matrices.values()])
        taus = np.linspace(every.min(), every.max(), 101)
    thresholds = np.asarray(taus, dtype=np.float64)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    styles = ("-", "--", ":", "-.")
    for index, (name, matrix) in enumerate(matrices.items()):
        profile, band = performance_profile(matrix, thresholds, reps=reps, seed=seed)
        label = f"{name} ({matrix.shape[0]}x{matrix.shape[1]} runs)"
        (line,) = axis.plot(thresholds, profile, styles[index // 10 % len(styles)], label=label)
        axis.fill_between(thresholds, band[0], band[1], color=line.get_color(), alpha=0.15)
    axis.set_ylim(0, 1.02)
    if title:
        axis.set_title(title)
    return _finish(figure, axis, path, xlabel, r"fraction of runs with score $> \tau$")


def format_interval(point: float, interval: np.ndarray, digits: int = 1) -> str:
    """``"12.3 [4.5, 20.1]"``: a point estimate and its confidence interval."""
    return f"{point:.{digits}f} [{float(interval[0]):.{digits}f}, {float(interval[1]):.{digits}f}]"
