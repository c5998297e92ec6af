"""FQE (sb3_offline.ope.FQE): known values, terminations vs timeouts, ranking on Pendulum, any policy, plumbing."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import BOX_ALGOS
from graph_safety import strict_update_graphs
from gymnasium import spaces
from stable_baselines3 import TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_offline import BC
from sb3_offline.common.observations import obs_index
from sb3_offline.datasets import Transitions, load_transitions
from sb3_offline.datasets.behaviour import PendulumSwingUp
from sb3_offline.ope import FQE, evaluate_offline, undiscounted_from_discounted

H, GAMMA = 10, 0.9
TINY = dict(policy_kwargs=dict(net_arch=[32, 32]), device="cpu", seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


class Clock(gym.Env):
    """The state is the time ``t / H``; any action; reward 1 at every step."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)


def clock_data(n_episodes: int, terminate: bool, seed: int = 0) -> Transitions:
    """``n_episodes`` episodes of ``H`` steps of reward 1, each ended by a termination or cut by a time limit."""
    rng = np.random.default_rng(seed)
    t = np.tile(np.arange(H), n_episodes)
    last = t == H - 1
    return Transitions(
        observations=(t / H).astype(np.float32)[:, None],
        actions=rng.uniform(-1, 1, (len(t), 1)).astype(np.float32),
        rewards=np.ones(len(t), np.float32),
        next_observations=((t + 1) / H).astype(np.float32)[:, None],
        terminations=last & terminate,
        truncations=last & (not terminate),
    )


def constant_policy(obs: np.ndarray) -> np.ndarray:
    return np.array([0.5], np.float32)


@pytest.mark.parametrize("terminate", [False, True])
def test_known_value_with_terminations_and_with_timeouts(terminate: bool) -> None:
    # a timeout bootstraps (an unending episode: 1 / (1 - gamma) = 10); a termination ends the sum at H steps
    truth = (1 - GAMMA**H) / (1 - GAMMA) if terminate else 1 / (1 - GAMMA)
    fqe = FQE(
        constant_policy, dataset=clock_data(20, terminate), gamma=GAMMA, env=Clock(), learning_rate=1e-3,
        batch_size=64, target_update_interval=25, **TINY,
    )  # fmt: skip
    fqe.learn(2000)
    estimate = fqe.estimate()
    assert estimate.value == pytest.approx(truth, rel=0.05)
    assert estimate.n_episodes == 20
    assert estimate.ci_low <= estimate.value <= estimate.ci_high
    if terminate:
        assert estimate.horizon is None and estimate.undiscounted is None  # the length would depend on the policy
    else:
        assert estimate.horizon == H  # the common length of the time-limit-cut episodes
        assert estimate.undiscounted == pytest.approx(H * 1.0, rel=0.05)  # reward 1 per step
    # held-out episodes: the estimate at their initial states (all at t = 0, as the fitted data's)
    held_out = fqe.estimate(dataset=clock_data(5, terminate, seed=1))
    assert held_out.n_episodes == 5 and held_out.horizon == estimate.horizon
    assert held_out.value == pytest.approx(estimate.value, rel=1e-6)
    # Q(s_t, pi(s_t)) along an episode: flat with timeouts, falling towards 1 at the last step with terminations
    values = fqe.predict_value(np.array([[0.0], [0.9]], np.float32))
    expected = [(1 - GAMMA ** (H - t)) / (1 - GAMMA) if terminate else 1 / (1 - GAMMA) for t in (0, 9)]
    assert values == pytest.approx(expected, rel=0.1, abs=0.15)


