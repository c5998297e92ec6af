"""
The units of the losses on actions: [-1, 1] by default, the env's on request (``action_units``).

Buffers and networks hold actions in SB3's [-1, 1] scale: ``a = low + (u + 1) * (high - low) / 2``.
A difference of two actions in the env's units is the [-1, 1] difference times the half-range
``(high - low) / 2``, per dimension, so a squared error in the env's units is
``mean((half_range * (u - v))^2)``.

Every algorithm computes its losses on actions (TD3+BC's and BC's squared error, BCQ's and PLAS's VAE
reconstruction) on [-1, 1] actions (``action_units="normalized"``, the default of
:class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`): on the authors' benchmarks (MuJoCo, bounds
[-1, 1]) this is bit for bit their loss, and elsewhere their weights (TD3+BC's ``alpha``, the VAE's KL weight)
keep the meaning they tuned them for. ``action_units="env"`` computes them in the env's units, as the authors'
code does literally (its actors and decoders output ``max_action * tanh``): on a Box whose half-range is ``b``
the squared error is ``b^2`` times larger, so the weights of the other terms weigh ``b^2`` times less.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_offline.common.checkpoints import saved_entry

#: the units an algorithm's losses on actions are computed in
ACTION_UNITS = ("env", "normalized")
#: the units of the losses on actions of checkpoints that record no ``action_units`` (sb3-offline 0.1.0, where they
#: were each algorithm's fixed choice), by algorithm (``checkpoints.algorithm_name``); any other: ``"normalized"``
UNRECORDED_ACTION_UNITS = {"BC": "env", "BCQ": "env", "PLAS": "env", "TD3BC": "env"}


def checkpoint_action_units(path: str | pathlib.Path | io.BufferedIOBase, algorithm: str) -> str:
    """
    The ``action_units`` a checkpoint of ``algorithm`` trains with: the one it records, or, for a checkpoint that
    records none, :data:`UNRECORDED_ACTION_UNITS`'s (``"normalized"`` for an algorithm not there).
    """
    saved = saved_entry(path, "action_units")
    return saved if isinstance(saved, str) else UNRECORDED_ACTION_UNITS.get(algorithm, "normalized")


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
    the half-range for ``"env"``, ones for ``"normalized"``. A ``Discrete`` space (action indices: no loss on action
    values) gets ``ones(1)``.
    """
    if units not in ACTION_UNITS:
        raise ValueError(f"action_units: expected one of {ACTION_UNITS}, found {units!r}")
    if isinstance(action_space, spaces.Discrete):
        return th.ones(1, dtype=th.float32, device=device)
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
