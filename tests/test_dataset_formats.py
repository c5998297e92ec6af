"""The format registry: which reader reads a file (its suffix, its keys, or ``format=``), objects read by the
format that accepts them, and every source naming its env."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import h5py
import numpy as np
import pytest
from stable_baselines3.common.save_util import save_to_pkl
from transitions_checks import (
    assert_transitions_equal,
    copy_rows,
    make_sb3_buffer,
)

from sb3_offline.datasets import (
    DatasetNotFoundError,
    DatasetValidationError,
    Transitions,
    dataset_env_id,
    load_d3rlpy,
    load_imitation,
    load_minari,
    load_npz,
    load_transitions,
    recover_env,
    save_d3rlpy,
    save_hdf5,
    save_minari,
    save_npz,
    source_format,
)
from sb3_offline.datasets.loaders import READERS, describe_source
from sb3_offline.datasets.transitions import FIELD_NAMES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


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
