"""Dataset sources, validation, writers and the OfflineReplayBuffer, on data recorded from real envs."""

from __future__ import annotations

import dataclasses
import gc
import os
import re
import weakref
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch as th
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common import save_util as sb3_save_util
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.save_util import save_to_pkl
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples

from sb3_offline import OfflineReplayBuffer
from sb3_offline.datasets import (
    DatasetNotFoundError,
    DatasetValidationError,
    Transitions,
    dataset_env_id,
    derive_next_observations,
    load_d3rlpy,
    load_hdf5,
    load_imitation,
    load_minari,
    load_npz,
    load_sb3_replay_buffer,
    load_transitions,
    recover_env,
    save_d3rlpy,
    save_hdf5,
    save_minari,
    save_npz,
    source_format,
    validate_transitions,
)
from sb3_offline.datasets.loaders import READERS, describe_source
from sb3_offline.datasets.transitions import FIELD_NAMES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


# ----------------------------------------------------------------------------------------- helpers
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


# ------------------------------------------------------------------------------------ HDF5 and npz
@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_round_trip_with_next_observations(tmp_path, pendulum_transitions, fmt):
    path = tmp_path / f"pendulum.{fmt}"
    save = save_hdf5 if fmt == "hdf5" else save_npz
    load = load_hdf5 if fmt == "hdf5" else load_npz
    assert save(pendulum_transitions, path) == path
    loaded = load(path)
    assert_transitions_equal(loaded, pendulum_transitions)
    assert loaded.env_id == "Pendulum-v1"
    assert loaded.source == str(path)
    # the dispatcher reads the same thing
    assert_transitions_equal(load_transitions(str(path)), pendulum_transitions)
    assert dataset_env_id(path) == "Pendulum-v1"


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_round_trip_keeps_reference_scores(tmp_path, pendulum_transitions, fmt):
    transitions = copy_rows(pendulum_transitions, 200)
    transitions.metadata = {"ref_min_score": -1500.0, "ref_max_score": -150.5}
    path = tmp_path / f"scores.{fmt}"
    (save_hdf5 if fmt == "hdf5" else save_npz)(transitions, path)
    loaded = load_transitions(path)
    scores = {key: loaded.metadata[key] for key in ("ref_min_score", "ref_max_score")}
    assert scores == {"ref_min_score": -1500.0, "ref_max_score": -150.5}
    # besides the scores, only how the file spells the flags (for error messages): D4RL's names
    assert set(loaded.metadata) == {"ref_min_score", "ref_max_score", FIELD_NAMES}
    assert loaded.source_field("terminations") == "terminals"


def closed_before_dropped(data, rows):
    """Expected truncation flags of the kept rows: a kept row whose successor was dropped, and which
    is not a termination, closes its episode."""
    kept = set(int(r) for r in rows)
    return np.array([(int(r) + 1 not in kept) and not data.terminations[r] for r in rows], dtype=bool)


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_round_trip_without_next_observations_pendulum(tmp_path, pendulum_transitions, fmt):
    path = tmp_path / f"pendulum.{fmt}"
    (save_hdf5 if fmt == "hdf5" else save_npz)(pendulum_transitions, path, next_observations=False)
    if fmt == "hdf5":
        with h5py.File(path, "r") as f:
            assert "next_observations" not in f
    loaded = load_transitions(path)
    rows = expected_derived(pendulum_transitions)
    # every episode ends with a truncation: those 5 rows are dropped
    assert len(rows) == 995
    assert len(loaded) == 995
    expected = pendulum_transitions.select(rows)
    expected.truncations = closed_before_dropped(pendulum_transitions, rows)
    assert_transitions_equal(loaded, expected)
    # the row before each dropped timeout now closes its episode (as a truncation: it bootstraps)
    assert loaded.truncations.sum() == 5 and len(loaded.episode_slices()) == 5


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_derived_next_observations_never_cross_episodes(tmp_path, inverted_transitions, fmt):
    data = inverted_transitions
    path = tmp_path / f"inverted.{fmt}"
    (save_hdf5 if fmt == "hdf5" else save_npz)(data, path, next_observations=False)
    loaded = load_transitions(path)

    rows = expected_derived(data)
    assert len(loaded) == len(rows)
    # truncated rows are dropped, terminal rows kept with their termination flag
    truncated_rows = np.flatnonzero(data.truncations)
    terminal_rows = np.flatnonzero(data.terminations)
    assert not np.isin(truncated_rows, rows).any()
    assert np.isin(terminal_rows, rows).all()
    assert len(rows) == len(data) - len(truncated_rows)
    np.testing.assert_array_equal(loaded.observations, data.observations[rows])
    np.testing.assert_array_equal(loaded.actions, data.actions[rows])
    np.testing.assert_array_equal(loaded.rewards, data.rewards[rows])
    np.testing.assert_array_equal(loaded.terminations, data.terminations[rows])
    assert loaded.terminations.sum() == data.terminations.sum()
    np.testing.assert_array_equal(loaded.truncations, closed_before_dropped(data, rows))

    terminal = loaded.terminations
    # inside an episode: the true next observation
    np.testing.assert_array_equal(loaded.next_observations[~terminal], data.next_observations[rows][~terminal])
    # at a termination: the observation itself (a filler that is never bootstrapped from)
    np.testing.assert_array_equal(loaded.next_observations[terminal], loaded.observations[terminal])

    # no kept row's next observation is the first observation of another episode
    starts = np.array([s.start for s in data.episode_slices()])
    first_obs = data.observations[starts[1:]]
    for i in np.flatnonzero(~terminal):
        assert not np.any(np.all(first_obs == loaded.next_observations[i], axis=1)), f"row {rows[i]}"


def test_derived_next_observations_dict(tmp_path, fetch_transitions):
    path = tmp_path / "fetch.hdf5"
    save_hdf5(fetch_transitions, path, next_observations=False)
    loaded = load_hdf5(path)
    rows = expected_derived(fetch_transitions)
    assert len(loaded) == len(rows) == 117
    assert_obs_equal(loaded.observations, {k: v[rows] for k, v in fetch_transitions.observations.items()})
    assert_obs_equal(loaded.next_observations, {k: v[rows] for k, v in fetch_transitions.next_observations.items()})


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_dict_observations_round_trip(tmp_path, fetch_transitions, fetch_env_spaces, fmt):
    path = tmp_path / f"fetch.{fmt}"
    (save_hdf5 if fmt == "hdf5" else save_npz)(fetch_transitions, path)
    if fmt == "hdf5":
        with h5py.File(path, "r") as f:
            assert isinstance(f["observations"], h5py.Group)
            assert set(f["observations"]) == set(OBS_KEYS)
    else:
        with np.load(path) as data:
            assert {f"observations/{k}" for k in OBS_KEYS} <= set(data.files)
    loaded = load_transitions(path)
    assert_transitions_equal(loaded, fetch_transitions)
    assert loaded.env_id == "FetchReach-v4"
    validate_transitions(loaded, *fetch_env_spaces)


