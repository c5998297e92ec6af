"""The perturbation model xi_phi(s, a, Phi) of BCQ (also PLAS's optional perturbation layer)."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn


class PerturbationActor(nn.Module):
    """
    ``a + xi_phi(s, a, Phi)`` with ``xi`` in ``[-Phi, Phi]`` (``Phi * tanh(.)``), clipped to [-1, 1].

    Actions are in SB3's [-1, 1] buffer scale, so ``Phi`` is a fraction of the half-range: in the
    env's units the bound is ``Phi * (high - low) / 2`` per dimension, i.e. ``Phi * max_action`` for
    symmetric bounds, as in the BCQ paper (Eq. 11-12) and the authors' code. ``Phi`` may be given per
    action dimension (PLAS-P's bound is in the env's units: its policy divides it by the half-range).

    :param features_dim: size of the (extracted) state features
    :param action_dim: size of the action
    :param net_arch: hidden sizes (BCQ: 400-300)
    :param phi: the perturbation bound Phi in [-1, 1] units, one for all dimensions or one per dimension (BCQ: 0.05)
    :param activation_fn: activation function
    """

    #: set by the policy that owns it (SB3's convention: each network carries its optimizer)
    optimizer: th.optim.Optimizer

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        net_arch: list[int],
        phi: float | Sequence[float] = 0.05,
        activation_fn: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        bound = th.as_tensor(phi, dtype=th.float32).reshape(-1)
        if bound.numel() not in (1, action_dim) or not bool((bound >= 0).all()):
            raise ValueError(f"phi: expected one bound >= 0 or {action_dim} of them, found {phi}")
        self.phi: th.Tensor
        self.register_buffer("phi", bound.expand(action_dim).clone(), persistent=False)
        self.net = nn.Sequential(
            *create_mlp(features_dim + action_dim, action_dim, list(net_arch), activation_fn, squash_output=True)
        )

    def forward(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        perturbation = self.phi * self.net(th.cat([features, actions], dim=1))
        return (actions + perturbation).clamp(-1.0, 1.0)
