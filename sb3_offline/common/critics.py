"""Critic ensembles (their values, their regression loss, the value targets the algorithms share) and V(s)."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn


def critic_values(critic: ContinuousCritic, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """All of ``critic``'s Q-values, ``(rows, n_critics)``, on already extracted state features."""
    inputs = th.cat([features, actions], dim=1)
    return th.cat([q_net(inputs) for q_net in critic.q_networks], dim=1)


def q1_values(critic: ContinuousCritic, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """``Q_1(s, a)``, ``(rows, 1)``: the critic the actors of DDPG, TD3, BCQ and PLAS maximise."""
    return critic.q_networks[0](th.cat([features, actions], dim=1))


def critic_loss(current_q: th.Tensor, target_q: th.Tensor) -> th.Tensor:
    """
    The regression loss of a critic ensemble: the sum over critics of each one's mean squared error,
    ``sum_j mean_i (Q_j(s_i, a_i) - y_i)^2``, as SB3's TD3/SAC and the authors of BCQ, PLAS, AWAC, TD3+BC,
    IQL and CQL sum one MSE per critic (with one critic: the MSE).

    :param current_q: ``(batch, n_critics)``, e.g. from :func:`critic_values`
    :param target_q: ``(batch, 1)`` (or ``(batch, n_critics)``), no gradient
    :return: a scalar
    """
    if current_q.dim() != 2 or target_q.dim() != 2 or target_q.shape[0] != current_q.shape[0]:
        raise ValueError(
            f"critic_loss: expected current_q (batch, n_critics) and target_q (batch, 1), found "
            f"{tuple(current_q.shape)} and {tuple(target_q.shape)}"
        )
    return (current_q - target_q).pow(2).mean(dim=0).sum()


def soft_clipped_target(
    next_q: th.Tensor,
    rewards: th.Tensor,
    dones: th.Tensor,
    gamma: float,
    lmbda: float,
    n_samples: int = 1,
) -> th.Tensor:
    """
    The value target of BCQ's Eq. 13 (PLAS uses it with one action, ``n_samples=1``; ``lmbda=1`` is the
    clipped double-Q target of TD3 and AWAC):
    ``y = r + gamma * (1 - termination) * max_i [lmbda * min_j Q'_j(s', a_i) + (1 - lmbda) * max_j Q'_j(s', a_i)]``.

    :param next_q: ``(batch * n_samples, n_critics)`` target critics' values, state-major
        (rows ``k * n .. k * n + n - 1`` belong to state ``k``)
    :param rewards: ``(batch, 1)``
    :param dones: ``(batch, 1)`` terminations (a timeout is not one: it bootstraps)
    :param gamma: discount factor
    :param lmbda: weight of the minimum over critics (BCQ and PLAS: 0.75)
    :param n_samples: actions per next state
    :return: ``(batch, 1)``
    """
    best = soft_clipped_values(next_q, lmbda).view(-1, n_samples).max(dim=1).values.unsqueeze(1)
    return rewards + (1.0 - dones) * gamma * best


def soft_clipped_values(q_values: th.Tensor, lmbda: float) -> th.Tensor:
    """
    ``lmbda * min_j Q_j + (1 - lmbda) * max_j Q_j`` per row, ``(rows, 1)``: BCQ's soft clipped double Q
    (``lmbda`` 0.75) and LAPO's ``doubleq_min`` mix (``pcchenxi/LAPO-offlienRL``, ``get_target_q``);
    ``lmbda = 1`` is the minimum.

    :param q_values: ``(rows, n_critics)``, e.g. from :func:`critic_values`
    :param lmbda: weight of the minimum over critics
    """
    return (lmbda * q_values.min(dim=1).values + (1.0 - lmbda) * q_values.max(dim=1).values).unsqueeze(1)


class ValueNetwork(nn.Module):
    """
    A state-value network ``V(s)``: an MLP on the (shared, already extracted) state features with one
    output (LAPO's ``Critic.v`` head, 3 x 256; IQL's ``ValueCritic``, 2 x 256). It carries its own ``optimizer``,
    built by the policy.

    :param features_dim: size of the state features
    :param net_arch: hidden sizes
    :param activation_fn: activation function
    """

    optimizer: th.optim.Optimizer

    def __init__(self, features_dim: int, net_arch: list[int], activation_fn: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.v_net = nn.Sequential(*create_mlp(features_dim, 1, list(net_arch), activation_fn))

    def forward(self, features: th.Tensor) -> th.Tensor:
        """``(rows, 1)``"""
        return self.v_net(features)
