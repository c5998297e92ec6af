"""
``OfflineAlgorithm``, the base of every algorithm, through BatchDDPG with tiny networks on recorded Pendulum data:
learn across calls, SB3's callbacks, progress bar, logger and TensorBoard, seeds, where the dataset comes from
(a file, a Minari id, ``replay_buffer_kwargs``, ``load``), the env recovered from the dataset, what a checkpoint holds
(a reference to the dataset, never the data; the class that saved it), and what an algorithm declares (``networks``,
``learning_rates()``). What every algorithm keeps is in ``test_contract.py``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.policies import BasePolicy

from sb3_offline import AWAC, BC, BatchDDPG, OfflineReplayBuffer
from sb3_offline.bc.policies import BCPolicy
from sb3_offline.common.checkpoints import CHECKPOINT_CLASS_KEY
from sb3_offline.common.scalars import LogScalar
from sb3_offline.common.training import minimize
from sb3_offline.datasets import record_transitions, save_hdf5, save_minari, save_npz


@pytest.fixture
def make_model(tiny_model, pendulum_file):
    """``make_model(dataset=<pendulum_file>, **kwargs)``: a tiny BatchDDPG on the CPU, seed 0."""
    return lambda dataset=str(pendulum_file), **kwargs: tiny_model("batch_ddpg", dataset, **kwargs)


def test_learn_continues_without_reset(make_model) -> None:
    model = make_model()
    model.learn(50)
    model.learn(30, reset_num_timesteps=False)
    assert model.num_timesteps == 80 and model._n_updates == 80
    model.learn(20)
    assert model.num_timesteps == 20


def test_sb3_callbacks_and_progress_bar(make_model, counting_env, tmp_path: Path) -> None:
    eval_env = counting_env()
    eval_cb = EvalCallback(eval_env, eval_freq=50, n_eval_episodes=1, log_path=str(tmp_path / "eval"), verbose=0)
    ckpt_cb = CheckpointCallback(save_freq=40, save_path=str(tmp_path / "ckpt"), name_prefix="ddpg")
    model = make_model()
    model.learn(100, callback=CallbackList([eval_cb, ckpt_cb]), progress_bar=True)
    # evaluations at gradient steps 50 and 100, each one full 200-step Pendulum episode
    assert list(np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"]) == [50, 100]
    assert eval_env.steps == 400
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["ddpg_40_steps.zip", "ddpg_80_steps.zip"]
    loaded = BatchDDPG.load(tmp_path / "ckpt" / "ddpg_80_steps.zip")
    assert loaded.num_timesteps == 80


def test_early_stop_from_callback(make_model) -> None:
    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 25

    model = make_model()
    model.learn(100, callback=StopAt())
    assert model.num_timesteps == 25


def test_logger_and_tensorboard(make_model, memory_logger, tmp_path: Path) -> None:
    model = make_model(tensorboard_log=str(tmp_path / "tb"))
    model.learn(60, log_interval=20, tb_log_name="ddpg")
    runs = list((tmp_path / "tb").glob("ddpg_*"))
    assert len(runs) == 1 and list(runs[0].glob("events.out.tfevents*"))

    writer = memory_logger(model)
    model.learn(60, log_interval=20)
    assert [d["_step"] for d in writer.dumps] == [20, 40, 60]
    for dump in writer.dumps:
        for key in ("train/critic_loss", "train/actor_loss", "time/gradient_steps_per_second"):
            assert np.isfinite(dump[key]), key


def test_checkpoint_holds_a_reference_to_the_dataset_never_the_data(
    make_model, pendulum_file: Path, tmp_path: Path
) -> None:
    model = make_model().learn(10)
    model.save(tmp_path / "small")
    with zipfile.ZipFile(tmp_path / "small.zip") as archive:
        data = json.loads(archive.read("data"))
    assert data["dataset"] == str(pendulum_file) and "replay_buffer" not in data
    # a 20x larger dataset gives the same size of file
    big = save_hdf5(record_transitions("Pendulum-v1", 20_000, seed=9), tmp_path / "big.hdf5")
    make_model(str(big)).learn(10).save(tmp_path / "big")
    size, big_size = (os.path.getsize(tmp_path / name) for name in ("small.zip", "big.zip"))
    assert abs(size - big_size) < 2_000, (size, big_size)
    loaded = BatchDDPG.load(tmp_path / "small", env=gym.make("Pendulum-v1"))
    assert loaded.replay_buffer is None and loaded.dataset == str(pendulum_file)
    observations = np.stack([loaded.observation_space.sample() for _ in range(8)])
    batch, single = loaded.predict(observations, deterministic=True)[0], loaded.predict(observations[0])[0]
    np.testing.assert_allclose(single, batch[0], rtol=1e-5, atol=1e-6)  # batch of 1 vs 8: other matmul kernels


def test_checkpoint_class_check_accepts_the_same_algorithm(make_model, tmp_path: Path) -> None:
    """A user's subclass is the same algorithm both ways; a checkpoint that records no class loads as before."""

    class MyBatchDDPG(BatchDDPG):
        """A user's subclass: the same algorithm."""

    env = gym.make("Pendulum-v1")
    make_model().save(tmp_path / "ddpg.zip")
    MyBatchDDPG("MlpPolicy", env, dataset=record_transitions(env, 50, seed=0), device="cpu").save(tmp_path / "my.zip")
    assert type(MyBatchDDPG.load(tmp_path / "ddpg.zip", env=env)) is MyBatchDDPG
    assert type(BatchDDPG.load(tmp_path / "my.zip", env=env)) is BatchDDPG
    with pytest.raises(ValueError, match="expected an AWAC checkpoint, found a MyBatchDDPG checkpoint"):
        AWAC.load(tmp_path / "my.zip", env=env)
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(tmp_path / "ddpg.zip") as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "data":
                data = json.loads(content)
                del data[CHECKPOINT_CLASS_KEY]
                content = json.dumps(data).encode()
            target.writestr(item, content)
    assert type(BatchDDPG.load(old, env=env)) is BatchDDPG