def test_hdf5_alternative_flag_names(tmp_path, inverted_transitions):
    data = copy_rows(inverted_transitions, 100)
    path = tmp_path / "alt.h5"
    with h5py.File(path, "w") as f:
        f["observations"] = data.observations
        f["next_observations"] = data.next_observations
        f["actions"] = data.actions
        f["rewards"] = data.rewards
        f["terminations"] = data.terminations.astype(np.float32)
        f["truncations"] = data.truncations.astype(np.float32)
    loaded = load_transitions(path)
    assert loaded.env_id is None
    assert_transitions_equal(loaded, data)


def test_hdf5_without_timeouts_but_with_next_observations(tmp_path, inverted_transitions):
    data = copy_rows(inverted_transitions, 100)
    path = tmp_path / "no_timeouts.hdf5"
    with h5py.File(path, "w") as f:
        for key in ("observations", "next_observations", "actions", "rewards"):
            f[key] = getattr(data, key)
        f["terminals"] = data.terminations
    loaded = load_hdf5(path)
    assert len(loaded) == 100
    assert not loaded.truncations.any()
    np.testing.assert_array_equal(loaded.terminations, data.terminations)


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_missing_timeouts_and_next_observations_raises(tmp_path, pendulum_transitions, fmt):
    data = copy_rows(pendulum_transitions, 50)
    arrays = {
        "observations": data.observations,
        "actions": data.actions,
        "rewards": data.rewards,
        "terminals": data.terminations,
    }
    path = tmp_path / f"bad.{fmt}"
    if fmt == "hdf5":
        with h5py.File(path, "w") as f:
            for key, value in arrays.items():
                f[key] = value
    else:
        np.savez(path, **arrays)
    with pytest.raises(ValueError, match="'timeouts'"):
        load_transitions(path)


@pytest.mark.parametrize("missing", ["observations", "actions", "rewards", "terminals"])
def test_hdf5_missing_required_field_raises(tmp_path, pendulum_transitions, missing):
    data = copy_rows(pendulum_transitions, 50)
    arrays = {
        "observations": data.observations,
        "next_observations": data.next_observations,
        "actions": data.actions,
        "rewards": data.rewards,
        "terminals": data.terminations,
        "timeouts": data.truncations,
    }
    del arrays[missing]
    path = tmp_path / "missing.hdf5"
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    with pytest.raises(ValueError, match=f"'{missing}'"):
        load_hdf5(path)


def test_save_npz_requires_npz_suffix(tmp_path, pendulum_transitions):
    folder = tmp_path / "out"
    with pytest.raises(ValueError, match=r"\.npz"):
        save_npz(pendulum_transitions, folder / "data.zip")
    assert not folder.exists() or list(folder.iterdir()) == []


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


# ------------------------------------------------------------------------------- the format registry
DATA = Path(__file__).parent / "data"


def format_files(folder: Path, transitions: Transitions, env: gym.Env) -> dict[str, tuple[Path, str]]:
    """A real file of every format read from a path, written by the project's writers (and SB3's, d3rlpy's and
    imitation's own, from tests/data), with the format that reads it."""
    save_to_pkl(folder / "buffer.pkl", make_sb3_buffer(transitions, 2000, env.observation_space, env.action_space))
    return {
        "hdf5": (save_hdf5(transitions, folder / "d4rl.hdf5"), "hdf5"),
        "h5": (save_hdf5(transitions, folder / "d4rl.h5"), "hdf5"),
        "npz": (save_npz(transitions, folder / "d4rl.npz"), "npz"),
        "pkl": (folder / "buffer.pkl", "sb3_buffer"),
        "our d3rlpy dump": (save_d3rlpy(transitions, folder / "ours.h5"), "d3rlpy"),
        "d3rlpy's own dump": (DATA / "d3rlpy" / "collected.h5", "d3rlpy"),
        "imitation's npz": (DATA / "imitation" / "trajectories.npz", "imitation"),
        "imitation's folder": (DATA / "imitation" / "hf", "imitation"),
        "minari folder": (Path(save_minari(transitions, "test/formats-v0").storage.data_path).parent, "minari"),
    }


def test_every_file_is_read_by_the_format_its_suffix_and_keys_name(tmp_path, pendulum_transitions, pendulum_env):
    files = format_files(tmp_path, copy_rows(pendulum_transitions, 300), pendulum_env)
    for what, (path, name) in files.items():
        assert source_format(path) == name, what
        assert source_format(str(path)) == name, what
        if what == "imitation's folder":  # reading it needs the `datasets` package (see test_interop)
            continue
        by_rule = load_transitions(path, action_space=pendulum_env.action_space)
        named = load_transitions(path, action_space=pendulum_env.action_space, format=name)
        assert_transitions_equal(named, by_rule)
        assert named.source == by_rule.source and named.env_id == by_rule.env_id
    assert source_format("test/formats-v0") == "minari"  # a Minari id


def test_format_reads_a_file_whatever_its_name(tmp_path, pendulum_transitions):
    """A suffix that names no format: refused by the rule (naming format=), read with format=."""
    expected = load_npz(save_npz(pendulum_transitions, tmp_path / "data.npz"))
    save_hdf5(pendulum_transitions, tmp_path / "data.hdf5")
    save_d3rlpy(pendulum_transitions, tmp_path / "dump.h5")
    for original, name in (("data.npz", "npz"), ("data.hdf5", "hdf5"), ("dump.h5", "d3rlpy")):
        renamed = tmp_path / f"{original}.bin"
        renamed.write_bytes((tmp_path / original).read_bytes())
        refused = r"suffix names its format .*format= one of \['transitions', 'minari'.*found suffix '\.bin'"
        with pytest.raises(ValueError, match=refused):
            load_transitions(renamed)
        found = load_transitions(renamed, format=name)
        assert_transitions_equal(found, load_transitions(tmp_path / original))
        assert found.env_id == "Pendulum-v1" and found.source == str(renamed)
        assert dataset_env_id(renamed) is None  # the suffix names no format: nothing is opened
        assert dataset_env_id(renamed, format=name) == "Pendulum-v1" == recover_env(renamed, format=name).spec.id
    assert_transitions_equal(load_transitions(tmp_path / "data.npz.bin", format="npz"), expected)


