"""
DiscreteBCQ (Fujimoto, Conti, Ghavamzadeh, Pineau 2019): the authors' defaults, the generative model's threshold
(acting and the target take the best allowed action), the authors' update computed by hand on one batch, the
target network's schedules, and learning above a random policy on CartPole-v1 at its defaults.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from discrete_data import cartpole_dataset, cartpole_return

from sb3_offline import DiscreteBCQ
from sb3_offline.discrete_bcq.policies import allowed_actions, masked_argmax

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_defaults_are_the_authors_non_atari_settings(cartpole_transitions):
    model = DiscreteBCQ("MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu")
    assert (model.learning_rate, model.batch_size, model.tau, model.gamma) == (3e-4, 64, 0.005, 0.99)
    assert (model.threshold, model.logit_penalty, model.target_update_interval, model.exploration_rate) == (
        0.3,
        1e-2,
        1,
        0.0,
    )
    layers = [m.out_features for m in model.q_net.q_net if isinstance(m, th.nn.Linear)]
    assert layers == [256, 256, 2] == [m.out_features for m in model.imitation.q_net if isinstance(m, th.nn.Linear)]
    optimized = {id(p) for group in model.q_net.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in [*model.q_net.parameters(), *model.imitation.parameters()]}
    assert model.policy.threshold == 0.3


def _constant_head(network: th.nn.Module, values: list[float]) -> None:
    last = [m for m in network.modules() if isinstance(m, th.nn.Linear)][-1]
    with th.no_grad():
        last.weight.zero_()
        last.bias.copy_(th.tensor(values))


def test_acting_takes_the_best_allowed_action(cartpole_transitions):
    """G(a|s) favours action 0 (ratio e^-3 ~ 0.05 for action 1), Q favours action 1: BCQ picks 0 unless tau < 0.05."""
    model = DiscreteBCQ("MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu", threshold=0.3)
    _constant_head(model.imitation, [3.0, 0.0])
    _constant_head(model.q_net, [0.0, 1.0])
    observations = cartpole_transitions.observations[:10]
    assert (model.predict(observations, deterministic=True)[0] == 0).all()
    model.policy.threshold = 0.01
    assert (model.predict(observations, deterministic=True)[0] == 1).all()
    logits = th.tensor([[0.0, np.log(0.3) - 1e-4, np.log(0.3) + 1e-4]])
    assert allowed_actions(logits, 0.3).tolist() == [[1.0, 0.0, 1.0]]
    assert masked_argmax(th.tensor([[0.0, 5.0, 1.0]]), allowed_actions(logits, 0.3)).item() == 2


def test_one_update_is_the_authors(cartpole_transitions):
    """The authors' ``train`` written out on the batch the update draws: the same parameters after one step."""
    model = DiscreteBCQ("MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu", seed=0)
    q, target, imitation = (copy.deepcopy(n) for n in (model.q_net, model.q_net_target, model.imitation))
    optimizer = th.optim.Adam([*q.parameters(), *imitation.parameters()], lr=3e-4)
    th.manual_seed(5)
    batch = model.replay_buffer.sample(64)
    with th.no_grad():
        probabilities = F.log_softmax(imitation(batch.next_observations), dim=1).exp()
        allowed = (probabilities / probabilities.max(1, keepdim=True)[0] > 0.3).float()
        next_action = (allowed * q(batch.next_observations) + (1 - allowed) * -1e8).argmax(1, keepdim=True)
        not_done = 1 - batch.dones
        target_q = batch.rewards + not_done * 0.99 * target(batch.next_observations).gather(1, next_action)
    current_q = q(batch.observations).gather(1, batch.actions)
    logits = imitation(batch.observations)
    loss = F.smooth_l1_loss(current_q, target_q) + F.nll_loss(F.log_softmax(logits, 1), batch.actions.reshape(-1))
    loss = loss + 1e-2 * logits.pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with th.no_grad():
        for param, target_param in zip(q.parameters(), target.parameters(), strict=True):
            target_param.copy_(0.005 * param + 0.995 * target_param)

    th.manual_seed(5)
    model.learn(1)
    for ours, theirs in ((model.q_net, q), (model.imitation, imitation), (model.q_net_target, target)):
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            th.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_atari_style_target_copies_every_interval(cartpole_transitions):
    model = DiscreteBCQ(
        "MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu", tau=1.0, target_update_interval=4
    )
    first = [p.detach().clone() for p in model.q_net_target.parameters()]
    model.learn(3)
    assert all(th.equal(a, b) for a, b in zip(first, model.q_net_target.parameters(), strict=True))
    model.learn(1, reset_num_timesteps=False)
    assert all(th.equal(a, b) for a, b in zip(model.q_net.parameters(), model.q_net_target.parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(threshold=1.5), "threshold: expected a ratio of probabilities in"),
        (dict(target_update_interval=0), "target_update_interval: expected >= 1"),
        (dict(exploration_rate=-0.1), "exploration_rate: expected a probability"),
    ],
)
def test_bad_settings_are_named(cartpole_transitions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DiscreteBCQ("MlpPolicy", "CartPole-v1", dataset=cartpole_transitions, device="cpu", **kwargs)


def test_learns_above_a_random_policy_at_its_defaults(tmp_path):
    """On 3000 steps of a noisy controller's CartPole data (about 330 per episode), 500 updates at the defaults."""
    data = cartpole_dataset(tmp_path / "cartpole.hdf5", 3000, seed=0)
    model = DiscreteBCQ("MlpPolicy", None, dataset=data, seed=0, device="cpu").learn(500)
    random = cartpole_return(None)
    assert random < 30
    assert cartpole_return(model) > 4 * random
