"""
Model selection from data alone: fit FQE for each checkpoint, rank them by its estimate, and (when an env may be
stepped) compare with the truth. The engine of ``sb3-offline ope``.
"""

from __future__ import annotations

import csv
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_offline.common.text import duration
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.ope.estimate import PolicyValueEstimate
from sb3_offline.ope.evaluation_policy import as_evaluation_policy
from sb3_offline.ope.settling import EstimateTrace, Settling

#: the discounted tail left out of a rolled-out value: episodes run past the env's time limit until gamma^t < this
DISCOUNT_TAIL = 1e-3


@dataclass
class RolloutValues:
    """
    What a policy actually gets in the env, from ``n`` start states.

    :param returns: undiscounted return of each episode, within the env's time limit
    :param discounted: ``sum_t gamma^t r_t`` of each episode, run past the time limit (see :func:`rollout_values`)
    """

    returns: np.ndarray
    discounted: np.ndarray

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def mean_discounted(self) -> float:
        return float(np.mean(self.discounted))


def rollout_values(
    policy: Any,
    env_id: str,
    n_episodes: int = 10,
    gamma: float = 0.99,
    seed: int = 0,
    tail: float = DISCOUNT_TAIL,
) -> RolloutValues:
    """
    Run ``policy`` (anything :class:`~sb3_offline.ope.EvaluationPolicy` takes) for ``n_episodes`` (episode ``k``
    reset with ``seed + k``). The undiscounted return is summed within the env's own time limit; the discounted
    return keeps going past it (the env made with a longer limit) until a termination or until ``gamma^t < tail``:
    FQE bootstraps at time-limit cuts, so what it estimates is that unending discounted sum, not one cut at the
    limit (with Pendulum's 200 steps and gamma 0.99 the cut would drop ``0.99^200 = 13%`` of the weight).

    :param policy: the policy
    :param env_id: a gymnasium id
    :param n_episodes: episodes
    :param gamma: discount of the discounted return
    :param seed: seed of the first reset
    :param tail: weight below which the discounted sum stops
    """
    limit = gym.spec(env_id).max_episode_steps
    steps = math.ceil(math.log(tail) / math.log(gamma)) if 0.0 < gamma < 1.0 else 0
    horizon = max(limit or 0, steps) or None
    env = gym.make(env_id, max_episode_steps=horizon) if horizon else gym.make(env_id)
    try:
        evaluator = as_evaluation_policy(policy, env.observation_space, env.action_space)
        returns, discounted = [], []
        for episode in range(n_episodes):
            obs, _ = env.reset(seed=seed + episode)
            total = weighted = 0.0
            factor, t, done = 1.0, 0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(evaluator.act(obs))
                if limit is None or t < limit:
                    total += float(reward)
                weighted += factor * float(reward)
                factor *= gamma
                t += 1
                done = terminated or truncated
            returns.append(total)
            discounted.append(weighted)
    finally:
        env.close()
    return RolloutValues(np.asarray(returns), np.asarray(discounted))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (ties share their mean rank); NaN with fewer than 2 points or a constant side."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or len(a) != len(b):
        return float("nan")

    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="mergesort")
        result = np.empty(len(values))
        result[order] = np.arange(len(values), dtype=np.float64)
        for value in np.unique(values):
            tied = values == value
            result[tied] = result[tied].mean()
        return result

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class CheckpointReport:
    """
    One checkpoint in the model-selection report.

    :param label: its short name (``run/file``)
    :param path: the checkpoint
    :param algorithm: the class that loaded it
    :param estimate: FQE's estimate
    :param metrics: the offline metrics of the model on the held-out (or whole) dataset
    :param rollout: the truth, when an env was stepped
    :param normalized_score: the true return normalized with the dataset's reference scores, when both exist
    :param fqe_path: the saved FQE checkpoint
    :param settling: how much FQE's estimate still moved at the end of its fit (:mod:`~sb3_offline.ope.settling`)
    :param seconds: the checkpoint's time (FQE, metrics, rollouts)
    """

    label: str
    path: str
    algorithm: str
    estimate: PolicyValueEstimate
    metrics: dict[str, float] = field(default_factory=dict)
    rollout: RolloutValues | None = None
    normalized_score: float | None = None
    fqe_path: str | None = None
    settling: Settling | None = None
    seconds: float = 0.0


