"""
LAPO on Pendulum-v1 from the dataset shipped with the package.

    python examples/lapo_pendulum.py [--steps 2000] [--episodes 10]

``pendulum/imperfect-v0``: 50k transitions of a TD3 expert with N(0, 0.3) noise and a random action with
probability 0.3, i.e. good and bad actions mixed. LAPO (Chen et al. 2022) fits a conditional VAE to the
dataset's actions weighted by their advantage, so that the well-rated actions dominate it, and trains a
deterministic policy in the VAE's latent space (PLAS's) to maximise Q through the decoder. ``--steps``
gradient steps at the default sizes (batch 512) take about two minutes on one CPU core. Saved, loaded,
evaluated, and printed beside the data's own return.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from sb3_offline import LAPO
from sb3_offline.common.episodes import episode_returns
from sb3_offline.datasets import load_transitions
from sb3_offline.evaluation import evaluate, normalized_score

DATASET = "pendulum/imperfect-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2_000, help="gradient steps")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the checkpoint")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="lapo_pendulum_"))
    folder.mkdir(parents=True, exist_ok=True)
    env = gym.make("Pendulum-v1")
    data = load_transitions(DATASET)
    behaviour = float(np.mean(episode_returns(data.rewards, data.terminations | data.truncations, True)))

    model = LAPO("MlpPolicy", env, dataset=DATASET, seed=args.seed, device="auto")
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=True)
    seconds = time.perf_counter() - start
    model.save(folder / "lapo")
    model = LAPO.load(folder / "lapo", env=env)
    result = evaluate(model, env, n_episodes=args.episodes)

    print(f"\nLAPO, Pendulum-v1, {DATASET}: {args.steps} gradient steps, {seconds:.1f} s")
    print(f"data: return {behaviour:.1f}, normalized {float(normalized_score(DATASET, behaviour)):.1f}")
    print(f"LAPO: return {result.mean_return:.1f}, normalized {result.normalized_score:.1f}")
    print(f"checkpoint in {folder}")


if __name__ == "__main__":
    main()
