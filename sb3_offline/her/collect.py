"""
Goal-conditioned datasets of the gymnasium-robotics Fetch tasks, written as local Minari datasets.

A behaviour agent is trained online with SB3's ``HerReplayBuffer`` (Andrychowicz et al., "Hindsight
Experience Replay", 2017) — sb3-contrib's TQC is the strongest of the SB3 family, DDPG/TD3/SAC are
there too — or is a uniformly random policy (a poor behaviour), and its episodes are recorded with
terminations and truncations apart (a Fetch episode is 50 steps, closed by a truncation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from sb3_offline.common.robotics import register_gymnasium_robotics
from sb3_offline.common.training import configure_logger
from sb3_offline.datasets.rollouts import record_transitions
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.datasets.writers import save_minari
from sb3_offline.her.evaluation import agent_policy

#: Behaviours trained with SB3's HER, by name.
HER_AGENTS = ("tqc", "sac", "td3", "ddpg")
BEHAVIOURS = ("random", *HER_AGENTS)


def make_goal_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id)`` with the gymnasium-robotics envs registered (imported on first use)."""
    register_gymnasium_robotics()
    return gym.make(env_id, **kwargs)


def train_her_agent(
    env: gym.Env | str,
    algo: str = "tqc",
    total_timesteps: int = 20_000,
    seed: int = 0,
    device: str = "auto",
    verbose: int = 0,
    normalize: bool = True,
    **kwargs: Any,
) -> BaseAlgorithm:
    """
    Train an SB3 agent online with SB3's ``HerReplayBuffer`` (``future`` goals, ``n_sampled_goal=4``).

    Hyper-parameters are rl-zoo3's for ``FetchReach`` with TQC/SAC (``hyperparams/tqc.yml``): gamma
    0.95, learning rate 1e-3, batch 256, 1000 random steps first, observations normalised by
    ``VecNormalize`` (``normalize: True``; rewards are not). DDPG and TD3 get Gaussian action noise of
    std 0.2 and tau 0.05 (the HER paper's polyak 0.95). ``kwargs`` override any of them. Act with the
    result through :func:`~sb3_offline.her.evaluation.agent_policy` (it applies the ``VecNormalize``).

    :param env: the goal-conditioned env (or its id)
    :param algo: ``"tqc"`` (sb3-contrib), ``"sac"``, ``"td3"`` or ``"ddpg"``
    :param total_timesteps: env steps of online training
    :param seed: seed of the agent
    :param device: torch device of the agent
    :param verbose: SB3 verbosity
    :param normalize: normalise observations with SB3's ``VecNormalize`` (frozen after training)
    :return: the trained agent
    """
    from stable_baselines3 import DDPG, SAC, TD3, HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    if algo not in HER_AGENTS:
        raise ValueError(f"algo: expected one of {list(HER_AGENTS)}, found {algo!r}")
    if isinstance(env, str):
        env = make_goal_env(env)
    action_space = env.action_space
    train_env: gym.Env | VecEnv = env
    if normalize:
        train_env = VecNormalize(DummyVecEnv([lambda: env]), norm_obs=True, norm_reward=False)
    hyperparams: dict[str, Any] = dict(
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        buffer_size=1_000_000,
        learning_starts=1000,
        batch_size=256,
        gamma=0.95,
        learning_rate=1e-3,
    )
    if algo in ("td3", "ddpg"):
        assert isinstance(action_space, gym.spaces.Box)
        n_actions = action_space.shape[0]
        hyperparams.update(tau=0.05, action_noise=NormalActionNoise(np.zeros(n_actions), 0.2 * np.ones(n_actions)))
    hyperparams.update(kwargs)
    from sb3_contrib import TQC

    classes: dict[str, type[BaseAlgorithm]] = {"tqc": TQC, "sac": SAC, "td3": TD3, "ddpg": DDPG}
    cls = classes[algo]
    model = cls("MultiInputPolicy", train_env, seed=seed, device=device, verbose=verbose, **hyperparams)
    model.set_logger(configure_logger(verbose, model.tensorboard_log, "run", True))  # no SB3-* folder in /tmp
    model.learn(total_timesteps)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.training = False
    return model


