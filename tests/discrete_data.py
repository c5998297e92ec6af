"""
Small discrete datasets for the tests: CartPole-v1 played by a scripted controller with epsilon-random actions,
written as a real dataset file (``.hdf5`` or ``.npz``: D4RL's layout, with the env id).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sb3_offline.datasets import Transitions, record_transitions, save_hdf5
from sb3_offline.datasets.writers import save_npz

#: epsilon of the scripted controller: about 260 per episode (the controller alone: 500, random actions: about 22)
CARTPOLE_EPSILON = 0.3


class CartPoleController:
    """
    Push the cart towards the side the pole falls to (``angle + 0.5 * angular velocity > 0``: right), with
    probability ``epsilon`` a uniformly random action instead.
    """

    def __init__(self, epsilon: float = CARTPOLE_EPSILON, seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.rng.random() < self.epsilon:
            return np.asarray(self.rng.integers(2), dtype=np.int64)
        return np.asarray(int(obs[2] + 0.5 * obs[3] > 0), dtype=np.int64)


def cartpole_transitions(n_steps: int, seed: int = 0, epsilon: float = CARTPOLE_EPSILON) -> Transitions:
    """``n_steps`` transitions of CartPole-v1 under :class:`CartPoleController` (int64 actions ``(n,)``)."""
    return record_transitions("CartPole-v1", n_steps, policy=CartPoleController(epsilon, seed), seed=seed)


def cartpole_dataset(
    path: str | os.PathLike, n_steps: int = 2000, seed: int = 0, epsilon: float = CARTPOLE_EPSILON
) -> Path:
    """
    Write :func:`cartpole_transitions` to ``path`` (``.npz``: numpy's archive; else HDF5), D4RL's layout with the
    env id ``CartPole-v1``; returns the path.
    """
    transitions = cartpole_transitions(n_steps, seed, epsilon)
    if str(path).endswith(".npz"):
        return save_npz(transitions, path)
    return save_hdf5(transitions, path)
