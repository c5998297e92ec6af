"""
Updates per second of our SAC-N and EDAC against CORL's PyTorch ports (``tinkoff-ai/CORL``,
``algorithms/offline/sac_n.py`` and ``edac.py``, loaded from a local checkout, never copied), at several ensemble
sizes N, in the same process, on the same device and synthetic Hopper-shaped data (``benchmarks.throughput``'s).

    python -m benchmarks.ensemble_throughput --reference CORL_CHECKOUT --n-critics 10 50 --steps 300

Both sides: batch 256, 3 x 256 networks, the update as shipped (ours: the EDAC authors' step; CORL's: its order, with
its per-update logging, ``.item()`` reads and the random actions it draws for ``q_random_std``), each side's own
sampling (ours on the device, CORL's ``ReplayBuffer.sample``: numpy indices, tensor indexing). The first ``--warmup``
updates are not timed. Prints a markdown table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import platform
import sys
import time

import numpy as np
import torch as th

from benchmarks.parity.iql import load_reference
from benchmarks.throughput import HopperShapedEnv, measure, synthetic_dataset
from sb3_offline.datasets import Transitions

ALGOS = {"sac_n": "SACN", "edac": "EDAC"}


def corl_updates_per_second(
    reference: pathlib.Path, algo: str, data: Transitions, n_critics: int, batch_size: int, steps: int, warmup: int
) -> float:
    """CORL's trainer (``SACN`` or ``EDAC``, its defaults: eta 1, lr 3e-4, 256 hidden) fed by its own buffer."""
    corl = load_reference(reference, f"algorithms/offline/{algo}.py", f"corl_{algo}_speed")
    device = "cpu"
    actor = corl.Actor(17, 6, 256, max_action=1.0)
    critic = corl.VectorizedCritic(17, 6, 256, n_critics)
    trainer = getattr(corl, ALGOS[algo])(
        actor=actor,
        actor_optimizer=th.optim.Adam(actor.parameters(), lr=3e-4),
        critic=critic,
        critic_optimizer=th.optim.Adam(critic.parameters(), lr=3e-4),
        device=device,
    )
    buffer = corl.ReplayBuffer(17, 6, len(data), device=device)
    with contextlib.redirect_stdout(sys.stderr):  # its "Dataset size: N" would land inside the table
        buffer.load_d4rl_dataset(
            {
                "observations": data.observations,
                "actions": data.actions,
                "rewards": data.rewards,
                "next_observations": data.next_observations,
                "terminals": data.terminations.astype(np.float32),
            }
        )
    for _ in range(warmup):
        trainer.update(buffer.sample(batch_size))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.update(buffer.sample(batch_size))
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("--reference", type=pathlib.Path, required=True, help="a CORL checkout")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=list(ALGOS))
    parser.add_argument("--n-critics", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dataset-size", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    data = synthetic_dataset(args.dataset_size)
    print(
        f"torch {th.__version__}, {platform.processor() or platform.machine()}, {th.get_num_threads()} CPU threads, "
        f"dataset {args.dataset_size} x (obs 17, action 6), batch {args.batch_size}, 3 x 256, {args.steps} timed "
        f"updates, env {HopperShapedEnv.__name__}"
    )
    print("| algorithm | N | ours updates/s | CORL updates/s | ours / CORL |")
    print("|---|---|---|---|---|")
    for algo in args.algos:
        for n in args.n_critics:
            ours, _ = measure(algo, "cpu", data, args.batch_size, args.steps, args.warmup, None, n_critics=n)
            theirs = corl_updates_per_second(args.reference, algo, data, n, args.batch_size, args.steps, args.warmup)
            print(f"| {algo} | {n} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |", flush=True)


if __name__ == "__main__":
    main()
