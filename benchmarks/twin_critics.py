"""
Two critics as SB3 holds them (two MLPs, one ``addmm`` per layer each) against the same two as one
:class:`~sb3_offline.common.ensemble.EnsembleMLP` (one ``baddbmm`` per layer for both), at the shapes each twin-critic
algorithm's update feeds them at its defaults (Hopper-sized inputs: obs 17 + action 6): the milliseconds of one
forward and backward of the rows that train the critics, plus one forward without gradient of the target's rows.

    python -m benchmarks.twin_critics --repeats 200

The algorithms move their twin critics onto the ensemble only where it is faster (issue 36); this table is the
measurement. Both forms are timed alternately, ``--rounds`` times, and each one's best round is kept (other jobs on
the machine slow both alike). Prints a markdown table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch as th
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

from sb3_offline.common.ensemble import EnsembleMLP

INPUT = 17 + 6
#: algorithm -> (critic hidden sizes, rows with gradient per update, target rows without gradient per update)
SHAPES: dict[str, tuple[list[int], int, int]] = {
    "BCQ": ([400, 300], 100, 100 * 10),  # batch 100; the target's 10 VAE-perturbed actions per next state
    "TD3+BC": ([256, 256], 256, 256),
    "IQL": ([256, 256], 256, 256),  # the target critics' Q(s, a) for V's expectile regression
    "AWAC": ([256, 256], 128, 128),
    "LAPO": ([256, 256, 256], 512, 2 * 512),  # V's target and the next actions' Q
    "CQL": ([256, 256, 256], 31 * 256, 256),  # the data, 10 random, 10 policy actions at s and 10 at s'
    "Cal-QL": ([256, 256, 256, 256], 31 * 256, 256),
}


def timed(step: Callable[[], None], repeats: int) -> float:
    """Milliseconds per call of ``step`` over ``repeats`` calls, after 5 untimed ones."""
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1e3


def measure(net_arch: list[int], rows: int, target_rows: int, repeats: int, rounds: int) -> tuple[float, float]:
    """Best-round milliseconds of (two MLPs, one 2-member ensemble) for one critic update's forward and backward."""
    twins = [nn.Sequential(*create_mlp(INPUT, 1, net_arch)) for _ in range(2)]
    ensemble = EnsembleMLP(INPUT, 1, net_arch, 2)
    x, x_target = th.randn(rows, INPUT), th.randn(target_rows, INPUT)

    def separate() -> None:
        with th.no_grad():
            target = th.cat([q(x_target) for q in twins], dim=1)
        loss = th.cat([q(x) for q in twins], dim=1).pow(2).mean() + target.mean()
        loss.backward()

    def stacked() -> None:
        with th.no_grad():
            target = ensemble(x_target)
        loss = ensemble(x).pow(2).mean() + target.mean()
        loss.backward()

    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for index, step in enumerate((separate, stacked)):
            best[index] = min(best[index], timed(step, repeats))
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    print(
        f"torch {th.__version__}, {platform.processor() or platform.machine()}, {th.get_num_threads()} CPU threads, "
        f"CPU capability {th.backends.cpu.get_cpu_capability()}, best of {args.rounds} rounds of {args.repeats}"
    )
    print("| algorithm | critic | rows (grad + target) | two MLPs, ms | one ensemble, ms | ensemble speed-up |")
    print("|---|---|---|---|---|---|")
    for algo in args.algos:
        net_arch, rows, target_rows = SHAPES[algo]
        separate, stacked = measure(net_arch, rows, target_rows, args.repeats, args.rounds)
        arch = " x ".join(str(size) for size in net_arch)
        speedup = separate / stacked
        cells = (algo, arch, f"{rows} + {target_rows}", f"{separate:.2f}", f"{stacked:.2f}", f"{speedup:.2f}x")
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
