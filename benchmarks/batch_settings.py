"""
The BCQ paper's batch-settings experiment: BatchDDPG, BC, BCQ, AWAC, PLAS, LAPO, IQL, TD3+BC, CQL and
Cal-QL trained on datasets made with the ``final``, ``concurrent``, ``imitation`` and ``imperfect`` protocols.

    # the paper's budgets (GPU machine; hours)
    python -m benchmarks.batch_settings --envs Pendulum-v1 Hopper-v5 --transitions 1000000 --steps 300000
    # what RESULTS.md reports on 2 CPU cores
    python -m benchmarks.batch_settings --envs Pendulum-v1 --transitions 10000 --steps 5000 --seeds 0 1 2 --small-nets

Datasets are made once with ``sb3_offline.collect`` (ids ``<env>/<protocol>-v0`` in the local Minari
folder, reused when present); every (setting, algorithm, seed) run writes ``run.json``,
``evaluations.npz`` and ``value_estimates.csv`` under ``--output`` and is skipped when it exists,
so an interrupted benchmark resumes. Prints (and writes ``table.md``) mean ± std return and normalized
score per (setting, algorithm) over seeds, the interquartile mean of the normalized scores with its 95%
stratified bootstrap interval (``sb3_offline.statistics``, rliable's definitions), with the behaviour policy's
return (the dataset's episodes), then per algorithm the IQM over every (seed, setting) run and one
performance-profile PNG per env;
draws one learning-curve PNG and one value-estimate PNG per setting. Nothing here is a test.

``--d3rlpy`` (d3rlpy must be importable; it is no dependency of sb3-offline) adds d3rlpy's BCQ, AWAC,
PLAS, IQL, TD3+BC, CQL and Cal-QL, for those of them among ``--algos``, as rows ``d3rlpy-bcq``,
``d3rlpy-awac``, ``d3rlpy-plas``, ``d3rlpy-iql``, ``d3rlpy-td3bc``, ``d3rlpy-cql``, ``d3rlpy-calql``: trained
with our hyperparameters and network sizes (``benchmarks/d3rlpy_compat.py``, which also lists where d3rlpy's
algorithms differ) on the same datasets (``load_transitions``), for the same gradient steps (PLAS:
``--plas-vae-steps`` VAE steps first; CQL: ``--cql-bc-steps`` of them behaviour cloning, ours only: d3rlpy
has none) and seeds, evaluated every ``--eval-freq`` steps and at the end exactly as ours (SB3's
``evaluate_policy``), stored and resumed the same way and drawn in the same learning-curve PNGs; they have no
value-estimate curves.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from benchmarks.variants import VARIANTS, variant
from sb3_offline.callbacks import ValueEstimateCallback
from sb3_offline.collect import PROTOCOLS, collect_dataset, default_dataset_id, episode_returns
from sb3_offline.datasets import Transitions, load_transitions, save_minari
from sb3_offline.datasets.writers import atomic_path
from sb3_offline.evaluation import evaluate, reference_scores
from sb3_offline.plotting import plot_curves, plot_value_estimates
from sb3_offline.statistics import format_interval, interval_estimate, plot_performance_profiles

SETTINGS = ("final", "concurrent", "imitation", "imperfect")
#: datasets made by concatenating two protocols' datasets (each of ``--transitions``): heterogeneous data
MIXTURES: dict[str, tuple[str, str]] = {"random-expert": ("random", "expert")}
ALGO_ORDER = ("batch_ddpg", "bc", "bcq", "awac", "plas", "lapo", "iql", "td3bc", "cql", "calql", "rebrac")
NAMES = {
    "batch_ddpg": "BatchDDPG",
    "bc": "BC",
    "bcq": "BCQ",
    "awac": "AWAC",
    "plas": "PLAS",
    "lapo": "LAPO",
    "iql": "IQL",
    "td3bc": "TD3+BC",
    "cql": "CQL",
    "calql": "Cal-QL",
    "rebrac": "ReBRAC",
    **{name: row.label for name, row in VARIANTS.items()},
}
D3RLPY_PREFIX = "d3rlpy-"  # rows of d3rlpy's algorithms: "d3rlpy-bcq", "d3rlpy-awac", "d3rlpy-plas"
SMALL_NETS: dict[str, dict[str, Any]] = {
    "batch_ddpg": dict(net_arch=[64, 64]),
    "bc": dict(net_arch=[64, 64]),
    "bcq": dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128])),
    "awac": dict(net_arch=dict(pi=[64, 64], qf=[64, 64])),
    "plas": dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128])),
    "lapo": dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128], vf=[64, 64])),  # as PLAS, and V
    "iql": dict(net_arch=[64, 64]),  # actor, critics and value
    "td3bc": dict(net_arch=[64, 64]),  # actor and critics
    "cql": dict(net_arch=[64, 64]),  # actor and critics
    "calql": dict(net_arch=[64, 64]),  # actor and critics (the authors' critics are twice as deep as the actor)
    "rebrac": dict(net_arch=[64, 64, 64]),  # actor and critics, the authors' depth
}


def ensure_dataset(env_id: str, setting: str, args: argparse.Namespace) -> str:
    import minari

    dataset_id = default_dataset_id(env_id, setting)
    if setting in MIXTURES and dataset_id not in minari.list_local_datasets():
        parts = [load_transitions(ensure_dataset(env_id, part, args)) for part in MIXTURES[setting]]
        mixture = Transitions.concatenate(parts)  # the metadata (reference scores) of the first part: the same env's
        save_minari(mixture, dataset_id, algorithm_name=f"mixture of {' and '.join(MIXTURES[setting])}")
        print(f"made {dataset_id}: {len(mixture)} transitions ({' + '.join(str(len(p)) for p in parts)})")
    elif dataset_id not in minari.list_local_datasets():
        result = collect_dataset(
            env_id, setting, args.transitions, algo=args.behaviour_algo, expert_steps=args.expert_steps, seed=0
        )
        print(f"collected {dataset_id}: {len(result.transitions)} transitions in {result.seconds:.0f} s")
    return dataset_id


def write_text(path: Path, text: str) -> None:
    """A text file written whole or not at all (``sb3_offline.datasets.writers.atomic_path``)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def _write_record(path: Path, record: dict) -> None:
    """``run.json``, the mark of a finished run, written whole or not at all."""
    write_text(path, json.dumps(record))


