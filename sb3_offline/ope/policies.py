"""Networks of FQE: a Q-function ensemble and its target copy (no actor: FQE judges a policy given to it)."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import SharedExtractorCriticPolicy

#: Hidden sizes of d3rlpy's default Q-function encoder (``DefaultEncoderFactory``: ``VectorEncoder`` 256-256, ReLU)
FQE_NET_ARCH = [256, 256]


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
    :param action_space: action space (a bounded ``Box``)
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
        self._make_critics(self.net_arch, self._make_features_extractor(), lr_schedule)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        raise NotImplementedError("FQEPolicy holds Q-functions only; FQE.predict acts with the policy it evaluates")


MlpPolicy = FQEPolicy


MultiInputPolicy = multi_input_policy(FQEPolicy, __name__)
