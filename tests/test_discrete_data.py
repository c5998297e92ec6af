"""
The dataset path for ``Discrete`` actions, on CartPole-v1 data: every file format and SB3's DQN replay buffer read as
int64 indices, each kind of bad action named with what was expected and found, the buffer's samples as DQN's, and the
offline base (:class:`~sb3_offline.common.discrete.DiscreteOfflineAlgorithm`) trained, saved, loaded and predicting
as SB3's DQN.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from discrete_data import cartpole_dataset, cartpole_transitions
from stable_baselines3 import DQN
from transitions_checks import offline_buffer

from sb3_offline.common.discrete import DiscreteOfflineAlgorithm, DiscreteQPolicy
from sb3_offline.common.training import minimize
from sb3_offline.datasets import DatasetValidationError, load_transitions, save_minari, validate_transitions

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")


@pytest.fixture(scope="module")
def cartpole() -> gym.Env:
    return gym.make("CartPole-v1")


@pytest.fixture(scope="module")
def transitions():
    return cartpole_transitions(600, seed=0)


def test_every_format_reads_discrete_actions_as_indices(tmp_path, transitions, cartpole):
    """HDF5, npz, Minari and SB3's DQN replay buffer: int64 indices ``(N,)`` after validation, the same rows."""
    assert transitions.actions.dtype == np.int64
    assert set(np.unique(transitions.actions)) == {0, 1}
    save_minari(transitions, "cartpole/scripted-v0", env="CartPole-v1")
    sources = [
        cartpole_dataset(tmp_path / "c.hdf5", 600, seed=0),
        cartpole_dataset(tmp_path / "c.npz", 600, seed=0),
        "cartpole/scripted-v0",
    ]
    for source in sources:
        loaded = load_transitions(source)
        checked = validate_transitions(loaded, cartpole.observation_space, cartpole.action_space)
        assert checked.actions.dtype == np.int64 and checked.actions.shape == (600,), source
        np.testing.assert_array_equal(checked.actions, transitions.actions, err_msg=str(source))

    dqn = DQN("MlpPolicy", "CartPole-v1", learning_starts=1000, buffer_size=1000, seed=0)
    dqn.learn(300)
    dqn.save_replay_buffer(tmp_path / "dqn.pkl")
    loaded = load_transitions(tmp_path / "dqn.pkl", action_space=cartpole.action_space)
    checked = validate_transitions(loaded, cartpole.observation_space, cartpole.action_space)
    np.testing.assert_array_equal(checked.actions, dqn.replay_buffer.actions[:300, 0, 0])


def _with_actions(transitions, actions):
    return dataclasses.replace(transitions, actions=actions)


@pytest.mark.parametrize(
    "make_actions, expected, found",
    [
        (lambda a: np.where(np.arange(len(a)) == 5, 2, a), "action indices in 0..1", "2 at index 5"),
        (lambda a: np.where(np.arange(len(a)) == 3, -1, a), "action indices in 0..1", "-1 at index 3"),
        (lambda a: a.astype(np.float32) + (np.arange(len(a)) == 7) * 0.5, "integer action indices", "at index 7"),
        (lambda a: np.eye(2, dtype=np.float32)[a], "one action index in 0..1 per transition", "(600, 2) (one-hot"),
        (lambda a: np.stack([a, a, a], axis=1), "shape (600,) or (600, 1)", "shape (600, 3)"),
        (lambda a: a.astype(bool), "integer action indices", "dtype bool"),
    ],
    ids=["above", "negative", "fractional", "one-hot", "three-columns", "bool"],
)
def test_bad_discrete_actions_are_named(transitions, cartpole, make_actions, expected, found):
    bad = _with_actions(transitions, make_actions(transitions.actions.copy()))
    with pytest.raises(DatasetValidationError) as error:
        validate_transitions(bad, cartpole.observation_space, cartpole.action_space)
    assert error.value.field == "actions"
    assert expected in error.value.expected and found in error.value.found, str(error.value)


def test_integral_float_actions_are_indices(transitions, cartpole):
    for actions in (transitions.actions.astype(np.float32), transitions.actions[:, None].astype(np.float64)):
        checked = validate_transitions(
            _with_actions(transitions, actions), cartpole.observation_space, cartpole.action_space
        )
        assert checked.actions.dtype == np.int64
        np.testing.assert_array_equal(checked.actions, transitions.actions)