def test_ambiguous_h5_is_settled_by_its_keys_both_ways(tmp_path, pendulum_transitions):
    d4rl = save_hdf5(pendulum_transitions, tmp_path / "d4rl.h5")
    dump = save_d3rlpy(pendulum_transitions, tmp_path / "dump.h5")
    assert source_format(d4rl) == "hdf5" and source_format(dump) == "d3rlpy"
    assert_transitions_equal(load_transitions(d4rl), pendulum_transitions)
    assert_transitions_equal(load_transitions(dump), load_d3rlpy(dump))
    assert load_transitions(dump).metadata.get(FIELD_NAMES) is None  # d3rlpy's reader, not D4RL's
    # the other reader, named, refuses each file, naming what it lacks
    with pytest.raises(DatasetValidationError, match=r"field 'observations': expected a dataset, found none"):
        load_transitions(dump, format="hdf5")
    with pytest.raises(DatasetValidationError, match=r"expected a d3rlpy dump \(datasets 'columns'"):
        load_transitions(d4rl, format="d3rlpy")
    # d3rlpy's own file under the other HDF5 suffix
    hdf5 = tmp_path / "collected.hdf5"
    hdf5.write_bytes((DATA / "d3rlpy" / "collected.h5").read_bytes())
    assert source_format(hdf5) == "d3rlpy" and len(load_transitions(hdf5)) == 54


def test_ambiguous_npz_is_settled_by_its_keys_both_ways(tmp_path, pendulum_transitions):
    imitation = DATA / "imitation" / "trajectories.npz"
    ours = save_npz(pendulum_transitions, tmp_path / "ours.npz")
    assert source_format(imitation) == "imitation" and source_format(ours) == "npz"
    assert_transitions_equal(load_transitions(imitation), load_imitation(imitation))
    with pytest.raises(DatasetValidationError, match=r"expected an \.npz archive \(numpy\.savez\) with D4RL's keys"):
        load_transitions(imitation, format="npz")  # its infos are pickled objects: not our .npz
    with pytest.raises(ValueError, match=r"field 'obs': expected imitation's .npz keys"):
        load_transitions(ours, format="imitation")


@pytest.mark.parametrize("suffix", [".h5", ".hdf5", ".npz"])
def test_keys_of_no_format_raise_naming_format(tmp_path, suffix):
    path = tmp_path / f"other{suffix}"
    if suffix == ".npz":
        np.savez(path, weights=np.zeros(3), bias=np.zeros(1))
    else:
        with h5py.File(path, "w") as f:
            f["weights"], f["bias"] = np.zeros(3), np.zeros(1)
    names = ["imitation", "npz"] if suffix == ".npz" else ["d3rlpy", "hdf5"]
    with pytest.raises(DatasetValidationError) as info:
        load_transitions(path)
    message = str(info.value)
    assert message.startswith(f"{path}: expected the top-level keys of format '{names[0]}'")
    assert f"or format '{names[1]}'" in message and "with keys ['bias', 'weights']" in message
    assert f"format= one of {names}" in message


def test_unknown_format_is_refused_naming_the_registered_ones(tmp_path, pendulum_transitions):
    path = save_npz(pendulum_transitions, tmp_path / "data.npz")
    refused = r"format: expected one of \[.*\] \(or None: from the source\), found 'parquet'"
    with pytest.raises(ValueError, match=refused) as info:
        load_transitions(path, format="parquet")
    assert all(f"'{name}'" in str(info.value) for name in READERS)
    for read in (dataset_env_id, recover_env):
        with pytest.raises(ValueError, match=refused):
            read(path, format="parquet")
    assert list(READERS) == ["transitions", "minari", "d3rlpy", "imitation", "hdf5", "npz", "sb3_buffer"]


def test_a_format_refuses_a_source_it_does_not_read(tmp_path, pendulum_transitions):
    path = save_npz(pendulum_transitions, tmp_path / "data.npz")
    with pytest.raises(TypeError, match=r"format 'npz' reads an \.npz archive .*, found a Transitions"):
        load_transitions(pendulum_transitions, format="npz")
    with pytest.raises(TypeError, match=r"format 'transitions' reads a Transitions, found the path"):
        load_transitions(path, format="transitions")
    assert load_transitions(pendulum_transitions, format="transitions") is pendulum_transitions
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        load_transitions(tmp_path / "absent.bin", format="hdf5")


def test_objects_are_read_by_the_format_that_accepts_them(tmp_path, pendulum_transitions):
    """Transitions, MinariDataset, d3rlpy datasets and episodes, imitation's trajectories (isinstance/protocol)."""
    data = copy_rows(pendulum_transitions, 300)
    dataset = save_minari(data, "test/objects-v0")
    episodes = load_d3rlpy_episodes(save_d3rlpy(data, tmp_path / "dump.h5"))
    trajectories = imitation_trajectories()
    assert source_format(data) == "transitions" and load_transitions(data) is data
    assert source_format(dataset) == "minari"
    assert_transitions_equal(load_transitions(dataset), load_minari("test/objects-v0"))
    for d3rlpy_like in (episodes, tuple(episodes), SimpleNamespace(episodes=episodes)):
        assert source_format(d3rlpy_like) == "d3rlpy"
        assert_transitions_equal(load_transitions(d3rlpy_like), load_d3rlpy(tmp_path / "dump.h5"))
    assert source_format(trajectories) == "imitation"
    assert_transitions_equal(load_transitions(trajectories), load_imitation(DATA / "imitation" / "trajectories.npz"))
    for other in ([], [1, 2], SimpleNamespace(episodes=3), {"obs": 1}):
        with pytest.raises(TypeError, match="dataset: expected a Minari id"):
            load_transitions(other)


def load_d3rlpy_episodes(path: Path) -> list:
    """The episodes of a d3rlpy dump as d3rlpy's ``Episode`` fields (observations, actions, rewards, terminated)."""
    with h5py.File(path, "r") as f:
        return [
            SimpleNamespace(
                observations=f[f"observations_{i}"][()],
                actions=f[f"actions_{i}"][()],
                rewards=f[f"rewards_{i}"][()],
                terminated=bool(f[f"terminated_{i}"][()]),
            )
            for i in range(int(f["num_episodes"][()]))
        ]


def imitation_trajectories() -> list:
    """imitation's ``TrajectoryWithRew`` fields, cut from its saved .npz (tests/data/imitation)."""
    with np.load(DATA / "imitation" / "trajectories.npz", allow_pickle=True) as data:
        indices = data["indices"]
        obs = np.split(data["obs"], indices + np.arange(1, len(indices) + 1))
        parts = [np.split(data[key], indices) for key in ("acts", "rews", "infos")]
        terminal = data["terminal"]
    return [
        SimpleNamespace(obs=o, acts=a, rews=r, infos=i, terminal=bool(t))
        for o, a, r, i, t in zip(obs, *parts, terminal, strict=True)
    ]


