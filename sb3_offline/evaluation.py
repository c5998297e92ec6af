"""Evaluation: returns of SB3 models and of plain policies (random, scripted), and D4RL's normalized score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from sb3_offline.common.episodes import normalized_return

if TYPE_CHECKING:
    from sb3_offline.buffers import RewardTransform


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


# ------------------------------------------------------------------------------- normalized score
def reference_scores(dataset: Any) -> tuple[float, float] | None:
    """
    ``(ref_min_score, ref_max_score)`` recorded by a dataset (random and expert mean returns, D4RL's
    convention), or ``None`` when it records none.

    :param dataset: a Minari id, folder or ``MinariDataset``, an ``.hdf5``/``.npz`` path, ``Transitions``,
        or an ``OfflineReplayBuffer``
    """
    from sb3_offline.buffers import OfflineReplayBuffer
    from sb3_offline.datasets.loaders import is_minari_source, load_transitions, open_minari_dataset
    from sb3_offline.datasets.transitions import Transitions

    if isinstance(dataset, OfflineReplayBuffer | Transitions):
        metadata: dict[str, Any] = dataset.metadata
    elif is_minari_source(dataset):
        metadata = open_minari_dataset(dataset).storage.metadata
    else:
        metadata = load_transitions(dataset).metadata
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if low is None or high is None:
        return None
    return float(low), float(high)


def normalized_score(dataset: Any, returns: Any) -> Any:
    """
    D4RL's normalized score of ``returns`` (a float or an array) on ``dataset``:
    ``100 * (return - ref_min_score) / (ref_max_score - ref_min_score)``, 0 = random policy,
    100 = expert. Raises ``ValueError`` when the dataset records no reference scores.

    :param dataset: anything :func:`reference_scores` accepts (e.g. ``"pendulum/imperfect-v0"``)
    :param returns: undiscounted episode return(s)
    """
    scores = reference_scores(dataset)
    if scores is None:
        raise ValueError(
            f"dataset: expected ref_min_score and ref_max_score in its metadata, found none in {dataset!r} "
            "(datasets made by sb3_offline.collect record them)"
        )
    return normalized_return(returns, *scores)


def normalized_score_or_none(scores: tuple[float, float] | None, returns: Any) -> Any:
    """
    :func:`~sb3_offline.common.episodes.normalized_return` of ``returns`` with ``scores`` (what
    :func:`reference_scores` gives), or ``None`` where there are no scores or both are equal.
    """
    if scores is None or scores[0] == scores[1]:
        return None
    return normalized_return(returns, *scores)


@dataclass
class EvaluationResult:
    """
    :param mean_return: mean undiscounted episode return
    :param std_return: its standard deviation over episodes
    :param returns: every episode's return
    :param normalized_score: the mean return, normalized with the dataset's reference scores (``None`` without them)
    """

    mean_return: float
    std_return: float
    returns: list[float]
    normalized_score: float | None = None


def evaluate(
    model: Any,
    env: gym.Env | str | None = None,
    n_episodes: int = 10,
    dataset: Any = None,
    deterministic: bool = True,
    seed: int = 0,
) -> EvaluationResult:
    """
    Mean/std return of an SB3 model over ``n_episodes`` (SB3's ``evaluate_policy``, episode ``k`` reset
    with ``seed + k`` through the VecEnv seed) and its normalized score when the dataset records
    reference scores.

    :param model: an SB3 model (any of ours, or SB3's own)
    :param env: the env or its id; default: a fresh env of the model's env id
    :param n_episodes: episodes to run
    :param dataset: the dataset whose reference scores normalize the return; default: the model's
        own dataset (``model.dataset`` or its replay buffer), when it has one
    :param deterministic: deterministic actions
    :param seed: seed of the evaluation env
    """
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    if env is None:
        vec_env = model.get_env()
        spec = vec_env.get_attr("spec")[0] if vec_env is not None else None
        if spec is None:
            raise ValueError("env: expected an env or env id (the model has no env with a spec), found None")
        env = gym.make(spec.id)
    elif isinstance(env, str):
        env = gym.make(env)
    env.reset(seed=seed)
    returns, _ = evaluate_policy(
        model, Monitor(env), n_eval_episodes=n_episodes, deterministic=deterministic, return_episode_rewards=True
    )
    values = [float(r) for r in returns]  # type: ignore[union-attr]
    mean = float(np.mean(values))
    if dataset is None:
        buffer = getattr(model, "replay_buffer", None)
        dataset = (
            buffer if buffer is not None and getattr(buffer, "metadata", None) else getattr(model, "dataset", None)
        )
    score = normalized_score_or_none(reference_scores(dataset) if dataset is not None else None, mean)
    return EvaluationResult(mean, float(np.std(values)), values, score)


# ---------------------------------------------------------------------- extrapolation-error diagnostic
@dataclass
class ValueEstimate:
    """
    The critic's belief against what the policy actually gets, from the same start states.

    :param q_estimate: mean over episodes of the critic's ``Q(s0, pi(s0))``
    :param discounted_return: mean over episodes of ``sum_t gamma^t r_t`` actually obtained from ``s0``
    :param mean_return: mean undiscounted return of those episodes
    :param n_episodes: number of episodes (start states)
    """

    q_estimate: float
    discounted_return: float
    mean_return: float
    n_episodes: int

    @property
    def overestimation(self) -> float:
        """``q_estimate - discounted_return``: positive when the critic believes in more than there is."""
        return self.q_estimate - self.discounted_return


def critic_estimate(model: Any, observation: Any, action: np.ndarray) -> float:
    """
    ``Q1(s, a)`` of the model's critic for one observation and one action in the env's units (rescaled to
    [-1, 1] as in the replay buffer). The first Q-network is the one the actors of DDPG/TD3/BCQ maximise.
    A policy whose critics take actions in other units (LAPO's z-scored actions) converts them with its
    ``critic_action_input`` method.
    """
    import torch as th

    critic = getattr(model.policy, "critic", None)
    if critic is None:
        raise ValueError(
            f"model: expected an actor-critic algorithm (its policy has a critic), found {type(model).__name__} "
            "without one (BC has no critic)"
        )
    obs_tensor, _ = model.policy.obs_to_tensor(observation)
    scaled = model.policy.scale_action(np.asarray(action, dtype=np.float32).reshape(1, -1))
    to_critic_units = getattr(model.policy, "critic_action_input", None)
    with th.no_grad():
        action_tensor = th.as_tensor(scaled, dtype=th.float32, device=model.device)
        if to_critic_units is not None:
            action_tensor = to_critic_units(action_tensor)
        q_values = critic(obs_tensor, action_tensor)
    return float(q_values[0].reshape(-1)[0].item())


def reward_transform_of(model: Any) -> RewardTransform:
    """
    The reward transform a model trains its critics with (a :class:`~sb3_offline.buffers.RewardTransform`: its
    buffer's, or the resolved one saved in its ``replay_buffer_kwargs``); the identity for a model without one.
    """
    from sb3_offline.buffers import RewardTransform, resolve_reward_transform

    transform = getattr(getattr(model, "replay_buffer", None), "reward_transform", None)
    if transform is not None:
        return transform
    spec = (getattr(model, "replay_buffer_kwargs", None) or {}).get("reward_transform")
    if spec is None or isinstance(spec, str):  # a rule not yet resolved against a dataset
        return RewardTransform()
    return resolve_reward_transform(spec)


def model_reward_transform(model: Any) -> Callable[[float], float]:
    """:func:`reward_transform_of` ``model`` as a function of one reward."""
    transform = reward_transform_of(model)
    return lambda reward: float(transform(np.asarray(reward, dtype=np.float64)))


def estimate_value_error(
    model: Any, env: gym.Env | str, n_episodes: int = 5, gamma: float | None = None, seed: int = 0
) -> ValueEstimate:
    """
    The extrapolation-error diagnostic of the BCQ paper (its value-estimate figures): for ``n_episodes``
    start states ``s0`` (episode ``k`` reset with ``seed + k``), the critic's estimate ``Q(s0, pi(s0))``
    next to the discounted return ``sum_t gamma^t r_t`` the deterministic policy then actually obtains.
    A truly off-policy agent's estimate climbs far above the real value; BCQ's stays close.

    The real return is cut where the episode ends (a time limit cuts the infinite discounted sum: with
    Pendulum's 200 steps and gamma 0.99 the missing tail weighs ``0.99^200 = 0.13`` of the value there).
    When the model trains on transformed rewards (``reward_transform``: IQL, LAPO), each reward is
    transformed the same way before it is summed, so both numbers are in the critic's units
    (``mean_return`` stays the env's undiscounted return).

    :param model: an actor-critic SB3 model (BatchDDPG, BCQ, PLAS, AWAC, or SB3's DDPG/TD3/SAC)
    :param env: the env or its id
    :param n_episodes: start states to average over
    :param gamma: discount (default: the model's)
    :param seed: seed of the first episode's reset
    """
    env = gym.make(env) if isinstance(env, str) else env
    gamma = float(model.gamma if gamma is None else gamma)
    transform = model_reward_transform(model)
    estimates, discounted, undiscounted = [], [], []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        action, _ = model.predict(obs, deterministic=True)
        estimates.append(critic_estimate(model, obs, action))
        total, weighted, factor, done = 0.0, 0.0, 1.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            weighted += factor * transform(float(reward))
            factor *= gamma
            done = terminated or truncated
            if not done:
                action, _ = model.predict(obs, deterministic=True)
        discounted.append(weighted)
        undiscounted.append(total)
    return ValueEstimate(
        float(np.mean(estimates)), float(np.mean(discounted)), float(np.mean(undiscounted)), n_episodes
    )
