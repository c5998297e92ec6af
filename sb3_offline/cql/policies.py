"""Networks of CQL: SAC's tanh-Gaussian actor, twin critics and target, on SB3's ``SACPolicy``."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.scalars import LogScalar

#: Hidden sizes of the policy and the Q-functions in the CQL authors' MuJoCo script (``cql_mujoco_new.py``:
#: ``hidden_sizes=[M, M, M]``, ``M = 256``), CORL's too (``q_n_hidden_layers=3``, a 3 x 256 policy)
CQL_NET_ARCH = [256, 256, 256]

#: SAC's constructor arguments that our policies leave at SB3's defaults (no gSDE)
_SDE_PARAMETERS = ("use_sde", "log_std_init", "use_expln", "clip_mean")


class CQLPolicy(SACPolicy):
    """
    SAC's networks for CQL: SB3's ``SACPolicy`` (a tanh-squashed Gaussian actor whose mean and
    ``log sigma`` are linear heads on one MLP, ``log sigma`` clipped to [-20, 2]; ``n_critics`` critics with
    the action at their input, one target copy; one features extractor per network), plus two scalars learned
    through their logs (:class:`~sb3_offline.common.scalars.LogScalar`): SAC's entropy coefficient
    ``log_ent_coef`` and CQL's Lagrange multiplier ``log_alpha_prime`` (trained only when the algorithm tunes
    its weight). Each has its optimizer, built once (SAC's for the actor and the critics, here for the scalars); the
    learning rates are the algorithm's, set before every update.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])`` (default 3 x 256)
    :param initial_ent_coef: initial entropy coefficient (> 0)
    :param initial_alpha_prime: initial Lagrange multiplier (> 0)
    :param kwargs: the rest of ``SACPolicy``'s arguments (features extractor, optimizer, ``n_critics`` ...)
    """

    default_net_arch: dict[str, list[int]] = {"pi": CQL_NET_ARCH, "qf": CQL_NET_ARCH}
    log_ent_coef: LogScalar
    log_alpha_prime: LogScalar

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        initial_ent_coef: float = 1.0,
        initial_alpha_prime: float = 1.0,
        **kwargs: Any,
    ) -> None:
        for name, value in (("initial_ent_coef", initial_ent_coef), ("initial_alpha_prime", initial_alpha_prime)):
            if not value > 0:
                raise ValueError(f"{name}: expected a value > 0, found {value}")
        self.initial_ent_coef = initial_ent_coef
        self.initial_alpha_prime = initial_alpha_prime
        if net_arch is None:
            net_arch = {key: list(value) for key, value in self.default_net_arch.items()}
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        kwargs = self.optimizer_kwargs
        self.log_ent_coef = LogScalar(self.initial_ent_coef)
        self.log_ent_coef.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.log_ent_coef.parameters(), lr=lr_schedule(1), **kwargs
        )
        self.log_alpha_prime = LogScalar(self.initial_alpha_prime)
        self.log_alpha_prime.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.log_alpha_prime.parameters(), lr=lr_schedule(1), **kwargs
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
            initial_alpha_prime=self.initial_alpha_prime,
        )
        return data


MlpPolicy = CQLPolicy


MultiInputPolicy = multi_input_policy(CQLPolicy, __name__)
