"""
BCQ vs BatchDDPG vs the behaviour policy on Pendulum-v1 "imperfect demonstrations", made locally.

    python examples/bcq_pendulum.py [--steps 5000] [--transitions 20000]

The dataset follows the BCQ paper's imperfect-demonstrations protocol with a scripted near-expert
(swing-up + balance) as the expert: Gaussian noise N(0, 0.3) and a random action with probability
0.3. Both algorithms train on it for the same number of gradient steps at the paper's network sizes
(a few minutes on 2 CPU cores), are saved as SB3 checkpoints, reloaded and evaluated.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_offline import BCQ, BatchDDPG
from sb3_offline.datasets import PendulumSwingUp, ensure_pendulum_imperfect_file
from sb3_offline.evaluation import evaluate_callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5_000, help="gradient steps per algorithm")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the dataset and checkpoints")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="bcq_pendulum_"))
    dataset = ensure_pendulum_imperfect_file(folder / "pendulum_imperfect.hdf5", args.transitions, args.seed)

    env = Monitor(gym.make("Pendulum-v1"))
    behaviour = PendulumSwingUp.imperfect(seed=1000)
    rows = [
        ("behaviour", *evaluate_callable(gym.make("Pendulum-v1"), behaviour, args.episodes, seed=1000), float("nan"))
    ]
    for algo in (BCQ, BatchDDPG):
        model = algo("MlpPolicy", env, dataset=str(dataset), device="auto", seed=args.seed)
        start = time.perf_counter()
        model.learn(total_timesteps=args.steps, progress_bar=True)
        rate = args.steps / (time.perf_counter() - start)
        path = folder / algo.__name__.lower()
        model.save(path)
        model = algo.load(path, env=env)
        mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=True)
        rows.append((algo.__name__, float(mean), float(std), rate))

    print(f"\nPendulum-v1, imperfect demonstrations ({args.transitions} transitions), {args.steps} gradient steps")
    print(f"| {'policy':<10} | {'return':>18} | {'updates/s':>9} |")
    print(f"|{'-' * 12}|{'-' * 20}|{'-' * 11}|")
    for name, mean, std, rate in rows:
        print(f"| {name:<10} | {mean:8.1f} ± {std:7.1f} | {rate:9.1f} |")
    print(f"checkpoints and dataset in {folder}")


if __name__ == "__main__":
    main()
