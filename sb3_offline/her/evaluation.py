"""Success rate of a policy on a goal-conditioned env: ``info["is_success"]`` at the end of each episode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm


def agent_policy(model: BaseAlgorithm, deterministic: bool = True) -> Callable[[Any], np.ndarray]:
    """
    An SB3 model as a function of one raw observation: normalised first by the model's
    ``VecNormalize`` when it was trained with one (as rl-zoo3 does for the Fetch tasks).
    """
    vec_normalize = model.get_vec_normalize_env()

    def act(obs: Any) -> np.ndarray:
        if vec_normalize is not None:
            obs = vec_normalize.normalize_obs(obs)
        return np.asarray(model.predict(obs, deterministic=deterministic)[0])

    return act


def evaluate_success_rate(
    policy: BaseAlgorithm | Callable[[Any], np.ndarray] | None,
    env: gym.Env,
    n_episodes: int = 20,
    seed: int = 0,
    deterministic: bool = True,
) -> float:
    """
    Fraction of ``n_episodes`` whose last step reports ``info["is_success"]`` (what SB3 logs as
    ``rollout/success_rate``), episode ``k`` reset with ``seed + k``.

    :param policy: an SB3 model (``predict``, after its ``VecNormalize`` if it has one), a function
        obs -> action, or ``None`` for uniform actions
    :param env: a goal-conditioned env whose ``info`` has ``is_success`` (the Fetch tasks)
    :param n_episodes: number of episodes
    :param seed: seed of the first episode's reset (and of the random policy)
    :param deterministic: ``predict(..., deterministic=...)`` for an SB3 model
    """
    if n_episodes <= 0:
        raise ValueError(f"n_episodes: expected > 0, found {n_episodes}")
    env.action_space.seed(seed)
    act = agent_policy(policy, deterministic) if isinstance(policy, BaseAlgorithm) else policy
    successes = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        info: dict[str, Any] = {}
        done = False
        while not done:
            action = env.action_space.sample() if act is None else act(obs)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        if "is_success" not in info:
            raise ValueError(f"env: expected info['is_success'] at the end of an episode, found keys {sorted(info)}")
        successes.append(float(info["is_success"]))
    return float(np.mean(successes))
