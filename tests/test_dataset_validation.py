"""Validation of transitions against the env's spaces: real data passes, each kind of bad field is named with what
was expected and found, actions within tolerance are clipped; the error pickles."""

from __future__ import annotations

import dataclasses
import pickle
import re

import gymnasium as gym
import numpy as np
import pytest
from transitions_checks import (
    assert_transitions_equal,
    copy_rows,
    offline_buffer,
)

from sb3_offline.datasets import (
    DatasetValidationError,
    Transitions,
    save_hdf5,
    save_npz,
    validate_transitions,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


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
        validate_transitions(pendulum_transitions, pendulum_env.observation_space, gym.spaces.MultiDiscrete([3]))
    with pytest.raises(DatasetValidationError, match="field 'action_space': expected finite bounds"):
        validate_transitions(
            pendulum_transitions, pendulum_env.observation_space, gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        )


def test_validation_error_pickles(pendulum_transitions: Transitions, pendulum_env: gym.Env) -> None:
    with pytest.raises(DatasetValidationError) as info:
        validate_transitions(
            pendulum_transitions.select(np.arange(0)), pendulum_env.observation_space, pendulum_env.action_space
        )
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value) and copy.field == "actions"
