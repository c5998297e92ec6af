"""The algorithm base of the actor-critic methods (AWAC, BCQ, PLAS): aliases, targets, checkpoint lists."""

from __future__ import annotations

from stable_baselines3.common.policies import ContinuousCritic
from torch import nn

from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.common.policies import OfflineActorCriticPolicy, VAEActorCriticPolicy, q_network_parameters
from sb3_offline.common.training import soft_update
from sb3_offline.common.vae import ConditionalVAE


class ActorCriticAlgorithm(OfflineAlgorithm):
    """
    :class:`OfflineAlgorithm` whose policy is an :class:`OfflineActorCriticPolicy`: aliases to its
    networks (``actor``, ``critic``, ``critic_target``, and ``actor_target`` and ``vae`` when the policy
    has them), the parameter lists of the Polyak-averaged targets, and what goes into an SB3
    checkpoint (the policy and each network's optimizer). Subclasses define the hyper-parameters
    and ``train``.
    """

    policy: OfflineActorCriticPolicy
    actor: nn.Module
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def _setup_model(self) -> None:
        super()._setup_model()
        self.actor = self.policy.actor
        self.critic = self.policy.critic
        self.critic_target = self.policy.critic_target
        self._critic_params = q_network_parameters(self.critic)
        self._critic_target_params = q_network_parameters(self.critic_target)
        self._actor_params: list = []
        self._actor_target_params: list = []
        if self.policy.actor_target is not None:
            self.actor_target = self.policy.actor_target
            self._actor_params = list(self.actor.parameters())
            self._actor_target_params = list(self.actor_target.parameters())
        if isinstance(self.policy, VAEActorCriticPolicy):
            self.vae = self.policy.vae

    def _update_targets(self) -> None:
        """Polyak-average the critics' targets (and the actor's, if it has one) with ``tau``."""
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
        optimizers = ["actor.optimizer", "critic.optimizer"]
        if isinstance(self.policy, VAEActorCriticPolicy):
            optimizers.insert(0, "vae.optimizer")
        return ["policy", *optimizers], []


class VAEActorCriticAlgorithm(ActorCriticAlgorithm):
    """:class:`ActorCriticAlgorithm` with a :class:`VAEActorCriticPolicy` (BCQ, PLAS): ``vae`` and ``actor_target``."""

    policy: VAEActorCriticPolicy
    vae: ConditionalVAE
    actor_target: nn.Module
