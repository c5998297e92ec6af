"""The algorithm base of the VAE-based methods (BCQ, PLAS): network aliases, targets, checkpoint lists."""

from __future__ import annotations

from stable_baselines3.common.policies import ContinuousCritic
from torch import nn

from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.common.policies import VAEActorCriticPolicy, q_network_parameters
from sb3_offline.common.training import soft_update
from sb3_offline.common.vae import ConditionalVAE


class VAEActorCriticAlgorithm(OfflineAlgorithm):
    """
    :class:`OfflineAlgorithm` whose policy is a :class:`VAEActorCriticPolicy`: aliases to its
    networks (``vae``, ``actor``, ``actor_target``, ``critic``, ``critic_target``), the parameter lists
    of the Polyak-averaged targets, and what goes into an SB3 checkpoint (the policy and each
    network's optimizer). Subclasses define the hyper-parameters and ``train``.
    """

    policy: VAEActorCriticPolicy
    vae: ConditionalVAE
    actor: nn.Module
    actor_target: nn.Module
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def _setup_model(self) -> None:
        super()._setup_model()
        self.vae = self.policy.vae
        self.actor = self.policy.actor
        self.actor_target = self.policy.actor_target
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self._actor_params = list(self.actor.parameters())
        self._actor_target_params = list(self.actor_target.parameters())
        self._critic_params = q_network_parameters(self.critic)
        self._critic_target_params = q_network_parameters(self.critic_target)

    def _update_targets(self) -> None:
        """Polyak-average the critics' and the actor's targets with ``tau``."""
        soft_update(self._critic_params, self._critic_target_params, self.tau)
        soft_update(self._actor_params, self._actor_target_params, self.tau)

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "vae",
            "actor",
            "actor_target",
            "critic",
            "critic_target",
            "_actor_params",
            "_actor_target_params",
            "_critic_params",
            "_critic_target_params",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "vae.optimizer", "actor.optimizer", "critic.optimizer"], []
