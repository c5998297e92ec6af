"""
Replay buffers of stable-baselines3 (``ReplayBuffer`` / ``DictReplayBuffer``), in memory or pickled by
``model.save_replay_buffer(path)``, read into :class:`~sb3_offline.datasets.transitions.Transitions`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_offline.datasets.files import EXPECTED_PKL, existing_file, reading_dataset_file
from sb3_offline.datasets.transitions import FIELD_NAMES, Observations, Transitions
from sb3_offline.datasets.validation import DatasetValidationError


def unscale_action(action_space: spaces.Box, scaled: np.ndarray) -> np.ndarray:
    """Map actions from SB3's [-1, 1] buffer convention back to the Box's units."""
    low, high = action_space.low, action_space.high
    return low + 0.5 * (scaled + 1.0) * (high - low)


def load_sb3_replay_buffer(
    path: str | os.PathLike, action_space: spaces.Space | None = None, actions_scaled: bool = True
) -> Transitions:
    """
    Read an SB3 ``ReplayBuffer``/``DictReplayBuffer`` saved with ``model.save_replay_buffer(path)``.

    SB3's off-policy algorithms (DDPG, TD3, SAC, TQC, ...) store Box actions rescaled to [-1, 1];
    with ``actions_scaled=True`` (default) they are mapped back to the env's units with ``action_space``.
    DQN and QR-DQN store a ``Discrete`` space's action indices as they are: they are kept.
    A done that SB3 flagged as a time-limit timeout is a truncation, any other done a termination.
    A file that is not such a pickle (or is cut short) raises :class:`DatasetValidationError`.
    """
    from stable_baselines3.common.save_util import load_from_pkl

    file = existing_file(path, suffix=".pkl")
    with reading_dataset_file(file, EXPECTED_PKL, str(path)):
        buffer = load_from_pkl(file)
    return transitions_from_replay_buffer(
        buffer, action_space, actions_scaled=actions_scaled, source=str(path), copy=False
    )


def _rows_oldest_first(buffer: Any, optimize: bool) -> np.ndarray:
    """The rows of an SB3 buffer that hold transitions, oldest first."""
    rows = (
        np.arange(buffer.pos, buffer.buffer_size).tolist() + np.arange(0, buffer.pos).tolist()
        if buffer.full
        else list(range(buffer.pos))
    )
    if optimize and buffer.full:
        # With optimize_memory_usage, row `pos` was overwritten by the next observation of row pos - 1.
        rows = [r for r in rows if r != buffer.pos]
    return np.asarray(rows, dtype=np.int64)


def transitions_from_replay_buffer(
    buffer: Any,
    action_space: spaces.Space | None = None,
    actions_scaled: bool = True,
    source: str = "<replay buffer>",
    copy: bool = True,
) -> Transitions:
    """
    The transitions held by an in-memory SB3 ``ReplayBuffer``/``DictReplayBuffer`` (e.g. ``model.replay_buffer``
    of a trained DDPG/TD3/SAC), oldest first; see :func:`load_sb3_replay_buffer` for the conventions.

    :param copy: ``False``: where the rows are one contiguous run of one env's, the observations and rewards
        are views of the buffer's arrays (for a buffer nothing else uses, e.g. one just unpickled)
    """
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

    if actions_scaled and not isinstance(action_space, spaces.Box | spaces.Discrete):
        raise ValueError(
            f"{source}: field 'action_space': expected the env's Box (SB3 buffers hold actions rescaled to [-1, 1], "
            f"mapped back with it) or Discrete (indices, kept), found {action_space!r}; or pass actions_scaled=False"
        )
    if isinstance(buffer, HerReplayBuffer):
        raise DatasetValidationError(
            source,
            "",
            "an SB3 ReplayBuffer or DictReplayBuffer",
            "a HerReplayBuffer",
            hint="Its transitions are relabelled at sampling time; load it with model.load_replay_buffer",
        )
    if not isinstance(buffer, ReplayBuffer | DictReplayBuffer):
        raise DatasetValidationError(
            source, "", "an SB3 ReplayBuffer or DictReplayBuffer", f"a pickled {type(buffer).__name__}"
        )

    size = buffer.buffer_size
    optimize = bool(getattr(buffer, "optimize_memory_usage", False))
    rows_arr = _rows_oldest_first(buffer, optimize)
    n_envs = buffer.n_envs
    one_run = len(rows_arr) > 0 and bool(np.all(np.diff(rows_arr) == 1))

    def flatten(array: np.ndarray) -> np.ndarray:
        if not copy and n_envs == 1 and one_run:
            return array[rows_arr[0] : rows_arr[-1] + 1, 0]  # a view
        # (rows, n_envs, ...) -> env-major, so each env's episodes stay contiguous
        picked = array[rows_arr]
        return np.concatenate([picked[:, e] for e in range(n_envs)], axis=0)

    def next_rows(array: np.ndarray) -> np.ndarray:
        return array[(rows_arr + 1) % size]

    if isinstance(buffer, DictReplayBuffer):
        observations: Observations = {k: flatten(v) for k, v in buffer.observations.items()}
        next_observations: Observations = {k: flatten(v) for k, v in buffer.next_observations.items()}
    else:
        observations = flatten(buffer.observations)
        if optimize:
            next_obs = buffer.observations[(rows_arr + 1) % size]
            next_observations = np.concatenate([next_obs[:, e] for e in range(n_envs)], axis=0)
        else:
            next_observations = flatten(buffer.next_observations)
    actions = flatten(buffer.actions)
    if actions_scaled and isinstance(action_space, spaces.Box):
        actions = unscale_action(action_space, actions.reshape(len(actions), *action_space.shape))
    dones = flatten(buffer.dones).astype(bool)
    timeouts = flatten(buffer.timeouts).astype(bool) if hasattr(buffer, "timeouts") else np.zeros_like(dones)
    terminations, truncations = dones & ~timeouts, dones & timeouts
    # Each env's stream stops where the buffer stops: its last transition closes an episode (as a
    # truncation; it still bootstraps from its stored next observation), so env streams never merge.
    stream = len(rows_arr)
    if stream:
        last = np.arange(1, n_envs + 1) * stream - 1
        truncations[last] |= ~terminations[last]
    return Transitions(
        observations=observations,
        actions=actions,
        rewards=flatten(buffer.rewards),
        next_observations=next_observations,
        terminations=terminations,
        truncations=truncations,
        source=source,
        metadata={FIELD_NAMES: {"terminations": "dones", "truncations": "timeouts"}},
    )


__all__ = ["load_sb3_replay_buffer", "transitions_from_replay_buffer", "unscale_action"]
