"""
TD3+BC against behaviour cloning on Pendulum-v1, from the dataset shipped with the package.

    python examples/td3bc_pendulum.py [--steps 5000] [--episodes 10]

``pendulum/imperfect-v0``: 50k transitions of a TD3 expert with N(0, 0.3) noise and a random action with
probability 0.3 (the BCQ paper's imperfect-demonstrations protocol). TD3+BC (Fujimoto & Gu 2021) is TD3
with a behaviour-cloning term in the actor's loss; BC is that term alone. Both train ``--steps`` gradient
steps at their default sizes (about a minute on one CPU core), are saved, loaded and evaluated; the data's
own return is printed beside them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_offline import BC, TD3BC
from sb3_offline.common.episodes import episode_returns
from sb3_offline.datasets import load_transitions
from sb3_offline.evaluation import evaluate, normalized_score

DATASET = "pendulum/imperfect-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5_000, help="gradient steps per algorithm")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the checkpoints")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="td3bc_pendulum_"))
    folder.mkdir(parents=True, exist_ok=True)
    env = gym.make("Pendulum-v1")
    data = load_transitions(DATASET)
    behaviour = float(np.mean(episode_returns(data.rewards, data.terminations | data.truncations, True)))
    rows = [("data", behaviour, float(normalized_score(DATASET, behaviour)), float("nan"))]
    for algo in (TD3BC, BC):
        model = algo("MlpPolicy", env, dataset=DATASET, seed=args.seed, device="auto")
        start = time.perf_counter()
        model.learn(total_timesteps=args.steps, progress_bar=True)
        seconds = time.perf_counter() - start
        model.save(folder / algo.__name__.lower())
        model = algo.load(folder / algo.__name__.lower(), env=env)
        result = evaluate(model, env, n_episodes=args.episodes)
        rows.append((algo.__name__, result.mean_return, float(result.normalized_score or 0.0), seconds))

    print(f"\nPendulum-v1, {DATASET}, {args.steps} gradient steps, {args.episodes} evaluation episodes")
    print(f"| {'policy':<8} | {'return':>8} | {'normalized':>10} | {'train s':>7} |")
    print(f"|{'-' * 10}|{'-' * 10}|{'-' * 12}|{'-' * 9}|")
    for name, mean, score, seconds in rows:
        print(f"| {name:<8} | {mean:8.1f} | {score:10.1f} | {'-' if np.isnan(seconds) else f'{seconds:.1f}':>7} |")
    print(f"checkpoints in {folder}")


if __name__ == "__main__":
    main()
