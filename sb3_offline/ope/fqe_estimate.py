"""
FQE's estimate (:meth:`sb3_offline.ope.FQE.estimate`): the episodes whose initial states it is taken at, the horizon of
its undiscounted form, and the value with its bootstrap interval over those episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_offline.buffers import OfflineReplayBuffer, RewardTransform
from sb3_offline.common.episodes import episode_bounds
from sb3_offline.common.observations import obs_index
from sb3_offline.datasets.loaders import DatasetSource, load_transitions
from sb3_offline.datasets.validation import validate_transitions
from sb3_offline.ope.estimate import PolicyValueEstimate, bootstrap_interval, undiscounted_from_discounted


@dataclass
class Episodes:
    """
    The episodes an estimate is taken over: their first rows and lengths, and how each row ends.

    :param starts: first row of every episode, ``(n_episodes,)`` (a tensor on the buffer's device, or numpy)
    :param lengths: steps of every episode, ``(n_episodes,)``
    :param terminations: per row, whether it ends its episode by a termination
    :param truncations: per row, whether it ends its episode by a time-limit cut
    """

    starts: Any
    lengths: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray

    @classmethod
    def of_buffer(cls, buffer: OfflineReplayBuffer) -> Episodes:
        """The dataset episodes of ``buffer`` (its online rows left out)."""
        n = buffer.dataset_size
        return cls(
            starts=buffer.episode_starts,
            lengths=buffer.episode_lengths.cpu().numpy(),
            terminations=buffer.dones[:n, 0].cpu().numpy() > 0,
            truncations=buffer.timeouts[:n, 0].cpu().numpy() > 0,
        )

    @classmethod
    def read(
        cls, dataset: DatasetSource, observation_space: spaces.Space, action_space: spaces.Space
    ) -> tuple[Episodes, Any]:
        """The episodes of ``dataset`` (read, validated against the spaces) and their initial observations (numpy)."""
        transitions = validate_transitions(
            load_transitions(dataset, action_space=action_space), observation_space, action_space
        )
        starts, lengths = episode_bounds(np.asarray(transitions.episode_ends, dtype=bool))
        episodes = cls(
            starts=starts,
            lengths=lengths,
            terminations=np.asarray(transitions.terminations, dtype=bool),
            truncations=np.asarray(transitions.truncations, dtype=bool),
        )
        return episodes, obs_index(transitions.observations, starts)

    def horizon(self, env: Any) -> int | None:
        """
        Steps per episode for the undiscounted conversion: none when the data has terminations (the episode's
        length then depends on the policy); else ``env``'s time limit (a ``VecEnv``, or ``None``), else the common
        length of the episodes the data cut by a time limit.
        """
        if self.terminations.any():
            return None
        if env is not None:
            spec = env.get_attr("spec")[0]
            limit = getattr(spec, "max_episode_steps", None)
            if limit:
                return int(limit)
        ends = np.cumsum(self.lengths) - 1
        truncated = self.lengths[self.truncations[ends]]
        if len(truncated) and np.all(truncated == truncated[0]):
            return int(truncated[0])
        return None


def initial_state_estimate(
    values: np.ndarray,
    gamma: float,
    horizon: int | None,
    reward_transform: RewardTransform,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int | None = 0,
) -> PolicyValueEstimate:
    """
    The mean of ``values`` (``Q(s0, pi(s0))``, one per episode) with its percentile bootstrap interval
    (:func:`~sb3_offline.ope.estimate.bootstrap_interval`), and both in undiscounted-return units
    (:func:`~sb3_offline.ope.estimate.undiscounted_from_discounted`) when ``horizon`` is known.

    :param values: ``(n_episodes,)`` float64
    :param gamma: discount factor the values are in
    :param horizon: steps per episode, or ``None`` (no undiscounted form)
    :param reward_transform: the transform the values' rewards are in (undone by the undiscounted form)
    :param confidence: coverage of the interval
    :param n_bootstrap: bootstrap resamples
    :param seed: seed of the resampling
    """
    value = float(values.mean())
    low, high = bootstrap_interval(values, confidence, n_bootstrap, seed)
    undiscounted = undiscounted_ci = None
    if horizon is not None:

        def convert(v: float) -> float:
            return undiscounted_from_discounted(v, gamma, horizon, reward_transform.scale, reward_transform.shift)

        undiscounted = convert(value)
        bounds = sorted((convert(low), convert(high)))
        undiscounted_ci = (bounds[0], bounds[1])
    return PolicyValueEstimate(
        value=value,
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        initial_values=values,
        gamma=float(gamma),
        horizon=horizon,
        undiscounted=undiscounted,
        undiscounted_ci=undiscounted_ci,
    )


__all__ = ["Episodes", "initial_state_estimate"]
