"""The state-conditional VAE that models the dataset's actions (BCQ's generator G, PLAS's decoder)."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

#: Hidden sizes of encoder and decoder in BCQ (Fujimoto et al. 2019, appendix) and PLAS (Zhou et al. 2020).
VAE_NET_ARCH = [750, 750]


class ConditionalVAE(nn.Module):
    """
    A VAE of actions conditioned on states: encoder ``E(s, a) -> (mu, sigma)``, decoder ``D(s, z) -> a``.

    As in the BCQ authors' code (``sfujim/BCQ``, ``continuous_BCQ/BCQ.py``): ``log sigma`` is clamped
    to [-4, 15] for stability, the decoder ends in ``tanh`` (actions are in SB3's [-1, 1] buffer
    scale), and when sampling without an encoder (``decode(s)``) the latent ``z ~ N(0, I)`` is
    clipped to ``[-latent_clip, latent_clip]`` (0.5) to stay where the decoder was trained.

    :param features_dim: size of the (extracted) state features
    :param action_dim: size of the action
    :param latent_dim: size of the latent (papers: ``2 * action_dim``)
    :param net_arch: hidden sizes of encoder and decoder
    :param activation_fn: activation function
    :param latent_clip: bound on ``z`` when sampling from the prior
    """

    #: set by the policy that owns it (SB3's convention: each network carries its optimizer)
    optimizer: th.optim.Optimizer

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        latent_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        latent_clip: float = 0.5,
    ) -> None:
        super().__init__()
        net_arch = list(VAE_NET_ARCH) if net_arch is None else list(net_arch)
        self.latent_dim = latent_dim
        self.latent_clip = latent_clip
        self.encoder = nn.Sequential(*create_mlp(features_dim + action_dim, -1, net_arch, activation_fn))
        self.mean = nn.Linear(net_arch[-1], latent_dim)
        self.log_std = nn.Linear(net_arch[-1], latent_dim)
        self.decoder = nn.Sequential(
            *create_mlp(features_dim + latent_dim, action_dim, net_arch, activation_fn, squash_output=True)
        )

    def encode(self, features: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``(mu, sigma)`` of the posterior ``q(z | s, a)``."""
        hidden = self.encoder(th.cat([features, actions], dim=1))
        return self.mean(hidden), self.log_std(hidden).clamp(-4.0, 15.0).exp()

    def decode(self, features: th.Tensor, latent: th.Tensor | None = None) -> th.Tensor:
        """An action for each state; ``latent=None`` samples it from the clipped prior."""
        if latent is None:
            latent = th.randn(features.shape[0], self.latent_dim, device=features.device)
            latent = latent.clamp(-self.latent_clip, self.latent_clip)
        return self.decoder(th.cat([features, latent], dim=1))

    def forward(self, features: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Reconstruction of ``actions`` through a reparameterised sample, with ``(mu, sigma)``."""
        mean, std = self.encode(features, actions)
        latent = mean + std * th.randn_like(std)
        return self.decode(features, latent), mean, std


def vae_loss(
    reconstruction: th.Tensor, actions: th.Tensor, mean: th.Tensor, std: th.Tensor, kl_weight: float = 0.5
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """
    ``recon + kl_weight * KL`` with ``recon`` the mean squared error and
    ``KL(N(mu, sigma) || N(0, I)) = -0.5 * mean(1 + log sigma^2 - mu^2 - sigma^2)`` (averaged over batch
    and latent dimensions, as the BCQ authors' code does; their weight is 0.5).

    :return: ``(total, reconstruction_loss, kl)``
    """
    reconstruction_loss = th.nn.functional.mse_loss(reconstruction, actions)
    kl = -0.5 * (1.0 + th.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
    return reconstruction_loss + kl_weight * kl, reconstruction_loss, kl
