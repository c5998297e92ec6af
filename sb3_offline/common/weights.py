"""
Advantage weights: how much each dataset action counts in a weighted regression of the policy (or of
a generative model) onto the data, the one idea AWAC, IQL and LAPO share, each in its own form.
"""

from __future__ import annotations

import torch as th


def softmax_weights(advantages: th.Tensor, beta: float) -> th.Tensor:
    """
    AWAC's weights, normalised over the batch as the authors' code does (rlkit ``AWACTrainer``,
    ``normalize_over_batch=True``): ``w_i = N * softmax(A / beta)_i = N * exp(A_i / beta) / sum_j exp(A_j / beta)``.
    They average to one, are invariant to a constant added to every advantage, and never overflow.

    :param advantages: ``(N,)`` or ``(N, 1)``
    :param beta: temperature (AWAC's lambda; it divides the advantage)
    :return: the weights, shaped like ``advantages``
    """
    if beta <= 0:
        raise ValueError(f"beta: expected > 0, found {beta}")
    return advantages.shape[0] * th.softmax(advantages / beta, dim=0)


def exp_weights(advantages: th.Tensor, temperature: float, max_weight: float = 100.0) -> th.Tensor:
    """
    IQL's weights: ``min(exp(temperature * A), max_weight)`` (Kostrikov et al. 2022, authors' code
    ``ikostrikov/implicit_q_learning``, ``actor.py``: ``jnp.minimum(jnp.exp(A * temperature), 100.0)``).
    Also LAPO's ``exp(A / lambda)`` of the paper's objective, with ``temperature = 1 / lambda``.

    :param advantages: any shape
    :param temperature: inverse temperature (it multiplies the advantage)
    :param max_weight: the clip
    """
    if max_weight <= 0:
        raise ValueError(f"max_weight: expected > 0, found {max_weight}")
    return th.exp(advantages * temperature).clamp(max=max_weight)


def expectile_weights(advantages: th.Tensor, expectile: float) -> th.Tensor:
    """
    The asymmetric weights of expectile regression: ``expectile`` where ``A > 0``, ``1 - expectile``
    elsewhere (IQL's value loss ``|tau - 1(u < 0)| u^2``; LAPO's weights on its CVAE terms,
    ``pcchenxi/LAPO-offlienRL``, ``algos/algos_vae.py``).

    :param advantages: any shape
    :param expectile: in (0, 1); 0.5 weighs every sample alike
    """
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile: expected a value in (0, 1), found {expectile}")
    return th.where(advantages > 0, expectile, 1.0 - expectile)


def expectile_loss(differences: th.Tensor, expectile: float) -> th.Tensor:
    """``mean(|expectile - 1(u < 0)| * u^2)`` for ``u = differences`` (IQL's value loss with ``u = Q - V``)."""
    return (expectile_weights(differences, expectile) * differences.pow(2)).mean()
