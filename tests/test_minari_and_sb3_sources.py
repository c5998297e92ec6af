"""Minari datasets and SB3 replay buffers as sources (round trips, terminations, Dict observations, reference
scores, episode boundaries, several envs' streams), and sources that do not exist or are of no known kind."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.save_util import save_to_pkl
from transitions_checks import (
    assert_obs_equal,
    assert_transitions_equal,
    copy_rows,
    make_sb3_buffer,
    offline_buffer,
)

from sb3_offline.datasets import (
    DatasetNotFoundError,
    Transitions,
    dataset_env_id,
    load_hdf5,
    load_minari,
    load_sb3_replay_buffer,
    load_transitions,
    record_transitions,
    recover_env,
    save_hdf5,
    save_minari,
    validate_transitions,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


# ------------------------------------------------------------------------------------------ Minari
def test_minari_round_trip_by_id_folder_and_object(minari_datasets_path, pendulum_transitions):
    dataset = save_minari(pendulum_transitions, "test/pendulum-v0")
    assert dataset.spec.dataset_id == "test/pendulum-v0"
    folder = minari_datasets_path / "test" / "pendulum-v0"
    assert (folder / "data").is_dir()
    # nothing else is left beside the dataset (no staging folder)
    assert sorted(p.name for p in minari_datasets_path.iterdir()) == ["test"]

    for source in ("test/pendulum-v0", folder, str(folder), folder / "data", dataset):
        loaded = load_transitions(source)
        assert_transitions_equal(loaded, pendulum_transitions)
        assert loaded.env_id == "Pendulum-v1"
        assert loaded.source == "minari:test/pendulum-v0"
    assert len(load_minari("test/pendulum-v0").episode_slices()) == 5
    assert dataset_env_id("test/pendulum-v0") == "Pendulum-v1"
    env = recover_env("test/pendulum-v0")
    try:
        assert env.spec.id == "Pendulum-v1"
    finally:
        env.close()


def test_minari_round_trip_with_terminations(inverted_transitions):
    save_minari(inverted_transitions, "test/inverted-v0")
    loaded = load_minari("test/inverted-v0")
    assert_transitions_equal(loaded, inverted_transitions)
    assert loaded.env_id == "InvertedPendulum-v5"


def test_minari_dict_observations(fetch_transitions, fetch_env_spaces):
    save_minari(fetch_transitions, "test/fetch-v0")
    loaded = load_transitions("test/fetch-v0")
    assert_transitions_equal(loaded, fetch_transitions)
    validate_transitions(loaded, *fetch_env_spaces)


def test_minari_reference_scores(pendulum_transitions):
    data = copy_rows(pendulum_transitions, 200)
    save_minari(data, "test/scores-v0", ref_min_score=-1500.0, ref_max_score=-100.0)
    loaded = load_minari("test/scores-v0")
    assert loaded.metadata["ref_min_score"] == pytest.approx(-1500.0)
    assert loaded.metadata["ref_max_score"] == pytest.approx(-100.0)
    assert loaded.metadata["dataset_id"] == "test/scores-v0"


def test_minari_unclosed_last_episode_is_written_as_truncated(pendulum_transitions):
    data = copy_rows(pendulum_transitions, 150)  # stops mid-episode, no flag at all
    assert not data.episode_ends.any()
    save_minari(data, "test/partial-v0")
    loaded = load_minari("test/partial-v0")
    assert len(loaded) == 150
    assert_obs_equal(loaded.observations, data.observations)
    assert_obs_equal(loaded.next_observations, data.next_observations)
    assert loaded.truncations[-1] and loaded.truncations.sum() == 1


def test_save_minari_existing_id_needs_overwrite(pendulum_transitions):
    save_minari(copy_rows(pendulum_transitions, 200), "test/exists-v0")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_minari(copy_rows(pendulum_transitions, 400), "test/exists-v0")
    assert len(load_minari("test/exists-v0")) == 200
    save_minari(copy_rows(pendulum_transitions, 400), "test/exists-v0", overwrite=True)
    assert_transitions_equal(load_minari("test/exists-v0"), copy_rows(pendulum_transitions, 400))


def test_save_minari_needs_an_env(pendulum_transitions):
    data = copy_rows(pendulum_transitions, 200)
    data.env_id = None
    with pytest.raises(ValueError, match="env"):
        save_minari(data, "test/noenv-v0")
    save_minari(data, "test/withenv-v0", env="Pendulum-v1")
    assert load_minari("test/withenv-v0").env_id == "Pendulum-v1"


def test_save_minari_failure_leaves_nothing_behind(minari_datasets_path, pendulum_transitions):
    import minari

    save_minari(copy_rows(pendulum_transitions, 200), "test/keep-v0")
    before = sorted(p.relative_to(minari_datasets_path) for p in minari_datasets_path.rglob("*"))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    # a separate MonkeyPatch, so that undoing it keeps the autouse MINARI_DATASETS_PATH
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(minari, "create_dataset_from_buffers", boom)
        with pytest.raises(RuntimeError, match="disk full"):
            save_minari(copy_rows(pendulum_transitions, 400), "test/keep-v0", overwrite=True)
        with pytest.raises(RuntimeError, match="disk full"):
            save_minari(copy_rows(pendulum_transitions, 400), "test/new-v0")
    after = sorted(p.relative_to(minari_datasets_path) for p in minari_datasets_path.rglob("*"))
    assert after == before
    assert os.environ["MINARI_DATASETS_PATH"] == str(minari_datasets_path)
    assert len(load_minari("test/keep-v0")) == 200


# --------------------------------------------------------------------------------- SB3 replay buffers
def test_sb3_replay_buffer_round_trip(tmp_path, pendulum_transitions, pendulum_env):
    buffer = make_sb3_buffer(pendulum_transitions, 2000, pendulum_env.observation_space, pendulum_env.action_space)
    # SB3 stores Pendulum's [-2, 2] actions rescaled to [-1, 1]
    np.testing.assert_allclose(buffer.actions[:1000, 0], pendulum_transitions.actions / 2, atol=1e-6)
    path = tmp_path / "buffer.pkl"
    save_to_pkl(path, buffer)

    loaded = load_sb3_replay_buffer(path, pendulum_env.action_space)
    assert_transitions_equal(loaded, pendulum_transitions, action_atol=1e-5)
    assert loaded.truncations.sum() == 5
    assert not loaded.terminations.any()
    # the dispatcher passes the action space through
    assert_transitions_equal(
        load_transitions(path, action_space=pendulum_env.action_space), pendulum_transitions, action_atol=1e-5
    )
    # not rescaled on request
    raw = load_sb3_replay_buffer(path, pendulum_env.action_space, actions_scaled=False)
    np.testing.assert_allclose(raw.actions, pendulum_transitions.actions / 2, atol=1e-6)

    # into the offline buffer: back to [-1, 1] there
    offline = offline_buffer(path, pendulum_env.observation_space, pendulum_env.action_space)
    assert offline.size() == 1000
    np.testing.assert_allclose(offline.actions.numpy(), pendulum_transitions.actions / 2, atol=1e-5)
    np.testing.assert_array_equal(offline.timeouts[:, 0].numpy(), pendulum_transitions.truncations)


def test_sb3_replay_buffer_with_terminations(tmp_path, inverted_transitions, inverted_env_spaces):
    obs_space, act_space = inverted_env_spaces
    buffer = make_sb3_buffer(inverted_transitions, 1000, obs_space, act_space)
    path = tmp_path / "inverted.pkl"
    save_to_pkl(path, buffer)
    loaded = load_sb3_replay_buffer(path, act_space)
    assert_transitions_equal(loaded, inverted_transitions, action_atol=1e-5)


def test_sb3_full_circular_replay_buffer(tmp_path, pendulum_transitions, pendulum_env):
    buffer = make_sb3_buffer(pendulum_transitions, 300, pendulum_env.observation_space, pendulum_env.action_space)
    assert buffer.full and buffer.pos == 100
    path = tmp_path / "full.pkl"
    save_to_pkl(path, buffer)
    loaded = load_transitions(path, action_space=pendulum_env.action_space)
    # the 300 most recent transitions, oldest first
    assert_transitions_equal(loaded, pendulum_transitions.select(slice(700, 1000)), action_atol=1e-5)


def test_sb3_dict_replay_buffer(tmp_path, fetch_transitions, fetch_env_spaces):
    obs_space, act_space = fetch_env_spaces
    buffer = make_sb3_buffer(fetch_transitions, 200, obs_space, act_space)
    path = tmp_path / "fetch.pkl"
    save_to_pkl(path, buffer)
    loaded = load_sb3_replay_buffer(path, act_space)
    assert_transitions_equal(loaded, fetch_transitions, action_atol=1e-6)
    offline = offline_buffer(path, obs_space, act_space)
    assert offline.size() == 120


def test_sb3_pickle_of_something_else_raises(tmp_path):
    path = tmp_path / "other.pkl"
    save_to_pkl(path, {"not": "a buffer"})
    with pytest.raises(ValueError, match="ReplayBuffer"):
        load_sb3_replay_buffer(path, actions_scaled=False)


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


# -------------------------------------------------------------------------------- missing sources
def test_missing_file_raises_dataset_not_found(tmp_path, pendulum_env):
    for name in ("nope.hdf5", "nope.h5", "nope.npz", "nope.pkl"):
        with pytest.raises(DatasetNotFoundError, match="no such file"):
            load_transitions(tmp_path / name)
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        offline_buffer(str(tmp_path / "nope.hdf5"), pendulum_env.observation_space, pendulum_env.action_space)
    # still a FileNotFoundError for callers that catch that
    with pytest.raises(FileNotFoundError):
        load_transitions(tmp_path / "nope.npz")


def test_unknown_minari_id_raises_dataset_not_found(minari_datasets_path, pendulum_transitions):
    with pytest.raises(DatasetNotFoundError, match=r"'test/unknown-v0' is not in the local Minari folder") as info:
        load_transitions("test/unknown-v0")
    assert "download=True" in str(info.value)
    assert str(minari_datasets_path) in str(info.value)
    # the message lists what is there
    save_minari(copy_rows(pendulum_transitions, 200), "test/present-v0")
    with pytest.raises(DatasetNotFoundError, match="test/present-v0"):
        load_minari("test/absent-v0")


def test_unrecognised_source_raises(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Minari id"):
        load_transitions("not-a-dataset")
    text = tmp_path / "data.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"suffix '\.txt'"):
        load_transitions(text)
    with pytest.raises(TypeError, match="dataset"):
        load_transitions(12345)
