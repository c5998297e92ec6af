"""BC: the authors' defaults, its loss, and imitation of a scripted Pendulum expert."""

from __future__ import annotations

import numpy as np
import torch as th

from sb3_offline import BC
from sb3_offline.datasets import Transitions, record_transitions

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


def test_bc_imitates_the_expert(expert_pendulum: Transitions, pendulum_return, one_torch_thread) -> None:
    """
    The BCQ paper's imitation setting: the noiseless swing-up controller's 3000 steps (-188 on the evaluation episodes),
    3000 gradient steps at the paper's defaults (64-64 networks instead of 400-300). The error to the expert's actions
    halves, and the return is far above a random policy's (-1284). Measured (conftest's 10 evaluation episodes),
    training seeds 0-4: -562, -318, -216, -332, -387 (mean -363, std 114); the bar, random + 500 = -784, is 3.7 std
    below the mean and 222 below the worst seed.
    """
    model = BC("MlpPolicy", "Pendulum-v1", dataset=expert_pendulum, device="cpu", seed=0, policy_kwargs=SMALL)
    model.learn(50)
    obs = expert_pendulum.observations[:500]
    before = np.mean((model.predict(obs, deterministic=True)[0] - expert_pendulum.actions[:500]) ** 2)
    model.learn(2950, reset_num_timesteps=False, log_interval=None)
    after = np.mean((model.predict(obs, deterministic=True)[0] - expert_pendulum.actions[:500]) ** 2)
    assert after < 0.5 * before
    bc_return, random_return = pendulum_return(model), pendulum_return(None)
    assert bc_return > random_return + 500, (bc_return, random_return)
