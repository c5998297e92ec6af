"""The extrapolation-error diagnostic on a tiny known case, its callback, and ``sb3-offline plot``."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_offline import BC, BCQ, BatchDDPG
from sb3_offline.callbacks import ValueEstimateCallback
from sb3_offline.cli import main
from sb3_offline.datasets import record_transitions
from sb3_offline.evaluation import estimate_value_error
from sb3_offline.plotting import read_value_estimates

HORIZON, GAMMA = 10, 0.9


class ConstantRewardEnv(gym.Env):
    """Reward 1 every step, whatever the action; cut by a 10-step time limit."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), 1.0, False, False, {}


def make_env() -> gym.Env:
    return gym.wrappers.TimeLimit(ConstantRewardEnv(), HORIZON)


def constant_critic(model: BatchDDPG, value: float) -> None:
    """Make Q(s, a) = value everywhere: zero weights, the last bias set to value."""
    with th.no_grad():
        for q_net in model.policy.critic.q_networks:
            for parameter in q_net.parameters():
                parameter.zero_()
            [m for m in q_net.modules() if isinstance(m, th.nn.Linear)][-1].bias.fill_(value)


def test_known_case_estimate_and_monte_carlo_return() -> None:
    env = make_env()
    model = BatchDDPG("MlpPolicy", env, dataset=record_transitions(make_env(), 50, seed=0), gamma=GAMMA, device="cpu")
    constant_critic(model, 7.5)
    estimate = estimate_value_error(model, env, n_episodes=3)
    assert estimate.q_estimate == pytest.approx(7.5)
    assert estimate.discounted_return == pytest.approx((1 - GAMMA**HORIZON) / (1 - GAMMA))  # 6.513
    assert estimate.mean_return == pytest.approx(HORIZON)
    assert estimate.overestimation == pytest.approx(7.5 - (1 - GAMMA**HORIZON) / (1 - GAMMA))
    # gamma given explicitly overrides the model's
    assert estimate_value_error(model, env, 1, gamma=1.0).discounted_return == pytest.approx(HORIZON)


def test_monte_carlo_return_in_the_critics_reward_units() -> None:
    """A model trained on transformed rewards (r' = 2 r - 1) is compared with the return of transformed rewards."""
    env = make_env()
    model = BatchDDPG(
        "MlpPolicy",
        env,
        dataset=record_transitions(make_env(), 50, seed=0),
        gamma=GAMMA,
        replay_buffer_kwargs=dict(reward_transform=dict(scale=2.0, shift=-1.0)),
        device="cpu",
    )
    estimate = estimate_value_error(model, env, n_episodes=2)
    assert estimate.discounted_return == pytest.approx((1 - GAMMA**HORIZON) / (1 - GAMMA))  # r' = 1 as well
    model.replay_buffer_kwargs["reward_transform"] = dict(scale=3.0, shift=0.0)
    model.replay_buffer = None  # a loaded model before learn: the saved, resolved transform is used
    estimate = estimate_value_error(model, env, n_episodes=1)
    assert estimate.discounted_return == pytest.approx(3 * (1 - GAMMA**HORIZON) / (1 - GAMMA))
    assert estimate.mean_return == pytest.approx(HORIZON)  # the env's own return


def test_known_case_after_learning_the_value() -> None:
    """Trained on this env's data, the critic's estimate approaches the infinite-horizon value 1 / (1 - gamma)."""
    env = make_env()
    data = record_transitions(make_env(), 500, seed=0)
    model = BatchDDPG(
        "MlpPolicy",
        env,
        dataset=data,
        gamma=GAMMA,
        tau=0.05,  # fast targets, no weight decay: converge within a test's budget
        critic_weight_decay=0.0,
        device="cpu",
        seed=0,
        policy_kwargs=dict(net_arch=[32, 32]),
    )
    model.learn(1500)
    # the time limit truncates (bootstraps), so the critic learns 1 / (1 - gamma) = 10, not the 10-step sum
    assert estimate_value_error(model, env, 3).q_estimate == pytest.approx(1 / (1 - GAMMA), rel=0.15)


def test_bc_has_no_critic() -> None:
    env = make_env()
    model = BC("MlpPolicy", env, dataset=record_transitions(make_env(), 50, seed=0), device="cpu")
    with pytest.raises(ValueError, match="expected an actor-critic algorithm"):
        estimate_value_error(model, env, 1)


def test_callback_logs_and_writes_csv_then_plot(tmp_path: Path) -> None:
    data = record_transitions("Pendulum-v1", 600, seed=0)
    small = dict(net_arch=dict(pi=[32, 32], qf=[32, 32], vae=[32, 32]))
    for name, algo, kwargs in (("ddpg", BatchDDPG, dict(net_arch=[32, 32])), ("bcq", BCQ, small)):
        model = algo("MlpPolicy", "Pendulum-v1", dataset=data, device="cpu", seed=0, policy_kwargs=kwargs)
        callback = ValueEstimateCallback("Pendulum-v1", eval_freq=20, n_episodes=1, log_path=tmp_path / name)
        model.learn(60, callback=callback, log_interval=20)
        assert [step for step, _ in callback.history] == [20, 40, 60]
        table = read_value_estimates(tmp_path / name)
        np.testing.assert_array_equal(table["timesteps"], [20, 40, 60])
        assert table["q_estimate"][-1] == pytest.approx(callback.history[-1][1].q_estimate)
    assert main(["plot", str(tmp_path / "ddpg"), str(tmp_path / "bcq"), "--output", str(tmp_path / "v.png")]) == 0
    assert (tmp_path / "v.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match=r"value_estimates\.csv"):
        read_value_estimates(tmp_path)
