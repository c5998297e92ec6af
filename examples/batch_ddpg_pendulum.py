"""
Batch DDPG on Pendulum-v1 from a dataset recorded locally, in each file format sb3-offline reads.

    python examples/batch_ddpg_pendulum.py

Records 20k random-policy transitions, writes them as a D4RL-style HDF5 file, trains BatchDDPG for
5k gradient steps (the env is never stepped while training), saves and reloads the SB3 checkpoint,
and evaluates it against the random policy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_offline import BatchDDPG
from sb3_offline.datasets import record_transitions, save_hdf5


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sb3_offline_example_"))
    data = record_transitions("Pendulum-v1", 20_000, seed=0, progress_bar=True)
    path = save_hdf5(data, folder / "pendulum_random.hdf5", next_observations=False)

    env = gym.make("Pendulum-v1")
    model = BatchDDPG("MlpPolicy", env, dataset=str(path), device="auto", seed=0)
    model.learn(total_timesteps=5_000, progress_bar=True)
    model.save(folder / "batch_ddpg_pendulum")
    model = BatchDDPG.load(folder / "batch_ddpg_pendulum", env=env)

    mean, std = evaluate_policy(model, env, n_eval_episodes=10, deterministic=True)
    print(f"BatchDDPG on random Pendulum data: {mean:.1f} ± {std:.1f} (random policy: about -1200)")


if __name__ == "__main__":
    main()
