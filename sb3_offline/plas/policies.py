"""Networks of PLAS: a deterministic policy in the VAE's latent space, decoded into actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.perturbation import PerturbationActor
from sb3_offline.common.policies import VAEActorCriticPolicy

Decoder = Callable[[th.Tensor, th.Tensor], th.Tensor]


class LatentActor(nn.Module):
    """
    The latent policy ``pi(s) -> z`` in ``[-max_latent_action, max_latent_action]`` (``bound * tanh``),
    optionally followed by the perturbation layer of PLAS-P: ``a = clip(D(s, z) + xi(s, D(s, z)), -1, 1)``
    with ``xi`` in ``[-phi, phi]``. The decoder ``D`` is passed in (the policy's frozen VAE decoder).

    :param features_dim: size of the state features
    :param action_dim: size of the action
    :param latent_dim: size of the VAE's latent
    :param net_arch: hidden sizes (PLAS: 400-300, for the latent policy and the perturbation layer)
    :param max_latent_action: bound of the latent action (PLAS: 2)
    :param phi: bound of the perturbation; ``None``: no perturbation layer (plain PLAS)
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
        phi: float | None = None,
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

    def forward(self, features: th.Tensor, decoder: Decoder) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """:return: ``(latent action, decoded action, final action)``"""
        latent = self.max_latent_action * self.latent(features)
        decoded = decoder(features, latent)
        final = self.perturbation(features, decoded) if self.perturbation is not None else decoded
        return latent, decoded, final


class PLASPolicy(VAEActorCriticPolicy):
    """
    The networks of PLAS (Zhou, Bajracharya, Held, CoRL 2020): the conditional VAE (its decoder is
    frozen after pre-training), the latent policy (with PLAS-P's perturbation layer when ``phi`` is
    set) and its target, two critics and their targets. Acting: ``a = D(s, pi(s))`` (deterministic).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``; networks work in SB3's [-1, 1] scale)
    :param lr_schedule: learning rate schedule of the critics
    :param max_latent_action: bound of the latent action (PLAS: 2)
    :param phi: perturbation bound of PLAS-P; ``None`` for plain PLAS
    :param kwargs: the rest of :class:`~sb3_offline.common.policies.VAEActorCriticPolicy`'s arguments
    """

    actor: LatentActor
    actor_target: LatentActor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        max_latent_action: float = 2.0,
        phi: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.max_latent_action = max_latent_action
        self.phi = phi
        self._build(lr_schedule)

    def _build_actor(self, features_dim: int) -> LatentActor:
        return LatentActor(
            features_dim,
            self.action_dim,
            self.latent_dim,
            self.net_arch["pi"],
            self.max_latent_action,
            self.phi,
            self.activation_fn,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(max_latent_action=self.max_latent_action, phi=self.phi)
        return data

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.actor(self.features(observation), self.vae.decode)[2]


MlpPolicy = PLASPolicy


class MultiInputPolicy(PLASPolicy):
    """:class:`PLASPolicy` for ``Dict`` observations (goal-conditioned data), with SB3's ``CombinedExtractor``."""

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, features_extractor_class=features_extractor_class, **kwargs
        )
