"""
The ``sb3-offline`` command.

- ``sb3-offline train``: train an algorithm on a dataset for a number of gradient steps, save the
  SB3 checkpoint and evaluate it against a uniformly random policy. With no ``--dataset``, a small
  dataset of random Pendulum-v1 transitions is recorded once into the local Minari folder, so the
  default run needs no download.
- ``sb3-offline record``: record transitions of a random policy into ``.hdf5``, ``.npz`` or a Minari id.
- ``sb3-offline datasets``: list the Minari datasets on local disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The dataset the default ``train`` uses: random Pendulum-v1 transitions, recorded locally.
DEFAULT_DATASET = "sb3-offline/pendulum-random-v0"
DEFAULT_DATASET_STEPS = 20_000


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


def ensure_default_dataset(verbose: bool = True) -> str:
    """Record :data:`DEFAULT_DATASET` into the local Minari folder if it is not there yet."""
    import minari

    from sb3_offline.datasets import record_transitions

    if DEFAULT_DATASET not in minari.list_local_datasets():
        if verbose:
            print(f"Recording {DEFAULT_DATASET_STEPS} random Pendulum-v1 transitions as '{DEFAULT_DATASET}'")
        data = record_transitions("Pendulum-v1", DEFAULT_DATASET_STEPS, seed=0, progress_bar=verbose)
        _write_dataset(data, DEFAULT_DATASET, overwrite=False)
    return DEFAULT_DATASET


def cmd_train(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from stable_baselines3.common.evaluation import evaluate_policy

    from sb3_offline.algorithms import ALGOS
    from sb3_offline.datasets import recover_env
    from sb3_offline.evaluation import evaluate_callable

    algo_class: Any = ALGOS[args.algo]
    dataset = args.dataset or ensure_default_dataset()
    env = gym.make(args.env) if args.env else recover_env(dataset)
    model = algo_class(
        "MultiInputPolicy" if isinstance(env.observation_space, gym.spaces.Dict) else "MlpPolicy",
        env,
        dataset=dataset,
        device=args.device,
        seed=args.seed,
        verbose=args.verbose,
        tensorboard_log=args.tensorboard_log,
    )
    assert model.replay_buffer is not None
    print(f"{args.algo} on {dataset}: {model.replay_buffer.size()} transitions, device {model.device}")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=args.progress_bar, log_interval=args.log_interval)
    seconds = time.perf_counter() - start
    output = Path(args.output or f"logs/{args.algo}_{env.spec.id if env.spec else 'env'}")
    output.parent.mkdir(parents=True, exist_ok=True)
    model.save(output)
    print(f"{args.steps} gradient steps in {seconds:.1f} s ({args.steps / seconds:.0f}/s); saved {output}.zip")

    if args.eval_episodes > 0:
        from stable_baselines3.common.monitor import Monitor

        eval_env = Monitor(gym.make(env.spec.id) if env.spec is not None else env)
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
        random_mean, random_std = evaluate_callable(eval_env, None, args.eval_episodes, seed=args.seed)
        print(f"{'policy':<10} {'return (mean ± std over ' + str(args.eval_episodes) + ' episodes)'}")
        print(f"{args.algo:<10} {mean:9.1f} ± {std:.1f}")
        print(f"{'random':<10} {random_mean:9.1f} ± {random_std:.1f}")
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

    local = minari.list_local_datasets()
    print(f"Minari datasets in {get_dataset_path()}:")
    if not local:
        print("  (none)")
    for dataset_id, meta in sorted(local.items()):
        steps, episodes = meta.get("total_steps", "?"), meta.get("total_episodes", "?")
        print(f"  {dataset_id:<40} {steps:>10} steps  {episodes:>6} episodes")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from sb3_offline.algorithms import ALGOS

    parser = argparse.ArgumentParser(prog="sb3-offline", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train on a dataset, save, evaluate")
    train.add_argument("--algo", choices=sorted(ALGOS), default="batch_ddpg")
    train.add_argument("--env", default=None, help="gymnasium id (default: recovered from the dataset)")
    train.add_argument(
        "--dataset", default=None, help=f"Minari id or .hdf5/.npz/.pkl path (default: {DEFAULT_DATASET}, made locally)"
    )
    train.add_argument("--steps", type=int, default=5_000, help="gradient steps")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--output", default=None, help="checkpoint path (default logs/<algo>_<env>)")
    train.add_argument("--eval-episodes", type=int, default=5)
    train.add_argument("--log-interval", type=int, default=1000)
    train.add_argument("--tensorboard-log", default=None)
    train.add_argument("--verbose", type=int, default=0)
    train.add_argument("--progress-bar", action="store_true")
    train.set_defaults(func=cmd_train)

    record = sub.add_parser("record", help="record random-policy transitions of an env")
    record.add_argument("--env", default="Pendulum-v1")
    record.add_argument("--steps", type=int, default=10_000)
    record.add_argument("--seed", type=int, default=0)
    record.add_argument("--output", required=True, help="a .hdf5 or .npz path, or a Minari id")
    record.add_argument("--overwrite", action="store_true")
    record.set_defaults(func=cmd_record)

    datasets = sub.add_parser("datasets", help="list the local Minari datasets")
    datasets.set_defaults(func=cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # rl-zoo3 runs (sb3_offline.zoo): `enjoy`, and `train` given an option only rl-zoo3's train has
    # (-f, -conf, -n, -params, -optimize, -tb, --eval-freq, --storage, ...), e.g.
    # `sb3-offline train --algo bcq --env Pendulum-v1 -f logs/` = `python -m sb3_offline.zoo train ...`.
    from sb3_offline.zoo import wants_zoo

    if wants_zoo(argv):
        from sb3_offline.zoo import main as zoo_main

        return zoo_main(argv)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
