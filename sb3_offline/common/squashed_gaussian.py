"""
The tanh-squashed Gaussian of SAC's actor, as functions of its parameters (device work only).

SB3's ``SquashedDiagGaussianDistribution`` computes the same numbers, but it is stateful (one distribution
per actor, replaced by each call) and builds a ``torch.distributions.Normal`` whose argument validation reads
values back to the host; these functions draw any number of actions per row in one call and never sync, so
an update that uses them can be captured in a CUDA graph. Formulas: SB3's (``a = tanh(u)``,
``u ~ N(mean, exp(log_std)^2)``, ``log pi(a) = log N(u) - sum log(1 - a^2 + 1e-6)``; a given action is mapped
back by ``atanh`` after clipping it to ``+-(1 - float eps)``; :func:`rlkit_log_prob` maps it as the CQL authors'
rlkit code does).
"""

from __future__ import annotations

import math

import torch as th
import torch.nn.functional as F

#: SB3's ``SquashedDiagGaussianDistribution.epsilon`` in the tanh correction of the log-density (rlkit's
#: ``TanhNormal.epsilon`` too)
TANH_EPSILON = 1e-6
#: rlkit's bound of the mean in ``TanhGaussianPolicy.log_prob`` (``MEAN_MIN = -9.0``, ``MEAN_MAX = 9.0``)
RLKIT_MEAN_BOUND = 9.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _gaussian_log_prob(gaussian_actions: th.Tensor, mean: th.Tensor, log_std: th.Tensor) -> th.Tensor:
    return (-0.5 * ((gaussian_actions - mean) / log_std.exp()).pow(2) - log_std - _LOG_SQRT_2PI).sum(
        dim=-1, keepdim=True
    )


def _tanh_correction(actions: th.Tensor) -> th.Tensor:
    return th.log(1.0 - actions.pow(2) + TANH_EPSILON).sum(dim=-1, keepdim=True)


def _exact_tanh_correction(gaussian_actions: th.Tensor) -> th.Tensor:
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2 u)): torch's TanhTransform, distrax's Tanh
    return (2.0 * (math.log(2.0) - gaussian_actions - F.softplus(-2.0 * gaussian_actions))).sum(dim=-1, keepdim=True)


def squashed_gaussian_sample(
    mean: th.Tensor, log_std: th.Tensor, n_samples: int = 1, exact: bool = False
) -> tuple[th.Tensor, th.Tensor]:
    """
    ``n_samples`` reparameterised actions per row and their log-densities.

    :param mean: ``(rows, action_dim)`` mean of the Gaussian before the ``tanh``
    :param log_std: ``(rows, action_dim)`` its log standard deviation
    :param n_samples: actions per row
    :param exact: the exact tanh correction ``log(1 - tanh(u)^2)`` computed from ``u`` (torch's ``TanhTransform``,
        the distrax ``Tanh`` of Cal-QL's authors) instead of SB3's and rlkit's ``log(1 - a^2 + 1e-6)``
    :return: actions ``(rows * n_samples, action_dim)`` in (-1, 1) and log-densities ``(rows * n_samples, 1)``,
        row-major (rows ``k * n .. k * n + n - 1`` belong to row ``k``)
    """
    if n_samples != 1:
        mean = mean.repeat_interleave(n_samples, dim=0)
        log_std = log_std.repeat_interleave(n_samples, dim=0)
    gaussian_actions = mean + log_std.exp() * th.randn_like(mean)
    actions = th.tanh(gaussian_actions)
    correction = _exact_tanh_correction(gaussian_actions) if exact else _tanh_correction(actions)
    return actions, _gaussian_log_prob(gaussian_actions, mean, log_std) - correction


def squashed_gaussian_log_prob(mean: th.Tensor, log_std: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """
    The log-density of given actions in [-1, 1] (e.g. the dataset's), ``(rows, 1)``, as SB3's
    ``SquashedDiagGaussianDistribution.log_prob``: actions on the bounds are clipped to ``+-(1 - float eps)``
    before ``atanh`` (``TanhBijector.inverse``), the tanh correction takes them as given.

    :param mean: ``(rows, action_dim)``
    :param log_std: ``(rows, action_dim)``
    :param actions: ``(rows, action_dim)``
    """
    eps = th.finfo(actions.dtype).eps
    clipped = actions.clamp(-1.0 + eps, 1.0 - eps)
    gaussian_actions = th.atanh(clipped)
    return _gaussian_log_prob(gaussian_actions, mean, log_std) - _tanh_correction(actions)


def rlkit_log_prob(mean: th.Tensor, log_std: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """
    The log-density of given actions in [-1, 1] (the dataset's, for behaviour cloning), ``(rows, 1)``, as the CQL
    authors' rlkit ``TanhGaussianPolicy.log_prob`` (``aviralkumar2907/CQL`` d67dbe9,
    ``d4rl/rlkit/torch/sac/policies.py``): the mean clipped to [-9, 9], the action mapped back by
    ``0.5 * log((1 + a) / (1 - a))`` with ``1 + a`` and ``1 - a`` each clipped below at 1e-6 (their ``atanh``), the
    tanh correction ``log(1 - a^2 + 1e-6)`` on the action as given.

    :param mean: ``(rows, action_dim)``
    :param log_std: ``(rows, action_dim)`` (already clipped by the actor)
    :param actions: ``(rows, action_dim)``
    """
    gaussian_actions = 0.5 * th.log((1.0 + actions).clamp(min=TANH_EPSILON) / (1.0 - actions).clamp(min=TANH_EPSILON))
    mean = mean.clamp(-RLKIT_MEAN_BOUND, RLKIT_MEAN_BOUND)
    return _gaussian_log_prob(gaussian_actions, mean, log_std) - _tanh_correction(actions)
