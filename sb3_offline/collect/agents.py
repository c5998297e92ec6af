"""
Behaviour agents for dataset collection: SB3's DDPG/TD3/SAC trained on the env (DQN/QR-DQN on a ``Discrete`` action
space: :mod:`sb3_offline.collect.discrete`), the trained expert (cached on disk, with the env's reference scores),
and noisy/random acting policies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_offline.collect.discrete import DISCRETE_BEHAVIOUR_ALGOS, DISCRETE_BEHAVIOUR_DEFAULTS, make_discrete_agent
from sb3_offline.common.episodes import normalized_return
from sb3_offline.common.training import configure_logger
from sb3_offline.evaluation import evaluate_callable

#: The SB3 algorithms a behaviour agent can be (``--algo``).
BEHAVIOUR_ALGOS: dict[str, type[OffPolicyAlgorithm]] = {
    "ddpg": DDPG,
    "td3": TD3,
    "sac": SAC,
    **DISCRETE_BEHAVIOUR_ALGOS,
}

#: The BCQ paper trains every behaviour agent for 1M steps; the envs below need far fewer.
PAPER_BEHAVIOUR_STEPS = 1_000_000
DEFAULT_EXPERT_STEPS: dict[str, int] = {"Pendulum-v1": 20_000, "InvertedPendulum-v5": 20_000, "CartPole-v1": 50_000}

#: The exploration noise of a behaviour agent that is trained to be an expert (the BCQ paper's "standard" N(0, 0.1)).
EXPERT_TRAINING_NOISE = 0.1

#: Hyper-parameters that differ from SB3's defaults for some envs (rl-zoo3's tuned values).
BEHAVIOUR_DEFAULTS: dict[str, dict[str, Any]] = {"Pendulum-v1": {"gamma": 0.98}, **DISCRETE_BEHAVIOUR_DEFAULTS}


def default_expert_steps(env_id: str) -> int:
    """Training steps of the expert: :data:`DEFAULT_EXPERT_STEPS` where known, else the paper's 1M."""
    return DEFAULT_EXPERT_STEPS.get(env_id, PAPER_BEHAVIOUR_STEPS)


def agents_dir(path: str | os.PathLike | None = None) -> Path:
    """
    Where trained behaviour agents are cached: ``path``, else ``$SB3_OFFLINE_AGENTS``, else
    ``~/.cache/sb3-offline/agents``.
    """
    if path is not None:
        return Path(path)
    return Path(os.environ.get("SB3_OFFLINE_AGENTS", Path.home() / ".cache" / "sb3-offline" / "agents"))


def _box(space: spaces.Space, field: str = "action_space") -> spaces.Box:
    if not isinstance(space, spaces.Box) or not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
        raise ValueError(
            f"{field}: expected a bounded Box (collection adds noise relative to its range), found {space}"
        )
    return space


def make_behaviour_agent(
    env: gym.Env,
    algo: str = "td3",
    noise_std: float = EXPERT_TRAINING_NOISE,
    seed: int | None = None,
    **kwargs: Any,
) -> OffPolicyAlgorithm:
    """
    An untrained SB3 DDPG/TD3/SAC for ``env`` whose exploration adds ``N(0, noise_std)`` to its
    actions rescaled to [-1, 1] (i.e. noise relative to the action range's half-width, as in the
    BCQ authors' code). SAC keeps its own stochastic policy and gets the same added noise.

    :param env: the environment (a Box action space; a Discrete one: :func:`.discrete.make_discrete_agent`)
    :param algo: ``"ddpg"``, ``"td3"`` or ``"sac"`` (``"dqn"`` or ``"qrdqn"`` for a Discrete action space)
    :param noise_std: std of the Gaussian exploration noise (0: none); epsilon for a Discrete action space
    :param seed: seed of the agent
    :param kwargs: more arguments of the SB3 algorithm (they override the env's defaults)
    """
    if algo not in BEHAVIOUR_ALGOS:
        raise ValueError(f"algo: expected one of {sorted(BEHAVIOUR_ALGOS)}, found '{algo}'")
    if noise_std < 0:
        raise ValueError(f"noise_std: expected >= 0, found {noise_std}")
    env_id = env.spec.id if env.spec is not None else ""
    options = {**BEHAVIOUR_DEFAULTS.get(env_id, {}), **kwargs}
    if isinstance(env.action_space, spaces.Discrete):
        agent = make_discrete_agent(env, algo, noise_std, seed, **options)
        agent.set_logger(configure_logger(agent.verbose, agent.tensorboard_log, "run", True))
        return agent
    action_space = _box(env.action_space)
    dim = int(np.prod(action_space.shape))
    noise = NormalActionNoise(np.zeros(dim), noise_std * np.ones(dim)) if noise_std > 0 else None
    policy = "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy"
    agent = BEHAVIOUR_ALGOS[algo](policy, env, action_noise=noise, seed=seed, **options)
    agent.set_logger(configure_logger(agent.verbose, agent.tensorboard_log, "run", True))  # no SB3-* folder in /tmp
    return agent


