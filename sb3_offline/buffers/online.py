"""The online rows after the dataset: a ring of ``capacity`` rows that ``n_envs`` envs fill a step at a time."""

from __future__ import annotations

import numpy as np
import torch as th


class OnlineRing:
    """
    Where online transitions go: rows ``dataset_size + pos``, ``n_envs`` per step, wrapping around (env ``e`` cycles
    through rows ``dataset_size + e + k * n_envs``); the dataset's rows are never overwritten.

    :param capacity: rows reserved for online transitions
    :param n_envs: envs adding a transition each per step
    :param dataset_size: the rows before the ring
    """

    def __init__(self, capacity: int, n_envs: int, dataset_size: int) -> None:
        if capacity < 0:
            raise ValueError(f"online_capacity: expected >= 0, found {capacity}")
        self.capacity = int(capacity)
        self.n_envs = n_envs
        self.dataset_size = dataset_size
        self.pos = 0
        self.full = False

    @property
    def rows_per_env(self) -> int:
        """Rows of the ring each env cycles through."""
        return self.capacity // self.n_envs

    @property
    def size(self) -> int:
        """Online rows that hold a transition."""
        return self.rows_per_env * self.n_envs if self.full else self.pos

    def reset(self) -> None:
        """Forget the online transitions."""
        self.pos = 0
        self.full = False

    def next_start(self) -> int:
        """The first of the ``n_envs`` rows the next step writes (``ValueError`` without room for one step)."""
        if self.capacity < self.n_envs:
            raise ValueError(
                f"online_capacity: expected at least n_envs={self.n_envs} rows for online transitions, found "
                f"{self.capacity}; give the algorithm buffer_size=... (the rows after the dataset for learn_online), "
                f"or replay_buffer_kwargs=dict(online_capacity=...) to a buffer made by hand"
            )
        return self.dataset_size + self.pos

    def advance(self) -> None:
        """A step was written: move on, wrapping when the next step would not fit."""
        self.pos += self.n_envs
        if self.pos + self.n_envs > self.capacity:
            self.full = True
            self.pos = 0

    def stream_rows(self, env_idx: int) -> np.ndarray:
        """The rows env ``env_idx`` has written and the ring still holds, oldest first."""
        n_written = self.rows_per_env if self.full else self.pos // self.n_envs
        slots = np.arange(n_written, dtype=np.int64)
        if self.full:
            slots = np.roll(slots, -(self.pos // self.n_envs))  # the next slot written is the oldest
        return self.dataset_size + slots * self.n_envs + env_idx

    def counts(self, running_lengths: list[int] | None) -> list[int]:
        """
        Per env, how many of its rows may be drawn: all it has written, or (``running_lengths``: the length of each
        env's running episode) those of ended episodes only.
        """
        if self.capacity < self.n_envs:
            return [0] * self.n_envs
        written = self.rows_per_env if self.full else self.pos // self.n_envs
        if running_lengths is None:
            return [written] * self.n_envs
        # an env's running episode is its newest rows: the others belong to ended episodes
        return [written - length for length in running_lengths]

    def rows(self, draws: th.Tensor, counts: list[int]) -> th.Tensor:
        """
        Draws in ``[0, sum(counts))`` -> rows: env by env (``counts[e]`` each), and within an env its ``counts[e]``
        oldest rows in the ring, oldest first (device arithmetic only).
        """
        env = th.zeros_like(draws)
        start = th.zeros_like(draws)
        boundary = 0
        for count in counts[:-1]:
            boundary += count
            later = (draws >= boundary).long()
            env = env + later
            start = start + later * count
        oldest = self.pos // self.n_envs if self.full else 0
        slot = (oldest + draws - start) % self.rows_per_env
        return self.dataset_size + slot * self.n_envs + env
