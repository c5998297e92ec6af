"""
``sb3-offline train``: an algorithm trained on a dataset for a number of gradient steps, in three steps.

- **build** (:func:`build_training`): the arguments -> the env, the output folder, the training data (the
  held-out split with ``--validation-fraction``), the model and its callbacks;
- **run** (:func:`run_training`): ``model.learn``, its checkpoint saved atomically, and on Ctrl-C a checkpoint
  of where it stopped;
- **report** (:func:`report_training`): the final policy against the behaviour policy (the dataset's own
  complete episodes) and a random policy, as a table of returns and normalized scores, and the learning curve.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The dataset the default ``train`` uses: shipped inside the package (see ``sb3_offline.datasets.packaged``).
DEFAULT_DATASET = "pendulum/imperfect-v0"
DEFAULT_ALGO = "bcq"
DEFAULT_STEPS = 5_000
#: The exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def add_train_parser(sub: Any) -> None:
    """The ``train`` subcommand and its options."""
    from sb3_offline.algorithms import ALGOS

    train = sub.add_parser("train", help="train on a dataset, save, evaluate, plot the learning curve")
    train.add_argument("--algo", choices=sorted(ALGOS), default=DEFAULT_ALGO)
    train.add_argument("--env", default=None, help="gymnasium id (default: recovered from the dataset)")
    train.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"Minari id or .hdf5/.npz/.pkl path (default: {DEFAULT_DATASET}, shipped)",
    )
    train.add_argument("--download", action="store_true", help="fetch the Minari id from Minari's remote store first")
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


@dataclass
class Training:
    """
    What :func:`build_training` made of ``train``'s arguments.

    :param model: the algorithm, its replay buffer holding the training data
    :param env_id: the gymnasium id the evaluations make their envs of
    :param dataset: the training data (the training part of the split with ``--validation-fraction``)
    :param output: the folder of the checkpoint, evaluations and plots
    :param callbacks: what ``learn`` is given
    :param eval_callback: SB3's ``EvalCallback`` among them (``None`` without evaluations)
    :param offline_eval: the ``OfflineEvalCallback`` on the held-out episodes among them (``None`` without them)
    """

    model: Any
    env_id: str
    dataset: Any
    output: Path
    callbacks: list[Any]
    eval_callback: Any = None
    offline_eval: Any = None


def build_training(args: argparse.Namespace) -> Training:
    """The env, output folder, training data, model and callbacks of a ``train`` command line."""
    import gymnasium as gym

    from sb3_offline.algorithms import ALGOS
    from sb3_offline.datasets import recover_env

    env = gym.make(args.env) if args.env else recover_env(args.dataset)
    env_id = env.spec.id if env.spec is not None else "env"
    output = Path(args.output or f"logs/{args.algo}_{env_id}")
    output.mkdir(parents=True, exist_ok=True)
    dataset, validation = _split(args, output)
    algo_class: Any = ALGOS[args.algo]
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
    training = Training(model, env_id, dataset, output, callbacks=[])
    _add_callbacks(training, args, validation)
    return training


def _split(args: argparse.Namespace, output: Path) -> tuple[Any, Any]:
    """``(training data, held-out data)``: ``--dataset`` and ``None``, or its split by ``--validation-fraction``."""
    if not args.validation_fraction:
        return args.dataset, None
    from sb3_offline.ope import split_episodes

    split = split_episodes(
        args.dataset, args.validation_fraction, seed=args.seed, output=(output / "datasets").resolve(), overwrite=True
    )
    print(
        f"held out {len(split.validation_episodes)} of {split.n_episodes} episodes "
        f"({split.n_validation_transitions} transitions): training on {split.train}, validating on {split.validation}"
    )
    return split.train, split.validation


def _add_callbacks(training: Training, args: argparse.Namespace, validation: Any) -> None:
    """SB3's ``EvalCallback`` and the value-estimate diagnostic in the env; offline metrics on held-out episodes."""
    import gymnasium as gym
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.monitor import Monitor

    from sb3_offline.callbacks import ValueEstimateCallback

    if args.eval_freq > 0 and args.eval_episodes > 0:
        training.eval_callback = EvalCallback(
            Monitor(gym.make(training.env_id)),
            n_eval_episodes=args.eval_episodes,
            eval_freq=args.eval_freq,
            log_path=str(training.output),
            deterministic=True,
            verbose=0,
        )
        training.callbacks.append(training.eval_callback)
        if getattr(training.model.policy, "critic", None) is not None:
            # the extrapolation-error diagnostic next to the returns: value_estimates.csv, for `sb3-offline plot`
            diagnostic = ValueEstimateCallback(
                gym.make(training.env_id), args.eval_freq, args.eval_episodes, log_path=training.output
            )
            training.callbacks.append(diagnostic)
    if validation is not None:
        from sb3_offline.ope import OfflineEvalCallback

        # offline metrics on the held-out episodes; best_model.zip by the first metric with a direction
        training.offline_eval = OfflineEvalCallback(
            validation,
            eval_freq=args.eval_freq if args.eval_freq > 0 else args.log_interval,
            best_model_save_path=training.output,
            log_path=training.output,
            verbose=args.verbose,
        )
        training.callbacks.append(training.offline_eval)


