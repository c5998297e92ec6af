"""
The BCQ paper's concurrent experiment on Pendulum-v1: a behaviour DDPG acts and learns; BatchDDPG
and BCQ learn from exactly the same growing replay buffer and never act.

    python examples/concurrent_pendulum.py [--steps 30000] [--eval-freq 2000] [--output runs/concurrent]

Writes ``concurrent.csv`` and ``concurrent.png`` (returns of all three agents over time) and prints
the last evaluation. Expected (the paper's Figure 1): BatchDDPG stays far below the behaviour agent
although it sees the very same data; BCQ tracks it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sb3_offline import BCQ, BatchDDPG
from sb3_offline.collect import run_concurrent_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=30_000, help="behaviour env steps = learner gradient steps")
    parser.add_argument("--eval-freq", type=int, default=2_000)
    parser.add_argument("--episodes", type=int, default=5, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default="runs/concurrent")
    args = parser.parse_args()

    start = time.perf_counter()
    result = run_concurrent_experiment(
        args.env,
        {"BatchDDPG": BatchDDPG, "BCQ": BCQ},
        total_steps=args.steps,
        eval_freq=args.eval_freq,
        n_eval_episodes=args.episodes,
        seed=args.seed,
        device=args.device,
        verbose=1,
    )
    output = Path(args.output)
    csv_path = result.save_csv(output / "concurrent.csv")
    png_path = result.plot(output / "concurrent.png", title=f"Concurrent on {args.env}: same data, one actor")
    print(f"\n{args.env}, {args.steps} steps, {time.perf_counter() - start:.0f} s; wrote {csv_path} and {png_path}")
    print(f"| {'agent':<10} | {'last return':>18} | {'best return':>11} |")
    print(f"|{'-' * 12}|{'-' * 20}|{'-' * 13}|")
    for name, means in result.returns.items():
        print(f"| {name:<10} | {means[-1]:8.1f} ± {result.stds[name][-1]:7.1f} | {max(means):11.1f} |")


if __name__ == "__main__":
    main()
