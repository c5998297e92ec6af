"""The held-out episodes the offline metrics (:mod:`sb3_offline.ope.metrics`) read, as tensors on a device."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.episodes import episode_returns
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.ope.evaluation_policy import TensorObs


class HeldOutEpisodes:
    """
    Held-out episodes as tensors on a device: the rows of an :class:`~sb3_offline.buffers.OfflineReplayBuffer`
    built from them (validated against the spaces, actions in [-1, 1], raw rewards, terminations and timeouts
    apart, its episode index).

    - ``observations``, ``next_observations``: the buffer's (a dict of tensors for ``Dict`` spaces);
    - ``actions``: ``(rows, action_dim)`` in [-1, 1];
    - ``rewards``: ``(rows,)`` raw rewards;
    - ``terminations``: ``(rows,)`` 1.0 where the episode ended (no bootstrapping); a timeout is 0;
    - ``episode_ends``: ``(rows,)`` bool, the rows that close an episode (termination or timeout);
    - ``episode_starts``: ``(n_episodes,)`` the first row of each episode.

    :param buffer: the buffer holding the episodes (no reward transform)
    """

    def __init__(self, buffer: OfflineReplayBuffer) -> None:
        self.buffer = buffer
        self.n_rows: int = buffer.dataset_size
        self.n_episodes: int = buffer.n_episodes
        self.observations: TensorObs = buffer.observations
        self.next_observations: TensorObs = buffer.next_observations
        self.actions: th.Tensor = buffer.actions
        self.rewards: th.Tensor = buffer.rewards[:, 0]
        self.terminations: th.Tensor = buffer.dones[:, 0]
        self.episode_ends: th.Tensor = (buffer.dones[:, 0] > 0) | (buffer.timeouts[:, 0] > 0)
        self.episode_starts: th.Tensor = buffer.episode_starts

    @classmethod
    def from_source(
        cls,
        source: DatasetSource | HeldOutEpisodes,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Any,
    ) -> HeldOutEpisodes:
        """Read (and validate) held-out episodes from any dataset source onto ``device``."""
        if isinstance(source, HeldOutEpisodes):
            return source
        buffer = OfflineReplayBuffer(0, observation_space, action_space, device=device, dataset=source)
        return cls(buffer)

    @property
    def discrete(self) -> bool:
        """Whether the actions are the indices of a ``Discrete`` space."""
        return isinstance(self.buffer.action_space, spaces.Discrete)

    @cached_property
    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode (raw rewards)."""
        return episode_returns(self.rewards.cpu().numpy(), self.episode_ends.cpu().numpy())

    def episode_rewards(self, episode: int) -> np.ndarray:
        """Raw rewards of one episode, in order."""
        start = int(self.buffer.episode_starts[episode])
        length = int(self.buffer.episode_lengths[episode])
        return self.rewards[start : start + length].cpu().numpy()

    def env_actions(self, actions: th.Tensor) -> th.Tensor:
        """[-1, 1] -> the action Box's units, ``(rows, action_dim)``."""
        space = self.buffer.action_space
        assert isinstance(space, spaces.Box)
        low = th.as_tensor(space.low.reshape(-1), dtype=th.float32, device=actions.device)
        high = th.as_tensor(space.high.reshape(-1), dtype=th.float32, device=actions.device)
        return low + 0.5 * (actions + 1.0) * (high - low)


__all__ = ["HeldOutEpisodes"]
