"""``sb3-offline benchmark GRID.yaml --output DIR``: a grid of trials (:mod:`sb3_offline.benchmark`) and its report."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def add_benchmark_parser(sub: Any) -> None:
    """The ``benchmark`` subcommand and its options."""
    bench = sub.add_parser(
        "benchmark",
        help="run a grid of algorithms x datasets x seeds (a YAML file) here or on a Ray cluster; results.csv, "
        "report.md and figures",
    )
    bench.add_argument("grid", help="the grid file (.yaml): name, env, datasets, algorithms, seeds, steps, eval")
    bench.add_argument("--output", required=True, help="the grid's folder: trials/<trial>/, results.csv, report.md")
    bench.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: a pool of --workers processes; ray: Ray Tune trials (pip install -e '.[ray]') (default: local)",
    )
    bench.add_argument(
        "--address", default=None, help="ray: the cluster's address (auto, ray://HOST:PORT; default: a local Ray)"
    )
    bench.add_argument("--workers", type=int, default=1, help="local: trials at a time")
    bench.add_argument("--threads", type=int, default=1, help="local: torch threads per trial (0: torch's own choice)")
    bench.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray: CPUs per trial (also its torch threads)")
    bench.add_argument("--gpus-per-trial", type=float, default=0.0, help="ray: GPUs per trial (0.25: four on a GPU)")
    bench.add_argument(
        "--resume", action="store_true", help="continue the grid in --output: finished trials are not run again"
    )
    bench.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    """``sb3-offline benchmark``: 0 when every trial finished and the report is written, 130 on Ctrl-C."""
    from sb3_offline.benchmark import run_grid
    from sb3_offline.cli.train import INTERRUPTED

    for flag, value, minimum in (
        ("--workers", args.workers, 1),
        ("--threads", args.threads, 0),
        ("--cpus-per-trial", args.cpus_per_trial, 0),
        ("--gpus-per-trial", args.gpus_per_trial, 0),
    ):
        if value < minimum or (flag == "--cpus-per-trial" and value == 0):
            raise ValueError(
                f"{flag}: expected a value {'>' if flag == '--cpus-per-trial' else '>='} {minimum}, found {value}"
            )
    command = f"sb3-offline benchmark {shlex.quote(args.grid)} --output {shlex.quote(args.output)}"
    if args.engine == "ray":  # what --resume needs to continue the same Tune experiment
        command += " --engine ray" + (f" --address {shlex.quote(args.address)}" if args.address else "")
    try:
        run_grid(
            args.grid,
            args.output,
            engine=args.engine,
            address=args.address,
            workers=args.workers,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            resume=args.resume,
            torch_threads=args.threads or None,
            command=command,
        )
    except KeyboardInterrupt:
        print(
            f"\nsb3-offline benchmark: interrupted; finished trials are kept: `{command} --resume` continues",
            file=sys.stderr,
        )
        return INTERRUPTED
    return 0
