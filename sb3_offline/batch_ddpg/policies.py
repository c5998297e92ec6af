"""Networks of BatchDDPG: the actor and critic of the BCQ authors' 2018 DDPG, on SB3's ``TD3Policy``."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    create_mlp,
)
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from sb3_offline.common.multi_input import multi_input_policy

#: Hidden sizes of actor and critic in the DDPG paper (Lillicrap et al. 2016) and the BCQ authors' DDPG.
DDPG_NET_ARCH = [400, 300]


class ActionAtSecondLayerQNetwork(nn.Module):
    """
    ``Q(s, a)`` with the action entering at the second layer, as in the DDPG paper (section 7: "actions
    were not included until the 2nd hidden layer of Q") and the BCQ authors' 2018 ``DDPG.py``:
    ``l1: s -> 400``, ``l2: [h1, a] -> 300``, ``l3: -> 1``, ReLU between.

    It takes SB3's critic input ``[features, actions]`` (one tensor) and splits it, so it stands in for
    a Q-network of SB3's ``ContinuousCritic``.

    :param features_dim: size of the state features
    :param action_dim: size of the action
    :param net_arch: hidden sizes (at least one layer: the action joins after the first)
    :param activation_fn: activation function
    """

    def __init__(
        self, features_dim: int, action_dim: int, net_arch: list[int], activation_fn: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        if not net_arch:
            raise ValueError("net_arch: expected at least one hidden layer (the action joins after it), found none")
        self.features_dim = features_dim
        self.state_layer = nn.Sequential(nn.Linear(features_dim, net_arch[0]), activation_fn())
        self.head = nn.Sequential(*create_mlp(net_arch[0] + action_dim, 1, list(net_arch[1:]), activation_fn))

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        features, actions = inputs[:, : self.features_dim], inputs[:, self.features_dim :]
        return self.head(th.cat([self.state_layer(features), actions], dim=1))


class ActionAtSecondLayerCritic(ContinuousCritic):
    """SB3's ``ContinuousCritic`` whose Q-networks are :class:`ActionAtSecondLayerQNetwork` (same arguments)."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            net_arch,
            features_extractor,
            features_dim,
            activation_fn=activation_fn,
            normalize_images=normalize_images,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )
        action_dim = get_action_dim(action_space)
        for idx in range(n_critics):
            q_net = ActionAtSecondLayerQNetwork(features_dim, action_dim, net_arch, activation_fn)
            self.add_module(f"qf{idx}", q_net)  # replaces SB3's action-at-the-input network
            self.q_networks[idx] = q_net


class BatchDDPGPolicy(TD3Policy):
    """
    DDPG's networks as the BCQ paper's baseline ran them (the authors' 2018 ``DDPG.py``, ``sfujim/BCQ``
    commit 115f77d): a deterministic actor 400-300 (tanh output, rescaled to the action Box) and one
    critic whose action enters at the second layer (400 + a -> 300), each with a target copy. Built on
    SB3's ``TD3Policy`` (``n_critics=1``), which builds both optimizers; the critic's gets
    ``critic_weight_decay`` (L2), the actor's none, as in that file (actor Adam lr 1e-4; critic Adam, weight decay
    1e-2; the learning rates are the algorithm's, set before every update).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])`` (default 400-300)
    :param n_critics: number of critics (1 for DDPG)
    :param critic_weight_decay: L2 weight decay of the critic's optimizer (the actor has none)
    :param critic_action_at_input: ``True`` feeds ``[s, a]`` to the critic's first layer (SB3's ``ContinuousCritic``,
        the layout of the BCQ repo's later ``DDPG.py``) instead of the 2018 layout
    :param kwargs: the rest of ``TD3Policy``'s arguments (features extractor, optimizer: ``optimizer_kwargs`` without
        ``weight_decay``, see ``critic_weight_decay`` ...)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        n_critics: int = 1,
        critic_weight_decay: float = 0.0,
        critic_action_at_input: bool = False,
        **kwargs: Any,
    ) -> None:
        optimizer_kwargs = kwargs.get("optimizer_kwargs")
        if optimizer_kwargs and "weight_decay" in optimizer_kwargs:
            raise ValueError(
                f"optimizer_kwargs['weight_decay']: expected none (it would reach the actor too), found "
                f"{optimizer_kwargs['weight_decay']}; set the critic's with critic_weight_decay"
            )
        if critic_weight_decay < 0:
            raise ValueError(f"critic_weight_decay: expected >= 0, found {critic_weight_decay}")
        self.critic_weight_decay = critic_weight_decay
        self.critic_action_at_input = critic_action_at_input
        net_arch = list(DDPG_NET_ARCH) if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, n_critics=n_critics, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        # TD3Policy built both optimizers with optimizer_kwargs (no weight decay): the critic's group gets its own
        for group in self.critic.optimizer.param_groups:
            group["weight_decay"] = self.critic_weight_decay

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        if self.critic_action_at_input:
            return super().make_critic(features_extractor)
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return ActionAtSecondLayerCritic(**critic_kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            critic_weight_decay=self.critic_weight_decay,
            critic_action_at_input=self.critic_action_at_input,
        )
        return data


MlpPolicy = BatchDDPGPolicy


MultiInputPolicy = multi_input_policy(BatchDDPGPolicy, __name__)
