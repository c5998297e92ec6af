"""
DiscreteCQL (d3rlpy's double-DQN base and the CQL authors' QR-DQN base) and DiscreteIQL on CartPole-v1 logs.

    python examples/discrete_cql_cartpole.py [--steps 2000] [--transitions 20000]

The log is that of a system with two actions and a simple rule: a scripted controller (push the cart towards the
side the pole falls to) that takes a random action 30% of the time, recorded as a D4RL-style HDF5 file. Each
algorithm trains on it at its defaults for the same number of gradient steps, is saved as an SB3 checkpoint,
reloaded and evaluated beside the controller that made the data and a random policy (a few minutes on 2 CPU cores;
the QR-DQN base's 200 quantiles cost most of it).
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

from sb3_offline import DiscreteCQL, DiscreteIQL
from sb3_offline.datasets import record_transitions, save_hdf5
from sb3_offline.evaluation import evaluate_callable


class Controller:
    """Push towards the side the pole falls to (``angle + 0.5 * angular velocity``); random with ``epsilon``."""

    def __init__(self, epsilon: float, seed: int) -> None:
        self.epsilon, self.rng = epsilon, np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(2))
        return int(obs[2] + 0.5 * obs[3] > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2_000, help="gradient steps per algorithm")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the dataset and checkpoints")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="discrete_cql_cartpole_"))
    data = record_transitions("CartPole-v1", args.transitions, policy=Controller(0.3, args.seed), seed=args.seed)
    dataset = save_hdf5(data, folder / "cartpole_controller.hdf5")

    env = Monitor(gym.make("CartPole-v1"))
    rows = [
        ("controller (the data)", *evaluate_callable(gym.make("CartPole-v1"), Controller(0.3, 1000), args.episodes)),
        ("random", *evaluate_callable(gym.make("CartPole-v1"), None, args.episodes)),
    ]
    runs = [
        ("DiscreteCQL (dqn)", DiscreteCQL, {}),
        ("DiscreteCQL (qrdqn)", DiscreteCQL, {"base": "qrdqn"}),
        ("DiscreteIQL", DiscreteIQL, {}),
    ]
    for name, algo, kwargs in runs:
        model = algo("MlpPolicy", env, dataset=str(dataset), seed=args.seed, **kwargs)
        start = time.perf_counter()
        model.learn(total_timesteps=args.steps)
        seconds = time.perf_counter() - start
        path = folder / name.replace(" ", "_").replace("(", "").replace(")", "").lower()
        model.save(path)
        model = algo.load(path, env=env)
        mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=True)
        rows.append((f"{name}, {args.steps / seconds:.0f} updates/s", float(mean), float(std)))

    print(f"\nCartPole-v1, the controller's log ({args.transitions} transitions), {args.steps} gradient steps")
    print(f"| {'policy':<36} | {'return':>16} |")
    print(f"|{'-' * 38}|{'-' * 18}|")
    for name, mean, std in rows:
        print(f"| {name:<36} | {mean:7.1f} ± {std:6.1f} |")
    print(f"checkpoints and dataset in {folder}")


if __name__ == "__main__":
    main()
