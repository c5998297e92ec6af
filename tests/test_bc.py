"""BC: the authors' defaults, its loss, and imitation of a scripted Pendulum expert."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_offline import BC
from sb3_offline.datasets import Transitions, record_transitions
from sb3_offline.evaluation import evaluate_callable

SMALL = dict(net_arch=[64, 64])


def test_defaults_follow_the_paper() -> None:
    model = BC("MlpPolicy", "Pendulum-v1", dataset=record_transitions("Pendulum-v1", 200, seed=0), device="cpu")
    assert model.batch_size == 100 and model.learning_rate == 1e-3
    assert model.policy.net_arch == [400, 300]


def test_loss_is_the_mse_to_the_dataset_actions(expert_pendulum: Transitions) -> None:
    model = BC("MlpPolicy", "Pendulum-v1", dataset=expert_pendulum, device="cpu", seed=0, policy_kwargs=SMALL)
    model.learn(1)
    assert model.replay_buffer is not None
    batch = model.replay_buffer.sample(64)
    with th.no_grad():
        predicted = model.actor(batch.observations)
    assert predicted.abs().max() <= 1.0  # tanh output, the buffer's [-1, 1] scale
    th.testing.assert_close(
        th.nn.functional.mse_loss(predicted, batch.actions), ((predicted - batch.actions) ** 2).mean()
    )


def test_bc_imitates_the_expert_and_beats_random(expert_pendulum: Transitions, tmp_path: Path) -> None:
    model = BC("MlpPolicy", "Pendulum-v1", dataset=expert_pendulum, device="cpu", seed=0, policy_kwargs=SMALL)
    model.learn(50)
    obs = expert_pendulum.observations[:500]
    before = np.mean((model.predict(obs, deterministic=True)[0] - expert_pendulum.actions[:500]) ** 2)
    model.learn(1500, reset_num_timesteps=False)
    after = np.mean((model.predict(obs, deterministic=True)[0] - expert_pendulum.actions[:500]) ** 2)
    assert after < 0.5 * before
    model.save(tmp_path / "bc")
    loaded = BC.load(tmp_path / "bc", device="cpu")
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    env = Monitor(gym.make("Pendulum-v1"))
    mean, _ = evaluate_policy(loaded, env, n_eval_episodes=5, deterministic=True)
    random_mean, _ = evaluate_callable(env, None, 5, seed=0)
    assert mean > random_mean + 300
