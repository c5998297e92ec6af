"""D4RL-style HDF5 and npz files: round trips, next observations derived within episodes, the fields and flag
names read, and writes that leave a good file or none (atomic, with the mode the umask gives)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from transitions_checks import (
    assert_obs_equal,
    assert_transitions_equal,
    copy_rows,
    expected_derived,
)

from sb3_offline import OfflineReplayBuffer
from sb3_offline.datasets import (
    DatasetValidationError,
    Transitions,
    dataset_env_id,
    load_hdf5,
    load_npz,
    load_transitions,
    save_hdf5,
    save_npz,
    validate_transitions,
)
from sb3_offline.datasets.transitions import FIELD_NAMES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


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


# ------------------------------------------------------------------------- what the files hold
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


def test_saved_file_mode_follows_umask(tmp_path: Path, pendulum_transitions: Transitions) -> None:
    path = save_hdf5(pendulum_transitions, tmp_path / "d.hdf5")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
