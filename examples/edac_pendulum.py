"""
EDAC vs SAC-N (the same ensemble of N critics, without the diversity term) on Pendulum-v1 imperfect demonstrations.

    python examples/edac_pendulum.py [--steps 3000] [--n-critics 10] [--net-arch 64 64]

The data is the dataset shipped with sb3-offline (``pendulum/imperfect-v0``: the BCQ paper's imperfect-demonstrations
protocol). Both algorithms run at their defaults (N = 10 critics, EDAC's eta = 1, learning rates 3e-4, batch 256)
but for the networks, 64-64 here instead of the authors' 3 x 256 (an ensemble of ten 3 x 256 critics runs a few
updates per second on one CPU core), so that each trains in a minute or two on CPU; each is saved, reloaded and
evaluated.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym

from sb3_offline import EDAC, SACN
from sb3_offline.evaluation import evaluate


def main(argv: list[str] | None = None) -> list[tuple[str, float, float, float]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3_000, help="gradient steps per algorithm")
    parser.add_argument("--n-critics", type=int, default=10, help="the ensemble's size N")
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64], help="hidden sizes (authors: 256 256 256)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the checkpoints")
    args = parser.parse_args(argv)

    folder = Path(args.output or tempfile.mkdtemp(prefix="edac_pendulum_"))
    env = gym.make("Pendulum-v1")
    rows = []
    for algo in (EDAC, SACN):
        model = algo(
            "MlpPolicy", env, dataset="pendulum/imperfect-v0", n_critics=args.n_critics, seed=args.seed,
            policy_kwargs=dict(net_arch=list(args.net_arch)),
        )  # fmt: skip
        start = time.perf_counter()
        model.learn(total_timesteps=args.steps)
        rate = args.steps / (time.perf_counter() - start)
        path = folder / algo.__name__.lower()
        model.save(path)
        model = algo.load(path, env=env)
        result = evaluate(model, env, n_episodes=args.episodes, seed=100)
        rows.append((algo.__name__, result.mean_return, result.std_return, rate))

    print(f"\nPendulum-v1, pendulum/imperfect-v0, {args.steps} gradient steps, N = {args.n_critics}, {args.net_arch}")
    print(f"| {'algorithm':<9} | {'return':>18} | {'updates/s':>9} |")
    print(f"|{'-' * 11}|{'-' * 20}|{'-' * 11}|")
    for name, mean, std, rate in rows:
        print(f"| {name:<9} | {mean:8.1f} ± {std:7.1f} | {rate:9.1f} |")
    print(f"checkpoints in {folder}")
    return rows


if __name__ == "__main__":
    main()
