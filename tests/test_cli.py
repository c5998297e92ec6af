"""The sb3-offline command and the packaged zoo config, run for real on small Pendulum data."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from sb3_offline import BatchDDPG
from sb3_offline.algorithms import ALGOS
from sb3_offline.cli import DEFAULT_DATASET, main


def test_record_then_train_then_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pendulum.npz"
    assert main(["record", "--env", "Pendulum-v1", "--steps", "400", "--output", str(data)]) == 0
    model_path = tmp_path / "ddpg"
    args = ["train", "--dataset", str(data), "--env", "Pendulum-v1", "--steps", "60", "--eval-episodes", "1"]
    assert main([*args, "--output", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "batch_ddpg on" in out and "random" in out
    model = BatchDDPG.load(model_path, env=gym.make("Pendulum-v1"))
    assert model.num_timesteps == 60


def test_default_train_needs_no_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the README's default job: the dataset is recorded into the (test's) local Minari folder once
    args = ["train", "--steps", "20", "--eval-episodes", "0", "--output", str(tmp_path / "m")]
    assert main(args) == 0
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert f"Recording 20000 random Pendulum-v1 transitions as '{DEFAULT_DATASET}'" in out
    assert DEFAULT_DATASET in out.split("Minari datasets in")[1]
    assert (tmp_path / "m.zip").exists()


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_train_every_algorithm(algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pendulum.hdf5"
    assert main(["record", "--env", "Pendulum-v1", "--steps", "300", "--output", str(data)]) == 0
    args = ["train", "--algo", algo, "--dataset", str(data), "--steps", "3", "--eval-episodes", "1"]
    assert main([*args, "--output", str(tmp_path / algo)]) == 0  # the env is recovered from the file
    assert f"{algo} on {data}" in capsys.readouterr().out
    loaded = ALGOS[algo].load(tmp_path / algo)
    assert loaded.num_timesteps == 3
