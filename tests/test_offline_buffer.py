"""``OfflineReplayBuffer`` on recorded data: samples (shapes, device, scaled actions, terminations as dones), exact
rows, every source holding the same data, zero-copy adoption of files, Dict observations, the online ring, bad
arguments."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch as th
from stable_baselines3.common import save_util as sb3_save_util
from stable_baselines3.common.save_util import save_to_pkl
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from transitions_checks import (
    assert_transitions_equal,
    copy_rows,
    make_sb3_buffer,
    offline_buffer,
)

from sb3_offline import OfflineReplayBuffer
from sb3_offline.datasets import (
    load_hdf5,
    save_hdf5,
    save_minari,
    save_npz,
    validate_transitions,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari.*")

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


# -------------------------------------------------------------------------------- OfflineReplayBuffer
def test_offline_buffer_sample_shapes_and_device(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(pendulum_transitions, pendulum_env.observation_space, pendulum_env.action_space)
    assert buffer.size() == len(pendulum_transitions) == buffer.dataset_size == buffer.buffer_size
    assert buffer.env_id == "Pendulum-v1"
    assert buffer.dataset_name == "recorded:Pendulum-v1"
    samples = buffer.sample(64)
    assert isinstance(samples, ReplayBufferSamples)
    assert samples.observations.shape == (64, 3)
    assert samples.next_observations.shape == (64, 3)
    assert samples.actions.shape == (64, 1)
    assert samples.rewards.shape == (64, 1)
    assert samples.dones.shape == (64, 1)
    tensors = (samples.observations, samples.next_observations, samples.actions, samples.rewards, samples.dones)
    for tensor in tensors:
        assert tensor.device == th.device("cpu")
        assert tensor.dtype == th.float32
    assert samples.discounts is None  # no n-step returns: the algorithm uses its own gamma
    assert samples.actions.abs().max() <= 1.0
    assert (samples.dones == 0).all()  # Pendulum only truncates


def test_offline_buffer_stores_scaled_actions_and_flags(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(pendulum_transitions, pendulum_env.observation_space, pendulum_env.action_space)
    np.testing.assert_allclose(buffer.actions[:, 0].numpy(), pendulum_transitions.actions[:, 0] / 2, atol=1e-6)
    np.testing.assert_array_equal(buffer.observations.numpy(), pendulum_transitions.observations)
    np.testing.assert_array_equal(buffer.next_observations.numpy(), pendulum_transitions.next_observations)
    np.testing.assert_array_equal(buffer.rewards[:, 0].numpy(), pendulum_transitions.rewards)
    np.testing.assert_array_equal(buffer.timeouts[:, 0].numpy(), pendulum_transitions.truncations)
    # truncations are not dones: they bootstrap from the next observation
    assert buffer.timeouts.sum().item() == 5
    assert buffer.dones.sum().item() == 0


def test_offline_buffer_dones_are_terminations(inverted_transitions, inverted_env_spaces):
    buffer = offline_buffer(inverted_transitions, *inverted_env_spaces)
    np.testing.assert_array_equal(buffer.dones[:, 0].numpy(), inverted_transitions.terminations)
    np.testing.assert_array_equal(buffer.timeouts[:, 0].numpy(), inverted_transitions.truncations)
    # InvertedPendulum actions are in [-3, 3]
    np.testing.assert_allclose(buffer.actions[:, 0].numpy(), inverted_transitions.actions[:, 0] / 3, atol=1e-6)
    truncated = th.as_tensor(np.flatnonzero(inverted_transitions.truncations))
    assert (buffer.gather(truncated).dones == 0).all()
    terminal = th.as_tensor(np.flatnonzero(inverted_transitions.terminations))
    assert (buffer.gather(terminal).dones == 1).all()
    # a large batch sees both values, matching the stored terminations
    th.manual_seed(0)
    samples = buffer.sample(4096)
    assert set(samples.dones.unique().tolist()) == {0.0, 1.0}


def test_offline_buffer_gather_returns_exact_rows(inverted_transitions, inverted_env_spaces):
    buffer = offline_buffer(inverted_transitions, *inverted_env_spaces)
    rows = np.array([0, 5, 17, 123, len(inverted_transitions) - 1, 5])
    batch = buffer.gather(th.as_tensor(rows))
    t = inverted_transitions
    # InvertedPendulum's observations are float64; the buffer holds float32
    assert t.observations.dtype == np.float64
    np.testing.assert_array_equal(batch.observations.numpy(), t.observations[rows].astype(np.float32))
    np.testing.assert_array_equal(batch.next_observations.numpy(), t.next_observations[rows].astype(np.float32))
    np.testing.assert_allclose(batch.actions.numpy(), t.actions[rows] / 3, atol=1e-6)
    np.testing.assert_array_equal(batch.rewards[:, 0].numpy(), t.rewards[rows])
    np.testing.assert_array_equal(batch.dones[:, 0].numpy(), t.terminations[rows])
    # SB3's _get_samples path gives the same
    same = buffer._get_samples(rows)
    for a, b in zip(batch, same, strict=True):
        assert (a is None and b is None) or th.equal(a, b)


def test_offline_buffer_from_every_source_holds_the_same_data(tmp_path, pendulum_transitions, pendulum_env):
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    save_hdf5(pendulum_transitions, tmp_path / "d.hdf5")
    save_npz(pendulum_transitions, tmp_path / "d.npz")
    dataset = save_minari(pendulum_transitions, "test/source-v0")
    reference = offline_buffer(pendulum_transitions, *spaces)
    for source in (tmp_path / "d.hdf5", str(tmp_path / "d.npz"), "test/source-v0", dataset):
        buffer = offline_buffer(source, *spaces)
        assert buffer.size() == 1000
        assert th.equal(buffer.observations, reference.observations)
        assert th.equal(buffer.next_observations, reference.next_observations)
        assert th.equal(buffer.actions, reference.actions)
        assert th.equal(buffer.rewards, reference.rewards)
        assert th.equal(buffer.dones, reference.dones)
        assert th.equal(buffer.timeouts, reference.timeouts)
    assert offline_buffer("test/source-v0", *spaces).dataset_name == "test/source-v0"


@pytest.mark.parametrize("online_capacity", [0, 64])
def test_offline_buffer_from_a_file_stores_without_copies(
    tmp_path, pendulum_transitions, pendulum_env, online_capacity
):
    """
    A file read by the buffer is stored in place, with the same values: no copy until the first online transition
    makes the online rows (then the dataset's rows are copied into the larger tensors once).
    """
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    snapshot = copy_rows(pendulum_transitions)
    reference = offline_buffer(pendulum_transitions, *spaces, online_capacity=online_capacity)
    assert_transitions_equal(pendulum_transitions, snapshot)  # in-memory data is the caller's: never changed
    save_hdf5(pendulum_transitions, tmp_path / "d.hdf5")
    read, validated = [], []

    def spy(function, into):
        def wrapped(*args, **kwargs):
            into.append(function(*args, **kwargs))
            return into[-1]

        return wrapped

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sb3_offline.datasets.loaders.load_hdf5", spy(load_hdf5, read))
        mp.setattr("sb3_offline.buffers.offline.validate_transitions", spy(validate_transitions, validated))
        buffer = offline_buffer(tmp_path / "d.hdf5", *spaces, online_capacity=online_capacity)
    assert buffer.buffer_size == 1000 + online_capacity
    for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        assert th.equal(getattr(buffer, name), getattr(reference, name)), name
    assert not buffer.observations[1000:].any() and not buffer.actions[1000:].any()  # online rows start at zero
    # the validated observations are released once stored; without online rows the arrays read *are* the storage
    ((loaded,), (checked,)) = read, validated
    assert len(checked.observations) == 0 and len(checked.next_observations) == 0 and len(checked) == 1000

    def same_memory(tensor, array):
        return tensor.untyped_storage().data_ptr() == th.from_numpy(array).untyped_storage().data_ptr()

    assert same_memory(buffer.observations, loaded.observations)
    assert same_memory(buffer.next_observations, loaded.next_observations)
    assert same_memory(buffer.actions, checked.actions)
    if online_capacity:
        obs = np.zeros((1, 3), dtype=np.float32)
        buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
        assert len(buffer.observations) == 1000 + online_capacity
        assert not same_memory(buffer.observations, loaded.observations)
        for name in ("observations", "actions", "rewards"):
            assert th.equal(getattr(buffer, name)[:1000], getattr(reference, name)), name


def test_offline_buffer_does_not_keep_a_larger_array_alive(tmp_path, pendulum_transitions, pendulum_env):
    """
    An SB3 buffer of 2000 rows holding 1000 is read as views of its arrays: those are copied, not adopted, so the
    2000-row arrays are freed once the offline buffer is built (adopting a view would keep its whole base alive).
    """
    spaces = (pendulum_env.observation_space, pendulum_env.action_space)
    save_to_pkl(tmp_path / "b.pkl", make_sb3_buffer(pendulum_transitions, 2000, *spaces))
    bases = []
    real_load_from_pkl = sb3_save_util.load_from_pkl

    def spy(path, *args, **kwargs):
        unpickled = real_load_from_pkl(path, *args, **kwargs)
        for array in (unpickled.observations, unpickled.next_observations):
            while isinstance(array.base, np.ndarray):  # the array that owns the memory (numpy keeps only the owner)
                array = array.base
            bases.append(weakref.ref(array))
        return unpickled

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sb3_save_util, "load_from_pkl", spy)
        buffer = offline_buffer(tmp_path / "b.pkl", *spaces)
    gc.collect()
    assert buffer.size() == 1000 and len(bases) == 2
    assert all(base() is None for base in bases), "the SB3 buffer's 2000-row arrays are still held"
    reference = offline_buffer(pendulum_transitions, *spaces)
    assert th.equal(buffer.observations, reference.observations)
    assert th.equal(buffer.next_observations, reference.next_observations)
    th.testing.assert_close(buffer.actions, reference.actions, atol=1e-5, rtol=0)


def test_offline_buffer_dict_observations(fetch_transitions, fetch_env_spaces):
    buffer = offline_buffer(fetch_transitions, *fetch_env_spaces)
    assert buffer.size() == 120
    samples = buffer.sample(32)
    assert isinstance(samples, DictReplayBufferSamples)
    assert set(samples.observations) == set(OBS_KEYS)
    assert samples.observations["observation"].shape == (32, 10)
    assert samples.next_observations["desired_goal"].shape == (32, 3)
    assert samples.actions.shape == (32, 4)
    batch = buffer.gather(th.arange(120))
    for key in OBS_KEYS:
        expected_obs = fetch_transitions.observations[key].astype(np.float32)  # float64 in the env
        expected_next = fetch_transitions.next_observations[key].astype(np.float32)
        assert batch.observations[key].dtype == th.float32
        np.testing.assert_array_equal(batch.observations[key].numpy(), expected_obs)
        np.testing.assert_array_equal(batch.next_observations[key].numpy(), expected_next)
    # FetchReach actions are already in [-1, 1]
    np.testing.assert_allclose(batch.actions.numpy(), fetch_transitions.actions, atol=1e-6)


def test_offline_buffer_online_ring(pendulum_transitions, pendulum_env):
    data = copy_rows(pendulum_transitions, 50)
    buffer = offline_buffer(data, pendulum_env.observation_space, pendulum_env.action_space, online_capacity=5)
    assert buffer.size() == 50 and buffer.buffer_size == 55 and buffer.online_size == 0
    dataset_obs = buffer.observations[:50].clone()
    dataset_actions = buffer.actions[:50].clone()
    dataset_dones = buffer.dones[:50].clone()

    def add(k: int, done: bool = False, truncated: bool = False) -> None:
        obs = np.full((1, 3), 100.0 + k, dtype=np.float32)
        buffer.add(
            obs,
            obs + 0.5,
            np.array([[0.1 * (k % 10) - 0.5]], dtype=np.float32),
            np.array([-float(k)]),
            np.array([done]),
            [{"TimeLimit.truncated": truncated}] if truncated else [{}],
        )

    sizes = []
    for k in range(7):
        add(k, done=(k == 1), truncated=False)
        sizes.append(buffer.size())
    assert sizes == [51, 52, 53, 54, 55, 55, 55]
    assert buffer.online_size == 5
    # the dataset rows are untouched
    assert th.equal(buffer.observations[:50], dataset_obs)
    assert th.equal(buffer.actions[:50], dataset_actions)
    assert th.equal(buffer.dones[:50], dataset_dones)
    # ring: adds 5 and 6 overwrote adds 0 and 1
    stored = buffer.observations[50:55, 0].tolist()
    assert stored == [105.0, 106.0, 102.0, 103.0, 104.0]
    assert buffer.next_observations[50:55, 0].tolist() == [105.5, 106.5, 102.5, 103.5, 104.5]
    assert buffer.rewards[50:55, 0].tolist() == [-5.0, -6.0, -2.0, -3.0, -4.0]
    assert buffer.dones[50:55, 0].tolist() == [0.0] * 5  # the done of add 1 was overwritten by add 6

    # a done cut by a time limit is a timeout, any other done a termination
    add(7, done=True, truncated=True)  # row 52
    add(8, done=True)  # row 53
    assert buffer.observations[52, 0].item() == 107.0
    assert buffer.dones[52, 0].item() == 0.0 and buffer.timeouts[52, 0].item() == 1.0
    assert buffer.dones[53, 0].item() == 1.0 and buffer.timeouts[53, 0].item() == 0.0
    assert buffer.size() == 55
    assert th.equal(buffer.observations[:50], dataset_obs)

    # samples come from the dataset and the online rows only
    th.manual_seed(0)
    samples = buffer.sample(2000)
    valid = th.cat([dataset_obs, buffer.observations[50:55]])
    matches = (samples.observations[:, None, :] == valid[None]).all(-1).any(-1)
    assert matches.all()
    assert (samples.observations[:, 0] >= 100).any() and (samples.observations[:, 0] < 100).any()

    buffer.reset()
    assert buffer.size() == 50
    assert th.equal(buffer.observations[:50], dataset_obs)


def test_offline_buffer_online_add_needs_capacity(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(
        copy_rows(pendulum_transitions, 50), pendulum_env.observation_space, pendulum_env.action_space
    )
    obs = np.zeros((1, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="online_capacity"):
        buffer.add(obs, obs, np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}])
    assert buffer.size() == 50


def test_offline_buffer_online_only(pendulum_env):
    buffer = OfflineReplayBuffer(
        100, pendulum_env.observation_space, pendulum_env.action_space, device="cpu", online_capacity=3
    )
    assert buffer.size() == 0 and buffer.buffer_size == 3
    with pytest.raises(ValueError, match="no transitions"):
        buffer.sample(4)
    obs = np.ones((1, 3), dtype=np.float32)
    buffer.add(obs, obs, np.zeros((1, 1)), np.ones(1), np.zeros(1), [{}])
    assert buffer.size() == 1
    assert (buffer.sample(8).rewards == 1).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimize_memory_usage": True}, "optimize_memory_usage"),
        ({"handle_timeout_termination": False}, "handle_timeout_termination"),
        ({"online_capacity": -1}, "online_capacity"),
    ],
)
def test_offline_buffer_rejects_bad_arguments(pendulum_transitions, pendulum_env, kwargs, match):
    with pytest.raises(ValueError, match=match):
        offline_buffer(
            copy_rows(pendulum_transitions, 10), pendulum_env.observation_space, pendulum_env.action_space, **kwargs
        )


def test_offline_buffer_needs_data_or_capacity(pendulum_env):
    with pytest.raises(ValueError, match="online_capacity > 0"):
        OfflineReplayBuffer(100, pendulum_env.observation_space, pendulum_env.action_space, device="cpu")


def test_offline_buffer_rejects_vecnormalize_env(pendulum_transitions, pendulum_env):
    buffer = offline_buffer(
        copy_rows(pendulum_transitions, 10), pendulum_env.observation_space, pendulum_env.action_space
    )
    with pytest.raises(ValueError, match="VecNormalize"):
        buffer.sample(4, env=object())