def test_every_source_names_its_env(tmp_path, pendulum_transitions, pendulum_env):
    """``dataset_env_id`` / ``recover_env`` / ``describe_source`` on every source the registry reads."""
    data = copy_rows(pendulum_transitions, 300)
    files = format_files(tmp_path, data, pendulum_env)
    records = {"hdf5", "h5", "npz", "our d3rlpy dump", "minari folder"}
    for what, (path, _) in files.items():
        assert dataset_env_id(path) == ("Pendulum-v1" if what in records else None), what
        assert describe_source(path) == str(path)
        if what in records:
            assert recover_env(path).spec.id == "Pendulum-v1"
        else:
            with pytest.raises(ValueError, match=re.escape(f"dataset '{path}' with no env id")):
                recover_env(path)
    for obj in (load_d3rlpy_episodes(files["our d3rlpy dump"][0]), imitation_trajectories()):
        assert dataset_env_id(obj) is None
        with pytest.raises(ValueError, match="with no env id"):
            recover_env(obj)
    dataset = save_minari(data, "test/env-v0")
    assert dataset_env_id(dataset) == dataset_env_id("test/env-v0") == "Pendulum-v1"
    assert describe_source(dataset) == "test/env-v0" and recover_env(dataset).spec.id == "Pendulum-v1"
    assert dataset_env_id(data) == "Pendulum-v1" and describe_source(data) == data.source


# -------------------------------------------------------------------------------------- validation
def test_validation_accepts_real_data(pendulum_transitions, pendulum_env):
    checked = validate_transitions(pendulum_transitions, pendulum_env.observation_space, pendulum_env.action_space)
    assert_transitions_equal(checked, pendulum_transitions)
    assert checked.rewards.dtype == np.float32
    assert checked.actions.dtype == np.float32
    assert checked.terminations.dtype == bool


def _validation_cases():
    """(name, mutate(transitions) -> transitions, field in the message)."""

    def obs_shape(t):
        return dataclasses.replace(t, observations=t.observations[:, :2].copy())

    def next_obs_shape(t):
        return dataclasses.replace(t, next_observations=np.concatenate([t.next_observations, t.rewards[:, None]], 1))

    def action_shape(t):
        return dataclasses.replace(t, actions=np.repeat(t.actions, 2, axis=1))

    def action_out_of_bounds(t):
        t.actions[7, 0] = 2.5
        return t

    def action_below_bounds(t):
        t.actions[3, 0] = -2.01
        return t

    def nan_obs(t):
        t.observations[5, 1] = np.nan
        return t

    def nan_next_obs(t):
        t.next_observations[9, 0] = np.nan
        return t

    def inf_reward(t):
        t.rewards[4] = np.inf
        return t

    def nan_action(t):
        t.actions[2, 0] = np.nan
        return t

    def empty(t):
        return t.select(np.arange(0))

    def short_rewards(t):
        return dataclasses.replace(t, rewards=t.rewards[:-1])

    def short_terminations(t):
        return dataclasses.replace(t, terminations=t.terminations[:-1])

    def short_observations(t):
        return dataclasses.replace(t, observations=t.observations[:-1])

    def bad_terminations(t):
        return dataclasses.replace(t, terminations=np.where(np.arange(len(t)) == 3, 2, 0))

    def bad_truncations(t):
        return dataclasses.replace(t, truncations=np.full(len(t), 0.5))

    def rewards_2d(t):
        return dataclasses.replace(t, rewards=np.stack([t.rewards, t.rewards], 1))

    def dict_obs(t):
        return dataclasses.replace(t, observations={"observation": t.observations})

    return [
        ("observation shape", obs_shape, "observations"),
        ("next observation shape", next_obs_shape, "next_observations"),
        ("action shape", action_shape, "actions"),
        ("action above bounds", action_out_of_bounds, "actions"),
        ("action below bounds", action_below_bounds, "actions"),
        ("nan observation", nan_obs, "observations"),
        ("nan next observation", nan_next_obs, "next_observations"),
        ("inf reward", inf_reward, "rewards"),
        ("nan action", nan_action, "actions"),
        ("empty", empty, "actions"),
        ("rewards one short", short_rewards, "rewards"),
        ("terminations one short", short_terminations, "terminations"),
        ("observations one short", short_observations, "observations"),
        ("terminations not 0/1", bad_terminations, "terminations"),
        ("truncations not 0/1", bad_truncations, "truncations"),
        ("rewards 2d", rewards_2d, "rewards"),
        ("dict for a box space", dict_obs, "observations"),
    ]


@pytest.mark.parametrize(
    ("mutate", "field"), [c[1:] for c in _validation_cases()], ids=[c[0] for c in _validation_cases()]
)
def test_validation_errors(pendulum_transitions, pendulum_env, mutate, field):
    bad = mutate(copy_rows(pendulum_transitions, 50))
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    with pytest.raises(DatasetValidationError, match=f"field '{field}'") as info:
        validate_transitions(bad, *spaces)
    assert info.value.field == field
    assert str(info.value).startswith("recorded:Pendulum-v1: ")
    # the buffer runs the same checks on whatever it is given
    with pytest.raises(DatasetValidationError, match=f"field '{field}'"):
        offline_buffer(bad, *spaces)


def test_validation_error_messages_say_what_was_found(pendulum_transitions, pendulum_env):
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    t = copy_rows(pendulum_transitions, 50)
    t.actions[7, 0] = 2.5
    with pytest.raises(DatasetValidationError, match=r"found 2\.5 at index \(7, 0\)") as info:
        validate_transitions(t, *spaces)
    assert "rescaled to [-1, 1]" in str(info.value)
    t = copy_rows(pendulum_transitions, 50)
    t.observations[5, 1] = np.nan
    with pytest.raises(DatasetValidationError, match=r"finite values, found nan at index \(5, 1\)"):
        validate_transitions(t, *spaces)
    with pytest.raises(DatasetValidationError, match="0 transitions"):
        validate_transitions(copy_rows(pendulum_transitions, []), *spaces)
    t = dataclasses.replace(copy_rows(pendulum_transitions, 50), rewards=pendulum_transitions.rewards[:49])
    with pytest.raises(DatasetValidationError, match=r"expected 50 rows.*found 49 rows"):
        validate_transitions(t, *spaces)


