"""
One trial of a grid: train one algorithm on one dataset with one seed, evaluating it every ``eval.every`` gradient
steps from the same seeded reset as ``sb3-offline train`` (:class:`~sb3_offline.callbacks.SeededEvalCallback`;
the final policy as :func:`sb3_offline.evaluation.evaluate`), and write ``DIR/trials/<trial>/``:

- ``model.zip`` (ours: the SB3 checkpoint; d3rlpy's: ``model.d3``), ``curve.csv`` (step, mean, std of the
  evaluation returns), then ``result.json`` last: a trial is finished when its ``result.json`` is there.

These files are written to a temporary name beside them, then renamed (``os.replace``); ours also leave SB3's
``evaluations.npz`` (``EvalCallback``'s own file, rewritten at each evaluation). A trial without a ``result.json``
(interrupted) is run again from nothing on ``--resume``; a finished one never.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from sb3_offline.benchmark.datasets import ensure_dataset
from sb3_offline.benchmark.grid import Grid, Trial
from sb3_offline.callbacks import SeededEvalCallback

RESULT = "result.json"
CURVE = "curve.csv"


class TimedEvalCallback(SeededEvalCallback):
    """:class:`SeededEvalCallback` that adds the seconds its evaluations take to ``seconds``."""

    def __init__(self, eval_env: Any, **kwargs: Any) -> None:
        super().__init__(eval_env, **kwargs)
        self.seconds = 0.0

    def _on_step(self) -> bool:
        start = time.perf_counter()
        try:
            return super()._on_step()
        finally:
            self.seconds += time.perf_counter() - start


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """``write(temporary)`` on a fresh name beside ``path``, then ``os.replace`` onto ``path``."""
    temporary = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    return write_atomically(path, lambda temporary: temporary.write_text(text))


@cache
def git_commit() -> str | None:
    """The commit of the sb3_offline source tree (a clone's ``HEAD``, ``+`` when it has changes), else ``None``."""
    folder = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "sb3_offline"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+" if dirty else "") if commit else None


def read_result(folder: Path) -> dict[str, Any] | None:
    """The ``result.json`` of a finished trial, else ``None``."""
    path = folder / RESULT
    return json.loads(path.read_text()) if path.is_file() else None


def _curve_stats(curve: list[tuple[int, list[float]]]) -> list[list[float]]:
    import numpy as np

    return [[step, float(np.mean(returns)), float(np.std(returns))] for step, returns in curve]


def _train_ours(trial: Trial, grid: Grid, folder: Path) -> tuple[list[tuple[int, list[float]]], list[float], float]:
    """Our algorithm trained and saved; returns its evaluations, the final policy's returns and the update seconds."""
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    from sb3_offline.algorithms import ALGOS
    from sb3_offline.cli import hyperparams
    from sb3_offline.cli.train import save_atomically
    from sb3_offline.datasets import recover_env
    from sb3_offline.evaluation import evaluate

    settings = hyperparams.evaluate_settings(trial.kwargs)
    steps = int(settings.pop("n_timesteps", grid.steps))
    env = gym.make(grid.env) if grid.env else recover_env(trial.dataset)
    env_id = env.spec.id if env.spec is not None else str(grid.env)
    policy = settings.pop("policy", None) or (
        "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy"
    )
    model = ALGOS[trial.algorithm](policy, env, dataset=trial.dataset, device=grid.device, seed=trial.seed, **settings)
    callback = None
    if grid.eval_every > 0 and grid.eval_episodes > 0:
        callback = TimedEvalCallback(
            Monitor(gym.make(env_id)),
            seed=grid.eval_seed,
            n_eval_episodes=grid.eval_episodes,
            eval_freq=grid.eval_every,
            log_path=str(folder),
            deterministic=True,
            verbose=0,  # SB3's evaluations.npz
        )
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=callback, log_interval=steps)
    seconds = time.perf_counter() - start - (callback.seconds if callback is not None else 0.0)
    save_atomically(model, folder / "model.zip")
    curve = (
        []
        if callback is None
        else [
            (int(s), list(r)) for s, r in zip(callback.evaluations_timesteps, callback.evaluations_results, strict=True)
        ]
    )
    final = curve[-1][1] if curve and curve[-1][0] == steps else None
    if final is None:
        final = evaluate(model, gym.make(env_id), n_episodes=max(grid.eval_episodes, 1), seed=grid.eval_seed).returns
        curve.append((steps, final))
    return curve, [float(r) for r in final], seconds


