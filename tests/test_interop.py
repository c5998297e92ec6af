"""
Data from the libraries users already have: d3rlpy datasets and files, imitation's trajectories and files, and
``sb3-offline convert`` between every format we read and write. Real files: ``tests/data/d3rlpy`` was written by
d3rlpy 2.8.1's own collection and ``dump``, ``tests/data/imitation`` by imitation 1.0.1's rollouts and ``serialize``
(each folder's ``make_fixture.py`` makes them again). Tests that need d3rlpy, imitation or ``datasets`` in this
Python skip without them (d3rlpy and imitation pin other gymnasium / SB3 versions than ours).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest

from sb3_offline.cli import main
from sb3_offline.datasets import (
    Transitions,
    from_d3rlpy,
    from_imitation,
    load_d3rlpy,
    load_imitation,
    load_transitions,
    save_d3rlpy,
    save_hdf5,
    save_minari,
    save_npz,
    to_mdp_dataset,
)
from sb3_offline.datasets.convert import read_dataset

DATA = Path(__file__).parent / "data"


def f32(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def assert_same(a: Transitions, b: Transitions, terminal_next: bool = True) -> None:
    """Equal transitions (observations compared as float32); ``terminal_next=False``: not the s' of terminations."""
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.terminations, b.terminations)
    np.testing.assert_array_equal(a.truncations, b.truncations)
    np.testing.assert_allclose(f32(a.actions).reshape(len(a), -1), f32(b.actions).reshape(len(b), -1), atol=1e-6)
    np.testing.assert_array_equal(f32(a.rewards), f32(b.rewards))
    keep = np.ones(len(a), dtype=bool) if terminal_next else ~np.asarray(a.terminations)
    if isinstance(a.observations, dict):
        assert isinstance(b.observations, dict) and set(a.observations) == set(b.observations)
        for key in a.observations:
            np.testing.assert_array_equal(f32(a.observations[key]), f32(b.observations[key]))
            np.testing.assert_array_equal(f32(a.next_observations[key])[keep], f32(b.next_observations[key])[keep])
    else:
        np.testing.assert_array_equal(f32(a.observations), f32(b.observations))
        np.testing.assert_array_equal(f32(a.next_observations)[keep], f32(b.next_observations)[keep])


# ----------------------------------------------------------------------------------------------- d3rlpy
def test_a_file_written_by_d3rlpy_reads_as_d3rlpy_samples_it() -> None:
    """d3rlpy's own collection + dump -> ours, compared with every transition d3rlpy's picker gives (no d3rlpy)."""
    data = load_transitions(DATA / "d3rlpy" / "collected.h5")  # recognised as a d3rlpy dump, not D4RL's layout
    expected = np.load(DATA / "d3rlpy" / "expected.npz")
    assert len(data) == len(expected["actions"]) == 54
    np.testing.assert_array_equal(data.observations, expected["observations"])
    np.testing.assert_array_equal(data.actions, expected["actions"])
    np.testing.assert_array_equal(data.rewards, expected["rewards"])
    # episodes end where d3rlpy's do: a termination for a terminated episode, a truncation for a timed-out one
    last, terminated = expected["last"], expected["terminated"]
    np.testing.assert_array_equal(data.terminations, last & terminated)
    np.testing.assert_array_equal(data.truncations, last & ~terminated)
    assert data.terminations.any() and data.truncations.any()
    np.testing.assert_array_equal(expected["terminal"] == 1.0, data.terminations)
    # s' is d3rlpy's wherever it bootstraps (d3rlpy zero-fills the s' of a termination; we repeat s)
    bootstraps = ~data.terminations
    np.testing.assert_array_equal(data.next_observations[bootstraps], expected["next_observations"][bootstraps])
    np.testing.assert_array_equal(data.next_observations[data.terminations], data.observations[data.terminations])


