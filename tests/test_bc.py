"""BC: the authors' defaults, its loss (in both action units), and imitation of a scripted Pendulum expert."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from sb3_offline import BC
from sb3_offline.datasets import Transitions, record_transitions

SMALL = dict(net_arch=[64, 64])


def test_defaults_follow_the_paper() -> None:
    model = BC("MlpPolicy", "Pendulum-v1", dataset=record_transitions("Pendulum-v1", 200, seed=0), device="cpu")
    assert model.batch_size == 100 and model.learning_rate == 1e-3
    assert model.policy.net_arch == [400, 300]


@pytest.mark.parametrize(("units", "bound"), [("normalized", 1.0), ("env", 2.0)])
def test_loss_is_the_mse_to_the_dataset_actions(
    units: str, bound: float, expert_pendulum: Transitions, memory_logger
) -> None:
    """The logged loss of an update is the squared error to the batch's actions: on [-1, 1] actions by default, in
    the env's units (Pendulum: bound 2) with ``action_units="env"``."""
    model = BC(
        "MlpPolicy", "Pendulum-v1", dataset=expert_pendulum, device="cpu", seed=0, policy_kwargs=SMALL,
        action_units=units,
    )  # fmt: skip
    model.learn(1)
    assert model.replay_buffer is not None
    batch = model.replay_buffer.sample(64)
    model.replay_buffer.sample = lambda *args, **kwargs: batch  # type: ignore[method-assign]
    with th.no_grad():
        predicted = model.actor(batch.observations)
    assert predicted.abs().max() <= 1.0  # tanh output, the buffer's [-1, 1] scale
    env_actions = th.as_tensor(expert_pendulum.actions)
    assert batch.actions.abs().max() <= 1.0 and env_actions.abs().max() > 1.0  # the dataset's are in [-2, 2]
    writer = memory_logger(model)
    model.learn(1, reset_num_timesteps=False)
    expected = ((bound * predicted - bound * batch.actions) ** 2).mean().item()
    assert writer.dumps[-1]["train/actor_loss"] == pytest.approx(expected, rel=1e-5)


def test_bc_imitates_the_expert(expert_pendulum: Transitions, pendulum_return, one_torch_thread) -> None:
    """
    The BCQ paper's imitation setting: the noiseless swing-up controller's 3000 steps (-188 on the evaluation episodes),
    3000 gradient steps at the paper's defaults (64-64 networks instead of 400-300). The error to the expert's actions
    halves, and the return is far above a random policy's (-1284). Measured (conftest's 10 evaluation episodes),
    training seeds 0-4: -550, -315, -216, -382, -391 (mean -371, std 109; in the env's units, ``action_units="env"``:
    -562, -318, -216, -332, -387); the bar, random + 500 = -784, is 3.8 std below the mean and 234 below the worst
    seed.
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
