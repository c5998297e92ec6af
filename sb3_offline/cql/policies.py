"""
Networks of CQL: SAC's tanh-Gaussian actor, twin critics and target, on SB3's ``SACPolicy``, initialised and
bounded as the networks of the CQL authors' code (rlkit's).
"""

from __future__ import annotations

import math
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, Actor, SACPolicy
from torch import nn

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.scalars import LogScalar

#: Hidden sizes of the policy and the Q-functions in the CQL authors' MuJoCo script (``cql_mujoco_new.py``:
#: ``hidden_sizes=[M, M, M]``, ``M = 256``), CORL's too (``q_n_hidden_layers=3``, a 3 x 256 policy)
CQL_NET_ARCH = [256, 256, 256]

#: rlkit's lower bound of ``log sigma`` (``d4rl/rlkit/torch/sac/policies.py``: ``LOG_SIG_MIN = -5``; the upper, 2, is
#: SB3's too)
RLKIT_LOG_STD_MIN = -5.0
#: rlkit's initialisation (``rlkit/torch/networks.py``, ``Mlp``): hidden biases ``b_init_value``, the last layer's
#: weights and biases uniform in ``+-init_w``: 3e-3 for the Q-functions (``Mlp``'s default), 1e-3 for the policy's
#: mean and ``log sigma`` heads (``TanhGaussianPolicy``'s ``init_w``)
RLKIT_HIDDEN_BIAS, RLKIT_Q_LAST, RLKIT_POLICY_LAST = 0.1, 3e-3, 1e-3

