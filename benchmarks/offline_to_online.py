"""
Offline -> online: each algorithm trains ``--offline-steps`` gradient steps on a dataset, then ``--online-steps``
env steps with ``learn_online`` (its own online schedule: SB3's ``train_freq``/``gradient_steps``, Cal-QL's
per-episode updates, AWAC's ``online_batch_size``), evaluated every ``--eval-freq`` env steps.

    # what RESULTS.md reports on 2 CPU cores (datasets of benchmarks/batch_settings.py, made if missing)
    python -m benchmarks.offline_to_online --env Pendulum-v1 --setting final --transitions 10000 \\
        --offline-steps 5000 --online-steps 5000 --seeds 0 1 2 --small-nets

Per algorithm it prints (and writes ``table.md``) the return after the offline phase, after the online phase,
the lowest evaluation in the first ``--dip-steps`` online steps and the dip (offline return minus that lowest
evaluation; positive: the policy got worse when it met the env), mean ± std over seeds, and draws the mean curve
of every algorithm (offline end at env step 0) as one PNG. Runs resume from ``run.json`` as in batch_settings.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor

from benchmarks.batch_settings import NAMES, SMALL_NETS, _write_record, ensure_dataset, write_text
from sb3_offline.algorithms import ALGOS
from sb3_offline.evaluation import evaluate
from sb3_offline.plotting import plot_curves

DEFAULT_ALGOS = ("awac", "iql", "cql", "calql")


def run_one(dataset_id: str, algo: str, seed: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    result_path = folder / "run.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    kwargs: dict[str, Any] = dict(policy_kwargs=dict(SMALL_NETS[algo]) if args.small_nets else {})
    # rows for the online transitions: the algorithms whose default buffer_size is 0 (offline only: CQL) get them
    kwargs["buffer_size"] = max(args.online_steps, 1)
    if algo == "cql":  # its behaviour-cloning warm-up counts offline and online updates alike
        kwargs["bc_steps"] = args.cql_bc_steps
    model = ALGOS[algo]("MlpPolicy", gym.make(args.env), dataset=dataset_id, seed=seed, **kwargs)
    start = time.perf_counter()
    model.learn(args.offline_steps)
    offline_seconds = time.perf_counter() - start
    offline = evaluate(model, args.env, n_episodes=args.final_episodes, seed=10_000 + seed)
    folder.mkdir(parents=True, exist_ok=True)
    callback = EvalCallback(
        Monitor(gym.make(args.env)),
        n_eval_episodes=args.eval_episodes,
        eval_freq=args.eval_freq,
        log_path=str(folder),
    )
    start = time.perf_counter()
    model.learn_online(args.online_steps, callback=callback)
    online_seconds = time.perf_counter() - start
    online = evaluate(model, args.env, n_episodes=args.final_episodes, seed=20_000 + seed)
    curve = np.load(folder / "evaluations.npz")
    early = curve["results"].mean(axis=1)[curve["timesteps"] <= args.dip_steps]
    lowest = float(min(early.min(), offline.mean_return)) if len(early) else offline.mean_return
    record = {
        "dataset": dataset_id,
        "algo": algo,
        "seed": seed,
        "offline_steps": args.offline_steps,
        "online_steps": args.online_steps,
        "offline_return": offline.mean_return,
        "online_return": online.mean_return,
        "lowest_early_return": lowest,
        "dip": offline.mean_return - lowest,
        "offline_seconds": offline_seconds,
        "online_seconds": online_seconds,
    }
    _write_record(result_path, record)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[1])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--setting", default="final", help="the dataset's protocol (benchmarks/batch_settings.py)")
    parser.add_argument("--algos", nargs="+", default=list(DEFAULT_ALGOS), choices=sorted(ALGOS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--transitions", type=int, default=10_000)
    parser.add_argument("--expert-steps", type=int, default=None)
    parser.add_argument("--behaviour-algo", default="td3", choices=["ddpg", "td3", "sac"])
    parser.add_argument("--offline-steps", type=int, default=5_000)
    parser.add_argument("--online-steps", type=int, default=5_000)
    parser.add_argument("--eval-freq", type=int, default=1_000, help="env steps between online evaluations")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--final-episodes", type=int, default=10)
    parser.add_argument("--dip-steps", type=int, default=2_000, help="the first online env steps the dip is read in")
    parser.add_argument("--small-nets", action="store_true")
    parser.add_argument(
        "--cql-bc-steps",
        type=int,
        default=0,
        help="CQL's behaviour-cloning updates, offline and online counted together (default 0, CORL's and "
        "d3rlpy's; CQL's own default is the authors' 40k, which would make every update of a short run cloning)",
    )
    parser.add_argument("--output", default="results/offline_to_online")
    args = parser.parse_args(argv)
    output = Path(args.output)
    dataset_id = ensure_dataset(args.env, args.setting, args)
    rows, curves = [], {}
    for algo in args.algos:
        records = []
        for seed in args.seeds:
            folder = output / args.env / args.setting / algo / f"seed{seed}"
            records.append(run_one(dataset_id, algo, seed, folder, args))
            r = records[-1]
            print(f"{algo:<6} seed {seed}: offline {r['offline_return']:8.1f} -> online {r['online_return']:8.1f}")
        evaluations = [
            np.load(output / args.env / args.setting / algo / f"seed{s}" / "evaluations.npz") for s in args.seeds
        ]
        offline = np.array([r["offline_return"] for r in records])
        per_seed = np.array([e["results"].mean(axis=1) for e in evaluations])
        steps = np.concatenate([[0], evaluations[0]["timesteps"]])
        values = np.concatenate([offline[:, None], per_seed], axis=1)
        curves[NAMES.get(algo, algo)] = (steps, values.mean(axis=0), values.std(axis=0))
        rows.append((NAMES.get(algo, algo), records))

    def cell(records: list[dict], key: str) -> str:
        values = [r[key] for r in records]
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}"

    nets = "64-64 networks" if args.small_nets else "paper networks"
    lines = [
        f"{args.env}, dataset `{dataset_id}`: {args.offline_steps} offline gradient steps, then "
        f"{args.online_steps} env steps online; seeds {args.seeds}; {nets}.",
        "",
        f"| algorithm | after offline | after online | lowest in first {args.dip_steps} online steps | dip | "
        "s offline | s online |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, records in rows:
        lines.append(
            f"| {name} | {cell(records, 'offline_return')} | {cell(records, 'online_return')} | "
            f"{cell(records, 'lowest_early_return')} | {cell(records, 'dip')} | "
            f"{np.mean([r['offline_seconds'] for r in records]):.0f} | "
            f"{np.mean([r['online_seconds'] for r in records]):.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    output.mkdir(parents=True, exist_ok=True)
    write_text(output / "table.md", table + "\n")
    plot_curves(
        curves,
        output / f"{args.env}_{args.setting}_offline_to_online.png",
        title=f"{args.env}, {args.setting}: offline, then online",
        xlabel="online env steps (0: the end of the offline phase)",
    )


if __name__ == "__main__":
    main()
