"""
PLAS and PLAS-P on Pendulum-v1 "imperfect demonstrations", made locally (the BCQ example's data).

    python examples/plas_pendulum.py [--vae-steps 5000] [--policy-steps 5000]

The dataset: a scripted near-expert with N(0, 0.3) noise and a random action with probability 0.3
(see ``examples/bcq_pendulum.py``). PLAS first pre-trains its VAE for ``--vae-steps`` gradient steps,
then trains the latent policy for ``--policy-steps``: ``learn(vae_steps + policy_steps)``. Paper
network sizes; the authors' 500k + 500k steps are cut to fit a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_offline import PLAS
from sb3_offline.datasets import PendulumSwingUp, ensure_pendulum_imperfect_file
from sb3_offline.evaluation import evaluate_callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae-steps", type=int, default=5_000)
    parser.add_argument("--policy-steps", type=int, default=5_000)
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the dataset and checkpoints (reused)")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="plas_pendulum_"))
    dataset = ensure_pendulum_imperfect_file(folder / "pendulum_imperfect.hdf5", args.transitions, args.seed)

    env = Monitor(gym.make("Pendulum-v1"))
    behaviour = PendulumSwingUp.imperfect(seed=1000)
    rows = [("behaviour", *evaluate_callable(gym.make("Pendulum-v1"), behaviour, args.episodes, seed=1000), 0.0)]
    for name, perturbation in (("PLAS", False), ("PLAS-P", True)):
        model = PLAS(
            "MlpPolicy", env, dataset=str(dataset), vae_steps=args.vae_steps, perturbation=perturbation, seed=args.seed
        )
        start = time.perf_counter()
        model.learn(total_timesteps=args.vae_steps + args.policy_steps, progress_bar=True)
        seconds = time.perf_counter() - start
        path = folder / name.lower().replace("-", "_")
        model.save(path)
        model = PLAS.load(path, env=env)
        mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=True)
        rows.append((name, float(mean), float(std), seconds))

    print(f"\nPendulum-v1, imperfect demonstrations, {args.vae_steps} VAE + {args.policy_steps} policy steps")
    print(f"| {'policy':<10} | {'return':>18} | {'train s':>8} |")
    print(f"|{'-' * 12}|{'-' * 20}|{'-' * 10}|")
    for name, mean, std, seconds in rows:
        print(f"| {name:<10} | {mean:8.1f} ± {std:7.1f} | {seconds:8.1f} |")
    print(f"checkpoints and dataset in {folder}")


if __name__ == "__main__":
    main()
