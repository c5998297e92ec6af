"""
Gradient updates per second of each sb3-offline algorithm on a synthetic dataset.

    python -m benchmarks.throughput                      # every algorithm at its paper batch size, CPU (+ CUDA)
    python -m benchmarks.throughput --batch-size 256     # one batch size for all
    python -m benchmarks.throughput --algos batch_ddpg --batch-size 100 --steps 2000
    python -m benchmarks.throughput --algos bcq awac plas --small-nets   # batch_settings.py's 64-64 networks
    python -m benchmarks.throughput --algos sac_n edac --n-critics 10 50 # SAC-N/EDAC, one row per ensemble size

The data is Hopper-sized (obs dim 17, action dim 6) random transitions, 1M rows by default, held by
``OfflineReplayBuffer`` on the device; networks are each algorithm's defaults. The first
``--warmup`` updates are not timed. PLAS is measured per phase: ``plas/vae`` (VAE pre-training)
and ``plas`` (the policy phase). On CUDA, ``updates/s`` is the default fast path (each update replayed as
one CUDA graph) and ``eager updates/s`` the same update with ``cuda_graphs=False``; keep ``--warmup`` above
the 3 eager steps before a capture. Prints a table; nothing here is a test.

When d3rlpy is importable (``--d3rlpy``, on by default then; ``--no-d3rlpy`` to skip it), d3rlpy's BCQ,
AWAC, PLAS (both phases), IQL, TD3+BC, CQL, Cal-QL and ReBRAC are measured too, in the same process, on the same
data, device, batch size and network sizes (see ``benchmarks/d3rlpy_compat.py`` for how its configs follow
our defaults and where its algorithms differ), and two columns are added: ``d3rlpy updates/s`` and ``ours / d3rlpy``
(an en dash where there is no d3rlpy counterpart or d3rlpy is absent). Both sides' timings include sampling:
ours on the device, d3rlpy's with its ``ReplayBuffer.sample_transition_batch`` on the host (what its
``fit`` does) or, with ``--d3rlpy-sampling arrays``, numpy indexing of the same arrays (its update alone; not for
d3rlpy's Cal-QL, whose returns-to-go come from the buffer's episodes: an en dash then).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

from benchmarks.d3rlpy_compat import D3RLPY_ALGOS, d3rlpy_available, small_net_arch
from benchmarks.d3rlpy_runs import NEEDS_EPISODES, SAMPLING, measure_d3rlpy_updates, to_mdp_dataset
from sb3_offline.algorithms import ALGOS
from sb3_offline.common.discrete import DiscreteOfflineAlgorithm
from sb3_offline.datasets import Transitions

NONE = "\N{EN DASH}"  # the table's cell where d3rlpy has nothing to show
#: the algorithms this Hopper-shaped (Box action) benchmark measures: every one but the discrete-action ones
CONTINUOUS = sorted(
    [*(name for name, algo in ALGOS.items() if not issubclass(algo, DiscreteOfflineAlgorithm)), "plas/vae"]
)


class HopperShapedEnv(gym.Env):
    """Only the spaces of Hopper (obs 17, action 6 in [-1, 1]); the benchmark never steps it."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (17,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(17, dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        raise RuntimeError("the throughput benchmark never steps the env")


def synthetic_dataset(n: int, seed: int = 0) -> Transitions:
    rng = np.random.default_rng(seed)
    terminations = rng.random(n) < 1e-3
    truncations = np.zeros(n, dtype=bool)
    truncations[999::1000] = True
    truncations &= ~terminations
    return Transitions(
        observations=rng.standard_normal((n, 17), dtype=np.float32),
        actions=rng.uniform(-1, 1, (n, 6)).astype(np.float32),
        rewards=rng.standard_normal(n, dtype=np.float32),
        next_observations=rng.standard_normal((n, 17), dtype=np.float32),
        terminations=terminations,
        truncations=truncations,
        source="synthetic",
    )


