"""
The vectorised critic ensemble (``sb3_offline/common/ensemble.py``): shapes, each member equal to a plain
``nn.Linear`` MLP with the same weights, the per-member initialisation, the LayerNorm option, and the critic on
``Box`` (Pendulum) and ``Dict`` (FetchReach) observations of recorded data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, create_mlp
from torch import nn

from sb3_offline.common.ensemble import (
    EnsembleCritic,
    EnsembleMLP,
    VectorizedLayerNorm,
    VectorizedLinear,
    fanin_init,
    load_members,
    member_mlps,
    stack_state_dicts,
)


def _pendulum_batch(transitions, rows: int = 64) -> tuple[th.Tensor, th.Tensor]:
    obs = th.as_tensor(transitions.observations[:rows], dtype=th.float32)
    actions = th.as_tensor(transitions.actions[:rows], dtype=th.float32) / 2.0  # Pendulum's [-2, 2] to [-1, 1]
    return obs, actions


def test_vectorized_linear_shapes_and_members():
    th.manual_seed(0)
    layer = VectorizedLinear(5, 7, 4)
    assert layer.weight.shape == (4, 5, 7) and layer.bias.shape == (4, 1, 7)
    x = th.randn(4, 3, 5)
    out = layer(x)
    assert out.shape == (4, 3, 7)
    for member in range(4):
        expected = x[member] @ layer.weight[member] + layer.bias[member]
        assert (out[member] - expected).abs().max() < 1e-6
        assert (layer.member_forward(x[member], member) - expected).abs().max() < 1e-6
    with pytest.raises(ValueError, match="n_members: expected an integer >= 1, found 0"):
        VectorizedLinear(5, 7, 0)


def test_init_is_nn_linear_member_by_member():
    """Member i's draws are those of an nn.Linear made after members 0..i-1: the same distribution, other values."""
    th.manual_seed(3)
    layer = VectorizedLinear(256, 256, 10)
    th.manual_seed(3)
    linears = [nn.Linear(256, 256) for _ in range(10)]
    for member, linear in enumerate(linears):
        assert th.equal(layer.weight[member], linear.weight.detach().T)
        assert th.equal(layer.bias[member, 0], linear.bias.detach())
    # the members differ, and each is uniform in +-1/sqrt(fan_in) with fan_in the input size (std bound/sqrt(3))
    assert not th.equal(layer.weight[0], layer.weight[1])
    wide = VectorizedLinear(64, 512, 3)
    bound = 1 / math.sqrt(64)
    assert wide.weight.abs().max() <= bound and wide.weight.abs().max() > 0.99 * bound
    assert abs(wide.weight.std().item() - bound / math.sqrt(3)) < 0.01 * bound
    assert wide.bias.abs().max() <= bound


def test_ensemble_mlp_equals_plain_mlps(pendulum_transitions):
    """Weights of SB3's create_mlp networks loaded into the ensemble give each member's values (< 1e-6)."""
    obs, actions = _pendulum_batch(pendulum_transitions)
    inputs = th.cat([obs, actions], dim=1)
    th.manual_seed(0)
    mlps = [nn.Sequential(*create_mlp(4, 1, [32, 32])) for _ in range(5)]
    ensemble = EnsembleMLP(4, 1, [32, 32], 5)
    load_members(ensemble, mlps)
    out = ensemble(inputs)
    assert out.shape == (5, 64, 1)
    per_member = th.stack([mlp(inputs) for mlp in mlps])
    assert (out - per_member).abs().max().item() < 1e-6
    # a different input per member
    stacked = th.stack([inputs + k for k in range(5)])
    assert (ensemble(stacked) - th.stack([mlp(inputs + k) for k, mlp in enumerate(mlps)])).abs().max() < 1e-5
    # and back to plain MLPs
    for copy, mlp in zip(member_mlps(ensemble), mlps, strict=True):
        assert (copy(inputs) - mlp(inputs)).abs().max().item() < 1e-6
    assert (ensemble.member_forward(inputs, 3) - mlps[3](inputs)).abs().max().item() < 1e-6
    with pytest.raises(ValueError, match=r"EnsembleMLP input: expected \(batch, 4\) or \(5, batch, 4\), found"):
        ensemble(th.zeros(3, 64, 4))
    with pytest.raises(ValueError, match="mlps: expected 5 networks"):
        load_members(ensemble, mlps[:4])
    with pytest.raises(ValueError, match=r"mlps\[0\]: expected the layers"):
        load_members(ensemble, [nn.Sequential(*create_mlp(4, 1, [32]))] * 5)


def test_fanin_init_is_the_edac_authors():
    th.manual_seed(0)
    ensemble = EnsembleMLP(20, 1, [256, 256, 256], 10, init=fanin_init)
    hidden, last = ensemble.linears[:-1], ensemble.linears[-1]
    for layer in hidden:
        bound = 1 / math.sqrt(layer.in_features)
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.98 * bound
        assert th.all(layer.bias == 0.1)
        assert not th.equal(layer.weight[0], layer.weight[1])
    assert last.weight.abs().max() <= 3e-3 and last.bias.abs().max() <= 3e-3
    assert not th.equal(last.bias[0], last.bias[1])


