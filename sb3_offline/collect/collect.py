"""Make a dataset under a named protocol and write it as a local Minari dataset."""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_offline.collect.agents import (
    ActingPolicy,
    ReferenceScores,
    TimeEstimate,
    cached_expert_scores,
    expert_agent,
    expert_folder,
    make_behaviour_agent,
    medium_agent,
    random_score,
)
from sb3_offline.collect.discrete import DiscreteActingPolicy, rollout_env
from sb3_offline.collect.protocols import MEDIUM_FRACTION, Protocol, get_protocol
from sb3_offline.common.episodes import episode_returns as common_episode_returns
from sb3_offline.datasets.rollouts import record_transitions
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.datasets.writers import save_minari


def default_dataset_id(env_id: str, protocol: str, version: int = 0) -> str:
    """``"Hopper-v5", "imperfect"`` -> ``"hopper/imperfect-v0"`` (the env's name, lower case, as namespace)."""
    name = re.sub(r"-v\d+$", "", env_id.split("/")[-1]).lower()
    return f"{name}/{protocol}-v{version}"


def episode_returns(transitions: Transitions) -> np.ndarray:
    """
    Undiscounted returns of the episodes a termination or truncation closes (a trailing cut is left out):
    :func:`sb3_offline.common.episodes.episode_returns` with ``complete_only=True``.
    """
    return common_episode_returns(transitions.rewards, transitions.episode_ends, complete_only=True)


@dataclass
class CollectedDataset:
    """
    What :func:`collect_dataset` made.

    :param dataset_id: the Minari id it was written under
    :param protocol: the protocol's name
    :param transitions: the data as written
    :param scores: the env's reference scores (random and expert mean returns) written with the data; ``None``
        when none were (``ref_scores=False``); for a ``random`` dataset without an expert, ``expert`` is ``None``
        and nothing was written (Minari and D4RL keep the two scores as a pair)
    :param behaviour_return: mean return of the complete episodes in the data
    :param seconds: wall-clock time of the collection (training included)
    :param random_actions: per transition, whether the action was uniformly random (rollout protocols)
    :param info: protocol details (behaviour training steps, ...)
    """

    dataset_id: str
    protocol: str
    transitions: Transitions
    scores: ReferenceScores | None
    behaviour_return: float
    seconds: float
    random_actions: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _rollouts(
    env_id: str, policy: ActingPolicy | DiscreteActingPolicy, n: int, seed: int, progress_bar: bool
) -> tuple[Transitions, np.ndarray]:
    data = record_transitions(rollout_env(env_id, policy), n, policy=policy, seed=seed, progress_bar=progress_bar)
    flags = np.asarray(policy.random_actions, dtype=bool)
    assert len(flags) == len(data), "the acting policy is called once per transition"
    return data, flags


#: The protocol sources that roll the trained expert out: they need the expert itself, whatever the scores.
EXPERT_SOURCES = ("expert", "medium-expert")


def _user_scores(ref_min: float | None, ref_max: float | None, ref_scores: bool) -> ReferenceScores | None:
    if (ref_min is None) != (ref_max is None):
        given, missing = ("ref_min", "ref_max") if ref_max is None else ("ref_max", "ref_min")
        raise ValueError(
            f"{missing}: expected a score with {given}={ref_min if ref_max is None else ref_max} "
            "(give both reference scores or neither), found None"
        )
    if ref_min is None or ref_max is None:
        return None
    if not ref_scores:
        raise ValueError(
            f"ref_scores: expected True with ref_min={ref_min} and ref_max={ref_max} (they are scores to write), "
            "found False"
        )
    for name, value in (("ref_min", ref_min), ("ref_max", ref_max)):
        if not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite return, found {value}")
    if ref_max == ref_min:
        raise ValueError(f"ref_max: expected a return other than ref_min ({ref_min}) to normalize by, found {ref_max}")
    return ReferenceScores(float(ref_min), float(ref_max))


