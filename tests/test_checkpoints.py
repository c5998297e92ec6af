"""
Old checkpoints keep loading: a small checkpoint of every algorithm (and FQE) saved by sb3-offline 0.1.0 before the
redesign (``tests/data/checkpoints``, made by its ``make_checkpoints.py``) loads, predicts the actions it predicted
when it was saved, and trains on from its dataset.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from golden.cases import _fixed_states, box_env

from sb3_offline.algorithms import ALGOS

FOLDER = Path(__file__).resolve().parent / "data" / "checkpoints"
ROOT = FOLDER.parents[2]
EXPECTED = json.loads((FOLDER / "expected.json").read_text())["predictions"]


@pytest.fixture
def at_root(monkeypatch):
    """The checkpoints record their dataset (and FQE its policy) relative to the repository root."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name", sorted(set(ALGOS) & set(EXPECTED)))  # the algorithms 0.1.0 had
def test_old_checkpoint_loads_predicts_and_trains(name, at_root, tmp_path):
    env = box_env()
    states = _fixed_states(env.observation_space)
    model = ALGOS[name].load(FOLDER / f"{name}.zip", env=env, device="cpu")
    actions, _ = model.predict(states, deterministic=True)
    # within the rounding of another kind of CPU (the file was made on AVX512: 2.4e-07 apart on AVX2)
    np.testing.assert_allclose(np.asarray(actions, dtype=np.float64).reshape(-1), EXPECTED[name], rtol=0, atol=1e-6)
    steps = model.num_timesteps
    model.learn(3, reset_num_timesteps=False)
    assert model.num_timesteps == steps + 3
    model.save(tmp_path / "again.zip")
    trained, _ = model.predict(states, deterministic=True)
    # load restores the random generators as saved (BCQ's deterministic actions draw from the VAE)
    again = ALGOS[name].load(tmp_path / "again.zip", env=env, device="cpu")
    np.testing.assert_array_equal(again.predict(states, deterministic=True)[0], trained)


def test_old_fqe_checkpoint_loads_and_estimates(at_root, tmp_path):
    from sb3_offline.ope import FQE

    env = box_env()
    states = _fixed_states(env.observation_space)
    fqe = FQE.load(FOLDER / "fqe.zip", env=env, device="cpu")
    policy = ALGOS["bc"].load(FOLDER / "bc.zip", device="cpu")
    values = fqe.predict_value(states, np.asarray(policy.predict(states, deterministic=True)[0]))
    np.testing.assert_allclose(np.asarray(values, dtype=np.float64).reshape(-1), EXPECTED["fqe"], rtol=1e-6, atol=1e-6)
    # the checkpoint does not move: a copy elsewhere still finds its evaluated policy relative to the root
    shutil.copy(FOLDER / "fqe.zip", tmp_path / "fqe.zip")
    assert np.isfinite(FQE.load(tmp_path / "fqe.zip", env=env, device="cpu").estimate().value)
