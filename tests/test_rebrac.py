"""ReBRAC: the authors' defaults and initialisation, the data's next actions, its target and actor loss by hand, the
delayed updates and the actor target's one-step lag, online fine-tuning, and learning on imperfect Pendulum
demonstrations."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_offline import ReBRAC
from sb3_offline.collect import episode_returns
from sb3_offline.common.ensemble import VectorizedLayerNorm, VectorizedLinear
from sb3_offline.datasets import Transitions
from sb3_offline.rebrac.rebrac import dataset_next_actions

TINY = dict(net_arch=[16, 32])
ROOT = Path(__file__).resolve().parents[1]


def make(data: Any, env: gym.Env | None = None, **kwargs: Any) -> ReBRAC:
    kwargs.setdefault("policy_kwargs", TINY)
    kwargs.setdefault("batch_size", 64)
    return ReBRAC("MlpPolicy", env or gym.make("Pendulum-v1"), dataset=data, device="cpu", seed=0, **kwargs)


def parameters(module: th.nn.Module) -> list[th.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[th.Tensor], b: list[th.Tensor]) -> bool:
    return all(th.equal(x, y) for x, y in zip(a, b, strict=True))


# ------------------------------------------------------------------------------------------ defaults
def test_defaults_follow_the_authors(pendulum_transitions: Transitions) -> None:
    model = ReBRAC("MlpPolicy", gym.make("Pendulum-v1"), dataset=pendulum_transitions, device="cpu")
    assert model.policy.net_arch == [256, 256, 256]
    assert [m.out_features for m in model.actor.mu if isinstance(m, th.nn.Linear)] == [256, 256, 256, 1]
    assert not any(isinstance(m, th.nn.LayerNorm) for m in model.actor.modules())  # actor_ln False
    critic = model.critic.q_net
    assert critic.n_members == 2 and critic.linears[0].in_features == 3 + 1  # [s, a]
    norms = [m for m in critic.net if isinstance(m, VectorizedLayerNorm)]
    assert len(norms) == 3 and all(n.eps == 1e-6 for n in norms)  # flax's LayerNorm after each ReLU
    assert (model.batch_size, model.tau, model.gamma) == (1024, 0.005, 0.99)
    assert (model.actor_bc_coef, model.critic_bc_coef, model.normalize_q) == (1.0, 1.0, True)
    assert (model.policy_delay, model.target_policy_noise, model.target_noise_clip) == (2, 0.2, 0.5)
    assert model.actor.optimizer.param_groups[0]["lr"] == 1e-3
    assert model.critic.optimizer.param_groups[0]["lr"] == 1e-3
    assert not model.normalize_observations and model.action_units == "normalized"


def test_initialisation_is_the_authors(pendulum_transitions: Transitions) -> None:
    """Hidden weights uniform in +-1/sqrt(fan_in), hidden biases 0.1, output layers uniform in +-1e-3 / +-3e-3."""
    model = ReBRAC("MlpPolicy", gym.make("Pendulum-v1"), dataset=pendulum_transitions, device="cpu", seed=1)
    actor = [m for m in model.actor.mu if isinstance(m, th.nn.Linear)]
    critic: list[VectorizedLinear] = model.critic.q_net.linears
    for layer in actor[:-1]:
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
        assert th.all(layer.bias == 0.1)
    for layer in critic[:-1]:
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
        assert th.all(layer.bias == 0.1)
        assert not th.equal(layer.weight[0], layer.weight[1])  # members drawn apart
    assert actor[-1].weight.abs().max() <= 1e-3 and actor[-1].bias.abs().max() <= 1e-3
    assert critic[-1].weight.abs().max() <= 3e-3 and critic[-1].bias.abs().max() <= 3e-3
    assert same(parameters(model.actor), parameters(model.actor_target))
    assert same(parameters(model.critic), parameters(model.critic_target))


def test_bad_hyper_parameters_are_refused(pendulum_transitions: Transitions) -> None:
    for kwargs, field in [
        (dict(actor_bc_coef=-1.0), "actor_bc_coef"),
        (dict(critic_bc_coef=-0.1), "critic_bc_coef"),
        (dict(policy_delay=0), "policy_delay"),
        (dict(target_noise_clip=-0.5), "target_noise_clip"),
        (dict(replay_buffer_class=HerReplayBuffer), "replay_buffer_class"),
    ]:
        with pytest.raises(ValueError, match=field):
            make(pendulum_transitions, **kwargs)


# ------------------------------------------------------------------------------------ next actions
def test_next_actions_are_the_next_rows_of_the_episode(inverted_transitions: Transitions) -> None:
    """The next row's action inside an episode; none at terminations, truncations and the data's last row."""
    env = gym.make("InvertedPendulum-v5", max_episode_steps=20)
    model = make(inverted_transitions, env=env)
    buffer = model.replay_buffer
    assert buffer is not None
    n = len(inverted_transitions)
    idx = th.arange(n)
    next_actions, exists = dataset_next_actions(buffer, idx)
    ends = inverted_transitions.terminations | inverted_transitions.truncations
    ends[-1] = True
    np.testing.assert_array_equal(exists[:, 0].numpy(), (~ends).astype(np.float32))
    inside = np.flatnonzero(~ends)
    np.testing.assert_allclose(next_actions[inside].numpy(), buffer.actions[inside + 1].numpy())
    # inside an episode, the next row's state is this row's next state
    np.testing.assert_array_equal(
        inverted_transitions.observations[inside + 1], inverted_transitions.next_observations[inside]
    )


def test_online_rows_next_actions_follow_each_env(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, buffer_size=60, learning_starts=10_000)
    model.learn_online(25)  # no update (learning_starts): 25 steps into a 60-row ring
    buffer = model.replay_buffer
    start = buffer.dataset_size
    idx = th.arange(start, start + 25)
    next_actions, exists = dataset_next_actions(buffer, idx)
    assert exists[:-1].all() and exists[-1] == 0  # the newest row's next action is not known yet
    th.testing.assert_close(next_actions[:-1], buffer.actions[start + 1 : start + 25])
    th.testing.assert_close(buffer.observations[start + 1 : start + 25], buffer.next_observations[start : start + 24])


# ------------------------------------------------------------------------------------------ the losses
def test_target_by_hand(imperfect_pendulum: Transitions, monkeypatch: pytest.MonkeyPatch) -> None:
    model = make(imperfect_pendulum, critic_bc_coef=0.3)
    model.learn(20)
    buffer = model.replay_buffer
    idx = th.tensor([100, 101, 199, 300])
    data = buffer.gather(idx)
    next_actions, exists = dataset_next_actions(buffer, idx)
    noise = th.tensor([[0.9], [-0.1], [0.3], [-0.7]])
    monkeypatch.setattr(th, "randn_like", lambda x: noise.clone())
    target = model.compute_critic_target(data, next_actions, exists)
    with th.no_grad():
        smoothed = (model.actor_target(data.next_observations) + (0.2 * noise).clamp(-0.5, 0.5)).clamp(-1, 1)
        q = th.stack([mlp(th.cat([data.next_observations, smoothed], dim=1)) for mlp in members(model.critic_target)])
        penalty = 0.3 * exists * (smoothed - next_actions).pow(2).sum(dim=1, keepdim=True)
        expected = data.rewards + 0.99 * (1 - data.dones) * (q.min(dim=0).values - penalty)
    th.testing.assert_close(target, expected)
    assert exists[2] == 0 and exists[[0, 1, 3]].all()  # row 199 ends an episode of 200 steps


def members(critic: Any) -> list[th.nn.Module]:
    from sb3_offline.common.ensemble import member_mlps

    return member_mlps(critic.q_net)


def test_actor_loss_by_hand(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, actor_bc_coef=0.4)
    model.learn(20)
    data = model.replay_buffer.gather(th.arange(100, 108))
    loss, bc, lmbda = model.compute_actor_loss(data)
    with th.no_grad():
        pi = model.actor(data.observations)
        q = th.stack([mlp(th.cat([data.observations, pi], dim=1)) for mlp in members(model.critic)]).min(dim=0).values
    expected_lambda = 1 / q.abs().mean()
    penalty = (pi - data.actions).pow(2).sum(dim=1, keepdim=True)
    th.testing.assert_close(lmbda, expected_lambda)
    th.testing.assert_close(bc.detach(), penalty.mean())
    th.testing.assert_close(loss.detach(), (0.4 * penalty - expected_lambda * q).mean())
    plain = make(imperfect_pendulum, normalize_q=False)
    assert plain.compute_actor_loss(data)[2] == 1.0


def test_delayed_updates_and_the_actor_target_lag(imperfect_pendulum: Transitions) -> None:
    """The actor moves at updates 1, 3, 5 ...; its target follows the actor as it was before that update."""
    model = make(imperfect_pendulum, tau=0.5)
    actor0, target0 = parameters(model.actor), parameters(model.actor_target)
    critic0 = parameters(model.critic)
    model.learn(1)
    actor1, target1 = parameters(model.actor), parameters(model.actor_target)
    assert not same(actor0, actor1)
    for t, t0, a0 in zip(target1, target0, actor0, strict=True):
        th.testing.assert_close(t, 0.5 * a0 + 0.5 * t0)  # the old actor (equal to the target at the start)
    critic1, critic_target1 = parameters(model.critic), parameters(model.critic_target)
    for t, c0, c1 in zip(critic_target1, critic0, critic1, strict=True):
        th.testing.assert_close(t, 0.5 * c1 + 0.5 * c0)  # the critics just updated
    model.learn(1, reset_num_timesteps=False)
    assert same(actor1, parameters(model.actor)) and same(target1, parameters(model.actor_target))
    model.learn(1, reset_num_timesteps=False)
    assert not same(actor1, parameters(model.actor))


def test_learn_online_continues_with_exploration_noise(imperfect_pendulum: Transitions) -> None:
    noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
    model = make(imperfect_pendulum, buffer_size=500, learning_starts=50, action_noise=noise)
    model.learn(10)
    actor = parameters(model.actor)
    model.learn_online(200)
    assert model._n_updates == 10 + 150 and not same(actor, parameters(model.actor))
    assert model.replay_buffer.online_size == 200


# ------------------------------------------------------------------------------------------- learning
@pytest.mark.slow  # minutes on a busy 2-core machine
def test_rebrac_learns_from_imperfect_demonstrations(
    imperfect_pendulum: Transitions, pendulum_return, one_torch_thread
) -> None:
    """
    The BCQ paper's imperfect demonstrations, 3000 gradient steps at the authors' defaults (3 x 64 networks instead
    of 3 x 256): above the data. Measured (conftest's 10 evaluation episodes; random -1284, the data's episodes -359
    on average), training seeds 0-2: -259, -340, -277 (with d3rlpy's penalties 0.001/0.01, halfcheetah-medium's:
    -1048 at seed 0). The bars: random + 500, and the data's return (100 below seed 0's).
    """
    model = ReBRAC(
        "MlpPolicy", "Pendulum-v1", dataset=imperfect_pendulum, device="cpu", seed=0,
        policy_kwargs=dict(net_arch=[64, 64, 64]),
    )  # fmt: skip
    model.learn(3000, log_interval=None)
    rebrac_return, random_return = pendulum_return(model), pendulum_return(None)
    data_return = float(np.mean(episode_returns(imperfect_pendulum)))
    assert rebrac_return > random_return + 500, (rebrac_return, random_return)
    assert rebrac_return > data_return, (rebrac_return, data_return)


def test_example_runs(tmp_path: Path) -> None:
    """``examples/rebrac_pendulum.py`` end to end, shortened: offline, save, load, online fine-tuning."""
    spec = importlib.util.spec_from_file_location("rebrac_pendulum", ROOT / "examples" / "rebrac_pendulum.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    argv = ["--offline-steps", "20", "--online-steps", "30", "--transitions", "600", "--width", "16", "--episodes", "1"]
    rows = example.main([*argv, "--output", str(tmp_path)])
    assert [name for name, _, _ in rows] == ["behaviour", "offline", "fine-tuned"]
    assert (tmp_path / "rebrac_offline.zip").is_file()