class UnsettledEstimateWarning(UserWarning):
    """FQE's estimate was still moving when its fit ended (:func:`~sb3_offline.ope.settling.settling`)."""


def checkpoint_label(path: str | os.PathLike) -> str:
    """
    ``logs/run_a/bcq.zip`` -> ``run_a/bcq``; a run of rl-zoo3's layout (``sb3-offline train``'s, ``zoo train``'s),
    ``logs/bcq/Pendulum-v1_2/Pendulum-v1.zip`` -> ``bcq/Pendulum-v1_2`` (its algorithm and run).
    """
    path = Path(path)
    run = path.parent.name
    if run.startswith(f"{path.stem}_") and run[len(path.stem) + 1 :].isdigit() and path.parent.parent.name:
        return f"{path.parent.parent.name}/{run}"
    return f"{run}/{path.stem}" if run else path.stem


def evaluate_checkpoints(
    checkpoints: Sequence[str | os.PathLike],
    dataset: DatasetSource,
    validation: DatasetSource | None = None,
    env_id: str | None = None,
    steps: int = 10_000,
    gamma: float = 0.99,
    n_episodes: int = 10,
    output: str | os.PathLike | None = None,
    device: Any = "auto",
    seed: int = 0,
    algo: str | None = None,
    fqe_kwargs: dict[str, Any] | None = None,
    progress_bar: bool = False,
    verbose: int = 0,
) -> list[CheckpointReport]:
    """
    For each checkpoint: load it (:func:`~sb3_offline.ope.load_model`), fit :class:`~sb3_offline.ope.FQE` for
    ``steps`` gradient steps on ``dataset``, estimate its value from the dataset's initial states, compute the
    offline metrics on ``validation`` (default: ``dataset``), and, with ``env_id``, roll it out for the truth.

    :param checkpoints: SB3 ``.zip`` files of any known algorithm
    :param dataset: FQE's data (and the initial states of the estimate)
    :param validation: held-out episodes for the metrics (default: ``dataset``)
    :param env_id: a gymnasium id to roll the policies out in (``None``: data only)
    :param steps: FQE gradient steps per checkpoint
    :param gamma: FQE's discount (and the rolled-out discounted return's)
    :param n_episodes: rollouts per checkpoint
    :param output: folder for the FQE checkpoints (``None``: not saved)
    :param device: FQE's device (and the checkpoints')
    :param seed: FQE's seed and the rollouts'
    :param algo: the checkpoints' algorithm, when it cannot be read from them
    :param fqe_kwargs: more keyword arguments of FQE (``batch_size``, ``policy_kwargs``, ...)
    :param progress_bar: show FQE's progress bar
    :param verbose: 1 prints a line per checkpoint as it finishes (its estimate, whether it settled, its time,
        the time left)

    A fit whose estimate has not settled (:func:`~sb3_offline.ope.settling.settling`: it moved by more than 5% over
    its last 4 of 10 evenly spaced checks) raises an :class:`UnsettledEstimateWarning` naming the checkpoint.
    """
    from sb3_offline.evaluation import normalized_score_or_none, reference_scores
    from sb3_offline.ope.fqe import FQE
    from sb3_offline.ope.loading import load_model
    from sb3_offline.ope.metrics import evaluate_offline

    if not checkpoints:
        raise ValueError("checkpoints: expected at least one .zip, found none")
    scores = reference_scores(dataset)
    reports: list[CheckpointReport] = []
    start = time.perf_counter()
    for path in checkpoints:
        began = time.perf_counter()
        label = checkpoint_label(path)
        say = _announcer(verbose, f"[{len(reports) + 1}/{len(checkpoints)}] {label}")
        say("the policy's actions at the dataset's states")  # first, and minutes for BCQ on a CPU
        model = load_model(path, algo=algo, device=device)
        fqe = FQE(model, dataset=dataset, gamma=gamma, device=device, seed=seed, **(fqe_kwargs or {}))
        say(f"actions ready in {duration(time.perf_counter() - began)}; fitting FQE for {steps} steps")
        trace = EstimateTrace.for_steps(steps)
        fqe.learn(steps, callback=trace, progress_bar=progress_bar, log_interval=None)
        estimate = fqe.estimate(seed=seed)
        if not trace.result.settled:
            warnings.warn(
                f"{label}: FQE's estimate after {steps} steps is {trace.result.describe()}; more --steps",
                UnsettledEstimateWarning,
                stacklevel=2,
            )
        fqe_path = None
        if output is not None:
            target = Path(output) / f"fqe_{label.replace('/', '_')}"
            fqe.evaluation_policy_path = os.fspath(path)
            fqe.save(target)
            fqe_path = f"{target}.zip"
        metrics = evaluate_offline(model, validation if validation is not None else dataset)
        rollout = normalized = None
        if env_id is not None:
            rollout = rollout_values(model, env_id, n_episodes, gamma=gamma, seed=seed)
            normalized = normalized_score_or_none(scores, rollout.mean_return)
        report = CheckpointReport(
            label, os.fspath(path), type(model).__name__, estimate, metrics, rollout, normalized, fqe_path
        )
        report.settling, report.seconds = trace.result, time.perf_counter() - began
        reports.append(report)
        if verbose:
            print(_progress_line(report, len(reports), len(checkpoints), time.perf_counter() - start), flush=True)
    return reports


