"""Networks of IQL: a Gaussian actor (tanh mean, unsquashed samples), twin critics with targets, a state value."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule

from sb3_offline.common.critics import ValueNetwork
from sb3_offline.common.initialization import orthogonal_init
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import GaussianActorCriticPolicy

#: IQL's authors (``configs/mujoco_config.py``, ``antmaze_config.py``): every network 256-256.
IQL_NET_ARCH = {"pi": [256, 256], "qf": [256, 256], "vf": [256, 256]}


class IQLPolicy(GaussianActorCriticPolicy):
    """
    The networks of IQL (Kostrikov, Nair, Levine 2022): a Gaussian actor (no target copy), two critics
    with targets, and a state-value network ``value`` (the shared
    :class:`~sb3_offline.common.critics.ValueNetwork`; no target) with its own optimizer (``value.optimizer``).
    ``predict(deterministic=True)`` returns the mean (the authors evaluate with ``temperature=0``),
    ``deterministic=False`` a clipped sample (what online fine-tuning acts with).

    The actor is the shared :class:`~sb3_offline.common.gaussian_actor.GaussianActor` with the authors'
    ``log sigma``: a free parameter clipped to [-5, 2] (``log_std_mode="clip"``; ``NormalTanhPolicy`` with
    ``log_std_min=-5`` and its ``LOG_STD_MAX = 2``), started at 0.

    Every linear layer (actor, critics, value, the last layers included) starts orthogonal with gain
    ``sqrt(2)`` and zero bias, the authors' ``default_init`` (``ikostrikov/implicit_q_learning`` commit e3d4e61,
    ``common.py``, used by ``policy.py`` and ``value_net.py``).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: learning rate schedule of the critics
    :param net_arch: hidden sizes: a list sets the actor, the critics and the value network; or
        ``dict(pi=[...], qf=[...], vf=[...])``; default 256-256 for all three
    :param min_log_std: lower bound of the actor's ``log sigma``
    :param max_log_std: upper bound of the actor's ``log sigma``
    :param kwargs: :class:`~sb3_offline.common.policies.OfflineActorCriticPolicy`'s arguments
        (``actor_optimizer_kwargs``, ``features_extractor_class``, ...)
    """

    value: ValueNetwork
    default_net_arch = IQL_NET_ARCH
    log_std_mode = "clip"
    actor_init_w = None  # orthogonal_init replaces PyTorch's, after every network is built

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        min_log_std: float = -5.0,
        max_log_std: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, min_log_std, max_log_std, net_arch=net_arch, **kwargs
        )
        if isinstance(net_arch, list):
            self.net_arch["vf"] = list(net_arch)
        self._build(lr_schedule)
        orthogonal_init(self.actor.mu, self.critic, self.value)
        self.critic_target.load_state_dict(self.critic.state_dict())

    def _build_extra(self, features_dim: int, lr_schedule: Schedule) -> None:
        self.value = ValueNetwork(features_dim, self.net_arch["vf"], self.activation_fn)
        self.value.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.value.parameters(),
            lr=lr_schedule(1),
            **self.optimizer_kwargs,
        )

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.value.train(mode)


MlpPolicy = IQLPolicy


MultiInputPolicy = multi_input_policy(IQLPolicy, __name__)
