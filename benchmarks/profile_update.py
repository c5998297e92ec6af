"""
Where one algorithm's gradient update spends its time: ``torch.profiler`` over a number of updates on
``benchmarks.throughput``'s synthetic Hopper-sized data, at the algorithm's defaults, grouped by operator.

    python -m benchmarks.profile_update lapo --steps 50
    python -m benchmarks.profile_update cql --steps 20 --row-limit 25

Prints the operators by their own CPU time (``self_cpu_time_total``) with their call counts per update, and the
updates/s measured outside the profiler on the same model. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import torch as th
from torch.profiler import ProfilerActivity, profile

from benchmarks.throughput import HopperShapedEnv, synthetic_dataset
from sb3_offline.algorithms import ALGOS


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("algo", choices=sorted(ALGOS))
    parser.add_argument("--steps", type=int, default=50, help="profiled updates")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--dataset-size", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=0, help="0 (default): the algorithm's")
    parser.add_argument("--row-limit", type=int, default=20)
    args = parser.parse_args()
    th.manual_seed(0)
    kwargs = {"batch_size": args.batch_size} if args.batch_size else {}
    if args.algo == "plas":
        kwargs["vae_steps"] = 0  # the policy phase
    model = ALGOS[args.algo](
        "MlpPolicy", HopperShapedEnv(), dataset=synthetic_dataset(args.dataset_size), device="cpu", seed=0, **kwargs
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PLAS.learn: all")
        model.learn(args.warmup, log_interval=None)
        start = time.perf_counter()
        model.learn(args.steps, log_interval=None, reset_num_timesteps=False)
        rate = args.steps / (time.perf_counter() - start)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.learn(args.steps, log_interval=None, reset_num_timesteps=False)
    print(
        f"{args.algo}: batch {model.batch_size}, {rate:.1f} updates/s unprofiled; torch {th.__version__}, "
        f"{platform.processor() or platform.machine()}, {th.get_num_threads()} CPU threads, {args.steps} profiled "
        "updates (the calls column counts all of them)"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.row_limit))


if __name__ == "__main__":
    main()