def test_discrete_space_must_start_at_zero(transitions, cartpole):
    with pytest.raises(DatasetValidationError, match="start=1"):
        validate_transitions(transitions, cartpole.observation_space, gym.spaces.Discrete(2, start=1))


def test_buffer_samples_discrete_actions_as_dqn(transitions, cartpole):
    """``(B, 1)`` int64 as SB3's ``ReplayBuffer`` gives DQN; online actions (indices) appended after the dataset."""
    buffer = offline_buffer(transitions, cartpole.observation_space, cartpole.action_space, online_capacity=4)
    assert buffer.actions.dtype == th.int64 and buffer.actions.shape == (600, 1)
    np.testing.assert_array_equal(buffer.actions[:, 0].numpy(), transitions.actions)
    batch = buffer.sample(32)
    assert batch.actions.dtype == th.int64 and batch.actions.shape == (32, 1)
    obs = transitions.observations[:1]
    buffer.add(obs, obs, np.array([1]), np.array([1.0]), np.array([0.0]), [{}])
    assert buffer.actions.shape == (604, 1) and int(buffer.actions[600, 0]) == 1


class OfflineDQN(DiscreteOfflineAlgorithm):
    """DQN's update on the dataset (SB3's ``DQN.train`` with Polyak targets): exercises the discrete base."""

    policy: DiscreteQPolicy

    def __init__(self, policy, env, learning_rate=1e-3, **kwargs):
        super().__init__(policy, env, learning_rate, **kwargs)

    def _next_update(self):
        return "dqn", self._update

    def _update(self, batch_size: int) -> None:
        data = self.replay_buffer.sample(batch_size)
        with th.no_grad():
            next_q = self.q_net_target(data.next_observations).max(dim=1, keepdim=True).values
            target = data.rewards + (1 - data.dones) * self.gamma * next_q
        current = th.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
        loss = F.smooth_l1_loss(current, target)
        minimize(self.q_net.optimizer, loss)
        self._update_targets()
        self._losses.add("loss", loss)


def test_discrete_base_trains_saves_loads_and_predicts_as_dqn(tmp_path, cartpole):
    path = cartpole_dataset(tmp_path / "cartpole.hdf5", 600, seed=0)
    model = OfflineDQN("MlpPolicy", None, 1e-3, dataset=path, batch_size=32, seed=0, device="cpu")
    assert isinstance(model.action_space, gym.spaces.Discrete) and model.env is not None
    before = [p.detach().clone() for p in model.q_net.parameters()]
    model.learn(20)
    assert any(not th.equal(b, p) for b, p in zip(before, model.q_net.parameters(), strict=True))
    obs = load_transitions(path).observations[:50]
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (50,) and actions.dtype == np.int64
    np.testing.assert_array_equal(actions, model.q_net(th.as_tensor(obs)).argmax(1).numpy())
    single, _ = model.predict(obs[0], deterministic=True)
    assert single.shape == () and cartpole.action_space.contains(single)

    model.save(tmp_path / "model.zip")
    loaded = OfflineDQN.load(tmp_path / "model.zip", device="cpu")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], actions)
    assert loaded.dataset == str(path)
    loaded.learn(5)  # the dataset is read again from its path

    loaded.exploration_rate = 1.0  # DQN.predict: random actions with probability exploration_rate
    random_actions = np.stack([loaded.predict(obs, deterministic=False)[0] for _ in range(10)])
    assert not (random_actions == actions).all()


def test_discrete_base_refuses_a_box(pendulum_file):
    with pytest.raises(AssertionError, match="The algorithm only supports"):
        OfflineDQN("MlpPolicy", None, 1e-3, dataset=pendulum_file, device="cpu")


def test_discrete_base_learns_online(tmp_path, cartpole):
    """SB3's ``collect_rollouts`` with epsilon-greedy ``predict``: the env's actions appended after the dataset."""
    path = cartpole_dataset(tmp_path / "cartpole.hdf5", 300, seed=0)
    model = OfflineDQN(
        "MlpPolicy",
        "CartPole-v1",
        1e-3,
        dataset=path,
        batch_size=16,
        buffer_size=100,
        exploration_rate=0.1,
        seed=0,
        device="cpu",
    )
    model.learn_online(50)
    assert model.replay_buffer.online_size == 50
    online = model.replay_buffer.actions[300:350, 0]
    assert online.dtype == th.int64 and set(online.tolist()) <= {0, 1}
