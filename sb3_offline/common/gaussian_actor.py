"""The Gaussian actor of AWAC (and IQL): rlkit's ``GaussianPolicy``, with rlkit's initialisation."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn
from torch.distributions import Independent, Normal

from sb3_offline.common.initialization import rlkit_init
from sb3_offline.common.training import minimize

#: how :class:`GaussianActor` keeps ``log sigma`` in its bounds
LOG_STD_MODES = ("sigmoid", "clip")


class GaussianActor(nn.Module):
    """
    ``pi(a | s) = N(mu(s), diag(sigma^2))`` with ``mu(s) = tanh(f(s))`` and a state-independent
    ``log sigma`` kept in ``[min_log_std, max_log_std]``: rlkit's ``GaussianPolicy``
    (``rlkit/torch/sac/policies/gaussian_policy.py``, commit ac45a9d) with ``std_architecture="values"``,
    ``min_log_std=-6``, ``max_log_std=0``, its ``tanh`` output activation on the mean, its
    ``MultivariateDiagonalNormal`` (the samples are not squashed) and its initialisation
    (:func:`rlkit_init`, ``init_w=1e-3``).

    How ``log sigma`` is kept in its bounds (``log_std_mode``):

    - ``"sigmoid"`` (rlkit's, AWAC's): ``min + sigmoid(log_std_logits) * (max - min)``; the logits start
      at 0, i.e. ``log sigma`` at the middle of the range (-3 for rlkit's [-6, 0]);
    - ``"clip"`` (IQL's authors, ``ikostrikov/implicit_q_learning`` commit 09d7002, ``policy.py``:
      ``NormalTanhPolicy`` with ``state_dependent_std=False``): a free ``log_std_values`` parameter, started
      at 0 (moved into the bounds if 0 is outside them) and clipped to ``[min, max]`` (no gradient
      beyond the bounds, as ``jnp.clip``).

    The density is a plain Gaussian, so the dataset's actions on the bounds (saturated controllers)
    have a finite likelihood. Samples are clipped to [-1, 1] (SB3's action scale) when acted on or
    fed to the critics, as rlkit's ``NormalizedBoxEnv`` clips them.

    :param features_dim: size of the state features
    :param action_dim: size of the action
    :param net_arch: hidden sizes of the mean network
    :param activation_fn: activation function
    :param min_log_std: lower bound of ``log sigma``
    :param max_log_std: upper bound of ``log sigma``
    :param init_w: bound of the last layer's initial weights (rlkit: 1e-3); ``None``: PyTorch's initialisation
    :param log_std_mode: ``"sigmoid"`` (rlkit) or ``"clip"`` (IQL's authors), see above
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
        init_w: float | None = 1e-3,
        log_std_mode: str = "sigmoid",
    ) -> None:
        super().__init__()
        if not min_log_std < max_log_std:
            raise ValueError(f"min_log_std, max_log_std: expected min < max, found {min_log_std}, {max_log_std}")
        if log_std_mode not in LOG_STD_MODES:
            raise ValueError(f"log_std_mode: expected one of {LOG_STD_MODES}, found {log_std_mode!r}")
        if init_w is not None and not init_w >= 0:
            raise ValueError(f"init_w: expected None or >= 0 (a bound of the last layer's weights), found {init_w}")
        self.mu = nn.Sequential(
            *create_mlp(features_dim, action_dim, list(net_arch), activation_fn, squash_output=True)
        )
        if init_w is not None:
            rlkit_init(self.mu, init_w)
        self.min_log_std = min_log_std
        self.max_log_std = max_log_std
        self.log_std_mode = log_std_mode
        if log_std_mode == "sigmoid":
            self.log_std_logits = nn.Parameter(th.zeros(action_dim))
        else:
            start = min(max(0.0, min_log_std), max_log_std)
            self.log_std_values = nn.Parameter(th.full((action_dim,), float(start)))

    def log_std(self) -> th.Tensor:
        """``log sigma`` per action dimension, within ``[min_log_std, max_log_std]``."""
        if self.log_std_mode == "sigmoid":
            return self.min_log_std + th.sigmoid(self.log_std_logits) * (self.max_log_std - self.min_log_std)
        return self.log_std_values.clamp(self.min_log_std, self.max_log_std)

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
        """The mean (rlkit's ``mle_estimate``), clipped to [-1, 1] (a no-op with the ``tanh`` mean)."""
        return self.mu(features).clamp(-1.0, 1.0)

    def weighted_regression_step(self, features: th.Tensor, actions: th.Tensor, weights: th.Tensor) -> th.Tensor:
        """
        One step of advantage-weighted regression (AWAC's and IQL's actor update): minimise
        ``-mean_i(w_i * log pi(a_i | s_i))`` on the dataset's actions with the actor's optimizer.

        :param features: state features, ``(N, features_dim)``
        :param actions: the dataset's actions in [-1, 1], ``(N, action_dim)``
        :param weights: ``(N,)`` or ``(N, 1)``, no gradient
        :return: the loss (before the step)
        """
        log_prob = self.distribution(features).log_prob(actions)
        loss = -(weights.reshape(-1) * log_prob).mean()
        minimize(self.optimizer, loss)
        return loss
