"""OfflineAlgorithm and BatchDDPG on real Pendulum/Fetch data made here: learn, callbacks, logging, save/load."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.logger import KVWriter, Logger

from sb3_offline import BatchDDPG, OfflineReplayBuffer
from sb3_offline.algorithms import ALGOS
from sb3_offline.datasets import record_transitions, save_hdf5, save_minari, save_npz


class CountingWrapper(gym.Wrapper):
    """Counts every step and reset the algorithm makes on the env it was given."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0
        self.resets = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        return super().step(action)

    def reset(self, **kwargs: Any) -> Any:
        self.resets += 1
        return super().reset(**kwargs)


class MemoryWriter(KVWriter):
    """Keeps every dump of the SB3 logger in memory."""

    def __init__(self) -> None:
        self.dumps: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append({**key_values, "_step": step})

    def close(self) -> None:
        pass


class StepCounter(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.started = self.ended = False

    def _on_training_start(self) -> None:
        self.started = True

    def _on_step(self) -> bool:
        self.calls += 1
        return True

    def _on_training_end(self) -> None:
        self.ended = True


@pytest.fixture(scope="module")
def pendulum_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = record_transitions("Pendulum-v1", 2000, seed=1)
    return save_hdf5(data, tmp_path_factory.mktemp("data") / "pendulum.hdf5", next_observations=False)


def make_model(dataset: Any, env: gym.Env | None = None, **kwargs: Any) -> BatchDDPG:
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("device", "cpu")
    return BatchDDPG("MlpPolicy", env if env is not None else gym.make("Pendulum-v1"), dataset=dataset, **kwargs)


def test_learn_counts_gradient_steps_and_never_touches_env(pendulum_file: Path) -> None:
    env = CountingWrapper(gym.make("Pendulum-v1"))
    model = make_model(str(pendulum_file), env=env)
    counter = StepCounter()
    model.learn(total_timesteps=120, callback=counter)
    assert env.steps == 0 and env.resets == 0
    assert model.num_timesteps == 120 and model._n_updates == 120
    assert counter.calls == 120 and counter.started and counter.ended


def test_learn_continues_without_reset(pendulum_file: Path) -> None:
    model = make_model(str(pendulum_file))
    model.learn(50)
    model.learn(30, reset_num_timesteps=False)
    assert model.num_timesteps == 80 and model._n_updates == 80
    model.learn(20)
    assert model.num_timesteps == 20


def test_sb3_callbacks_and_progress_bar(pendulum_file: Path, tmp_path: Path) -> None:
    eval_env = CountingWrapper(gym.make("Pendulum-v1"))
    eval_cb = EvalCallback(eval_env, eval_freq=50, n_eval_episodes=1, log_path=str(tmp_path / "eval"), verbose=0)
    ckpt_cb = CheckpointCallback(save_freq=40, save_path=str(tmp_path / "ckpt"), name_prefix="ddpg")
    model = make_model(str(pendulum_file))
    model.learn(100, callback=CallbackList([eval_cb, ckpt_cb]), progress_bar=True)
    # evaluations at gradient steps 50 and 100, each one full 200-step Pendulum episode
    assert list(np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"]) == [50, 100]
    assert eval_env.steps == 400
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["ddpg_40_steps.zip", "ddpg_80_steps.zip"]
    loaded = BatchDDPG.load(tmp_path / "ckpt" / "ddpg_80_steps.zip")
    assert loaded.num_timesteps == 80


def test_early_stop_from_callback(pendulum_file: Path) -> None:
    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 25

    model = make_model(str(pendulum_file))
    model.learn(100, callback=StopAt())
    assert model.num_timesteps == 25


def test_logger_and_tensorboard(pendulum_file: Path, tmp_path: Path) -> None:
    model = make_model(str(pendulum_file), tensorboard_log=str(tmp_path / "tb"))
    model.learn(60, log_interval=20, tb_log_name="ddpg")
    runs = list((tmp_path / "tb").glob("ddpg_*"))
    assert len(runs) == 1 and list(runs[0].glob("events.out.tfevents*"))

    writer = MemoryWriter()
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    model.learn(60, log_interval=20)
    assert [d["_step"] for d in writer.dumps] == [20, 40, 60]
    for dump in writer.dumps:
        for key in ("train/critic_loss", "train/actor_loss", "time/gradient_steps_per_second"):
            assert np.isfinite(dump[key]), key


def test_batch_ddpg_critic_loss_falls(pendulum_file: Path) -> None:
    writer = MemoryWriter()
    model = make_model(str(pendulum_file))
    model.set_logger(Logger(folder=None, output_formats=[writer]))
    model.learn(1500, log_interval=100)
    losses = [d["train/critic_loss"] for d in writer.dumps]
    assert len(losses) == 15
    assert np.mean(losses[-3:]) < 0.25 * losses[0], losses


SMALL_NETS: dict[str, dict[str, Any]] = {
    "batch_ddpg": dict(policy_kwargs=dict(net_arch=[32, 32])),
    "bc": dict(policy_kwargs=dict(net_arch=[32, 32])),
    "bcq": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32], vae=[32]))),
    "plas": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32], vae=[32])), vae_steps=100),
    "awac": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32])), batch_size=64, buffer_size=0),
    "lapo": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32], vae=[32], vf=[32])), batch_size=64),
    "cql": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64, bc_steps=100),  # through both kinds of update
    "calql": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64, bc_steps=100, buffer_size=0),
    "iql": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64),
    "td3bc": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64),  # through both kinds of update
}


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_no_host_sync_and_no_numpy_copies_per_step(
    algo: str, pendulum_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ALGOS[algo](
        "MlpPolicy", gym.make("Pendulum-v1"), dataset=str(pendulum_file), device="cpu", **SMALL_NETS[algo]
    )
    model.learn(5)  # warm-up outside the counted region
    calls = {"item": 0, "as_tensor": 0, "from_numpy": 0}
    item, as_tensor, from_numpy = th.Tensor.item, th.as_tensor, th.from_numpy

    def counting(name: str, fn: Any) -> Any:
        # Calls from inside torch (Adam reads its CPU step counters with .item(): no device sync)
        # are not ours; everything called from sb3_offline, SB3 or the test is counted.
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not str(sys._getframe(1).f_globals.get("__name__", "")).startswith("torch"):
                calls[name] += 1
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(th.Tensor, "item", counting("item", item))
    monkeypatch.setattr(th, "as_tensor", counting("as_tensor", as_tensor))
    monkeypatch.setattr(th, "from_numpy", counting("from_numpy", from_numpy))
    model.learn(200, log_interval=None, reset_num_timesteps=False)  # PLAS: through both of its phases
    assert calls == {"item": 0, "as_tensor": 0, "from_numpy": 0}


def test_save_load_round_trip(pendulum_file: Path, tmp_path: Path) -> None:
    env = gym.make("Pendulum-v1")
    model = make_model(str(pendulum_file), env=env)
    model.learn(100)
    obs = np.stack([env.observation_space.sample() for _ in range(8)])
    before, _ = model.predict(obs, deterministic=True)
    single, _ = model.predict(obs[0], deterministic=True)
    model.save(tmp_path / "ddpg")

    with zipfile.ZipFile(tmp_path / "ddpg.zip") as archive:
        assert {"policy.pth", "actor.optimizer.pth", "critic.optimizer.pth"} <= set(archive.namelist())
        data = json.loads(archive.read("data"))
    assert data["dataset"] == str(pendulum_file) and "replay_buffer" not in data
    # the dataset is not in the checkpoint: a 10x larger dataset gives the same size of file
    big = save_hdf5(record_transitions("Pendulum-v1", 20_000, seed=9), tmp_path / "big.hdf5")
    big_model = make_model(str(big), env=env)
    big_model.learn(100)
    big_model.save(tmp_path / "ddpg_big")
    size, big_size = (os.path.getsize(tmp_path / name) for name in ("ddpg.zip", "ddpg_big.zip"))
    assert abs(size - big_size) < 2_000, (size, big_size)

    loaded = BatchDDPG.load(tmp_path / "ddpg", env=env)
    assert loaded.replay_buffer is None and loaded.dataset == str(pendulum_file)
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(before, after)
    np.testing.assert_allclose(single, after[0], rtol=1e-5, atol=1e-6)  # batch of 1 vs 8: other matmul kernels
    assert np.all(np.abs(after) <= 2.0)
    # training resumes: the dataset is read again from the saved reference
    loaded.learn(10, reset_num_timesteps=False)
    assert isinstance(loaded.replay_buffer, OfflineReplayBuffer) and loaded.num_timesteps == 110

    # a model loaded without env predicts too
    np.testing.assert_allclose(BatchDDPG.load(tmp_path / "ddpg").predict(obs, deterministic=True)[0], before)


def test_load_with_another_dataset(pendulum_file: Path, tmp_path: Path) -> None:
    model = make_model(str(pendulum_file))
    model.save(tmp_path / "ddpg")
    other = save_npz(record_transitions("Pendulum-v1", 300, seed=5), tmp_path / "other.npz")
    loaded = BatchDDPG.load(tmp_path / "ddpg", env=gym.make("Pendulum-v1"), dataset=str(other))
    loaded.learn(5)
    assert loaded.replay_buffer is not None and loaded.replay_buffer.size() == 300


def test_same_seed_same_result(pendulum_file: Path) -> None:
    # SB3 seeds the global generators when the model is built, so each model is built, then trained
    a = make_model(str(pendulum_file), seed=3)
    a.learn(30)
    b = make_model(str(pendulum_file), seed=3)
    b.learn(30)
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert th.equal(pa, pb)
    c = make_model(str(pendulum_file), seed=4)
    c.learn(30)
    assert not all(th.equal(pa, pc) for pa, pc in zip(a.policy.parameters(), c.policy.parameters(), strict=True))


def test_device_auto_on_cpu(pendulum_file: Path) -> None:
    model = make_model(str(pendulum_file), device="auto")
    expected = "cuda" if th.cuda.is_available() else "cpu"
    assert model.device.type == expected
    assert isinstance(model.replay_buffer, OfflineReplayBuffer)
    assert model.replay_buffer.actions.device.type == expected
    model.learn(5)


def test_env_recovered_from_minari_dataset() -> None:
    save_minari(record_transitions("Pendulum-v1", 400, seed=2), "test/pendulum-random-v0")
    model = BatchDDPG("MlpPolicy", None, dataset="test/pendulum-random-v0", device="cpu", seed=0)
    assert model.env is not None and model.observation_space.shape == (3,)
    model.learn(10)
    assert model.replay_buffer is not None and model.replay_buffer.size() == 400


def test_env_required_when_dataset_has_none(tmp_path: Path) -> None:
    data = record_transitions("Pendulum-v1", 50, seed=0)
    data.env_id = None
    path = save_npz(data, tmp_path / "anonymous.npz")
    with pytest.raises(ValueError, match="env"):
        BatchDDPG("MlpPolicy", None, dataset=str(path))
    # without a dataset, the buffer holds only the rows learn_online adds: offline learn refuses, naming the dataset
    with pytest.raises(ValueError, match=r"dataset: expected a dataset to learn from"):
        BatchDDPG("MlpPolicy", gym.make("Pendulum-v1")).learn(1)


def test_dataset_through_replay_buffer_kwargs(pendulum_file: Path) -> None:
    model = BatchDDPG(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        replay_buffer_class=OfflineReplayBuffer,
        replay_buffer_kwargs=dict(dataset=str(pendulum_file)),
        device="cpu",
    )
    model.learn(5)
    assert model.replay_buffer is not None and model.replay_buffer.size() > 1900


def test_dict_observations_multi_input_policy() -> None:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FetchReach-v4")
    data = record_transitions(env, 150, seed=0)
    model = BatchDDPG("MultiInputPolicy", env, dataset=data, device="cpu", seed=0, batch_size=32)
    model.learn(20)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)


