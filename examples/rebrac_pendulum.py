"""
ReBRAC on Pendulum-v1: offline training on imperfect demonstrations, save, then online fine-tuning.

    python examples/rebrac_pendulum.py [--offline-steps 3000] [--online-steps 1000] [--width 64]

The dataset is the BCQ example's (a scripted near-expert with N(0, 0.3) noise and a random action with probability
0.3). ReBRAC trains on it offline at the authors' defaults (batch 1024, lr 1e-3, LayerNorm in the critics, both
penalties 1) with 3 hidden layers of ``--width`` units (the authors': 256; 64 fits a few minutes on 2 CPU cores), is
saved as an SB3 checkpoint, loaded again with the dataset and fine-tuned online (the authors' offline-to-online
setting: the same update, each env step appended after the dataset, exploration noise N(0, 0.1)). Prints the return
of the behaviour policy and after each phase.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise

from sb3_offline import ReBRAC
from sb3_offline.datasets import PendulumSwingUp, ensure_pendulum_imperfect_file
from sb3_offline.evaluation import evaluate_callable


def main(argv: list[str] | None = None) -> list[tuple[str, float, float]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--offline-steps", type=int, default=3_000, help="gradient steps on the dataset")
    parser.add_argument("--online-steps", type=int, default=1_000, help="env steps of fine-tuning")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=64, help="units of each of the 3 hidden layers")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the dataset and checkpoints (reused)")
    args = parser.parse_args(argv)

    folder = Path(args.output or tempfile.mkdtemp(prefix="rebrac_pendulum_"))
    dataset = ensure_pendulum_imperfect_file(folder / "pendulum_imperfect.hdf5", args.transitions, args.seed)
    env = Monitor(gym.make("Pendulum-v1"))
    behaviour = PendulumSwingUp.imperfect(seed=1000)
    rows = [("behaviour", *evaluate_callable(gym.make("Pendulum-v1"), behaviour, args.episodes, seed=1000))]

    model = ReBRAC(
        "MlpPolicy", env, dataset=str(dataset), device="auto", seed=args.seed, buffer_size=args.online_steps,
        policy_kwargs=dict(net_arch=[args.width] * 3),
    )  # fmt: skip
    start = time.perf_counter()
    model.learn(total_timesteps=args.offline_steps)
    print(f"offline: {args.offline_steps / (time.perf_counter() - start):.1f} updates/s")
    model.save(folder / "rebrac_offline")
    rows.append(("offline", *map(float, evaluate_policy(model, env, n_eval_episodes=args.episodes))))

    model = ReBRAC.load(folder / "rebrac_offline", env=env)
    model.action_noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
    model.learn_online(args.online_steps)
    rows.append(("fine-tuned", *map(float, evaluate_policy(model, env, n_eval_episodes=args.episodes))))

    print(f"\nPendulum-v1, imperfect demonstrations ({args.transitions} transitions)")
    print(f"| {'policy':<10} | {'return':>18} |")
    print(f"|{'-' * 12}|{'-' * 20}|")
    for name, mean, std in rows:
        print(f"| {name:<10} | {mean:8.1f} ± {std:7.1f} |")
    print(f"checkpoints and dataset in {folder}")
    return rows


if __name__ == "__main__":
    main()
