"""
Learning rates per optimizer: each optimizer keeps the rate the user gives it, an SB3 schedule moves only its own
optimizer, and a fixed-horizon schedule over gradient steps (``common.schedules``) runs across ``learn`` calls and
``save``/``load``. (Every algorithm's default rates are checked in ``test_contract.py``.)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

from sb3_offline import BC
from sb3_offline.common.schedules import CosineDecaySchedule, LinearStepSchedule


def learning_rates(model: Any) -> dict[str, float]:
    return {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in model._optimizers().items()}


def test_every_optimizer_keeps_the_learning_rate_a_user_sets(tiny_model, pendulum_transitions) -> None:
    """BCQ's three optimizers, one of them given its own rate: each keeps its rate through the updates."""
    model = tiny_model("bcq", pendulum_transitions, actor_learning_rate=1e-4)
    model.learn(3)
    assert learning_rates(model) == {"vae": 1e-3, "actor": 1e-4, "critic": 1e-3}


def test_a_schedule_moves_only_its_own_optimizer(tiny_model, pendulum_transitions) -> None:
    model = tiny_model(
        "awac", pendulum_transitions, learning_rate=lambda progress: 1e-3 * progress, actor_learning_rate=2e-4
    )
    model.learn(10)
    rates = learning_rates(model)
    assert rates["critic"] == pytest.approx(1e-3 * (1 - 9 / 10))  # progress remaining before the last step
    assert rates["actor"] == 2e-4


def test_step_schedules_run_over_gradient_steps_across_learn_calls(tiny_model, pendulum_transitions) -> None:
    """A fixed-horizon schedule (IQL's cosine decay) does not restart when learn is called again."""
    schedule = CosineDecaySchedule(1e-3, horizon=20)
    model = tiny_model("bc", pendulum_transitions, learning_rate=schedule)
    model.learn(5)
    model.learn(5, reset_num_timesteps=False)
    # set before the 10th update, i.e. after 9 updates
    assert learning_rates(model)["actor"] == pytest.approx(schedule(9))
    model.learn(5)  # a fresh learn call: progress restarts, the step count does not
    assert learning_rates(model)["actor"] == pytest.approx(schedule(14))


def test_step_schedules_by_hand() -> None:
    cosine = CosineDecaySchedule(1.0, horizon=10, alpha=0.1)
    assert cosine(0) == pytest.approx(1.0)
    assert cosine(5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine(10) == cosine(1000) == pytest.approx(0.1)
    linear = LinearStepSchedule(1.0, 0.0, horizon=4)
    assert [linear(step) for step in (0, 2, 4, 9)] == [1.0, 0.5, 0.0, 0.0]


def test_step_schedule_is_saved_and_continues(tiny_model, pendulum_transitions, tmp_path) -> None:
    model = tiny_model("bc", pendulum_transitions, learning_rate=CosineDecaySchedule(1e-3, horizon=20))
    model.learn(6)
    model.save(tmp_path / "bc")
    loaded = BC.load(tmp_path / "bc", env=gym.make("Pendulum-v1"), dataset=pendulum_transitions, device="cpu")
    loaded.learn(4, reset_num_timesteps=False)
    assert learning_rates(loaded)["actor"] == pytest.approx(CosineDecaySchedule(1e-3, horizon=20)(9))