def test_d3rlpy_h5_round_trip_without_d3rlpy(inverted_transitions: Transitions, tmp_path: Path) -> None:
    path = save_d3rlpy(inverted_transitions, tmp_path / "inverted.h5")
    back = load_d3rlpy(path)
    assert back.env_id == inverted_transitions.env_id
    assert_same(inverted_transitions, back, terminal_next=False)
    # a D4RL-style .h5 is still read as D4RL's layout
    save_hdf5(inverted_transitions, tmp_path / "d4rl.h5")
    assert_same(inverted_transitions, load_transitions(tmp_path / "d4rl.h5"))


def test_d3rlpy_h5_with_dict_observations_and_rescaled_actions(
    fetch_transitions: Transitions, fetch_env_spaces: Any, tmp_path: Path
) -> None:
    _, action_space = fetch_env_spaces
    path = save_d3rlpy(fetch_transitions, tmp_path / "fetch.h5", action_space=action_space)
    back = load_d3rlpy(path)  # the keys and the bounds were recorded in the file
    assert_same(fetch_transitions, back)
    raw = load_d3rlpy(path, observation_keys=["a", "b", "c"], action_space=gym.spaces.Box(-1.0, 1.0, (4,)))
    assert set(raw.observations) == {"a", "b", "c"}


def test_d3rlpy_1x_layout(tmp_path: Path) -> None:
    """d3rlpy 1.x's MDPDataset.dump: flat rows with terminals and episode_terminals (d3rlpy's load_v1)."""
    import h5py

    obs = np.arange(14, dtype=np.float32).reshape(7, 2)
    with h5py.File(tmp_path / "v1.h5", "w") as f:
        f["observations"], f["actions"] = obs, np.ones((7, 1), dtype=np.float32)
        f["rewards"] = np.arange(7, dtype=np.float32)
        f["terminals"] = np.asarray([0, 0, 1, 0, 0, 0, 0], dtype=np.float32)
        f["episode_terminals"] = np.asarray([0, 0, 1, 0, 0, 0, 1], dtype=np.float32)
    data = load_transitions(tmp_path / "v1.h5")
    # 3 transitions of the terminated episode, 3 of the timed-out one (its last row is only the last s')
    assert len(data) == 6 and data.terminations.tolist() == [0, 0, 1, 0, 0, 0]
    assert data.truncations.tolist() == [0, 0, 0, 0, 0, 1]
    np.testing.assert_array_equal(data.next_observations[3:], obs[4:])


def test_missing_d3rlpy_is_named(inverted_transitions: Transitions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "d3rlpy", None)
    with pytest.raises(ImportError, match=r"to_mdp_dataset needs d3rlpy.*pip install d3rlpy"):
        to_mdp_dataset(inverted_transitions)


def test_mdp_dataset_both_ways(inverted_transitions: Transitions) -> None:
    pytest.importorskip("d3rlpy")
    from d3rlpy.dataset import BasicTransitionPicker

    dataset = to_mdp_dataset(inverted_transitions)
    assert dataset.transition_count == len(inverted_transitions)  # nothing lost, nothing added
    back = from_d3rlpy(dataset)
    assert_same(inverted_transitions, back, terminal_next=False)
    # every transition d3rlpy samples is ours, terminal flag included
    picker, row = BasicTransitionPicker(), 0
    for episode in dataset.episodes:
        for index in range(episode.transition_count):
            t = picker(episode, index)
            np.testing.assert_array_equal(t.observation, f32(inverted_transitions.observations[row]))
            assert t.terminal == float(inverted_transitions.terminations[row])
            if not t.terminal:
                np.testing.assert_array_equal(t.next_observation, f32(inverted_transitions.next_observations[row]))
            row += 1
    assert load_transitions(dataset).source.startswith("<d3rlpy")  # load_transitions takes it too


