"""DiscreteIQL: its networks and actor loss on plain tensors, and learning on CartPole."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import optuna
import pytest
import torch as th
from conftest import MemoryWriter
from discrete_data import cartpole_dataset
from gymnasium import spaces
from stable_baselines3.common.logger import Logger

from sb3_offline import DiscreteIQL
from sb3_offline.discrete_iql.discrete_iql import weighted_log_likelihood
from sb3_offline.discrete_iql.policies import CategoricalActor, DiscreteCritic, DiscreteIQLPolicy
from sb3_offline.evaluation import evaluate, evaluate_callable
from sb3_offline.zoo.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER


def test_categorical_actor_log_prob_is_the_log_softmax_at_the_action() -> None:
    th.manual_seed(0)
    actor = CategoricalActor(3, 4, [8], th.nn.ReLU)
    features, actions = th.randn(5, 3), th.tensor([[0], [3], [1], [2], [3]])
    logits = actor(features)
    expected = th.distributions.Categorical(logits=logits).log_prob(actions.squeeze(1)).unsqueeze(1)
    assert th.allclose(actor.log_prob(features, actions), expected)
    assert th.equal(actor.mode(features), logits.argmax(dim=1))


def test_discrete_critic_values_every_critic_at_the_data_action() -> None:
    th.manual_seed(0)
    critic = DiscreteCritic(3, 4, [8], th.nn.ReLU, n_critics=2)
    features, actions = th.randn(5, 3), th.tensor([[0], [3], [1], [2], [3]])
    all_values = critic(features)
    assert all_values.shape == (5, 2, 4)
    picked = critic.action_values(features, actions)
    assert th.equal(picked, all_values.gather(2, actions[:, None, :].expand(5, 2, 1)).squeeze(2))


def test_weighted_log_likelihood_weighs_each_action_by_its_advantage_weight() -> None:
    log_probs, weights = th.log(th.tensor([[0.5], [0.25]])), th.tensor([[2.0], [1.0]])
    expected = -(2.0 * th.log(th.tensor(0.5)) + th.log(th.tensor(0.25))) / 2
    assert weighted_log_likelihood(log_probs, weights).item() == pytest.approx(expected.item())


def test_policy_builds_the_authors_networks_and_acts_within_the_action_space() -> None:
    obs_space, act_space = spaces.Box(-1, 1, (4,)), spaces.Discrete(3)
    policy = DiscreteIQLPolicy(obs_space, act_space, lambda _: 3e-4)
    assert [m.out_features for m in policy.actor.modules() if isinstance(m, th.nn.Linear)] == [256, 256, 3]
    assert len(policy.critic.q_networks) == 2 and policy.critic_target.training is False
    assert all(hasattr(net, "optimizer") for net in (policy.actor, policy.critic, policy.value))
    actions, _ = policy.predict(obs_space.sample()[None], deterministic=True)
    assert actions.shape == (1,) and act_space.contains(int(actions[0]))
    with pytest.raises(ValueError, match="net_arch: expected keys among"):
        DiscreteIQLPolicy(obs_space, act_space, lambda _: 3e-4, net_arch={"actor": [8]})


# ------------------------------------------------------------------------------------------ the model
@pytest.fixture(scope="module")
def cartpole_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5000 transitions of the scripted CartPole controller with 30% random actions (episodes of about 260)."""
    return cartpole_dataset(tmp_path_factory.mktemp("cartpole") / "cartpole.hdf5", n_steps=5000, seed=0)


