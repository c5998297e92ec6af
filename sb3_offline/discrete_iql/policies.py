"""Networks of DiscreteIQL: a categorical actor, twin Q-networks ``Q(s, .)`` with targets and a state value ``V(s)``."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.critics import ValueNetwork
from sb3_offline.common.initialization import orthogonal_init
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import SharedExtractorCriticPolicy

#: IQL's authors (``configs/mujoco_config.py``): every network 256-256 (the continuous IQL's ``IQL_NET_ARCH``)
DISCRETE_IQL_NET_ARCH = {"pi": [256, 256], "qf": [256, 256], "vf": [256, 256]}


class CategoricalActor(nn.Module):
    """
    A softmax policy over ``n_actions``: an MLP from the state features to the logits. It carries its own
    ``optimizer``, built by the policy.

    :param features_dim: size of the state features
    :param n_actions: number of actions
    :param net_arch: hidden sizes
    :param activation_fn: activation function
    """

    optimizer: th.optim.Optimizer

    def __init__(self, features_dim: int, n_actions: int, net_arch: list[int], activation_fn: type[nn.Module]) -> None:
        super().__init__()
        self.logits_net = nn.Sequential(*create_mlp(features_dim, n_actions, list(net_arch), activation_fn))

    def forward(self, features: th.Tensor) -> th.Tensor:
        """The logits, ``(rows, n_actions)``."""
        return self.logits_net(features)

    def log_prob(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``log pi(a | s)`` of the given actions ``(rows, 1)`` (long), ``(rows, 1)``."""
        return th.log_softmax(self(features), dim=1).gather(1, actions)

    def mode(self, features: th.Tensor) -> th.Tensor:
        """The most likely action, ``(rows,)``."""
        return self(features).argmax(dim=1)

    def sample(self, features: th.Tensor) -> th.Tensor:
        """A sampled action, ``(rows,)``."""
        return th.distributions.Categorical(logits=self(features)).sample()


class DiscreteCritic(nn.Module):
    """
    ``n_critics`` Q-networks, each an MLP from the state features to ``Q(s, .)`` over the actions (DQN's head). It
    carries its own ``optimizer`` (the critic's), built by the policy.

    :param features_dim: size of the state features
    :param n_actions: number of actions
    :param net_arch: hidden sizes
    :param activation_fn: activation function
    :param n_critics: number of Q-networks
    """

    optimizer: th.optim.Optimizer

    def __init__(
        self, features_dim: int, n_actions: int, net_arch: list[int], activation_fn: type[nn.Module], n_critics: int
    ) -> None:
        super().__init__()
        self.q_networks = nn.ModuleList(
            nn.Sequential(*create_mlp(features_dim, n_actions, list(net_arch), activation_fn)) for _ in range(n_critics)
        )

    def forward(self, features: th.Tensor) -> th.Tensor:
        """Every critic's ``Q(s, .)``, ``(rows, n_critics, n_actions)``."""
        return th.stack([q_net(features) for q_net in self.q_networks], dim=1)

    def action_values(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Every critic's ``Q(s, a)`` of the given actions ``(rows, 1)`` (long), ``(rows, n_critics)``."""
        return th.cat([q_net(features).gather(1, actions) for q_net in self.q_networks], dim=1)


class DiscreteIQLPolicy(SharedExtractorCriticPolicy):
    """
    The networks of DiscreteIQL on one features extractor without trainable parameters (the flattened observation;
    ``CombinedExtractor`` for ``Dict``; :class:`~sb3_offline.common.policies.SharedExtractorCriticPolicy`): a
    categorical actor (:class:`CategoricalActor`), ``n_critics`` Q-networks ``Q(s, .)`` (:class:`DiscreteCritic`)
    with a target copy, and ``V(s)`` (the shared
    :class:`~sb3_offline.common.critics.ValueNetwork`); each trained network has its own optimizer. Every linear
    layer starts orthogonal with gain ``sqrt(2)`` and zero bias, IQL's authors' ``default_init``
    (``ikostrikov/implicit_q_learning``, ``common.py``), as our continuous IQL.
    ``predict(deterministic=True)`` is the most likely action, ``deterministic=False`` a sample of the softmax.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: a ``Discrete`` action space
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes: a list for all three, or ``dict(pi=[...], qf=[...], vf=[...])`` (default 256-256)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor (no trainable parameters: the targets share it)
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of every network
    :param optimizer_kwargs: keyword arguments of the optimizers
    :param n_critics: number of Q-networks (IQL: 2, the minimum of their targets)
    """

    actor: CategoricalActor
    critic: DiscreteCritic  # type: ignore[assignment]
    critic_target: DiscreteCritic  # type: ignore[assignment]
    value: ValueNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
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
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"action_space: expected a Discrete space, found {action_space}")
        if isinstance(net_arch, dict) and set(net_arch) - set(DISCRETE_IQL_NET_ARCH):
            raise ValueError(f"net_arch: expected keys among ['pi', 'qf', 'vf'], found {sorted(net_arch)}")
        shared = None if isinstance(net_arch, dict) else net_arch
        given = net_arch if isinstance(net_arch, dict) else {}
        self.net_arch = {
            key: list(given.get(key, shared if shared is not None else default))
            for key, default in DISCRETE_IQL_NET_ARCH.items()
        }
        self.activation_fn, self.n_critics = activation_fn, n_critics
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        """Every network and its optimizer (each at ``lr_schedule(1)``; the algorithm sets each one's rate)."""
        features_dim, n_actions = self._make_features_extractor(), int(self.action_space.n)  # type: ignore[attr-defined]
        self.actor = CategoricalActor(features_dim, n_actions, self.net_arch["pi"], self.activation_fn)
        critic_args = (features_dim, n_actions, self.net_arch["qf"], self.activation_fn, self.n_critics)
        self.critic, self.critic_target = DiscreteCritic(*critic_args), DiscreteCritic(*critic_args)
        self.value = ValueNetwork(features_dim, self.net_arch["vf"], self.activation_fn)
        orthogonal_init(self.actor, self.critic, self.value)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.train(False)
        for network in (self.actor, self.critic, self.value):
            network.optimizer = self.optimizer_class(  # type: ignore[call-arg]
                network.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
            )

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        features = self.features(observation)
        return self.actor.mode(features) if deterministic else self.actor.sample(features)

    def set_training_mode(self, mode: bool) -> None:
        for network in (self.actor, self.critic, self.value):
            network.train(mode)
        self.training = mode


MlpPolicy = DiscreteIQLPolicy


MultiInputPolicy = multi_input_policy(DiscreteIQLPolicy, __name__)
