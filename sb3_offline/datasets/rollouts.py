"""Record transitions from a gymnasium env with a given policy (or uniformly random actions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from sb3_offline.datasets.transitions import Transitions


def _stack(items: list[Any]) -> Any:
    if isinstance(items[0], dict):
        return {key: np.stack([item[key] for item in items]) for key in items[0]}
    return np.stack(items)


def record_transitions(
    env: gym.Env | str,
    n_steps: int,
    policy: Callable[[Any], np.ndarray] | None = None,
    seed: int | None = None,
    progress_bar: bool = False,
) -> Transitions:
    """
    Step ``env`` for ``n_steps`` transitions and keep them all, terminations and truncations apart.

    The last episode is closed as a truncation when ``n_steps`` runs out mid-episode. Actions are float32, int64
    indices for a ``Discrete`` action space.

    :param env: a gymnasium env or id (made with ``gym.make``)
    :param n_steps: number of transitions to record
    :param policy: maps an observation to an action in the env's units; uniform random if ``None``
    :param seed: seeds the env's first reset and its action space
    :param progress_bar: show a tqdm bar
    """
    if isinstance(env, str):
        env = gym.make(env)
    env_id = env.spec.id if env.spec is not None else None
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, next_observations, actions, rewards, terms, truncs = [], [], [], [], [], []
    for _ in tqdm(range(n_steps), disable=not progress_bar, desc=f"recording {env_id or 'env'}"):
        action = env.action_space.sample() if policy is None else np.asarray(policy(obs))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        next_observations.append(next_obs)
        actions.append(action)
        rewards.append(reward)
        terms.append(terminated)
        truncs.append(truncated and not terminated)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    if truncs and not (terms[-1] or truncs[-1]):
        truncs[-1] = True
    return Transitions(
        observations=_stack(observations),
        actions=np.asarray(
            actions, dtype=np.int64 if isinstance(env.action_space, gym.spaces.Discrete) else np.float32
        ),
        rewards=np.asarray(rewards, dtype=np.float32),
        next_observations=_stack(next_observations),
        terminations=np.asarray(terms, dtype=bool),
        truncations=np.asarray(truncs, dtype=bool),
        source=f"recorded:{env_id}",
        env_id=env_id,
    )


__all__ = ["record_transitions"]
