"""The buffer's episodes: an id per row, the dataset's starts and lengths, and returns-to-go cached per discount."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import torch as th

from sb3_offline.common.episodes import discounted_returns_to_go, episode_bounds


def reference_returns(
    rewards: np.ndarray, episode_ends: np.ndarray, gamma: float, failure_reward: float | None = None
) -> np.ndarray:
    """
    :func:`~sb3_offline.common.episodes.discounted_returns_to_go`; with ``failure_reward``, Cal-QL's rule for sparse
    rewards (nakamotoo/Cal-QL ``JaxCQL/replay_buffer.py``, ``calc_return_to_go`` with ``is_sparse_reward``): an
    episode whose every reward equals ``failure_reward`` (compared in float32, as stored) gets
    ``failure_reward / (1 - gamma)`` at every step. ``(N,)`` float64.
    """
    values = discounted_returns_to_go(rewards, episode_ends, gamma)
    if failure_reward is None or len(values) == 0:
        return values
    starts, lengths = episode_bounds(np.asarray(episode_ends, dtype=bool))
    failed = np.asarray(rewards, dtype=np.float32).reshape(-1) == np.float32(failure_reward)
    values[np.repeat(np.logical_and.reduceat(failed, starts), lengths)] = failure_reward / (1.0 - gamma)
    return values


class EpisodeIndex:
    """
    The dataset's episodes are its contiguous runs of rows closed by a termination or a truncation (a last run no
    flag closes ends with the data): ``episode_ids`` (one per row, ``-1`` on online rows not yet written),
    ``episode_starts`` / ``episode_lengths`` (dataset episodes only) and ``n_episodes``. Online rows continue the
    numbering: each env's stream of rows is its own sequence of episodes (a new id when an env starts one; with
    ``n_envs > 1`` the envs' rows interleave in the ring). When the ring wraps, a row's new transition overwrites
    the old one *and its episode id*: an old episode keeps only the rows not yet overwritten.

    Returns-to-go (:meth:`returns_to_go`, cached per ``gamma`` and sparse-reward rule) exist for the dataset's rows
    and for the rows of ended online episodes (``rtg_valid``); :meth:`track` fills an ended episode's in every cached
    tensor in place (the tensors are never replaced but by :meth:`grow` and :meth:`to`, so a captured CUDA graph sees
    new episodes).

    :param capacity: rows
    :param n_envs: envs adding online rows at once
    :param device: where the tensors live
    """

    def __init__(self, capacity: int, n_envs: int, device: th.device) -> None:
        self.n_envs = n_envs
        self.device = device
        self.episode_ids = th.full((capacity,), -1, dtype=th.int64, device=device)
        self.rtg_valid = th.zeros((capacity, 1), dtype=th.bool, device=device)
        self.episode_starts = th.zeros(0, dtype=th.int64, device=device)
        self.episode_lengths = th.zeros(0, dtype=th.int64, device=device)
        self.n_episodes = 0
        self.dataset_size = 0
        self._rtg_cache: dict[tuple[float, float | None], th.Tensor] = {}
        self.reset_online(ring_rows_per_env=0)

    def index_dataset(self, episode_ends: np.ndarray) -> None:
        """Index the dataset's rows (the first ``len(episode_ends)``), closed by ``episode_ends``."""
        starts, lengths = episode_bounds(np.asarray(episode_ends, dtype=bool))
        self.dataset_size = len(episode_ends)
        self.n_episodes = len(starts)
        self.episode_starts = th.as_tensor(starts, device=self.device)
        self.episode_lengths = th.as_tensor(lengths, device=self.device)
        ids = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
        self.episode_ids[: self.dataset_size] = th.as_tensor(ids, device=self.device)
        self.rtg_valid[: self.dataset_size] = True
        self._next_episode_id = self.n_episodes

    def reset_online(self, ring_rows_per_env: int) -> None:
        """No online episode: ids restart after the dataset's, every online row is unwritten (id -1)."""
        self._next_episode_id = self.n_episodes
        self._open_episode = np.full(self.n_envs, -1, dtype=np.int64)  # per env: its running episode, -1: none
        # per env: (row, transformed reward) of its running episode's steps still in the ring (the older ones were
        # overwritten by its own later steps; a return-to-go needs only later rewards)
        self.open_steps: list[deque[tuple[int, float]]] = [
            deque(maxlen=max(ring_rows_per_env, 1)) for _ in range(self.n_envs)
        ]
        self.episode_ids[self.dataset_size :] = -1
        self.rtg_valid[self.dataset_size :] = False
        for cached in self._rtg_cache.values():
            cached[self.dataset_size :] = 0.0

    @property
    def n_online_episodes(self) -> int:
        """Online episodes begun since the buffer was made (or reset); their ids follow the dataset's."""
        return self._next_episode_id - self.n_episodes

    def track(self, start: int, rewards: np.ndarray, ends: np.ndarray) -> None:
        """Episode ids of the ``n_envs`` rows just written from ``start``; close the episodes that ended."""
        starting = self._open_episode < 0
        self._open_episode[starting] = self._next_episode_id + np.arange(int(starting.sum()))
        self._next_episode_id += int(starting.sum())
        rows = slice(start, start + self.n_envs)
        self.episode_ids[rows] = th.as_tensor(self._open_episode, device=self.device)
        self.rtg_valid[rows] = False
        for cached in self._rtg_cache.values():
            cached[rows] = 0.0
        for env_idx in range(self.n_envs):
            self.open_steps[env_idx].append((start + env_idx, float(rewards[env_idx])))
        for ended in np.flatnonzero(ends):
            self.finish(int(ended))

    def finish(self, env_idx: int) -> None:
        """Env ``env_idx``'s episode ended: write its returns-to-go (every cached gamma), mark them valid."""
        steps = self.open_steps[env_idx]
        self._open_episode[env_idx] = -1
        if not steps:
            return
        rows = th.as_tensor([row for row, _ in steps], dtype=th.int64, device=self.device)
        rewards = np.array([reward for _, reward in steps], dtype=np.float64)
        ends = np.zeros(len(rewards), dtype=bool)
        for (gamma, failure_reward), cached in self._rtg_cache.items():
            values = reference_returns(rewards, ends, gamma, failure_reward).astype(np.float32)
            cached[rows, 0] = th.as_tensor(values, device=self.device)
        self.rtg_valid[rows] = True
        steps.clear()

    def truncate_running(self, timeouts: th.Tensor) -> None:
        """End the online episodes still running as time-limit truncations (``timeouts`` of their last rows set)."""
        for env_idx, steps in enumerate(self.open_steps):
            if steps:
                timeouts[steps[-1][0]] = 1.0
                self.finish(env_idx)

    def returns_to_go(
        self,
        gamma: float,
        rewards: th.Tensor,
        ends: th.Tensor,
        stream_rows: Callable[[int], np.ndarray],
        failure_reward: float | None = None,
    ) -> th.Tensor:
        """
        Discounted returns-to-go of every row, ``(rows, 1)`` float32, from the stored (transformed) ``rewards`` and
        ``ends`` (termination or truncation) within each episode: ``G_t = r_t + gamma * G_{t+1}``, backwards; a
        termination, a time-limit cut or the end of the data ends the sum, with nothing added for unseen steps (as
        Cal-QL's ``calc_return_to_go``, nakamotoo/Cal-QL ``JaxCQL/replay_buffer.py``); with ``failure_reward``, its
        sparse-reward rule (:func:`reference_returns`). ``stream_rows(env)`` gives the online rows env ``env`` wrote,
        oldest first. Cached per ``(gamma, failure_reward)``: the first call reads the rewards back from the device
        (a host sync); :meth:`track` keeps the tensor up to date in place, :meth:`grow` resizes it in place.
        """
        cached = self._rtg_cache.get((gamma, failure_reward))
        if cached is not None:
            return cached
        values = np.zeros(len(rewards), dtype=np.float64)
        rewards_np, ends_np = rewards[:, 0].cpu().numpy(), ends.cpu().numpy()
        n = self.dataset_size
        values[:n] = reference_returns(rewards_np[:n], ends_np[:n], gamma, failure_reward)
        for env_idx in range(self.n_envs):
            rows = stream_rows(env_idx)
            values[rows] = reference_returns(rewards_np[rows], ends_np[rows], gamma, failure_reward)
        values[~self.rtg_valid[:, 0].cpu().numpy()] = 0.0  # running online episodes (their tails end with the stream)
        # a tensor of its own (resizable: grow keeps it the same object when the online rows are made)
        cached = th.tensor(values.astype(np.float32).reshape(-1, 1), device=self.device)
        self._rtg_cache[(gamma, failure_reward)] = cached
        return cached

    def grow(self, capacity: int) -> None:
        """
        Extend the per-row tensors to ``capacity`` rows (new rows: id -1, no return-to-go); each cached
        returns-to-go tensor is resized in place, so that what :meth:`returns_to_go` returned stays up to date.
        """
        rows = len(self.episode_ids)
        extra = capacity - rows
        self.episode_ids = th.cat([self.episode_ids, th.full((extra,), -1, dtype=th.int64, device=self.device)])
        self.rtg_valid = th.cat([self.rtg_valid, th.zeros((extra, 1), dtype=th.bool, device=self.device)])
        for cached in self._rtg_cache.values():
            cached.resize_(capacity, 1)
            cached[rows:] = 0.0

    def to(self, device: th.device) -> None:
        """Move every tensor to ``device``."""
        self.episode_ids, self.rtg_valid = self.episode_ids.to(device), self.rtg_valid.to(device)
        self.episode_starts, self.episode_lengths = self.episode_starts.to(device), self.episode_lengths.to(device)
        self._rtg_cache = {key: cached.to(device) for key, cached in self._rtg_cache.items()}
        self.device = device
