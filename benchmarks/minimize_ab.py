"""
What ``minimize``'s ``backward(inputs=...)`` saves: each algorithm's update as shipped (every optimizer step computes
the gradients of its own parameters only) against the same update with a full ``loss.backward()`` (the weight
gradients of every network the loss reaches: the critics under an actor's loss, a target decoder under a policy's),
on the same model, in the same process, on CPU, at the algorithm's defaults on ``benchmarks.throughput``'s
synthetic Hopper-sized data.

    python -m benchmarks.minimize_ab --algos td3bc cql bcq --steps 100 --rounds 3

The two forms are timed alternately, ``--rounds`` times, on one model that keeps training, and each one's best round
is kept (other jobs on the machine slow both alike). Both forms give the same parameters bit for bit (the golden
files pin the shipped one). Prints a markdown table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import time
import warnings
from collections.abc import Iterator

import torch as th

from benchmarks.throughput import CONTINUOUS, HopperShapedEnv, synthetic_dataset
from sb3_offline.algorithms import ALGOS
from sb3_offline.common import training


def full_backward_minimize(optimizer: th.optim.Optimizer, loss: th.Tensor) -> None:
    """``minimize`` before ``inputs=``: the gradients of every parameter ``loss`` reaches."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@contextlib.contextmanager
def full_backward() -> Iterator[None]:
    """Every ``sb3_offline`` module that imported ``minimize`` steps with :func:`full_backward_minimize` inside."""
    shipped = training.minimize
    modules = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("sb3_offline") and getattr(module, "minimize", None) is shipped
    ]
    for module in modules:
        module.minimize = full_backward_minimize  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in modules:
            module.minimize = shipped  # type: ignore[attr-defined]


def measure(algo: str, dataset_size: int, steps: int, warmup: int, rounds: int) -> tuple[float, float]:
    """Best-round updates/s of (the shipped ``minimize``, a full ``backward()``) on one model of ``algo``."""
    kwargs = {"vae_steps": 0} if algo == "plas" else {}
    data = synthetic_dataset(dataset_size)
    # on CPU: a CUDA device would capture the first form's update as a graph and replay it for both
    model = ALGOS[algo]("MlpPolicy", HopperShapedEnv(), dataset=data, device="cpu", seed=0, **kwargs)

    def rate() -> float:
        start = time.perf_counter()
        model.learn(steps, log_interval=None, reset_num_timesteps=False)
        return steps / (time.perf_counter() - start)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PLAS.learn: all")
        model.learn(warmup, log_interval=None)
        with full_backward():
            model.learn(warmup, log_interval=None, reset_num_timesteps=False)
        best = [0.0, 0.0]
        for _ in range(rounds):
            best[0] = max(best[0], rate())
            with full_backward():
                best[1] = max(best[1], rate())
    return best[0], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    choices = [algo for algo in CONTINUOUS if algo != "plas/vae"]
    parser.add_argument("--algos", nargs="+", default=choices, choices=choices)
    parser.add_argument("--dataset-size", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=100, help="timed updates per round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed updates of each form first")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"torch {th.__version__}, {platform.processor() or platform.machine()}, {th.get_num_threads()} CPU threads, "
        f"CPU capability {th.backends.cpu.get_cpu_capability()}, dataset {args.dataset_size} x (obs 17, action 6), "
        f"best of {args.rounds} rounds of {args.steps} updates"
    )
    print("| algorithm | minimize (own gradients) updates/s | full backward() updates/s | speed-up |")
    print("|---|---|---|---|")
    for algo in args.algos:
        shipped, full = measure(algo, args.dataset_size, args.steps, args.warmup, args.rounds)
        print(f"| {algo} | {shipped:.1f} | {full:.1f} | {shipped / full:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