def run_training(training: Training, args: argparse.Namespace) -> bool:
    """
    ``model.learn`` for ``--steps`` gradient steps, then ``<output>/<algo>.zip``. Ctrl-C saves
    ``<output>/<algo>_interrupted.zip`` instead (``learn(..., reset_num_timesteps=False)`` continues it).

    :return: whether it ran to the end (``False``: interrupted)
    """
    model = training.model
    progress_bar = sys.stdout.isatty() if args.progress_bar is None else args.progress_bar
    print(f"training for {args.steps} gradient steps (Ctrl-C: save a checkpoint of where it stopped)", flush=True)
    start = time.perf_counter()
    try:
        model.learn(
            total_timesteps=args.steps,
            callback=training.callbacks,
            progress_bar=progress_bar,
            log_interval=args.log_interval,
        )
    except KeyboardInterrupt:
        path = save_atomically(model, training.output / f"{args.algo}_interrupted.zip")
        print(
            f"\ninterrupted after {model.num_timesteps} of {args.steps} gradient steps; saved {path} "
            f"(load it with {type(model).__name__}.load; learn(..., reset_num_timesteps=False) continues it)",
            flush=True,
        )
        return False
    seconds = time.perf_counter() - start
    saved = save_atomically(model, training.output / f"{args.algo}.zip")
    print(f"{args.steps} gradient steps in {seconds:.1f} s ({args.steps / seconds:.0f}/s); saved {saved}")
    return True


def save_atomically(model: Any, path: Path) -> Path:
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


def report_training(training: Training, args: argparse.Namespace) -> None:
    """
    The best model on the held-out episodes; with ``--eval-episodes``, the table of returns and normalized
    scores (the trained policy, the dataset's complete episodes, a random policy) and ``learning_curve.png``.
    """
    offline_eval = training.offline_eval
    if offline_eval is not None and offline_eval.best_value is not None:
        print(
            f"best on the held-out episodes by {offline_eval.best_metric}: {offline_eval.best_value:.4g}; "
            f"saved {training.output / 'best_model'}.zip"
        )
    if args.eval_episodes <= 0:
        return
    from sb3_offline.common.text import plural

    rows, baselines = _comparison(training, args)
    print(f"| {'policy':<20} | {'return (' + plural(args.eval_episodes, 'episode') + ')':>20} | {'normalized':>10} |")
    print(f"|{'-' * 22}|{'-' * 22}|{'-' * 12}|")
    for name, mean, std, score in rows:
        shown = f"{score:10.1f}" if score is not None else f"{'n/a':>10}"
        print(f"| {name:<20} | {mean:9.1f} ± {std:8.1f} | {shown} |")
    _plot_learning_curve(training, args, baselines)


def _comparison(
    training: Training, args: argparse.Namespace
) -> tuple[list[tuple[str, float, float, float | None]], dict[str, float]]:
    """The table's rows ``(policy, mean, std, normalized)`` and the learning curve's baselines."""
    import gymnasium as gym
    import numpy as np

    from sb3_offline.common.episodes import episode_returns
    from sb3_offline.datasets import load_transitions
    from sb3_offline.evaluation import evaluate, evaluate_callable, reference_scores

    seed, n_episodes, dataset = args.seed + 1000, args.eval_episodes, training.dataset
    final = evaluate(training.model, gym.make(training.env_id), n_episodes=n_episodes, seed=seed)
    data = load_transitions(dataset)
    data_returns = episode_returns(data.rewards, data.episode_ends, complete_only=True)
    random_mean, random_std = evaluate_callable(gym.make(training.env_id), None, n_episodes, seed=seed)
    scores = reference_scores(dataset)
    rows = [(args.algo, final.mean_return, final.std_return, final.normalized_score)]
    baselines: dict[str, float] = {}
    if len(data_returns):
        mean = float(np.mean(data_returns))
        rows.append(("behaviour (dataset)", mean, float(np.std(data_returns)), _normalized(scores, mean)))
        baselines["behaviour (dataset episodes)"] = mean
    rows.append(("random", random_mean, random_std, _normalized(scores, random_mean)))
    baselines["random policy"] = random_mean
    return rows, baselines


def _normalized(scores: tuple[float, float] | None, value: float) -> float | None:
    """D4RL's normalized score of ``value`` (``None`` without two different reference scores)."""
    from sb3_offline.common.episodes import normalized_return

    if scores is None or scores[0] == scores[1]:
        return None
    return float(normalized_return(value, *scores))  # type: ignore[arg-type]


def _plot_learning_curve(training: Training, args: argparse.Namespace, baselines: dict[str, float]) -> None:
    """``learning_curve.png``: the evaluations' mean and std against the gradient steps, with the baselines."""
    import numpy as np

    from sb3_offline.plotting import plot_curves

    callback = training.eval_callback
    if callback is None or not callback.evaluations_timesteps:
        return
    results = np.asarray(callback.evaluations_results)
    curve = plot_curves(
        {args.algo: (callback.evaluations_timesteps, results.mean(axis=1), results.std(axis=1))},
        training.output / "learning_curve.png",
        title=f"{args.algo} on {training.dataset}",
        baselines=baselines,
    )
    print(f"learning curve: {curve}")


def cmd_train(args: argparse.Namespace) -> int:
    """``sb3-offline train``: build, run, report; 130 when Ctrl-C stopped it (its checkpoint saved)."""
    if args.download:
        from sb3_offline.datasets.minari import download_minari_dataset

        download_minari_dataset(args.dataset)
    training = build_training(args)
    if not run_training(training, args):
        return INTERRUPTED
    report_training(training, args)
    return 0
