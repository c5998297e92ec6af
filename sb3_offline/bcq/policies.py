"""Networks of BCQ: the generative model G (a conditional VAE), the perturbation model xi and two critics."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.perturbation import PerturbationActor
from sb3_offline.common.vae import VAE_NET_ARCH, ConditionalVAE

#: Hidden sizes of the perturbation model and the critics in the BCQ paper's appendix.
BCQ_NET_ARCH = [400, 300]


class BCQPolicy(BasePolicy):
    """
    The networks of BCQ (Fujimoto, Meger, Precup, ICML 2019), all inside the policy so that SB3's
    ``predict``, ``save`` and ``load`` handle them: the VAE ``G = {E, D}``, the perturbation model
    ``xi_phi`` and its target, two critics ``Q_theta1, Q_theta2`` and their targets.

    Acting is Eq. 11: for each state, ``n_action_samples`` actions from ``G(s)``, perturbed, and the
    one with the highest ``Q_theta1``. ``predict(deterministic=True)`` is that argmax; so is
    ``deterministic=False`` (the policy's randomness is in the sampled candidates), as in the authors' code.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``; networks work in SB3's [-1, 1] scale)
    :param lr_schedule: learning rate schedule of the perturbation model and the critics
    :param net_arch: hidden sizes: a list for the perturbation model and the critics, or
        ``dict(pi=[...], qf=[...], vae=[...])``; defaults 400-300 and VAE 750-750
    :param activation_fn: activation function
    :param features_extractor_class: features extractor (shared, parameter-free by default)
    :param features_extractor_kwargs: keyword arguments of the features extractor
    :param normalize_images: divide image observations by 255
    :param optimizer_class: optimizer of every network
    :param optimizer_kwargs: keyword arguments of the optimizers
    :param n_critics: number of critics (BCQ: 2)
    :param phi: perturbation bound Phi as a fraction of the action range (BCQ: 0.05)
    :param latent_dim: VAE latent size (default ``2 * action_dim``)
    :param latent_clip: clip of the prior's latent when sampling (0.5)
    :param n_action_samples: candidate actions per state when acting (authors' code: 100)
    :param vae_lr: learning rate of the VAE (default: the same schedule's initial value)
    """

    vae: ConditionalVAE
    actor: PerturbationActor
    actor_target: PerturbationActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

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
        phi: float = 0.05,
        latent_dim: int | None = None,
        latent_clip: float = 0.5,
        n_action_samples: int = 100,
        vae_lr: float | None = None,
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
            actor_arch = list(net_arch.get("pi", BCQ_NET_ARCH))
            critic_arch = list(net_arch.get("qf", BCQ_NET_ARCH))
            vae_arch = list(net_arch.get("vae", VAE_NET_ARCH))
        else:
            actor_arch = critic_arch = list(BCQ_NET_ARCH) if net_arch is None else list(net_arch)
            vae_arch = list(VAE_NET_ARCH)
        self.net_arch = {"pi": actor_arch, "qf": critic_arch, "vae": vae_arch}
        self.activation_fn = activation_fn
        self.n_critics = n_critics
        self.phi = phi
        action_dim = get_action_dim(action_space)
        self.latent_dim = 2 * action_dim if latent_dim is None else latent_dim
        self.latent_clip = latent_clip
        self.n_action_samples = n_action_samples
        self.vae_lr = vae_lr
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        self.features_extractor = self.make_features_extractor()
        features_dim = self.features_extractor.features_dim
        action_dim = get_action_dim(self.action_space)
        self.vae = ConditionalVAE(
            features_dim, action_dim, self.latent_dim, self.net_arch["vae"], self.activation_fn, self.latent_clip
        )
        self.actor = PerturbationActor(features_dim, action_dim, self.net_arch["pi"], self.phi, self.activation_fn)
        self.actor_target = PerturbationActor(
            features_dim, action_dim, self.net_arch["pi"], self.phi, self.activation_fn
        )
        self.actor_target.load_state_dict(self.actor.state_dict())
        critic_kwargs: dict[str, Any] = dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            net_arch=self.net_arch["qf"],
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
        self.actor_target.train(False)
        self.critic_target.set_training_mode(False)

        lr = lr_schedule(1)
        self.vae.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.vae.parameters(), lr=self.vae_lr if self.vae_lr is not None else lr, **self.optimizer_kwargs
        )
        self.actor.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.actor.parameters(), lr=lr, **self.optimizer_kwargs
        )
        # The critic's parameters include the (shared) features extractor's, if it has any.
        self.critic.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.critic.parameters(), lr=lr, **self.optimizer_kwargs
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
                phi=self.phi,
                latent_dim=self.latent_dim,
                latent_clip=self.latent_clip,
                n_action_samples=self.n_action_samples,
                vae_lr=self.vae_lr,
            )
        )
        return data

    def features(self, observation: PyTorchObs) -> th.Tensor:
        """State features from the shared extractor (flattened observation by default)."""
        return self.extract_features(observation, self.features_extractor)  # type: ignore[return-value]

    def sample_perturbed(
        self, features: th.Tensor, n: int, actor: PerturbationActor | None = None
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        ``n`` candidates per state: ``a_i ~ G(s)``, perturbed by ``actor`` (default ``self.actor``).

        :return: ``(repeated_features, actions)``, both of ``batch * n`` rows, state-major
            (rows ``i * n .. i * n + n - 1`` belong to state ``i``)
        """
        repeated = features.repeat_interleave(n, dim=0)
        candidates = self.vae.decode(repeated)
        return repeated, (actor or self.actor)(repeated, candidates)

    def select_action(self, features: th.Tensor, n: int | None = None) -> th.Tensor:
        """Eq. 11: the argmax of ``Q_theta1`` over ``n`` perturbed samples of ``G(s)``, for each state."""
        n = self.n_action_samples if n is None else n
        repeated, actions = self.sample_perturbed(features, n)
        q1 = self.critic.q_networks[0](th.cat([repeated, actions], dim=1))
        best = q1.view(-1, n).argmax(dim=1)
        return actions.view(-1, n, actions.shape[-1])[th.arange(features.shape[0], device=features.device), best]

    def q_values_from_features(self, critic: ContinuousCritic, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """All critics' values, ``(rows, n_critics)``, on already extracted features."""
        inputs = th.cat([features, actions], dim=1)
        return th.cat([q_net(inputs) for q_net in critic.q_networks], dim=1)

    def forward(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self._predict(observation, deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        return self.select_action(self.features(observation))

    def set_training_mode(self, mode: bool) -> None:
        self.vae.train(mode)
        self.actor.train(mode)
        self.critic.set_training_mode(mode)
        self.training = mode


MlpPolicy = BCQPolicy


class MultiInputPolicy(BCQPolicy):
    """:class:`BCQPolicy` for ``Dict`` observations (goal-conditioned data), with SB3's ``CombinedExtractor``."""

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
