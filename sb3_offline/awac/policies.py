"""Networks of AWAC: a Gaussian actor (clipped, not tanh-squashed) and twin critics."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from torch.distributions import Independent, Normal

from sb3_offline.common.policies import OfflineActorCriticPolicy

#: rlkit's AWAC setup for MuJoCo (examples/awac/mujoco): policy 4 x 256, Q-functions 2 x 256.
AWAC_NET_ARCH = {"pi": [256, 256, 256, 256], "qf": [256, 256]}


class GaussianActor(nn.Module):
    """
    ``pi(a | s) = N(mu(s), diag(sigma^2))``, with a state-independent ``log sigma`` kept in
    ``[min_log_std, max_log_std]`` through a sigmoid (rlkit's ``GaussianPolicy`` with
    ``std_architecture="values"``, ``min_log_std=-6``, ``max_log_std=0``).

    Not tanh-squashed: AWAC's actor is fit by weighted maximum likelihood of the *dataset's* actions,
    and a squashed density is singular at the bounds, where saturated controllers put many of them
    (their log-likelihood needs ``atanh(+-1)``). Samples and the mean are clipped to [-1, 1] (SB3's
    action scale) when acted on or fed to the critics, as the env itself would clip them.

    :param features_dim: size of the state features
    :param action_dim: size of the action
    :param net_arch: hidden sizes of the mean network
    :param activation_fn: activation function
    :param min_log_std: lower bound of ``log sigma``
    :param max_log_std: upper bound of ``log sigma``
    """

    optimizer: th.optim.Optimizer

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module] = nn.ReLU,
        min_log_std: float = -6.0,
        max_log_std: float = 0.0,
    ) -> None:
        super().__init__()
        if not min_log_std < max_log_std:
            raise ValueError(f"min_log_std, max_log_std: expected min < max, found {min_log_std}, {max_log_std}")
        self.mu = nn.Sequential(*create_mlp(features_dim, action_dim, list(net_arch), activation_fn))
        self.log_std_logits = nn.Parameter(th.zeros(action_dim))
        self.min_log_std = min_log_std
        self.max_log_std = max_log_std

    def log_std(self) -> th.Tensor:
        return self.min_log_std + th.sigmoid(self.log_std_logits) * (self.max_log_std - self.min_log_std)

    def distribution(self, features: th.Tensor) -> Independent:
        mean = self.mu(features)
        # No argument validation: it reads the tensors on the host (a sync per update, and impossible in a
        # CUDA graph); mean and std are finite by construction.
        return Independent(
            Normal(mean, self.log_std().exp().expand_as(mean), validate_args=False), 1, validate_args=False
        )

    def sample(self, features: th.Tensor) -> th.Tensor:
        """An action from the policy, clipped to [-1, 1] (no gradient through it)."""
        with th.no_grad():
            return self.distribution(features).sample().clamp(-1.0, 1.0)

    def mode(self, features: th.Tensor) -> th.Tensor:
        return self.mu(features).clamp(-1.0, 1.0)


class AWACPolicy(OfflineActorCriticPolicy):
    """
    The networks of AWAC (Nair, Gupta, Dalal, Levine 2020): a Gaussian actor (no target copy) and
    two critics with targets. ``predict(deterministic=True)`` returns the clipped mean,
    ``deterministic=False`` a clipped sample (what online fine-tuning explores with).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: learning rate schedule of the critics
    :param min_log_std: lower bound of the actor's ``log sigma``
    :param max_log_std: upper bound of the actor's ``log sigma``
    :param kwargs: :class:`~sb3_offline.common.policies.OfflineActorCriticPolicy`'s arguments
        (``net_arch`` default ``dict(pi=[256] * 4, qf=[256, 256])``, ``actor_lr``, ``actor_optimizer_kwargs``, ...)
    """

    actor: GaussianActor
    default_net_arch = AWAC_NET_ARCH
    has_actor_target = False

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        min_log_std: float = -6.0,
        max_log_std: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.min_log_std = min_log_std
        self.max_log_std = max_log_std
        self._build(lr_schedule)

    def _build_actor(self, features_dim: int) -> GaussianActor:
        return GaussianActor(
            features_dim, self.action_dim, self.net_arch["pi"], self.activation_fn, self.min_log_std, self.max_log_std
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(min_log_std=self.min_log_std, max_log_std=self.max_log_std)
        return data

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        features = self.features(observation)
        return self.actor.mode(features) if deterministic else self.actor.sample(features)


MlpPolicy = AWACPolicy


class MultiInputPolicy(AWACPolicy):
    """:class:`AWACPolicy` for ``Dict`` observations (goal-conditioned data), with SB3's ``CombinedExtractor``."""

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