def collect_dataset(
    env_id: str,
    protocol: str,
    n_transitions: int,
    algo: str = "td3",
    dataset_id: str | None = None,
    seed: int = 0,
    expert_steps: int | None = None,
    ref_episodes: int = 20,
    behaviour_kwargs: dict[str, Any] | None = None,
    agents_cache: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress_bar: bool = True,
    ref_min: float | None = None,
    ref_max: float | None = None,
    ref_scores: bool = True,
) -> CollectedDataset:
    """
    Make a dataset of ``env_id`` the way ``protocol`` says (see :data:`~sb3_offline.collect.PROTOCOLS`)
    and write it as a local Minari dataset (``minari.create_dataset_from_buffers``, no jax) with the
    env spec, ``ref_min_score``/``ref_max_score`` (random and expert mean returns) and terminations
    and truncations kept apart. Written atomically: an interrupted collection leaves nothing behind.

    - ``final`` / ``concurrent``: a fresh ``algo`` agent trains for ``n_transitions`` steps with
      N(0, 0.5) / N(0, 0.1) exploration noise; every transition it experienced is the dataset.
    - ``imitation`` / ``imperfect`` / ``expert``: ``n_transitions`` steps of the expert (trained for
      ``expert_steps``, cached): noiseless; N(0, 0.3) noise and a random action with probability 0.3;
      its own exploration (SAC samples, DDPG/TD3 N(0, 0.1)).
    - ``random``: uniformly random actions.
    - ``medium``: a policy stopped at a third of the expert's normalized return, rolled out like ``expert``;
      ``medium-replay``: its replay buffer up to the stop (its size is what training took, not
      ``n_transitions``); ``medium-expert``: half medium, half expert rollouts.

    The reference scores (``ref_min_score``, ``ref_max_score``) are, in this order: ``ref_min``/``ref_max``
    when given; else those of the cached expert (trained first when none is cached, announced with a time
    estimate) except for ``random``, which never trains nor loads an expert: it takes the cached expert's
    scores when there are some (read from the cache, the agent not loaded) and otherwise only measures the
    random policy's return (``scores.expert`` is ``None``) and writes no reference scores, since Minari and
    D4RL keep them as a pair. ``ref_scores=False`` writes none. An expert is still trained (or loaded) for the
    protocols that roll it out (``imitation``, ``imperfect``, ``expert``, ``medium-expert``), and for
    ``medium``/``medium-replay`` when ``ref_min``/``ref_max`` are not given (their policy stops at a third
    of the expert's normalized return).

    :param env_id: a gymnasium id with a bounded Box action space, or a Discrete one (with ``algo`` DQN/QR-DQN;
        noise is epsilon there: :mod:`sb3_offline.collect.discrete`)
    :param protocol: one of :data:`~sb3_offline.collect.PROTOCOLS`
    :param n_transitions: transitions to collect (training steps for ``final``/``concurrent``)
    :param algo: the SB3 behaviour algorithm: ``"ddpg"``, ``"td3"`` or ``"sac"``; ``"dqn"`` or ``"qrdqn"``
    :param dataset_id: the Minari id (default :func:`default_dataset_id`, e.g. ``pendulum/imperfect-v0``)
    :param seed: seeds the agents, the envs and the noise
    :param expert_steps: training steps of the expert (default: known per env, else the paper's 1M)
    :param ref_episodes: episodes for each reference score
    :param behaviour_kwargs: more arguments for the SB3 behaviour algorithm
    :param agents_cache: where trained experts are cached (default ``$SB3_OFFLINE_AGENTS`` or ``~/.cache``)
    :param overwrite: replace an existing local dataset of that id
    :param progress_bar: show progress bars
    :param ref_min: the random policy's return to record as ``ref_min_score`` (with ``ref_max``; both or neither)
    :param ref_max: the expert's return to record as ``ref_max_score`` (with ``ref_min``)
    :param ref_scores: record reference scores (``False``: none, and no expert trained only for them)
    """
    spec = get_protocol(protocol)
    if n_transitions <= 0:
        raise ValueError(f"n_transitions: expected a positive number of transitions, found {n_transitions}")
    given = _user_scores(ref_min, ref_max, ref_scores)
    dataset_id = dataset_id or default_dataset_id(env_id, protocol)
    if not overwrite:
        import minari

        if dataset_id in minari.list_local_datasets():
            raise FileExistsError(f"dataset_id: '{dataset_id}' already exists locally (pass overwrite=True)")
    start = time.perf_counter()
    job = _Job(env_id, spec, algo, seed, expert_steps, ref_episodes, behaviour_kwargs, agents_cache, progress_bar)
    expert, scores = _expert_and_scores(job, given, ref_scores)
    data, random_actions, info = _transitions(job, n_transitions, expert, scores, user_scores=given is not None)
    written = scores if ref_scores else None
    _write(job, data, dataset_id, written, overwrite)
    returns = episode_returns(data)
    return CollectedDataset(
        dataset_id=dataset_id,
        protocol=protocol,
        transitions=data,
        scores=written,
        behaviour_return=float(returns.mean()) if len(returns) else float("nan"),
        seconds=time.perf_counter() - start,
        random_actions=random_actions,
        info=info,
    )


