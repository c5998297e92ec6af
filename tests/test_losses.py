"""
The loss pieces the algorithms share, against hand computations: the critic loss, the advantage weights, the VAE
loss in the env's units, the action-units rule itself (and its checkpoints), and the squashed Gaussian (SB3's).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from conftest import BOX_NAMES
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution

from sb3_offline.algorithms import ALGOS
from sb3_offline.common.actions import action_squared_error, loss_action_scale
from sb3_offline.common.critics import critic_loss
from sb3_offline.common.squashed_gaussian import squashed_gaussian_log_prob, squashed_gaussian_sample
from sb3_offline.common.vae import vae_loss
from sb3_offline.common.weights import exp_weights, expectile_loss, expectile_weights, softmax_weights

CHECKPOINTS = Path(__file__).parent / "data" / "checkpoints"


# ------------------------------------------------------------------------------------------ critics
def test_critic_loss_sums_one_mse_per_critic() -> None:
    current = th.tensor([[1.0, 2.0], [3.0, 5.0]])
    target = th.tensor([[0.0], [1.0]])
    # critic 1: ((1-0)^2 + (3-1)^2) / 2 = 2.5; critic 2: ((2-0)^2 + (5-1)^2) / 2 = 10
    assert critic_loss(current, target).item() == pytest.approx(12.5)
    with pytest.raises(ValueError, match="target_q"):
        critic_loss(current, target.reshape(-1))


# ------------------------------------------------------------------------------------------ weights
def test_advantage_weights_in_their_three_forms() -> None:
    advantages = th.tensor([-1.0, 0.0, 1.0, 10.0])
    expected = [math.exp(-3), 1, math.exp(3), 100]  # exp(3 * A), clipped at 100
    np.testing.assert_allclose(exp_weights(advantages, temperature=3.0).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(expectile_weights(advantages, 0.7).numpy(), [0.3, 0.3, 0.7, 0.7], rtol=1e-6)
    weights = softmax_weights(advantages, beta=2.0)
    assert weights.sum().item() == pytest.approx(4.0)
    # the expectile loss is asymmetric: a positive error weighs expectile, a negative 1 - expectile
    assert expectile_loss(th.tensor([2.0]), 0.9).item() == pytest.approx(0.9 * 4)
    assert expectile_loss(th.tensor([-2.0]), 0.9).item() == pytest.approx(0.1 * 4)
    for bad in (lambda: softmax_weights(advantages, 0.0), lambda: expectile_weights(advantages, 1.0)):
        with pytest.raises(ValueError):
            bad()


# ------------------------------------------------------------------------------------- action units
def test_vae_loss_in_the_env_units_on_a_box_with_bound_two() -> None:
    """The authors' reconstruction error is taken on the env's actions (bound 2 on Pendulum), not on [-1, 1]'s."""
    space = spaces.Box(-2.0, 2.0, (2,), np.float32)
    scale = loss_action_scale(space, "env")
    assert scale.tolist() == [2.0, 2.0]
    reconstruction = th.tensor([[0.5, -0.5], [0.0, 1.0]])
    actions = th.tensor([[0.0, 0.0], [0.25, 0.75]])
    mean, std = th.zeros(2, 4), th.ones(2, 4)  # KL 0
    _, recon, kl = vae_loss(reconstruction, actions, mean, std, kl_weight=0.5, action_scale=scale)
    env_recon, env_actions = 2.0 * reconstruction, 2.0 * actions  # [-1, 1] -> [-2, 2]
    by_hand = ((env_recon - env_actions) ** 2).mean()
    assert recon.item() == pytest.approx(by_hand.item()) and kl.item() == pytest.approx(0.0, abs=1e-7)
    assert recon.item() == pytest.approx(4 * th.nn.functional.mse_loss(reconstruction, actions).item())


def test_action_units_change_nothing_on_a_unit_box() -> None:
    space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    prediction, target = th.randn(5, 3), th.randn(5, 3)
    scaled = action_squared_error(prediction, target, loss_action_scale(space, "env"))
    assert th.equal(scaled, th.nn.functional.mse_loss(prediction, target))  # bit for bit
    asymmetric = spaces.Box(np.array([0.0, -3.0], np.float32), np.array([1.0, 1.0], np.float32))
    assert loss_action_scale(asymmetric, "env").tolist() == [0.5, 2.0]
    assert loss_action_scale(asymmetric, "normalized").tolist() == [1.0, 1.0]


@pytest.mark.parametrize("name", BOX_NAMES)  # a Discrete action has no units
def test_action_losses_are_on_normalized_actions_unless_env_units_are_asked(
    name: str, tiny_model, pendulum_transitions
) -> None:
    """Every algorithm takes ``action_units`` (default ``"normalized"``); ``"env"`` scales by Pendulum's bound 2."""
    model = tiny_model(name, pendulum_transitions)
    assert model.action_units == "normalized" and model._action_scale.tolist() == [1.0]
    model = tiny_model(name, pendulum_transitions, action_units="env")
    assert model.action_units == "env" and model._action_scale.tolist() == [2.0]
    with pytest.raises(ValueError, match=r"action_units: expected one of \('env', 'normalized'\), found 'meters'"):
        tiny_model(name, pendulum_transitions, action_units="meters")


@pytest.mark.parametrize("name", ["bcq", "bc", "plas", "td3bc", "awac"])
def test_checkpoints_keep_the_units_they_were_trained_in(name: str, tmp_path) -> None:
    """
    The checkpoints of 0.1.0 record no ``action_units``: BCQ's, BC's, PLAS's and TD3+BC's trained in the env's units
    (InvertedPendulum's bound 3) and go on in them; a new checkpoint records its own; ``load`` may override it.
    """
    algorithm = ALGOS[name]
    old = CHECKPOINTS / f"{name}.zip"
    with zipfile.ZipFile(old) as archive:
        assert "action_units" not in json.loads(archive.read("data"))
    units = "normalized" if name == "awac" else "env"
    model = algorithm.load(old, device="cpu")
    assert model.action_units == units and model._action_scale.tolist() == ([1.0] if name == "awac" else [3.0])
    model.action_units = "normalized" if units == "env" else "env"
    model.save(tmp_path / "new")
    assert algorithm.load(tmp_path / "new", device="cpu").action_units == model.action_units
    with open(tmp_path / "new.zip", "rb") as file:  # a file object, as SB3's load takes it
        assert algorithm.load(file, device="cpu", action_units=units).action_units == units


def test_squashed_gaussian_is_sb3s_distribution() -> None:
    th.manual_seed(0)
    mean, log_std = th.randn(6, 2), 0.5 * th.randn(6, 2)
    sb3 = SquashedDiagGaussianDistribution(2)
    actions = th.tensor([[0.3, -1.0], [1.0, 0.2], [0.0, 0.0], [-0.99, 0.5], [0.1, 0.9999], [-1.0, 1.0]])
    expected_density = sb3.proba_distribution(mean, log_std).log_prob(actions)
    th.testing.assert_close(squashed_gaussian_log_prob(mean, log_std, actions)[:, 0], expected_density)
    th.manual_seed(1)
    sampled, log_prob = squashed_gaussian_sample(mean, log_std, n_samples=3)
    th.manual_seed(1)
    repeated = mean.repeat_interleave(3, 0), log_std.repeat_interleave(3, 0)
    expected, expected_log_prob = sb3.log_prob_from_params(*repeated)
    assert sampled.shape == (18, 2) and log_prob.shape == (18, 1)
    th.testing.assert_close(sampled, expected)
    th.testing.assert_close(log_prob[:, 0], expected_log_prob)
