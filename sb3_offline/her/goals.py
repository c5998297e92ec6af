"""
Goal-conditioned datasets for hindsight relabelling: the Fetch reward on the device, the per-row episode index and
the check that goals follow each other along every episode.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv

from sb3_offline.common.episodes import episode_bounds
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.datasets.validation import DatasetValidationError

#: The keys a goal-conditioned observation must have (gymnasium-robotics' ``GoalEnv`` layout).
GOAL_KEYS = ("achieved_goal", "desired_goal")


class FetchReward:
    """
    The reward of the gymnasium-robotics Fetch tasks, computed on the device from goal tensors:
    ``-(||achieved - desired|| > distance_threshold)`` for ``"sparse"``, ``-||achieved - desired||`` for
    ``"dense"`` (``fetch_env.py``, ``MujocoFetchEnv.compute_reward``). Passed as
    ``compute_reward=FetchReward(...)`` to :class:`OfflineHerReplayBuffer`, it replaces the call to
    ``env.compute_reward`` (numpy, on the host) so that sampling a batch never leaves the device.

    :param distance_threshold: the env's ``distance_threshold`` (0.05 in every Fetch task)
    :param reward_type: the env's ``reward_type``, ``"sparse"`` or ``"dense"``
    """

    def __init__(self, distance_threshold: float = 0.05, reward_type: str = "sparse") -> None:
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type: expected 'sparse' or 'dense', found {reward_type!r}")
        self.distance_threshold = float(distance_threshold)
        self.reward_type = reward_type

    @classmethod
    def from_env(cls, env: gym.Env | VecEnv) -> FetchReward:
        """Read ``distance_threshold`` and ``reward_type`` from a Fetch env (or the first env of a VecEnv)."""
        try:
            if isinstance(env, VecEnv):
                threshold, reward_type = (
                    env.get_attr(name, indices=[0])[0] for name in ("distance_threshold", "reward_type")
                )
            else:
                threshold, reward_type = (env.get_wrapper_attr(name) for name in ("distance_threshold", "reward_type"))
        except AttributeError as error:
            raise ValueError(
                f"env: expected a Fetch env (attributes 'distance_threshold' and 'reward_type'), found {env!r}"
            ) from error
        return cls(float(threshold), str(reward_type))

    def __call__(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        distance = th.linalg.vector_norm(achieved_goal - desired_goal, dim=-1)
        if self.reward_type == "sparse":
            return -(distance > self.distance_threshold).to(th.float32)
        return -distance

    def __repr__(self) -> str:
        return f"FetchReward(distance_threshold={self.distance_threshold}, reward_type={self.reward_type!r})"


def _episode_index(transitions: Transitions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the row of its episode's first transition, the episode's length, and its step in it."""
    starts, lengths = episode_bounds(transitions.episode_ends)
    start = np.repeat(starts, lengths)
    return start, np.repeat(lengths, lengths), np.arange(len(transitions), dtype=np.int64) - start


def _check_goal_continuity(transitions: Transitions) -> None:
    """Inside an episode, row ``i + 1`` must start where row ``i`` ended (HER draws goals along the episode)."""
    observations, next_observations = transitions.observations, transitions.next_observations
    assert isinstance(observations, dict) and isinstance(next_observations, dict)
    inside = ~transitions.episode_ends[:-1]  # row i and row i + 1 are in the same episode
    for key in GOAL_KEYS:
        following = np.asarray(observations[key][1:], dtype=np.float32)[inside]
        reached = np.asarray(next_observations[key][:-1], dtype=np.float32)[inside]
        close = np.isclose(following, reached, rtol=1e-5, atol=1e-6).reshape(len(following), -1).all(axis=1)
        if not close.all():
            row = int(np.flatnonzero(inside)[np.flatnonzero(~close)[0]])
            raise DatasetValidationError(
                transitions.source,
                f"observations/{key}",
                f"row {row + 1} equal to next_observations/{key} of row {row} (the same episode)",
                f"{np.asarray(observations[key][row + 1])} vs {np.asarray(next_observations[key][row])}",
                hint="HER needs whole episodes in order: are episode ends (terminations/truncations) missing?",
            )
