"""
The dataset subcommands: ``collect`` (a named protocol, as a local Minari dataset), ``record`` (a random
policy's transitions), ``datasets`` (what is on local disk and shipped), ``convert`` (between formats) and
``plot`` (the extrapolation-error picture of training runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sb3_offline.common.text import plural


def options(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """``{name: args.<name>}`` for ``names``: the options a command passes on under their own names."""
    return {name: getattr(args, name) for name in names}


def add_download_option(parser: argparse.ArgumentParser) -> None:
    """``--download``: fetch ``--dataset`` (a Minari id) from Minari's remote store before the command reads it."""
    parser.add_argument(
        "--download", action="store_true", help="fetch the --dataset Minari id from Minari's remote store first"
    )


def download_if_asked(args: argparse.Namespace) -> None:
    """With ``--download``: fetch ``--dataset`` (kept when already local); an error when there is no ``--dataset``."""
    if not getattr(args, "download", False):
        return
    if args.dataset is None:
        raise ValueError("--download: expected --dataset MINARI_ID to fetch, found no --dataset")
    from sb3_offline.datasets.minari import download_minari_dataset

    download_minari_dataset(args.dataset)


# ------------------------------------------------------------------------------------------ collect
def add_collect_parser(sub: Any) -> None:
    """The ``collect`` subcommand and its options."""
    from sb3_offline.collect import BEHAVIOUR_ALGOS, PROTOCOLS

    collect = sub.add_parser(
        "collect", help="make a dataset under a named protocol (BCQ paper, D4RL) as a local Minari dataset"
    )
    collect.add_argument("--env", required=True, help="gymnasium id with a bounded Box action space")
    collect.add_argument("--protocol", required=True, choices=list(PROTOCOLS))
    collect.add_argument("--steps", type=int, required=True, help="transitions (training steps for final/concurrent)")
    collect.add_argument("--algo", choices=sorted(BEHAVIOUR_ALGOS), default="td3", help="SB3 behaviour agent")
    collect.add_argument("--dataset-id", default=None, help="Minari id (default <env>/<protocol>-v0)")
    collect.add_argument(
        "--expert-steps",
        type=int,
        default=None,
        help="training steps of the expert (default: 20k on the pendulum tasks, else 1M); announced with a time "
        "estimate when no expert is cached",
    )
    collect.add_argument("--ref-episodes", type=int, default=20, help="episodes per reference score")
    collect.add_argument(
        "--ref-min",
        type=float,
        default=None,
        help="ref_min_score to record (the random policy's return; with --ref-max): no expert trained for the scores",
    )
    collect.add_argument("--ref-max", type=float, default=None, help="ref_max_score to record (with --ref-min)")
    collect.add_argument(
        "--no-ref-scores",
        action="store_true",
        help="record no reference scores (no expert trained for them; protocols that roll an expert out still "
        "need one). --protocol random never trains one: without --ref-min/--ref-max it takes a cached expert's "
        "scores or records none",
    )
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--overwrite", action="store_true")
    collect.add_argument("--no-progress-bar", action="store_true")
    collect.set_defaults(func=cmd_collect)