def _announcer(verbose: int, prefix: str) -> Any:
    """A function printing ``prefix: text`` at once when ``verbose``, else doing nothing."""

    def say(text: str) -> None:
        if verbose:
            print(f"{prefix}: {text}", flush=True)

    return say


def _progress_line(report: CheckpointReport, done: int, total: int, elapsed: float) -> str:
    """``[k/n] label: FQE value [CI] (settled or not), true return, its time, elapsed, left``."""
    e = report.estimate
    truth = f", true return {report.rollout.mean_return:.1f}" if report.rollout is not None else ""
    settled = "" if report.settling is None or report.settling.settled else " (NOT SETTLED)"
    left = elapsed / done * (total - done)
    return (
        f"[{done}/{total}] {report.label}: FQE {e.value:.2f} [{e.ci_low:.2f}, {e.ci_high:.2f}]{settled}{truth}; "
        f"{duration(report.seconds)}, elapsed {duration(elapsed)}, left ~{duration(left)}"
    )


def ranked(reports: Sequence[CheckpointReport]) -> list[CheckpointReport]:
    """The reports, best FQE estimate first."""
    return sorted(reports, key=lambda r: r.estimate.value, reverse=True)


@dataclass
class SelectionSummary:
    """
    How well FQE's ranking agrees with the truth (NaN/None without rollouts).

    :param spearman: rank correlation of FQE's estimate with the true discounted return
    :param spearman_return: rank correlation of FQE's estimate with the true undiscounted return
    :param mean_absolute_error: mean ``|FQE estimate - true discounted return|``
    :param regret_at_1: best true return minus the true return of FQE's pick
    :param pick: FQE's pick (its label)
    """

    spearman: float
    spearman_return: float
    mean_absolute_error: float
    regret_at_1: float | None
    pick: str