@dataclass(frozen=True)
class _Job:
    """The settings of one :func:`collect_dataset` call that its steps share."""

    env_id: str
    spec: Protocol
    algo: str
    seed: int
    expert_steps: int | None
    ref_episodes: int
    behaviour_kwargs: dict[str, Any] | None
    agents_cache: str | os.PathLike | None
    progress_bar: bool

    def agent_options(self) -> dict[str, Any]:
        """The keyword arguments :func:`expert_agent` and :func:`medium_agent` share."""
        return dict(
            algo=self.algo,
            seed=self.seed,
            ref_episodes=self.ref_episodes,
            cache_dir=self.agents_cache,
            progress_bar=self.progress_bar,
            behaviour_kwargs=self.behaviour_kwargs,
        )

    def expert(self, reason: str) -> tuple[Any, ReferenceScores]:
        """The cached expert and its scores (trained now, announced with ``reason``, when none is cached)."""
        return expert_agent(self.env_id, steps=self.expert_steps, reason=reason, **self.agent_options())


def _expert_and_scores(
    job: _Job, given: ReferenceScores | None, ref_scores: bool
) -> tuple[Any, ReferenceScores | None]:
    """
    The expert, for the protocols that roll it out (else ``None``), and the reference scores: ``given``, else
    the cached expert's (trained first where it must be), else for ``random`` the random policy's score alone.
    """
    source, protocol = job.spec.source, job.spec.name
    if source in EXPERT_SOURCES:
        expert, measured = job.expert(f"the '{protocol}' rollouts")
        return expert, given or measured
    if given is not None:
        return None, given
    if source in ("medium", "medium-replay"):
        return None, job.expert(
            f"its return, a third of which is where the '{protocol}' policy stops (or give ref_min/ref_max)"
        )[1]
    if not ref_scores:
        return None, None
    if source == "training":
        skip_hint = "give ref_min/ref_max (--ref-min/--ref-max) or ref_scores=False (--no-ref-scores) to skip it"
        return None, job.expert(f"the reference scores only; {skip_hint}")[1]
    env_id, algo, steps, seed = job.env_id, job.algo, job.expert_steps, job.seed
    scores = cached_expert_scores(expert_folder(env_id, algo, steps, seed, job.agents_cache, job.behaviour_kwargs))
    # no expert for random data: the random score only, written nowhere (Minari and D4RL keep the two as a pair)
    return None, scores or ReferenceScores(random_score(env_id, job.ref_episodes, seed), None)


def _acting_policy(
    model: Any, action_space: gym.Space, spec: Protocol, noise_std: float, deterministic: bool, seed: int
) -> ActingPolicy | DiscreteActingPolicy:
    """The protocol's acting policy: Gaussian noise on a Box, epsilon (and low-noise episodes) on a Discrete space."""
    random_action_prob = spec.random_action_prob
    if isinstance(action_space, gym.spaces.Discrete):
        if spec.discrete_random_action_prob is not None:
            random_action_prob = spec.discrete_random_action_prob
        return DiscreteActingPolicy(model, action_space, random_action_prob, spec.low_noise_prob, deterministic, seed)
    return ActingPolicy(model, action_space, noise_std, random_action_prob, deterministic=deterministic, seed=seed)


