"""
``sb3-offline train``: an algorithm trained on a dataset for a number of gradient steps, in three steps.

- **build** (:func:`build_training`): the arguments (``-params``, ``--config``: :mod:`sb3_offline.cli.hyperparams`)
  -> the env, a new run folder ``<output>/<algo>/<env>_<n>`` (rl-zoo3's layout, with ``args.yml`` and
  ``config.yml``), the training data (the held-out split with ``--validation-fraction``), the model and its
  callbacks;
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

from sb3_offline.cli import hyperparams
from sb3_offline.cli.data import add_download_option, download_if_asked

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
        default=None,
        help=f"Minari id or .hdf5/.npz/.pkl path (default: the config's dataset, else {DEFAULT_DATASET}, shipped)",
    )
    train.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"gradient steps (default: the config's n_timesteps, else {DEFAULT_STEPS})",
    )
    train.add_argument(
        "-params",
        "--hyperparams",
        nargs="+",
        default=[],
        metavar="KEY:VALUE",
        help="constructor arguments of the algorithm, rl-zoo3's syntax: batch_size:64 "
        'policy_kwargs:"dict(net_arch=[64, 64])" (typed from the constructor; a wrong key lists the valid ones)',
    )
    train.add_argument(
        "-conf",
        "--conf-file",
        "--config",
        dest="config",
        default=None,
        help="rl-zoo3 hyper-parameter file (.yml): an entry per env id (or 'default'), or the settings themselves; "
        "-params overrides it, --steps its n_timesteps, --dataset its dataset",
    )
    add_download_option(train)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--no-cuda-graphs", action="store_true", help="on CUDA: every update eager, no CUDA graphs")
    train.add_argument(
        "--output",
        default="logs",
        help="log folder (rl-zoo3's -f): each run in a new <output>/<algo>/<env>_<n>, with <env>.zip and "
        "<env>/args.yml, <env>/config.yml (default: logs)",
    )
    train.add_argument("--eval-freq", type=int, default=500, help="evaluate every that many gradient steps (0: never)")
    train.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="episodes per evaluation (default 10, as SB3's evaluate_policy and `sb3-offline evaluate`)",
    )
    train.add_argument(
        "--eval-seed",
        type=int,
        default=0,
        help="seed of every evaluation's reset (default 0, as `sb3-offline evaluate`): the same checkpoint gets the "
        "same score in the table, the learning curve and `sb3-offline evaluate`",
    )
    train.add_argument("--log-interval", type=int, default=1000)
    train.add_argument("--tensorboard-log", default=None)
    train.add_argument("--verbose", type=int, default=0)
    train.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stdout is a terminal; without one, a time estimate and a line per "
        "evaluation: step, return, normalized score, elapsed, time left)",
    )
    train.add_argument(
        "--validation-fraction",
        type=float,
        default=0.0,
        help="hold out this fraction of the episodes (whole ones, drawn with --seed; written to <run>/datasets), "
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
    :param output: the run folder: the checkpoint, evaluations and plots
    :param callbacks: what ``learn`` is given
    :param eval_callback: the ``SeededEvalCallback`` (SB3's ``EvalCallback``) among them (``None`` without evaluations)
    :param offline_eval: the ``OfflineEvalCallback`` on the held-out episodes among them (``None`` without them)
    """

    model: Any
    env_id: str
    dataset: Any
    output: Path
    callbacks: list[Any]
    eval_callback: Any = None
    offline_eval: Any = None

    @property
    def checkpoint(self) -> Path:
        """``<run>/<env>.zip``, where rl-zoo3 saves its model."""
        return self.output / f"{self.env_id}.zip"


def build_training(args: argparse.Namespace) -> Training:
    """
    The env, run folder, training data, model and callbacks of a ``train`` command line. Resolves ``args.env``,
    ``args.dataset`` and ``args.steps`` (flag, else the ``--config`` entry, else the default) and writes the
    run's ``args.yml`` and ``config.yml``.
    """
    import gymnasium as gym

    from sb3_offline.algorithms import ALGOS

    algo_class: Any = ALGOS[args.algo]
    env, settings = resolve_settings(args, algo_class)
    evaluated = hyperparams.evaluate_settings(settings)  # config.yml keeps the text, as rl-zoo3's does
    env_id = args.env
    output = hyperparams.new_run_folder(args.output, args.algo, env_id)
    print(f"run folder: {output}")
    dataset, validation = _split(args, output)
    policy = evaluated.pop("policy", None) or (
        "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy"
    )
    cuda_graphs = bool(evaluated.pop("cuda_graphs", True)) and not args.no_cuda_graphs
    config = hyperparams.resolved_hyperparams(
        algo_class, settings, n_timesteps=args.steps, policy=policy, dataset=args.dataset, cuda_graphs=cuda_graphs
    )
    model = algo_class(
        policy,
        env,
        dataset=dataset,
        device=args.device,
        seed=args.seed,
        verbose=args.verbose,
        tensorboard_log=args.tensorboard_log,
        cuda_graphs=cuda_graphs,
        **evaluated,
    )
    # rl-zoo3's enjoy reads env_kwargs from args.yml: with it, `sb3-offline zoo enjoy -f <output>` runs this run
    arguments = {key: value for key, value in vars(args).items() if key != "func"} | {"env_kwargs": None}
    hyperparams.write_yaml_atomically(output / env_id / "args.yml", arguments)
    hyperparams.write_yaml_atomically(output / env_id / "config.yml", config)
    assert model.replay_buffer is not None
    print(f"{args.algo} on {dataset}: {model.replay_buffer.size()} transitions, device {model.device}")
    training = Training(model, env_id, dataset, output, callbacks=[])
    _add_callbacks(training, args, validation)
    return training