def summarize(reports: Sequence[CheckpointReport]) -> SelectionSummary:
    """Agreement of FQE's ranking with the rolled-out truth."""
    order = ranked(reports)
    pick = order[0]
    rolled = [r for r in reports if r.rollout is not None]
    if len(rolled) != len(reports) or not rolled:
        return SelectionSummary(float("nan"), float("nan"), float("nan"), None, pick.label)
    estimates = [r.estimate.value for r in rolled]
    discounted = [r.rollout.mean_discounted for r in rolled]  # type: ignore[union-attr]
    returns = [r.rollout.mean_return for r in rolled]  # type: ignore[union-attr]
    assert pick.rollout is not None
    return SelectionSummary(
        spearman=spearman(estimates, discounted),
        spearman_return=spearman(estimates, returns),
        mean_absolute_error=float(np.mean(np.abs(np.asarray(estimates) - np.asarray(discounted)))),
        regret_at_1=float(max(returns) - pick.rollout.mean_return),
        pick=pick.label,
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


#: the metric columns of the printed table, with their headers
TABLE_METRICS = {"td_error": "TD err", "initial_state_value": "Q(s0)", "action_difference": "act diff"}


def format_table(reports: Sequence[CheckpointReport]) -> str:
    """A Markdown table of the reports, best FQE estimate first."""
    headers = ["rank", "checkpoint", "algo", "FQE value [CI]", "FQE return", *TABLE_METRICS.values()]
    rolled = any(r.rollout is not None for r in reports)
    if rolled:
        headers += ["true return", "true disc.", "normalized"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for rank, report in enumerate(ranked(reports), start=1):
        e = report.estimate
        row = [
            str(rank),
            report.label,
            report.algorithm,
            f"{e.value:.2f} [{e.ci_low:.2f}, {e.ci_high:.2f}]",
            _fmt(e.undiscounted),
            *(_fmt(report.metrics.get(name), 3) for name in TABLE_METRICS),
        ]
        if rolled:
            r = report.rollout
            row += [
                f"{r.mean_return:.1f} ± {r.std_return:.1f}" if r is not None else "n/a",
                _fmt(r.mean_discounted, 2) if r is not None else "n/a",
                _fmt(report.normalized_score),
            ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def write_csv(reports: Sequence[CheckpointReport], path: str | os.PathLike) -> Path:
    """Every number of the report, one row per checkpoint (best FQE estimate first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metric_names = sorted({name for r in reports for name in r.metrics})
    columns = ["rank", "checkpoint", "path", "algorithm", "fqe_value", "fqe_ci_low", "fqe_ci_high"]
    columns += ["fqe_undiscounted", *metric_names, "true_return", "true_return_std", "true_discounted"]
    columns += ["normalized_score", "fqe_checkpoint"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for rank, r in enumerate(ranked(reports), start=1):
            e, ro = r.estimate, r.rollout
            row: list[Any] = [rank, r.label, r.path, r.algorithm, e.value, e.ci_low, e.ci_high, e.undiscounted]
            row += [r.metrics.get(name) for name in metric_names]
            row += [ro.mean_return, ro.std_return, ro.mean_discounted] if ro is not None else [None, None, None]
            writer.writerow([*row, r.normalized_score, r.fqe_path])
    return path


def plot_report(reports: Sequence[CheckpointReport], path: str | os.PathLike, title: str = "") -> Path:
    """
    FQE's estimate (with its interval) against the true discounted return, one point per checkpoint, and the
    diagonal; without rollouts, the estimates alone, best first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sb3_offline.plotting import _finish

    fig, ax = plt.subplots(figsize=(7, 5))
    order = ranked(reports)
    values = np.array([r.estimate.value for r in order])
    errors = np.array(
        [[r.estimate.value - r.estimate.ci_low for r in order], [r.estimate.ci_high - r.estimate.value for r in order]]
    )
    if all(r.rollout is not None for r in order):
        truth = np.array([r.rollout.mean_discounted for r in order])  # type: ignore[union-attr]
        ax.errorbar(truth, values, yerr=errors, fmt="o", capsize=3, label="FQE estimate (bootstrap CI)")
        for r, x, y in zip(order, truth, values, strict=True):
            ax.annotate(r.label, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        low, high = min(truth.min(), values.min()), max(truth.max(), values.max())
        ax.plot([low, high], [low, high], "--", color="gray", linewidth=1, label="estimate = truth")
        xlabel, ylabel = "true discounted return (rolled out)", "FQE estimate of the discounted return"
    else:
        positions = np.arange(len(order))
        ax.errorbar(values, positions, xerr=errors, fmt="o", capsize=3, label="FQE estimate (bootstrap CI)")
        ax.set_yticks(positions, [r.label for r in order], fontsize=7)
        ax.invert_yaxis()
        xlabel, ylabel = "FQE estimate of the discounted return", "checkpoint (best first)"
    ax.set_title(title or "Off-policy evaluation: FQE estimate vs true return", fontsize=10)
    return _finish(fig, ax, path, xlabel, ylabel)


__all__ = [
    "DISCOUNT_TAIL",
    "CheckpointReport",
    "RolloutValues",
    "SelectionSummary",
    "UnsettledEstimateWarning",
    "checkpoint_label",
    "evaluate_checkpoints",
    "format_table",
    "plot_report",
    "ranked",
    "rollout_values",
    "spearman",
    "summarize",
    "write_csv",
]