#: SAC's constructor arguments that our policies leave at SB3's defaults (no gSDE)
_SDE_PARAMETERS = ("use_sde", "log_std_init", "use_expln", "clip_mean")


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``module``, in order."""
    return [layer for layer in module.modules() if isinstance(layer, nn.Linear)]


def rlkit_init(hidden: list[nn.Linear], last: list[nn.Linear], last_bound: float) -> None:
    """
    rlkit's initialisation of an MLP (``Mlp.__init__`` with ``ptu.fanin_init``): hidden weights uniform in
    ``+-1 / sqrt(size[0])`` (rlkit's ``fanin_init`` reads ``size[0]`` of the weight, which for a PyTorch ``Linear``,
    ``(out, in)``, is its *output* size), hidden biases 0.1, the last layers' weights and biases uniform in
    ``+-last_bound``.
    """
    with th.no_grad():
        for layer in hidden:
            bound = 1.0 / math.sqrt(layer.weight.shape[0])
            layer.weight.uniform_(-bound, bound)
            layer.bias.fill_(RLKIT_HIDDEN_BIAS)
        for layer in last:
            layer.weight.uniform_(-last_bound, last_bound)
            layer.bias.uniform_(-last_bound, last_bound)


class CQLActor(Actor):
    """
    SB3's SAC actor (a tanh-squashed Gaussian whose mean and ``log sigma`` are linear heads on one MLP) with the
    bounds of ``log sigma`` an argument: ``[log_std_min, 2]`` (rlkit's ``[-5, 2]`` for CQL; SB3's ``[-20, 2]``), and,
    with ``affine_log_std``, ``log sigma = m * head + c`` before the clip, ``m`` (from 1) and ``c`` (from
    ``log_std_offset``) learned with the actor (the JAX CQL code's ``log_std_multiplier`` and ``log_std_offset``,
    Cal-QL's). Same parameters as SB3's actor otherwise, so the SB3 ``Actor`` checkpoints load into it.

    :param args: SB3's ``Actor`` arguments
    :param log_std_min: lower bound of ``log sigma``
    :param affine_log_std: learn a multiplier and an offset of the ``log sigma`` head
    :param log_std_offset: the offset's initial value
    :param kwargs: SB3's ``Actor`` keyword arguments (no gSDE)
    """

    def __init__(
        self,
        *args: Any,
        log_std_min: float = LOG_STD_MIN,
        affine_log_std: bool = False,
        log_std_offset: float = -1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.use_sde:
            raise ValueError("use_sde: expected False, found True (CQL's actor has no gSDE)")
        self.log_std_min = log_std_min
        self.affine_log_std = affine_log_std
        self.initial_log_std_offset = log_std_offset
        if affine_log_std:
            self.log_std_multiplier = nn.Parameter(th.tensor(1.0))
            self.log_std_offset = nn.Parameter(th.tensor(float(log_std_offset)))

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """Mean and ``log sigma`` (mapped, then clipped) of the Gaussian before the ``tanh``."""
        latent_pi = self.latent_pi(self.extract_features(obs, self.features_extractor))
        log_std = self.log_std(latent_pi)  # type: ignore[operator]
        if self.affine_log_std:
            log_std = self.log_std_multiplier * log_std + self.log_std_offset
        return self.mu(latent_pi), th.clamp(log_std, self.log_std_min, LOG_STD_MAX), {}

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            log_std_min=self.log_std_min,
            affine_log_std=self.affine_log_std,
            log_std_offset=self.initial_log_std_offset,
        )
        return data


class CQLPolicy(SACPolicy):
    """
    SAC's networks for CQL: SB3's ``SACPolicy`` (a tanh-squashed Gaussian actor whose mean and ``log sigma`` are
    linear heads on one MLP; ``n_critics`` critics with the action at their input, one target copy; one features
    extractor per network), plus two scalars learned through their logs
    (:class:`~sb3_offline.common.scalars.LogScalar`): SAC's entropy coefficient ``log_ent_coef`` and CQL's Lagrange
    multiplier ``log_alpha_prime`` (trained only when the algorithm tunes its weight). Each has its optimizer, built
    once (SAC's for the actor and the critics, here for the scalars); the learning rates are the algorithm's, set
    before every update.

    With ``authors_networks`` (the default), the networks are the CQL authors' (``aviralkumar2907/CQL`` commit
    d67dbe9, ``d4rl/rlkit/torch/sac/policies.py`` and ``rlkit/torch/networks.py``): ``log sigma`` clipped to
    [-5, 2] (:class:`CQLActor`) and rlkit's initialisation (:func:`rlkit_init`: hidden biases 0.1, the last layers
    uniform in +-3e-3 for the Q-functions and +-1e-3 for the policy's mean and ``log sigma``), applied as each network
    is made, before its optimizer is built. Without, SB3's SAC networks as they are (``log sigma`` in [-20, 2],
    PyTorch's initialisation): the networks of sb3-offline 0.1.0's checkpoints.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])`` (default 3 x 256)
    :param initial_ent_coef: initial entropy coefficient (> 0)
    :param initial_alpha_prime: initial Lagrange multiplier (> 0)
    :param authors_networks: the authors' actor head and initialisation (else SB3's SAC networks as they are)
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
        authors_networks: bool = True,
        **kwargs: Any,
    ) -> None:
        for name, value in (("initial_ent_coef", initial_ent_coef), ("initial_alpha_prime", initial_alpha_prime)):
            if not value > 0:
                raise ValueError(f"{name}: expected a value > 0, found {value}")
        self.initial_ent_coef = initial_ent_coef
        self.initial_alpha_prime = initial_alpha_prime
        self.authors_networks = bool(authors_networks)
        if net_arch is None:
            net_arch = {key: list(value) for key, value in self.default_net_arch.items()}
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> Actor:
        """SB3's actor, or with ``authors_networks`` a :class:`CQLActor` with the authors' head and initialisation."""
        if not self.authors_networks:
            return super().make_actor(features_extractor)
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        actor = CQLActor(**actor_kwargs, **self.actor_head())
        self.initialize_actor(actor)
        return actor.to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        """SB3's critics, with ``authors_networks`` initialised as the authors' Q-functions."""
        critic = super().make_critic(features_extractor)
        if self.authors_networks:
            self.initialize_critic(critic)
        return critic

    def actor_head(self) -> dict[str, Any]:
        """:class:`CQLActor`'s arguments: rlkit's ``log sigma`` in [-5, 2]."""
        return {"log_std_min": RLKIT_LOG_STD_MIN}

    def initialize_actor(self, actor: Actor) -> None:
        """rlkit's ``TanhGaussianPolicy``: :func:`rlkit_init`, the mean and ``log sigma`` heads in +-1e-3."""
        rlkit_init(linear_layers(actor.latent_pi), [actor.mu, actor.log_std], RLKIT_POLICY_LAST)  # type: ignore[list-item]

    def initialize_critic(self, critic: ContinuousCritic) -> None:
        """rlkit's ``FlattenMlp`` Q-functions: :func:`rlkit_init`, the output layer in +-3e-3."""
        for q_net in critic.q_networks:
            layers = linear_layers(q_net)
            rlkit_init(layers[:-1], layers[-1:], RLKIT_Q_LAST)

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
            authors_networks=self.authors_networks,
        )
        return data


MlpPolicy = CQLPolicy


MultiInputPolicy = multi_input_policy(CQLPolicy, __name__)
