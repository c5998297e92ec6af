"""Networks of PLAS: a deterministic policy in the VAE's latent space, decoded into actions."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule

from sb3_offline.common.actions import action_half_range
from sb3_offline.common.latent_actor import LatentActor
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import VAEActorCriticPolicy


class PLASPolicy(VAEActorCriticPolicy):
    """
    The networks of PLAS (Zhou, Bajracharya, Held, CoRL 2020): the conditional VAE (its decoder is
    frozen after pre-training), the latent policy (with PLAS-P's perturbation layer when ``phi`` is
    set) and its target, two critics and their targets. Acting: ``a = D(s, pi(s))`` (deterministic).

    PLAS-P's ``phi`` is in the env's units, as in the authors' ``ActorPerturbation``
    (``phi * tanh(.)`` added to the decoded action in the env's units): the layer gets
    ``phi / ((high - low) / 2)`` per dimension in [-1, 1] units.
    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``; networks work in SB3's [-1, 1] scale)
    :param lr_schedule: learning rate schedule of the critics
    :param max_latent_action: bound of the latent action (PLAS: 2)
    :param phi: perturbation bound of PLAS-P, in the env's units; ``None`` for plain PLAS
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
            None if self.phi is None else (self.phi / action_half_range(self.action_space)).tolist(),
            self.activation_fn,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(max_latent_action=self.max_latent_action, phi=self.phi)
        return data

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.actor(self.features(observation), self.vae.decode)[2]


MlpPolicy = PLASPolicy


MultiInputPolicy = multi_input_policy(PLASPolicy, __name__)
