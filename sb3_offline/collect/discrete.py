"""
Behaviour agents and acting policies for a ``Discrete`` action space: SB3's DQN and sb3-contrib's QR-DQN, exploring
with epsilon (a uniformly random action with that probability) where a Box agent adds Gaussian noise.

The protocols' noise is read as epsilon: ``concurrent``'s 0.1 is the discrete BCQ authors' behavioural DQN
(``regular_parameters`` of ``discrete_BCQ/main.py``: ``initial_eps = end_eps = 0.1``), ``final``'s 0.5 the
high-noise counterpart of the continuous paper's N(0, 0.5). ``imperfect`` follows the discrete BCQ authors'
buffer generation (``main.py``, ``--generate_buffer``): each episode is, with probability ``low_noise_p`` (0.2), a
low-noise one (the policy's greedy action: ``eval_eps`` 0 in their non-Atari settings), else each action is random
with probability ``rand_action_p`` (0.2).

Reference: Fujimoto, Conti, Ghavamzadeh, Pineau, "Benchmarking Batch Deep Reinforcement Learning Algorithms", 2019.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DQN
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

#: The SB3 algorithms a behaviour agent on a ``Discrete`` action space can be (``--algo``).
DISCRETE_BEHAVIOUR_ALGOS: dict[str, type[OffPolicyAlgorithm]] = {"dqn": DQN, "qrdqn": QRDQN}

#: The discrete BCQ authors' ``imperfect`` buffer: ``(rand_action_p, low_noise_p)`` of their ``main.py``.
IMPERFECT_EPSILON, LOW_NOISE_EPISODES = 0.2, 0.2

#: rl-zoo3's DQN / QR-DQN hyper-parameters of the envs where they are known (exploration: the protocol's epsilon)
DISCRETE_BEHAVIOUR_DEFAULTS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        policy_kwargs=dict(net_arch=[256, 256]),
    ),
}

#: the env steps of random actions before a behaviour agent learns (the authors' non-Atari ``start_timesteps``)
START_TIMESTEPS = 1000


def make_discrete_agent(env: gym.Env, algo: str, epsilon: float, seed: int | None, **kwargs: Any) -> OffPolicyAlgorithm:
    """
    An untrained DQN / QR-DQN for ``env`` that explores with a constant ``epsilon`` (the discrete BCQ authors'
    behavioural DQN: ``initial_eps = end_eps``) after ``learning_starts`` random steps (their 1000); ``kwargs``
    override any of these and SB3's defaults.
    """
    if algo not in DISCRETE_BEHAVIOUR_ALGOS:
        raise ValueError(
            f"algo: expected one of {sorted(DISCRETE_BEHAVIOUR_ALGOS)} for the Discrete action space of "
            f"{env.spec.id if env.spec else env}, found '{algo}'"
        )
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"noise_std: expected an epsilon in [0, 1] for a Discrete action space, found {epsilon}")
    policy = "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy"
    options = {
        "exploration_initial_eps": epsilon,
        "exploration_final_eps": epsilon,
        "learning_starts": START_TIMESTEPS,
        **kwargs,
    }
    return DISCRETE_BEHAVIOUR_ALGOS[algo](policy, env, seed=seed, **options)


class DiscreteActingPolicy:
    """
    Observation -> action index for :func:`~sb3_offline.datasets.record_transitions`: an SB3 model's action
    (greedy, or its own epsilon-greedy ``predict`` when ``deterministic=False``), replaced by a uniformly random
    action with probability ``random_action_prob``, except in low-noise episodes (each episode is one with
    probability ``low_noise_prob``, drawn by :meth:`new_episode`). ``model=None`` acts uniformly at random.
    ``random_actions`` records, per call, whether the action was the random one.

    :param model: the SB3 model (DQN, QR-DQN), or ``None``
    :param action_space: the env's ``Discrete`` space
    :param random_action_prob: epsilon
    :param low_noise_prob: probability that an episode is a low-noise one (no random actions)
    :param deterministic: use the model's greedy action
    :param seed: seed of the random actions and of the episodes' draws
    """

    def __init__(
        self,
        model: OffPolicyAlgorithm | None,
        action_space: spaces.Space,
        random_action_prob: float = 0.0,
        low_noise_prob: float = 0.0,
        deterministic: bool = True,
        seed: int | None = None,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"action_space: expected a Discrete space, found {action_space}")
        for name, value in (("random_action_prob", random_action_prob), ("low_noise_prob", low_noise_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], found {value}")
        self.model, self.n = model, int(action_space.n)
        self.random_action_prob = 1.0 if model is None else random_action_prob
        self.low_noise_prob = low_noise_prob
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self.random_actions: list[bool] = []
        self.low_noise = False

    def new_episode(self) -> None:
        """Draw whether the episode starting now is a low-noise one."""
        self.low_noise = bool(self.rng.random() < self.low_noise_prob)

    def __call__(self, obs: Any) -> np.ndarray:
        if not self.low_noise and self.rng.random() < self.random_action_prob:
            self.random_actions.append(True)
            return np.asarray(self.rng.integers(self.n), dtype=np.int64)
        assert self.model is not None
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        self.random_actions.append(False)
        return np.asarray(action, dtype=np.int64)


class EpisodeStarts(gym.Wrapper):
    """Calls ``on_reset()`` at every reset of the env it wraps (a :class:`DiscreteActingPolicy`'s episode draw)."""

    def __init__(self, env: gym.Env, on_reset: Callable[[], None]) -> None:
        super().__init__(env)
        self.on_reset = on_reset

    def reset(self, **kwargs: Any) -> Any:
        self.on_reset()
        return super().reset(**kwargs)


def rollout_env(env_id: str, policy: Any) -> gym.Env | str:
    """The env to record ``policy`` on: ``env_id``, wrapped in :class:`EpisodeStarts` for a discrete policy."""
    if isinstance(policy, DiscreteActingPolicy):
        return EpisodeStarts(gym.make(env_id), policy.new_episode)
    return env_id


__all__ = [
    "DISCRETE_BEHAVIOUR_ALGOS",
    "DISCRETE_BEHAVIOUR_DEFAULTS",
    "IMPERFECT_EPSILON",
    "LOW_NOISE_EPISODES",
    "DiscreteActingPolicy",
    "EpisodeStarts",
    "make_discrete_agent",
    "rollout_env",
]