def test_layer_norm_after_activation_per_member(pendulum_transitions):
    obs, actions = _pendulum_batch(pendulum_transitions)
    inputs = th.cat([obs, actions], dim=1)
    ensemble = EnsembleMLP(4, 1, [16, 16], 3, layer_norm=True, layer_norm_eps=1e-6)
    kinds = [type(layer).__name__ for layer in ensemble.net]
    assert kinds == ["VectorizedLinear", "ReLU", "VectorizedLayerNorm"] * 2 + ["VectorizedLinear"]
    norms = [layer for layer in ensemble.net if isinstance(layer, VectorizedLayerNorm)]
    with th.no_grad():  # a scale and a shift of each member's own
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    mlps = member_mlps(ensemble)
    assert [type(layer).__name__ for layer in mlps[0]] == ["Linear", "ReLU", "LayerNorm"] * 2 + ["Linear"]
    assert mlps[0][2].eps == 1e-6
    per_member = th.stack([mlp(inputs) for mlp in mlps])
    assert (ensemble(inputs) - per_member).abs().max().item() < 1e-6
    assert (ensemble.member_forward(inputs, 2) - per_member[2]).abs().max().item() < 1e-6
    # the normalised hidden activations have mean 0 and std 1 per row before the scale and shift
    hidden = ensemble.net[:2](inputs.unsqueeze(0).expand(3, -1, -1))
    normed = nn.functional.layer_norm(hidden, (16,), eps=1e-6)
    assert normed.mean(dim=-1).abs().max() < 1e-5


def _critics(observation_space, action_space, extractor_class, n_critics=3, **kwargs):
    extractor = extractor_class(observation_space)
    common = dict(
        observation_space=observation_space,
        action_space=action_space,
        net_arch=[32, 32],
        features_extractor=extractor,
        features_dim=extractor.features_dim,
        n_critics=n_critics,
    )
    return EnsembleCritic(**common, **kwargs), ContinuousCritic(**common)


def test_critic_on_box_equals_sb3_critic(pendulum_transitions, pendulum_env):
    obs, actions = _pendulum_batch(pendulum_transitions)
    th.manual_seed(0)
    ensemble, sb3_critic = _critics(pendulum_env.observation_space, pendulum_env.action_space, FlattenExtractor)
    assert ensemble.n_critics == 3
    # an old checkpoint's keys (qf0.*, qf1.*, qf2.*) mapped onto the ensemble
    state = sb3_critic.state_dict()
    members = [
        {key.split(".", 1)[1]: value for key, value in state.items() if key.startswith(f"qf{i}.")} for i in range(3)
    ]
    ensemble.q_net.load_state_dict(stack_state_dicts(ensemble.q_net, members))
    values = ensemble(obs, actions)
    assert values.shape == (3, 64, 1)
    assert (values - th.stack(sb3_critic(obs, actions))).abs().max().item() < 1e-6
    assert (ensemble.q1_forward(obs, actions) - sb3_critic.q1_forward(obs, actions)).abs().max().item() < 1e-6
    assert ensemble._get_constructor_parameters()["n_critics"] == 3


def test_per_member_action_gradients_in_one_call(pendulum_transitions, pendulum_env):
    """Each member's gradient with respect to its own copy of the actions, from one autograd call (EDAC's form)."""
    obs, actions = _pendulum_batch(pendulum_transitions)
    ensemble, _ = _critics(pendulum_env.observation_space, pendulum_env.action_space, FlattenExtractor, n_critics=4)
    member_actions = actions.unsqueeze(0).repeat(4, 1, 1).requires_grad_(True)
    grads = th.autograd.grad(ensemble(obs, member_actions).sum(), member_actions)[0]
    for member in range(4):
        single = actions.clone().requires_grad_(True)
        (grad,) = th.autograd.grad(ensemble.q_net.member_forward(th.cat([obs, single], 1), member).sum(), single)
        assert (grads[member] - grad).abs().max().item() < 1e-6
    assert not th.allclose(grads[0], grads[1])


def test_critic_on_dict_observations(fetch_transitions, fetch_env_spaces):
    observation_space, action_space = fetch_env_spaces
    obs = {key: th.as_tensor(value[:32], dtype=th.float32) for key, value in fetch_transitions.observations.items()}
    actions = th.as_tensor(fetch_transitions.actions[:32], dtype=th.float32)
    th.manual_seed(0)
    ensemble, sb3_critic = _critics(observation_space, action_space, CombinedExtractor, n_critics=2, layer_norm=False)
    load_members(ensemble.q_net, sb3_critic.q_networks)
    values = ensemble(obs, actions)
    assert values.shape == (2, 32, 1)
    assert (values - th.stack(sb3_critic(obs, actions))).abs().max().item() < 1e-6
    assert np.isfinite(values.detach().numpy()).all()