def test_actions_within_tolerance_are_clipped(pendulum_transitions, pendulum_env):
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    t = copy_rows(pendulum_transitions, 50)
    t.actions[0, 0] = 2.001  # default tolerance: 1e-3 * (2 - (-2)) = 0.004
    t.actions[1, 0] = -2.0035
    checked = validate_transitions(t, *spaces)
    assert checked.actions[0, 0] == np.float32(2.0)
    assert checked.actions[1, 0] == np.float32(-2.0)
    np.testing.assert_array_equal(checked.actions[2:], t.actions[2:])
    # just outside the tolerance
    t.actions[0, 0] = 2.005
    with pytest.raises(DatasetValidationError, match="field 'actions'"):
        validate_transitions(t, *spaces)
    # a larger tolerance accepts it; zero tolerance rejects even 2.001
    t.actions[0, 0] = 2.005
    assert validate_transitions(t, *spaces, action_bound_tolerance=0.01).actions[0, 0] == np.float32(2.0)
    t.actions[0, 0] = 2.001
    with pytest.raises(DatasetValidationError, match="field 'actions'"):
        validate_transitions(t, *spaces, action_bound_tolerance=0.0)
    # the buffer stores the clipped action, scaled: 2.0 -> 1.0
    t.actions[0, 0] = 2.001
    buffer = offline_buffer(t, *spaces)
    assert buffer.actions[0, 0].item() == 1.0
    assert buffer.actions[1, 0].item() == -1.0


def test_one_dimensional_actions_and_column_flags_are_accepted(pendulum_transitions, pendulum_env):
    t = copy_rows(pendulum_transitions, 50)
    t = dataclasses.replace(
        t,
        actions=t.actions[:, 0],
        rewards=t.rewards[:, None],
        terminations=t.terminations[:, None].astype(np.float32),
        truncations=t.truncations[:, None].astype(np.int64),
    )
    checked = validate_transitions(t, pendulum_env.observation_space, pendulum_env.action_space)
    assert checked.actions.shape == (50, 1)
    assert checked.rewards.shape == (50,)
    assert checked.terminations.dtype == bool and checked.terminations.shape == (50,)
    assert checked.truncations.dtype == bool and checked.truncations.shape == (50,)


def test_dataset_from_another_env_fails(tmp_path, inverted_transitions, pendulum_env):
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    with pytest.raises(DatasetValidationError, match="field 'observations': expected shape"):
        validate_transitions(inverted_transitions, *spaces)
    path = tmp_path / "inverted.hdf5"
    save_hdf5(inverted_transitions, path)
    with pytest.raises(DatasetValidationError, match=f"^{re.escape(str(path))}: field 'observations'"):
        offline_buffer(path, *spaces)


def test_dict_observation_validation_errors(fetch_transitions, fetch_env_spaces):
    obs_space, act_space = fetch_env_spaces
    t = copy_rows(fetch_transitions)
    validate_transitions(t, obs_space, act_space)

    missing = dataclasses.replace(t, observations={k: v for k, v in t.observations.items() if k != "desired_goal"})
    with pytest.raises(DatasetValidationError, match="field 'observations': expected keys") as info:
        validate_transitions(missing, obs_space, act_space)
    assert "desired_goal" in str(info.value)
    with pytest.raises(DatasetValidationError, match="field 'observations'"):
        offline_buffer(missing, obs_space, act_space)

    next_missing = dataclasses.replace(
        t, next_observations={k: v for k, v in t.next_observations.items() if k != "observation"}
    )
    with pytest.raises(DatasetValidationError, match="field 'next_observations': expected keys"):
        validate_transitions(next_missing, obs_space, act_space)

    wrong_shape = dataclasses.replace(t, observations={**t.observations, "desired_goal": t.observations["observation"]})
    with pytest.raises(DatasetValidationError, match="field 'observations/desired_goal': expected shape"):
        validate_transitions(wrong_shape, obs_space, act_space)

    nan = copy_rows(fetch_transitions)
    nan.next_observations["achieved_goal"][3, 2] = np.nan
    with pytest.raises(DatasetValidationError, match="field 'next_observations/achieved_goal': expected finite"):
        validate_transitions(nan, obs_space, act_space)

    array = dataclasses.replace(t, observations=t.observations["observation"])
    with pytest.raises(DatasetValidationError, match="field 'observations': expected a dict"):
        validate_transitions(array, obs_space, act_space)


def test_validation_of_a_file_names_the_file(tmp_path, pendulum_transitions, pendulum_env):
    t = copy_rows(pendulum_transitions, 50)
    t.actions[10, 0] = 2.5
    path = tmp_path / "bad.npz"
    save_npz(t, path)
    with pytest.raises(DatasetValidationError, match=f"^{re.escape(str(path))}: field 'actions'"):
        offline_buffer(str(path), pendulum_env.observation_space, pendulum_env.action_space)


def test_non_box_action_space_rejected(pendulum_transitions, pendulum_env):
    with pytest.raises(DatasetValidationError, match="field 'action_space'"):
        validate_transitions(pendulum_transitions, pendulum_env.observation_space, gym.spaces.Discrete(3))
    with pytest.raises(DatasetValidationError, match="field 'action_space': expected finite bounds"):
        validate_transitions(
            pendulum_transitions, pendulum_env.observation_space, gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        )


