"""DiscreteBC (d3rlpy's): its defaults and loss computed by hand, and learning above a random policy on CartPole-v1."""

from __future__ import annotations

import copy

import pytest
import torch as th
import torch.nn.functional as F
from discrete_data import cartpole_dataset, cartpole_return

from sb3_offline import DiscreteBC

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_defaults_are_d3rlpys(cartpole_transitions):
    model = DiscreteBC("MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu")
    assert (model.learning_rate, model.batch_size, model.beta) == (1e-3, 100, 0.5)
    assert [m.out_features for m in model.actor.q_net if isinstance(m, th.nn.Linear)] == [256, 256, 2]


def test_one_update_is_cross_entropy_with_the_logit_penalty(cartpole_transitions):
    model = DiscreteBC("MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu", seed=0)
    actor = copy.deepcopy(model.actor)
    optimizer = th.optim.Adam(actor.parameters(), lr=1e-3)
    th.manual_seed(3)
    batch = model.replay_buffer.sample(100)
    logits = actor(batch.observations)
    loss = F.cross_entropy(logits, batch.actions.reshape(-1)) + 0.5 * (logits**2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    th.manual_seed(3)
    model.learn(1)
    for ours, theirs in zip(model.actor.parameters(), actor.parameters(), strict=True):
        th.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)


def test_learns_above_a_random_policy_at_its_defaults(tmp_path):
    """On 3000 steps of a noisy controller's CartPole data (about 330 per episode), 500 updates at the defaults."""
    data = cartpole_dataset(tmp_path / "cartpole.hdf5", 3000, seed=0)
    model = DiscreteBC("MlpPolicy", None, dataset=data, seed=0, device="cpu").learn(500)
    random = cartpole_return(None)
    assert random < 30
    assert cartpole_return(model) > 4 * random
