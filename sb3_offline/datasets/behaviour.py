"""
Scripted behaviour policies: make small, meaningful local datasets without training an agent first.

Used by the tests and examples (data a learner can learn from, in seconds). For datasets from SB3
agents under the BCQ paper's and D4RL's protocols, see the collect module.
"""

from __future__ import annotations

import numpy as np


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
