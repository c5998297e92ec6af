"""Offline metrics (sb3_offline.ope.metrics) against hand computations, and OfflineEvalCallback during learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import configure

from sb3_offline import BC, TD3BC
from sb3_offline.buffers import RewardTransform
from sb3_offline.datasets import Transitions
from sb3_offline.ope import (
    ActionDifference,
    AverageValue,
    DiscountedAdvantageSum,
    HeldOutEpisodes,
    InitialStateValue,
    OfflineEvalCallback,
    SoftOPC,
    TDError,
    ValueModel,
    evaluate_offline,
    fetch_success,
    split_episodes,
)

OBS_SPACE = spaces.Box(-10.0, 10.0, (2,), np.float32)
ACT_SPACE = spaces.Box(-2.0, 2.0, (1,), np.float32)
GAMMA = 0.9

# two held-out episodes: rows 0-2 end with a termination, rows 3-4 are cut by a time limit (they bootstrap)
OBS = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [-1.0, 2.0], [0.5, -1.0]]
NEXT_OBS = [[1.0, 0.0], [2.0, 1.0], [3.0, 3.0], [0.5, -1.0], [1.0, 1.0]]
ACTIONS = [1.0, -2.0, 0.5, 2.0, 0.0]  # the env's units (the Box is [-2, 2])
REWARDS = [1.0, 0.0, 2.0, -1.0, 3.0]
TERMINATIONS = [0, 0, 1, 0, 0]
TRUNCATIONS = [0, 0, 0, 0, 1]
EPISODES = [[0, 1, 2], [3, 4]]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


def batch(rewards: list[float] = REWARDS) -> Transitions:
    return Transitions(
        observations=np.array(OBS, np.float32),
        actions=np.array(ACTIONS, np.float32)[:, None],
        rewards=np.array(rewards, np.float32),
        next_observations=np.array(NEXT_OBS, np.float32),
        terminations=np.array(TERMINATIONS, bool),
        truncations=np.array(TRUNCATIONS, bool),
    )


def q(s: list[float], a: float) -> float:
    """The analytic critic: ``Q(s, a) = s_0 + 2 s_1 + 3 a`` (``a`` in [-1, 1])."""
    return s[0] + 2.0 * s[1] + 3.0 * a


def pi(s: list[float]) -> float:
    """The analytic policy: ``pi(s) = clip(s_0 / 2, -1, 1)`` in [-1, 1]."""
    return min(max(0.5 * s[0], -1.0), 1.0)


class Analytic(ValueModel):
    def q(self, observations: th.Tensor, actions: th.Tensor) -> th.Tensor:
        return observations[:, 0] + 2.0 * observations[:, 1] + 3.0 * actions[:, 0]

    def act(self, observations: th.Tensor) -> th.Tensor:
        return (0.5 * observations[:, :1]).clamp(-1.0, 1.0)


@pytest.fixture
def data() -> HeldOutEpisodes:
    return HeldOutEpisodes.from_source(batch(), OBS_SPACE, ACT_SPACE, "cpu")


def scaled(action: float) -> float:
    return action / 2.0  # the Box [-2, 2] -> [-1, 1]


def test_td_error(data: HeldOutEpisodes) -> None:
    errors = []
    for t in range(5):
        target = REWARDS[t] + GAMMA * (1 - TERMINATIONS[t]) * q(NEXT_OBS[t], pi(NEXT_OBS[t]))
        errors.append((q(OBS[t], scaled(ACTIONS[t])) - target) ** 2)
    assert TDError()(Analytic(GAMMA), data) == pytest.approx(np.mean(errors), rel=1e-6)
    # a critic trained on transformed rewards is judged in its own units: r' = 2 r - 1
    transformed = []
    for t in range(5):
        target = 2 * REWARDS[t] - 1 + GAMMA * (1 - TERMINATIONS[t]) * q(NEXT_OBS[t], pi(NEXT_OBS[t]))
        transformed.append((q(OBS[t], scaled(ACTIONS[t])) - target) ** 2)
    model = Analytic(GAMMA, RewardTransform(scale=2.0, shift=-1.0))
    assert TDError()(model, data) == pytest.approx(np.mean(transformed), rel=1e-6)


def test_initial_state_and_average_value(data: HeldOutEpisodes) -> None:
    initial = np.mean([q(OBS[episode[0]], pi(OBS[episode[0]])) for episode in EPISODES])
    assert InitialStateValue()(Analytic(GAMMA), data) == pytest.approx(initial, rel=1e-6)
    average = np.mean([q(OBS[t], pi(OBS[t])) for t in range(5)])
    assert AverageValue()(Analytic(GAMMA), data) == pytest.approx(average, rel=1e-6)


def test_discounted_sum_of_advantages(data: HeldOutEpisodes) -> None:
    sums = []
    for episode in EPISODES:
        for i in range(len(episode)):
            total = 0.0
            for k, u in enumerate(episode[i:]):
                total += GAMMA**k * (q(OBS[u], scaled(ACTIONS[u])) - q(OBS[u], pi(OBS[u])))
            sums.append(total)
    assert DiscountedAdvantageSum()(Analytic(GAMMA), data) == pytest.approx(np.mean(sums), rel=1e-6)


def test_action_difference_in_the_envs_units(data: HeldOutEpisodes) -> None:
    differences = [(ACTIONS[t] - 2.0 * pi(OBS[t])) ** 2 for t in range(5)]  # pi's [-1, 1] action times 2
    assert ActionDifference()(Analytic(GAMMA), data) == pytest.approx(np.mean(differences), rel=1e-6)


def test_soft_opc_with_a_return_threshold_and_the_fetch_rule(data: HeldOutEpisodes) -> None:
    q_data = [q(OBS[t], scaled(ACTIONS[t])) for t in range(5)]
    # returns: episode 0: 3, episode 1: 2; a threshold of 2.5 makes episode 0 the successful one
    expected = np.mean(q_data[:3]) - np.mean(q_data)
    assert SoftOPC(return_threshold=2.5)(Analytic(GAMMA), data) == pytest.approx(expected, abs=1e-5)
    assert np.isnan(SoftOPC(return_threshold=10.0)(Analytic(GAMMA), data))  # no success: undefined
    # Fetch: success when the episode's last (sparse) reward is 0; here episode 1 ends with 0
    fetch_like = HeldOutEpisodes.from_source(batch([-1.0, -1.0, -1.0, -1.0, 0.0]), OBS_SPACE, ACT_SPACE, "cpu")
    expected = np.mean(q_data[3:]) - np.mean(q_data)
    assert SoftOPC(success_fn=fetch_success)(Analytic(GAMMA), fetch_like) == pytest.approx(expected, abs=1e-5)
    assert fetch_success(np.array([-1.0, 0.0])) and not fetch_success(np.array([0.0, -1.0]))
    with pytest.raises(ValueError, match="exactly one success signal"):
        SoftOPC()


def test_a_real_models_critic_and_policy(pendulum_transitions) -> None:
    # the SB3 adapter: the critics' mean at [-1, 1] actions, predict's deterministic actions, the buffer's rewards
    model = TD3BC(
        "MlpPolicy",
        "Pendulum-v1",
        dataset=pendulum_transitions,
        policy_kwargs=dict(net_arch=[16]),
        replay_buffer_kwargs=dict(reward_transform=dict(scale=0.1, shift=1.0)),
        device="cpu",
        seed=0,
    )
    model.learn(10)
    held_out = pendulum_transitions.select(slice(0, 200))
    results = evaluate_offline(model, held_out)
    assert set(results) == {
        "td_error",
        "initial_state_value",
        "average_value",
        "discounted_advantage_sum",
        "action_difference",
    }

    def critic(obs: np.ndarray, action: np.ndarray) -> float:
        obs_t = th.as_tensor(obs[None], dtype=th.float32)
        act_t = th.as_tensor(model.policy.scale_action(action[None]), dtype=th.float32)
        with th.no_grad():
            return float(th.cat(model.policy.critic(obs_t, act_t), dim=1).mean())

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    errors, differences = [], []
    for t in range(len(held_out)):
        reward = 0.1 * held_out.rewards[t] + 1.0
        bootstrap = (
            0.0
            if held_out.terminations[t]
            else critic(held_out.next_observations[t], act(held_out.next_observations[t]))
        )
        errors.append((critic(held_out.observations[t], held_out.actions[t]) - reward - model.gamma * bootstrap) ** 2)
        differences.append(float(np.sum((held_out.actions[t] - act(held_out.observations[t])) ** 2)))
    assert results["td_error"] == pytest.approx(np.mean(errors), rel=1e-4)
    assert results["action_difference"] == pytest.approx(np.mean(differences), rel=1e-4)
    assert results["initial_state_value"] == pytest.approx(
        critic(held_out.observations[0], act(held_out.observations[0])), rel=1e-4
    )


def test_callback_logs_and_keeps_the_best_model_by_each_direction(pendulum_transitions, tmp_path: Path) -> None:
    split = split_episodes(pendulum_transitions, 0.2, seed=0, output=tmp_path / "data")
    model = TD3BC(
        "MlpPolicy", "Pendulum-v1", dataset=split.train, policy_kwargs=dict(net_arch=[16]), device="cpu", seed=0
    )
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    lower = OfflineEvalCallback(
        split.validation, eval_freq=5, best_model_save_path=tmp_path / "td", log_path=tmp_path, verbose=0
    )
    higher = OfflineEvalCallback(
        split.validation,
        metrics=["initial_state_value", SoftOPC(return_threshold=-1000.0)],
        eval_freq=5,
        best_model_save_path=tmp_path / "q0",
        verbose=0,
    )
    model.learn(20, callback=[lower, higher], log_interval=None)
    assert lower.best_metric == "td_error" and len(lower.evaluations["td_error"]) == 4
    assert lower.best_value == min(lower.evaluations["td_error"])  # lower is better
    assert higher.best_metric == "initial_state_value"
    assert higher.best_value == max(higher.evaluations["initial_state_value"])  # higher is better
    assert (tmp_path / "td" / "best_model.zip").exists() and (tmp_path / "q0" / "best_model.zip").exists()
    saved = np.load(tmp_path / "offline_evaluations.npz")
    assert list(saved["timesteps"]) == [5, 10, 15, 20] and len(saved["average_value"]) == 4
    header = (tmp_path / "log" / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"offline_eval/td_error", "offline_eval/soft_opc", "offline_eval/best_td_error"} <= set(header)
    with pytest.raises(ValueError, match="no direction"):
        model.learn(5, callback=OfflineEvalCallback(split.validation, best_metric="average_value"))


def test_callback_on_a_model_without_critic_and_bad_input(pendulum_transitions, tmp_path: Path) -> None:
    bc = BC("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, policy_kwargs=dict(net_arch=[16]), device="cpu")
    callback = OfflineEvalCallback(pendulum_transitions, eval_freq=5, best_model_save_path=tmp_path, verbose=0)
    bc.learn(10, callback=callback, log_interval=None)
    assert list(callback.evaluations) == ["action_difference"]  # the metrics that need a critic are left out
    assert callback.best_metric == "action_difference" and (tmp_path / "best_model.zip").exists()
    with pytest.raises(ValueError, match="need a critic"):
        bc.learn(5, callback=OfflineEvalCallback(pendulum_transitions, metrics=["td_error"], eval_freq=5))
    assert list(evaluate_offline(bc, pendulum_transitions)) == ["action_difference"]  # the same rule without learn
    with pytest.raises(ValueError, match="need a critic"):
        evaluate_offline(bc, pendulum_transitions, metrics=["td_error", "action_difference"])
    with pytest.raises(ValueError, match="metrics: expected names"):
        OfflineEvalCallback(pendulum_transitions, metrics=["nope"])
    with pytest.raises(ValueError, match="success signal"):
        OfflineEvalCallback(pendulum_transitions, metrics=["soft_opc"])