def measure(
    algo: str,
    device: str,
    data: Transitions,
    batch_size: int | None,
    steps: int,
    warmup: int,
    policy_kwargs: dict | None = None,
    cuda_graphs: bool = True,
    **algo_kwargs: Any,
) -> tuple[float, int]:
    """Updates per second after ``warmup`` untimed updates, and the batch size used (``algo_kwargs``: SAC-N's N ...)."""
    kwargs: dict = (
        {"cuda_graphs": cuda_graphs} if batch_size is None else {"batch_size": batch_size, "cuda_graphs": cuda_graphs}
    )
    kwargs.update(algo_kwargs)
    if policy_kwargs:
        kwargs["policy_kwargs"] = policy_kwargs
    if algo.startswith("plas"):
        # "plas/vae": the VAE pre-training phase; "plas": the policy phase (VAE already pre-trained)
        kwargs["vae_steps"] = 10**9 if algo == "plas/vae" else 0
        algo = "plas"
    model = ALGOS[algo]("MlpPolicy", HopperShapedEnv(), dataset=data, device=device, seed=0, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PLAS.learn: all")  # plas/vae never reaches the policy phase
        model.learn(warmup, log_interval=None)
        if device.startswith("cuda"):
            th.cuda.synchronize()
        start = time.perf_counter()
        model.learn(steps, log_interval=None, reset_num_timesteps=False)
    if device.startswith("cuda"):
        th.cuda.synchronize()
    return steps / (time.perf_counter() - start), model.batch_size


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--algos",
        nargs="+",
        default=CONTINUOUS,
        choices=CONTINUOUS,
        help="the algorithms for Box actions (default: all of them; the discrete-action ones are not measured here)",
    )
    parser.add_argument("--devices", nargs="+", default=["cpu", *(["cuda"] if th.cuda.is_available() else [])])
    parser.add_argument("--batch-size", type=int, default=0, help="0 (default): each algorithm's paper batch size")
    parser.add_argument("--dataset-size", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "--policy-kwargs",
        default=None,
        help='a Python dict for every algorithm, e.g. "dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128]))"',
    )
    parser.add_argument(
        "--small-nets",
        action="store_true",
        help="benchmarks.batch_settings' 64-64 networks (VAE 128-128), both sides",
    )
    parser.add_argument(
        "--d3rlpy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure d3rlpy's bcq, awac, plas, iql, td3bc, cql, calql (default: when d3rlpy is importable)",
    )
    parser.add_argument(
        "--n-critics", nargs="+", type=int, default=None, help="SAC-N's and EDAC's ensemble sizes (a row each)"
    )
    parser.add_argument(
        "--d3rlpy-sampling",
        default="buffer",
        choices=SAMPLING,
        help="buffer: d3rlpy's replay buffer (as its fit); arrays: numpy indexing (its update alone)",
    )
    return parser


def table_row(
    algo: str,
    device: str,
    data: Transitions,
    args: argparse.Namespace,
    kwargs: dict | None,
    use_d3rlpy: bool,
    d3rlpy_data: Any,
) -> str:
    """One row of the table: ours (and eagerly on CUDA), and d3rlpy's where it has ``algo``."""
    base = "plas" if algo == "plas/vae" else algo
    batch_size = args.batch_size or None
    algo, n_critics = (algo.split("/N")[0], {"n_critics": int(algo.split("/N")[1])}) if "/N" in algo else (algo, {})
    rate, shown = measure(algo, device, data, batch_size, args.steps, args.warmup, kwargs, **n_critics)
    eager, speedup = NONE, NONE
    if device.startswith("cuda"):  # the same update without CUDA graphs: the eager reference path
        eager_rate = measure(
            algo, device, data, batch_size, args.steps, args.warmup, kwargs, cuda_graphs=False, **n_critics
        )[0]
        eager, speedup = f"{eager_rate:.1f}", f"{rate / eager_rate:.2f}"
    theirs, ratio = NONE, NONE
    sampled = base not in NEEDS_EPISODES or args.d3rlpy_sampling == "buffer"
    if use_d3rlpy and base in D3RLPY_ALGOS and sampled:
        d3rlpy_rate = measure_d3rlpy_updates(
            algo,
            data,
            device,
            args.steps,
            args.warmup,
            shown,
            net_arch=(kwargs or {}).get("net_arch"),
            sampling=args.d3rlpy_sampling,
            action_space=HopperShapedEnv.action_space,
            dataset=d3rlpy_data,
        )
        theirs, ratio = f"{d3rlpy_rate:.1f}", f"{rate / d3rlpy_rate:.2f}"
    algo += f"/N{n_critics['n_critics']}" if n_critics else ""
    return (
        f"| {algo:<12} | {device:<6} | {shown:>5} | {rate:>10.1f} | {eager:>15} | {speedup:>13} "
        f"| {theirs:>16} | {ratio:>13} |"
    )


