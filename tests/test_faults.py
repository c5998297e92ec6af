"""
Faults: bad dataset files, a checkpoint of another algorithm, and resuming training from a checkpoint.

- Every reader of a dataset file (the loaders, ``dataset_env_id``, ``recover_env``, an algorithm's constructor)
  turns a file that is not what its name says (random bytes, a truncated copy of a real file, an empty file)
  into a ``DatasetValidationError`` naming the path, the format expected and what the file holds.
- Errors about the flags name the field as the source spells it (``terminals`` in D4RL's HDF5).
- ``load`` refuses a checkpoint saved by another algorithm, naming both classes.
- ``learn(10)``, ``save``, ``load``, ``learn(10, reset_num_timesteps=False)`` trains exactly as ``learn(20)``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import TD3

from sb3_offline import AWAC, BCQ, TD3BC
from sb3_offline.algorithms import ALGOS
from sb3_offline.common.checkpoints import CHECKPOINT_CLASS_KEY
from sb3_offline.common.schedules import CosineDecaySchedule
from sb3_offline.datasets import (
    DatasetValidationError,
    Transitions,
    load_transitions,
    record_transitions,
    save_hdf5,
    save_minari,
    save_npz,
    validate_transitions,
)
from sb3_offline.datasets.loaders import (
    EXPECTED_HDF5,
    EXPECTED_MINARI,
    EXPECTED_NPZ,
    EXPECTED_PKL,
    dataset_env_id,
    load_hdf5,
    load_minari,
    load_npz,
    load_sb3_replay_buffer,
    recover_env,
)

BREAKAGES = ("random", "truncated", "empty")
#: what ``describe_file`` says each breakage holds
FOUND = {"random": "bytes of no known format of 4096 bytes", "empty": "an empty file (0 bytes)"}
FOUND_TRUNCATED = {
    ".hdf5": "an HDF5 file of",
    ".h5": "an HDF5 file of",
    ".npz": "a zip archive of",
    ".pkl": "a Python pickle of",
    "minari": "an HDF5 file of",
}
EXPECTED = {".hdf5": EXPECTED_HDF5, ".h5": EXPECTED_HDF5, ".npz": EXPECTED_NPZ, ".pkl": EXPECTED_PKL}


@pytest.fixture(scope="module")
def small_transitions() -> Transitions:
    return record_transitions("Pendulum-v1", 300, seed=0)


@pytest.fixture(scope="module")
def real_files(small_transitions: Transitions, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real small file of each format, written by the project's writers (and SB3's ``save_replay_buffer``)."""
    folder = tmp_path_factory.mktemp("real")
    model = TD3(
        "MlpPolicy", "Pendulum-v1", learning_starts=10, buffer_size=100, policy_kwargs=dict(net_arch=[16]), device="cpu"
    )
    model.learn(30)
    model.save_replay_buffer(folder / "buffer.pkl")
    return {
        ".hdf5": save_hdf5(small_transitions, folder / "data.hdf5"),
        ".h5": save_hdf5(small_transitions, folder / "data.h5"),
        ".npz": save_npz(small_transitions, folder / "data.npz"),
        ".pkl": folder / "buffer.pkl",
    }