class ActingPolicy:
    """
    Observation -> action (env units) for :func:`~sb3_offline.datasets.record_transitions`: an SB3
    model's action (deterministic, or sampled when ``deterministic=False``), plus ``N(0, noise_std)``
    relative to the half-width of the range, clipped to the Box, replaced by a uniformly random
    action with probability ``random_action_prob``. ``model=None`` acts uniformly at random.
    ``random_actions`` records, per call, whether the action was the random one.

    :param model: the SB3 model, or ``None``
    :param action_space: the env's Box
    :param noise_std: Gaussian noise std relative to the half-width
    :param random_action_prob: probability of a uniformly random action
    :param deterministic: use the model's deterministic action
    :param seed: seed of the noise and of the random actions
    """

    def __init__(
        self,
        model: OffPolicyAlgorithm | None,
        action_space: spaces.Space,
        noise_std: float = 0.0,
        random_action_prob: float = 0.0,
        deterministic: bool = True,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= random_action_prob <= 1.0:
            raise ValueError(f"random_action_prob: expected a probability in [0, 1], found {random_action_prob}")
        self.model = model
        self.space = _box(action_space)
        self.noise_std = noise_std
        self.random_action_prob = 1.0 if model is None else random_action_prob
        self.deterministic = deterministic
        self.rng = np.random.default_rng(seed)
        self.random_actions: list[bool] = []

    def __call__(self, obs: Any) -> np.ndarray:
        low, high = self.space.low, self.space.high
        if self.rng.random() < self.random_action_prob:
            self.random_actions.append(True)
            return self.rng.uniform(low, high).astype(self.space.dtype)
        assert self.model is not None
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        if self.noise_std:
            action = action + self.noise_std * (high - low) / 2.0 * self.rng.standard_normal(action.shape)
        self.random_actions.append(False)
        return np.clip(action, low, high).astype(self.space.dtype)


def policy_return(env: gym.Env, policy: Callable[[Any], np.ndarray] | None, n_episodes: int, seed: int) -> float:
    """Mean undiscounted return of ``policy`` (``None``: uniformly random) over ``n_episodes``."""
    return evaluate_callable(env, policy, n_episodes, seed=seed)[0]


def greedy(model: OffPolicyAlgorithm) -> Callable[[Any], np.ndarray]:
    """The model's deterministic action for an observation."""
    return lambda obs: model.predict(obs, deterministic=True)[0]


@dataclass
class ReferenceScores:
    """
    D4RL's reference returns of an env: ``random`` (uniform policy) and ``expert``; 0 and 100 normalized.
    ``expert`` is ``None`` where only the random score is known (a ``random`` dataset collected without an
    expert): nothing can be normalized then.
    """

    random: float
    expert: float | None

    def normalize(self, returns: Any) -> Any:
        """D4RL's normalized score (:func:`~sb3_offline.common.episodes.normalized_return`) of a return or an array."""
        if self.expert is None:
            raise ValueError("expert: expected the expert's reference score to normalize with, found None")
        return normalized_return(returns, self.random, self.expert)


def format_duration(seconds: float) -> str:
    """``42 s``, ``7 min 05 s``, ``3 h 20 min``: a duration for people."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class TimeEstimate(BaseCallback):
    """
    Times the first ``fraction`` (1%) of a training run and prints the projected total and remaining time
    once, so that a long run says how long it will take before most of it has passed.

    An off-policy agent's first ``learning_starts`` steps are random actions without a gradient step, far faster
    than the rest: the timed share then starts where learning starts, and the projection is the warm-up's
    measured time plus the learning steps' rate times the steps that remain (a run whose warm-up covers all of
    it is timed from its start).

    :param label: what is trained, for the printed line (e.g. ``"TD3 expert of Hopper-v5"``)
    :param fraction: the share of the run that is timed
    """

    def __init__(self, label: str, fraction: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction: expected a share of the run in (0, 1], found {fraction}")
        self.label, self.fraction = label, fraction
        self.estimate_s: float | None = None
        self._start = 0.0
        self._at_start = 0
        self._window_from = 0
        self._window_start: float | None = None
        self._checkpoint = 1
        self._total = 1

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._at_start = self.model.num_timesteps
        self._total = max(int(self.locals.get("total_timesteps", 1)) - self._at_start, 1)
        timed = max(int(self._total * self.fraction), 1)
        warm_up = max(int(getattr(self.model, "learning_starts", 0)) - self._at_start, 0)
        self._window_from = warm_up if warm_up + timed <= self._total else 0
        self._window_start = self._start if self._window_from == 0 else None
        self._checkpoint = self._window_from + timed
        self.estimate_s = None

    def _on_step(self) -> bool:
        if self.estimate_s is not None:
            return True
        done = self.model.num_timesteps - self._at_start
        if self._window_start is None and done >= self._window_from:
            self._window_start = time.perf_counter()
        if self._window_start is not None and done >= self._checkpoint:
            now = time.perf_counter()
            elapsed = now - self._start
            rate = (now - self._window_start) / max(done - self._window_from, 1)
            self.estimate_s = elapsed + rate * (self._total - done)
            warm_up = f" (the first {self._window_from:,} without learning)" if self._window_from else ""
            print(
                f"{self.label}: the first {done:,} of {self._total:,} steps took {format_duration(elapsed)}{warm_up}; "
                f"about {format_duration(self.estimate_s)} in all ({format_duration(self.estimate_s - elapsed)} "
                "to go)",
                flush=True,
            )
        return True


class _StopAtReturn(BaseCallback):
    """Evaluate every ``eval_freq`` steps; stop training once the deterministic return reaches ``target``."""

    def __init__(self, eval_env: gym.Env, target: float, eval_freq: int, n_episodes: int, seed: int) -> None:
        super().__init__()
        self.eval_env, self.target, self.eval_freq = eval_env, target, eval_freq
        self.n_episodes, self.seed = n_episodes, seed
        self.last_return = -np.inf

    def _on_step(self) -> bool:
        if self.n_calls % self.eval_freq:
            return True
        self.last_return = policy_return(self.eval_env, greedy(self.model), self.n_episodes, self.seed)  # type: ignore[arg-type]
        return self.last_return < self.target


def _atomic_dir(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))


def _publish(staging: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


def _cache_key(env_id: str, algo: str, steps: int, seed: int, behaviour_kwargs: dict[str, Any] | None) -> str:
    key = f"{env_id}__{algo}__{steps}steps__seed{seed}"
    if behaviour_kwargs:  # agents trained with other hyper-parameters are other agents
        key += "__" + hashlib.sha1(repr(sorted(behaviour_kwargs.items())).encode()).hexdigest()[:10]
    return key


def expert_folder(
    env_id: str,
    algo: str = "td3",
    steps: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    behaviour_kwargs: dict[str, Any] | None = None,
) -> Path:
    """The cache folder of the expert :func:`expert_agent` trains (``agent.zip`` and ``scores.json``)."""
    steps = default_expert_steps(env_id) if steps is None else steps
    return agents_dir(cache_dir) / _cache_key(env_id, algo, steps, seed, behaviour_kwargs) / "expert"


def cached_expert_scores(folder: Path) -> ReferenceScores | None:
    """
    The reference scores of a cached expert of :func:`expert_agent` (read from its ``scores.json``; the agent
    itself is not loaded), or ``None`` when none is cached there. Never trains anything.

    :param folder: the expert's cache folder (:func:`expert_folder`)
    """
    path = folder / "scores.json"
    if not path.exists():
        return None
    scores = json.loads(path.read_text())
    return ReferenceScores(float(scores["random"]), float(scores["expert"]))


def random_score(env_id: str, ref_episodes: int = 20, seed: int = 0) -> float:
    """
    The uniformly random policy's mean return over ``ref_episodes`` episodes: ``ReferenceScores.random``, drawn
    with the seeds :func:`expert_agent` uses, so that both give the same number.
    """
    return policy_return(gym.make(env_id), None, ref_episodes, seed=seed + 10_000)


def expert_agent(
    env_id: str,
    algo: str = "td3",
    steps: int | None = None,
    seed: int = 0,
    ref_episodes: int = 20,
    cache_dir: str | os.PathLike | None = None,
    progress_bar: bool = False,
    behaviour_kwargs: dict[str, Any] | None = None,
    reason: str | None = None,
) -> tuple[OffPolicyAlgorithm, ReferenceScores]:
    """
    The trained expert of ``env_id`` and the env's reference scores, from the cache or trained now.

    The expert is an SB3 ``algo`` trained for ``steps`` env steps with N(0, 0.1) exploration noise
    (the BCQ paper's behaviour DDPG, 1M steps there). ``ReferenceScores.random`` is the uniform
    policy's mean return and ``.expert`` the expert's deterministic mean return, each over
    ``ref_episodes`` episodes. Both are cached in ``cache_dir`` (see :func:`agents_dir`), written
    atomically, so every dataset of an env shares one expert and one normalization.

    Training one is announced before it starts (algorithm, env, steps, cache folder, ``reason``), and a time
    estimate measured on its first 1% is printed (:class:`TimeEstimate`).

    :param reason: why the expert is needed, for the announcement (e.g. ``"the 'imperfect' rollouts"``)
    """
    steps = default_expert_steps(env_id) if steps is None else steps
    folder = expert_folder(env_id, algo, steps, seed, cache_dir, behaviour_kwargs)
    env = gym.make(env_id)
    cached = cached_expert_scores(folder)
    if cached is not None:
        return BEHAVIOUR_ALGOS[algo].load(folder / "agent.zip", env=env), cached
    label = f"{algo.upper()} expert of {env_id}"
    print(
        f"no cached expert of {env_id}: training {label} for {steps:,} env steps"
        + (f" (needed for {reason})" if reason else "")
        + f", then caching it in {folder}",
        flush=True,
    )
    model = make_behaviour_agent(env, algo, EXPERT_TRAINING_NOISE, seed=seed, **(behaviour_kwargs or {}))
    model.learn(steps, callback=TimeEstimate(label), progress_bar=progress_bar)
    scores = ReferenceScores(
        random=random_score(env_id, ref_episodes, seed),
        expert=policy_return(env, greedy(model), ref_episodes, seed=seed + 10_000),
    )
    staging = _atomic_dir(folder)
    model.save(staging / "agent.zip")
    (staging / "scores.json").write_text(json.dumps(asdict(scores)))
    _publish(staging, folder)
    return model, scores


def medium_agent(
    env_id: str,
    scores: ReferenceScores,
    algo: str = "td3",
    max_steps: int | None = None,
    fraction: float = 1.0 / 3.0,
    eval_freq: int | None = None,
    seed: int = 0,
    ref_episodes: int = 20,
    cache_dir: str | os.PathLike | None = None,
    progress_bar: bool = False,
    behaviour_kwargs: dict[str, Any] | None = None,
    user_scores: bool = False,
) -> tuple[OffPolicyAlgorithm, Any, int]:
    """
    D4RL's "medium" policy: an SB3 ``algo`` trained (N(0, 0.1) noise) until its deterministic
    return reaches ``fraction`` of the expert's normalized return, checked every ``eval_freq`` steps,
    and stopped there (or after ``max_steps``). Returns the agent, its replay buffer up to the stop
    (D4RL's "medium-replay") as ``Transitions``, and the steps it trained; cached like the expert.
    Training one is announced, with a time estimate from its first 1%, as for :func:`expert_agent`.

    :param user_scores: ``scores`` were given by the user rather than measured with the cached expert: the
        cache entry is then keyed by the target return too
    """
    if scores.expert is None:
        raise ValueError("scores: expected the expert's reference score (the medium policy's target), found None")
    from sb3_offline.datasets import load_npz, save_npz
    from sb3_offline.datasets.loaders import transitions_from_replay_buffer

    max_steps = default_expert_steps(env_id) if max_steps is None else max_steps
    eval_freq = eval_freq or max(max_steps // 40, 1)
    target = scores.random + fraction * (scores.expert - scores.random)
    name = f"medium-{fraction:.3f}" + (f"-target{target:.6g}" if user_scores else "")
    folder = agents_dir(cache_dir) / _cache_key(env_id, algo, max_steps, seed, behaviour_kwargs) / name
    env = gym.make(env_id)
    if (folder / "info.json").exists():
        model = BEHAVIOUR_ALGOS[algo].load(folder / "agent.zip", env=env)
        return model, load_npz(folder / "replay.npz"), int(json.loads((folder / "info.json").read_text())["steps"])
    label = f"{algo.upper()} medium policy of {env_id}"
    print(
        f"no cached medium policy of {env_id}: training {label} until its return reaches {target:.1f}, for at most "
        f"{max_steps:,} env steps, then caching it in {folder}",
        flush=True,
    )
    model = make_behaviour_agent(env, algo, EXPERT_TRAINING_NOISE, seed=seed + 1, **(behaviour_kwargs or {}))
    stop = _StopAtReturn(gym.make(env_id), target, eval_freq, ref_episodes, seed=seed + 10_000)
    model.learn(max_steps, callback=[TimeEstimate(label + " (at most)"), stop], progress_bar=progress_bar)
    replay = transitions_from_replay_buffer(model.replay_buffer, env.action_space, source=f"{env_id} medium-replay")
    replay.env_id = env_id
    staging = _atomic_dir(folder)
    model.save(staging / "agent.zip")
    save_npz(replay, staging / "replay.npz")
    (staging / "info.json").write_text(json.dumps({"steps": model.num_timesteps, "return": stop.last_return}))
    _publish(staging, folder)
    return model, replay, model.num_timesteps


__all__ = [
    "BEHAVIOUR_ALGOS",
    "ActingPolicy",
    "ReferenceScores",
    "TimeEstimate",
    "agents_dir",
    "cached_expert_scores",
    "default_expert_steps",
    "expert_agent",
    "expert_folder",
    "format_duration",
    "greedy",
    "make_behaviour_agent",
    "medium_agent",
    "policy_return",
    "random_score",
]
