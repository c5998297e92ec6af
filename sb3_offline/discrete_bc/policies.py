"""Network of DiscreteBC: one categorical policy, the logits of ``pi(a|s)`` (SB3's ``QNetwork`` as a logits head)."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import QNetwork
from torch import nn

from sb3_offline.common.multi_input import multi_input_policy

#: Hidden sizes of d3rlpy's default encoder (``VectorEncoderFactory``), the categorical policy of its DiscreteBC.
DISCRETE_BC_NET_ARCH = [256, 256]


class DiscreteBCPolicy(BasePolicy):
    """
    A categorical policy: ``actor(s)`` are the logits of ``pi(.|s)`` (an MLP to one output per action, SB3's
    ``QNetwork``), with its optimizer; ``predict`` takes their argmax.

    :param observation_space: observation space
    :param action_space: action space (``Discrete``)
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden sizes (default: d3rlpy's 256-256)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer
    :param optimizer_kwargs: keyword arguments of the optimizer
    """

    actor: QNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            features_extractor_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=normalize_images,
        )
        self.net_arch = list(DISCRETE_BC_NET_ARCH) if net_arch is None else list(net_arch)
        self.activation_fn = activation_fn
        features_extractor = self.make_features_extractor()
        self.actor = QNetwork(
            observation_space,
            action_space,
            features_extractor,
            features_extractor.features_dim,
            net_arch=self.net_arch,
            activation_fn=activation_fn,
            normalize_images=normalize_images,
        )
        self.actor.optimizer = optimizer_class(  # type: ignore[call-arg]
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
            normalize_images=self.normalize_images,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        return data

    def forward(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        """The most likely action (the argmax of the logits)."""
        return self.actor._predict(observation)

    def set_training_mode(self, mode: bool) -> None:
        self.actor.set_training_mode(mode)
        self.training = mode


MlpPolicy = DiscreteBCPolicy


MultiInputPolicy = multi_input_policy(DiscreteBCPolicy, __name__)
