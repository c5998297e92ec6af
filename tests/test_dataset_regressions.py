"""Regression tests for dataset bugs found in review: each failed before its fix."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.save_util import save_to_pkl

from sb3_offline import OfflineReplayBuffer
from sb3_offline.datasets import (
    DatasetValidationError,
    Transitions,
    load_hdf5,
    load_minari,
    load_sb3_replay_buffer,
    load_transitions,
    record_transitions,
    save_hdf5,
    save_minari,
    validate_transitions,
)


def test_short_rewards_without_next_observations(
    tmp_path: Path, pendulum_transitions: Transitions, pendulum_env: gym.Env
) -> None:
    t = pendulum_transitions
    path = tmp_path / "short.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = t.observations
        f["actions"] = t.actions
        f["rewards"] = t.rewards[:-1]
        f["terminals"] = t.terminations
        f["timeouts"] = t.truncations
    with pytest.raises(DatasetValidationError, match="field 'rewards'"):
        OfflineReplayBuffer(0, pendulum_env.observation_space, pendulum_env.action_space, device="cpu", dataset=path)


def test_derived_transitions_keep_episode_boundaries(tmp_path: Path, pendulum_transitions: Transitions) -> None:
    save_hdf5(pendulum_transitions, tmp_path / "a.hdf5", next_observations=False)
    derived = load_hdf5(tmp_path / "a.hdf5")
    assert len(derived.episode_slices()) == 5
    save_minari(derived, "test/derived-v0")
    np.testing.assert_array_equal(load_minari("test/derived-v0").next_observations, derived.next_observations)


def test_multi_env_sb3_buffer_streams_stay_apart(tmp_path: Path, pendulum_env: gym.Env) -> None:
    a = record_transitions("Pendulum-v1", 150, seed=0)
    b = record_transitions("Pendulum-v1", 150, seed=1)
    buf = ReplayBuffer(1000, pendulum_env.observation_space, pendulum_env.action_space, device="cpu", n_envs=2)
    for i in range(150):
        buf.add(
            np.stack([a.observations[i], b.observations[i]]),  # type: ignore[index]
            np.stack([a.next_observations[i], b.next_observations[i]]),  # type: ignore[index]
            np.stack([a.actions[i] / 2, b.actions[i] / 2]),
            np.array([a.rewards[i], b.rewards[i]]),
            np.array([False, False]),
            [{}, {}],
        )
    save_to_pkl(tmp_path / "b.pkl", buf)
    t = load_sb3_replay_buffer(tmp_path / "b.pkl", pendulum_env.action_space)
    assert [(s.start, s.stop) for s in t.episode_slices()] == [(0, 150), (150, 300)]
    assert not t.terminations.any()
    save_minari(t, "test/two-envs-v0", env="Pendulum-v1")
    np.testing.assert_array_equal(load_minari("test/two-envs-v0").next_observations[149], a.next_observations[149])  # type: ignore[index]


def test_sb3_buffer_needs_action_space_to_unscale(tmp_path: Path, pendulum_env: gym.Env) -> None:
    buf = ReplayBuffer(10, pendulum_env.observation_space, pendulum_env.action_space, device="cpu")
    obs = np.zeros((1, 3), dtype=np.float32)
    buf.add(obs, obs, np.ones((1, 1)), np.zeros(1), np.zeros(1), [{}])
    save_to_pkl(tmp_path / "c.pkl", buf)
    with pytest.raises(ValueError, match="action_space"):
        load_transitions(tmp_path / "c.pkl")
    assert load_transitions(tmp_path / "c.pkl", action_space=pendulum_env.action_space).actions[0, 0] == 2.0


def test_validation_error_pickles(pendulum_transitions: Transitions, pendulum_env: gym.Env) -> None:
    with pytest.raises(DatasetValidationError) as info:
        validate_transitions(
            pendulum_transitions.select(np.arange(0)), pendulum_env.observation_space, pendulum_env.action_space
        )
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value) and copy.field == "actions"


def test_saved_file_mode_follows_umask(tmp_path: Path, pendulum_transitions: Transitions) -> None:
    path = save_hdf5(pendulum_transitions, tmp_path / "d.hdf5")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
