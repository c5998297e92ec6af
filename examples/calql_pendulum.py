"""
Cal-QL on Pendulum-v1: offline pre-training on the dataset shipped with the package, then online fine-tuning.

    python examples/calql_pendulum.py [--steps 400] [--online-steps 200] [--episodes 10]

``pendulum/imperfect-v0``: 50k transitions of a TD3 expert with N(0, 0.3) noise and a random action with
probability 0.3. Cal-QL (Nakamoto et al. 2023) is CQL whose regulariser never pushes the Q-values of the
policy's actions below the episode's Monte-Carlo return-to-go, so that fine-tuning starts from calibrated
values. It pre-trains ``--steps`` gradient steps offline at its default sizes, is saved and loaded with the
dataset, then ``learn_online`` runs ``--online-steps`` env steps: half of each batch from the dataset, half
from the finished online episodes, as many updates after each episode as it had steps (one Pendulum episode
is 200 steps). Each update is CQL's (``3 * n_actions`` sampled actions per state through both critics):
the defaults take about three minutes on one CPU core. The return is printed after each phase beside the
data's own.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_offline import CalQL
from sb3_offline.common.episodes import episode_returns
from sb3_offline.datasets import load_transitions
from sb3_offline.evaluation import evaluate, normalized_score

DATASET = "pendulum/imperfect-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="offline gradient steps")
    parser.add_argument("--online-steps", type=int, default=200, help="env steps of online fine-tuning (0: none)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the checkpoint")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="calql_pendulum_"))
    folder.mkdir(parents=True, exist_ok=True)
    env = gym.make("Pendulum-v1")
    data = load_transitions(DATASET)
    behaviour = float(np.mean(episode_returns(data.rewards, data.terminations | data.truncations, True)))
    rows = [("data", behaviour, float(normalized_score(DATASET, behaviour)), float("nan"))]

    model = CalQL("MlpPolicy", env, dataset=DATASET, seed=args.seed, device="auto")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=True)
    seconds = time.perf_counter() - start
    model.save(folder / "calql")
    model = CalQL.load(folder / "calql", env=env, dataset=DATASET)  # the dataset again: fine-tuning mixes it in
    result = evaluate(model, env, n_episodes=args.episodes)
    rows.append(("offline", result.mean_return, float(result.normalized_score or 0.0), seconds))
    if args.online_steps:
        start = time.perf_counter()
        model.learn_online(total_timesteps=args.online_steps, progress_bar=True)
        seconds = time.perf_counter() - start
        result = evaluate(model, env, n_episodes=args.episodes)
        rows.append(("online", result.mean_return, float(result.normalized_score or 0.0), seconds))

    print(f"\nCal-QL, Pendulum-v1, {DATASET}: {args.steps} gradient steps, then {args.online_steps} env steps")
    print(f"| {'policy':<8} | {'return':>8} | {'normalized':>10} | {'train s':>7} |")
    print(f"|{'-' * 10}|{'-' * 10}|{'-' * 12}|{'-' * 9}|")
    for name, mean, score, seconds in rows:
        print(f"| {name:<8} | {mean:8.1f} | {score:10.1f} | {'-' if np.isnan(seconds) else f'{seconds:.1f}':>7} |")
    print(f"checkpoint in {folder}")


if __name__ == "__main__":
    main()