# -------------------------------------------------------------------------------- OfflineReplayBuffer
def test_offline_buffer_sample_shapes_and_device(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(pendulum_transitions, pendulum_env.observation_space, pendulum_env.action_space)
    assert buffer.size() == len(pendulum_transitions) == buffer.dataset_size == buffer.buffer_size
    assert buffer.env_id == "Pendulum-v1"
    assert buffer.dataset_name == "recorded:Pendulum-v1"
    samples = buffer.sample(64)
    assert isinstance(samples, ReplayBufferSamples)
    assert samples.observations.shape == (64, 3)
    assert samples.next_observations.shape == (64, 3)
    assert samples.actions.shape == (64, 1)
    assert samples.rewards.shape == (64, 1)
    assert samples.dones.shape == (64, 1)
    tensors = (samples.observations, samples.next_observations, samples.actions, samples.rewards, samples.dones)
    for tensor in tensors:
        assert tensor.device == th.device("cpu")
        assert tensor.dtype == th.float32
    assert samples.discounts is None  # no n-step returns: the algorithm uses its own gamma
    assert samples.actions.abs().max() <= 1.0
    assert (samples.dones == 0).all()  # Pendulum only truncates


def test_offline_buffer_stores_scaled_actions_and_flags(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(pendulum_transitions, pendulum_env.observation_space, pendulum_env.action_space)
    np.testing.assert_allclose(buffer.actions[:, 0].numpy(), pendulum_transitions.actions[:, 0] / 2, atol=1e-6)
    np.testing.assert_array_equal(buffer.observations.numpy(), pendulum_transitions.observations)
    np.testing.assert_array_equal(buffer.next_observations.numpy(), pendulum_transitions.next_observations)
    np.testing.assert_array_equal(buffer.rewards[:, 0].numpy(), pendulum_transitions.rewards)
    np.testing.assert_array_equal(buffer.timeouts[:, 0].numpy(), pendulum_transitions.truncations)
    # truncations are not dones: they bootstrap from the next observation
    assert buffer.timeouts.sum().item() == 5
    assert buffer.dones.sum().item() == 0


def test_offline_buffer_dones_are_terminations(inverted_transitions, inverted_env_spaces):
    buffer = offline_buffer(inverted_transitions, *inverted_env_spaces)
    np.testing.assert_array_equal(buffer.dones[:, 0].numpy(), inverted_transitions.terminations)
    np.testing.assert_array_equal(buffer.timeouts[:, 0].numpy(), inverted_transitions.truncations)
    # InvertedPendulum actions are in [-3, 3]
    np.testing.assert_allclose(buffer.actions[:, 0].numpy(), inverted_transitions.actions[:, 0] / 3, atol=1e-6)
    truncated = th.as_tensor(np.flatnonzero(inverted_transitions.truncations))
    assert (buffer.gather(truncated).dones == 0).all()
    terminal = th.as_tensor(np.flatnonzero(inverted_transitions.terminations))
    assert (buffer.gather(terminal).dones == 1).all()
    # a large batch sees both values, matching the stored terminations
    th.manual_seed(0)
    samples = buffer.sample(4096)
    assert set(samples.dones.unique().tolist()) == {0.0, 1.0}


def test_offline_buffer_gather_returns_exact_rows(inverted_transitions, inverted_env_spaces):
    buffer = offline_buffer(inverted_transitions, *inverted_env_spaces)
    rows = np.array([0, 5, 17, 123, len(inverted_transitions) - 1, 5])
    batch = buffer.gather(th.as_tensor(rows))
    t = inverted_transitions
    # InvertedPendulum's observations are float64; the buffer holds float32
    assert t.observations.dtype == np.float64
    np.testing.assert_array_equal(batch.observations.numpy(), t.observations[rows].astype(np.float32))
    np.testing.assert_array_equal(batch.next_observations.numpy(), t.next_observations[rows].astype(np.float32))
    np.testing.assert_allclose(batch.actions.numpy(), t.actions[rows] / 3, atol=1e-6)
    np.testing.assert_array_equal(batch.rewards[:, 0].numpy(), t.rewards[rows])
    np.testing.assert_array_equal(batch.dones[:, 0].numpy(), t.terminations[rows])
    # SB3's _get_samples path gives the same
    same = buffer._get_samples(rows)
    for a, b in zip(batch, same, strict=True):
        assert (a is None and b is None) or th.equal(a, b)


def test_offline_buffer_from_every_source_holds_the_same_data(tmp_path, pendulum_transitions, pendulum_env):
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    save_hdf5(pendulum_transitions, tmp_path / "d.hdf5")
    save_npz(pendulum_transitions, tmp_path / "d.npz")
    dataset = save_minari(pendulum_transitions, "test/source-v0")
    reference = offline_buffer(pendulum_transitions, *spaces)
    for source in (tmp_path / "d.hdf5", str(tmp_path / "d.npz"), "test/source-v0", dataset):
        buffer = offline_buffer(source, *spaces)
        assert buffer.size() == 1000
        assert th.equal(buffer.observations, reference.observations)
        assert th.equal(buffer.next_observations, reference.next_observations)
        assert th.equal(buffer.actions, reference.actions)
        assert th.equal(buffer.rewards, reference.rewards)
        assert th.equal(buffer.dones, reference.dones)
        assert th.equal(buffer.timeouts, reference.timeouts)
    assert offline_buffer("test/source-v0", *spaces).dataset_name == "test/source-v0"


@pytest.mark.parametrize("online_capacity", [0, 64])
def test_offline_buffer_from_a_file_stores_without_copies(
    tmp_path, pendulum_transitions, pendulum_env, online_capacity
):
    """
    A file read by the buffer is stored in place, with the same values: no copy until the first online transition
    makes the online rows (then the dataset's rows are copied into the larger tensors once).
    """
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    snapshot = copy_rows(pendulum_transitions)
    reference = offline_buffer(pendulum_transitions, *spaces, online_capacity=online_capacity)
    assert_transitions_equal(pendulum_transitions, snapshot)  # in-memory data is the caller's: never changed
    save_hdf5(pendulum_transitions, tmp_path / "d.hdf5")
    read, validated = [], []

    def spy(function, into):
        def wrapped(*args, **kwargs):
            into.append(function(*args, **kwargs))
            return into[-1]

        return wrapped

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sb3_offline.datasets.loaders.load_hdf5", spy(load_hdf5, read))
        mp.setattr("sb3_offline.buffers.offline.validate_transitions", spy(validate_transitions, validated))
        buffer = offline_buffer(tmp_path / "d.hdf5", *spaces, online_capacity=online_capacity)
    assert buffer.buffer_size == 1000 + online_capacity
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        assert th.equal(getattr(buffer, name), getattr(reference, name)), name
    assert not buffer.observations[1000:].any() and not buffer.actions[1000:].any()  # online rows start at zero
    # the validated observations are released once stored; without online rows the arrays read *are* the storage
    ((loaded,), (checked,)) = read, validated
    assert len(checked.observations) == 0 and len(checked.next_observations) == 0 and len(checked) == 1000

    def same_memory(tensor, array):
        return tensor.untyped_storage().data_ptr() == th.from_numpy(array).untyped_storage().data_ptr()

    assert same_memory(buffer.observations, loaded.observations)
    assert same_memory(buffer.next_observations, loaded.next_observations)
    assert same_memory(buffer.actions, checked.actions)
    if online_capacity:
        obs = np.zeros((1, 3), dtype=np.float32)
        buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
        assert len(buffer.observations) == 1000 + online_capacity
        assert not same_memory(buffer.observations, loaded.observations)
        for name in ("observations", "actions", "rewards"):
            assert th.equal(getattr(buffer, name)[:1000], getattr(reference, name)), name


def test_offline_buffer_does_not_keep_a_larger_array_alive(tmp_path, pendulum_transitions, pendulum_env):
    """
    An SB3 buffer of 2000 rows holding 1000 is read as views of its arrays: those are copied, not adopted, so the
    2000-row arrays are freed once the offline buffer is built (adopting a view would keep its whole base alive).
    """
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    save_to_pkl(tmp_path / "b.pkl", make_sb3_buffer(pendulum_transitions, 2000, *spaces))
    bases = []
    real_load_from_pkl = sb3_save_util.load_from_pkl

    def spy(path, *args, **kwargs):
        unpickled = real_load_from_pkl(path, *args, **kwargs)
        for array in (unpickled.observations, unpickled.next_observations):
            while isinstance(array.base, np.ndarray):  # the array that owns the memory (numpy keeps only the owner)
                array = array.base
            bases.append(weakref.ref(array))
        return unpickled

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sb3_save_util, "load_from_pkl", spy)
        buffer = offline_buffer(tmp_path / "b.pkl", *spaces)
    gc.collect()
    assert buffer.size() == 1000 and len(bases) == 2
    assert all(base() is None for base in bases), "the SB3 buffer's 2000-row arrays are still held"
    reference = offline_buffer(pendulum_transitions, *spaces)
    assert th.equal(buffer.observations, reference.observations)
    assert th.equal(buffer.next_observations, reference.next_observations)
    th.testing.assert_close(buffer.actions, reference.actions, atol=1e-5, rtol=0)


def test_offline_buffer_dict_observations(fetch_transitions, fetch_env_spaces):
    buffer = offline_buffer(fetch_transitions, *fetch_env_spaces)
    assert buffer.size() == 120
    samples = buffer.sample(32)
    assert isinstance(samples, DictReplayBufferSamples)
    assert set(samples.observations) == set(OBS_KEYS)
    assert samples.observations["observation"].shape == (32, 10)
    assert samples.next_observations["desired_goal"].shape == (32, 3)
    assert samples.actions.shape == (32, 4)
    batch = buffer.gather(th.arange(120))
    for key in OBS_KEYS:
        expected_obs = fetch_transitions.observations[key].astype(np.float32)  # float64 in the env
        expected_next = fetch_transitions.next_observations[key].astype(np.float32)
        assert batch.observations[key].dtype == th.float32
        np.testing.assert_array_equal(batch.observations[key].numpy(), expected_obs)
        np.testing.assert_array_equal(batch.next_observations[key].numpy(), expected_next)
    # FetchReach actions are already in [-1, 1]
    np.testing.assert_allclose(batch.actions.numpy(), fetch_transitions.actions, atol=1e-6)


def test_offline_buffer_online_ring(pendulum_transitions, pendulum_env):
    data = copy_rows(pendulum_transitions, 50)
    buffer = offline_buffer(data, pendulum_env.observation_space, pendulum_env.action_space, online_capacity=5)
    assert buffer.size() == 50 and buffer.buffer_size == 55 and buffer.online_size == 0
    dataset_obs = buffer.observations[:50].clone()
    dataset_actions = buffer.actions[:50].clone()
    dataset_dones = buffer.dones[:50].clone()

    def add(k: int, done: bool = False, truncated: bool = False) -> None:
        obs = np.full((1, 3), 100.0 + k, dtype=np.float32)
        buffer.add(
            obs,
            obs + 0.5,
            np.array([[0.1 * (k % 10) - 0.5]], dtype=np.float32),
            np.array([-float(k)]),
            np.array([done]),
            [{"TimeLimit.truncated": truncated}] if truncated else [{}],
        )

    sizes = []
    for k in range(7):
        add(k, done=(k == 1), truncated=False)
        sizes.append(buffer.size())
    assert sizes == [51, 52, 53, 54, 55, 55, 55]
    assert buffer.online_size == 5
    # the dataset rows are untouched
    assert th.equal(buffer.observations[:50], dataset_obs)
    assert th.equal(buffer.actions[:50], dataset_actions)
    assert th.equal(buffer.dones[:50], dataset_dones)
    # ring: adds 5 and 6 overwrote adds 0 and 1
    stored = buffer.observations[50:55, 0].tolist()
    assert stored == [105.0, 106.0, 102.0, 103.0, 104.0]
    assert buffer.next_observations[50:55, 0].tolist() == [105.5, 106.5, 102.5, 103.5, 104.5]
    assert buffer.rewards[50:55, 0].tolist() == [-5.0, -6.0, -2.0, -3.0, -4.0]
    assert buffer.dones[50:55, 0].tolist() == [0.0] * 5  # the done of add 1 was overwritten by add 6

    # a done cut by a time limit is a timeout, any other done a termination
    add(7, done=True, truncated=True)  # row 52
    add(8, done=True)  # row 53
    assert buffer.observations[52, 0].item() == 107.0
    assert buffer.dones[52, 0].item() == 0.0 and buffer.timeouts[52, 0].item() == 1.0
    assert buffer.dones[53, 0].item() == 1.0 and buffer.timeouts[53, 0].item() == 0.0
    assert buffer.size() == 55
    assert th.equal(buffer.observations[:50], dataset_obs)

    # samples come from the dataset and the online rows only
    th.manual_seed(0)
    samples = buffer.sample(2000)
    valid = th.cat([dataset_obs, buffer.observations[50:55]])
    matches = (samples.observations[:, None, :] == valid[None]).all(-1).any(-1)
    assert matches.all()
    assert (samples.observations[:, 0] >= 100).any() and (samples.observations[:, 0] < 100).any()

    buffer.reset()
    assert buffer.size() == 50
    assert th.equal(buffer.observations[:50], dataset_obs)


def test_offline_buffer_online_add_needs_capacity(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(
        copy_rows(pendulum_transitions, 50), pendulum_env.observation_space, pendulum_env.action_space
    )
    obs = np.zeros((1, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="online_capacity"):
        buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    assert buffer.size() == 50


def test_offline_buffer_online_only(pendulum_env):
    buffer = OfflineReplayBuffer(
        100, pendulum_env.observation_space, pendulum_env.action_space, device="cpu", online_capacity=3
    )
    assert buffer.size() == 0 and buffer.buffer_size == 3
    with pytest.raises(ValueError, match="no transitions"):
        buffer.sample(4)
    obs = np.ones((1, 3), dtype=np.float32)
    buffer.add(obs, obs, np.zeros((1, 1)), np.ones(1), np.zeros(1), [{}])
    assert buffer.size() == 1
    assert (buffer.sample(8).rewards == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimize_memory_usage": True}, "optimize_memory_usage"),
        ({"handle_timeout_termination": False}, "handle_timeout_termination"),
        ({"online_capacity": -1}, "online_capacity"),
    ],
)
def test_offline_buffer_rejects_bad_arguments(pendulum_transitions, pendulum_env, kwargs, match):
    with pytest.raises(ValueError, match=match):
        offline_buffer(
            copy_rows(pendulum_transitions, 10), pendulum_env.observation_space, pendulum_env.action_space, **kwargs
        )


def test_offline_buffer_needs_data_or_capacity(pendulum_env):
    with pytest.raises(ValueError, match="online_capacity > 0"):
        OfflineReplayBuffer(100, pendulum_env.observation_space, pendulum_env.action_space, device="cpu")


def test_offline_buffer_rejects_vecnormalize_env(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(
        copy_rows(pendulum_transitions, 10), pendulum_env.observation_space, pendulum_env.action_space
    )
    with pytest.raises(ValueError, match="VecNormalize"):
        buffer.sample(4, env=object())


# ---------------------------------------------------------------------------------- atomic writes
# Failures are injected with their own pytest.MonkeyPatch, so that undoing them keeps the autouse
# MINARI_DATASETS_PATH set by the fixture's monkeypatch.
def _fail_on_second_call(mp: pytest.MonkeyPatch, owner, name):
    original = getattr(owner, name)
    calls = []

    def failing(*args, **kwargs):
        calls.append(name)
        if len(calls) >= 2:
            raise OSError("simulated disk full")
        return original(*args, **kwargs)

    mp.setattr(owner, name, failing)
    return calls


def _partial_savez(file, **arrays):
    file.write(b"PK\x03\x04 half a zip")
    raise OSError("simulated disk full")


@pytest.mark.parametrize("data_name", ["pendulum_transitions", "fetch_transitions"])
def test_save_hdf5_failure_leaves_no_file(tmp_path, request, data_name):
    data = request.getfixturevalue(data_name)
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        calls = _fail_on_second_call(mp, h5py.Group, "create_dataset")
        with pytest.raises(OSError, match="simulated disk full"):
            save_hdf5(data, folder / "data.hdf5")
    assert len(calls) == 2  # it failed midway, after writing something
    assert list(folder.iterdir()) == []


def test_save_hdf5_failed_overwrite_keeps_the_good_file(tmp_path, pendulum_transitions):
    path = tmp_path / "out" / "data.hdf5"
    good = copy_rows(pendulum_transitions, 200)
    save_hdf5(good, path)
    with pytest.MonkeyPatch.context() as mp:
        _fail_on_second_call(mp, h5py.Group, "create_dataset")
        with pytest.raises(OSError, match="simulated disk full"):
            save_hdf5(pendulum_transitions, path)
    assert [p.name for p in path.parent.iterdir()] == ["data.hdf5"]
    assert_transitions_equal(load_hdf5(path), good)


def test_save_npz_failure_leaves_no_file(tmp_path, pendulum_transitions):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, "savez", _partial_savez)
        with pytest.raises(OSError, match="simulated disk full"):
            save_npz(pendulum_transitions, folder / "data.npz")
    assert list(folder.iterdir()) == []


def test_save_npz_failed_overwrite_keeps_the_good_file(tmp_path, pendulum_transitions):
    path = tmp_path / "out" / "data.npz"
    good = copy_rows(pendulum_transitions, 200)
    save_npz(good, path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, "savez", _partial_savez)
        with pytest.raises(OSError, match="simulated disk full"):
            save_npz(pendulum_transitions, path)
    assert [p.name for p in path.parent.iterdir()] == ["data.npz"]
    assert_transitions_equal(load_npz(path), good)


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_successful_write_replaces_and_leaves_no_temp(tmp_path, pendulum_transitions, fmt):
    path = tmp_path / "sub" / f"data.{fmt}"  # the folder is created
    save = save_hdf5 if fmt == "hdf5" else save_npz
    save(copy_rows(pendulum_transitions, 200), path)
    save(copy_rows(pendulum_transitions, 400), path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert len(load_transitions(path)) == 400


# ------------------------------------------------------------------------- derive_next_observations
@st.composite
def episode_structures(draw):
    """Episodes as (length, end), end in {'term', 'trunc', 'both'}, plus maybe an unclosed last episode."""
    episodes = draw(
        st.lists(
            st.tuples(st.integers(1, 8), st.sampled_from(["term", "trunc", "both"])),
            min_size=0,
            max_size=6,
        )
    )
    tail = draw(st.integers(0, 5))
    if not episodes and tail == 0:
        tail = 1
    return episodes, tail


@settings(max_examples=25, deadline=None)
@given(structure=episode_structures(), as_dict=st.booleans())
def test_derive_next_observations_property(structure, as_dict):
    episodes, tail = structure
    episode_of, step_of, terms, truncs = [], [], [], []
    for e, (length, end) in enumerate([*episodes, (tail, None)]):
        for step in range(length):
            last = step == length - 1
            episode_of.append(e)
            step_of.append(step)
            terms.append(last and end in ("term", "both"))
            truncs.append(last and end in ("trunc", "both"))
    n = len(episode_of)
    episode_of, step_of = np.array(episode_of), np.array(step_of)
    terminations, truncations = np.array(terms), np.array(truncs)
    # each observation encodes its (episode, step): row identity is recoverable from any obs
    array = np.stack([episode_of, step_of], axis=1).astype(np.float32)
    observations = {"pos": array, "id": np.arange(n, dtype=np.int64)} if as_dict else array

    next_obs, keep = derive_next_observations(observations, terminations, truncations)
    if as_dict:
        assert set(next_obs) == {"pos", "id"}
        next_array = next_obs["pos"]
        next_id = next_obs["id"]
    else:
        next_array = next_obs
    assert keep.dtype == bool and keep.shape == (n,)
    assert next_array.shape == array.shape

    for i in range(n):
        if terminations[i]:
            assert keep[i]
            np.testing.assert_array_equal(next_array[i], array[i])
            if as_dict:
                assert next_id[i] == i
        elif truncations[i] or i == n - 1:
            assert not keep[i]
        else:
            assert keep[i]
            np.testing.assert_array_equal(next_array[i], array[i + 1])
            if as_dict:
                assert next_id[i] == i + 1
    # no kept row's next observation belongs to another episode, and it is the same step or the next one
    kept = np.flatnonzero(keep)
    np.testing.assert_array_equal(next_array[kept, 0], episode_of[kept])
    assert np.all(np.isin(next_array[kept, 1] - step_of[kept], (0, 1)))
    # every row that is neither dropped nor a termination moves forward exactly one step
    moving = kept[~terminations[kept]]
    np.testing.assert_array_equal(next_array[moving, 1], step_of[moving] + 1)


def test_derive_next_observations_small_examples():
    obs = np.arange(6, dtype=np.float32)[:, None]
    # episodes: [0, 1 term] [2, 3 trunc] [4, 5 open]
    terms = np.array([0, 1, 0, 0, 0, 0], dtype=bool)
    truncs = np.array([0, 0, 0, 1, 0, 0], dtype=bool)
    next_obs, keep = derive_next_observations(obs, terms, truncs)
    assert keep.tolist() == [True, True, True, False, True, False]
    assert next_obs[keep, 0].tolist() == [1.0, 1.0, 3.0, 5.0]
    # empty input
    next_obs, keep = derive_next_observations(np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0, bool))
    assert next_obs.shape == (0, 2) and keep.shape == (0,)


def test_inputs_are_not_mutated(pendulum_transitions, fetch_transitions, inverted_transitions):
    # guard: the session fixtures still hold what conftest asserted
    assert not pendulum_transitions.terminations.any() and pendulum_transitions.truncations.sum() == 5
    assert np.isfinite(pendulum_transitions.observations).all()
    assert np.abs(pendulum_transitions.actions).max() <= 2.0
    assert np.isfinite(fetch_transitions.next_observations["achieved_goal"]).all()
    assert inverted_transitions.observations.shape == (600, 4)
    assert os.environ["MINARI_DATASETS_PATH"] != str(Path.home() / ".minari" / "datasets")