def _collect_option_error(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--ref-min``/``--ref-max``/``--no-ref-scores`` together (``None``: nothing)."""
    if (args.ref_min is None) != (args.ref_max is None):
        given, missing = ("--ref-min", "--ref-max") if args.ref_max is None else ("--ref-max", "--ref-min")
        return f"{missing}: expected with {given} (both or neither)"
    if args.ref_min is not None and args.no_ref_scores:
        return "--no-ref-scores: not with --ref-min/--ref-max"
    return None


def cmd_collect(args: argparse.Namespace) -> int:
    """``sb3-offline collect``: :func:`~sb3_offline.collect.collect_dataset`, and a line on what it wrote."""
    from sb3_offline.collect import collect_dataset

    error = _collect_option_error(args)
    if error is not None:
        print(f"sb3-offline collect: error: {error}", file=sys.stderr)
        return 2
    result = collect_dataset(
        args.env,
        args.protocol,
        args.steps,
        progress_bar=not args.no_progress_bar,
        ref_scores=not args.no_ref_scores,
        **options(
            args, "algo", "dataset_id", "seed", "expert_steps", "ref_episodes", "overwrite", "ref_min", "ref_max"
        ),
    )
    print(_collect_summary(args, result))
    return 0


def _collect_summary(args: argparse.Namespace, result: Any) -> str:
    """The line on what ``collect`` wrote: size, time, the behaviour's return and the reference scores."""
    scores = result.scores
    if scores is None:
        normalized, written = "", "no ref scores (--no-ref-scores)"
    elif scores.expert is None:
        normalized = ""
        written = (
            f"random return {scores.random:.1f}, no expert: no ref scores written (--ref-min/--ref-max to give them)"
        )
    else:
        normalized = f" (normalized {scores.normalize(result.behaviour_return):.1f})"
        written = f"ref scores: random {scores.random:.1f}, expert {scores.expert:.1f}"
    return (
        f"wrote '{result.dataset_id}': {len(result.transitions)} transitions of {args.env} ({args.protocol}, "
        f"{args.algo}) in {result.seconds:.0f} s; behaviour return {result.behaviour_return:.1f}{normalized}; "
        f"{written}"
    )


# ----------------------------------------------------------------------------------- record, datasets
def add_record_parser(sub: Any) -> None:
    """The ``record`` subcommand and its options."""
    record = sub.add_parser("record", help="record random-policy transitions of an env")
    record.add_argument("--env", default="Pendulum-v1")
    record.add_argument("--steps", type=int, default=10_000)
    record.add_argument("--seed", type=int, default=0)
    record.add_argument("--output", required=True, help="a .hdf5 or .npz path, or a Minari id")
    record.add_argument("--overwrite", action="store_true")
    record.set_defaults(func=cmd_record)


def _write_dataset(transitions: object, target: str, overwrite: bool) -> str:
    """``transitions`` to an ``.hdf5``/``.h5`` or ``.npz`` file by ``target``'s suffix, else a local Minari id."""
    from sb3_offline.datasets import Transitions, save_hdf5, save_minari, save_npz

    assert isinstance(transitions, Transitions)
    suffix = Path(target).suffix.lower()
    if suffix in (".hdf5", ".h5"):
        return str(save_hdf5(transitions, target))
    if suffix == ".npz":
        return str(save_npz(transitions, target))
    save_minari(transitions, target, overwrite=overwrite, algorithm_name="uniform random policy")
    return target


def cmd_record(args: argparse.Namespace) -> int:
    """``sb3-offline record``: a uniformly random policy's transitions, written in the format ``--output`` names."""
    from sb3_offline.datasets import record_transitions

    data = record_transitions(args.env, args.steps, seed=args.seed, progress_bar=True)
    where = _write_dataset(data, args.output, overwrite=args.overwrite)
    print(f"wrote {len(data)} transitions of {args.env} to {where}")
    return 0


def add_datasets_parser(sub: Any) -> None:
    """The ``datasets`` subcommand (no options)."""
    datasets = sub.add_parser("datasets", help="list the local Minari datasets")
    datasets.set_defaults(func=cmd_datasets)


def cmd_datasets(args: argparse.Namespace) -> int:
    """``sb3-offline datasets``: the local Minari datasets (steps, episodes), then the shipped ones not copied yet."""
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    from sb3_offline.datasets.packaged import packaged_datasets

    local = minari.list_local_datasets()
    print(f"Minari datasets in {get_dataset_path()}:")
    if not local:
        print("  (none)")
    for dataset_id, meta in sorted(local.items()):
        steps, episodes = meta.get("total_steps", "?"), meta.get("total_episodes", "?")
        print(f"  {dataset_id:<40} {steps:>10} steps  {episodes:>6} episode{'' if episodes == 1 else 's'}")
    shipped = [d for d in packaged_datasets() if d not in local]
    if shipped:
        print("Shipped with sb3-offline (copied into the folder above on first use):")
        for dataset_id in shipped:
            print(f"  {dataset_id}")
    return 0


# ------------------------------------------------------------------------------------------- plot
def add_plot_parser(sub: Any) -> None:
    """The ``plot`` subcommand and its options."""
    plot = sub.add_parser("plot", help="draw the extrapolation-error picture from runs' value_estimates.csv")
    plot.add_argument("runs", nargs="+", help="run folders (or their value_estimates.csv), one line pair each")
    plot.add_argument("--output", default="value_estimates.png", help="the PNG to write")
    plot.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    """``sb3-offline plot RUN...``: the Q estimates against the true returns, one line pair per run."""
    from sb3_offline.plotting import plot_value_estimates

    runs = {Path(run).name if Path(run).is_dir() else Path(run).parent.name: run for run in args.runs}
    print(f"wrote {plot_value_estimates(runs, args.output)}")
    return 0


# ---------------------------------------------------------------------------------------- convert
def add_convert_parser(sub: Any) -> None:
    """The ``convert`` subcommand and its options."""
    from sb3_offline.datasets.convert import FORMATS as DATASET_FORMATS
    from sb3_offline.datasets.imitation import TERMINAL_MODES

    convert = sub.add_parser("convert", help="convert a dataset: HDF5, npz, Minari, d3rlpy .h5 (imitation's files too)")
    convert.add_argument("source", help="Minari id or folder, .hdf5/.h5 (D4RL or d3rlpy), .npz, .pkl, imitation files")
    convert.add_argument("target", help="a .hdf5/.h5 or .npz path, a Minari id, or a .h5 path with --to d3rlpy")
    convert.add_argument("--to", choices=DATASET_FORMATS, default=None, help="output format (default: from TARGET)")
    convert.add_argument(
        "--env",
        default=None,
        help="the data's gymnasium id (needed for .pkl, and for Minari output when the source records none); "
        "the data is checked against its spaces",
    )
    convert.add_argument(
        "--imitation-terminal",
        choices=TERMINAL_MODES,
        default="infos",
        help="imitation trajectories: whether terminal=True is a termination or a timeout (default: read SB3's "
        "TimeLimit.truncated from the last info)",
    )
    convert.add_argument("--reward-fill", type=float, default=None, help="imitation Trajectory without rewards")
    convert.add_argument("--overwrite", action="store_true")
    convert.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    """``sb3-offline convert SRC DST``: :func:`~sb3_offline.datasets.convert.convert_dataset`, and what it wrote."""
    from sb3_offline.datasets.convert import convert_dataset

    names = ("to", "env", "imitation_terminal", "reward_fill", "overwrite")
    result = convert_dataset(args.source, args.target, **options(args, *names))
    data = result.transitions
    counts = (
        f"{plural(len(data.episode_slices()), 'episode')}: {plural(int(data.terminations.sum()), 'termination')}, "
        f"{plural(int(data.truncations.sum()), 'truncation')}"
    )
    print(f"wrote {plural(len(data), 'transition')} ({counts}) from {args.source} to {result.target} ({result.format})")
    return 0
