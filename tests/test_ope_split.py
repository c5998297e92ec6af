"""Held-out episodes (sb3_offline.ope.split_episodes): whole episodes, reproducible, both parts valid sources."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.datasets import Transitions, load_transitions, validate_transitions
from sb3_offline.ope import split_episodes
from sb3_offline.ope.split import dataset_episodes


def episodes(transitions: Transitions) -> list[Transitions]:
    return [transitions.select(part) for part in transitions.episode_slices()]


def same_episode(a: Transitions, b: Transitions) -> bool:
    return (
        len(a) == len(b)
        and np.allclose(a.observations, b.observations, rtol=1e-6, atol=1e-6)  # a buffer holds float32
        and np.allclose(a.next_observations, b.next_observations, rtol=1e-6, atol=1e-6)
        and np.allclose(a.actions, b.actions, atol=1e-5)
        and np.allclose(a.rewards, b.rewards, atol=1e-5)
        and np.array_equal(a.terminations, b.terminations)
        and np.array_equal(a.truncations, b.truncations)
    )


def check_whole_episodes(original: Transitions, split, train: Transitions, validation: Transitions) -> None:
    """Each part is exactly the original's chosen episodes, in order, flags and all; together, every episode once."""
    source = episodes(original)
    train_eps, validation_eps = episodes(train), episodes(validation)
    assert len(train_eps) == len(split.train_episodes) and len(validation_eps) == len(split.validation_episodes)
    assert sorted([*split.train_episodes, *split.validation_episodes]) == list(range(len(source)))
    for index, part in zip(split.train_episodes, train_eps, strict=True):
        assert same_episode(source[index], part)
    for index, part in zip(split.validation_episodes, validation_eps, strict=True):
        assert same_episode(source[index], part)
    assert len(train) + len(validation) == len(original)


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_split_never_cuts_an_episode_and_both_parts_validate(inverted_transitions, tmp_path: Path, fmt: str) -> None:
    # InvertedPendulum with a 20-step limit: terminations and time-limit cuts mixed, episodes of many lengths
    env = gym.make("InvertedPendulum-v5")
    split = split_episodes(inverted_transitions, 0.25, seed=3, output=tmp_path / "parts", format=fmt)
    assert split.train == str(tmp_path / "parts" / f"train.{fmt}")
    assert split.validation == str(tmp_path / "parts" / f"validation.{fmt}")
    train, validation = load_transitions(split.train), load_transitions(split.validation)
    check_whole_episodes(inverted_transitions, split, train, validation)
    n_episodes = len(inverted_transitions.episode_slices())
    assert len(split.validation_episodes) == round(0.25 * n_episodes)
    for part in (split.train, split.validation):
        validate_transitions(load_transitions(part), env.observation_space, env.action_space)
        buffer = OfflineReplayBuffer(0, env.observation_space, env.action_space, device="cpu", dataset=part)
        assert buffer.n_episodes == len(episodes(load_transitions(part)))
    assert split.n_train_transitions == len(train) and split.n_validation_transitions == len(validation)


def test_split_is_reproducible_by_seed(pendulum_transitions) -> None:
    first = split_episodes(pendulum_transitions, 0.4, seed=7)
    again = split_episodes(pendulum_transitions, 0.4, seed=7)
    assert np.array_equal(first.validation_episodes, again.validation_episodes)
    assert same_episode(first.validation, again.validation) and same_episode(first.train, again.train)
    others = {tuple(split_episodes(pendulum_transitions, 0.4, seed=s).validation_episodes) for s in range(8)}
    assert len(others) > 1  # the seed matters
    assert isinstance(first.train, Transitions)  # nothing written without output
    check_whole_episodes(pendulum_transitions, first, first.train, first.validation)


def test_split_from_the_buffer_index_writes_the_datasets_units(inverted_transitions, tmp_path: Path) -> None:
    # the buffer holds [-1, 1] actions and transformed rewards; the written parts are in the dataset's units
    env = gym.make("InvertedPendulum-v5")
    buffer = OfflineReplayBuffer(
        0,
        env.observation_space,
        env.action_space,
        device="cpu",
        dataset=inverted_transitions,
        reward_transform=dict(scale=2.0, shift=-1.0),
    )
    transitions, starts, lengths = dataset_episodes(buffer)
    assert np.array_equal(starts, buffer.episode_starts.numpy())
    assert np.array_equal(lengths, buffer.episode_lengths.numpy())
    assert transitions.actions == pytest.approx(inverted_transitions.actions, abs=1e-5)  # back in the env's units
    assert transitions.rewards == pytest.approx(inverted_transitions.rewards, abs=1e-5)  # the transform undone
    split = split_episodes(buffer, 0.3, seed=0, output=tmp_path)
    check_whole_episodes(inverted_transitions, split, load_transitions(split.train), load_transitions(split.validation))
    # the same split as from the file: one episode index
    direct = split_episodes(inverted_transitions, 0.3, seed=0)
    assert np.array_equal(direct.validation_episodes, split.validation_episodes)


def test_split_as_minari_ids(pendulum_transitions) -> None:
    split = split_episodes(pendulum_transitions, 0.2, seed=0, output="pendulum/random-v0", format="minari")
    assert (split.train, split.validation) == ("pendulum/random-train-v0", "pendulum/random-validation-v0")
    validation = load_transitions(split.validation)
    check_whole_episodes(pendulum_transitions, split, load_transitions(split.train), validation)
    assert validation.env_id == "Pendulum-v1"
    with pytest.raises(FileExistsError):
        split_episodes(pendulum_transitions, 0.2, seed=0, output="pendulum/random-v0", format="minari")


def test_split_keeps_a_trailing_unclosed_episode_whole(tmp_path: Path) -> None:
    # the last run of rows that no flag closes is an episode too (the buffer's rule)
    n = 7
    obs = np.arange(n, dtype=np.float32)[:, None]
    data = Transitions(
        obs, np.zeros((n, 1), np.float32), np.ones(n, np.float32), obs + 1, np.zeros(n, bool), np.zeros(n, bool)
    )
    data.terminations[1] = True
    data.truncations[4] = True
    assert len(data.episode_slices()) == 3
    split = split_episodes(data, 0.5, seed=1, output=tmp_path)
    check_whole_episodes(data, split, load_transitions(split.train), load_transitions(split.validation))


def test_split_bad_input(pendulum_transitions, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        split_episodes(pendulum_transitions, 1.0)
    with pytest.raises(ValueError, match="format"):
        split_episodes(pendulum_transitions, 0.5, format="csv")
    with pytest.raises(ValueError, match="at least 2 episodes"):
        split_episodes(pendulum_transitions.select(slice(0, 200)), 0.5)
    with pytest.raises(ValueError, match="Minari id"):
        split_episodes(pendulum_transitions, 0.5, output="not an id", format="minari")
    split_episodes(pendulum_transitions, 0.5, output=tmp_path)
    with pytest.raises(FileExistsError, match="overwrite"):
        split_episodes(pendulum_transitions, 0.5, output=tmp_path)
    split_episodes(pendulum_transitions, 0.5, output=tmp_path, overwrite=True)