def test_defaults_are_iqls_authors(cartpole_file: Path) -> None:
    model = DiscreteIQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu")
    assert (model.expectile, model.temperature, model.max_weight) == (0.7, 3.0, 100.0)
    assert (model.batch_size, model.tau, model.gamma, model.learning_rate) == (256, 0.005, 0.99, 3e-4)
    assert model.policy.net_arch == {"pi": [256, 256], "qf": [256, 256], "vf": [256, 256]}
    assert set(model.learning_rates()) == {"critic", "value", "actor"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(expectile=1.0), r"expectile: expected a value in \(0, 1\), found 1.0"),
        (dict(temperature=-1.0), "temperature: expected >= 0, found -1.0"),
        (dict(max_weight=0.0), "max_weight: expected > 0, found 0.0"),
        (dict(actor_lr_decay_steps=0), "actor_lr_decay_steps: expected 'auto', None or >= 1 gradient step, found 0"),
    ],
)
def test_bad_settings_are_named(cartpole_file: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiscreteIQL("MlpPolicy", None, dataset=str(cartpole_file), **kwargs)


def test_one_update_in_the_authors_order(cartpole_file: Path) -> None:
    """V on the target critics; then the actor and the critics' target with the *new* V; the targets Polyak-averaged."""
    model = DiscreteIQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu", seed=0, batch_size=64)
    before = copy.deepcopy(model.policy)
    batches = []
    sample = model.replay_buffer.sample
    model.replay_buffer.sample = lambda *a, **k: batches.append(sample(*a, **k)) or batches[-1]  # type: ignore[method-assign]
    recorder = MemoryWriter()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    model.learn(1, log_interval=1)
    data, logged = batches[0], recorder.dumps[-1]
    actions = data.actions.long()
    with th.no_grad():
        target_q = before.critic_target(data.observations).gather(2, actions[:, None].expand(-1, 2, 1)).min(1).values
        u = target_q - before.value(data.observations)
        value_loss = (th.where(u > 0, 0.7, 0.3) * u**2).mean()
        new_value = model.value  # stepped once, before the actor and the critics
        weights = th.exp(3.0 * (target_q - new_value(data.observations))).clamp(max=100.0)
        actor_loss = -(weights * th.log_softmax(before.actor(data.observations), 1).gather(1, actions)).mean()
        y = data.rewards + 0.99 * (1 - data.dones) * new_value(data.next_observations)
        critic_loss = (before.critic.action_values(data.observations, actions) - y).pow(2).mean(0).sum()
    assert logged["train/value_loss"] == pytest.approx(value_loss.item(), rel=1e-5)
    assert logged["train/actor_loss"] == pytest.approx(actor_loss.item(), rel=1e-5)
    assert logged["train/critic_loss"] == pytest.approx(critic_loss.item(), rel=1e-5)
    for old, new, target in zip(
        before.critic_target.parameters(), model.critic.parameters(), model.critic_target.parameters(), strict=True
    ):
        assert th.allclose(target, 0.995 * old + 0.005 * new, atol=1e-7)


@pytest.mark.slow  # 12-40 s on the shared 2-core machine
def test_discrete_iql_learns_cartpole_from_the_controllers_data(cartpole_file: Path) -> None:
    """
    DiscreteIQL at its defaults (IQL's authors', the actor's cosine decay over the run) on 5000 transitions of the
    scripted controller with 30% random actions (its episodes: about 260), 400 gradient steps. Measured (10 evaluation
    episodes, seeds 100-109), data and training seeds 0-2: 500, 500, 500; random: about 22.
    """
    model = DiscreteIQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu", seed=0)
    model.learn(400, log_interval=None)
    ours = evaluate(model, "CartPole-v1", n_episodes=10, seed=100).mean_return
    random = evaluate_callable(gym.make("CartPole-v1"), None, n_episodes=10, seed=100)[0]
    assert ours > max(5 * random, 150), (ours, random)


def test_zoo_sampler_gives_constructor_arguments_and_the_converter_gives_them_back(cartpole_file: Path) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    hyperparams = HYPERPARAMS_SAMPLER["discrete_iql"](trial, 2, 1, {})
    assert HYPERPARAMS_CONVERTER["discrete_iql"](trial.params) == hyperparams
    model = DiscreteIQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu", **hyperparams)
    assert (model.expectile, model.temperature) == (hyperparams["expectile"], hyperparams["temperature"])
