"""FQE's precomputed actions of the evaluated policy: asked once per distinct state, the same as asked at every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th

from sb3_offline.common.observations import obs_index
from sb3_offline.ope import FQE
from sb3_offline.ope.fqe_inputs import dataset_policy_actions, following_states

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


class CountingPolicy:
    """A deterministic controller that counts the states it is asked at."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.asked += len(obs)
        return np.clip(np.tanh(obs[..., :1] - 0.5 * obs[..., 2:3]) * 3.0, -2.0, 2.0).astype(np.float32)


def test_each_distinct_state_is_asked_once_and_the_actions_are_those_of_every_row(pendulum_file: Path) -> None:
    policy = CountingPolicy()
    fqe = FQE(policy, dataset=str(pendulum_file), env="Pendulum-v1", vectorized=True, device="cpu", seed=0)
    buffer = fqe.replay_buffer
    rows = buffer.size()
    n_episodes = len(buffer.episode_starts)
    assert policy.asked == rows + n_episodes  # every state, then the episodes' last next states (was 2 * rows)
    evaluator = fqe.evaluator()
    every_row = evaluator.actions(obs_index(buffer.next_observations, slice(0, rows)), 1)
    assert th.equal(fqe._next_policy_actions, every_row)
    assert th.equal(fqe._policy_actions, evaluator.actions(obs_index(buffer.observations, slice(0, rows)), 1))


def test_a_sampling_policy_shares_its_draws_between_a_next_state_and_the_next_row(
    pendulum_file: Path, tiny_model
) -> None:
    model = tiny_model("bcq", str(pendulum_file))  # BCQ: 100 sampled candidates per state, the best one
    fqe = FQE(model, dataset=str(pendulum_file), device="cpu", seed=0, policy_kwargs=dict(net_arch=[16]))
    buffer = fqe.replay_buffer
    rows = slice(0, buffer.size())
    following = following_states(obs_index(buffer.observations, rows), obs_index(buffer.next_observations, rows))
    ends = buffer.episode_starts[1:] - 1
    assert not following[ends].any() and not following[-1] and following.sum() == buffer.size() - len(ends) - 1
    actions, next_actions = dataset_policy_actions(fqe.evaluator(), buffer, 1)
    index = following.nonzero().squeeze(1)
    assert th.equal(next_actions[index], actions[index + 1])
    fresh = (~following).nonzero().squeeze(1)
    assert next_actions.abs().max() <= 1.0 and not th.equal(next_actions[fresh], actions[fresh])