def _break(original: Path, target: Path, breakage: str) -> Path:
    if breakage == "random":
        target.write_bytes(np.random.default_rng(0).bytes(4096))
    elif breakage == "empty":
        target.write_bytes(b"")
    else:
        content = original.read_bytes()
        target.write_bytes(content[: len(content) // 2])
    return target


def _assert_unreadable(error: pytest.ExceptionInfo, path: Path, expected: str, breakage: str, kind: str) -> None:
    message = str(error.value)
    assert error.type is DatasetValidationError, message
    assert str(path) in message
    assert f"expected {expected}" in message
    assert (FOUND_TRUNCATED[kind] if breakage == "truncated" else FOUND[breakage]) in message
    assert error.value.expected == expected


# ------------------------------------------------------------------------------------------ bad files
@pytest.mark.parametrize("breakage", BREAKAGES)
@pytest.mark.parametrize("suffix", [".hdf5", ".h5", ".npz", ".pkl"])
def test_broken_file(real_files: dict[str, Path], tmp_path: Path, suffix: str, breakage: str) -> None:
    # the real file reads
    env = gym.make("Pendulum-v1")
    assert len(load_transitions(real_files[suffix], env.action_space)) > 0
    path = _break(real_files[suffix], tmp_path / f"broken{suffix}", breakage)
    expected = EXPECTED[suffix]
    with pytest.raises(Exception) as error:
        load_transitions(path, env.action_space)
    _assert_unreadable(error, path, expected, breakage, suffix)
    loader = {".hdf5": load_hdf5, ".h5": load_hdf5, ".npz": load_npz}.get(suffix)
    if loader is None:
        with pytest.raises(Exception) as error:
            load_sb3_replay_buffer(path, env.action_space)
        _assert_unreadable(error, path, expected, breakage, suffix)
        return
    with pytest.raises(Exception) as error:
        loader(path)
    _assert_unreadable(error, path, expected, breakage, suffix)
    # the files that record an env id are opened to read it
    with pytest.raises(Exception) as error:
        dataset_env_id(path)
    _assert_unreadable(error, path, expected, breakage, suffix)
    with pytest.raises(Exception) as error:
        recover_env(path)
    _assert_unreadable(error, path, expected, breakage, suffix)


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_broken_minari_folder(small_transitions: Transitions, tmp_path: Path, breakage: str) -> None:
    dataset = save_minari(small_transitions, "pendulum/faults-v0", env="Pendulum-v1")
    original = Path(dataset.storage.data_path).parent
    folder = tmp_path / "copy"
    shutil.copytree(original, folder)
    assert len(load_minari(folder)) == len(small_transitions)  # the intact copy reads
    main_data = folder / "data" / "main_data.hdf5"
    _break(original / "data" / "main_data.hdf5", main_data, breakage)
    for load in (load_minari, load_transitions):
        with pytest.raises(Exception) as error:
            load(folder)
        _assert_unreadable(error, main_data, EXPECTED_MINARI, breakage, "minari")
    # the env is recorded in metadata.json: still recovered without reading the broken data
    assert dataset_env_id(folder) == "Pendulum-v1"
    # a broken metadata.json is reported by everything that opens the folder
    (folder / "data" / "metadata.json").write_text('{"dataset_id": "pendulum/fau')
    for read in (dataset_env_id, recover_env, load_transitions):
        with pytest.raises(DatasetValidationError, match=re.escape(f"expected {EXPECTED_MINARI}")) as error:
            read(folder)
        assert str(folder / "data" / "metadata.json") in str(error.value)
        assert "a text file of" in str(error.value)


def test_broken_file_through_the_constructor(real_files: dict[str, Path], tmp_path: Path) -> None:
    path = _break(real_files[".hdf5"], tmp_path / "download.hdf5", "truncated")
    with pytest.raises(Exception) as error:
        BCQ("MlpPolicy", gym.make("Pendulum-v1"), dataset=str(path))
    _assert_unreadable(error, path, EXPECTED_HDF5, "truncated", ".hdf5")
    # with env=None the env is recovered from the file first: the same error
    with pytest.raises(Exception) as error:
        BCQ("MlpPolicy", None, dataset=str(path))
    _assert_unreadable(error, path, EXPECTED_HDF5, "truncated", ".hdf5")
    npz = _break(real_files[".npz"], tmp_path / "download.npz", "random")
    with pytest.raises(Exception) as error:
        TD3BC("MlpPolicy", gym.make("Pendulum-v1"), dataset=npz)
    _assert_unreadable(error, npz, EXPECTED_NPZ, "random", ".npz")


# ------------------------------------------------------------------------------------- flag names
def test_flag_error_names_the_field_as_the_source_spells_it(small_transitions: Transitions, tmp_path: Path) -> None:
    env = gym.make("Pendulum-v1")
    arrays = {
        "observations": small_transitions.observations,
        "next_observations": small_transitions.next_observations,
        "actions": small_transitions.actions,
        "rewards": small_transitions.rewards,
        "timeouts": small_transitions.truncations.astype(np.float32),
    }
    bad = small_transitions.terminations.astype(np.float32)
    bad[7] = 2.0
    # D4RL's HDF5 layout: 'terminals'
    import h5py

    d4rl = tmp_path / "d4rl.hdf5"
    with h5py.File(d4rl, "w") as f:
        for key, value in {**arrays, "terminals": bad}.items():
            f.create_dataset(key, data=value)
    with pytest.raises(DatasetValidationError, match=r"field 'terminals': expected 0/1 flags, found 2.0 at index 7"):
        validate_transitions(load_transitions(d4rl), env.observation_space, env.action_space)
    with pytest.raises(DatasetValidationError, match="field 'terminals'"):
        BCQ("MlpPolicy", env, dataset=str(d4rl))
    # an .npz spelling it 'terminations' (Minari's name)
    npz = tmp_path / "minari_names.npz"
    np.savez(npz, **arrays, terminations=bad)
    with pytest.raises(DatasetValidationError, match=r"field 'terminations': expected 0/1 flags, found 2.0"):
        validate_transitions(load_transitions(npz), env.observation_space, env.action_space)
    # a Minari dataset: 'terminations'
    minari_data = load_transitions(save_minari(small_transitions, "pendulum/flags-v0", env="Pendulum-v1"))
    minari_data.terminations = minari_data.terminations.astype(np.float32)
    minari_data.terminations[3] = 2.0
    with pytest.raises(DatasetValidationError, match=r"field 'terminations': expected 0/1 flags, found 2.0 at index 3"):
        validate_transitions(minari_data, env.observation_space, env.action_space)


# ------------------------------------------------------------------------ checkpoints of another class
TINY: dict[str, dict[str, Any]] = {  # by ALGOS name: tiny networks, every phase of the update within 20 steps
    "awac": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16]))),
    "bcq": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16]))),
    "calql": dict(bc_steps=4, policy_kwargs=dict(net_arch=[16, 16])),
    "cql": dict(bc_steps=4, policy_kwargs=dict(net_arch=[16, 16])),
    "lapo": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16], vf=[16, 16]))),
    "plas": dict(vae_steps=4, policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16]))),
}
DEFAULT_TINY: dict[str, Any] = dict(policy_kwargs=dict(net_arch=[16, 16]))