def test_stochastic_policy_with_several_action_samples() -> None:
    rng = np.random.default_rng(0)
    fqe = FQE(
        lambda obs: rng.uniform(-1, 1, 1).astype(np.float32), dataset=clock_data(20, False), gamma=GAMMA, env=Clock(),
        deterministic=False, n_action_samples=3, learning_rate=1e-3, batch_size=64, target_update_interval=25, **TINY,
    )  # fmt: skip
    # a pool of policy_draws (8) actions per state, three of them picked per row at each update
    assert fqe._next_policy_actions is not None and fqe._next_policy_actions.shape == (200, 8, 1)
    assert fqe._next_policy_actions.std(dim=1).mean() > 0.1  # different draws per state
    fqe.learn(2000)
    assert fqe.estimate().value == pytest.approx(1 / (1 - GAMMA), rel=0.05)


def test_stochastic_policy_is_drawn_anew_at_every_update(pendulum_file: Path) -> None:
    """
    A stochastic policy is evaluated as it acts: each update takes an action from the pool of draws at every
    sampled next state at random (not one action per state kept for the whole fit), on the device, graph-safe;
    a deterministic policy keeps its one action. The estimate averages Q over the pool at the initial states.
    """
    rng = np.random.default_rng(0)
    fqe = FQE(
        lambda obs: rng.uniform(-2, 2, 1).astype(np.float32), dataset=str(pendulum_file), deterministic=False,
        batch_size=32, target_update_interval=3, **TINY,
    )  # fmt: skip
    pool = fqe._next_policy_actions
    assert pool is not None and pool.shape == (1000, fqe.policy_draws, 1) and fqe.policy_draws == 8
    idx = th.arange(32)
    picked = th.stack([fqe._next_actions(idx)[:, 0] for _ in range(20)], dim=0)  # 20 updates' actions, same rows
    assert picked.shape == (20, 32, 1)
    for row in range(32):  # each one of the row's draws, and not always the same one
        assert all(any(th.equal(action, draw) for draw in pool[row]) for action in picked[:, row])
    assert (picked.std(dim=0) > 0).all()
    backend = strict_update_graphs(fqe, warmup=3)
    fqe.learn(12, log_interval=None)
    assert backend.violations == [] and {key[0] for key in backend.kinds} == {"fqe", "fqe/target"}
    starts = fqe.replay_buffer.episode_starts
    by_hand = fqe._values(obs_index(fqe.replay_buffer.observations, starts), fqe._policy_actions[starts])
    assert fqe.estimate().initial_values == pytest.approx(by_hand.numpy().astype(np.float64), rel=1e-6)
    assert fqe._values(fqe.replay_buffer.observations[:5], fqe._policy_actions[:5, :1]).numpy() != pytest.approx(
        fqe._values(fqe.replay_buffer.observations[:5], fqe._policy_actions[:5]).numpy(), rel=1e-4
    )  # the pool's mean, not its first draw
    deterministic = FQE(PendulumSwingUp(), dataset=str(pendulum_file), **TINY)
    assert deterministic._next_policy_actions.shape == (1000, 1, 1)
    th.testing.assert_close(deterministic._next_actions(idx), deterministic._next_policy_actions[idx])


def test_target_network_follows_as_d3rlpy_counts() -> None:
    fqe = FQE(constant_policy, dataset=clock_data(2, False), gamma=GAMMA, env=Clock(), target_update_interval=3, **TINY)

    def synced() -> bool:
        pairs = zip(fqe.critic.parameters(), fqe.critic_target.parameters(), strict=True)
        return all(th.equal(p, q) for p, q in pairs)

    for step, expected in [(1, True), (2, False), (3, False), (4, True), (5, False)]:
        fqe.learn(1, reset_num_timesteps=step == 1)
        assert synced() is expected, f"after update {step}"  # d3rlpy: after updates 1, 1 + interval, ...


def pendulum_policies() -> dict[str, tuple[object, bool]]:
    good = PendulumSwingUp()
    rng = np.random.default_rng(0)
    return {
        "good": (good, True),  # about -190 return
        "medium": (lambda obs: np.clip(0.35 * good(obs), -2, 2), True),  # a weak controller, about -750
        "random": (lambda obs: rng.uniform(-2, 2, 1).astype(np.float32), False),  # about -1250
    }


