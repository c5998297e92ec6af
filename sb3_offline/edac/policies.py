"""
Networks of SAC-N and EDAC: SAC's tanh-Gaussian actor and ``n_critics`` Q-functions held as one vectorised ensemble
(:class:`~sb3_offline.common.ensemble.EnsembleCritic`) with its target, initialised as the EDAC authors' code.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy

from sb3_offline.common.ensemble import EnsembleCritic, fanin_init
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.scalars import LogScalar
from sb3_offline.cql.policies import (
    _SDE_PARAMETERS,
    RLKIT_LOG_STD_MIN,
    RLKIT_POLICY_LAST,
    RLKIT_Q_LAST,
    CQLActor,
    linear_layers,
    rlkit_init,
)

#: Hidden sizes of the policy and of each Q-function in the EDAC authors' ``scripts/sac.py`` (``layer_size=256``,
#: ``num_q_layers=3``, ``num_p_layers=3``) and CORL's ``sac_n.py``/``edac.py``
EDAC_NET_ARCH = [256, 256, 256]


def edac_critic_init(ensemble: Any) -> None:
    """The authors' ``ParallelizedEnsembleFlattenMLP``: :func:`~sb3_offline.common.ensemble.fanin_init` (0.1, 3e-3)."""
    fanin_init(ensemble, hidden_bias=0.1, last_bound=RLKIT_Q_LAST)


class EDACPolicy(SACPolicy):
    """
    SAC's networks for SAC-N and EDAC (An, Moon, Kim, Song 2021; ``snu-mllab/EDAC`` commit 198d570,
    ``experiment_configs/configs/q_learning/sac_config.py``): SB3's ``SACPolicy`` whose ``n_critics`` Q-functions are
    one :class:`~sb3_offline.common.ensemble.EnsembleCritic` (stacked weights, one batched matrix product per layer,
    as the authors' ``ParallelizedEnsembleFlattenMLP``), with a target copy, and SAC's entropy coefficient
    ``log_ent_coef`` (:class:`~sb3_offline.common.scalars.LogScalar`, with its optimizer; its learning rate is the
    algorithm's).

    The authors' networks: the actor is rlkit's ``TanhGaussianPolicy`` (the CQL authors' too:
    :class:`~sb3_offline.cql.policies.CQLActor` with ``log sigma`` clipped to [-5, 2]; hidden weights uniform in
    ``+-1 / sqrt(fan)`` as rlkit's ``fanin_init``, hidden biases 0.1, the mean and ``log sigma`` heads uniform in
    ``+-1e-3``); each Q-function: hidden weights uniform in ``+-1 / sqrt(in)``, hidden biases 0.1, the output layer
    uniform in ``+-3e-3`` (:func:`edac_critic_init`, member by member).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])`` (default 3 x 256)
    :param n_critics: the ensemble's size N
    :param initial_ent_coef: initial entropy coefficient (> 0; the authors' ``log_alpha`` starts at 0)
    :param kwargs: the rest of ``SACPolicy``'s arguments (features extractor, optimizer, ...)
    """

    default_net_arch: dict[str, list[int]] = {"pi": EDAC_NET_ARCH, "qf": EDAC_NET_ARCH}
    critic: EnsembleCritic  # type: ignore[assignment]
    critic_target: EnsembleCritic  # type: ignore[assignment]
    log_ent_coef: LogScalar

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        n_critics: int = 10,
        initial_ent_coef: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not initial_ent_coef > 0:
            raise ValueError(f"initial_ent_coef: expected a value > 0, found {initial_ent_coef}")
        if int(n_critics) != n_critics or n_critics < 2:
            raise ValueError(f"n_critics: expected an integer >= 2 (the ensemble's size), found {n_critics}")
        self.initial_ent_coef = initial_ent_coef
        if net_arch is None:
            net_arch = {key: list(value) for key, value in self.default_net_arch.items()}
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch=net_arch, n_critics=int(n_critics), **kwargs
        )

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Actor:
        """rlkit's ``TanhGaussianPolicy``: ``log sigma`` in [-5, 2], rlkit's initialisation (heads in +-1e-3)."""
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        actor = CQLActor(**actor_kwargs, log_std_min=RLKIT_LOG_STD_MIN)
        rlkit_init(linear_layers(actor.latent_pi), [actor.mu, actor.log_std], RLKIT_POLICY_LAST)  # type: ignore[list-item]
        return actor.to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> EnsembleCritic:  # type: ignore[override]
        """The ensemble of ``n_critics`` Q-functions, initialised as the authors' (:func:`edac_critic_init`)."""
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return EnsembleCritic(**critic_kwargs, init=edac_critic_init).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.log_ent_coef = LogScalar(self.initial_ent_coef)
        self.log_ent_coef.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.log_ent_coef.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for name in _SDE_PARAMETERS:
            data.pop(name, None)
        data.update(
            n_critics=self.critic_kwargs["n_critics"],
            share_features_extractor=self.share_features_extractor,
            normalize_images=self.normalize_images,
            initial_ent_coef=self.initial_ent_coef,
        )
        return data


MlpPolicy = EDACPolicy


MultiInputPolicy = multi_input_policy(EDACPolicy, __name__)
