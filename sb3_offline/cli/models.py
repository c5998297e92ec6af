"""
The subcommands on saved models: ``evaluate`` (the true return and normalized score in the env), ``ope``
(FQE for each checkpoint, without the env: a ranked table and a PNG) and ``export`` (TorchScript or ONNX).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sb3_offline.cli.data import add_download_option, download_if_asked, options
from sb3_offline.common.text import plural
from sb3_offline.ope.settling import PENDULUM_SETTLING_STEPS

ALGO_HELP = "the checkpoint's algorithm, when it cannot be read from it"


# ----------------------------------------------------------------------------------------- evaluate
def add_evaluate_parser(sub: Any) -> None:
    """The ``evaluate`` subcommand and its options."""
    evaluate = sub.add_parser("evaluate", help="the true return (and normalized score) of a saved model")
    evaluate.add_argument("model", help="an SB3 checkpoint (.zip) of any of our algorithms or SB3's")
    evaluate.add_argument("--env", default=None, help="gymnasium id (default: recovered from the model's dataset)")
    evaluate.add_argument("--dataset", default=None, help="dataset whose reference scores normalize the return")
    add_download_option(evaluate)
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    evaluate.add_argument("--algo", default=None, help=ALGO_HELP)
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(func=cmd_evaluate)


def _readable_dataset(args: argparse.Namespace, model: Any) -> Any:
    """``--dataset``, else the checkpoint's own dataset when its reference scores can be read here, else ``None``."""
    from sb3_offline.evaluation import reference_scores

    if args.dataset is not None:
        return args.dataset
    dataset = getattr(model, "dataset", None)
    if dataset is not None:
        try:  # the checkpoint's own dataset, for its reference scores: it may not be on this machine
            reference_scores(dataset)
        except (FileNotFoundError, ValueError) as error:
            print(f"normalized score: n/a (the model's dataset {dataset!r} cannot be read: {error})")
            dataset = None
    if hasattr(model, "dataset"):
        model.dataset = dataset  # evaluate() reads the model's own dataset for reference scores: only a readable one
    return dataset


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``sb3-offline evaluate MODEL``: mean and std of the return over ``--episodes``, and the normalized score."""
    import gymnasium as gym

    from sb3_offline.datasets import recover_env
    from sb3_offline.evaluation import evaluate
    from sb3_offline.ope import load_model

    download_if_asked(args)
    model = load_model(args.model, algo=args.algo, device=args.device)
    dataset = _readable_dataset(args, model)
    if args.env is not None:
        env = gym.make(args.env)
    elif dataset is not None:
        env = recover_env(dataset)
    else:
        raise ValueError(f"--env: expected a gymnasium id (the checkpoint {args.model} records no readable dataset)")
    result = evaluate(
        model, env, n_episodes=args.episodes, dataset=dataset, deterministic=not args.stochastic, seed=args.seed
    )
    env_id = env.spec.id if env.spec is not None else "env"
    score = f"{result.normalized_score:.1f}" if result.normalized_score is not None else "n/a"
    print(
        f"{type(model).__name__} {args.model} on {env_id}: return {result.mean_return:.1f} ± {result.std_return:.1f} "
        f"over {plural(args.episodes, 'episode')}; normalized score {score}"
    )
    return 0


# ---------------------------------------------------------------------------------------------- ope
def add_ope_parser(sub: Any) -> None:
    """The ``ope`` subcommand and its options."""
    ope = sub.add_parser("ope", help="rank checkpoints by FQE on a dataset (and compare with the true return)")
    ope.add_argument("checkpoints", nargs="+", help="SB3 checkpoints (.zip), e.g. logs/run_a/*.zip logs/run_b/*.zip")
    ope.add_argument("--dataset", required=True, help="FQE's data: Minari id or .hdf5/.npz/.pkl path")
    add_download_option(ope)
    ope.add_argument("--validation", default=None, help="held-out episodes for the metrics (default: --dataset)")
    ope.add_argument("--env", default=None, help="gymnasium id: also roll each policy out for its true return")
    ope.add_argument(
        "--steps",
        type=int,
        default=10_000,
        help="FQE gradient steps per checkpoint (default 10000). The estimate needs enough to settle: on the shipped "
        f"Pendulum dataset about {PENDULUM_SETTLING_STEPS} for a policy near the data's (1000 are far too few), and a "
        "policy far from the data may never settle; a checkpoint whose estimate moved by more than 5%% over the last "
        "4 of 10 evenly spaced checks gets a warning",
    )
    ope.add_argument("--gamma", type=float, default=0.99)
    ope.add_argument("--batch-size", type=int, default=100)
    ope.add_argument("--net-arch", default=None, help="FQE's hidden sizes, e.g. 256,256 (the default)")
    ope.add_argument("--episodes", type=int, default=10, help="rollouts per checkpoint with --env")
    ope.add_argument("--output", default="ope_report", help="folder of ope.csv, ope.png and the FQE checkpoints")
    ope.add_argument("--seed", type=int, default=0)
    ope.add_argument("--device", default="auto")
    ope.add_argument("--no-cuda-graphs", action="store_true")
    ope.add_argument("--algo", default=None, help="the checkpoints' algorithm, when it cannot be read from them")
    ope.add_argument("--progress-bar", action="store_true")
    ope.add_argument(
        "--verbose", type=int, default=1, help="1: a line per checkpoint as it finishes (default); 0: the table only"
    )
    ope.set_defaults(func=cmd_ope)


def cmd_ope(args: argparse.Namespace) -> int:
    """``sb3-offline ope CHECKPOINT...``: FQE per checkpoint, the ranked table, ``ope.csv`` and ``ope.png``."""
    import warnings

    from sb3_offline.ope.report import (
        UnsettledEstimateWarning,
        evaluate_checkpoints,
        format_table,
        plot_report,
        summarize,
        write_csv,
    )

    download_if_asked(args)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fqe_kwargs: dict[str, Any] = dict(batch_size=args.batch_size, cuda_graphs=not args.no_cuda_graphs)
    if args.net_arch:
        fqe_kwargs["policy_kwargs"] = dict(net_arch=[int(n) for n in args.net_arch.split(",")])
    print(f"FQE for {args.steps} gradient steps on each of {plural(len(args.checkpoints), 'checkpoint')}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnsettledEstimateWarning)  # said below, in one line per checkpoint
        reports = evaluate_checkpoints(
            args.checkpoints,
            args.dataset,
            env_id=args.env,
            n_episodes=args.episodes,
            output=output,
            fqe_kwargs=fqe_kwargs,
            **options(args, "validation", "steps", "gamma", "device", "seed", "algo", "progress_bar", "verbose"),
        )
    print(format_table(reports))
    for report in reports:
        if report.settling is not None and not report.settling.settled:
            print(f"warning: {report.label}: FQE's estimate is {report.settling.describe()}", file=sys.stderr)
    if any(r.settling is not None and not r.settling.settled for r in reports):
        print(
            f"warning: the ranking may be wrong; rerun with more --steps (the estimate settles after about "
            f"{PENDULUM_SETTLING_STEPS} on the shipped Pendulum dataset)",
            file=sys.stderr,
        )
    summary = summarize(reports)
    print(f"FQE's pick: {summary.pick}")
    if summary.regret_at_1 is not None:
        print(
            f"against the true returns: Spearman {summary.spearman:.2f} (discounted), {summary.spearman_return:.2f} "
            f"(undiscounted); mean |FQE - true discounted| {summary.mean_absolute_error:.2f}; "
            f"regret@1 {summary.regret_at_1:.1f}"
        )
    print(f"wrote {write_csv(reports, output / 'ope.csv')} and {plot_report(reports, output / 'ope.png')}")
    return 0


# ------------------------------------------------------------------------------------------- export
def add_export_parser(sub: Any) -> None:
    """The ``export`` subcommand and its options."""
    export = sub.add_parser(
        "export", help="write a saved model's predict(deterministic=True) as a TorchScript or ONNX file"
    )
    export.add_argument("model", help="an SB3 checkpoint (.zip) of any of our algorithms")
    export.add_argument(
        "--format", choices=["torchscript", "onnx"], default=None, help="default: onnx for an --output ending in .onnx"
    )
    export.add_argument("--output", default=None, help="the file to write (default: the model's path with .pt/.onnx)")
    export.add_argument(
        "--noise-input", action="store_true", help="BCQ: take the prior's normal draws as an input 'noise'"
    )
    export.add_argument("--algo", default=None, help=ALGO_HELP)
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """``sb3-offline export MODEL``: the file written, its format, inputs and action shape."""
    from sb3_offline.exporting import FORMAT_SUFFIXES, FORMATS, export, read_metadata
    from sb3_offline.ope import load_model

    model_path = Path(args.model)
    format = args.format or ("onnx" if args.output is not None and Path(args.output).suffix == ".onnx" else FORMATS[0])
    output = Path(args.output) if args.output is not None else model_path.with_suffix(f".{FORMAT_SUFFIXES[format]}")
    model = load_model(model_path, algo=args.algo, device="cpu")
    written = export(model, output, format=format, noise_input=args.noise_input)
    metadata = read_metadata(written)

    def shape(entry: dict[str, Any]) -> str:
        return "(" + ", ".join(str(n) for n in entry["shape"]) + ")"

    inputs = ", ".join(f"{entry['name']} {shape(entry)}" for entry in metadata["inputs"])
    print(f"wrote {written} ({format}, {metadata['algorithm']}): {inputs} -> action {shape(metadata['output'])}")
    return 0
