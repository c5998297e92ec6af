"""The state-conditional VAE that models the dataset's actions (BCQ's generator G, PLAS's and LAPO's decoder)."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from sb3_offline.common.actions import action_squared_error
from sb3_offline.common.training import minimize

#: Hidden sizes of encoder and decoder in BCQ (Fujimoto et al. 2019, appendix) and PLAS (Zhou et al. 2020).
VAE_NET_ARCH = [750, 750]


class ConditionalVAE(nn.Module):
    """
    A VAE of actions conditioned on states: encoder ``E(s, a) -> (mu, sigma)``, decoder ``D(s, z) -> a``.

    By default as in the BCQ authors' code (``sfujim/BCQ``, ``continuous_BCQ/BCQ.py``): ``log sigma`` is
    clamped to [-4, 15] for stability, the decoder ends in ``tanh`` (actions are in SB3's [-1, 1] buffer
    scale), and when sampling without an encoder (``decode(s)``) the latent ``z ~ N(0, I)`` is
    clipped to ``[-latent_clip, latent_clip]`` (0.5) to stay where the decoder was trained.
    LAPO's authors (``pcchenxi/LAPO-offlienRL``, ``algos/algos_vae.py``, ``ActorVAE``) decode z-scored
    actions with a linear last layer (``squash_output=False``), and their encoder's second head is
    ``log sigma^2``, unclamped (``log_variance=True``, ``log_std_bounds=None``).

    :param features_dim: size of the (extracted) state features
    :param action_dim: size of the action
    :param latent_dim: size of the latent (papers: ``2 * action_dim``)
    :param net_arch: hidden sizes of encoder and decoder
    :param activation_fn: activation function
    :param latent_clip: bound on ``z`` when sampling from the prior
    :param squash_output: end the decoder in ``tanh`` (actions in [-1, 1]); ``False``: a linear output
    :param log_variance: the encoder's second head (``log_std``) gives ``log sigma^2`` (``sigma = exp(out / 2)``)
        instead of ``log sigma``
    :param log_std_bounds: clamp of ``log sigma`` (``None``: no clamp)
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
        squash_output: bool = True,
        log_variance: bool = False,
        log_std_bounds: tuple[float, float] | None = (-4.0, 15.0),
    ) -> None:
        super().__init__()
        net_arch = list(VAE_NET_ARCH) if net_arch is None else list(net_arch)
        if log_std_bounds is not None and not log_std_bounds[0] < log_std_bounds[1]:
            raise ValueError(f"log_std_bounds: expected (low, high) with low < high, found {log_std_bounds}")
        self.latent_dim = latent_dim
        self.latent_clip = latent_clip
        self.log_variance = log_variance
        self.log_std_bounds = log_std_bounds
        self.encoder = nn.Sequential(*create_mlp(features_dim + action_dim, -1, net_arch, activation_fn))
        self.mean = nn.Linear(net_arch[-1], latent_dim)
        self.log_std = nn.Linear(net_arch[-1], latent_dim)
        self.decoder = nn.Sequential(
            *create_mlp(features_dim + latent_dim, action_dim, net_arch, activation_fn, squash_output=squash_output)
        )

    def posterior(self, features: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``(mu, log sigma)`` of the posterior ``q(z | s, a)``."""
        hidden = self.encoder(th.cat([features, actions], dim=1))
        log_std = self.log_std(hidden)
        if self.log_variance:
            log_std = log_std / 2.0
        if self.log_std_bounds is not None:
            log_std = log_std.clamp(*self.log_std_bounds)
        return self.mean(hidden), log_std

    def encode(self, features: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``(mu, sigma)`` of the posterior ``q(z | s, a)``."""
        mean, log_std = self.posterior(features, actions)
        return mean, log_std.exp()

    def prior_latent(self, noise: th.Tensor) -> th.Tensor:
        """A sample of the clipped prior from standard normal draws ``noise`` (``(batch, latent_dim)``)."""
        return noise.clamp(-self.latent_clip, self.latent_clip)

    def decode(self, features: th.Tensor, latent: th.Tensor | None = None) -> th.Tensor:
        """An action for each state; ``latent=None`` samples it from the clipped prior."""
        if latent is None:
            latent = self.prior_latent(th.randn(features.shape[0], self.latent_dim, device=features.device))
        return self.decoder(th.cat([features, latent], dim=1))

    def forward(self, features: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Reconstruction of ``actions`` through a reparameterised sample, with ``(mu, sigma)``."""
        mean, std = self.encode(features, actions)
        latent = mean + std * th.randn_like(std)
        return self.decode(features, latent), mean, std


def vae_loss(
    reconstruction: th.Tensor,
    actions: th.Tensor,
    mean: th.Tensor,
    std: th.Tensor,
    kl_weight: float = 0.5,
    action_scale: th.Tensor | None = None,
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """
    ``recon + kl_weight * KL`` with ``recon`` the mean squared error of the actions and
    ``KL(N(mu, sigma) || N(0, I)) = -0.5 * mean(1 + log sigma^2 - mu^2 - sigma^2)`` (averaged over batch
    and latent dimensions, as the BCQ and PLAS authors' code does; their weight is 0.5).

    The BCQ and PLAS authors take ``recon`` on the env's actions (their decoder outputs
    ``max_action * tanh``); ours are in [-1, 1], so ``action_scale`` (the half-range, see
    :mod:`sb3_offline.common.actions`) puts the error back in the env's units: on Pendulum (bound 2)
    that makes ``recon`` 4 times the [-1, 1] one, and the KL's relative weight the authors'.

    :param action_scale: per action dimension, [-1, 1] -> the loss's units (``None``: [-1, 1])
    :return: ``(total, reconstruction_loss, kl)``
    """
    reconstruction_loss = action_squared_error(reconstruction, actions, action_scale)
    kl = -0.5 * (1.0 + th.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
    return reconstruction_loss + kl_weight * kl, reconstruction_loss, kl


def vae_sample_terms(
    vae: ConditionalVAE,
    features: th.Tensor,
    actions: th.Tensor,
    action_scale: th.Tensor | None = None,
) -> tuple[th.Tensor, th.Tensor]:
    """
    The two terms of the negative ELBO per sample, as LAPO's authors weigh them one sample at a time
    (``pcchenxi/LAPO-offlienRL``, ``algos/algos_vae.py``, ``Latent.train``): the squared error of one
    reparameterised reconstruction *summed* over the action dimensions, and
    ``KL(N(mu, sigma) || N(0, I)) = -0.5 * sum(1 + log sigma^2 - mu^2 - sigma^2)`` summed over the latent ones.

    :param vae: the VAE
    :param features: ``(batch, features_dim)`` state features
    :param actions: ``(batch, action_dim)`` the actions to reconstruct
    :param action_scale: per action dimension, the factor putting an action difference in the loss's units
        (``None``: as given)
    :return: ``(reconstruction, kl)``, each ``(batch, 1)``
    """
    mean, log_std = vae.posterior(features, actions)
    std = log_std.exp()
    reconstruction = vae.decode(features, mean + std * th.randn_like(std))
    difference = reconstruction - actions
    if action_scale is not None:
        difference = difference * action_scale
    squared_error = difference.pow(2).sum(dim=1, keepdim=True)
    kl = -0.5 * (1.0 + 2.0 * log_std - mean.pow(2) - std.pow(2)).sum(dim=1, keepdim=True)
    return squared_error, kl


def fit_vae(
    vae: ConditionalVAE,
    features: th.Tensor,
    actions: th.Tensor,
    kl_weight: float = 0.5,
    action_scale: th.Tensor | None = None,
) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """
    One step of ``vae.optimizer`` on :func:`vae_loss` of the dataset's ``actions`` (BCQ's generator update,
    PLAS's pre-training); ``features`` should carry no gradient.

    :return: ``(total, reconstruction_loss, kl)``
    """
    reconstruction, mean, std = vae(features, actions)
    losses = vae_loss(reconstruction, actions, mean, std, kl_weight, action_scale)
    minimize(vae.optimizer, losses[0])
    return losses
