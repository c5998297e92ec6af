"""
The BCQ paper's concurrent experiment: a behaviour DDPG agent acts and learns; off-policy learners
train on exactly the same, growing replay buffer and never act. The truly off-policy agent (batch
DDPG) fails even on the data of an agent with the same architecture learning next to it; BCQ does not.

Reference: Fujimoto, Meger, Precup, "Off-Policy Deep Reinforcement Learning without Exploration",
ICML 2019, section 3 and Figure 1 (the "concurrent" batch setting).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.common.training import configure_logger


@dataclass
class ConcurrentResult:
    """
    Evaluation returns over time of the behaviour agent and of each learner.

    :param timesteps: env steps of the behaviour agent at each evaluation (learners made as many gradient steps)
    :param returns: agent name -> mean evaluation return at each of ``timesteps`` (``"behaviour"`` included)
    :param stds: agent name -> std of those returns
    :param models: agent name -> the trained model (``"behaviour"`` included), to save or evaluate further
    """

    timesteps: list[int] = field(default_factory=list)
    returns: dict[str, list[float]] = field(default_factory=dict)
    stds: dict[str, list[float]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)

    def save_csv(self, path: str | os.PathLike) -> Path:
        """One row per evaluation: ``timesteps, <agent> mean, <agent> std, ...``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(self.returns)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["timesteps"] + [f"{n}_{k}" for n in names for k in ("mean", "std")])
            for i, step in enumerate(self.timesteps):
                writer.writerow([step] + [v for n in names for v in (self.returns[n][i], self.stds[n][i])])
        return path

    def plot(
        self, path: str | os.PathLike, title: str = "Concurrent: same growing buffer, only the behaviour agent acts"
    ) -> Path:
        """Learning curves of every agent (mean ± std of the evaluation return) as a PNG."""
        from sb3_offline.plotting import plot_curves

        curves = {name: (self.timesteps, means, self.stds[name]) for name, means in self.returns.items()}
        return plot_curves(curves, path, title=title, xlabel="behaviour env steps (= learner gradient steps)")


class _ConcurrentCallback(BaseCallback):
    """After the behaviour agent's steps: train every learner as many gradient steps; evaluate all."""

    def __init__(
        self,
        learners: dict[str, OfflineAlgorithm],
        eval_env: gym.Env,
        eval_freq: int,
        n_eval_episodes: int,
        sync_every: int,
        result: ConcurrentResult,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.learners, self.eval_env = learners, eval_env
        self.eval_freq, self.n_eval_episodes, self.sync_every = eval_freq, n_eval_episodes, sync_every
        self.result = result
        self._pending = 0

    def _on_step(self) -> bool:
        model = cast(OffPolicyAlgorithm, self.model)
        if model.num_timesteps > model.learning_starts:
            self._pending += 1
        evaluating = self.n_calls % self.eval_freq == 0
        if self._pending >= self.sync_every or (evaluating and self._pending):
            for learner in self.learners.values():
                learner.learn(self._pending, reset_num_timesteps=False, log_interval=None)
            self._pending = 0
        if evaluating:
            self._evaluate()
        return True

    def _evaluate(self) -> None:
        self.result.timesteps.append(self.model.num_timesteps)
        for name, agent in {"behaviour": self.model, **self.learners}.items():
            mean, std = cast(
                tuple[float, float],
                evaluate_policy(agent, self.eval_env, n_eval_episodes=self.n_eval_episodes, deterministic=True),
            )
            self.result.returns.setdefault(name, []).append(float(mean))
            self.result.stds.setdefault(name, []).append(float(std))
            self.logger.record(f"concurrent/{name}_return", float(mean))
            if self.verbose:
                print(f"step {self.model.num_timesteps:>8}  {name:<12} {mean:9.1f} ± {std:.1f}")


def run_concurrent_experiment(
    env_id: str,
    learners: dict[str, type[OfflineAlgorithm] | tuple[type[OfflineAlgorithm], dict[str, Any]]],
    total_steps: int,
    eval_freq: int = 5_000,
    n_eval_episodes: int = 5,
    noise_std: float = 0.1,
    sync_every: int = 100,
    seed: int = 0,
    behaviour_kwargs: dict[str, Any] | None = None,
    device: str = "auto",
    verbose: int = 0,
    progress_bar: bool = False,
) -> ConcurrentResult:
    """
    Train a behaviour DDPG (our :class:`~sb3_offline.BatchDDPG` used online: the paper's DDPG) on
    ``env_id`` for ``total_steps`` env steps with N(0, ``noise_std``) exploration noise, while each
    learner trains on the very same replay buffer object (no copy) without ever acting: one gradient
    step per behaviour env step, in chunks of ``sync_every`` steps. Every ``eval_freq`` steps all
    agents are evaluated deterministically on a separate env.

    :param env_id: gymnasium id (a bounded Box action space)
    :param learners: name -> algorithm class, or (class, constructor kwargs), e.g.
        ``{"BatchDDPG": BatchDDPG, "BCQ": BCQ}``
    :param total_steps: behaviour env steps (= learner gradient steps after ``learning_starts``)
    :param eval_freq: evaluate every that many env steps
    :param n_eval_episodes: episodes per evaluation
    :param noise_std: behaviour exploration noise (the paper's 0.1), relative to the action half-width
    :param sync_every: env steps between learner updates (the learners then make that many gradient steps)
    :param seed: seeds the behaviour agent (learner ``k`` gets ``seed + k + 1``)
    :param behaviour_kwargs: more arguments of the behaviour agent
    :param device: torch device of all agents
    :param verbose: print each evaluation
    :param progress_bar: show the behaviour agent's progress bar
    """
    from sb3_offline.batch_ddpg import BatchDDPG

    env = gym.make(env_id)
    dim = int(np.prod(env.action_space.shape))  # type: ignore[arg-type]
    behaviour = BatchDDPG(
        "MlpPolicy",
        env,
        buffer_size=total_steps,
        action_noise=NormalActionNoise(np.zeros(dim), noise_std * np.ones(dim)),
        seed=seed,
        device=device,
        **(behaviour_kwargs or {}),
    )
    shared = behaviour.replay_buffer
    built: dict[str, OfflineAlgorithm] = {}
    for k, (name, spec) in enumerate(learners.items()):
        cls, kwargs = spec if isinstance(spec, tuple) else (spec, {})
        learner = cls(
            "MlpPolicy", gym.make(env_id), seed=seed + k + 1, device=device, _init_setup_model=False, **kwargs
        )
        learner._setup_model()  # the networks only: its replay buffer is the behaviour agent's
        learner.replay_buffer = shared
        learner.set_logger(configure_logger(0, None, "run", True))  # writes nothing, makes no folder
        built[name] = learner
    result = ConcurrentResult()
    callback = _ConcurrentCallback(
        built, Monitor(gym.make(env_id)), eval_freq, n_eval_episodes, sync_every, result, verbose=verbose
    )
    behaviour.learn_online(total_steps, callback=callback, progress_bar=progress_bar)
    result.models = {"behaviour": behaviour, **built}
    return result


__all__ = ["ConcurrentResult", "run_concurrent_experiment"]
