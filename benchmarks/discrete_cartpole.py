"""
DiscreteCQL and DiscreteIQL at their defaults beside d3rlpy 2.8.1's ``DiscreteCQL`` at its defaults, on the same
CartPole-v1 logs: a scripted controller (push towards the side the pole falls to) taking a random action with
probability ``epsilon`` (0.3: episodes of about 260), one log per seed.

    python -m benchmarks.discrete_cartpole [--seeds 0 1 2] [--steps 5000] [--iql-steps 2000] [--transitions 20000]

Each policy is evaluated greedily over ``--episodes`` episodes (episode ``k`` reset with seed ``100 + k``), beside
the controller that made the data and a uniformly random policy. d3rlpy's row needs d3rlpy (run with its venv's
python; left out without it). Prints a markdown table: the mean over seeds and each seed's return.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

from sb3_offline import DiscreteCQL, DiscreteIQL
from sb3_offline.datasets import Transitions, record_transitions
from sb3_offline.evaluation import evaluate_callable


class Controller:
    """Push towards the side the pole falls to (``angle + 0.5 * angular velocity``); random with ``epsilon``."""

    def __init__(self, epsilon: float, seed: int) -> None:
        self.epsilon, self.rng = epsilon, np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(2))
        return int(obs[2] + 0.5 * obs[3] > 0)


def returns(act: Callable[[np.ndarray], int] | None, episodes: int) -> float:
    """The mean return of ``act`` (``None``: random) over ``episodes`` CartPole-v1 episodes from seed 100."""
    return evaluate_callable(gym.make("CartPole-v1"), act, n_episodes=episodes, seed=100)[0]


def ours(algo: type, data: Transitions, steps: int, seed: int, **kwargs: Any) -> Callable[[np.ndarray], int]:
    model = algo("MlpPolicy", "CartPole-v1", dataset=data, seed=seed, device="cpu", **kwargs)
    model.learn(steps, log_interval=None)
    return lambda obs: int(model.predict(obs, deterministic=True)[0])


def d3rlpy_cql(data: Transitions, steps: int, seed: int) -> Callable[[np.ndarray], int]:
    """d3rlpy's ``DiscreteCQLConfig()`` (its defaults) trained on ``data`` for ``steps`` updates."""
    import d3rlpy
    from d3rlpy.logging import NoopAdapterFactory

    d3rlpy.seed(seed)
    dataset = d3rlpy.dataset.MDPDataset(
        observations=np.asarray(data.observations),
        actions=np.asarray(data.actions).reshape(-1, 1),
        rewards=data.rewards,
        terminals=data.terminations.astype(np.float32),
        timeouts=data.truncations.astype(np.float32),
        action_space=d3rlpy.constants.ActionSpace.DISCRETE,
        action_size=2,
    )
    algo = d3rlpy.algos.DiscreteCQLConfig().create(device="cpu:0")
    algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, show_progress=False, logger_adapter=NoopAdapterFactory())
    return lambda obs: int(algo.predict(np.asarray(obs, dtype=np.float32)[None])[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=5_000, help="gradient steps of the two DiscreteCQLs")
    parser.add_argument("--iql-steps", type=int, default=2_000, help="gradient steps of DiscreteIQL")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--epsilon", type=float, default=0.3, help="the controller's share of random actions")
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    try:
        import d3rlpy  # noqa: F401

        has_d3rlpy = True
    except ImportError:
        has_d3rlpy = False
    rows: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for seed in args.seeds:
        data = record_transitions("CartPole-v1", args.transitions, policy=Controller(args.epsilon, seed), seed=seed)
        rows.setdefault("controller (the data)", []).append(
            returns(Controller(args.epsilon, 1000 + seed), args.episodes)
        )
        rows.setdefault("random", []).append(returns(None, args.episodes))
        runs: list[tuple[str, Callable[[], Callable[[np.ndarray], int]]]] = [
            (f"DiscreteCQL (dqn), {args.steps} steps", partial(ours, DiscreteCQL, data, args.steps, seed)),
            (f"DiscreteIQL, {args.iql_steps} steps", partial(ours, DiscreteIQL, data, args.iql_steps, seed)),
        ]
        if has_d3rlpy:
            runs.append((f"d3rlpy DiscreteCQL, {args.steps} steps", partial(d3rlpy_cql, data, args.steps, seed)))
        for name, train in runs:
            start = time.perf_counter()
            act = train()
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
            rows.setdefault(name, []).append(returns(act, args.episodes))
            print(f"seed {seed}: {name}: {rows[name][-1]:.1f}", flush=True)
    print(
        f"\nCartPole-v1, controller logs (epsilon {args.epsilon}, {args.transitions} transitions), seeds {args.seeds}"
    )
    print("| policy | return (mean over seeds) | per seed | training s (all seeds) |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        per_seed = ", ".join(f"{v:.1f}" for v in values)
        time_text = f"{seconds[name]:.0f}" if name in seconds else ""
        print(f"| {name} | {np.mean(values):.1f} | {per_seed} | {time_text} |")


if __name__ == "__main__":
    main()
