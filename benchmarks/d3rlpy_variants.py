"""
Our AWAC and IQL with one of d3rlpy 2.8.1's differences each (``benchmarks/d3rlpy_compat.py`` lists them), to
find which of them separates the two libraries' results (issue 22: on Pendulum ``imitation`` d3rlpy's AWAC and
IQL end far above ours at the same settings). Benchmark rows only (``python -m benchmarks.batch_settings --algos
awac_d3_target ...``, registered in :data:`benchmarks.variants.VARIANTS`): nothing here is part of the package, and
none of these is the authors' algorithm.

What each class changes, and where d3rlpy does it (``d3rlpy/algos/qlearning/torch/``):

- :class:`AWACSacTarget`: the critic target of d3rlpy's AWAC, inherited from ``SACImpl.compute_target``:
  ``a' = tanh(u)``, ``u ~ N(mu_raw(s'), sigma)`` (``build_squashed_gaussian_distribution``: the *pre-tanh*
  mean with the tanh on the sample), and ``min_j Q'_j(s', a') - exp(log_temp) * log pi_tanh(a' | s')`` with
  AWAC's fixed ``log_temp = 0`` (temperature 1). Ours: ``a' = clip(N(tanh(mu_raw), sigma), -1, 1)``, no entropy.
- :class:`AWACUnclippedValue`: ``V(s)`` from an *unclipped* sample of ``N(tanh(mu_raw), sigma)``
  (``AWACImpl._compute_weights``: ``dist.sample_n``, no clipping). Ours clips it to [-1, 1].
- :class:`AWACValueAfterCritic`: the advantage weights from the critics *after* this step's critic update
  (``DDPGBaseImpl.inner_update`` steps the critics, then computes the actor loss). Ours, as rlkit, before.
- :class:`AWACD3rlpy`: the three above together.
- :class:`IQLJointStep`: d3rlpy's IQL order (``IQLImpl.compute_critic_loss``): the Q target ``r + gamma * V(s')``
  with ``V`` *before* this step's update, critics and ``V`` stepped together, then the actor with the new ``V``.
  Ours, as the authors: ``V`` first, then the actor, then the critics on the new ``V``.

Network initialisation (PyTorch's, d3rlpy's) and IQL's ``log sigma`` parametrisation (d3rlpy's sigmoid) are
policy classes of :mod:`benchmarks.variants`. Which part of rlkit's initialisation matters (``rlkit_init``: hidden
weights uniform in ``+-1/sqrt(out_features)``, last layer ``+-1e-3``) is separated by :class:`AWACRlkitHiddenInit`
and :class:`AWACRlkitLastInit` (built with :class:`benchmarks.variants.AWACPyTorchInitPolicy`).
AWAC's and IQL's initialisations as they were before 2026-12-03 are the variants ``awac_hybrid_init`` and
``iql_rlkit_init``.
"""

from __future__ import annotations

import math

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from torch import nn
from torch.distributions import Normal

from sb3_offline import AWAC, IQL
from sb3_offline.common.critics import critic_loss, critic_values, soft_clipped_target
from sb3_offline.common.training import minimize
from sb3_offline.common.weights import exp_weights, expectile_loss, softmax_weights