def noisy_policy(
    policy: Callable[[Any], np.ndarray],
    action_space: gym.spaces.Box,
    noise_std: float = 0.0,
    random_prob: float = 0.0,
    seed: int | None = None,
) -> Callable[[Any], np.ndarray]:
    """
    ``policy`` made imperfect the BCQ paper's way: Gaussian noise of std ``noise_std`` (a fraction of
    each dimension's half-range) and, with probability ``random_prob``, a uniformly random action.
    """
    rng = np.random.default_rng(seed)
    low, high = action_space.low, action_space.high
    half_range = (high - low) / 2.0

    def act(obs: Any) -> np.ndarray:
        action = np.asarray(policy(obs), dtype=np.float64)
        if noise_std:
            action = action + noise_std * half_range * rng.standard_normal(action.shape)
        if random_prob and rng.random() < random_prob:
            action = rng.uniform(low, high)
        return np.clip(action, low, high).astype(np.float32)

    return act


def episode_success_rate(transitions: Transitions, distance_threshold: float = 0.05) -> float:
    """
    Fraction of the episodes whose last transition reached its goal: ``||achieved - desired|| <
    distance_threshold`` for the last *next* observation, which is the Fetch envs' ``info["is_success"]``
    at the episode's end (what SB3 reports as ``success_rate``).

    :param transitions: goal-conditioned transitions (``Dict`` observations with the goal keys)
    :param distance_threshold: the env's ``distance_threshold`` (0.05 in every Fetch task)
    """
    if not isinstance(transitions.next_observations, dict) or not {"achieved_goal", "desired_goal"} <= set(
        transitions.next_observations
    ):
        found = sorted(transitions.next_observations) if isinstance(transitions.next_observations, dict) else "an array"
        raise ValueError(
            f"{transitions.source}: field 'next_observations': expected a dict with 'achieved_goal' and "
            f"'desired_goal', found {found}"
        )
    last = np.array([part.stop - 1 for part in transitions.episode_slices()], dtype=np.int64)
    achieved = np.asarray(transitions.next_observations["achieved_goal"])[last]
    desired = np.asarray(transitions.next_observations["desired_goal"])[last]
    return float(np.mean(np.linalg.norm(achieved - desired, axis=-1) < distance_threshold))


@dataclass
class FetchCollection:
    """
    What :func:`collect_fetch_dataset` made.

    :param transitions: the recorded transitions
    :param dataset: the written ``MinariDataset`` (``None`` when no ``dataset_id`` was given)
    :param success_rate: the behaviour's success rate over the recorded episodes
    :param agent: the trained SB3 agent (``None`` for a random or given behaviour)
    :param train_seconds: wall-clock time of the agent's training
    :param record_seconds: wall-clock time of the recording
    """

    transitions: Transitions
    dataset: Any
    success_rate: float
    agent: BaseAlgorithm | None
    train_seconds: float
    record_seconds: float


