"""
Off-policy evaluation judged on the checkpoints of the batch-settings benchmark: for every checkpoint that
``python -m benchmarks.batch_settings --save-checkpoints`` saved, FQE's estimate of its value (fitted on the run's
own dataset) against the true discounted return rolled out in the env.

    # the checkpoints first (the datasets stay in the local Minari folder: keep MINARI_DATASETS_PATH the same)
    python -m benchmarks.batch_settings --envs Pendulum-v1 --save-checkpoints --output results/batch_settings
    python -m benchmarks.ope_checkpoints results/batch_settings --fqe-steps 10000 --episodes 10
    # with d3rlpy's FQE beside ours (a Python where d3rlpy 2.8.1 is importable)
    python -m benchmarks.ope_checkpoints results/batch_settings --d3rlpy

Input: the ``--output`` folder of ``batch_settings.py``; every finished run ``<env>/<setting>/<algo>/seed<k>/``
(its ``run.json`` names the dataset) with ``checkpoints/model_<steps>_steps.zip`` is used (``--envs``,
``--settings``, ``--algos``, ``--seeds`` select; ``--max-checkpoints`` keeps that many per run, evenly spaced,
the last always among them). d3rlpy's runs (``d3rlpy-*``) save no checkpoints and are skipped.

For every checkpoint (loaded with :func:`sb3_offline.ope.load_model`):

- **the truth**: :func:`sb3_offline.ope.report.rollout_values`, ``--episodes`` episodes, episode ``k`` reset with
  ``--rollout-seed + k``: the undiscounted return within the time limit and the discounted return
  ``sum_t gamma^t r_t`` run past it until ``gamma^t < 1e-3`` (FQE bootstraps at time-limit cuts, so that is
  what it estimates);
- **FQE** (:class:`sb3_offline.ope.FQE`, d3rlpy's defaults: 256-256 ReLU Q-function, Adam 1e-4, batch 100, target
  copied every 100 steps) fitted for ``--fqe-steps`` gradient steps on the run's dataset (each target copy
  carries the value about one more step back, so with gamma 0.99 far fewer than ~100 copies, 10k steps, leave a
  truncated-horizon value: on Pendulum, 5k steps estimate about a third of the true discounted return), then
  read at two sets of start states:

  - ``rollout starts`` (the like-with-like comparison, the table's first row per estimator): the mean of
    ``Q(s0, pi(s0))`` over the very states the rollouts start from (``env.reset(seed=--rollout-seed + k)``),
    so estimate and truth average over the same start states and differ only by FQE's error (on Pendulum the
    value depends strongly on the start angle: with few episodes, two different samples of start states
    differ by more than FQE's error does);
  - ``dataset starts``: FQE's own :meth:`~sb3_offline.ope.FQE.estimate`, the mean over the dataset's episode
    starts, which is what a user without the env gets; it estimates the same quantity (the datasets' episodes
    start at env resets) from other start states, so its error against the truth includes the difference of
    the two samples of start states.

- with ``--d3rlpy``: **d3rlpy's FQE** (``d3rlpy.ope.FQE``, d3rlpy 2.8.1, imported lazily; its defaults are the
  ones above) on the same checkpoints, the same gradient steps and the same two sets of start states. d3rlpy's
  FQE takes a d3rlpy algorithm to evaluate, but uses only its ``impl.predict_best_action(next_observations)``
  (a torch batch, in ``d3rlpy/ope/torch/fqe_impl.py``: ``FQEBaseImpl.inner_update``); so our policy is wrapped
  as a ``QLearningAlgoImplBase`` whose ``predict_best_action`` is the checkpoint's deterministic action in
  [-1, 1] (:class:`sb3_offline.ope.EvaluationPolicy`), with no networks of its own. The data is the run's dataset
  as d3rlpy's ``MDPDataset`` (``benchmarks/d3rlpy_runs.py``'s ``to_mdp_dataset``: actions in [-1, 1], every
  transition kept, timeouts bootstrapped), sampled with d3rlpy's own ``sample_transition_batch`` and
  ``FQE.update`` (what ``fit`` does, without its logging); values are ``FQE.predict_value(s0, pi(s0))``.

Per (env, setting), over all checkpoints of all algorithms and seeds: Spearman's rank correlation of the estimate
with the true discounted return (:func:`sb3_offline.ope.report.spearman`), the mean absolute error against it,
and regret@1 per run, averaged over runs: the true (undiscounted) return of the run's best checkpoint minus that
of the checkpoint picked by the estimate, beside that of picking the run's last checkpoint. Prints the table and
writes ``table.md``, one scatter PNG per (env, setting) (estimate vs true discounted return, per algorithm) and one
CSV of every checkpoint (:func:`sb3_offline.ope.report.write_csv`, ours at the dataset starts), all atomically,
under ``--output`` (default ``<input>/ope``).

Resumable: each checkpoint's results go to ``model_<steps>_steps.ope.json`` beside it (written atomically after
each part: truth, FQE, d3rlpy's FQE), each part with the settings it was computed with; a part is recomputed only
when its settings changed. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from benchmarks.ope_summary import Point, checkpoint_reports, estimate_fields, plot_setting, summary_rows, write_atomic
from sb3_offline.datasets import Transitions, load_transitions
from sb3_offline.ope import FQE, load_model
from sb3_offline.ope.report import rollout_values, write_csv

CHECKPOINT = re.compile(r"^model_(\d+)_steps\.zip$")
D3RLPY_PREFIX = "d3rlpy-"


# --------------------------------------------------------------------------------------------- files
def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


@dataclass
class Run:
    """One finished run of ``batch_settings.py`` with checkpoints."""

    env_id: str
    setting: str
    algo: str
    seed: int
    folder: Path
    dataset_id: str
    checkpoints: list[tuple[int, Path]]  # (steps, path), by steps

    @property
    def label(self) -> str:
        return f"{self.algo}/seed{self.seed}"


def select_checkpoints(checkpoints: list[tuple[int, Path]], cap: int | None) -> list[tuple[int, Path]]:
    """At most ``cap`` of the checkpoints, evenly spaced over training, the first and the last among them."""
    if cap is None or len(checkpoints) <= cap:
        return checkpoints
    if cap < 1:
        raise ValueError(f"--max-checkpoints: expected >= 1, found {cap}")
    if cap == 1:
        return checkpoints[-1:]
    picked = sorted({round(float(i)) for i in np.linspace(0, len(checkpoints) - 1, cap)})
    return [checkpoints[i] for i in picked]


def find_runs(root: Path, args: argparse.Namespace) -> list[Run]:
    """The finished runs under ``root`` that ``--envs/--settings/--algos/--seeds`` select, with their checkpoints."""
    runs = []
    for record_path in sorted(root.glob("*/*/*/seed*/run.json")):
        folder = record_path.parent
        env_id, setting, algo = folder.parts[-4], folder.parts[-3], folder.parts[-2]
        record = json.loads(record_path.read_text())
        seed = int(record.get("seed", folder.name.removeprefix("seed")))
        if (
            (args.envs and env_id not in args.envs)
            or (args.settings and setting not in args.settings)
            or (args.algos and algo not in args.algos)
            or (args.seeds and seed not in args.seeds)
            or algo.startswith(D3RLPY_PREFIX)
        ):
            continue
        found = []
        for path in (folder / "checkpoints").glob("model_*_steps.zip"):
            match = CHECKPOINT.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        if not found:
            print(
                f"skipped {folder}: no checkpoints (run python -m benchmarks.batch_settings with --save-checkpoints)",
                flush=True,
            )
            continue
        if "dataset" not in record:
            raise ValueError(f"{record_path}: field 'dataset': expected the run's dataset id, found none")
        checkpoints = select_checkpoints(sorted(found), args.max_checkpoints)
        runs.append(Run(env_id, setting, algo, seed, folder, str(record["dataset"]), checkpoints))
    return runs


# ------------------------------------------------------------------------------------- the data of a run
@dataclass
class RunData:
    """What every checkpoint of a run shares: the dataset, its episodes' first states, the rollouts' start states."""

    transitions: Transitions
    dataset_starts: np.ndarray
    rollout_starts: np.ndarray
    mdp_dataset: Any = None  # d3rlpy's MDPDataset, made on first use


def rollout_start_states(env_id: str, n_episodes: int, seed: int) -> np.ndarray:
    """
    The first observations of :func:`~sb3_offline.ope.report.rollout_values`'s episodes: episode ``k`` is reset
    with ``seed + k`` (its env is made with a longer time limit, which does not change the reset).
    """
    env = gym.make(env_id)
    try:
        return np.stack([np.asarray(env.reset(seed=seed + k)[0]) for k in range(n_episodes)])
    finally:
        env.close()


def run_data(run: Run, args: argparse.Namespace) -> RunData:
    transitions = load_transitions(run.dataset_id)
    if isinstance(transitions.observations, dict):
        raise ValueError(f"{run.dataset_id}: field 'observations': expected a flat array, found a dict")
    starts = np.array([s.start for s in transitions.episode_slices()], dtype=np.int64)
    observations = np.asarray(transitions.observations)
    return RunData(
        transitions, observations[starts], rollout_start_states(run.env_id, args.episodes, args.rollout_seed)
    )


# ------------------------------------------------------------------------------------------ estimators
def ours(model: Any, data: RunData, gamma: float, args: argparse.Namespace) -> dict[str, Any]:
    """Our FQE fitted on the run's dataset: its estimate at the dataset's starts and its values at the rollouts'."""
    fqe = FQE(model, dataset=data.transitions, gamma=gamma, device=args.device, seed=args.seed)
    fqe.learn(args.fqe_steps, log_interval=None)
    estimate = fqe.estimate(seed=args.seed)
    at_rollouts = fqe.predict_value(data.rollout_starts.astype(np.float32))
    return {"dataset": estimate_fields(estimate), "rollout": [float(v) for v in at_rollouts]}


