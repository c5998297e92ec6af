"""The pieces of CQL(H)'s conservative regulariser: the importance-sampled log-sum-exp and the terms of one batch."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch as th


def importance_sampled_logsumexp(
    q_random: th.Tensor,
    q_current: th.Tensor,
    log_pi_current: th.Tensor,
    q_next: th.Tensor,
    log_pi_next: th.Tensor,
    action_dim: int,
    temperature: float = 1.0,
) -> th.Tensor:
    """
    CQL(H)'s ``log sum_a exp Q(s, a)`` by importance sampling, the authors' ``min_q_version=3``
    (``cql.py``, ``random_density = np.log(0.5 ** action_dim)``; CORL's ``cql_importance_sample``):
    ``temperature * logsumexp`` over the ``3 n`` samples of ``(Q(s, a_i) - log p(a_i)) / temperature``, with
    ``n`` actions uniform on [-1, 1]^d (density ``0.5^d``), ``n`` drawn from ``pi(.|s)`` and ``n`` from
    ``pi(.|s')``, all scored at ``s``. As a sum (not a mean) of ``exp(Q - log p)`` over ``3 n`` draws, it
    estimates ``log(3 n) + log integral exp(Q(s, a)) da`` (at temperature 1): a constant ``log(3 n)`` above
    the log-integral, which no gradient sees.

    :param q_random: ``(rows, n, n_critics)`` Q-values of the uniform actions
    :param q_current: ``(rows, n, n_critics)`` of the actions drawn at ``s``
    :param log_pi_current: ``(rows, n, 1)`` their log-densities (no gradient)
    :param q_next: ``(rows, n, n_critics)`` of the actions drawn at ``s'`` (scored at ``s``)
    :param log_pi_next: ``(rows, n, 1)`` their log-densities under ``pi(.|s')`` (no gradient)
    :param action_dim: the action's size (the uniform density is ``0.5 ** action_dim``)
    :param temperature: CQL's temperature (the authors' ``temp``)
    :return: ``(rows, n_critics)``
    """
    random_log_density = action_dim * math.log(0.5)
    weighted = th.cat([q_random - random_log_density, q_next - log_pi_next, q_current - log_pi_current], dim=1)
    return th.logsumexp(weighted / temperature, dim=1) * temperature


class ConservativeTerms(NamedTuple):
    """What the CQL regulariser is made of, for one batch (see :meth:`CQL.conservative_terms`)."""

    #: ``(batch, n_critics)`` Q-values of the dataset's actions (also the Bellman regression's)
    q_data: th.Tensor
    #: ``(batch, n, n_critics)`` of the uniform actions
    q_random: th.Tensor
    #: ``(batch, n, n_critics)`` of the actions drawn at ``s`` (after Cal-QL's bound, if any)
    q_current: th.Tensor
    #: ``(batch, n, n_critics)`` of the actions drawn at ``s'``, scored at ``s`` (after Cal-QL's bound, if any)
    q_next: th.Tensor
    #: ``(batch, n_critics)``: the importance-sampled ``log sum exp Q(s, .)``
    logsumexp: th.Tensor
    #: ``(n_critics,)``: ``mean(logsumexp - q_data)`` per critic, the gap the regulariser pushes down
    gap: th.Tensor
    #: fraction of the policy actions' Q-values below Cal-QL's bound (0 without one)
    bound_rate: th.Tensor
