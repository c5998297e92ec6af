"""Networks of FQE: a Q-function ensemble and its target copy (no actor: FQE judges a policy given to it)."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.critics import critic_values
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import SharedExtractorCriticPolicy

#: Hidden sizes of d3rlpy's default Q-function encoder (``DefaultEncoderFactory``: ``VectorEncoder`` 256-256, ReLU)
FQE_NET_ARCH = [256, 256]


class DiscreteCritic(nn.Module):
    """
    ``n_critics`` Q-functions of a ``Discrete`` action space, each an MLP from the state features to one value per
    action (d3rlpy's ``DiscreteFQE``: ``DiscreteMeanQFunction`` on a ``VectorEncoder``), read at the action's index;
    ``forward(obs, actions)`` as SB3's ``ContinuousCritic`` (a tuple of ``(rows, 1)``).

    :param features_extractor: the (shared, parameter-free) features extractor
    :param features_dim: size of the features
    :param n_actions: number of actions
    :param net_arch: hidden sizes
    :param activation_fn: activation function
    :param n_critics: number of Q-functions
    """

    optimizer: th.optim.Optimizer

    def __init__(
        self,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        n_actions: int,
        net_arch: list[int],
        activation_fn: type[nn.Module],
        n_critics: int,
    ) -> None:
        super().__init__()
        self.features_extractor = features_extractor
        mlps = [nn.Sequential(*create_mlp(features_dim, n_actions, net_arch, activation_fn)) for _ in range(n_critics)]
        self.q_networks = nn.ModuleList(mlps)

    def values(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``(rows, n_critics)`` at the action indices ``actions`` ``(rows, 1)`` (any dtype holding integers)."""
        index = actions.long()
        return th.cat([q_net(features).gather(1, index) for q_net in self.q_networks], dim=1)

    def forward(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        features = self.features_extractor(obs)
        return tuple(self.values(features, actions).split(1, dim=1))

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


def fqe_critic_values(critic: ContinuousCritic | DiscreteCritic, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """All Q-values ``(rows, n_critics)`` of a critic on extracted features (a Box's or a Discrete space's)."""
    if isinstance(critic, DiscreteCritic):
        return critic.values(features, actions)
    return critic_values(critic, features, actions)


class FQEPolicy(SharedExtractorCriticPolicy):
    """
    The Q-functions of FQE: ``n_critics`` MLPs ``Q(s, a)`` on the concatenated state features and [-1, 1]
    action (SB3's ``ContinuousCritic``, d3rlpy's ``VectorEncoderWithAction`` layout: 256-256, ReLU), their
    target copy, and the critics' optimizer (Adam). One features extractor without trainable parameters is
    shared by both (the flattened observation, or the dataset-statistics normaliser of
    :mod:`sb3_offline.common.normalization`): :class:`~sb3_offline.common.policies.SharedExtractorCriticPolicy`,
    the base of our actor-critic policies too.

    It has no actor: ``FQE.predict`` acts with the policy being evaluated.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``; a ``Discrete`` one gets :class:`DiscreteCritic`)
    :param lr_schedule: learning rate schedule of the Q-functions
    :param net_arch: hidden sizes of each Q-function
    :param activation_fn: activation function
    :param features_extractor_class: features extractor (no trainable parameters)
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of the Q-functions
    :param optimizer_kwargs: keyword arguments of the optimizer
    :param n_critics: number of Q-functions (d3rlpy's FQE: 1)
    """

    net_arch: list[int]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 1,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=True,
            normalize_images=normalize_images,
        )
        if n_critics < 1:
            raise ValueError(f"n_critics: expected >= 1, found {n_critics}")
        self.net_arch = list(FQE_NET_ARCH if net_arch is None else net_arch)
        self.activation_fn = activation_fn
        self.n_critics = n_critics
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        features_dim = self._make_features_extractor()
        if not isinstance(self.action_space, spaces.Discrete):
            self._make_critics(self.net_arch, features_dim, lr_schedule)
            return
        n_actions, extractor = int(self.action_space.n), self.features_extractor
        args = (extractor, features_dim, n_actions, self.net_arch, self.activation_fn, self.n_critics)
        self.critic, self.critic_target = DiscreteCritic(*args), DiscreteCritic(*args)  # type: ignore[assignment]
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.critic.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        raise NotImplementedError("FQEPolicy holds Q-functions only; FQE.predict acts with the policy it evaluates")


MlpPolicy = FQEPolicy


MultiInputPolicy = multi_input_policy(FQEPolicy, __name__)