def collect_fetch_dataset(
    env_id: str = "FetchReach-v4",
    n_transitions: int = 100_000,
    behaviour: str | BaseAlgorithm | Callable[[Any], np.ndarray] = "tqc",
    dataset_id: str | None = None,
    train_timesteps: int = 20_000,
    agent_kwargs: dict[str, Any] | None = None,
    noise_std: float = 0.0,
    random_prob: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    progress_bar: bool = False,
    verbose: int = 0,
) -> FetchCollection:
    """
    Record ``n_transitions`` of a Fetch task with a behaviour policy and write them as a local Minari
    dataset (atomically, with the env's spec, so ``recover_environment()`` gives the env back).

    :param env_id: a goal-conditioned env id (``FetchReach-v4``, ``FetchPush-v4``, ...)
    :param n_transitions: number of transitions to record (the last episode is closed as a truncation)
    :param behaviour: ``"random"`` (uniform actions: a poor behaviour), ``"tqc"``/``"sac"``/``"td3"``/``"ddpg"``
        (an agent trained here with SB3's HER for ``train_timesteps``), a trained SB3 model, or a
        function obs -> action
    :param dataset_id: the Minari id to write (e.g. ``"fetch/reach-expert-v0"``); ``None``: write nothing
    :param train_timesteps: env steps of the behaviour agent's online training
    :param agent_kwargs: hyper-parameters of the behaviour agent, over :func:`train_her_agent`'s defaults
    :param noise_std: Gaussian action noise of the recorded behaviour (fraction of the half-range)
    :param random_prob: probability of a uniformly random action in the recording
    :param seed: seed of the agent, the noise and the recording
    :param device: torch device of the trained agent
    :param overwrite: replace an existing local dataset of that id
    :param progress_bar: show a progress bar while recording
    :param verbose: SB3 verbosity of the agent's training
    :return: the transitions, the Minari dataset, the behaviour's success rate and timings
    """
    if n_transitions <= 0:
        raise ValueError(f"n_transitions: expected > 0, found {n_transitions}")
    env, action_space = _goal_env(env_id)
    agent, policy, name, train_seconds = _behaviour_policy(
        env_id, behaviour, train_timesteps, agent_kwargs, seed, device, verbose
    )
    if noise_std or random_prob:
        base = policy if policy is not None else (lambda obs: action_space.sample())
        policy = noisy_policy(base, action_space, noise_std, random_prob, seed=seed)
        name += f", noise {noise_std}, random actions {random_prob}"
    start = time.perf_counter()
    transitions = record_transitions(env, n_transitions, policy=policy, seed=seed, progress_bar=progress_bar)
    record_seconds = time.perf_counter() - start
    threshold = (
        float(env.get_wrapper_attr("distance_threshold")) if env.has_wrapper_attr("distance_threshold") else 0.05
    )
    success_rate = episode_success_rate(transitions, threshold)
    transitions.source = f"{env_id} {name}"
    dataset = None
    if dataset_id is not None:
        assert env.spec is not None
        dataset = save_minari(
            transitions,
            dataset_id,
            env=env.spec,
            overwrite=overwrite,
            algorithm_name=name,
            description=(
                f"{len(transitions)} transitions of {env_id} by {name}; episode success rate {success_rate:.3f}"
            ),
        )
    env.close()
    return FetchCollection(transitions, dataset, success_rate, agent, train_seconds, record_seconds)


def _goal_env(env_id: str) -> tuple[gym.Env, gym.spaces.Box]:
    """``env_id`` made, checked to be goal-conditioned (``Dict`` observations with the goal keys), and its ``Box``."""
    env = make_goal_env(env_id)
    if not isinstance(env.observation_space, gym.spaces.Dict) or not {"achieved_goal", "desired_goal"} <= set(
        env.observation_space.spaces
    ):
        raise ValueError(
            f"env_id: expected a goal-conditioned env (Dict observations with 'achieved_goal' and 'desired_goal'), "
            f"found {env_id} with {env.observation_space}"
        )
    assert isinstance(env.action_space, gym.spaces.Box)
    return env, env.action_space


def _behaviour_policy(
    env_id: str,
    behaviour: str | BaseAlgorithm | Callable[[Any], np.ndarray],
    train_timesteps: int,
    agent_kwargs: dict[str, Any] | None,
    seed: int,
    device: str,
    verbose: int,
) -> tuple[BaseAlgorithm | None, Callable[[Any], np.ndarray] | None, str, float]:
    """
    ``(agent, policy, name, train_seconds)`` of :func:`collect_fetch_dataset`'s ``behaviour``: an agent trained
    here with HER (or the one given) acting through :func:`~sb3_offline.her.evaluation.agent_policy`, a given
    function, or ``policy=None`` for uniformly random actions.
    """
    if isinstance(behaviour, BaseAlgorithm):
        return behaviour, agent_policy(behaviour), f"{type(behaviour).__name__} (given)", 0.0
    if isinstance(behaviour, str) and behaviour in BEHAVIOURS:
        if behaviour == "random":
            return None, None, "random", 0.0
        start = time.perf_counter()
        agent = train_her_agent(
            make_goal_env(env_id),
            behaviour,
            train_timesteps,
            seed=seed,
            device=device,
            verbose=verbose,
            **(agent_kwargs or {}),
        )
        train_seconds = time.perf_counter() - start
        return agent, agent_policy(agent), f"{behaviour.upper()}+HER ({train_timesteps} steps)", train_seconds
    if callable(behaviour):
        return None, behaviour, getattr(behaviour, "__name__", type(behaviour).__name__), 0.0
    raise ValueError(f"behaviour: expected one of {list(BEHAVIOURS)}, a model or a function, found {behaviour!r}")
