"""
Scripted behaviour policies: make small, meaningful local datasets without training an agent first.

Used by the tests and examples (data a learner can learn from, in seconds). For datasets from SB3
agents under the BCQ paper's and D4RL's protocols, see the collect module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sb3_offline.datasets.rollouts import record_transitions
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.datasets.writers import save_hdf5

#: The BCQ paper's "imperfect demonstrations": N(0, 0.3) action noise, a random action with probability 0.3.
IMPERFECT_NOISE_STD = 0.3
IMPERFECT_RANDOM_PROB = 0.3


class PendulumSwingUp:
    """
    A near-expert controller for ``Pendulum-v1`` (about -130 return without noise): energy-based
    swing-up (``u ~ (E* - E) * sign(theta_dot)``, with ``E = theta_dot^2 / 2 + 15 cos(theta)`` from
    the env's dynamics ``theta_ddot = 15 sin(theta) + 3 u``), then a PD balancer near the top.

    Made imperfect the way the BCQ paper's "imperfect demonstrations" are: Gaussian noise of
    ``noise_std`` (as a fraction of the action range's half-width) and, with probability
    ``random_prob``, a uniformly random action instead.

    :param noise_std: std of the Gaussian action noise, relative to ``max_torque`` (2)
    :param random_prob: probability of a uniformly random action
    :param seed: seed of the noise
    """

    max_torque = 2.0

    def __init__(self, noise_std: float = 0.0, random_prob: float = 0.0, seed: int | None = None) -> None:
        self.noise_std = noise_std
        self.random_prob = random_prob
        self.rng = np.random.default_rng(seed)

    @classmethod
    def imperfect(cls, seed: int | None = None) -> PendulumSwingUp:
        """The controller made imperfect the BCQ paper's way (noise 0.3, random action with probability 0.3)."""
        return cls(noise_std=IMPERFECT_NOISE_STD, random_prob=IMPERFECT_RANDOM_PROB, seed=seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        cos, sin, theta_dot = (float(x) for x in obs)
        theta = np.arctan2(sin, cos)
        if cos > 0.85:
            torque = -(8.0 * theta + 1.5 * theta_dot)
        else:
            energy = 0.5 * theta_dot**2 + 15.0 * cos
            torque = 0.5 * (15.0 - energy) * (np.sign(theta_dot) if abs(theta_dot) > 1e-3 else 1.0)
        if self.noise_std:
            torque += self.noise_std * self.max_torque * self.rng.standard_normal()
        if self.random_prob and self.rng.random() < self.random_prob:
            torque = self.rng.uniform(-self.max_torque, self.max_torque)
        return np.clip(np.array([torque], dtype=np.float32), -self.max_torque, self.max_torque)


def pendulum_imperfect_demonstrations(n_steps: int, seed: int = 0, progress_bar: bool = False) -> Transitions:
    """``n_steps`` Pendulum-v1 transitions of :meth:`PendulumSwingUp.imperfect` (about -440 return)."""
    behaviour = PendulumSwingUp.imperfect(seed=seed)
    return record_transitions("Pendulum-v1", n_steps, policy=behaviour, seed=seed, progress_bar=progress_bar)


def ensure_pendulum_imperfect_file(path: str | os.PathLike, n_steps: int, seed: int = 0) -> Path:
    """The imperfect-demonstrations dataset as a D4RL-style HDF5 file: written once, reused after."""
    path = Path(path)
    if not path.exists():
        save_hdf5(pendulum_imperfect_demonstrations(n_steps, seed=seed, progress_bar=True), path)
    return path