def test_mdp_dataset_rescaled_actions_and_d3rlpy_reads_our_file(
    pendulum_transitions: Transitions, tmp_path: Path
) -> None:
    pytest.importorskip("d3rlpy")
    from d3rlpy.dataset import InfiniteBuffer, ReplayBuffer

    space = gym.make("Pendulum-v1").action_space
    dataset = to_mdp_dataset(pendulum_transitions, action_space=space)
    actions = np.concatenate([e.actions for e in dataset.episodes])
    assert actions.min() >= -1.0 and actions.max() <= 1.0 and actions.min() < -0.9
    assert_same(pendulum_transitions, from_d3rlpy(dataset, action_space=space))
    # d3rlpy reads what save_d3rlpy writes, and we read what d3rlpy's dump writes
    save_d3rlpy(pendulum_transitions, tmp_path / "ours.h5")
    with open(tmp_path / "ours.h5", "rb") as f:
        loaded = ReplayBuffer.load(f, InfiniteBuffer())
    assert loaded.transition_count == len(pendulum_transitions)
    assert_same(pendulum_transitions, from_d3rlpy(loaded))
    with open(tmp_path / "theirs.h5", "w+b") as f:
        dataset.dump(f)
    assert_same(pendulum_transitions, load_d3rlpy(tmp_path / "theirs.h5", action_space=space))


def test_mdp_dataset_with_tuple_observations(fetch_transitions: Transitions) -> None:
    pytest.importorskip("d3rlpy")
    dataset = to_mdp_dataset(fetch_transitions)
    assert isinstance(dataset.episodes[0].observations, list | tuple)
    back = from_d3rlpy(dataset, observation_keys=sorted(fetch_transitions.observations))
    assert_same(fetch_transitions, back)


# -------------------------------------------------------------------------------------------- imitation
def imitation_expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "imitation" / "expected.npz") as data:
        return {key: data[key] for key in data.files}


def check_imitation(data: Transitions, mode: str = "infos") -> None:
    expected = imitation_expected()
    ends = np.cumsum(expected["lengths"]) - 1
    assert len(data) == int(expected["lengths"].sum())
    np.testing.assert_array_equal(data.observations, expected["observations"])
    np.testing.assert_array_equal(data.next_observations, expected["next_observations"])
    np.testing.assert_array_equal(np.asarray(data.actions).reshape(len(data), -1), expected["actions"])
    np.testing.assert_array_equal(data.rewards, expected["rewards"])
    cut = {
        "infos": expected["time_limit"],
        "truncation": np.ones(len(ends), bool),
        "termination": np.zeros(len(ends), bool),
    }[mode]
    assert data.truncations[ends].tolist() == cut.tolist()
    assert data.terminations[ends].tolist() == (~cut).tolist()
    assert data.episode_ends.sum() == len(ends)


@pytest.mark.parametrize("mode", ["infos", "termination", "truncation"])
def test_imitation_npz(mode: str) -> None:
    """imitation's .npz (numpy only); SB3's TimeLimit.truncated in the last info tells timeouts apart."""
    assert imitation_expected()["time_limit"].any() and not imitation_expected()["time_limit"].all()
    check_imitation(load_imitation(DATA / "imitation" / "trajectories.npz", terminal=mode), mode)


def test_imitation_huggingface_folder() -> None:
    pytest.importorskip("datasets")
    folder = DATA / "imitation" / "hf"
    check_imitation(load_imitation(folder))
    check_imitation(load_imitation(folder, terminal="truncation"), "truncation")
    check_imitation(load_transitions(folder))  # any dataset= argument takes the folder (not a Minari folder)