def run_one(env_id: str, dataset_id: str, algo: str, seed: int, folder: Path, args: argparse.Namespace) -> dict:
    result_path = folder / "run.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    row = variant(algo)
    base = row.algo
    kwargs: dict[str, Any] = dict(row.kwargs)
    kwargs["policy_kwargs"] = dict(SMALL_NETS[base]) if args.small_nets else {}
    steps = args.steps
    if base == "cql":  # the behaviour-cloning warm-up counts within `steps`
        kwargs["bc_steps"] = args.cql_bc_steps
    if base == "calql":  # offline runs: no rows for online transitions
        kwargs["buffer_size"] = 0
    if base == "plas":  # the VAE is pre-trained first (its own steps), then the policy gets `steps`
        kwargs["vae_steps"] = args.plas_vae_steps
        steps += args.plas_vae_steps
    model = row.algorithm_class(
        row.policy_class, gym.make(env_id), dataset=dataset_id, seed=seed, device=args.device, **kwargs
    )
    callbacks: list[Any] = [
        EvalCallback(
            Monitor(gym.make(env_id)),
            n_eval_episodes=args.eval_episodes,
            eval_freq=args.eval_freq,
            log_path=str(folder),
        )
    ]
    if args.save_checkpoints:  # for benchmarks/ope_checkpoints.py: one model per evaluation
        callbacks.append(CheckpointCallback(args.eval_freq, str(folder / "checkpoints"), name_prefix="model"))
    if algo != "bc":
        callbacks.append(ValueEstimateCallback(env_id, args.eval_freq, args.eval_episodes, log_path=folder))
    start = time.perf_counter()
    model.learn(steps, callback=callbacks)
    seconds = time.perf_counter() - start
    final = evaluate(model, env_id, n_episodes=args.final_episodes, seed=10_000 + seed)
    record = {
        "env": env_id,
        "dataset": dataset_id,
        "algo": algo,
        "seed": seed,
        "steps": steps,
        "seconds": seconds,
        "return": final.mean_return,
        "normalized": final.normalized_score,
    }
    folder.mkdir(parents=True, exist_ok=True)
    _write_record(result_path, record)
    return record