def d3rlpy_module() -> Any:
    """``d3rlpy`` with its info logging quieted (``benchmarks/d3rlpy_compat.py``), or ``None`` when not importable."""
    from benchmarks.d3rlpy_compat import d3rlpy_available

    if not d3rlpy_available():
        return None
    import d3rlpy

    return d3rlpy


# ------------------------------------------------------------------------------------------ one checkpoint
def evaluate_checkpoint(run: Run, steps: int, path: Path, data: RunData, args: argparse.Namespace) -> dict[str, Any]:
    """The checkpoint's results, read from ``<checkpoint>.ope.json`` where its settings match, else computed there."""
    cache_path = path.with_name(f"{path.stem}.ope.json")
    record: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    model = load_model(path, device=args.device)
    gamma = float(args.gamma if args.gamma is not None else getattr(model, "gamma", 0.99))
    truth_config = {"gamma": gamma, "episodes": args.episodes, "rollout_seed": args.rollout_seed}
    fit_config = {**truth_config, "fqe_steps": args.fqe_steps, "seed": args.seed}
    record.update(checkpoint=path.name, steps=steps, algorithm=type(model).__name__, dataset=run.dataset_id)

    def save() -> None:
        write_text(cache_path, json.dumps(record, indent=1))

    truth = record.get("truth")
    if truth is None or truth.get("config") != truth_config:
        start = time.perf_counter()
        rolled = rollout_values(model, run.env_id, args.episodes, gamma=gamma, seed=args.rollout_seed)
        record["truth"] = {
            "config": truth_config,
            "returns": [float(v) for v in rolled.returns],
            "discounted": [float(v) for v in rolled.discounted],
            "seconds": time.perf_counter() - start,
        }
        save()
    wanted = ["fqe", *(["d3rlpy_fqe"] if args.d3rlpy else [])]
    for key in wanted:
        part = record.get(key)
        if part is not None and part.get("config") == fit_config:
            continue
        start = time.perf_counter()
        if key == "fqe":
            result = ours(model, data, gamma, args)
        else:
            from benchmarks.d3rlpy_runs import d3rlpy_fqe

            result = d3rlpy_fqe(model, data, gamma, run.env_id, args)
        record[key] = {"config": fit_config, **result, "seconds": time.perf_counter() - start}
        save()
    t = record["truth"]
    line = f"{run.env_id} {run.setting} {run.label} {path.name}: true disc. {np.mean(t['discounted']):8.2f}"
    for key in wanted:
        line += (
            f" | {key} {np.mean(record[key]['rollout']):8.2f} (dataset starts {record[key]['dataset']['value']:8.2f},"
            f" {record[key]['seconds']:.0f} s)"
        )
    print(line, flush=True)
    return record


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "input", help="the --output folder of python -m benchmarks.batch_settings run with --save-checkpoints"
    )
    parser.add_argument("--envs", nargs="+", default=None)
    parser.add_argument("--settings", nargs="+", default=None)
    parser.add_argument("--algos", nargs="+", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--max-checkpoints", type=int, default=None, help="per run, evenly spaced, the last kept")
    parser.add_argument("--fqe-steps", type=int, default=10_000, help="gradient steps of each FQE fit")
    parser.add_argument("--episodes", type=int, default=10, help="rollouts per checkpoint (the truth)")
    parser.add_argument("--rollout-seed", type=int, default=10_000, help="rollout k is reset with this + k")
    parser.add_argument("--gamma", type=float, default=None, help="default: the checkpoint's gamma (0.99)")
    parser.add_argument("--seed", type=int, default=0, help="FQE's seed (and d3rlpy's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--d3rlpy", action="store_true", help="also d3rlpy's FQE (d3rlpy must be importable)")
    parser.add_argument("--output", default=None, help="default: <input>/ope")
    args = parser.parse_args(argv)
    if args.fqe_steps < 1 or args.episodes < 1:
        parser.error(f"--fqe-steps and --episodes: expected >= 1, found {args.fqe_steps} and {args.episodes}")
    if args.max_checkpoints is not None and args.max_checkpoints < 1:
        parser.error(f"--max-checkpoints: expected >= 1, found {args.max_checkpoints}")
    if args.d3rlpy and d3rlpy_module() is None:
        parser.error("--d3rlpy: d3rlpy is not importable in this Python (it is no dependency of sb3-offline)")
    root = Path(args.input)
    output = Path(args.output) if args.output is not None else root / "ope"
    runs = find_runs(root, args)
    if not runs:
        parser.error(f"input: expected finished runs with checkpoints under {root}, found none")
    estimators = ["fqe", *(["d3rlpy_fqe"] if args.d3rlpy else [])]

    groups: dict[tuple[str, str], list[Point]] = {}
    for run in runs:
        data = run_data(run, args)
        for steps, path in run.checkpoints:
            record = evaluate_checkpoint(run, steps, path, data, args)
            groups.setdefault((run.env_id, run.setting), []).append(Point(run, steps, path, record))

    headers = [
        "env",
        "setting",
        "estimator",
        "start states",
        "checkpoints",
        "Spearman",
        "MAE",
        "regret@1 (pick by estimate)",
        "regret@1 (last checkpoint)",
    ]
    lines = [
        f"FQE: {args.fqe_steps} gradient steps per checkpoint; truth: {args.episodes} rollouts per checkpoint "
        f"(resets {args.rollout_seed}...), discounted return with the checkpoint's gamma"
        + (f" (here {args.gamma})" if args.gamma is not None else "")
        + ". Spearman and MAE against the true discounted return over all checkpoints of the setting; regret@1: "
        "true undiscounted return of the run's best checkpoint minus that of the pick, mean over runs.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for (env_id, setting), points in groups.items():
        for row in summary_rows(env_id, setting, points, estimators):
            lines.append("| " + " | ".join(row) + " |")
        name = f"{env_id}_{setting}"
        plot_setting(env_id, setting, points, estimators, output / f"{name}_ope.png")
        reports = checkpoint_reports(points)
        write_atomic(output / f"{name}_checkpoints.csv", lambda tmp: write_csv(reports, tmp))  # noqa: B023 (called here)
    table = "\n".join(lines)
    print(table)
    write_text(output / "table.md", table + "\n")


if __name__ == "__main__":
    main()
