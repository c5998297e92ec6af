"""
DiscreteBCQ vs DiscreteBC vs the behaviour data on CartPole-v1 "imperfect demonstrations", made locally.

    python examples/discrete_bcq_cartpole.py [--steps 5000] [--transitions 20000] [--expert-steps 50000]

The dataset follows the discrete BCQ authors' buffer generation (``sfujim/BCQ``, ``discrete_BCQ/main.py``): a DQN
expert (SB3's, trained here with rl-zoo3's CartPole settings and cached) acts, each episode is a low-noise one with
probability 0.2, else each action is random with probability 0.2. Both algorithms train on it at their defaults
(a few minutes on 2 CPU cores, the expert included), are saved as SB3 checkpoints, reloaded and evaluated.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_offline import DiscreteBC, DiscreteBCQ
from sb3_offline.collect import collect_dataset
from sb3_offline.evaluation import evaluate_callable


def main(argv: list[str] | None = None) -> list[tuple[str, float, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5_000, help="gradient steps per algorithm")
    parser.add_argument("--transitions", type=int, default=20_000)
    parser.add_argument("--expert-steps", type=int, default=50_000, help="env steps of the DQN expert")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = collect_dataset(
        "CartPole-v1", "imperfect", args.transitions, algo="dqn", expert_steps=args.expert_steps, seed=args.seed,
        overwrite=True, progress_bar=False,
    )  # fmt: skip
    env = Monitor(gym.make("CartPole-v1"))
    random = evaluate_callable(gym.make("CartPole-v1"), None, args.episodes, seed=1000)
    rows = [("random", *random, float("nan")), ("data", data.behaviour_return, float("nan"), float("nan"))]
    for algo in (DiscreteBC, DiscreteBCQ):
        model = algo("MlpPolicy", env, dataset=data.dataset_id, device="auto", seed=args.seed)
        start = time.perf_counter()
        model.learn(total_timesteps=args.steps)
        rate = args.steps / (time.perf_counter() - start)
        model.save(f"{algo.__name__.lower()}_cartpole")
        model = algo.load(f"{algo.__name__.lower()}_cartpole", env=env)
        mean, std = evaluate_policy(model, env, n_eval_episodes=args.episodes, deterministic=True)
        rows.append((algo.__name__, float(mean), float(std), rate))

    print(f"\nCartPole-v1, imperfect demonstrations ({len(data.transitions)} transitions), {args.steps} gradient steps")
    print(f"| {'policy':<11} | {'return':>18} | {'updates/s':>9} |")
    print(f"|{'-' * 13}|{'-' * 20}|{'-' * 11}|")
    for name, mean, std, rate in rows:
        print(f"| {name:<11} | {mean:8.1f} ± {std:7.1f} | {rate:9.1f} |")
    return rows


if __name__ == "__main__":
    main()