def run_one_d3rlpy(env_id: str, dataset_id: str, algo: str, seed: int, folder: Path, args: argparse.Namespace) -> dict:
    """``run_one`` for ``algo = "d3rlpy-<ours>"``: d3rlpy's algorithm with our settings, the same outputs."""
    import d3rlpy

    from benchmarks.d3rlpy_runs import train_d3rlpy

    result_path = folder / "run.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    base = algo.removeprefix(D3RLPY_PREFIX)
    eval_env = DummyVecEnv([lambda: Monitor(gym.make(env_id))])  # what EvalCallback makes of our eval env
    timesteps: list[int] = []
    results: list[list[float]] = []
    lengths: list[list[int]] = []

    def evaluate_now(n_updates: int, policy: Any) -> None:
        returns, episode_lengths = evaluate_policy(
            policy, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True, return_episode_rewards=True
        )
        timesteps.append(n_updates)
        results.append(list(returns))  # type: ignore[arg-type]
        lengths.append(list(episode_lengths))  # type: ignore[arg-type]

    vae_steps = args.plas_vae_steps if base == "plas" else 0
    start = time.perf_counter()
    policy = train_d3rlpy(
        base,
        load_transitions(dataset_id),
        args.steps,
        seed,
        device=args.device,
        small_nets=args.small_nets,
        plas_vae_steps=vae_steps,
        action_space=gym.make(env_id).action_space,
        callback=evaluate_now,
        callback_freq=args.eval_freq,
    )
    seconds = time.perf_counter() - start
    final = evaluate(policy, env_id, n_episodes=args.final_episodes, dataset=dataset_id, seed=10_000 + seed)
    record = {
        "env": env_id,
        "dataset": dataset_id,
        "algo": algo,
        "seed": seed,
        "steps": args.steps + vae_steps,
        "seconds": seconds,
        "return": final.mean_return,
        "normalized": final.normalized_score,
        "d3rlpy": d3rlpy.__version__,
    }
    folder.mkdir(parents=True, exist_ok=True)
    if timesteps:  # as EvalCallback, which writes the file only once it has evaluated
        np.savez(folder / "evaluations.npz", timesteps=timesteps, results=results, ep_lengths=lengths)
    _write_record(result_path, record)
    return record


def _iqm_cell(normalized: list[float]) -> str:
    """The IQM of one row's normalized scores over seeds and its 95% stratified bootstrap interval (rliable's)."""
    if not normalized:
        return "n/a"
    return format_interval(*interval_estimate(normalized))


