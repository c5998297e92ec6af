"""
Gradient updates per second of each sb3-offline algorithm on a synthetic dataset.

    python benchmarks/throughput.py                      # every algorithm, batch 256, CPU (+ CUDA if present)
    python benchmarks/throughput.py --batch-size 0       # each algorithm at its paper batch size
    python benchmarks/throughput.py --algos batch_ddpg --batch-size 100 --steps 2000

The data is Hopper-sized (obs dim 17, action dim 6) random transitions, 1M rows by default, held by
``OfflineReplayBuffer`` on the device; networks are each algorithm's defaults. The first
``--warmup`` updates are not timed. PLAS is measured per phase: ``plas/vae`` (VAE pre-training)
and ``plas`` (the policy phase). Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np
import torch as th

from sb3_offline.algorithms import ALGOS
from sb3_offline.datasets import Transitions


class HopperShapedEnv(gym.Env):
    """Only the spaces of Hopper (obs 17, action 6 in [-1, 1]); the benchmark never steps it."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (17,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(17, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        raise RuntimeError("the throughput benchmark never steps the env")


def synthetic_dataset(n: int, seed: int = 0) -> Transitions:
    rng = np.random.default_rng(seed)
    terminations = rng.random(n) < 1e-3
    truncations = np.zeros(n, dtype=bool)
    truncations[999::1000] = True
    truncations &= ~terminations
    return Transitions(
        observations=rng.standard_normal((n, 17), dtype=np.float32),
        actions=rng.uniform(-1, 1, (n, 6)).astype(np.float32),
        rewards=rng.standard_normal(n, dtype=np.float32),
        next_observations=rng.standard_normal((n, 17), dtype=np.float32),
        terminations=terminations,
        truncations=truncations,
        source="synthetic",
    )


def measure(
    algo: str,
    device: str,
    data: Transitions,
    batch_size: int | None,
    steps: int,
    warmup: int,
    policy_kwargs: dict | None = None,
) -> tuple[float, int]:
    """Updates per second after ``warmup`` untimed updates, and the batch size used."""
    kwargs: dict = {} if batch_size is None else {"batch_size": batch_size}
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    if algo.startswith("plas"):
        # "plas/vae": the VAE pre-training phase; "plas": the policy phase (VAE already pre-trained)
        kwargs["vae_steps"] = 10**9 if algo == "plas/vae" else 0
        algo = "plas"
    model = ALGOS[algo]("MlpPolicy", HopperShapedEnv(), dataset=data, device=device, seed=0, **kwargs)
    model.learn(warmup, log_interval=None)
    if device.startswith("cuda"):
        th.cuda.synchronize()
    start = time.perf_counter()
    model.learn(steps, log_interval=None, reset_num_timesteps=False)
    if device.startswith("cuda"):
        th.cuda.synchronize()
    return steps / (time.perf_counter() - start), model.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = sorted([*ALGOS, "plas/vae"])
    parser.add_argument("--algos", nargs="+", default=choices, choices=choices)
    parser.add_argument("--devices", nargs="+", default=["cpu", *(["cuda"] if th.cuda.is_available() else [])])
    parser.add_argument("--batch-size", type=int, default=256, help="0: each algorithm's paper default")
    parser.add_argument("--dataset-size", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--policy-kwargs",
        default=None,
        help='a Python dict for every algorithm, e.g. "dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128]))"',
    )
    args = parser.parse_args()
    policy_kwargs = eval(args.policy_kwargs) if args.policy_kwargs else None  # as rl-zoo3 does with its YAML

    data = synthetic_dataset(args.dataset_size)
    batch_size = args.batch_size or None
    print(
        f"torch {th.__version__}, {platform.processor() or platform.machine()}, {th.get_num_threads()} CPU threads, "
        f"dataset {args.dataset_size} x (obs 17, action 6), {args.steps} timed updates, "
        f"networks: {policy_kwargs or 'defaults'}"
    )
    header = f"| {'algorithm':<12} | {'device':<6} | {'batch':>5} | {'updates/s':>10} |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for algo in args.algos:
        for device in args.devices:
            rate, shown = measure(algo, device, data, batch_size, args.steps, args.warmup, policy_kwargs)
            print(f"| {algo:<12} | {device:<6} | {shown:>5} | {rate:>10.1f} |")


if __name__ == "__main__":
    main()
