"""
The summary of ``benchmarks.ope_checkpoints``: one checkpoint's record as numbers (:class:`Point`), Spearman, mean
absolute error and regret@1 per (env, setting), the scatter PNG and the rows of ``sb3-offline ope``'s CSV; and the
fields of a value estimate as the checkpoints' ``.ope.json`` files store them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sb3_offline.datasets.writers import atomic_path
from sb3_offline.ope import PolicyValueEstimate
from sb3_offline.ope.report import CheckpointReport, RolloutValues, spearman

if TYPE_CHECKING:
    from benchmarks.ope_checkpoints import Run

#: estimator key -> its name in the table
ESTIMATORS = {"fqe": "FQE (ours)", "d3rlpy_fqe": "FQE (d3rlpy)"}
#: start-state convention key -> its name in the table
STARTS = {"rollout": "rollout starts", "dataset": "dataset starts"}


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(temporary)``, then the temporary file replaces ``path`` (``sb3_offline``'s ``atomic_path``)."""
    with atomic_path(path) as temporary:
        write(temporary)


def estimate_fields(estimate: PolicyValueEstimate) -> dict[str, Any]:
    return {
        "value": estimate.value,
        "ci_low": estimate.ci_low,
        "ci_high": estimate.ci_high,
        "confidence": estimate.confidence,
        "initial_values": [float(v) for v in estimate.initial_values],
        "gamma": estimate.gamma,
        "horizon": estimate.horizon,
        "undiscounted": estimate.undiscounted,
        "undiscounted_ci": list(estimate.undiscounted_ci) if estimate.undiscounted_ci is not None else None,
    }


def estimate_from_fields(fields: dict[str, Any]) -> PolicyValueEstimate:
    ci = fields.get("undiscounted_ci")
    return PolicyValueEstimate(
        value=float(fields["value"]),
        ci_low=float(fields["ci_low"]),
        ci_high=float(fields["ci_high"]),
        confidence=float(fields["confidence"]),
        initial_values=np.asarray(fields["initial_values"], dtype=np.float64),
        gamma=float(fields["gamma"]),
        horizon=fields.get("horizon"),
        undiscounted=fields.get("undiscounted"),
        undiscounted_ci=(float(ci[0]), float(ci[1])) if ci is not None else None,
    )


# ---------------------------------------------------------------------------------------------- summary
@dataclass
class Point:
    """One checkpoint's numbers."""

    run: Run
    steps: int
    path: Path
    record: dict[str, Any]

    @property
    def true_discounted(self) -> float:
        return float(np.mean(self.record["truth"]["discounted"]))

    @property
    def true_return(self) -> float:
        return float(np.mean(self.record["truth"]["returns"]))

    def estimate(self, estimator: str, starts: str) -> float:
        part = self.record[estimator]
        return float(np.mean(part["rollout"])) if starts == "rollout" else float(part["dataset"]["value"])


def regrets(points: list[Point], choose: Callable[[list[Point]], Point]) -> list[float]:
    """Per run: the true return of its best checkpoint minus that of the one ``choose`` picks."""
    by_run: dict[str, list[Point]] = {}
    for point in points:
        by_run.setdefault(point.run.label, []).append(point)
    return [max(p.true_return for p in run) - choose(run).true_return for run in by_run.values()]


def best_by(estimator: str, starts: str) -> Callable[[list[Point]], Point]:
    """Picks a run's checkpoint with the highest estimate."""

    def choose(run: list[Point]) -> Point:
        return max(run, key=lambda point: point.estimate(estimator, starts))

    return choose


def summary_rows(env_id: str, setting: str, points: list[Point], estimators: list[str]) -> list[list[str]]:
    truth = np.array([p.true_discounted for p in points])
    last = float(np.mean(regrets(points, lambda run: max(run, key=lambda p: p.steps))))
    n_runs = len({p.run.label for p in points})
    rows = []
    for estimator in estimators:
        for starts in STARTS:
            values = np.array([p.estimate(estimator, starts) for p in points])
            picked = float(np.mean(regrets(points, best_by(estimator, starts))))
            rows.append(
                [
                    env_id,
                    setting,
                    ESTIMATORS[estimator],
                    STARTS[starts],
                    f"{len(points)} ({n_runs} runs)",
                    f"{spearman(values.tolist(), truth.tolist()):.2f}",
                    f"{np.mean(np.abs(values - truth)):.2f}",
                    f"{picked:.1f}",
                    f"{last:.1f}",
                ]
            )
    return rows


def plot_setting(env_id: str, setting: str, points: list[Point], estimators: list[str], path: Path) -> None:
    """Estimate vs true discounted return, one panel per estimator, one colour per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(estimators), figsize=(6 * len(estimators), 5), squeeze=False)
    algos = list(dict.fromkeys(p.run.algo for p in points))
    colours = plt.get_cmap("tab10")
    truth = np.array([p.true_discounted for p in points])
    for ax, estimator in zip(axes[0], estimators, strict=True):
        everything = [truth]
        for index, algo in enumerate(algos):
            chosen = [p for p in points if p.run.algo == algo]
            x = np.array([p.true_discounted for p in chosen])
            for starts, fill in (("rollout", True), ("dataset", False)):
                y = np.array([p.estimate(estimator, starts) for p in chosen])
                everything.append(y)
                ax.scatter(
                    x,
                    y,
                    s=30,
                    color=colours(index % 10) if fill else "none",
                    edgecolors=colours(index % 10),
                    label=f"{algo} ({STARTS[starts]})",
                )
        low, high = float(min(v.min() for v in everything)), float(max(v.max() for v in everything))
        ax.plot([low, high], [low, high], "--", color="gray", linewidth=1, label="estimate = truth")
        ax.set_xlabel("true discounted return (rolled out)")
        ax.set_ylabel("estimate of the discounted return")
        ax.set_title(f"{env_id}, {setting}: {ESTIMATORS[estimator]}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


def checkpoint_reports(points: list[Point]) -> list[CheckpointReport]:
    """Our FQE's results as the ``sb3-offline ope`` report's rows (for :func:`~sb3_offline.ope.report.write_csv`)."""
    return [
        CheckpointReport(
            label=f"{p.run.label}/{p.path.stem}",
            path=os.fspath(p.path),
            algorithm=p.record["algorithm"],
            estimate=estimate_from_fields(p.record["fqe"]["dataset"]),
            rollout=RolloutValues(
                np.asarray(p.record["truth"]["returns"]), np.asarray(p.record["truth"]["discounted"])
            ),
        )
        for p in points
    ]
