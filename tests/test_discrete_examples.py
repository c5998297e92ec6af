"""``examples/discrete_bcq_cartpole.py`` end to end at a tiny size (DQN expert, imperfect data, both algorithms)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "discrete_bcq_cartpole.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_discrete_bcq_cartpole_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the checkpoints are written in the working folder
    spec = importlib.util.spec_from_file_location("discrete_bcq_cartpole", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--steps", "20", "--transitions", "600", "--expert-steps", "1200", "--episodes", "1"]
    rows = module.main(args)
    assert [row[0] for row in rows] == ["random", "data", "DiscreteBC", "DiscreteBCQ"]
    assert (tmp_path / "discretebcq_cartpole.zip").exists()
    assert "| DiscreteBCQ |" in capsys.readouterr().out
