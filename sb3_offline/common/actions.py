"""
The action-units rule: every loss is computed in the units its authors compute it in.

Buffers and networks hold actions in SB3's [-1, 1] scale: ``a = low + (u + 1) * (high - low) / 2``.
A difference of two actions in the env's units is the [-1, 1] difference times the half-range
``(high - low) / 2``, per dimension, so a squared error in the env's units is
``mean((half_range * (u - v))^2)``. An algorithm says which units its authors use (``action_units``:
``"env"`` for BCQ's and PLAS's VAE, whose decoders output ``max_action * tanh`` and whose losses are
taken on the env's actions; ``"normalized"`` for rlkit's AWAC, whose envs are wrapped to [-1, 1]);
on a Box with bounds [-1, 1] (MuJoCo) both are the same, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces

#: the units an algorithm's losses are computed in
ACTION_UNITS = ("env", "normalized")


def action_half_range(action_space: spaces.Space) -> np.ndarray:
    """``(high - low) / 2`` per action dimension (float32) of a bounded ``Box``."""
    if not isinstance(action_space, spaces.Box):
        raise ValueError(f"action_space: expected a Box, found {type(action_space).__name__}")
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(
            f"action_space: expected finite bounds, found low={action_space.low}, high={action_space.high}"
        )
    return (
        ((action_space.high.astype(np.float64) - action_space.low.astype(np.float64)) / 2.0)
        .reshape(-1)
        .astype(np.float32)
    )


def loss_action_scale(action_space: spaces.Space, units: str, device: th.device | str = "cpu") -> th.Tensor:
    """
    The factor, per action dimension, that turns a [-1, 1] action difference into one in ``units``:
    the half-range for ``"env"``, ones for ``"normalized"``.
    """
    if units not in ACTION_UNITS:
        raise ValueError(f"action_units: expected one of {ACTION_UNITS}, found {units!r}")
    half_range = action_half_range(action_space)
    scale = half_range if units == "env" else np.ones_like(half_range)
    return th.as_tensor(scale, dtype=th.float32, device=device)


def action_squared_error(prediction: th.Tensor, target: th.Tensor, scale: th.Tensor | None = None) -> th.Tensor:
    """
    ``mean((scale * (prediction - target))^2)`` over batch and action dimensions: ``F.mse_loss`` of the
    actions in the units ``scale`` converts to (see :func:`loss_action_scale`; ``None``: [-1, 1] units).
    """
    difference = prediction - target
    if scale is not None:
        difference = difference * scale
    return difference.pow(2).mean()