def _aggregate_lines(rows: list[tuple], output: Path) -> list[str]:
    """
    Per env and algorithm, the IQM of the normalized scores of every (seed, setting) run with its 95% stratified
    bootstrap interval (seeds resampled within each setting), and one performance-profile PNG per env.
    """
    lines = [
        "",
        "Aggregate over settings (IQM of all seeds x settings, normalized; 95% stratified bootstrap CI, rliable's):",
        "",
        "| env | algorithm | settings | runs | normalized IQM [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for env_id in dict.fromkeys(row[0] for row in rows):
        matrices: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(row[2] for row in rows if row[0] == env_id):
            columns = [row[5] for row in rows if row[0] == env_id and row[2] == name and row[5]]
            if not columns or len({len(c) for c in columns}) != 1:
                continue  # no normalized scores, or settings with different numbers of seeds
            matrix = np.array(columns, dtype=np.float64).T  # (seeds, settings)
            matrices[name] = matrix
            point, interval = interval_estimate(matrix)
            lines.append(
                f"| {env_id} | {name} | {matrix.shape[1]} | {matrix.size} | {format_interval(point, interval)} |"
            )
        if matrices:
            path = plot_performance_profiles(
                matrices, output / f"{env_id}_performance_profile.png", title=f"{env_id}: every setting and seed"
            )
            lines.append(f"\nPerformance profiles: `{path.name}`.")
    return lines


def make_parser(
    settings: tuple[str, ...], envs: tuple[str, ...], description: str, output: str
) -> argparse.ArgumentParser:
    """The command line of :func:`main`, with these defaults."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(envs))
    parser.add_argument("--settings", nargs="+", default=list(settings), choices=[*PROTOCOLS, *MIXTURES])
    parser.add_argument("--algos", nargs="+", default=list(ALGO_ORDER), choices=[*ALGO_ORDER, *VARIANTS])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--transitions", type=int, default=100_000, help="dataset size (training steps for final/concurrent)"
    )
    parser.add_argument("--expert-steps", type=int, default=None, help="expert training steps (default per env)")
    parser.add_argument("--behaviour-algo", default="td3", choices=["ddpg", "td3", "sac"])
    parser.add_argument("--steps", type=int, default=30_000, help="gradient steps per run (PLAS: after its VAE)")
    parser.add_argument("--plas-vae-steps", type=int, default=5_000)
    parser.add_argument(
        "--cql-bc-steps",
        type=int,
        default=0,
        help="CQL's behaviour-cloning steps, within --steps (default 0, CORL's and d3rlpy's; the authors: 40k of 1M)",
    )
    parser.add_argument("--eval-freq", type=int, default=1_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--final-episodes", type=int, default=10)
    parser.add_argument("--small-nets", action="store_true", help="64-64 networks instead of the papers' sizes")
    parser.add_argument(
        "--save-checkpoints",
        action="store_true",
        help="ours: save the model every --eval-freq steps under <run>/checkpoints (benchmarks.ope_checkpoints)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default=output)
    parser.add_argument(
        "--d3rlpy",
        action="store_true",
        help="also d3rlpy's bcq, awac, plas, iql, td3bc, cql, calql with our settings (rows d3rlpy-<algo>; d3rlpy "
        "must be importable)",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="train nothing: the table and PNGs of the runs already finished under --output (each row says its seeds)",
    )
    parser.add_argument(
        "--d3rlpy-algos",
        nargs="+",
        default=None,
        help="with --d3rlpy: the algorithms of --algos that get a d3rlpy row (default: all that d3rlpy has)",
    )
    parser.add_argument(
        "--d3rlpy-only",
        action="store_true",
        help="with --d3rlpy: run only the d3rlpy rows (a second process beside one running ours into the same "
        "--output; a last run with --d3rlpy then finds every run done and prints the whole table)",
    )
    return parser


def rows_to_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """``--algos``, with each d3rlpy row right after ours under ``--d3rlpy`` (bcq, d3rlpy-bcq, awac, ...)."""
    if args.d3rlpy_only and not args.d3rlpy:
        parser.error("--d3rlpy-only: expected --d3rlpy as well")
    if not args.d3rlpy:
        return list(args.algos)
    from benchmarks.d3rlpy_compat import D3RLPY_ALGOS, d3rlpy_available

    if not d3rlpy_available():
        parser.error("--d3rlpy: d3rlpy is not importable in this Python (it is no dependency of sb3-offline)")
    with_d3rlpy = set(D3RLPY_ALGOS if args.d3rlpy_algos is None else args.d3rlpy_algos)
    run_algos = [
        name
        for algo in args.algos
        for name in (algo, D3RLPY_PREFIX + algo)[: 1 + (algo in D3RLPY_ALGOS and algo in with_d3rlpy)]
    ]
    if args.d3rlpy_only:
        run_algos = [name for name in run_algos if name.startswith(D3RLPY_PREFIX)]
    return run_algos


def run_setting(env_id: str, setting: str, run_algos: list[str], args: argparse.Namespace, output: Path) -> list[tuple]:
    """Every run of one (env, setting) (finished ones are read back), its two PNGs; the table rows, one per algo."""
    dataset_id = ensure_dataset(env_id, setting, args)
    behaviour = float(np.mean(episode_returns(load_transitions(dataset_id))))
    scores = reference_scores(dataset_id)
    curves, value_runs, rows = {}, {}, []
    for algo in run_algos:
        name = NAMES.get(algo, algo)
        run = run_one_d3rlpy if algo.startswith(D3RLPY_PREFIX) else run_one
        records = []
        seeds = [
            seed
            for seed in args.seeds
            if not args.table_only or (output / env_id / setting / algo / f"seed{seed}" / "run.json").exists()
        ]
        if not seeds:
            continue  # --table-only: no finished run of this algorithm here
        for seed in seeds:
            folder = output / env_id / setting / algo / f"seed{seed}"
            records.append(run(env_id, dataset_id, algo, seed, folder, args))
            print(f"{env_id} {setting:<10} {algo:<10} seed {seed}: {records[-1]['return']:8.1f}", flush=True)
        curve_files = [output / env_id / setting / algo / f"seed{s}" / "evaluations.npz" for s in seeds]
        if all(path.exists() for path in curve_files):  # none when a run is shorter than --eval-freq
            evaluations = [np.load(path) for path in curve_files]
            means = np.mean([e["results"].mean(axis=1) for e in evaluations], axis=0)
            stds = np.std([e["results"].mean(axis=1) for e in evaluations], axis=0)
            curves[name] = (evaluations[0]["timesteps"], means, stds)
        if algo != "bc" and run is run_one:
            value_runs[name] = output / env_id / setting / algo / f"seed{seeds[0]}"
        returns = [r["return"] for r in records]
        normalized = [r["normalized"] for r in records if r["normalized"] is not None]
        seconds = np.mean([r["seconds"] for r in records])
        rows.append(
            (
                env_id,
                setting,
                name,
                np.mean(returns),
                np.std(returns),
                normalized,
                behaviour,
                scores,
                seconds,
                len(seeds),
            )
        )
    plot_curves(
        curves,
        output / f"{env_id}_{setting}_curves.png",
        title=f"{env_id}, {setting}",
        baselines={"behaviour (dataset)": behaviour},
    )
    plot_value_estimates(value_runs, output / f"{env_id}_{setting}_values.png")
    return rows


def table_lines(rows: list[tuple], args: argparse.Namespace) -> list[str]:
    """The budget line and the table of every (env, setting, algorithm) row."""
    device = (
        th.cuda.get_device_name() if th.cuda.is_available() and args.device != "cpu" else platform.processor() or "CPU"
    )
    lines = [
        f"Budget: {args.transitions} transitions per dataset, {args.steps} gradient steps per run, seeds {args.seeds}, "
        f"{'64-64 networks' if args.small_nets else 'paper networks'}, device {device}."
        + (
            " Rows d3rlpy-*: d3rlpy's algorithms with our hyperparameters (benchmarks/d3rlpy_compat.py)."
            if args.d3rlpy
            else ""
        ),
        "",
        "| env | setting | algorithm | seeds | return (mean ± std over seeds) | normalized | normalized IQM [95% CI] "
        "| behaviour return | s/run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env_id, setting, name, mean, std, normalized, behaviour, _scores, seconds, n_seeds in rows:
        norm = f"{np.mean(normalized):.1f} ± {np.std(normalized):.1f}" if normalized else "n/a"
        lines.append(
            f"| {env_id} | {setting} | {name} | {n_seeds} | {mean:.1f} ± {std:.1f} | {norm} | {_iqm_cell(normalized)} "
            f"| {behaviour:.1f} | {seconds:.0f} |"
        )
    return lines


def main(
    argv: list[str] | None = None,
    settings: tuple[str, ...] = SETTINGS,
    envs: tuple[str, ...] = ("Pendulum-v1",),
    description: str = __doc__ or "",
    output: str = "results/batch_settings",
) -> None:
    """Run the benchmark; ``benchmarks.d4rl_style`` and ``benchmarks.heterogeneous`` call it with their datasets."""
    parser = make_parser(settings, envs, description, output)
    args = parser.parse_args(argv)
    run_algos = rows_to_run(args, parser)
    folder = Path(args.output)
    rows = [
        row
        for env_id in args.envs
        for setting in args.settings
        for row in run_setting(env_id, setting, run_algos, args, folder)
    ]
    lines = table_lines(rows, args) + _aggregate_lines(rows, folder)
    table = "\n".join(lines)
    print(table)
    write_text(folder / "table.md", table + "\n")


if __name__ == "__main__":
    main()
