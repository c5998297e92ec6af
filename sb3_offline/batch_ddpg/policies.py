"""Networks of BatchDDPG: SB3's deterministic actor and one critic, at the BCQ paper's 400-300 sizes."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

#: Hidden sizes of actor and critic in the DDPG paper (Lillicrap et al. 2016) and the BCQ authors' DDPG.
DDPG_NET_ARCH = [400, 300]


class BatchDDPGPolicy(TD3Policy):
    """
    Deterministic actor (tanh output, rescaled to the action Box) and a single critic with a target
    copy of each, as in DDPG. SB3's ``TD3Policy`` with ``n_critics=1`` and 400-300 layers.

    The critic takes ``[s, a]`` at its input (SB3's ``ContinuousCritic``); the DDPG paper and the BCQ
    authors' DDPG feed ``a`` at the second layer instead. We keep SB3's layout so the critic is the
    one every SB3 off-policy algorithm uses.

    :param observation_space: observation space
    :param action_space: action space (a bounded Box)
    :param lr_schedule: learning rate schedule (the critic's; the actor's is set by the algorithm)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])``
    :param activation_fn: activation function
    :param features_extractor_class: features extractor
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer
    :param optimizer_kwargs: keyword arguments of the optimizer (both networks)
    :param n_critics: number of critics (1 for DDPG)
    :param share_features_extractor: whether actor and critic share the features extractor
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 1,
        share_features_extractor: bool = False,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=list(DDPG_NET_ARCH) if net_arch is None else net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )


MlpPolicy = BatchDDPGPolicy


class MultiInputPolicy(BatchDDPGPolicy):
    """:class:`BatchDDPGPolicy` for ``Dict`` observations (goal-conditioned data), with SB3's ``CombinedExtractor``."""

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