def test_imitation_trajectory_objects() -> None:
    """Real imitation Trajectory / TrajectoryWithRew / DictObs objects (imitation installed in this Python)."""
    types = pytest.importorskip("imitation.data.types")
    expected = imitation_expected()
    lengths = expected["lengths"]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    trajectories = []
    for start, length, cut in zip(starts, lengths, expected["time_limit"], strict=True):
        part = slice(start, start + length)
        obs = np.concatenate([expected["observations"][part], expected["next_observations"][start + length - 1][None]])
        infos = [{} for _ in range(length - 1)] + [{"TimeLimit.truncated": bool(cut)}]
        trajectories.append(
            types.TrajectoryWithRew(obs, expected["actions"][part], np.asarray(infos), True, expected["rewards"][part])
        )
    check_imitation(from_imitation(trajectories))
    no_rewards = [types.Trajectory(t.obs, t.acts, None, t.terminal) for t in trajectories]
    with pytest.raises(ValueError, match=r"field 'rews' of trajectory 0.*reward_fill=0.0"):
        from_imitation(no_rewards, terminal="truncation")
    with pytest.raises(ValueError, match=r"field 'infos' of trajectory 0.*TimeLimit.truncated.*terminal='termination'"):
        from_imitation(no_rewards, reward_fill=0.0)
    filled = from_imitation(no_rewards, terminal="termination", reward_fill=0.0)
    assert not filled.rewards.any() and filled.terminations.sum() == len(trajectories)
    # a fragment that stops before its episode's end (terminal=False) is a truncation whatever the option
    fragment = types.TrajectoryWithRew(trajectories[0].obs, trajectories[0].acts, None, False, trajectories[0].rews)
    assert from_imitation([fragment], terminal="termination").truncations[-1]
    # Dict observations
    dict_obs = types.DictObs({"x": trajectories[0].obs, "y": trajectories[0].obs[:, :2]})
    first = trajectories[0]
    both = from_imitation([types.TrajectoryWithRew(dict_obs, first.acts, first.infos, True, first.rews)])
    assert set(both.observations) == {"x", "y"} and both.next_observations["y"].shape == (lengths[0], 2)


def test_imitation_rollouts_made_now(tmp_path: Path) -> None:
    """imitation's own rollouts and serialize.save, made in this test, read back (imitation installed here)."""
    pytest.importorskip("imitation.data.rollout")
    from imitation.data import rollout, serialize
    from imitation.data.wrappers import RolloutInfoWrapper
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: RolloutInfoWrapper(gym.make("Pendulum-v1", max_episode_steps=15))])
    trajectories = rollout.generate_trajectories(
        None, venv, rollout.make_sample_until(None, 3), rng=np.random.default_rng(0)
    )
    data = from_imitation(trajectories)
    assert len(data) == 45 and data.truncations.sum() == 3 and not data.terminations.any()  # Pendulum never ends
    serialize.save(tmp_path / "demos", trajectories)
    assert_same(data, load_imitation(tmp_path / "demos"))


# ---------------------------------------------------------------------------------------------- convert
WRITERS = {
    "hdf5": lambda t, where: save_hdf5(t, where / "data.hdf5"),
    "npz": lambda t, where: save_npz(t, where / "data.npz"),
    "minari": lambda t, where: (save_minari(t, "inverted/src-v0"), "inverted/src-v0")[1],
    "d3rlpy": lambda t, where: save_d3rlpy(t, where / "data.h5"),
}
TARGETS = {"hdf5": "out.hdf5", "npz": "out.npz", "minari": "inverted/out-v0", "d3rlpy": "out.h5"}


