"""BCQ: its losses on hand-made tensors, its networks and the authors' defaults, and learning on Pendulum data."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch as th

from sb3_offline import BCQ
from sb3_offline.common.critics import soft_clipped_target
from sb3_offline.common.perturbation import PerturbationActor
from sb3_offline.common.vae import ConditionalVAE, vae_loss
from sb3_offline.datasets import Transitions, record_transitions

SMALL = dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128]))


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


@pytest.mark.slow  # more than 15 s on a busy 2-core machine
def test_bcq_learns_from_imperfect_demonstrations(
    imperfect_pendulum: Transitions, pendulum_return, one_torch_thread
) -> None:
    """
    The BCQ paper's imperfect demonstrations (a noisy swing-up controller, -393 on the evaluation episodes), 3000
    gradient steps at the paper's defaults (networks 64-64 and a 128-128 VAE instead of 400-300 and 750-750).
    Measured (conftest's 10 evaluation episodes; random -1284), training seeds 0-4: -218, -217, -220, -217, -217
    (mean -218, std 1; with the VAE's reconstruction in the env's units, ``action_units="env"``: -244, -233, -247,
    -377, -247); the bar, random + 500 = -784, is 564 below the worst seed.
    """
    model = BCQ("MlpPolicy", "Pendulum-v1", dataset=imperfect_pendulum, policy_kwargs=SMALL, device="cpu", seed=0)
    model.learn(3000, log_interval=None)
    bcq_return, random_return = pendulum_return(model), pendulum_return(None)
    assert bcq_return > random_return + 500, (bcq_return, random_return)
