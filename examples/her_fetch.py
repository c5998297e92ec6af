"""
Hindsight Experience Replay on FetchReach-v4: collect a dataset, train offline with and without HER, compare.

    python examples/her_fetch.py [--behaviour random] [--transitions 5000] [--steps 3000] [--online-steps 3000]

1. Collect: a behaviour policy records ``--transitions`` steps (50-step episodes, truncations kept
   apart) into a local Minari dataset. ``random`` (default) is a poor behaviour: it reaches about
   0.5% of its goals. ``tqc``/``sac``/``td3``/``ddpg`` train that agent online with SB3's
   HerReplayBuffer first (``--train-timesteps``), an expert when trained long enough.
2. Offline: ``HerDDPG`` (DDPG with HER's settings; or ``--algo bcq``) trains ``--steps`` gradient
   steps on the dataset, once replaying it as recorded and once with hindsight relabelling
   (``OfflineHerReplayBuffer``, ``future`` goals, ``n_sampled_goal=4``), same hyper-parameters
   otherwise. The HER model is saved and reloaded. On an expert's data (``--behaviour tqc``) DDPG
   may fail with or without HER (extrapolation error, the BCQ paper's point); BCQ does not.
3. Online (unless ``--online-steps 0``): ``HerDDPG`` used online with SB3's HerReplayBuffer.
4. Every policy's success rate over ``--episodes`` evaluation episodes, with steps and wall-clock time.

``HerDDPG``'s defaults are HER's for Fetch (Andrychowicz et al. 2017; OpenAI baselines' ``her``: gamma
0.98, polyak 0.95 i.e. tau 0.05, lr 1e-3, batch 256, 256-256-256 networks with the action at the
critic's input, no weight decay, inputs normalised and clipped to [-5, 5]). Offline, the normaliser's
statistics come from the dataset; online, from SB3's ``VecNormalize``. BCQ gets HER's discount,
polyak and batch and the dataset's normaliser (``normalizer_kwargs``). A few minutes on 2 CPU cores
(``OMP_NUM_THREADS=1`` is faster there).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_offline import BCQ
from sb3_offline.her import (
    HerDDPG,
    OfflineHerReplayBuffer,
    collect_fetch_dataset,
    evaluate_success_rate,
    normalizer_kwargs,
)
from sb3_offline.her.collect import BEHAVIOURS, make_goal_env

#: HER's discount, polyak and batch on BCQ (its other settings are the BCQ paper's), small networks.
HER_BCQ: dict[str, Any] = dict(
    gamma=0.98,
    tau=0.05,
    batch_size=256,
    policy_kwargs=dict(net_arch=dict(pi=[64, 64], qf=[64, 64], vae=[128, 128])),
)


def offline_model(algo: str, dataset_id: str, env: Any, her: bool, seed: int) -> Any:
    """``HerDDPG`` at its defaults (HER's), or BCQ with :data:`HER_BCQ`; relabelling with ``her``."""
    relabelling = dict(n_sampled_goal=4, goal_selection_strategy="future")
    if algo == "her_ddpg":
        buffer: dict[str, Any] = dict(replay_buffer_kwargs=relabelling) if her else dict(replay_buffer_class=None)
        return HerDDPG("MultiInputPolicy", env, dataset=dataset_id, seed=seed, device="auto", **buffer)
    kwargs = {**HER_BCQ, "policy_kwargs": {**HER_BCQ["policy_kwargs"], **normalizer_kwargs(dataset_id)}}
    if her:
        kwargs.update(replay_buffer_class=OfflineHerReplayBuffer, replay_buffer_kwargs=relabelling)
    return BCQ("MultiInputPolicy", env, dataset=dataset_id, seed=seed, device="auto", **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="FetchReach-v4")
    parser.add_argument("--behaviour", default="random", choices=BEHAVIOURS)
    parser.add_argument("--train-timesteps", type=int, default=20_000, help="online steps of a HER behaviour agent")
    parser.add_argument("--transitions", type=int, default=5_000, help="size of the dataset")
    parser.add_argument("--algo", default="her_ddpg", choices=["bcq", "her_ddpg"], help="the offline algorithm")
    parser.add_argument("--steps", type=int, default=3_000, help="offline gradient steps per model")
    parser.add_argument("--online-steps", type=int, default=3_000, help="env steps of online DDPG+HER (0: skip)")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="folder for the Minari dataset and the checkpoint")
    args = parser.parse_args()

    folder = Path(args.output or tempfile.mkdtemp(prefix="her_fetch_"))
    os.environ["MINARI_DATASETS_PATH"] = str(folder / "minari")  # never overwrite a dataset of the user's
    dataset_id = f"sb3-offline/{args.env.split('-v')[0].lower()}-{args.behaviour}-v0"
    env = make_goal_env(args.env)

    def success(model: Any) -> float:
        return evaluate_success_rate(model, env, n_episodes=args.episodes, seed=10_000)

    rows: list[tuple[str, str, float, float]] = []
    start = time.perf_counter()
    collection = collect_fetch_dataset(
        args.env,
        args.transitions,
        behaviour=args.behaviour,
        dataset_id=dataset_id,
        train_timesteps=args.train_timesteps,
        seed=args.seed,
        overwrite=True,
        progress_bar=True,
    )
    behaviour_steps = f"{args.train_timesteps} env steps" if collection.agent is not None else "-"
    rows.append(
        (
            f"behaviour ({args.behaviour}, in the dataset)",
            behaviour_steps,
            collection.success_rate,
            time.perf_counter() - start,
        )
    )
    if collection.agent is None:  # the random behaviour, on the evaluation episodes
        rows.append((f"behaviour ({args.behaviour}), evaluated", "-", success(None), 0.0))
    else:
        rows.append(
            ("behaviour agent, evaluated", behaviour_steps, success(collection.agent), collection.train_seconds)
        )

    label = "HerDDPG" if args.algo == "her_ddpg" else "BCQ"
    for name, her in ((f"offline {label}, no relabelling", False), (f"offline {label} + HER", True)):
        model = offline_model(args.algo, dataset_id, env, her, args.seed)
        start = time.perf_counter()
        model.learn(args.steps, progress_bar=True)
        seconds = time.perf_counter() - start
        if her:
            model.save(folder / f"{args.algo}_her")
            model = type(model).load(folder / f"{args.algo}_her", env=env)
        rows.append((name, f"{args.steps} gradient steps", success(model), seconds))

    if args.online_steps:
        venv = VecNormalize(DummyVecEnv([lambda: make_goal_env(args.env)]), norm_obs=True, norm_reward=False)
        online = HerDDPG(
            "MultiInputPolicy",
            venv,
            buffer_size=1_000_000,
            learning_starts=200,
            action_noise=NormalActionNoise(np.zeros(4), 0.2 * np.ones(4)),  # HER's noise_eps
            replay_buffer_class=HerReplayBuffer,
            replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
            normalize_observations=False,  # VecNormalize does it online
            seed=args.seed,
            device="auto",
        )
        start = time.perf_counter()
        online.learn_online(args.online_steps, progress_bar=True)
        venv.training = False  # evaluate_success_rate normalises with the frozen statistics
        rows.append(
            (
                "online HerDDPG + SB3 HerReplayBuffer",
                f"{args.online_steps} env steps",
                success(online),
                time.perf_counter() - start,
            )
        )

    print(f"\n{args.env}: {args.transitions} transitions by '{args.behaviour}'; success rates over {args.episodes}")
    print(f"| {'policy':<38} | {'steps':<22} | {'success':>7} | {'seconds':>7} |")
    print(f"|{'-' * 40}|{'-' * 24}|{'-' * 9}|{'-' * 9}|")
    for name, steps, rate, seconds in rows:
        print(f"| {name:<38} | {steps:<22} | {rate:7.2f} | {seconds:7.0f} |")
    print(f"dataset '{dataset_id}' and checkpoint in {folder}")


if __name__ == "__main__":
    main()
