"""Network of BC: one deterministic actor (SB3's TD3 actor: tanh output, rescaled to the action Box)."""

from __future__ import annotations

from typing import ClassVar

import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.td3.policies import Actor

from sb3_offline.batch_ddpg.policies import DDPG_NET_ARCH
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import ActorOnlyPolicy


class BCPolicy(ActorOnlyPolicy):
    """
    A deterministic actor ``mu(s)`` in [-1, 1] (rescaled to the action Box by ``predict``) with its
    optimizer; the BCQ paper's behaviour-cloning baseline uses the DDPG actor's 400-300 layers.

    :param observation_space: observation space
    :param action_space: action space (a bounded Box)
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden sizes of the actor (default: the DDPG actor's 400-300)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer
    :param optimizer_kwargs: keyword arguments of the optimizer
    """

    default_net_arch: ClassVar[list[int]] = DDPG_NET_ARCH
    squash_output_actions: ClassVar[bool] = True
    actor: Actor

    def _make_actor(self, features_extractor: BaseFeaturesExtractor) -> Actor:
        return Actor(
            self.observation_space,
            self.action_space,  # type: ignore[arg-type]
            self.net_arch,
            features_extractor,
            features_extractor.features_dim,
            activation_fn=self.activation_fn,
            normalize_images=self.normalize_images,
        )

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.actor(observation)


MlpPolicy = BCPolicy


MultiInputPolicy = multi_input_policy(BCPolicy, __name__)
