"""
CQL on Pendulum-v1 from the dataset shipped with the package.

    python examples/cql_pendulum.py [--steps 1000] [--episodes 10]

``pendulum/imperfect-v0``: 50k transitions of a TD3 expert with N(0, 0.3) noise and a random action with
probability 0.3. CQL(H) (Kumar, Zhou, Tucker, Levine 2020) is SAC whose critics also push down a
log-sum-exp of Q over sampled actions and push up Q at the dataset's actions. Each update scores
``3 * n_actions`` sampled actions per state through both critics, so it is the slowest algorithm here:
``--steps`` 1000 at the default sizes take two to three minutes on one CPU core, a short run against the
authors' 1M steps. The authors clone the data's actions for their first 40k of 1M updates (``bc_steps``);
this run keeps that proportion of its own length (``--bc-fraction``). Saved, loaded, evaluated, and
printed beside the data's own return.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_offline import CQL
from sb3_offline.common.episodes import episode_returns
from sb3_offline.datasets import load_transitions
from sb3_offline.evaluation import evaluate, normalized_score

DATASET = "pendulum/imperfect-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000, help="gradient steps")
    parser.add_argument("--bc-fraction", type=float, default=0.04, help="share of --steps spent cloning (authors: 4%%)")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the checkpoint")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="cql_pendulum_"))
    folder.mkdir(parents=True, exist_ok=True)
    env = gym.make("Pendulum-v1")
    data = load_transitions(DATASET)
    behaviour = float(np.mean(episode_returns(data.rewards, data.terminations | data.truncations, True)))

    bc_steps = int(args.steps * args.bc_fraction)
    model = CQL("MlpPolicy", env, dataset=DATASET, bc_steps=bc_steps, seed=args.seed, device="auto")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=True)
    seconds = time.perf_counter() - start
    model.save(folder / "cql")
    model = CQL.load(folder / "cql", env=env)
    result = evaluate(model, env, n_episodes=args.episodes)

    print(f"\nCQL, Pendulum-v1, {DATASET}: {args.steps} gradient steps ({bc_steps} cloning), {seconds:.1f} s")
    print(f"data: return {behaviour:.1f}, normalized {float(normalized_score(DATASET, behaviour)):.1f}")
    print(f"CQL:  return {result.mean_return:.1f}, normalized {result.normalized_score:.1f}")
    print(f"checkpoint in {folder}")


if __name__ == "__main__":
    main()