def test_load_with_another_dataset(make_model, tmp_path: Path) -> None:
    model = make_model()
    model.save(tmp_path / "ddpg")
    other = save_npz(record_transitions("Pendulum-v1", 300, seed=5), tmp_path / "other.npz")
    loaded = BatchDDPG.load(tmp_path / "ddpg", env=gym.make("Pendulum-v1"), dataset=str(other))
    loaded.learn(5)
    assert loaded.replay_buffer is not None and loaded.replay_buffer.size() == 300


def test_same_seed_same_result(make_model) -> None:
    # SB3 seeds the global generators when the model is built, so each model is built, then trained
    a = make_model(seed=3)
    a.learn(30)
    b = make_model(seed=3)
    b.learn(30)
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert th.equal(pa, pb)
    c = make_model(seed=4)
    c.learn(30)
    assert not all(th.equal(pa, pc) for pa, pc in zip(a.policy.parameters(), c.policy.parameters(), strict=True))


def test_device_auto_on_cpu(make_model) -> None:
    model = make_model(device="auto")
    expected = "cuda" if th.cuda.is_available() else "cpu"
    assert model.device.type == expected
    assert isinstance(model.replay_buffer, OfflineReplayBuffer)
    assert model.replay_buffer.actions.device.type == expected
    model.learn(5)


def test_cuda_asked_for_without_cuda_is_said(make_model, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SB3's get_device falls back to the CPU silently; we warn (and still run there, as SB3 does)."""
    monkeypatch.setattr(th.cuda, "is_available", lambda: False)  # a machine without CUDA, on any machine
    with pytest.warns(UserWarning, match=r"device='cuda': CUDA is not available here .* running on the CPU"):
        model = make_model(device="cuda")
    assert model.device.type == "cpu"
    model.save(tmp_path / "model")
    with pytest.warns(UserWarning, match="device='cuda:0': CUDA is not available"):
        type(model).load(tmp_path / "model", device="cuda:0")


def test_env_recovered_from_minari_dataset(tiny_model) -> None:
    save_minari(record_transitions("Pendulum-v1", 400, seed=2), "test/pendulum-random-v0")
    model = tiny_model("batch_ddpg", "test/pendulum-random-v0", env=None)
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
        policy_kwargs=dict(net_arch=[16, 16]),
        device="cpu",
    )
    model.learn(5)
    assert model.replay_buffer is not None and model.replay_buffer.size() == 1000


def test_offline_buffer_save_and_load_replay_buffer(make_model, tmp_path: Path) -> None:
    model = make_model(buffer_size=300)
    model.learn_online(50)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    other = make_model()
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


# ------------------------------------------------------------------------------- what an algorithm declares
class ScaledBCPolicy(BCPolicy):
    """BC's policy with a learned positive scalar and its optimizer (as CQL's entropy coefficient)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scale = LogScalar(2.0)
        self.scale.optimizer = th.optim.Adam(self.scale.parameters(), lr=1.0)


class ScaledBC(BC):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ScaledBCPolicy}
    networks = (*BC.networks, "scale")

    def learning_rates(self) -> dict[str, Any]:
        return {**super().learning_rates(), "scale": 0.05}

    def _update(self, batch_size: int) -> None:
        super()._update(batch_size)
        minimize(self.scale.optimizer, (self.scale() - 1.0).pow(2).sum())


def test_a_log_scalar_gets_the_plumbing_of_a_network(pendulum_transitions, tmp_path: Path) -> None:
    """A LogScalar named in networks is aliased, has its own learning rate, and its optimizer is checkpointed."""
    model = ScaledBC(
        "MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, policy_kwargs=dict(net_arch=[16]), device="cpu",
        seed=0,
    )  # fmt: skip
    rate = lambda: model.scale.optimizer.param_groups[0]["lr"]  # noqa: E731
    assert model.scale is model.policy.scale and model.scale().item() == pytest.approx(2.0)
    assert rate() == 0.05  # its own learning rate from the start (built at 1.0)
    model.learn(5)  # and before each update
    assert rate() == 0.05 and model.scale().item() < 2.0
    assert "scale.optimizer" in model._get_torch_save_params()[0] and "scale" in model._excluded_save_params()
    model.save(tmp_path / "scaled")
    loaded = ScaledBC.load(tmp_path / "scaled", device="cpu")
    assert th.equal(loaded.scale.log_value, model.scale.log_value)
    assert loaded.scale.optimizer.state_dict()["state"][0]["step"] == 5
    with pytest.raises(ValueError, match="initial_value"):
        LogScalar(0.0)
