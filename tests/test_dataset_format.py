"""``replay_buffer_kwargs=dict(dataset_format=...)``: the reader of a file whose name does not say its format."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sb3_offline import BC
from sb3_offline.datasets import record_transitions, save_npz


def test_dataset_format_names_the_reader_for_the_env_and_the_buffer(tmp_path) -> None:
    data = record_transitions("Pendulum-v1", 60, seed=0)
    path = tmp_path / "logs.bin"
    shutil.copy(save_npz(data, tmp_path / "logs.npz"), path)
    model = BC("MlpPolicy", None, dataset=str(path), replay_buffer_kwargs=dict(dataset_format="npz"), device="cpu")
    assert model.env is not None and model.observation_space.shape == (3,)  # the env id recorded in the file
    assert model.replay_buffer.dataset_size == 60
    np.testing.assert_allclose(model.replay_buffer.rewards[:, 0].numpy(), data.rewards)
    model.learn(2)
    with pytest.raises(ValueError, match="format"):  # without it, a .bin file has no reader
        BC("MlpPolicy", None, dataset=str(path), device="cpu")
