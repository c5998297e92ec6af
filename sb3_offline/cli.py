"""
The ``sb3-offline`` command.

- ``sb3-offline train``: train an algorithm on a dataset for a number of gradient steps, evaluating
  it as it learns; save the SB3 checkpoint, the evaluations and a learning-curve PNG, and compare the
  final policy with the behaviour policy (the dataset's own episode returns) and a random policy.
  The default (BCQ on the shipped ``pendulum/imperfect-v0``) needs no collection and no download.
  ``--validation-fraction 0.1`` holds out whole episodes (written beside the checkpoint), logs offline
  metrics on them and keeps the best model by one of them.
- ``sb3-offline evaluate``: the true return (and normalized score) of a saved model in its env.
- ``sb3-offline ope``: model selection without the env: FQE for each checkpoint, a ranked table, a PNG.
- ``sb3-offline collect``: make a dataset under a named protocol (BCQ paper, D4RL) as a local Minari dataset.
- ``sb3-offline record``: record transitions of a random policy into ``.hdf5``, ``.npz`` or a Minari id.
- ``sb3-offline plot``: the extrapolation-error picture (Q estimate vs true return) from ``value_estimates.csv`` files.
- ``sb3-offline datasets``: list the Minari datasets on local disk and the ones shipped with the package.
- ``sb3-offline convert SRC DST``: a dataset from any format we read (Minari, HDF5, npz, SB3 ``.pkl``, d3rlpy ``.h5``,
  imitation's trajectories) to HDF5, npz, a local Minari dataset or a d3rlpy ``.h5``.
- ``sb3-offline export``: a saved model's ``predict(deterministic=True)`` as a TorchScript or ONNX file (no
  sb3_offline needed to run it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The dataset the default ``train`` uses: shipped inside the package (see ``sb3_offline.datasets.packaged``).
DEFAULT_DATASET = "pendulum/imperfect-v0"
DEFAULT_ALGO = "bcq"
DEFAULT_STEPS = 5_000
#: The exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def _write_dataset(transitions: object, target: str, overwrite: bool) -> str:
    from sb3_offline.datasets import Transitions, save_hdf5, save_minari, save_npz

    assert isinstance(transitions, Transitions)
    suffix = Path(target).suffix.lower()
    if suffix in (".hdf5", ".h5"):
        return str(save_hdf5(transitions, target))
    if suffix == ".npz":
        return str(save_npz(transitions, target))
    save_minari(transitions, target, overwrite=overwrite, algorithm_name="uniform random policy")
    return target


def cmd_train(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor

    from sb3_offline.algorithms import ALGOS
    from sb3_offline.callbacks import ValueEstimateCallback
    from sb3_offline.datasets import recover_env
    from sb3_offline.evaluation import evaluate, evaluate_callable
    from sb3_offline.plotting import plot_curves

    algo_class: Any = ALGOS[args.algo]
    dataset = args.dataset
    env = gym.make(args.env) if args.env else recover_env(dataset)
    env_id = env.spec.id if env.spec is not None else "env"
    output = Path(args.output or f"logs/{args.algo}_{env_id}")
    output.mkdir(parents=True, exist_ok=True)
    validation = None
    if args.validation_fraction:
        from sb3_offline.ope import split_episodes

        split = split_episodes(
            dataset, args.validation_fraction, seed=args.seed, output=(output / "datasets").resolve(), overwrite=True
        )
        dataset, validation = split.train, split.validation
        print(
            f"held out {len(split.validation_episodes)} of {split.n_episodes} episodes "
            f"({split.n_validation_transitions} transitions): training on {dataset}, validating on {validation}"
        )
    model = algo_class(
        "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy",
        env,
        dataset=dataset,
        device=args.device,
        seed=args.seed,
        verbose=args.verbose,
        tensorboard_log=args.tensorboard_log,
        cuda_graphs=not args.no_cuda_graphs,
    )
    assert model.replay_buffer is not None
    print(f"{args.algo} on {dataset}: {model.replay_buffer.size()} transitions, device {model.device}")
    callback = None
    if args.eval_freq > 0 and args.eval_episodes > 0:
        callback = EvalCallback(
            Monitor(gym.make(env_id)),
            n_eval_episodes=args.eval_episodes,
            eval_freq=args.eval_freq,
            log_path=str(output),
            deterministic=True,
            verbose=0,
        )
    callbacks: list[Any] = [callback] if callback is not None else []
    if callback is not None and getattr(model.policy, "critic", None) is not None:
        # the extrapolation-error diagnostic next to the returns: value_estimates.csv, for `sb3-offline plot`
        callbacks.append(ValueEstimateCallback(gym.make(env_id), args.eval_freq, args.eval_episodes, log_path=output))
    offline_eval = None
    if validation is not None:
        from sb3_offline.ope import OfflineEvalCallback

        # offline metrics on the held-out episodes; best_model.zip by the first metric with a direction
        offline_eval = OfflineEvalCallback(
            validation,
            eval_freq=args.eval_freq if args.eval_freq > 0 else args.log_interval,
            best_model_save_path=output,
            log_path=output,
            verbose=args.verbose,
        )
        callbacks.append(offline_eval)
    progress_bar = sys.stdout.isatty() if args.progress_bar is None else args.progress_bar
    print(f"training for {args.steps} gradient steps (Ctrl-C: save a checkpoint of where it stopped)", flush=True)
    start = time.perf_counter()
    try:
        model.learn(
            total_timesteps=args.steps, callback=callbacks, progress_bar=progress_bar, log_interval=args.log_interval
        )
    except KeyboardInterrupt:
        path = _save_atomically(model, output / f"{args.algo}_interrupted.zip")
        print(
            f"\ninterrupted after {model.num_timesteps} of {args.steps} gradient steps; saved {path} "
            f"(load it with {type(model).__name__}.load; learn(..., reset_num_timesteps=False) continues it)",
            flush=True,
        )
        return INTERRUPTED
    seconds = time.perf_counter() - start
    saved = _save_atomically(model, output / f"{args.algo}.zip")
    print(f"{args.steps} gradient steps in {seconds:.1f} s ({args.steps / seconds:.0f}/s); saved {saved}")
    if offline_eval is not None and offline_eval.best_value is not None:
        print(
            f"best on the held-out episodes by {offline_eval.best_metric}: {offline_eval.best_value:.4g}; "
            f"saved {output / 'best_model'}.zip"
        )
    if args.eval_episodes <= 0:
        return 0

    final = evaluate(model, gym.make(env_id), n_episodes=args.eval_episodes, seed=args.seed + 1000)
    data_returns = _dataset_episode_returns(dataset)
    random_mean, random_std = evaluate_callable(gym.make(env_id), None, args.eval_episodes, seed=args.seed + 1000)
    rows = [(args.algo, final.mean_return, final.std_return, final.normalized_score)]
    baselines: dict[str, float] = {}
    if len(data_returns):
        mean = float(np.mean(data_returns))
        rows.append(("behaviour (dataset)", mean, float(np.std(data_returns)), _normalized(dataset, mean)))
        baselines["behaviour (dataset episodes)"] = mean
    rows.append(("random", random_mean, random_std, _normalized(dataset, random_mean)))
    baselines["random policy"] = random_mean
    print(f"| {'policy':<20} | {'return (' + str(args.eval_episodes) + ' episodes)':>20} | {'normalized':>10} |")
    print(f"|{'-' * 22}|{'-' * 22}|{'-' * 12}|")
    for name, mean, std, score in rows:
        shown = f"{score:10.1f}" if score is not None else f"{'n/a':>10}"
        print(f"| {name:<20} | {mean:9.1f} ± {std:8.1f} | {shown} |")
    if callback is not None and callback.evaluations_timesteps:
        results = np.asarray(callback.evaluations_results)
        curve = plot_curves(
            {args.algo: (callback.evaluations_timesteps, results.mean(axis=1), results.std(axis=1))},
            output / "learning_curve.png",
            title=f"{args.algo} on {dataset}",
            baselines=baselines,
        )
        print(f"learning curve: {curve}")
    return 0


def _save_atomically(model: Any, path: Path) -> Path:
    """
    ``model.save`` into a temporary file beside ``path``, then ``os.replace``: ``path`` is the previous file or
    the complete new one, never a partial zip. A second Ctrl-C while it writes waits until the file is in place.
    """
    import os
    import signal
    import threading
    import uuid

    # a fresh name beside it (same file system, so os.replace is atomic), created by the save with the umask's mode
    temporary = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}.zip")
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    return path


def _dataset_episode_returns(dataset: Any) -> Any:
    from sb3_offline.collect import episode_returns
    from sb3_offline.datasets import load_transitions

    return episode_returns(load_transitions(dataset))


def _normalized(dataset: Any, value: float) -> float | None:
    from sb3_offline.evaluation import reference_scores

    scores = reference_scores(dataset)
    if scores is None or scores[0] == scores[1]:
        return None
    return 100.0 * (value - scores[0]) / (scores[1] - scores[0])


def cmd_evaluate(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from sb3_offline.datasets import recover_env
    from sb3_offline.evaluation import evaluate, reference_scores
    from sb3_offline.ope import load_model

    model = load_model(args.model, algo=args.algo, device=args.device)
    dataset = args.dataset if args.dataset is not None else getattr(model, "dataset", None)
    if dataset is not None and args.dataset is None:
        try:  # the checkpoint's own dataset, for its reference scores: it may not be on this machine
            reference_scores(dataset)
        except (FileNotFoundError, ValueError) as error:
            print(f"normalized score: n/a (the model's dataset {dataset!r} cannot be read: {error})")
            dataset = None
    if args.env is not None:
        env = gym.make(args.env)
    elif dataset is not None:
        env = recover_env(dataset)
    else:
        raise ValueError(f"--env: expected a gymnasium id (the checkpoint {args.model} records no readable dataset)")
    if hasattr(model, "dataset") and args.dataset is None:
        model.dataset = dataset  # evaluate() reads the model's own dataset for reference scores: only a readable one
    result = evaluate(
        model, env, n_episodes=args.episodes, dataset=dataset, deterministic=not args.stochastic, seed=args.seed
    )
    env_id = env.spec.id if env.spec is not None else "env"
    score = f"{result.normalized_score:.1f}" if result.normalized_score is not None else "n/a"
    print(
        f"{type(model).__name__} {args.model} on {env_id}: return {result.mean_return:.1f} ± {result.std_return:.1f} "
        f"over {args.episodes} episodes; normalized score {score}"
    )
    return 0


def cmd_ope(args: argparse.Namespace) -> int:
    from sb3_offline.ope.report import evaluate_checkpoints, format_table, plot_report, summarize, write_csv

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    fqe_kwargs: dict[str, Any] = dict(batch_size=args.batch_size, cuda_graphs=not args.no_cuda_graphs)
    if args.net_arch:
        fqe_kwargs["policy_kwargs"] = dict(net_arch=[int(n) for n in args.net_arch.split(",")])
    reports = evaluate_checkpoints(
        args.checkpoints,
        args.dataset,
        validation=args.validation,
        env_id=args.env,
        steps=args.steps,
        gamma=args.gamma,
        n_episodes=args.episodes,
        output=output,
        device=args.device,
        seed=args.seed,
        algo=args.algo,
        fqe_kwargs=fqe_kwargs,
        progress_bar=args.progress_bar,
        verbose=args.verbose,
    )
    print(format_table(reports))
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


def cmd_collect(args: argparse.Namespace) -> int:
    from sb3_offline.collect import collect_dataset

    if (args.ref_min is None) != (args.ref_max is None):
        given, missing = ("--ref-min", "--ref-max") if args.ref_max is None else ("--ref-max", "--ref-min")
        print(f"sb3-offline collect: error: {missing}: expected with {given} (both or neither)", file=sys.stderr)
        return 2
    if args.ref_min is not None and args.no_ref_scores:
        print("sb3-offline collect: error: --no-ref-scores: not with --ref-min/--ref-max", file=sys.stderr)
        return 2
    result = collect_dataset(
        args.env,
        args.protocol,
        args.steps,
        algo=args.algo,
        dataset_id=args.dataset_id,
        seed=args.seed,
        expert_steps=args.expert_steps,
        ref_episodes=args.ref_episodes,
        overwrite=args.overwrite,
        progress_bar=not args.no_progress_bar,
        ref_min=args.ref_min,
        ref_max=args.ref_max,
        ref_scores=not args.no_ref_scores,
    )
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
    print(
        f"wrote '{result.dataset_id}': {len(result.transitions)} transitions of {args.env} "
        f"({args.protocol}, {args.algo}) "
        f"in {result.seconds:.0f} s; behaviour return {result.behaviour_return:.1f}{normalized}; {written}"
    )
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from sb3_offline.plotting import plot_value_estimates

    runs = {Path(run).name if Path(run).is_dir() else Path(run).parent.name: run for run in args.runs}
    print(f"wrote {plot_value_estimates(runs, args.output)}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from sb3_offline.datasets import record_transitions

    data = record_transitions(args.env, args.steps, seed=args.seed, progress_bar=True)
    where = _write_dataset(data, args.output, overwrite=args.overwrite)
    print(f"wrote {len(data)} transitions of {args.env} to {where}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    from sb3_offline.datasets.packaged import packaged_datasets

    local = minari.list_local_datasets()
    print(f"Minari datasets in {get_dataset_path()}:")
    if not local:
        print("  (none)")
    for dataset_id, meta in sorted(local.items()):
        steps, episodes = meta.get("total_steps", "?"), meta.get("total_episodes", "?")
        print(f"  {dataset_id:<40} {steps:>10} steps  {episodes:>6} episodes")
    shipped = [d for d in packaged_datasets() if d not in local]
    if shipped:
        print("Shipped with sb3-offline (copied into the folder above on first use):")
        for dataset_id in shipped:
            print(f"  {dataset_id}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
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


def cmd_convert(args: argparse.Namespace) -> int:
    from sb3_offline.datasets.convert import convert_dataset

    result = convert_dataset(
        args.source,
        args.target,
        to=args.to,
        env=args.env,
        imitation_terminal=args.imitation_terminal,
        reward_fill=args.reward_fill,
        overwrite=args.overwrite,
    )
    data = result.transitions
    print(
        f"wrote {len(data)} transitions ({len(data.episode_slices())} episodes: {int(data.terminations.sum())} "
        f"terminations, {int(data.truncations.sum())} truncations) from {args.source} to {result.target} "
        f"({result.format})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    from sb3_offline.algorithms import ALGOS

    parser = argparse.ArgumentParser(prog="sb3-offline", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train on a dataset, save, evaluate, plot the learning curve")
    train.add_argument("--algo", choices=sorted(ALGOS), default=DEFAULT_ALGO)
    train.add_argument("--env", default=None, help="gymnasium id (default: recovered from the dataset)")
    train.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"Minari id or .hdf5/.npz/.pkl path (default: {DEFAULT_DATASET}, shipped)",
    )
    train.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="gradient steps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--no-cuda-graphs", action="store_true", help="on CUDA: every update eager, no CUDA graphs")
    train.add_argument("--output", default=None, help="output folder (default logs/<algo>_<env>)")
    train.add_argument("--eval-freq", type=int, default=500, help="evaluate every that many gradient steps (0: never)")
    train.add_argument("--eval-episodes", type=int, default=5)
    train.add_argument("--log-interval", type=int, default=1000)
    train.add_argument("--tensorboard-log", default=None)
    train.add_argument("--verbose", type=int, default=0)
    train.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stdout is a terminal)",
    )
    train.add_argument(
        "--validation-fraction",
        type=float,
        default=0.0,
        help="hold out this fraction of the episodes (whole ones, drawn with --seed; written to <output>/datasets), "
        "log offline metrics on them and save best_model.zip by TD error",
    )
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="the true return (and normalized score) of a saved model")
    evaluate.add_argument("model", help="an SB3 checkpoint (.zip) of any of our algorithms or SB3's")
    evaluate.add_argument("--env", default=None, help="gymnasium id (default: recovered from the model's dataset)")
    evaluate.add_argument("--dataset", default=None, help="dataset whose reference scores normalize the return")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    evaluate.add_argument("--algo", default=None, help="the checkpoint's algorithm, when it cannot be read from it")
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(func=cmd_evaluate)

    ope = sub.add_parser("ope", help="rank checkpoints by FQE on a dataset (and compare with the true return)")
    ope.add_argument("checkpoints", nargs="+", help="SB3 checkpoints (.zip), e.g. logs/run_a/*.zip logs/run_b/*.zip")
    ope.add_argument("--dataset", required=True, help="FQE's data: Minari id or .hdf5/.npz/.pkl path")
    ope.add_argument("--validation", default=None, help="held-out episodes for the metrics (default: --dataset)")
    ope.add_argument("--env", default=None, help="gymnasium id: also roll each policy out for its true return")
    ope.add_argument("--steps", type=int, default=10_000, help="FQE gradient steps per checkpoint")
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
    ope.add_argument("--verbose", type=int, default=0)
    ope.set_defaults(func=cmd_ope)

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

    record = sub.add_parser("record", help="record random-policy transitions of an env")
    record.add_argument("--env", default="Pendulum-v1")
    record.add_argument("--steps", type=int, default=10_000)
    record.add_argument("--seed", type=int, default=0)
    record.add_argument("--output", required=True, help="a .hdf5 or .npz path, or a Minari id")
    record.add_argument("--overwrite", action="store_true")
    record.set_defaults(func=cmd_record)

    plot = sub.add_parser("plot", help="draw the extrapolation-error picture from runs' value_estimates.csv")
    plot.add_argument("runs", nargs="+", help="run folders (or their value_estimates.csv), one line pair each")
    plot.add_argument("--output", default="value_estimates.png", help="the PNG to write")
    plot.set_defaults(func=cmd_plot)

    datasets = sub.add_parser("datasets", help="list the local Minari datasets")
    datasets.set_defaults(func=cmd_datasets)

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
    export.add_argument("--algo", default=None, help="the checkpoint's algorithm, when it cannot be read from it")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # rl-zoo3 runs (sb3_offline.zoo): `enjoy`, and `train` given an option only rl-zoo3's train has
    # (-f, -conf, -n, -params, -optimize, -tb, --eval-freq, --storage, ...), e.g.
    # `sb3-offline train --algo bcq --env Pendulum-v1 -f logs/` = `python -m sb3_offline.zoo train ...`.
    from sb3_offline.zoo import wants_zoo

    if wants_zoo(argv):
        from sb3_offline.zoo import main as zoo_main
        from sb3_offline.zoo import progress_options

        return zoo_main(progress_options(argv))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # train saves its checkpoint itself; collect and record write all or nothing
        print(f"\nsb3-offline {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
