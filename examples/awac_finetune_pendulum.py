"""
AWAC on Pendulum-v1: offline pre-training on imperfect demonstrations, save, then online fine-tuning.

    python examples/awac_finetune_pendulum.py [--offline-steps 3000] [--online-steps 3000]

The dataset is the BCQ example's (a scripted near-expert with N(0, 0.3) noise and a random action
with probability 0.3). AWAC trains on it offline (the env is never stepped), is saved as an SB3
checkpoint, loaded again with the dataset, and fine-tuned online: each env step is appended after
the dataset in the same buffer, which keeps being replayed. Prints the return after each phase.
Paper network sizes; batch 256 instead of the authors' 1024 to fit a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_offline import AWAC
from sb3_offline.datasets import PendulumSwingUp, ensure_pendulum_imperfect_file
from sb3_offline.evaluation import evaluate_callable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offline-steps", type=int, default=3_000, help="gradient steps on the dataset")
    parser.add_argument("--online-steps", type=int, default=3_000, help="env steps of fine-tuning")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the dataset and checkpoints (reused)")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="awac_pendulum_"))
    dataset = ensure_pendulum_imperfect_file(folder / "pendulum_imperfect.hdf5", args.transitions, args.seed)

    eval_env = Monitor(gym.make("Pendulum-v1"))
    behaviour = PendulumSwingUp.imperfect(seed=1000)
    rows = [("behaviour policy", *evaluate_callable(gym.make("Pendulum-v1"), behaviour, args.episodes, seed=1000))]

    model = AWAC(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        dataset=str(dataset),
        batch_size=args.batch_size,
        buffer_size=args.online_steps,
        seed=args.seed,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.offline_steps, progress_bar=True)
    offline_seconds = time.perf_counter() - start
    rows.append((f"AWAC offline ({args.offline_steps} steps)", *evaluate_policy(model, eval_env, args.episodes)))
    model.save(folder / "awac_offline")

    # later: the checkpoint plus the dataset, fine-tuned with env interaction
    model = AWAC.load(folder / "awac_offline", env=gym.make("Pendulum-v1"))
    start = time.perf_counter()
    model.learn_online(total_timesteps=args.online_steps, progress_bar=True)
    online_seconds = time.perf_counter() - start
    rows.append((f"AWAC + online ({args.online_steps} env steps)", *evaluate_policy(model, eval_env, args.episodes)))
    model.save(folder / "awac_finetuned")

    assert model.replay_buffer is not None
    print(f"\nPendulum-v1, imperfect demonstrations; buffer: {model.replay_buffer.size()} transitions")
    print(f"| {'policy':<36} | {'return':>18} |")
    print(f"|{'-' * 38}|{'-' * 20}|")
    for name, mean, std in rows:
        print(f"| {name:<36} | {float(mean):8.1f} ± {float(std):7.1f} |")
    offline_rate, online_rate = args.offline_steps / offline_seconds, args.online_steps / online_seconds
    print(f"offline {offline_rate:.0f} gradient steps/s, online {online_rate:.0f} env steps/s")
    print(f"checkpoints and dataset in {folder}")


if __name__ == "__main__":
    main()
