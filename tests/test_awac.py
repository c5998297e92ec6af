"""AWAC: weights and target on hand-made tensors, rlkit's networks and defaults, the online batch size, learning on
Pendulum."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import Logger

from sb3_offline import AWAC
from sb3_offline.common.critics import critic_values
from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.weights import softmax_weights as advantage_weights
from sb3_offline.datasets import Transitions, record_transitions

SMALL = dict(net_arch=dict(pi=[64, 64], qf=[64, 64]))


def make(data: Any, env: gym.Env | None = None, **kwargs: Any) -> AWAC:
    kwargs.setdefault("policy_kwargs", SMALL)
    kwargs.setdefault("batch_size", 256)
    kwargs.setdefault("buffer_size", 0)
    return AWAC("MlpPolicy", env or gym.make("Pendulum-v1"), dataset=data, device="cpu", seed=0, **kwargs)


def test_advantage_weights_on_hand_made_tensors() -> None:
    advantages = th.tensor([[0.0], [2.0], [-2.0], [4.0]])
    weights = advantage_weights(advantages, beta=2.0)
    expected = np.exp(np.array([0.0, 1.0, -1.0, 2.0]))
    expected = 4 * expected / expected.sum()
    np.testing.assert_allclose(weights[:, 0].numpy(), expected, rtol=1e-6)
    assert weights.sum().item() == pytest.approx(4.0)  # they average to one
    np.testing.assert_allclose(advantage_weights(advantages + 100.0, beta=2.0).numpy(), weights.numpy(), rtol=1e-5)
    assert th.isfinite(advantage_weights(th.tensor([1e4, 0.0]), beta=0.1)).all()  # no overflow
    # a lower temperature concentrates the weight on the best action
    assert advantage_weights(advantages, beta=0.5)[3] > weights[3]


def test_defaults_follow_the_authors() -> None:
    model = AWAC(
        "MlpPolicy", gym.make("Pendulum-v1"), dataset=record_transitions("Pendulum-v1", 50, seed=0), device="cpu"
    )
    assert model.policy.net_arch == {"pi": [256, 256, 256, 256], "qf": [256, 256]}
    # rlkit: bc_batch_size 128 in the offline phase (pretrain_q_with_bc_data), 1024 online
    assert (model.batch_size, model.online_batch_size) == (128, 1024)
    assert (model.beta, model.tau, model.gamma) == (2.0, 5e-3, 0.99)
    actor_group = model.actor.optimizer.param_groups[0]
    assert actor_group["lr"] == 3e-4 and actor_group["weight_decay"] == 1e-4
    assert model.critic.optimizer.param_groups[0]["lr"] == 3e-4
    assert model.critic.optimizer.param_groups[0]["weight_decay"] == 0
    assert model.policy.actor_target is None and len(model.critic.q_networks) == 2
    assert model.buffer_size == 1_000_000  # rows for online fine-tuning after the dataset


def test_critic_target_has_no_entropy_term(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum)
    with th.no_grad():
        model.actor.log_std_logits.fill_(5.0)  # a wide policy: an entropy term would be large
    assert model.replay_buffer is not None
    data = model.replay_buffer.sample(64)
    th.manual_seed(3)
    target = model.compute_critic_target(data)
    th.manual_seed(3)
    with th.no_grad():
        features = model.policy.features(data.next_observations)
        next_actions = model.actor.distribution(features).sample().clamp(-1, 1)
        inputs = th.cat([features, next_actions], dim=1)
        next_q = th.min(model.critic_target.q_networks[0](inputs), model.critic_target.q_networks[1](inputs))
    np.testing.assert_allclose(target.numpy(), (data.rewards + (1 - data.dones) * 0.99 * next_q).numpy(), rtol=1e-6)


def test_advantage_uses_the_critics_before_their_update(imperfect_pendulum: Transitions) -> None:
    """rlkit computes Q(s, a_data) and V(s) = Q(s, a_pi) with the same critics, before the critic step."""
    model = make(imperfect_pendulum, batch_size=64)
    model.learn(5)  # critics and actor away from their initialisation
    before = copy.deepcopy(model)
    model._losses.flush(Logger(None, []))
    th.manual_seed(11)
    model._update(64)
    logged = model._losses.means()["advantage"]
    # the same random draws, in the same order, on the untouched copy
    th.manual_seed(11)
    assert before.replay_buffer is not None
    data = before.replay_buffer.sample(64)
    before.compute_critic_target(data)
    with th.no_grad():
        features = before.policy.features(data.observations)
        q_data = critic_values(before.critic, features, data.actions).min(dim=1).values
        value = critic_values(before.critic, features, before.actor.sample(features)).min(dim=1).values
    assert logged == pytest.approx((q_data - value).mean().item(), rel=1e-5, abs=1e-6)


def test_learn_online_uses_the_online_batch_size(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, batch_size=32, online_batch_size=48, buffer_size=100, learning_starts=10)
    sizes: list[int] = []
    sample = model.replay_buffer.sample  # type: ignore[union-attr]
    model.replay_buffer.sample = lambda n, env=None: sizes.append(n) or sample(n, env)  # type: ignore[union-attr,func-returns-value]
    model.learn(2)
    model.learn_online(12)
    assert sizes[:2] == [32, 32] and set(sizes[2:]) == {48} and model.batch_size == 32


def test_gaussian_actor_follows_rlkit() -> None:
    """tanh on the mean, last layer initialised in +-init_w (mean ~ 0 at start), log sigma -3 at start."""
    th.manual_seed(0)
    actor = GaussianActor(features_dim=3, action_dim=2, net_arch=[16, 16])
    linears = [m for m in actor.mu if isinstance(m, th.nn.Linear)]
    assert linears[-1].weight.abs().max().item() <= 1e-3 and linears[-1].bias.abs().max().item() == 0.0
    assert all(layer.bias.abs().max().item() == 0.0 for layer in linears[:-1])
    assert linears[0].weight.abs().max().item() <= 1 / 16**0.5  # fanin_init: +-1/sqrt(weight.shape[0])
    assert isinstance(actor.mu[-1], th.nn.Tanh)
    assert actor.log_std().detach().numpy() == pytest.approx([-3.0, -3.0])
    with th.no_grad():
        linears[-1].bias.fill_(100.0)
    assert th.all(actor.mu(th.zeros(4, 3)).abs() <= 1.0)  # the mean never leaves the action range
    for bad in (-1e-3, float("nan")):  # a negative bound (or NaN) is refused, naming the field
        with pytest.raises(ValueError, match=rf"init_w: expected None or >= 0 .*, found {bad}"):
            GaussianActor(features_dim=3, action_dim=2, net_arch=[16], init_w=bad)


def test_critics_start_with_rlkits_initialisation(imperfect_pendulum: Transitions) -> None:
    """rlkit's ``ConcatMlp`` (the authors' Q-functions): hidden weights in +-1/sqrt(out), biases 0, last +-3e-3."""
    model = make(imperfect_pendulum, policy_kwargs=dict(net_arch=dict(pi=[16], qf=[16, 32])))
    for q_net in model.critic.q_networks:
        linears = [m for m in q_net if isinstance(m, th.nn.Linear)]
        assert len(linears) == 3
        assert all(layer.weight.abs().max().item() <= 1 / layer.weight.shape[0] ** 0.5 for layer in linears[:-1])
        assert all(layer.bias.abs().max().item() == 0.0 for layer in linears)
        assert linears[-1].weight.abs().max().item() <= 3e-3
    for p, q in zip(model.critic.parameters(), model.critic_target.parameters(), strict=True):
        assert th.equal(p, q)


def test_gaussian_actor_log_std_bounds_and_boundary_actions() -> None:
    actor = GaussianActor(features_dim=3, action_dim=2, net_arch=[16], min_log_std=-6.0, max_log_std=0.0)
    for value in (-100.0, 0.0, 100.0):
        with th.no_grad():
            actor.log_std_logits.fill_(value)
        assert -6.0 <= actor.log_std().min().item() <= actor.log_std().max().item() <= 0.0
    # dataset actions on the bounds (saturated controllers) have a finite likelihood
    log_prob = actor.distribution(th.zeros(2, 3)).log_prob(th.tensor([[1.0, -1.0], [1.0, 1.0]]))
    assert th.isfinite(log_prob).all()
    assert th.all(actor.sample(th.randn(500, 3) * 50).abs() <= 1.0)


def test_gaussian_actor_log_std_modes() -> None:
    # "sigmoid" (rlkit, AWAC; the default): unchanged, log sigma -3 at start within [-6, 0]
    sigmoid = GaussianActor(features_dim=3, action_dim=2, net_arch=[8])
    assert sigmoid.log_std_mode == "sigmoid" and hasattr(sigmoid, "log_std_logits")
    assert not hasattr(sigmoid, "log_std_values")
    assert sigmoid.log_std().detach().numpy() == pytest.approx([-3.0, -3.0])
    # "clip" (IQL's authors): a free parameter started at 0, clipped to [min, max], no gradient beyond
    clip = GaussianActor(
        features_dim=3, action_dim=2, net_arch=[8], min_log_std=-5.0, max_log_std=2.0, log_std_mode="clip"
    )
    assert clip.log_std().detach().numpy() == pytest.approx([0.0, 0.0])
    with th.no_grad():
        clip.log_std_values.copy_(th.tensor([-9.0, 0.5]))
    assert clip.log_std().detach().numpy() == pytest.approx([-5.0, 0.5])
    clip.log_std().sum().backward()
    assert clip.log_std_values.grad is not None
    assert clip.log_std_values.grad.numpy() == pytest.approx([0.0, 1.0])
    with th.no_grad():
        clip.log_std_values.fill_(100.0)
    assert clip.log_std().detach().numpy() == pytest.approx([2.0, 2.0])
    assert th.isfinite(clip.distribution(th.zeros(2, 3)).log_prob(th.tensor([[1.0, -1.0], [1.0, 1.0]]))).all()
    # a range without 0: the parameter starts at the nearest bound
    shifted = GaussianActor(3, 2, [8], min_log_std=-6.0, max_log_std=-1.0, log_std_mode="clip")
    assert shifted.log_std().detach().numpy() == pytest.approx([-1.0, -1.0])
    with pytest.raises(ValueError, match=r"log_std_mode: expected one of \('sigmoid', 'clip'\), found 'tanh'"):
        GaussianActor(3, 2, [8], log_std_mode="tanh")


@pytest.mark.slow  # more than 15 s on a busy 2-core machine
def test_awac_learns_offline_on_imperfect_demonstrations(
    imperfect_pendulum: Transitions, pendulum_return, one_torch_thread
) -> None:
    """
    The BCQ paper's imperfect demonstrations (-393 on the evaluation episodes), 4000 gradient steps at rlkit's
    defaults (64-64 networks instead of 256 x 4 and 256 x 2). Measured (conftest's 10 evaluation episodes; random
    -1284), training seeds 0-4: -521, -393, -441, -496, -443 (mean -459, std 46; after 5000 steps -312 to -556,
    after 3000 -638 to -881: still learning); the bar, random + 500 = -784, is 263 below the worst seed.
    """
    model = AWAC(
        "MlpPolicy", "Pendulum-v1", dataset=imperfect_pendulum, device="cpu", seed=0, buffer_size=0,
        policy_kwargs=dict(net_arch=dict(pi=[64, 64], qf=[64, 64])),
    )  # fmt: skip
    model.learn(4000, log_interval=None)
    awac_return, random_return = pendulum_return(model), pendulum_return(None)
    assert awac_return > random_return + 500, (awac_return, random_return)
