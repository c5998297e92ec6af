"""``OfflineEvalCallback``: offline metrics on held-out episodes during ``learn``, and the best model by one of them."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.ope.held_out import HeldOutEpisodes
from sb3_offline.ope.metrics import OfflineMetric, metrics_for_model, resolve_metrics
from sb3_offline.ope.value_model import ValueModel, _Values


class OfflineEvalCallback(BaseCallback):
    """
    SB3's ``EvalCallback`` without an environment: every ``eval_freq`` calls (gradient steps offline) compute
    offline metrics (:mod:`sb3_offline.ope.metrics`) of the model on held-out episodes, record them as
    ``offline_eval/<name>`` in the SB3 logger (stdout, csv, TensorBoard) and dump it, keep them in
    ``evaluations`` (and in ``<log_path>/offline_evaluations.npz``), and save ``best_model.zip`` whenever the
    chosen metric improves in its own direction (lower TD error, higher initial-state value, ...).

    :param validation_dataset: the held-out episodes (any dataset source, e.g. ``split_episodes(...).validation``)
    :param metrics: metric names or :class:`~sb3_offline.ope.metrics.OfflineMetric` instances (default:
        :data:`~sb3_offline.ope.metrics.DEFAULT_METRICS`, those that need a critic left out for a model without one)
    :param eval_freq: evaluate every that many calls
    :param best_metric: the metric that picks ``best_model`` (its name; it must have a direction); default: the
        first of ``metrics`` that has one
    :param best_model_save_path: folder of ``best_model.zip`` (``None``: not saved)
    :param log_path: folder of ``offline_evaluations.npz`` (``None``: not written)
    :param deterministic: evaluate the policy's deterministic actions
    :param critic_reduction: ``"mean"``, ``"min"`` or ``"q1"`` over the model's Q-functions
    :param callback_on_new_best: called when the best metric improves
    :param verbose: 1 prints each evaluation
    """

    def __init__(
        self,
        validation_dataset: DatasetSource | HeldOutEpisodes,
        metrics: Sequence[str | OfflineMetric] | None = None,
        eval_freq: int = 5_000,
        best_metric: str | None = None,
        best_model_save_path: str | os.PathLike | None = None,
        log_path: str | os.PathLike | None = None,
        deterministic: bool = True,
        critic_reduction: str = "mean",
        callback_on_new_best: BaseCallback | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__(verbose)
        if eval_freq <= 0:
            raise ValueError(f"eval_freq: expected a positive number of steps, found {eval_freq}")
        self.validation_dataset = validation_dataset
        self.requested_metrics = metrics
        self.metrics = resolve_metrics(metrics)
        self.eval_freq = int(eval_freq)
        self.best_metric = best_metric
        self.best_model_save_path = Path(best_model_save_path) if best_model_save_path is not None else None
        self.log_path = Path(log_path) / "offline_evaluations.npz" if log_path is not None else None
        self.deterministic = deterministic
        self.critic_reduction = critic_reduction
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            callback_on_new_best.parent = self  # type: ignore[attr-defined]
        self.best_value: float | None = None
        self.timesteps: list[int] = []
        self.evaluations: dict[str, list[float]] = {}
        self.data: HeldOutEpisodes | None = None
        self._value_model: ValueModel | None = None

    def _init_callback(self) -> None:
        self._value_model = ValueModel.from_model(self.model, self.deterministic, self.critic_reduction)
        self.metrics = metrics_for_model(self.requested_metrics, self._value_model, self.model)
        directed = [m.name for m in self.metrics if m.higher_is_better is not None]
        if self.best_metric is None:
            self.best_metric = directed[0] if directed else None
        elif self.best_metric not in [m.name for m in self.metrics]:
            raise ValueError(
                f"best_metric: expected one of the metrics {[m.name for m in self.metrics]}, found {self.best_metric!r}"
            )
        elif self.best_metric not in directed:
            raise ValueError(
                f"best_metric: {self.best_metric!r} has no direction (a diagnostic); pick one of {directed}"
            )
        if self.best_model_save_path is not None and self.best_metric is None:
            raise ValueError("best_model_save_path: no metric with a direction to pick the best model by")
        self.data = HeldOutEpisodes.from_source(
            self.validation_dataset, self.model.observation_space, self.model.action_space, self.model.device
        )
        self.evaluations = {m.name: [] for m in self.metrics}
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.model)
        for folder in (self.best_model_save_path, self.log_path.parent if self.log_path else None):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)

    @property
    def _direction(self) -> bool | None:
        return next((m.higher_is_better for m in self.metrics if m.name == self.best_metric), None)

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, float]:
        """Compute the metrics now, log them, keep them, save the best model if the chosen metric improved."""
        assert self.data is not None and self._value_model is not None
        values = _Values(self._value_model, self.data)
        results = {metric.name: metric.compute(values) for metric in self.metrics}
        self.timesteps.append(self.num_timesteps)
        for name, value in results.items():
            self.evaluations[name].append(value)
            self.logger.record(f"offline_eval/{name}", value)
        if self.log_path is not None:
            arrays = {name: np.asarray(history) for name, history in self.evaluations.items()}
            np.savez(self.log_path, timesteps=np.asarray(self.timesteps), **arrays)  # type: ignore[arg-type]
        if self.verbose >= 1:
            shown = ", ".join(f"{name} {value:.4g}" for name, value in results.items())
            print(f"step {self.num_timesteps}: {shown}")
        improved = self._improved(results.get(self.best_metric)) if self.best_metric is not None else False
        if improved:
            self.best_value = results[self.best_metric]  # type: ignore[index]
            if self.best_model_save_path is not None:
                self.model.save(self.best_model_save_path / "best_model")
                if self.verbose >= 1:
                    saved = self.best_model_save_path / "best_model.zip"
                    print(f"new best {self.best_metric}: {self.best_value:.4g}; saved {saved}")
            if self.callback_on_new_best is not None:
                self.callback_on_new_best.on_step()
        if self.best_value is not None:
            self.logger.record(f"offline_eval/best_{self.best_metric}", self.best_value)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        return results

    def _improved(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        return value > self.best_value if self._direction else value < self.best_value

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.update_locals(locals_)


__all__ = ["OfflineEvalCallback"]
