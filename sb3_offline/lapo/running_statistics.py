"""
The authors' running update of the state and action statistics during fine-tuning (``pcchenxi/LAPO-offlienRL``,
branch ``finetune`` ``c47c28f``, ``algos/utils_finetune.py``, ``ReplayBuffer.add`` lines 32-54 and ``load`` lines
91-101): every new transition's state and action update the mean and the standard deviation the networks'
z-scores use (Welford's update, from the dataset's statistics on).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from sb3_offline.common.normalization import ActionNormalizer, ObservationNormalizer, Standardizer


class RunningStatistics:
    """
    The running mean and standard deviation of one :class:`~sb3_offline.common.normalization.Standardizer`, updated
    as the authors' ``ReplayBuffer.add``: with ``n`` the rows held after the new one (at most ``capacity``),
    ``mean' = mean + (x - mean) / n``, ``s' = s + (x - mean) (x - mean')`` and ``std' = sqrt(s' / (n - 1))``,
    starting from the dataset's ``mean``, ``std`` (population) and ``s = std^2 (N + 1)`` over its ``N`` rows (their
    ``load``; an exact running population std would start at ``std^2 N`` and divide by ``n``: a relative
    difference of order ``1 / N``).

    :param standardizer: the statistics it starts from (fitted on the dataset) and writes to
    :param rows: ``N``, the rows the statistics were computed over
    :param capacity: the most rows held (the count stops growing there, as the authors' buffer size)
    """

    def __init__(self, standardizer: Standardizer, rows: int, capacity: int) -> None:
        divisor = standardizer.divisor.detach().cpu().double().numpy()
        if standardizer.eps_mode != "add":
            raise ValueError(f"eps_mode: expected 'add' (std = divisor - eps), found {standardizer.eps_mode!r}")
        std = np.maximum(divisor - standardizer.eps, 0.0)
        self.mean = standardizer.mean.detach().cpu().double().numpy()
        self.sum_of_squares = std**2 * (rows + 1)
        self.rows, self.capacity = int(rows), int(capacity)

    def add(self, values: np.ndarray) -> None:
        """One new value (of the standardizer's shape)."""
        values = np.asarray(values, dtype=np.float64).reshape(self.mean.shape)
        self.rows = min(self.rows + 1, self.capacity)
        new_mean = self.mean + (values - self.mean) / self.rows
        self.sum_of_squares = self.sum_of_squares + (values - self.mean) * (values - new_mean)
        self.mean = new_mean

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.sum_of_squares / max(self.rows - 1, 1))

    def write(self, standardizer: Standardizer) -> None:
        """Into ``standardizer``, in place (a captured CUDA graph reads the new values)."""
        standardizer.set_statistics(self.mean, self.std)


def _observation_values(normalizer: ObservationNormalizer, key: str, observations: Any, env: int) -> list[Any]:
    """The values of one env's observation that ``key``'s statistic is computed over (a pooled group: each key's)."""
    if not normalizer.is_dict:
        return [observations[env]]
    group = next((group for group in normalizer.pooled_keys if key in group), [key])
    return [observations[member][env] for member in group]


class PolicyStatistics:
    """
    The running statistics of every observation and action normaliser of a policy (:class:`RunningStatistics`
    each), started from their current (dataset) statistics.

    :param policy: the policy whose normalisers follow the new transitions
    :param rows: the rows their statistics were computed over (the dataset's)
    :param capacity: the most rows the buffer holds
    """

    def __init__(self, policy: nn.Module, rows: int, capacity: int) -> None:
        self.observations: list[tuple[ObservationNormalizer, str, RunningStatistics]] = []
        self.actions: list[tuple[ActionNormalizer, RunningStatistics]] = []
        for module in policy.modules():
            if isinstance(module, ObservationNormalizer) and module.fitted:
                for key in module.standardizers:
                    self.observations.append((module, key, RunningStatistics(module.standardizer(key), rows, capacity)))
            elif isinstance(module, ActionNormalizer) and bool(module.fitted):
                self.actions.append((module, RunningStatistics(module, rows, capacity)))

    def add(self, observations: Any, actions: np.ndarray) -> None:
        """
        The states and actions of one step of every env (``(n_envs, ...)``; a dict for ``Dict`` observations, as the
        buffer holds them), one env after the other; then the normalisers take the new statistics.
        """
        for env in range(len(actions)):
            for normalizer, key, statistics in self.observations:
                for values in _observation_values(normalizer, key, observations, env):
                    statistics.add(values)
            for _, statistics in self.actions:
                statistics.add(actions[env])
        for normalizer, key, statistics in self.observations:
            statistics.write(normalizer.standardizer(key))
        for action_normalizer, statistics in self.actions:
            statistics.write(action_normalizer)
