"""A positive scalar learned through its log (SAC's entropy coefficient, CQL's Lagrange multiplier)."""

from __future__ import annotations

import math

import torch as th
from torch import nn


class LogScalar(nn.Module):
    """
    A positive scalar kept as its log, ``value = exp(log_value)``: SAC's entropy coefficient (SB3's
    ``log_ent_coef``), CQL's Lagrange multiplier (the authors' ``log_alpha_prime``). A module rather than a
    bare parameter, so that it lives in the policy (saved and loaded with it) and carries its own ``optimizer``
    (built by the policy): named in an algorithm's ``networks`` and ``learning_rates()``, it gets what every network
    gets from :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm` (its learning rate, its optimizer in
    the checkpoint, CUDA graphs).

    :param initial_value: the scalar's initial value (> 0)
    """

    optimizer: th.optim.Optimizer

    def __init__(self, initial_value: float) -> None:
        super().__init__()
        if not (math.isfinite(initial_value) and initial_value > 0):
            raise ValueError(f"initial_value: expected a finite value > 0, found {initial_value}")
        # shape (1,), as SB3's log_ent_coef and the authors' ptu.zeros(1)
        self.log_value = nn.Parameter(th.full((1,), math.log(initial_value), dtype=th.float32))

    def forward(self) -> th.Tensor:
        """The value, ``exp(log_value)``, shape ``(1,)`` (with the gradient to ``log_value``)."""
        return self.log_value.exp()

    def extra_repr(self) -> str:
        return f"log_value={self.log_value.detach().cpu().item():.4g}"
