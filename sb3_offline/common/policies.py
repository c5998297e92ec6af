"""
Policy bases: one actor and its optimizer (BC, DiscreteBC); critics with targets on a shared features extractor
(FQE), with an actor (AWAC, IQL), and with a VAE of the dataset's actions (BCQ, PLAS, LAPO).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.vae import VAE_NET_ARCH, ConditionalVAE

#: Hidden sizes of actors and critics in BCQ (paper appendix) and PLAS (authors' code).
ACTOR_CRITIC_NET_ARCH = [400, 300]


class ActorOnlyPolicy(BasePolicy):
    """
    Base of the policies that are one network ``actor`` (on its own features extractor) with its optimizer, as
    behaviour cloning needs. Subclasses set :attr:`default_net_arch` and :attr:`squash_output_actions` and build the
    network in :meth:`_make_actor`; ``predict`` acts with :meth:`_predict`.

    :param observation_space: observation space
    :param action_space: action space
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden sizes of the actor (default: :attr:`default_net_arch`)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer
    :param optimizer_kwargs: keyword arguments of the optimizer
    """

    #: hidden sizes when ``net_arch`` is not given
    default_net_arch: ClassVar[list[int]]
    #: the actor's output is in [-1, 1], rescaled to the action ``Box`` by ``predict``
    squash_output_actions: ClassVar[bool] = False
    actor: nn.Module

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
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
            squash_output=self.squash_output_actions,
            normalize_images=normalize_images,
        )
        self.net_arch = list(self.default_net_arch) if net_arch is None else list(net_arch)
        self.activation_fn = activation_fn
        self.actor = self._make_actor(self.make_features_extractor())
        self.actor.optimizer = optimizer_class(  # type: ignore[call-arg,assignment]
            self.actor.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    @abstractmethod
    def _make_actor(self, features_extractor: BaseFeaturesExtractor) -> nn.Module:
        """The actor on ``features_extractor``, with ``self.net_arch`` and ``self.activation_fn``."""

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

    def set_training_mode(self, mode: bool) -> None:
        self.actor.set_training_mode(mode)  # type: ignore[operator]
        self.training = mode


class SharedExtractorCriticPolicy(BasePolicy):
    """
    Base of the policies whose networks share one features extractor without trainable parameters and hold
    ``n_critics`` Q-functions ``critic`` (SB3's ``ContinuousCritic`` on the features and the [-1, 1] action) with a
    target copy ``critic_target``. Subclasses set ``net_arch``, ``activation_fn`` and ``n_critics`` in their
    ``__init__`` and build their networks with :meth:`_make_features_extractor` and :meth:`_make_critics`.
    """

    critic: ContinuousCritic
    critic_target: ContinuousCritic
    net_arch: Any
    activation_fn: type[nn.Module]
    n_critics: int

    def _make_features_extractor(self) -> int:
        """Build ``features_extractor`` (no trainable parameters: a ``ValueError`` says so); returns its size."""
        self.features_extractor = self.make_features_extractor()
        trainable = sum(p.numel() for p in self.features_extractor.parameters() if p.requires_grad)
        if trainable:
            raise ValueError(
                "features_extractor_class: expected an extractor without trainable parameters (the critics' "
                "targets share it, so a trained one would have no target copy), found "
                f"{type(self.features_extractor).__name__} with {trainable} trainable parameters"
            )
        return self.features_extractor.features_dim

    def _make_critics(self, net_arch: list[int], features_dim: int, lr_schedule: Schedule) -> None:
        """Build ``critic`` (with ``critic.optimizer`` at ``lr_schedule(1)``) and ``critic_target``, a copy of it."""
        critic_kwargs: dict[str, Any] = dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            net_arch=net_arch,
            activation_fn=self.activation_fn,
            features_extractor=self.features_extractor,
            features_dim=features_dim,
            n_critics=self.n_critics,
            share_features_extractor=True,
            normalize_images=self.normalize_images,
        )
        self.critic = ContinuousCritic(**critic_kwargs)
        self.critic_target = ContinuousCritic(**critic_kwargs)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.set_training_mode(False)
        self.critic.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.critic.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                optimizer_class=self.optimizer_class,
                optimizer_kwargs=self.optimizer_kwargs,
                features_extractor_class=self.features_extractor_class,
                features_extractor_kwargs=self.features_extractor_kwargs,
                n_critics=self.n_critics,
            )
        )
        return data

    def features(self, observation: PyTorchObs) -> th.Tensor:
        """State features from the shared extractor (the flattened observation by default)."""
        return self.extract_features(observation, self.features_extractor)  # type: ignore[return-value]

    def forward(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self._predict(observation, deterministic)

    def set_training_mode(self, mode: bool) -> None:
        self.critic.set_training_mode(mode)
        self.training = mode


class OfflineActorCriticPolicy(SharedExtractorCriticPolicy):
    """
    Base of the actor-critic policies (AWAC; BCQ and PLAS through :class:`VAEActorCriticPolicy`): a
    shared features extractor, an actor (with a target copy when ``has_actor_target``) and twin
    critics with targets. Every network lives here, so SB3's ``predict``, ``save`` and ``load``
    handle them; each carries its own optimizer (``actor.optimizer``, ``critic.optimizer``).
    Subclasses build the actor (:meth:`_build_actor`) and act (:meth:`_predict`). Actions are in
    SB3's [-1, 1] scale (``squash_output``), so ``predict`` returns them in the env's Box.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: learning rate schedule of the critics
    :param net_arch: hidden sizes: a list for actor and critics, or ``dict(pi=[...], qf=[...])``
        (and ``vae=[...]`` for the VAE policies); defaults: the class's ``default_net_arch``
    :param activation_fn: activation function
    :param features_extractor_class: features extractor, shared by every network; it may hold statistics
        (buffers, e.g. an input normaliser) but no trainable parameters: the critics' targets share it, so a
        trained extractor would have no target copy (a ``ValueError`` says so)
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of every network
    :param optimizer_kwargs: keyword arguments of the optimizers
    :param n_critics: number of critics
    :param actor_optimizer_kwargs: extra keyword arguments of the actor's optimizer (e.g. ``weight_decay``)
    """

    actor: nn.Module
    actor_target: nn.Module | None
    #: hidden sizes used when ``net_arch`` leaves them out
    default_net_arch: dict[str, list[int]] = {"pi": ACTOR_CRITIC_NET_ARCH, "qf": ACTOR_CRITIC_NET_ARCH}
    #: whether the actor has a Polyak-averaged target copy
    has_actor_target = True

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
        n_critics: int = 2,
        actor_optimizer_kwargs: dict[str, Any] | None = None,
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
        if isinstance(net_arch, dict):
            unknown = set(net_arch) - set(self.default_net_arch)
            if unknown:
                raise ValueError(
                    f"net_arch: expected keys among {sorted(self.default_net_arch)}, found {sorted(unknown)}"
                )
            self.net_arch = {key: list(net_arch.get(key, default)) for key, default in self.default_net_arch.items()}
        else:
            self.net_arch = {key: list(default) for key, default in self.default_net_arch.items()}
            if net_arch is not None:
                self.net_arch["pi"], self.net_arch["qf"] = list(net_arch), list(net_arch)
        self.activation_fn = activation_fn
        self.n_critics = n_critics
        self.action_dim = get_action_dim(action_space)
        self.actor_optimizer_kwargs = dict(actor_optimizer_kwargs or {})

    def _build(self, lr_schedule: Schedule) -> None:
        """Build every network and optimizer; subclasses call it at the end of their ``__init__``."""
        features_dim = self._make_features_extractor()
        self._build_extra(features_dim, lr_schedule)
        self.actor = self._build_actor(features_dim)
        self.actor_target = None
        if self.has_actor_target:
            self.actor_target = self._build_actor(features_dim)
            self.actor_target.load_state_dict(self.actor.state_dict())
            self.actor_target.train(False)
        self._make_critics(self.net_arch["qf"], features_dim, lr_schedule)
        # every optimizer starts at lr_schedule(1); the algorithm sets each one's learning rate before every update
        self.actor.optimizer = self.optimizer_class(  # type: ignore[call-arg,assignment]
            self.actor.parameters(), lr=lr_schedule(1), **{**self.optimizer_kwargs, **self.actor_optimizer_kwargs}
        )

    def _build_extra(self, features_dim: int, lr_schedule: Schedule) -> None:
        """Networks other than actor and critics (the VAE), built before the actor."""

    @abstractmethod
    def _build_actor(self, features_dim: int) -> nn.Module:
        """The actor network (called twice when ``has_actor_target``: the actor and its target)."""

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(actor_optimizer_kwargs=self.actor_optimizer_kwargs)
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.actor.train(mode)
        super().set_training_mode(mode)


class VAEActorCriticPolicy(OfflineActorCriticPolicy):
    """
    :class:`OfflineActorCriticPolicy` with a state-conditional VAE of the dataset's actions
    (``vae``, with ``vae.optimizer``): the base of BCQ's and PLAS's policies.

    :param latent_dim: VAE latent size (default ``2 * action_dim``)
    :param latent_clip: clip of the prior's latent when the VAE samples on its own
    :param kwargs: :class:`OfflineActorCriticPolicy`'s arguments; ``net_arch`` may set ``vae=[...]``
        (default 750-750)
    """

    vae: ConditionalVAE
    actor_target: nn.Module
    default_net_arch = {"pi": ACTOR_CRITIC_NET_ARCH, "qf": ACTOR_CRITIC_NET_ARCH, "vae": VAE_NET_ARCH}

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        latent_dim: int | None = None,
        latent_clip: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.latent_dim = 2 * self.action_dim if latent_dim is None else latent_dim
        self.latent_clip = latent_clip

    def _make_vae(self, features_dim: int) -> ConditionalVAE:
        """The VAE (without its optimizer); subclasses may build it with other options (LAPO)."""
        return ConditionalVAE(
            features_dim, self.action_dim, self.latent_dim, self.net_arch["vae"], self.activation_fn, self.latent_clip
        )

    def _build_extra(self, features_dim: int, lr_schedule: Schedule) -> None:
        self.vae = self._make_vae(features_dim)
        self.vae.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.vae.parameters(),
            lr=lr_schedule(1),
            **self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(latent_dim=self.latent_dim, latent_clip=self.latent_clip)
        return data

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.vae.train(mode)


class GaussianActorCriticPolicy(OfflineActorCriticPolicy):
    """
    :class:`OfflineActorCriticPolicy` with a :class:`~sb3_offline.common.gaussian_actor.GaussianActor` (no target
    copy): the base of AWAC's and IQL's policies. ``predict(deterministic=True)`` returns the mean,
    ``deterministic=False`` a sample clipped to [-1, 1] (what online fine-tuning acts with). A subclass sets how the
    actor keeps ``log sigma`` in its bounds (``log_std_mode``) and its last layer's initialisation (``actor_init_w``),
    and calls ``_build`` at the end of its ``__init__``.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param min_log_std: lower bound of the actor's ``log sigma``
    :param max_log_std: upper bound of the actor's ``log sigma``
    :param kwargs: :class:`OfflineActorCriticPolicy`'s arguments
    """

    actor: GaussianActor
    has_actor_target = False
    #: how the actor keeps ``log sigma`` in its bounds (``GaussianActor``'s ``log_std_mode``)
    log_std_mode = "sigmoid"
    #: bound of the actor's last-layer initial weights (rlkit's initialisation); ``None``: PyTorch's
    actor_init_w: float | None = None

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        min_log_std: float,
        max_log_std: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.min_log_std = min_log_std
        self.max_log_std = max_log_std

    def _build_actor(self, features_dim: int) -> GaussianActor:
        return GaussianActor(
            features_dim,
            self.action_dim,
            self.net_arch["pi"],
            self.activation_fn,
            self.min_log_std,
            self.max_log_std,
            init_w=self.actor_init_w,
            log_std_mode=self.log_std_mode,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(min_log_std=self.min_log_std, max_log_std=self.max_log_std)
        return data

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        features = self.features(observation)
        return self.actor.mode(features) if deterministic else self.actor.sample(features)
