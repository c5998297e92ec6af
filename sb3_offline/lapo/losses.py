"""
The terms of LAPO's update (Chen et al., NeurIPS 2022; the authors' ``pcchenxi/LAPO-offlienRL``,
``algos/algos_vae.py``): the Q-networks' and V's targets, the one-step advantage and the advantage weights of the
CVAE's terms.
"""

from __future__ import annotations

import torch as th

from sb3_offline.common.critics import soft_clipped_values
from sb3_offline.common.weights import exp_weights, expectile_weights

#: The advantage weights of the CVAE's terms.
WEIGHTINGS = ("expectile", "exp")
#: The authors' fine-tuning update (branch ``finetune``, ``algos/algos_vae_finetune.py``), as ``(std, clip)``:
#: noise on the latent action of V's target (line 218), on the dataset action the CVAE and the advantage
#: take (line 238), on the decoded action of the policy loss (line 268). All in z-scored units.
FINETUNE_TARGET_NOISE = (0.2, 0.5)
FINETUNE_ACTION_NOISE = (0.1, 0.3)
FINETUNE_POLICY_NOISE = (0.02, 0.05)


def q_target(rewards: th.Tensor, dones: th.Tensor, next_values: th.Tensor, gamma: float) -> th.Tensor:
    """The Q-networks' target ``r + gamma * (1 - termination) * V(s')``, ``(batch, 1)``."""
    return rewards + (1.0 - dones) * gamma * next_values


def value_target(target_q: th.Tensor, doubleq_min: float, low: th.Tensor, high: th.Tensor) -> th.Tensor:
    """
    V's target: ``doubleq_min * min_j Q'_j + (1 - doubleq_min) * max_j Q'_j`` of the target Q-networks at the
    latent policy's decoded action, clamped to ``[low, high]`` (the authors' ``[min_v, max_v]``), ``(batch, 1)``.

    :param target_q: ``(batch, n_critics)`` target Q-values
    """
    return soft_clipped_values(target_q, doubleq_min).clamp(min=low, max=high)


def one_step_advantages(
    rewards: th.Tensor, dones: th.Tensor, next_q: th.Tensor, values: th.Tensor, gamma: float
) -> th.Tensor:
    """The advantage of the offline update: ``r + gamma * (1 - termination) * Q~'(s', a'') - V(s)``, ``(batch, 1)``."""
    return rewards + (1.0 - dones) * gamma * next_q - values


def advantage_weights(
    advantages: th.Tensor, weighting: str, expectile: float, temperature: float, max_weight: float
) -> th.Tensor:
    """
    The weights of the CVAE's terms: ``"expectile"``: ``expectile`` where ``A > 0``, ``1 - expectile``
    elsewhere (the authors' code); ``"exp"``: ``min(exp(A / temperature), max_weight)`` (the paper's
    ``exp(A / lambda)``, clipped as IQL's weights).
    """
    if weighting == "expectile":
        return expectile_weights(advantages, expectile)
    if weighting == "exp":
        return exp_weights(advantages, 1.0 / temperature, max_weight)
    raise ValueError(f"weighting: expected one of {WEIGHTINGS}, found {weighting!r}")


def weighted_vae_loss(squared_error: th.Tensor, kl: th.Tensor, weights: th.Tensor, kl_weight: float) -> th.Tensor:
    """``mean_i w_i * (||D(s_i, z_i) - a_i||^2 + kl_weight * KL_i)`` from per-sample terms ``(batch, 1)``."""
    return (weights * (squared_error + kl_weight * kl)).mean()
