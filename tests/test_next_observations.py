"""``derive_next_observations``: the next observation within an episode, never across one (a property test and
small examples), and the session fixtures left unmutated by the dataset tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_offline.datasets import (
    derive_next_observations,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


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
