"""
Dataset files that cannot be read, and bad flags in readable ones:

- every reader of a dataset file (the loaders, ``dataset_env_id``, ``recover_env``, an algorithm's constructor)
  turns a file that is not what its name says (random bytes, a truncated copy of a real file, an empty file)
  into a ``DatasetValidationError`` naming the path, the format expected and what the file holds;
- errors about the flags name the field as the source spells it (``terminals`` in D4RL's HDF5).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import TD3

from sb3_offline import BCQ, TD3BC
from sb3_offline.datasets import (
    DatasetValidationError,
    Transitions,
    load_transitions,
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
def real_files(pendulum_transitions: Transitions, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real small file of each format, written by the project's writers (and SB3's ``save_replay_buffer``)."""
    folder = tmp_path_factory.mktemp("real")
    model = TD3(
        "MlpPolicy", "Pendulum-v1", learning_starts=10, buffer_size=100, policy_kwargs=dict(net_arch=[16]), device="cpu"
    )
    model.learn(30)
    model.save_replay_buffer(folder / "buffer.pkl")
    return {
        ".hdf5": save_hdf5(pendulum_transitions, folder / "data.hdf5"),
        ".h5": save_hdf5(pendulum_transitions, folder / "data.h5"),
        ".npz": save_npz(pendulum_transitions, folder / "data.npz"),
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
def test_broken_minari_folder(pendulum_transitions: Transitions, tmp_path: Path, breakage: str) -> None:
    dataset = save_minari(pendulum_transitions, "pendulum/faults-v0", env="Pendulum-v1")
    original = Path(dataset.storage.data_path).parent
    folder = tmp_path / "copy"
    shutil.copytree(original, folder)
    assert len(load_minari(folder)) == len(pendulum_transitions)  # the intact copy reads
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
def test_flag_error_names_the_field_as_the_source_spells_it(pendulum_transitions: Transitions, tmp_path: Path) -> None:
    env = gym.make("Pendulum-v1")
    arrays = {
        "observations": pendulum_transitions.observations,
        "next_observations": pendulum_transitions.next_observations,
        "actions": pendulum_transitions.actions,
        "rewards": pendulum_transitions.rewards,
        "timeouts": pendulum_transitions.truncations.astype(np.float32),
    }
    bad = pendulum_transitions.terminations.astype(np.float32)
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
    minari_data = load_transitions(save_minari(pendulum_transitions, "pendulum/flags-v0", env="Pendulum-v1"))
    minari_data.terminations = minari_data.terminations.astype(np.float32)
    minari_data.terminations[3] = 2.0
    with pytest.raises(DatasetValidationError, match=r"field 'terminations': expected 0/1 flags, found 2.0 at index 3"):
        validate_transitions(minari_data, env.observation_space, env.action_space)


@pytest.mark.parametrize("suffix", [".hdf5", ".h5"])
def test_bytes_that_are_no_hdf5_file_are_called_so(tmp_path: Path, suffix: str) -> None:
    """Random bytes whose first byte is pickle's mark (0x80) are "not an HDF5 file", named by the signature."""
    path = tmp_path / f"random{suffix}"
    path.write_bytes(b"\x80" + np.random.default_rng(1).bytes(4095))
    for read in (load_transitions, load_hdf5, dataset_env_id, recover_env):
        with pytest.raises(DatasetValidationError) as error:
            read(path)
        message = str(error.value)
        assert "not an HDF5 file" in message and repr(b"\x89HDF\r\n\x1a\n") in message, message
        assert "pickle" not in message, message


@pytest.mark.parametrize("name", ["nope.hdf5", "nope.npz", "nope.pkl", "no/such/folder"])
def test_a_missing_dataset_is_called_missing(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an env, a dataset that is not there says so (not "pass env=gym.make(...)")."""
    monkeypatch.chdir(tmp_path)
    for make in (recover_env, lambda source: BCQ("MlpPolicy", None, dataset=source)):
        with pytest.raises(FileNotFoundError) as error:
            make(name)
        assert f"dataset '{name}'" in str(error.value) and "env=gym.make" not in str(error.value), str(error.value)
