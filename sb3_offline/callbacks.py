"""SB3 callbacks of sb3-offline."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from sb3_offline.evaluation import ValueEstimate, estimate_value_error

#: Columns of the CSV that :class:`ValueEstimateCallback` writes and ``sb3-offline plot`` reads.
VALUE_ESTIMATE_COLUMNS = ("timesteps", "q_estimate", "discounted_return", "return")


class ValueEstimateCallback(BaseCallback):
    """
    Every ``eval_freq`` calls (gradient steps offline), run the extrapolation-error diagnostic
    (:func:`~sb3_offline.evaluation.estimate_value_error`): log ``eval/q_estimate``,
    ``eval/discounted_return`` and ``eval/mean_return`` to the SB3 logger (stdout, csv, tensorboard)
    and append them to ``<log_path>/value_estimates.csv`` for ``sb3-offline plot``.

    :param eval_env: the env (or id) to run the policy in; never the training env
    :param eval_freq: evaluate every that many calls
    :param n_episodes: start states per evaluation
    :param log_path: folder of ``value_estimates.csv`` (``None``: not written)
    :param seed: seed of the evaluation episodes (the same start states every time)
    :param verbose: 1 prints each evaluation
    """

    def __init__(
        self,
        eval_env: gym.Env | str,
        eval_freq: int = 5_000,
        n_episodes: int = 5,
        log_path: str | os.PathLike | None = None,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if eval_freq <= 0:
            raise ValueError(f"eval_freq: expected a positive number of steps, found {eval_freq}")
        self.eval_env = gym.make(eval_env) if isinstance(eval_env, str) else eval_env
        self.eval_freq, self.n_episodes, self.seed = eval_freq, n_episodes, seed
        self.csv_path = Path(log_path) / "value_estimates.csv" if log_path is not None else None
        self.history: list[tuple[int, ValueEstimate]] = []

    def _init_callback(self) -> None:
        if self.csv_path is not None:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(VALUE_ESTIMATE_COLUMNS)

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq == 0:
            self.evaluate()
        return True

    def evaluate(self) -> ValueEstimate:
        """Run the diagnostic now, log it and record it."""
        estimate = estimate_value_error(self.model, self.eval_env, self.n_episodes, seed=self.seed)
        self.history.append((self.num_timesteps, estimate))
        self.logger.record("eval/q_estimate", estimate.q_estimate)
        self.logger.record("eval/discounted_return", estimate.discounted_return)
        self.logger.record("eval/mean_return", estimate.mean_return)
        if self.csv_path is not None:
            with open(self.csv_path, "a", newline="") as f:
                row = (self.num_timesteps, estimate.q_estimate, estimate.discounted_return, estimate.mean_return)
                csv.writer(f).writerow(row)
        if self.verbose:
            print(
                f"step {self.num_timesteps}: Q(s0, pi(s0)) {estimate.q_estimate:.1f}, "
                f"discounted return {estimate.discounted_return:.1f}, return {estimate.mean_return:.1f}"
            )
        return estimate


class SeededEvalCallback(EvalCallback):
    """
    SB3's ``EvalCallback`` whose every evaluation starts from the same seeded reset, as
    :func:`sb3_offline.evaluation.evaluate` does (the env reset with ``seed``, then SB3's ``evaluate_policy``):
    the same policy gets the same score here, in ``evaluate(model, env, n_eval_episodes, seed=seed)`` and in
    ``sb3-offline evaluate --episodes n_eval_episodes --seed seed``. SB3's own ``EvalCallback`` leaves the env's
    random state where the previous evaluation left it, so its score of a policy depends on when it is evaluated.

    :param eval_env: the evaluation env (one env: a ``gym.Env`` or a ``VecEnv`` of one)
    :param seed: the seed of the reset before each evaluation
    :param kwargs: ``EvalCallback``'s arguments (``n_eval_episodes``, ``eval_freq``, ``log_path``, ...)
    """

    def __init__(self, eval_env: Any, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(eval_env, **kwargs)
        self.seed = seed

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.eval_env.env_method("reset", seed=self.seed)
        return super()._on_step()


__all__ = ["VALUE_ESTIMATE_COLUMNS", "SeededEvalCallback", "ValueEstimateCallback"]
