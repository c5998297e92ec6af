"""Network of DiscreteBC: one categorical policy, the logits of ``pi(a|s)`` (SB3's ``QNetwork`` as a logits head)."""

from __future__ import annotations

from typing import ClassVar

import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import QNetwork

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import ActorOnlyPolicy

#: Hidden sizes of d3rlpy's default encoder (``VectorEncoderFactory``), the categorical policy of its DiscreteBC.
DISCRETE_BC_NET_ARCH = [256, 256]


class DiscreteBCPolicy(ActorOnlyPolicy):
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

    default_net_arch: ClassVar[list[int]] = DISCRETE_BC_NET_ARCH
    actor: QNetwork

    def _make_actor(self, features_extractor: BaseFeaturesExtractor) -> QNetwork:
        return QNetwork(
            self.observation_space,
            self.action_space,  # type: ignore[arg-type]
            features_extractor,
            features_extractor.features_dim,
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            normalize_images=self.normalize_images,
        )

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        """The most likely action (the argmax of the logits)."""
        return self.actor._predict(observation)


MlpPolicy = DiscreteBCPolicy


MultiInputPolicy = multi_input_policy(DiscreteBCPolicy, __name__)