def test_learn_online_appends_after_dataset(pendulum_file: Path) -> None:
    env = CountingWrapper(gym.make("Pendulum-v1"))
    model = make_model(str(pendulum_file), env=env, buffer_size=1000)
    model.learn(20)
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    n_data = buffer.dataset_size
    dataset_obs = buffer.observations[:n_data].clone()  # type: ignore[index]
    model.learn_online(250)
    assert env.steps == 250
    assert buffer.size() == n_data + 250 and model.replay_buffer is buffer
    assert th.equal(buffer.observations[:n_data], dataset_obs)  # type: ignore[index]
    assert buffer.timeouts[n_data : n_data + 250].sum() == 1  # the 200-step time limit, not a termination
    assert buffer.dones[n_data : n_data + 250].sum() == 0


def test_offline_buffer_save_and_load_replay_buffer(pendulum_file: Path, tmp_path: Path) -> None:
    model = make_model(str(pendulum_file), buffer_size=300)
    model.learn_online(50)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    other = make_model(str(pendulum_file))
    other.load_replay_buffer(tmp_path / "buffer.pkl")
    buffer = other.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer) and buffer.size() == model.replay_buffer.size()  # type: ignore[union-attr]
    assert buffer.actions.device == other.device
    other.learn(5)


def test_dataset_given_twice(pendulum_file: Path) -> None:
    data = record_transitions("Pendulum-v1", 200, seed=0)
    env = gym.make("Pendulum-v1")
    # the same object (or path) twice is fine; two different ones is an error that names the field
    model = BatchDDPG("MlpPolicy", env, dataset=data, replay_buffer_kwargs=dict(dataset=data), device="cpu")
    assert model.replay_buffer is not None and model.replay_buffer.size() == 200
    BatchDDPG("MlpPolicy", env, dataset=str(pendulum_file), replay_buffer_kwargs=dict(dataset=pendulum_file))
    other = record_transitions("Pendulum-v1", 100, seed=1)
    with pytest.raises(ValueError, match="dataset: given twice"):
        BatchDDPG("MlpPolicy", env, dataset=data, replay_buffer_kwargs=dict(dataset=other))