def _transitions(
    job: _Job, n_transitions: int, expert: Any, scores: ReferenceScores | None, user_scores: bool
) -> tuple[Transitions, np.ndarray | None, dict[str, Any]]:
    """The protocol's data, whether each action was the random one (rollouts only), and the protocol details."""
    spec, env_id, seed, algo = job.spec, job.env_id, job.seed, job.algo
    info: dict[str, Any] = {"behaviour_algo": algo}
    action_space = gym.make(env_id).action_space
    # a stochastic rollout is the policy's own exploration: SAC samples, DDPG/TD3 add their N(0, 0.1)
    noise_std = 0.0 if spec.stochastic and algo == "sac" else spec.noise_std
    if spec.source == "training":
        info["behaviour_training_steps"] = n_transitions
        return _training_transitions(job, n_transitions), None, info
    if spec.source == "expert":
        policy = _acting_policy(expert, action_space, spec, noise_std, not spec.stochastic, seed)
        return (*_rollouts(env_id, policy, n_transitions, seed, job.progress_bar), info)
    if spec.source == "random":
        policy = _acting_policy(None, action_space, spec, 0.0, True, seed)
        return (*_rollouts(env_id, policy, n_transitions, seed, False), info)
    assert scores is not None
    medium, replay, info["medium_training_steps"] = medium_agent(
        env_id,
        scores,
        max_steps=job.expert_steps,
        fraction=MEDIUM_FRACTION,
        user_scores=user_scores,
        **job.agent_options(),
    )
    if spec.source == "medium-replay":
        return replay, None, info

    def acting(model: Any, offset: int) -> ActingPolicy | DiscreteActingPolicy:
        return _acting_policy(model, action_space, spec, noise_std, False, seed + offset)

    n_medium = n_transitions if spec.source == "medium" else n_transitions // 2
    data, random_actions = _rollouts(env_id, acting(medium, 0), n_medium, seed, job.progress_bar)
    if spec.source == "medium-expert":
        expert_data, expert_flags = _rollouts(
            env_id, acting(expert, 1), n_transitions - n_medium, seed + 1, job.progress_bar
        )
        data = Transitions.concatenate([data, expert_data])
        random_actions = np.concatenate([random_actions, expert_flags])
    return data, random_actions, info


def _training_transitions(job: _Job, n_transitions: int) -> Transitions:
    """Every transition a fresh behaviour agent experiences while it learns for ``n_transitions`` steps."""
    from sb3_offline.datasets.loaders import transitions_from_replay_buffer

    env = gym.make(job.env_id)
    options = {**(job.behaviour_kwargs or {}), "buffer_size": max(n_transitions, 1)}
    agent = make_behaviour_agent(env, job.algo, job.spec.noise_std, seed=job.seed + 2, **options)
    label = f"{job.algo.upper()} behaviour agent"
    agent.learn(n_transitions, callback=TimeEstimate(label), progress_bar=job.progress_bar)
    return transitions_from_replay_buffer(agent.replay_buffer, env.action_space, source=f"{job.env_id} {job.spec.name}")


def _write(job: _Job, data: Transitions, dataset_id: str, scores: ReferenceScores | None, overwrite: bool) -> None:
    """``data`` as the local Minari dataset ``dataset_id``, with the reference scores when there are both."""
    env_id, protocol = job.env_id, job.spec.name
    data.env_id = env_id
    data.source = f"{env_id} {protocol}"
    if scores is not None and scores.expert is not None:
        data.metadata.update(ref_min_score=scores.random, ref_max_score=scores.expert)
    save_minari(
        data,
        dataset_id,
        env=env_id,
        overwrite=overwrite,
        algorithm_name=f"{job.algo} behaviour agent, protocol '{protocol}'",
        description=f"{job.spec.description}. {len(data)} transitions of {env_id}, made by sb3-offline.",
    )


__all__ = ["EXPERT_SOURCES", "CollectedDataset", "collect_dataset", "default_dataset_id", "episode_returns"]
