"""BCQ: its losses on hand-made tensors, its networks' shapes, save/load, and learning on Pendulum data."""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_offline import BCQ
from sb3_offline.common.critics import soft_clipped_target
from sb3_offline.common.perturbation import PerturbationActor
from sb3_offline.common.vae import ConditionalVAE, vae_loss
from sb3_offline.datasets import Transitions, pendulum_imperfect_demonstrations, record_transitions, save_hdf5
from sb3_offline.evaluation import evaluate_callable

SMALL = dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128]))


@pytest.fixture(scope="module")
def imperfect_pendulum() -> Transitions:
    """A decent but noisy behaviour policy (the BCQ paper's imperfect demonstrations), 5000 transitions."""
    return pendulum_imperfect_demonstrations(5000, seed=0)


# ------------------------------------------------------------------------------------- the losses
def test_kl_term_matches_closed_form() -> None:
    mean = th.tensor([[0.0, 1.0], [2.0, -1.0]])
    std = th.tensor([[1.0, 0.5], [2.0, 1.0]])
    # KL(N(mu, s) || N(0, 1)) per dimension = 0.5 * (mu^2 + s^2 - 1 - log s^2)
    per_dim = [
        0.5 * (m**2 + s**2 - 1 - math.log(s**2))
        for m, s in zip(mean.flatten().tolist(), std.flatten().tolist(), strict=True)
    ]
    expected_kl = sum(per_dim) / len(per_dim)
    actions = th.zeros(2, 3)
    reconstruction = th.full((2, 3), 0.5)
    total, recon, kl = vae_loss(reconstruction, actions, mean, std, kl_weight=0.5)
    assert kl.item() == pytest.approx(expected_kl, rel=1e-6)
    assert recon.item() == pytest.approx(0.25)
    assert total.item() == pytest.approx(0.25 + 0.5 * expected_kl, rel=1e-6)
    # the prior itself has no KL
    assert vae_loss(actions, actions, th.zeros(4, 2), th.ones(4, 2))[2].item() == pytest.approx(0.0, abs=1e-7)


def test_eq13_target_with_known_q_values() -> None:
    # two next states, n = 3 sampled actions each, two critics
    next_q = th.tensor(
        [
            [1.0, 3.0],  # state 0, sample 0: 0.75 * 1 + 0.25 * 3 = 1.5
            [2.0, 2.0],  #          sample 1: 2.0   <- max for state 0
            [0.0, 4.0],  #          sample 2: 1.0
            [-1.0, -3.0],  # state 1, sample 0: 0.75 * -3 + 0.25 * -1 = -2.5
            [-2.0, 0.0],  #          sample 1: -1.5  <- max for state 1
            [-4.0, -4.0],  #          sample 2: -4.0
        ]
    )
    rewards = th.tensor([[1.0], [0.5]])
    dones = th.tensor([[0.0], [1.0]])
    target = soft_clipped_target(next_q, rewards, dones, gamma=0.9, lmbda=0.75, n_samples=3)
    assert target.shape == (2, 1)
    assert target[0, 0].item() == pytest.approx(1.0 + 0.9 * 2.0)
    assert target[1, 0].item() == pytest.approx(0.5)  # a termination does not bootstrap
    # lambda = 1 is clipped double Q (min over critics)
    target_min = soft_clipped_target(next_q, rewards, th.zeros(2, 1), gamma=1.0, lmbda=1.0, n_samples=3)
    assert target_min[:, 0].tolist() == pytest.approx([1.0 + 2.0, 0.5 - 2.0])


def test_perturbation_is_bounded_by_phi() -> None:
    th.manual_seed(0)
    actor = PerturbationActor(features_dim=5, action_dim=3, net_arch=[32], phi=0.05)
    with th.no_grad():
        actor.net[-2].weight.mul_(100.0)  # push tanh to saturation
    features = th.randn(500, 5)
    actions = th.empty(500, 3).uniform_(-1, 1)
    perturbed = actor(features, actions)
    assert th.all((perturbed - actions).abs() <= 0.05 + 1e-6)
    assert (perturbed - actions).abs().max() > 0.045  # saturated: the bound is reached, not just respected
    edge = actor(features, th.ones(500, 3))
    assert th.all(edge <= 1.0)


def test_vae_prior_samples_are_clipped() -> None:
    vae = ConditionalVAE(features_dim=4, action_dim=2, latent_dim=4, net_arch=[16, 16])
    seen = []
    vae.decoder.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0][:, 4:].clone()))
    actions = vae.decode(th.randn(1000, 4))
    assert actions.shape == (1000, 2) and th.all(actions.abs() <= 1.0)
    assert seen[0].abs().max() <= 0.5 and seen[0].abs().max() > 0.45


