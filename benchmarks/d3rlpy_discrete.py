"""
DiscreteBC and DiscreteBCQ beside d3rlpy 2.8.1's on the same CartPole-v1 data (d3rlpy is imported lazily and is
never a dependency: run with an interpreter that has it, e.g. a throwaway venv with ``--system-site-packages``).

    python -m benchmarks.d3rlpy_discrete [--dataset PATH] [--steps 5000] [--seeds 0 1 2]

Rows: ours at our defaults; d3rlpy with our defaults where its config can hold them (``ours``: DiscreteBCQ lr 3e-4,
batch 64, threshold 0.3 as ``action_flexibility``, logit penalty 1e-2 as ``beta``, separate encoders
(``share_encoder=False``), 256-256; its target is a hard copy, every ``round(1 / tau)`` = 200 updates where ours is
Polyak with tau 0.005 every update; DiscreteBC: d3rlpy's defaults are ours); and d3rlpy at its own defaults
(DiscreteBCQ: lr 6.25e-5, batch 32, ``beta`` 0.5, a shared encoder, a copy every 8000 updates). The data defaults
to the tests' scripted CartPole controller with 30% random actions (``tests/discrete_data.py``), 20000 steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _d3rlpy_algo(name: str, variant: str, seed: int) -> Any:
    import d3rlpy

    d3rlpy.seed(seed)
    if name == "DiscreteBC":
        return d3rlpy.algos.DiscreteBCConfig().create(device="cpu:0")
    if variant == "ours":
        config = d3rlpy.algos.DiscreteBCQConfig(
            learning_rate=3e-4,
            batch_size=64,
            action_flexibility=0.3,
            beta=1e-2,
            share_encoder=False,
            target_update_interval=200,
        )
    else:
        config = d3rlpy.algos.DiscreteBCQConfig()
    return config.create(device="cpu:0")


def _returns(act: Any, episodes: int) -> float:
    env = gym.make("CartPole-v1")
    totals = []
    for k in range(episodes):
        obs, _ = env.reset(seed=100 + k)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(act(obs)))
            total += float(reward)
            done = terminated or truncated
        totals.append(total)
    return float(np.mean(totals))


def run(dataset: Path, steps: int, seeds: list[int], episodes: int) -> list[tuple[str, str, int, float, float]]:
    """``(algorithm, variant, seed, mean return, updates per second)`` per run."""
    import d3rlpy

    from sb3_offline import DiscreteBC, DiscreteBCQ
    from sb3_offline.datasets import load_transitions

    data = load_transitions(dataset)
    mdp = d3rlpy.dataset.MDPDataset(
        observations=np.asarray(data.observations),
        actions=np.asarray(data.actions).astype(np.int64).reshape(-1, 1),
        rewards=np.asarray(data.rewards, np.float32),
        terminals=np.asarray(data.terminations, np.float32),
        timeouts=np.asarray(data.truncations, np.float32),
        action_space=d3rlpy.constants.ActionSpace.DISCRETE,
        action_size=2,
    )
    rows = []
    for seed in seeds:
        for algo in (DiscreteBC, DiscreteBCQ):
            model = algo("MlpPolicy", "CartPole-v1", dataset=str(dataset), device="cpu", seed=seed)
            start = time.perf_counter()
            model.learn(steps)
            rate = steps / (time.perf_counter() - start)
            rows.append(
                (algo.__name__, "sb3-offline", seed, _returns(lambda o, m=model: m.predict(o, True)[0], episodes), rate)
            )
            for variant in ("ours", "d3rlpy defaults") if algo is DiscreteBCQ else ("ours",):
                d3 = _d3rlpy_algo(algo.__name__, variant, seed)
                start = time.perf_counter()
                d3.fit(mdp, n_steps=steps, n_steps_per_epoch=steps, show_progress=False, save_interval=10**9)
                rate = steps / (time.perf_counter() - start)
                score = _returns(lambda o, d3=d3: d3.predict(o[None].astype(np.float32))[0], episodes)
                rows.append((algo.__name__, f"d3rlpy ({variant})", seed, score, rate))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=None, help="an HDF5/npz CartPole-v1 dataset")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args(argv)
    dataset = args.dataset
    if dataset is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from discrete_data import cartpole_dataset

        dataset = cartpole_dataset(Path("cartpole_scripted.hdf5"), 20_000, seed=0)
    rows = run(dataset, args.steps, args.seeds, args.episodes)
    print(f"| algorithm | implementation | return (mean over seeds {args.seeds}) | per seed | updates/s |")
    print("|---|---|---|---|---|")
    for key in dict.fromkeys((name, variant) for name, variant, *_ in rows):
        runs = [row for row in rows if row[:2] == key]
        scores = [row[3] for row in runs]
        per_seed = ", ".join(f"{score:.0f}" for score in scores)
        print(f"| {key[0]} | {key[1]} | {np.mean(scores):.1f} | {per_seed} | {np.mean([row[4] for row in runs]):.0f} |")


if __name__ == "__main__":
    main()