def _tiny(name: str, **kwargs: Any) -> dict[str, Any]:
    # buffer_size=0: no rows reserved for online transitions (some defaults reserve 1M)
    return {**TINY.get(name, DEFAULT_TINY), "batch_size": 32, "buffer_size": 0, "device": "cpu", **kwargs}


@pytest.mark.parametrize(
    ("saver", "loader"), [("bcq", "awac"), ("awac", "bcq"), ("td3bc", "iql"), ("cql", "calql"), ("calql", "cql")]
)
def test_checkpoint_of_another_algorithm_is_refused(
    small_transitions: Transitions, tmp_path: Path, saver: str, loader: str
) -> None:
    env = gym.make("Pendulum-v1")
    saved_class, loading_class = ALGOS[saver], ALGOS[loader]
    model = saved_class("MlpPolicy", env, dataset=small_transitions, **_tiny(saver))
    path = tmp_path / f"{saver}.zip"
    model.save(path)
    message = f"expected a {loading_class.__name__} checkpoint, found a {saved_class.__name__} checkpoint"
    with pytest.raises(ValueError, match=message) as error:
        loading_class.load(path, env=env)
    assert str(path) in str(error.value)
    with pytest.raises(ValueError, match=message):  # from a file object too, read from where it stands
        loading_class.load(io.BytesIO(path.read_bytes()), env=env)
    # the class that saved it loads it, from a path without the suffix and from a file object
    assert type(saved_class.load(tmp_path / saver, env=env)) is saved_class
    assert type(saved_class.load(io.BytesIO(path.read_bytes()), env=env)) is saved_class


def test_checkpoint_class_check_accepts_the_same_algorithm(small_transitions: Transitions, tmp_path: Path) -> None:
    class MyBCQ(BCQ):
        """A user's subclass: the same algorithm."""

    env = gym.make("Pendulum-v1")
    BCQ("MlpPolicy", env, dataset=small_transitions, **_tiny("bcq")).save(tmp_path / "bcq.zip")
    MyBCQ("MlpPolicy", env, dataset=small_transitions, **_tiny("bcq")).save(tmp_path / "my_bcq.zip")
    assert type(MyBCQ.load(tmp_path / "bcq.zip", env=env)) is MyBCQ
    assert type(BCQ.load(tmp_path / "my_bcq.zip", env=env)) is BCQ
    with pytest.raises(ValueError, match="expected a AWAC checkpoint, found a MyBCQ checkpoint"):
        AWAC.load(tmp_path / "my_bcq.zip", env=env)
    # a checkpoint saved before the class was recorded loads as before
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(tmp_path / "bcq.zip") as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "data":
                data = json.loads(content)
                del data[CHECKPOINT_CLASS_KEY]
                content = json.dumps(data).encode()
            target.writestr(item, content)
    assert type(BCQ.load(old, env=env)) is BCQ


# ------------------------------------------------------------------------------------- exact resume
def _policy_state(model: Any) -> dict[str, th.Tensor]:
    return {key: value.detach().clone() for key, value in model.policy.state_dict().items()}


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_resume_is_exact(small_transitions: Transitions, tmp_path: Path, name: str) -> None:
    env = gym.make("Pendulum-v1")
    algo = ALGOS[name]
    kwargs = _tiny(name, seed=3)
    # a phase that ends after the resume: its step counter must come back from the checkpoint
    kwargs.update({"calql": dict(bc_steps=14), "cql": dict(bc_steps=14), "plas": dict(vae_steps=14)}.get(name, {}))
    if name == "td3bc":  # a fixed-horizon schedule (over gradient steps) resumes where it was
        kwargs["learning_rate"] = CosineDecaySchedule(3e-4, horizon=20)
    straight = algo("MlpPolicy", env, dataset=small_transitions, **kwargs).learn(20)

    first = algo("MlpPolicy", env, dataset=small_transitions, **kwargs).learn(10)
    first.save(tmp_path / "half")
    th.manual_seed(1234)  # whatever happens to the generators in between, the checkpoint holds theirs
    np.random.seed(1234)
    resumed = algo.load(tmp_path / "half", env=env, dataset=small_transitions, device="cpu")
    resumed.learn(10, reset_num_timesteps=False)

    assert resumed.num_timesteps == straight.num_timesteps == 20
    assert resumed._n_updates == straight._n_updates
    expected, found = _policy_state(straight), _policy_state(resumed)
    assert expected.keys() == found.keys()
    different = [key for key in expected if not th.equal(expected[key], found[key])]
    assert not different, f"{name}: parameters differ after resuming: {different}"
    # and the half-way model really was different (the test can fail)
    half = _policy_state(first)
    assert any(not th.equal(half[key], expected[key]) for key in expected)