# --------------------------------------------------------------------------- the model, as a user
def test_defaults_follow_the_paper() -> None:
    model = BCQ(
        "MlpPolicy", gym.make("Pendulum-v1"), dataset=record_transitions("Pendulum-v1", 50, seed=0), device="cpu"
    )
    policy = model.policy
    assert policy.net_arch == {"pi": [400, 300], "qf": [400, 300], "vae": [750, 750]}
    assert policy.latent_dim == 2 and policy.phi == 0.05 and policy.n_action_samples == 100
    assert model.target_action_samples == 10 and model.lmbda == 0.75 and model.kl_weight == 0.5
    assert (model.batch_size, model.tau, model.gamma) == (100, 0.005, 0.99)
    for optimizer in (model.vae.optimizer, model.actor.optimizer, model.critic.optimizer):
        assert optimizer.param_groups[0]["lr"] == 1e-3
    assert len(model.critic.q_networks) == 2


def test_shapes_box_single_and_batch(imperfect_pendulum: Transitions) -> None:
    env = gym.make("Pendulum-v1")
    model = BCQ("MlpPolicy", env, dataset=imperfect_pendulum, policy_kwargs=SMALL, device="cpu", seed=0)
    model.learn(20)
    obs = imperfect_pendulum.observations[:7]
    batch, _ = model.predict(obs, deterministic=True)
    single, _ = model.predict(obs[0], deterministic=True)
    assert batch.shape == (7, 1) and single.shape == (1,)
    assert np.all(np.abs(batch) <= 2.0)


def test_asymmetric_action_bounds() -> None:
    """Actions in [-1, 3]: predictions stay in the env's Box, the perturbation is Phi * (high - low) / 2."""
    env = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), min_action=-1.0, max_action=3.0)
    data = record_transitions(env, 400, seed=0)
    assert data.actions.min() < 0.0 and data.actions.max() > 2.0
    model = BCQ("MlpPolicy", env, dataset=data, policy_kwargs=SMALL, device="cpu", seed=0)
    assert model.replay_buffer is not None
    scaled = model.replay_buffer.actions
    assert scaled.min() >= -1.0 and scaled.max() <= 1.0
    np.testing.assert_allclose(scaled[:, 0].numpy(), (data.actions[:, 0] - 1.0) / 2.0, atol=1e-6)
    model.learn(20)
    actions, _ = model.predict(data.observations[:50], deterministic=True)
    assert np.all(actions >= -1.0) and np.all(actions <= 3.0)


def test_dict_observations(tmp_path: Path) -> None:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FetchReach-v4")
    data = record_transitions(env, 120, seed=0)
    model = BCQ("MultiInputPolicy", env, dataset=data, policy_kwargs=SMALL, device="cpu", seed=0, batch_size=32)
    model.learn(10)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4,)
    batch = {key: np.stack([value] * 3) for key, value in obs.items()}
    assert model.predict(batch, deterministic=True)[0].shape == (3, 4)
    model.save(tmp_path / "bcq_fetch")
    loaded = BCQ.load(tmp_path / "bcq_fetch", env=env)
    th.manual_seed(1)
    expected = model.predict(batch)[0]
    th.manual_seed(1)
    np.testing.assert_allclose(loaded.predict(batch)[0], expected)


def test_save_load_same_actions_for_same_seed(imperfect_pendulum: Transitions, tmp_path: Path) -> None:
    path = save_hdf5(imperfect_pendulum, tmp_path / "imperfect.hdf5")
    env = gym.make("Pendulum-v1")
    model = BCQ("MlpPolicy", env, dataset=str(path), policy_kwargs=SMALL, device="cpu", seed=0)
    model.learn(50)
    model.save(tmp_path / "bcq")
    loaded = BCQ.load(tmp_path / "bcq", env=env)
    obs = imperfect_pendulum.observations[:20]
    th.manual_seed(7)
    before, _ = model.predict(obs, deterministic=True)
    th.manual_seed(7)
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(before, after)
    for name in ("vae", "actor", "actor_target", "critic", "critic_target"):
        for a, b in zip(
            getattr(model.policy, name).parameters(), getattr(loaded.policy, name).parameters(), strict=True
        ):
            assert th.equal(a, b), name
    # optimizers come back too, and training continues from the saved dataset reference
    assert loaded.vae.optimizer.state_dict()["state"][0]["step"] == 50
    loaded.learn(10, reset_num_timesteps=False)
    assert loaded.num_timesteps == 60


def test_bcq_beats_random_on_imperfect_demonstrations(imperfect_pendulum: Transitions) -> None:
    env = gym.make("Pendulum-v1")
    model = BCQ("MlpPolicy", env, dataset=imperfect_pendulum, policy_kwargs=SMALL, device="cpu", seed=0)
    model.learn(3000)
    env.reset(seed=100)  # the same start states on every run (an unseeded env draws them from the OS)
    bcq_return, _ = evaluate_policy(model, env, n_eval_episodes=5, deterministic=True)
    # a uniformly random policy scores about -1200 on Pendulum-v1; the data's behaviour about -360
    random_return, _ = evaluate_callable(env, None, n_episodes=5, seed=100)
    assert bcq_return > random_return + 400, (bcq_return, random_return)