class AWACSacTarget(AWAC):
    """AWAC with d3rlpy's SAC critic target: a ``tanh``-squashed sample and an entropy term at temperature 1."""

    d3_target = True
    d3_unclipped_value = False
    d3_value_after_critic = False

    def compute_critic_target(self, data: ReplayBufferSamples | DictReplayBufferSamples) -> th.Tensor:
        if not self.d3_target:
            return super().compute_critic_target(data)
        with th.no_grad():
            next_features = self.policy.features(data.next_observations)
            raw_mean = self.actor.mu[:-1](next_features)  # the mean before the actor's final tanh
            std = self.actor.log_std().exp().expand_as(raw_mean)
            raw = raw_mean + std * th.randn_like(raw_mean)
            # log-density of tanh(raw): d3rlpy's SquashedGaussianDistribution (the numerically stable Jacobian)
            log_prob = Normal(raw_mean, std).log_prob(raw) - 2.0 * (math.log(2.0) - raw - F.softplus(-2.0 * raw))
            next_q = critic_values(self.critic_target, next_features, th.tanh(raw))
            entropy = log_prob.sum(dim=1, keepdim=True)  # temperature exp(0) = 1
            return soft_clipped_target(next_q - entropy, data.rewards, data.dones, self.gamma, lmbda=1.0)

    def _advantage_weights(self, state_features: th.Tensor, q_data: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        with th.no_grad():
            distribution = self.actor.distribution(state_features)
            actions = distribution.sample() if self.d3_unclipped_value else distribution.sample().clamp(-1.0, 1.0)
            value = critic_values(self.critic, state_features, actions).min(dim=1).values
            advantages = q_data - value
            return advantages, self._weights(advantages)

    def _weights(self, advantages: th.Tensor) -> th.Tensor:
        """AWAC's (rlkit's and d3rlpy's): ``N * softmax(A / beta)`` over the batch."""
        return softmax_weights(advantages, self.beta)

    def _update(self, batch_size: int) -> None:
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = self.policy.features(data.observations)
        target_q = self.compute_critic_target(data)
        current_q = critic_values(self.critic, features, data.actions)
        q_loss = critic_loss(current_q, target_q)
        state_features = features.detach()
        if not self.d3_value_after_critic:
            advantages, weights = self._advantage_weights(state_features, current_q.detach().min(dim=1).values)
        minimize(self.critic.optimizer, q_loss)
        if self.d3_value_after_critic:
            with th.no_grad():
                q_data = critic_values(self.critic, state_features, data.actions).min(dim=1).values
            advantages, weights = self._advantage_weights(state_features, q_data)
        actor_loss = self.actor.weighted_regression_step(state_features, data.actions, weights)
        self._update_targets()
        self._losses.add("critic_loss", q_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("advantage", advantages.mean())


class AWACUnclippedValue(AWACSacTarget):
    """AWAC with ``V(s)`` from an unclipped policy sample (d3rlpy)."""

    d3_target = False
    d3_unclipped_value = True


class AWACValueAfterCritic(AWACSacTarget):
    """AWAC with the advantage weights from the critics after their update (d3rlpy)."""

    d3_target = False
    d3_value_after_critic = True


class AWACD3rlpy(AWACSacTarget):
    """AWAC with d3rlpy's target, unclipped ``V(s)`` sample and weights after the critic step, together."""

    d3_unclipped_value = True
    d3_value_after_critic = True


class IQLJointStep(IQL):
    """
    IQL in d3rlpy's order: critics on ``V(s')`` before ``V``'s update, stepped with ``V``; then the actor with the new
    ``V``. With :attr:`corl`, CORL's (``benchmarks/parity/iql.py``): the actor's advantage from ``V`` before its step
    and the mean of the critics' MSEs.
    """

    corl = False

    def _update(self, batch_size: int) -> None:
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = self.policy.features(data.observations)
        target_q = self.target_q_values(features, data.actions)
        q_target = self.compute_critic_target(data)  # V(s') before this step's update
        value = self.value(features)
        value_loss = expectile_loss(target_q - value, self.expectile)
        current_q = critic_values(self.critic, features, data.actions)
        q_loss = critic_loss(current_q, q_target) / (current_q.shape[1] if self.corl else 1)
        before = (target_q - value).detach()
        minimize(self.value.optimizer, value_loss)
        minimize(self.critic.optimizer, q_loss)
        with th.no_grad():
            advantages = before if self.corl else target_q - self.value(features)
            weights = exp_weights(advantages, self.temperature, self.max_weight)
        actor_loss = self.actor.weighted_regression_step(features, data.actions, weights)
        self._update_targets()
        self._losses.add("value_loss", value_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("critic_loss", q_loss)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class AWACRlkitHiddenInit(AWAC):
    """AWAC with rlkit's initialisation on the actor's hidden layers, over the policy's (benchmarks: PyTorch's)."""

    def _setup_model(self) -> None:
        super()._setup_model()
        with th.no_grad():
            for layer in _linears(self.actor.mu)[:-1]:
                bound = 1.0 / math.sqrt(layer.weight.shape[0])
                layer.weight.uniform_(-bound, bound)
                layer.bias.zero_()


class AWACRlkitLastInit(AWAC):
    """AWAC with rlkit's initialisation on the actor's last layer, over the policy's (benchmarks: PyTorch's)."""

    def _setup_model(self) -> None:
        super()._setup_model()
        with th.no_grad():
            last = _linears(self.actor.mu)[-1]
            last.weight.uniform_(-1e-3, 1e-3)
            last.bias.zero_()