def _train_d3rlpy(trial: Trial, grid: Grid, folder: Path) -> tuple[list[tuple[int, list[float]]], list[float], float]:
    """d3rlpy's counterpart (``benchmarks.d3rlpy_runs``, our defaults and the grid's batch size and networks)."""
    import gymnasium as gym

    from benchmarks.d3rlpy_compat import our_defaults
    from benchmarks.d3rlpy_runs import train_d3rlpy
    from sb3_offline.datasets import load_transitions, recover_env
    from sb3_offline.evaluation import evaluate

    env = gym.make(grid.env) if grid.env else recover_env(trial.dataset)
    transitions = load_transitions(trial.dataset)
    curve: list[tuple[int, list[float]]] = []
    evaluation_seconds = [0.0]

    def evaluate_policy(step: int, policy: Any) -> None:
        start = time.perf_counter()
        curve.append((step, evaluate(policy, env, n_episodes=grid.eval_episodes, seed=grid.eval_seed).returns))
        evaluation_seconds[0] += time.perf_counter() - start

    net_arch = (
        (trial.kwargs.get("policy_kwargs") or {}).get("net_arch")
        if isinstance(trial.kwargs.get("policy_kwargs"), dict)
        else None
    )
    steps = trial.steps(grid)
    # PLAS: d3rlpy's warm-up is our VAE phase, counted in the trial's steps as ours counts it
    vae_steps = (
        int(trial.kwargs.get("vae_steps", our_defaults("plas")["vae_steps"])) if trial.algorithm == "plas" else 0
    )
    start = time.perf_counter()
    policy = train_d3rlpy(
        trial.algorithm,
        transitions,
        steps - vae_steps,
        trial.seed,
        grid.device,
        action_space=env.action_space,
        net_arch=net_arch,
        batch_size=trial.kwargs.get("batch_size"),
        callback=evaluate_policy,
        callback_freq=grid.eval_every if grid.eval_episodes > 0 else 0,
        plas_vae_steps=vae_steps,
    )
    seconds = time.perf_counter() - start - evaluation_seconds[0]
    write_atomically(folder / "model.d3", lambda temporary: policy.algo.save(str(temporary)))
    if not curve or curve[-1][0] != steps:
        curve.append((steps, evaluate(policy, env, n_episodes=max(grid.eval_episodes, 1), seed=grid.eval_seed).returns))
    return curve, [float(r) for r in curve[-1][1]], seconds


def run_trial(trial: Trial, grid: Grid, folder: str | Path, torch_threads: int | None = 1) -> dict[str, Any]:
    """
    Run ``trial`` into ``folder`` (or return its ``result.json`` when it finished before) and return its result:
    the grid's names, ``final_return``, ``best_return`` (the best evaluation's mean), their normalized scores
    (D4RL's, from the dataset's reference scores; ``None`` without them), ``wall_s``, ``updates_per_s`` (gradient
    steps per second of training, evaluations left out), the curve, the package version and git commit.

    :param torch_threads: ``torch.set_num_threads`` for the trial (``None``: torch's own choice)
    """
    import numpy as np
    import torch

    from sb3_offline import __version__
    from sb3_offline.algorithms import ALGOS  # noqa: F401  (imported before the clock starts: wall_s is the trial's)
    from sb3_offline.evaluation import normalized_score_or_none, reference_scores

    folder = Path(folder)
    if grid.eval_add_seed:  # evaluated from eval.seed + the trial's seed
        grid = dataclasses.replace(grid, eval_seed=grid.eval_seed + trial.seed, eval_add_seed=False)
    finished = read_result(folder)
    if finished is not None:
        return finished
    if folder.exists():  # an interrupted attempt: start again from nothing
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    if trial.dataset in grid.collect:  # made on demand, once (the first trial that needs it)
        ensure_dataset(trial.dataset, grid.collect[trial.dataset])
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    start = time.perf_counter()
    train = _train_ours if trial.kind == "sb3" else _train_d3rlpy
    curve, final, update_seconds = train(trial, grid, folder)
    stats = _curve_stats(curve)
    scores = reference_scores(trial.dataset)
    final_return, best_return = float(np.mean(final)), max(mean for _, mean, _ in stats)
    result = {
        "trial": trial.name,
        "kind": trial.kind,
        "algorithm": trial.label,
        "dataset": trial.dataset,
        "seed": trial.seed,
        "steps": trial.steps(grid),
        "final_return": final_return,
        "final_std": float(np.std(final)),
        "best_return": best_return,
        "normalized_score": _plain(normalized_score_or_none(scores, final_return)),
        "best_normalized_score": _plain(normalized_score_or_none(scores, best_return)),
        "wall_s": time.perf_counter() - start,
        "updates_per_s": trial.steps(grid) / max(update_seconds, 1e-9),
        "eval_episodes": grid.eval_episodes,
        "eval_seed": grid.eval_seed,
        "version": __version__,
        "commit": git_commit(),
        "kwargs": trial.kwargs,
        "curve": stats,
    }
    write_text_atomically(folder / CURVE, "step,mean,std\n" + "".join(f"{int(s)},{m!r},{d!r}\n" for s, m, d in stats))
    write_text_atomically(folder / RESULT, json.dumps(result, indent=1, default=repr))
    return result


def _plain(value: Any) -> float | None:
    return None if value is None else float(value)