def main() -> None:
    parser = make_parser()
    args = parser.parse_args()
    if args.small_nets and args.policy_kwargs:
        parser.error("--small-nets and --policy-kwargs: pass one of them")
    policy_kwargs = eval(args.policy_kwargs) if args.policy_kwargs else None  # as rl-zoo3 does with its YAML
    if args.d3rlpy and not d3rlpy_available():
        parser.error("--d3rlpy: d3rlpy is not importable in this Python")
    use_d3rlpy = d3rlpy_available() if args.d3rlpy is None else args.d3rlpy
    d3rlpy_note = ""
    if use_d3rlpy and policy_kwargs and set(policy_kwargs) - {"net_arch"}:
        use_d3rlpy = False  # d3rlpy's configs can follow our net_arch, not the other policy kwargs
        d3rlpy_note = f"; d3rlpy skipped (it cannot follow policy kwargs {sorted(set(policy_kwargs) - {'net_arch'})})"

    data = synthetic_dataset(args.dataset_size)
    d3rlpy_data = None
    if use_d3rlpy:
        import d3rlpy

        d3rlpy_note = f"; d3rlpy {d3rlpy.__version__}, its batches from {args.d3rlpy_sampling}"
        if args.d3rlpy_sampling == "buffer" and any(a in D3RLPY_ALGOS or a == "plas/vae" for a in args.algos):
            d3rlpy_data = to_mdp_dataset(data, HopperShapedEnv.action_space, exact_next_observations=False)[0]
    networks = "batch_settings.py's small networks" if args.small_nets else policy_kwargs or "defaults"
    gpus = sorted({th.cuda.get_device_name(d) for d in args.devices if d.startswith("cuda")})
    print(
        f"torch {th.__version__}, {platform.processor() or platform.machine()}, {th.get_num_threads()} CPU threads, "
        f"{'GPU ' + ', '.join(gpus) + ', ' if gpus else ''}"
        f"dataset {args.dataset_size} x (obs 17, action 6), {args.steps} timed updates, "
        f"networks: {networks}{d3rlpy_note}"
    )
    header = (
        f"| {'algorithm':<12} | {'device':<6} | {'batch':>5} | {'updates/s':>10} | {'eager updates/s':>15} "
        f"| {'graph / eager':>13} | {'d3rlpy updates/s':>16} | {'ours / d3rlpy':>13} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for algo in args.algos:
        base = "plas" if algo == "plas/vae" else algo
        kwargs = {"net_arch": small_net_arch(base)} if args.small_nets else policy_kwargs
        sizes = [f"{algo}/N{n}" for n in args.n_critics] if args.n_critics and algo in ("sac_n", "edac") else [algo]
        for device in args.devices:
            for row_algo in sizes:
                print(table_row(row_algo, device, data, args, kwargs, use_d3rlpy, d3rlpy_data), flush=True)


if __name__ == "__main__":
    main()
