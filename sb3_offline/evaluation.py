"""Evaluating policies that are not SB3 models: a random policy, a scripted behaviour policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np


def evaluate_callable(
    env: gym.Env,
    policy: Callable[[Any], np.ndarray] | None = None,
    n_episodes: int = 10,
    seed: int = 0,
) -> tuple[float, float]:
    """
    Mean and std of the undiscounted return of ``policy`` (obs -> action in the env's units) over
    ``n_episodes``, episode ``k`` reset with ``seed + k``. ``policy=None`` is the uniformly random
    policy (action space seeded with ``seed``), the usual floor of a normalized score.
    For SB3 models use ``stable_baselines3.common.evaluation.evaluate_policy``.
    """
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy is None else policy(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))
