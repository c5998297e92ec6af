"""Checks on recorded transitions shared by the dataset tests: copies, equality, SB3 buffers filled as SB3 does."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from sb3_offline import OfflineReplayBuffer
from sb3_offline.datasets import Transitions


def copy_rows(transitions: Transitions, rows=None) -> Transitions:
    """A deep copy (fancy indexing copies) of some rows, safe to mutate."""
    if rows is None:
        rows = np.arange(len(transitions))
    elif isinstance(rows, int):
        rows = np.arange(rows)
    return transitions.select(np.asarray(rows, dtype=np.int64))


def assert_obs_equal(found, expected) -> None:
    if isinstance(expected, dict):
        assert isinstance(found, dict)
        assert set(found) == set(expected)
        for key in expected:
            np.testing.assert_array_equal(found[key], expected[key], err_msg=key)
    else:
        assert not isinstance(found, dict)
        np.testing.assert_array_equal(found, expected)


def assert_transitions_equal(found: Transitions, expected: Transitions, action_atol: float = 0.0) -> None:
    assert len(found) == len(expected)
    assert_obs_equal(found.observations, expected.observations)
    assert_obs_equal(found.next_observations, expected.next_observations)
    if action_atol:
        np.testing.assert_allclose(found.actions, expected.actions, rtol=0, atol=action_atol)
    else:
        np.testing.assert_array_equal(found.actions, expected.actions)
    np.testing.assert_array_equal(np.asarray(found.rewards).reshape(-1), expected.rewards)
    np.testing.assert_array_equal(np.asarray(found.terminations, dtype=bool), expected.terminations)
    np.testing.assert_array_equal(np.asarray(found.truncations, dtype=bool), expected.truncations)


def obs_row(observations, i: int):
    if isinstance(observations, dict):
        return {key: value[i] for key, value in observations.items()}
    return observations[i]


def make_sb3_buffer(transitions: Transitions, buffer_size: int, observation_space, action_space):
    """An SB3 (Dict)ReplayBuffer filled the way SB3's off-policy algorithms fill it (actions in [-1, 1])."""
    is_dict = isinstance(transitions.observations, dict)
    cls = DictReplayBuffer if is_dict else ReplayBuffer
    buffer = cls(buffer_size, observation_space, action_space, device="cpu", handle_timeout_termination=True)
    low, high = action_space.low, action_space.high
    for i in range(len(transitions)):
        obs, next_obs = obs_row(transitions.observations, i), obs_row(transitions.next_observations, i)
        if is_dict:
            obs = {key: value[None] for key, value in obs.items()}
            next_obs = {key: value[None] for key, value in next_obs.items()}
        else:
            obs, next_obs = obs[None], next_obs[None]
        scaled = 2.0 * (transitions.actions[i] - low) / (high - low) - 1.0
        terminated, truncated = bool(transitions.terminations[i]), bool(transitions.truncations[i])
        buffer.add(
            obs,
            next_obs,
            scaled[None],
            np.array([transitions.rewards[i]]),
            np.array([terminated or truncated]),
            [{"TimeLimit.truncated": truncated and not terminated}],
        )
    return buffer


def expected_derived(transitions: Transitions):
    """The rows a loader must keep when it derives next observations, and whether each is a termination."""
    keep = ~(transitions.truncations & ~transitions.terminations)
    if not transitions.terminations[-1]:
        keep[-1] = False
    return np.flatnonzero(keep)


def offline_buffer(transitions_or_source, observation_space, action_space, **kwargs) -> OfflineReplayBuffer:
    return OfflineReplayBuffer(
        0, observation_space, action_space, device="cpu", dataset=transitions_or_source, **kwargs
    )
