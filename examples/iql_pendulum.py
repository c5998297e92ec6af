"""
IQL on Pendulum-v1 from the dataset shipped with the package, then fine-tuned online.

    python examples/iql_pendulum.py [--steps 5000] [--online-steps 2000] [--episodes 10]

``pendulum/imperfect-v0``: 50k transitions of a TD3 expert with N(0, 0.3) noise and a random action with
probability 0.3. IQL (Kostrikov, Nair, Levine 2022) never evaluates its critics on an action outside the
data: ``V`` by expectile regression, the actor by advantage-weighted regression. It trains ``--steps``
gradient steps offline at its default sizes, is saved and loaded with the dataset, then ``learn_online``
steps the env ``--online-steps`` times (each new transition appended after the dataset, one update per
step). About two minutes on one CPU core; the return is printed after each phase beside the data's own.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_offline import IQL
from sb3_offline.common.episodes import episode_returns
from sb3_offline.datasets import load_transitions
from sb3_offline.evaluation import evaluate, normalized_score

DATASET = "pendulum/imperfect-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5_000, help="offline gradient steps")
    parser.add_argument("--online-steps", type=int, default=2_000, help="env steps of online fine-tuning (0: none)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the checkpoint")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="iql_pendulum_"))
    folder.mkdir(parents=True, exist_ok=True)
    env = gym.make("Pendulum-v1")
    data = load_transitions(DATASET)
    behaviour = float(np.mean(episode_returns(data.rewards, data.terminations | data.truncations, True)))
    rows = [("data", behaviour, float(normalized_score(DATASET, behaviour)), float("nan"))]

    model = IQL("MlpPolicy", env, dataset=DATASET, seed=args.seed, device="auto")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=True)
    seconds = time.perf_counter() - start
    model.save(folder / "iql")
    model = IQL.load(folder / "iql", env=env, dataset=DATASET)  # the dataset again: fine-tuning replays it
    result = evaluate(model, env, n_episodes=args.episodes)
    rows.append(("offline", result.mean_return, float(result.normalized_score or 0.0), seconds))
    if args.online_steps:
        start = time.perf_counter()
        model.learn_online(total_timesteps=args.online_steps, progress_bar=True)
        seconds = time.perf_counter() - start
        result = evaluate(model, env, n_episodes=args.episodes)
        rows.append(("online", result.mean_return, float(result.normalized_score or 0.0), seconds))

    print(f"\nIQL, Pendulum-v1, {DATASET}: {args.steps} gradient steps, then {args.online_steps} env steps")
    print(f"| {'policy':<8} | {'return':>8} | {'normalized':>10} | {'train s':>7} |")
    print(f"|{'-' * 10}|{'-' * 10}|{'-' * 12}|{'-' * 9}|")
    for name, mean, score, seconds in rows:
        print(f"| {name:<8} | {mean:8.1f} | {score:10.1f} | {'-' if np.isnan(seconds) else f'{seconds:.1f}':>7} |")
    print(f"checkpoint in {folder}")


if __name__ == "__main__":
    main()