def resolve_settings(args: argparse.Namespace, algo_class: Any) -> tuple[Any, dict[str, Any]]:
    """
    The env and the algorithm's settings (the ``--config`` entry, then ``-params``) of a ``train`` command line;
    ``args.env``, ``args.dataset`` and ``args.steps`` set from the flags, else the settings, else the defaults.

    :raises ValueError: a wrong ``-params`` key or value, a config file without an entry for the env
    """
    import gymnasium as gym

    from sb3_offline.datasets import recover_env

    env = gym.make(args.env) if args.env else recover_env(args.dataset) if args.dataset else None
    env_id = env.spec.id if env is not None and env.spec is not None else args.env
    settings: dict[str, Any] = {}
    if args.config:
        settings, entry = hyperparams.read_config(args.config, env_id, args.algo, algo_class)
        env_id = env_id or entry
    settings.update(hyperparams.parse_params(args.algo, algo_class, args.hyperparams))
    dataset, steps = settings.pop("dataset", None), settings.pop("n_timesteps", None)
    args.dataset = args.dataset or dataset or DEFAULT_DATASET
    args.steps = int(args.steps if args.steps is not None else steps if steps is not None else DEFAULT_STEPS)
    if env is None:
        env = gym.make(env_id) if env_id else recover_env(args.dataset)
    args.env = env.spec.id if env.spec is not None else "env"
    return env, settings


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
    """
    SB3's ``EvalCallback`` (every evaluation from the same seeded reset: :class:`SeededEvalCallback`) and the
    value-estimate diagnostic in the env; offline metrics on held-out episodes.
    """
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor

    from sb3_offline.callbacks import SeededEvalCallback, ValueEstimateCallback

    if args.eval_freq > 0 and args.eval_episodes > 0:
        training.eval_callback = SeededEvalCallback(
            Monitor(gym.make(training.env_id)),
            seed=args.eval_seed,
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
    ``model.learn`` for ``--steps`` gradient steps, then ``<run>/<env>.zip``. Ctrl-C saves
    ``<run>/<env>_interrupted.zip`` instead (``learn(..., reset_num_timesteps=False)`` continues it).

    :return: whether it ran to the end (``False``: interrupted)
    """
    model = training.model
    progress_bar = sys.stdout.isatty() if args.progress_bar is None else args.progress_bar
    callbacks = training.callbacks
    if not progress_bar:  # no bar to show the time: a time estimate, then a line per evaluation
        from sb3_offline.cli.progress import ProgressLines
        from sb3_offline.evaluation import reference_scores

        callbacks = [*callbacks, ProgressLines(args.steps, training.eval_callback, reference_scores(training.dataset))]
    print(f"training for {args.steps} gradient steps (Ctrl-C: save a checkpoint of where it stopped)", flush=True)
    start = time.perf_counter()
    try:
        model.learn(
            total_timesteps=args.steps,
            callback=callbacks,
            progress_bar=progress_bar,
            log_interval=args.log_interval,
        )
    except KeyboardInterrupt:
        path = save_atomically(model, training.output / f"{training.env_id}_interrupted.zip")
        print(
            f"\ninterrupted after {model.num_timesteps} of {args.steps} gradient steps; saved {path} "
            f"(load it with {type(model).__name__}.load; learn(..., reset_num_timesteps=False) continues it)",
            flush=True,
        )
        return False
    seconds = time.perf_counter() - start
    saved = save_atomically(model, training.checkpoint)
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
    scores (the trained policy and a random policy over the same seeded episodes in the env, the behaviour
    policy over the dataset's complete episodes) and ``learning_curve.png``.
    """
    offline_eval = training.offline_eval
    if offline_eval is not None and offline_eval.best_value is not None:
        print(
            f"best on the held-out episodes by {offline_eval.best_metric}: {offline_eval.best_value:.4g}; "
            f"saved {training.output / 'best_model'}.zip"
        )
    if args.eval_episodes <= 0:
        return
    rows, baselines, final = _comparison(training, args)
    print(
        f"evaluated in {training.env_id} from reset seed {args.eval_seed}, as `sb3-offline evaluate "
        f"{training.checkpoint} --episodes {args.eval_episodes} --seed {args.eval_seed}` does"
    )
    print(f"| {'policy':<20} | {'episodes':<18} | {'return':>20} | {'normalized':>10} |")
    print(f"|{'-' * 22}|{'-' * 20}|{'-' * 22}|{'-' * 12}|")
    for name, episodes, mean, std, score in rows:
        shown = f"{score:10.1f}" if score is not None else f"{'n/a':>10}"
        print(f"| {name:<20} | {episodes:<18} | {mean:9.1f} ± {std:8.1f} | {shown} |")
    _plot_learning_curve(training, args, baselines, final)


def _comparison(
    training: Training, args: argparse.Namespace
) -> tuple[list[tuple[str, str, float, float, float | None]], dict[str, float], Any]:
    """
    The table's rows ``(policy, episodes, mean, std, normalized)``, the learning curve's baselines and the final
    policy's evaluation (:func:`~sb3_offline.evaluation.evaluate`, the seeded resets of the learning curve's).
    """
    import gymnasium as gym
    import numpy as np

    from sb3_offline.common.episodes import episode_returns
    from sb3_offline.datasets import load_transitions
    from sb3_offline.evaluation import evaluate, evaluate_callable, reference_scores

    seed, n_episodes, dataset = args.eval_seed, args.eval_episodes, training.dataset
    final = evaluate(training.model, gym.make(training.env_id), n_episodes=n_episodes, seed=seed)
    data = load_transitions(dataset)
    data_returns = episode_returns(data.rewards, data.episode_ends, complete_only=True)
    random_mean, random_std = evaluate_callable(gym.make(training.env_id), None, n_episodes, seed=seed)
    scores = reference_scores(dataset)
    in_env = f"{n_episodes} in the env"
    rows = [(args.algo, in_env, final.mean_return, final.std_return, final.normalized_score)]
    baselines: dict[str, float] = {}
    if len(data_returns):
        mean, std = float(np.mean(data_returns)), float(np.std(data_returns))
        rows.append(("behaviour", f"{len(data_returns)} in the dataset", mean, std, _normalized(scores, mean)))
        baselines["behaviour (dataset episodes)"] = mean
    rows.append(("random", in_env, random_mean, random_std, _normalized(scores, random_mean)))
    baselines["random policy"] = random_mean
    return rows, baselines, final


def _normalized(scores: tuple[float, float] | None, value: float) -> float | None:
    """D4RL's normalized score of ``value`` (``None`` without two different reference scores)."""
    from sb3_offline.common.episodes import normalized_return

    if scores is None or scores[0] == scores[1]:
        return None
    return float(normalized_return(value, *scores))  # type: ignore[arg-type]


def _plot_learning_curve(training: Training, args: argparse.Namespace, baselines: dict[str, float], final: Any) -> None:
    """
    ``learning_curve.png``: the evaluations' mean and std against the gradient steps, with the baselines; its last
    point is the final policy's evaluation, the table's (added when the run did not end on an evaluation).
    """
    import numpy as np

    from sb3_offline.plotting import plot_curves

    callback = training.eval_callback
    if callback is None or not callback.evaluations_timesteps:
        return
    timesteps, results = list(callback.evaluations_timesteps), [list(r) for r in callback.evaluations_results]
    if timesteps[-1] != training.model.num_timesteps:
        timesteps.append(training.model.num_timesteps)
        results.append(list(final.returns))
    means, stds = [float(np.mean(r)) for r in results], [float(np.std(r)) for r in results]
    curve = plot_curves(
        {args.algo: (timesteps, means, stds)},
        training.output / "learning_curve.png",
        title=f"{args.algo} on {training.dataset}",
        baselines=baselines,
    )
    print(f"learning curve: {curve}")


def cmd_train(args: argparse.Namespace) -> int:
    """
    ``sb3-offline train``: build, run, report; 130 when Ctrl-C stopped it (its checkpoint saved), 2 (argparse's
    status) for a wrong ``-params`` or ``--config``.
    """
    download_if_asked(args)
    try:
        training = build_training(args)
    except hyperparams.SettingsError as error:
        print(f"sb3-offline train: error: {error}", file=sys.stderr)
        return 2
    if not run_training(training, args):
        return INTERRUPTED
    report_training(training, args)
    return 0