@pytest.mark.slow  # more than 15 s on a busy 2-core machine
def test_ranks_good_medium_and_random_policies_on_pendulum() -> None:
    # the shipped imperfect demonstrations (noisy near-expert controller); gamma 0.95 keeps FQE's horizon short
    data = load_transitions("pendulum/imperfect-v0").select(slice(0, 10_000))
    estimates = {}
    for name, (policy, deterministic) in pendulum_policies().items():
        fqe = FQE(
            policy, dataset=data, gamma=0.95, deterministic=deterministic, n_action_samples=1 if deterministic else 4,
            learning_rate=1e-3, batch_size=256, target_update_interval=50, normalize_observations=True,
            policy_kwargs=dict(net_arch=[64, 64]), device="cpu", seed=0,
        )  # fmt: skip
        fqe.learn(2500)
        estimates[name] = fqe.estimate().value
    assert estimates["good"] > estimates["medium"] > estimates["random"], estimates


def test_any_policy_ours_sb3s_or_a_function(pendulum_file: Path, tmp_path: Path) -> None:
    bc = BC("MlpPolicy", "Pendulum-v1", dataset=str(pendulum_file), policy_kwargs=dict(net_arch=[16]), device="cpu")
    bc.learn(20)
    td3 = TD3("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[16]), device="cpu", seed=0)
    data = load_transitions(pendulum_file)
    for policy in (bc, td3, bc.policy, PendulumSwingUp()):
        fqe = FQE(policy, dataset=str(pendulum_file), **TINY)
        assert fqe.get_env() is not None  # recovered from the dataset's env id
        predict = policy if callable(policy) and not hasattr(policy, "predict") else None
        expected = (
            np.stack([predict(o) for o in data.observations[:5]])
            if predict is not None
            else policy.predict(data.observations[:5], deterministic=True)[0]  # type: ignore[union-attr]
        )
        scaled = fqe.replay_buffer.scale_action(np.asarray(expected, np.float64))
        assert fqe._policy_actions is not None
        assert fqe._policy_actions[:5, 0].numpy() == pytest.approx(scaled, abs=1e-5)
        fqe.learn(10)
        assert np.isfinite(fqe.estimate().value)
        action, _ = fqe.predict(data.observations[0], deterministic=True)  # FQE acts with the evaluated policy
        assert action == pytest.approx(np.asarray(expected[0]), abs=1e-5)

    # a checkpoint path: reloaded by FQE.load from the saved reference
    bc.save(tmp_path / "bc")
    fqe = FQE(str(tmp_path / "bc.zip"), dataset=str(pendulum_file), **TINY)
    fqe.learn(10)
    fqe.save(tmp_path / "fqe")
    loaded = FQE.load(tmp_path / "fqe", device="cpu")
    assert loaded.evaluation_policy_path == str(tmp_path / "bc.zip")
    assert loaded.estimate().value == pytest.approx(fqe.estimate().value, rel=1e-5)
    assert loaded.num_timesteps == 10


def test_learn_has_sb3_callbacks_logger_and_progress_bar(pendulum_file: Path, tmp_path: Path) -> None:
    class Count(BaseCallback):
        calls = 0

        def _on_step(self) -> bool:
            Count.calls += 1
            return True

    fqe = FQE(PendulumSwingUp(), dataset=str(pendulum_file), **TINY)
    fqe.set_logger(configure(str(tmp_path), ["csv"]))
    fqe.learn(12, callback=Count(), log_interval=6, progress_bar=True)
    assert Count.calls == 12 and fqe.num_timesteps == 12
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"train/critic_loss", "train/q_value", "train/learning_rate"} <= set(header)


def test_every_update_is_free_of_host_syncs(pendulum_file: Path) -> None:
    fqe = FQE(PendulumSwingUp(), dataset=str(pendulum_file), batch_size=32, target_update_interval=3, **TINY)
    backend = strict_update_graphs(fqe, warmup=3)
    fqe.learn(30, log_interval=None)
    assert backend.violations == []
    assert {key[0] for key in backend.kinds} == {"fqe", "fqe/target"}
    for key, runs in backend.kinds.items():
        assert (runs.eager, runs.captures) == (3, 1) and runs.replays >= 2, (key, runs)


class TrainableExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=8)
        self.linear = th.nn.Linear(int(np.prod(observation_space.shape)), 8)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


def test_bad_input(pendulum_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gamma"):
        FQE(constant_policy, dataset=str(pendulum_file), gamma=1.0)
    # the target Q-functions share the extractor: a trained one would have no target copy
    with pytest.raises(ValueError, match="features_extractor_class: expected an extractor without trainable"):
        FQE(constant_policy, dataset=str(pendulum_file), policy_kwargs={"features_extractor_class": TrainableExtractor})
    with pytest.raises(ValueError, match="policy: expected actions of shape"):
        FQE(lambda obs: np.zeros(3, np.float32), dataset=str(pendulum_file), **TINY)
    fqe = FQE(PendulumSwingUp(), dataset=str(pendulum_file), **TINY)
    with pytest.raises(ValueError, match="learn_online"):
        fqe.learn_online(10)
    fqe.save(tmp_path / "fqe")
    loaded = FQE.load(tmp_path / "fqe", device="cpu")  # the policy was a function: not in the checkpoint
    with pytest.raises(ValueError, match="evaluation_policy"):
        loaded.learn(5)
    loaded = FQE.load(tmp_path / "fqe", device="cpu", evaluation_policy=PendulumSwingUp())
    loaded.learn(5)


def test_dict_observations(fetch_transitions, fetch_env_spaces) -> None:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    fqe = FQE(
        lambda obs: np.zeros(4, np.float32), dataset=fetch_transitions, normalize_observations=True, batch_size=32,
        **TINY,
    )  # fmt: skip
    assert fqe.policy.__class__.__name__ == "MultiInputPolicy" and fqe.observation_space == fetch_env_spaces[0]
    fqe.learn(10)
    estimate = fqe.estimate()
    assert estimate.n_episodes == 3 and estimate.horizon == 50 and np.isfinite(estimate.value)
    held_out = fqe.estimate(dataset=fetch_transitions)  # the same episodes, read again as a dict of numpy arrays
    assert held_out.initial_values == pytest.approx(estimate.initial_values, rel=1e-6) and held_out.horizon == 50


def test_undiscounted_conversion() -> None:
    assert undiscounted_from_discounted(10.0, 0.9, 10) == pytest.approx(10.0)  # reward 1 per step
    # a transformed reward r' = 2 r - 1: the value of r = 1 per step is (2 - 1) / (1 - gamma) = 10
    assert undiscounted_from_discounted(10.0, 0.9, 10, reward_scale=2.0, reward_shift=-1.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="gamma"):
        undiscounted_from_discounted(1.0, 1.0, 10)


@pytest.mark.parametrize("name", BOX_ALGOS)
def test_every_algorithm_of_ours_is_judged(name: str, pendulum_file: Path, tiny_model) -> None:
    # FQE precomputes the model's actions through its policy's _predict; the metrics read its critic (if any)
    model = tiny_model(name, str(pendulum_file)).learn(3)
    fqe = FQE(model, dataset=str(pendulum_file), **TINY)
    obs = fqe.replay_buffer.observations[:4].numpy()
    expected = fqe.replay_buffer.scale_action(model.predict(obs, deterministic=True)[0].astype(np.float64))
    if name != "bcq":  # BCQ samples its VAE's candidates while acting, even deterministic
        assert fqe._policy_actions[:4, 0].numpy() == pytest.approx(expected, abs=1e-5)
    fqe.learn(5)
    assert np.isfinite(fqe.estimate().value)
    metrics = evaluate_offline(model, str(pendulum_file))
    assert all(np.isfinite(value) for value in metrics.values())
    assert ("td_error" in metrics) is (getattr(model.policy, "critic", None) is not None)