@pytest.mark.parametrize("source", sorted(WRITERS))
def test_convert_between_every_format(
    source: str, inverted_transitions: Transitions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = str(WRITERS[source](inverted_transitions, tmp_path))
    for kind, name in TARGETS.items():
        target = name if kind == "minari" else str(tmp_path / name)
        args = ["convert", src, target, "--overwrite"] + (["--to", "d3rlpy"] if kind == "d3rlpy" else [])
        assert main(args) == 0
        n = len(inverted_transitions)
        assert f"wrote {n} transitions" in capsys.readouterr().out
        back = load_transitions(target)
        assert back.env_id == "InvertedPendulum-v5"
        # through d3rlpy, a termination's s' (never bootstrapped from) is not kept
        assert_same(inverted_transitions, back, terminal_next="d3rlpy" not in (source, kind))
    assert "inverted/out-v0" in minari.list_local_datasets()


def test_convert_imitation_and_sb3_buffers_to_minari(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    npz = str(DATA / "imitation" / "trajectories.npz")
    assert main(["convert", npz, "demos/inverted-v0"]) == 2  # an error of the input: one line on stderr
    assert re.match(
        r"sb3-offline convert: error: env: expected the data's gymnasium id.*--env", capsys.readouterr().err
    )
    assert main(["convert", npz, "demos/inverted-v0", "--env", "InvertedPendulum-v5"]) == 0
    check_imitation(load_transitions("demos/inverted-v0"))
    capsys.readouterr()
    # an SB3 replay buffer: its actions are mapped back with the env's Box
    from stable_baselines3 import TD3

    model = TD3("MlpPolicy", "Pendulum-v1", learning_starts=1000, buffer_size=1000, seed=0)
    model.learn(60)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    assert main(["convert", str(tmp_path / "buffer.pkl"), str(tmp_path / "buffer.hdf5"), "--env", "Pendulum-v1"]) == 0
    data = load_transitions(tmp_path / "buffer.hdf5")
    assert len(data) == 60 and np.abs(data.actions).max() > 1.0  # env units (Pendulum: [-2, 2])


def test_read_dataset_takes_a_named_format_and_imitation_objects(
    inverted_transitions: Transitions, tmp_path: Path
) -> None:
    """``read_dataset``: ``format=`` for a file whose name says nothing; imitation's options for its objects too."""
    renamed = tmp_path / "export.bin"
    renamed.write_bytes(save_d3rlpy(inverted_transitions, tmp_path / "dump.h5").read_bytes())
    with pytest.raises(ValueError, match=r"format= one of .*found suffix '\.bin'"):
        read_dataset(renamed)
    assert_same(inverted_transitions, read_dataset(renamed, format="d3rlpy"), terminal_next=False)
    npz = DATA / "imitation" / "trajectories.npz"
    with np.load(npz, allow_pickle=True) as data:
        indices = data["indices"]
        obs = np.split(data["obs"], indices + np.arange(1, len(indices) + 1))
        acts = np.split(data["acts"], indices)
        terminal = data["terminal"]
    trajectories = [
        SimpleNamespace(obs=o, acts=a, terminal=bool(t)) for o, a, t in zip(obs, acts, terminal, strict=True)
    ]
    objects = read_dataset(trajectories, imitation_terminal="truncation", reward_fill=0.0, env="InvertedPendulum-v5")
    from_file = read_dataset(npz, imitation_terminal="truncation")
    assert objects.env_id == "InvertedPendulum-v5" and not objects.rewards.any()
    np.testing.assert_array_equal(objects.observations, from_file.observations)
    np.testing.assert_array_equal(objects.truncations, from_file.truncations)


def test_convert_refuses_bad_targets(
    inverted_transitions: Transitions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = save_npz(inverted_transitions, tmp_path / "a.npz")
    assert main(["convert", str(src), str(tmp_path / "out.csv")]) == 2
    assert "error: target: expected a .hdf5/.h5 or .npz path or a Minari id" in capsys.readouterr().err
    save_npz(inverted_transitions, tmp_path / "b.npz")
    assert main(["convert", str(src), str(tmp_path / "b.npz")]) == 2
    assert re.search(r"already exists.*--overwrite", capsys.readouterr().err)
    with pytest.raises(FileExistsError, match=r"already exists.*--overwrite"):  # --debug: the exception itself
        main(["--debug", "convert", str(src), str(tmp_path / "b.npz")])
    with pytest.raises(SystemExit):
        main(["convert", str(src), str(tmp_path / "c.h5"), "--to", "parquet"])
