"""The deterministic policy in a VAE's latent space that PLAS and LAPO share, decoded into actions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from sb3_offline.common.perturbation import PerturbationActor

#: ``decoder(features, latent) -> action``: a VAE's decoder (PLAS: the frozen one; LAPO: the target copy)
Decoder = Callable[[th.Tensor, th.Tensor], th.Tensor]


class LatentActor(nn.Module):
    """
    The latent policy ``pi(s) -> z`` in ``[-max_latent_action, max_latent_action]`` (``bound * tanh``),
    optionally followed by the perturbation layer of PLAS-P: ``a = clip(D(s, z) + xi(s, D(s, z)), -1, 1)``
    with ``xi`` in ``[-phi, phi]`` ([-1, 1] units, per dimension). The decoder ``D`` is passed in (PLAS:
    the policy's frozen VAE decoder; LAPO: the decoder of the VAE's target copy).

    :param features_dim: size of the state features
    :param action_dim: size of the action
    :param latent_dim: size of the VAE's latent
    :param net_arch: hidden sizes (PLAS: 400-300, for the latent policy and the perturbation layer; LAPO: 256-256-256)
    :param max_latent_action: bound of the latent action (PLAS and LAPO: 2)
    :param phi: bound of the perturbation in [-1, 1] units (one, or one per action dimension);
        ``None``: no perturbation layer (plain PLAS, LAPO)
    :param activation_fn: activation function
    """

    optimizer: th.optim.Optimizer

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        latent_dim: int,
        net_arch: list[int],
        max_latent_action: float = 2.0,
        phi: float | Sequence[float] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.max_latent_action = max_latent_action
        self.latent = nn.Sequential(
            *create_mlp(features_dim, latent_dim, list(net_arch), activation_fn, squash_output=True)
        )
        self.perturbation = (
            PerturbationActor(features_dim, action_dim, net_arch, phi, activation_fn) if phi is not None else None
        )

    def latent_action(self, features: th.Tensor) -> th.Tensor:
        """``max_latent_action * tanh(f(s))``"""
        return self.max_latent_action * self.latent(features)

    def forward(self, features: th.Tensor, decoder: Decoder) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """:return: ``(latent action, decoded action, final action)``"""
        latent = self.latent_action(features)
        decoded = decoder(features, latent)
        final = self.perturbation(features, decoded) if self.perturbation is not None else decoded
        return latent, decoded, final
