"""
Off-policy evaluation of policies on a ``Discrete`` action space (CartPole-v1 data): FQE (d3rlpy's ``DiscreteFQE``
layout: ``Q(s, .)`` read at the policy's action) finds the known value of each action's policy, its update is the
target by hand, and the offline metrics read a discrete model's ``q_net``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_offline import DiscreteBCQ
from sb3_offline.datasets import Transitions
from sb3_offline.ope import FQE, evaluate_offline
from sb3_offline.ope.policies import DiscreteCritic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(policy_kwargs=dict(net_arch=[32, 32]), device="cpu", seed=0)


H, GAMMA = 10, 0.9


class ChoiceClock(gym.Env):
    """The state is the time ``t / H``; action 1 earns 1, action 0 nothing; the episode ends after ``H`` steps."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)


def choice_clock_data(n_episodes: int, seed: int = 0) -> Transitions:
    """``n_episodes`` episodes of uniformly random actions (every action covered at every step)."""
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(H), n_episodes)
    actions = rng.integers(2, size=len(t))
    return Transitions(
        observations=(t / H).astype(np.float32)[:, None],
        actions=actions,
        rewards=actions.astype(np.float32),
        next_observations=((t + 1) / H).astype(np.float32)[:, None],
        terminations=t == H - 1,
        truncations=np.zeros(len(t), bool),
    )


@pytest.mark.parametrize("action, truth", [(1, (1 - GAMMA**H) / (1 - GAMMA)), (0, 0.0)])
def test_fqe_finds_the_known_value_of_each_action(action: int, truth: float) -> None:
    fqe = FQE(
        lambda obs: np.asarray(action), dataset=choice_clock_data(20), gamma=GAMMA, env=ChoiceClock(),
        learning_rate=1e-3, batch_size=64, target_update_interval=25, **TINY,
    )  # fmt: skip
    assert isinstance(fqe.critic, DiscreteCritic)
    fqe.learn(2000)
    assert fqe.estimate(n_bootstrap=50).value == pytest.approx(truth, abs=0.05 * 6.5)


def always_left(obs: np.ndarray) -> np.ndarray:
    return np.asarray(0)


def test_fqe_target_reads_the_policys_action(cartpole_transitions):
    """One update: ``r + gamma * (1 - termination) * Q'(s', pi(s'))`` with pi's index, by hand."""
    fqe = FQE(always_left, dataset=cartpole_transitions, env="CartPole-v1", **TINY)
    critic, target = (th.nn.Sequential(*m.q_networks[0]) for m in (fqe.critic, fqe.critic_target))
    expected = {name: p.detach().clone() for name, p in fqe.critic.named_parameters()}
    optimizer = th.optim.Adam(critic.parameters(), lr=1e-4)
    th.manual_seed(1)
    idx = fqe.replay_buffer.sample_indices(100)
    data = fqe.replay_buffer.gather(idx)
    with th.no_grad():
        y = data.rewards + (1 - data.dones) * 0.99 * target(data.next_observations)[:, :1]
    loss = ((critic(data.observations).gather(1, data.actions) - y) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    th.manual_seed(1)
    fqe.learn(1)
    found = dict(fqe.critic.named_parameters())
    assert any(not th.equal(found[name], value) for name, value in expected.items())
    for (_, ours), theirs in zip(found.items(), critic.parameters(), strict=True):
        th.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)


def test_offline_metrics_of_a_discrete_model(cartpole_file):
    model = DiscreteBCQ("MlpPolicy", None, dataset=str(cartpole_file), device="cpu", seed=0).learn(20)
    metrics = evaluate_offline(model, str(cartpole_file))
    assert {"td_error", "initial_state_value", "action_difference"} <= set(metrics)
    assert all(np.isfinite(value) for value in metrics.values())
    actions = model.predict(model.replay_buffer.observations.numpy(), deterministic=True)[0]
    mismatch = float((actions != model.replay_buffer.actions[:, 0].numpy()).mean())
    assert metrics["action_difference"] == pytest.approx(mismatch)
    fqe = FQE(model, dataset=str(cartpole_file), **TINY).learn(5)
    q = fqe.predict_value(model.replay_buffer.observations[:3].numpy(), np.array([0, 1, 1]))
    assert q.shape == (3,) and np.isfinite(q).all()
    with pytest.raises(ValueError, match=r"policy: expected action indices in 0..1"):
        fqe.predict_value(model.replay_buffer.observations[:1].numpy(), np.array([2]))
