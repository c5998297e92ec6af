"""
The commands talk with their output in a file (not a terminal: CI, nohup): ``train``'s time estimate and a line per
evaluation, ``ope``'s line per checkpoint, and its warning when FQE's estimate has not settled.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from sb3_offline import BC
from sb3_offline.cli import main
from sb3_offline.ope import FQE
from sb3_offline.ope.report import UnsettledEstimateWarning, evaluate_checkpoints
from sb3_offline.ope.settling import EstimateTrace, settling

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


def run_to_file(args: list[str], path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """``main(args)`` with stdout a file, as under nohup or CI: its status and what it wrote."""
    with open(path, "w") as f:
        monkeypatch.setattr(sys, "stdout", f)
        status = main(args)
        monkeypatch.undo()
    return status, path.read_text()


def test_train_to_a_file_prints_a_time_estimate_and_a_line_per_evaluation(
    pendulum_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["train", "--algo", "bc", "--dataset", str(pendulum_file), "--steps", "150", "--eval-freq", "50"]
    args += ["--eval-episodes", "1", "--output", str(tmp_path / "logs"), "-params", "batch_size:32"]
    status, out = run_to_file(args, tmp_path / "train.log", monkeypatch)
    assert status == 0
    assert re.search(r"^about \d+ s for 150 gradient steps \(\d+/s over steps 10-110", out, re.MULTILINE), out
    lines = re.findall(r"^step (\d+)/150: return (-?[\d.]+) ± [\d.]+ over 1 episodes(.*)$", out, re.MULTILINE)
    assert [int(step) for step, _, _ in lines] == [50, 100, 150]
    for _, _, rest in lines:
        assert re.fullmatch(r"; elapsed \d+ s, left ~\d+ s", rest) or re.fullmatch(
            r", normalized -?[\d.]+; elapsed \d+ s, left ~\d+ s", rest
        ), rest
    assert lines[-1][2].endswith("left ~0 s")


def bc_checkpoint(pendulum_file: Path, path: Path) -> Path:
    model = BC("MlpPolicy", "Pendulum-v1", dataset=str(pendulum_file), seed=0, device="cpu", batch_size=32)
    model.policy_kwargs = {}
    model.learn(20)
    model.save(path)
    return path.with_suffix(".zip")


def test_ope_reports_each_checkpoint_and_warns_when_the_estimate_has_not_settled(
    pendulum_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = bc_checkpoint(pendulum_file, tmp_path / "bc")
    args = ["ope", str(checkpoint), "--dataset", str(pendulum_file), "--steps", "200", "--net-arch", "16,16"]
    err_file = tmp_path / "err.log"
    with open(err_file, "w") as err:
        monkeypatch.setattr(sys, "stderr", err)
        status, out = run_to_file([*args, "--output", str(tmp_path / "ope")], tmp_path / "ope.log", monkeypatch)
    assert status == 0
    # the phase before FQE's steps (the policy's actions at every state) is announced, then timed
    assert re.search(r"^\[1/1\] \S+/bc: the policy's actions at the dataset's states$", out, re.MULTILINE), out
    assert re.search(r"^\[1/1\] \S+/bc: actions ready in \d+ s; fitting FQE for 200 steps$", out, re.MULTILINE), out
    assert re.search(
        r"^\[1/1\] \S+/bc: FQE -?[\d.]+ \[.*\] \(NOT SETTLED\); \d+ s, elapsed \d+ s, left ~0 s$", out, re.MULTILINE
    ), out
    errors = err_file.read_text()
    assert re.search(r"bc: FQE's estimate is not settled: the estimate moved [\d.]+% over the last 4 checks", errors)
    assert "rerun with more --steps" in errors


def test_a_settled_fit_gets_no_warning(pendulum_file: Path, tmp_path: Path) -> None:
    # gamma 0.5 and a target update every 10 steps: a horizon of a few steps, settled in a few hundred updates
    checkpoint = bc_checkpoint(pendulum_file, tmp_path / "bc")
    kwargs = dict(batch_size=64, target_update_interval=10, learning_rate=1e-3, policy_kwargs=dict(net_arch=[32, 32]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsettledEstimateWarning)
        (report,) = evaluate_checkpoints([checkpoint], str(pendulum_file), steps=1500, gamma=0.5, fqe_kwargs=kwargs)
    assert report.settling is not None and report.settling.settled and len(report.settling.values) == 10
    with pytest.warns(UnsettledEstimateWarning, match="not settled"):
        evaluate_checkpoints([checkpoint], str(pendulum_file), steps=100, gamma=0.99, fqe_kwargs=kwargs)


def test_the_trace_leaves_the_fit_unchanged(pendulum_file: Path, tmp_path: Path) -> None:
    checkpoint = bc_checkpoint(pendulum_file, tmp_path / "bc")
    fits = []
    for callback in (None, EstimateTrace(10)):
        fqe = FQE(str(checkpoint), dataset=str(pendulum_file), seed=0, device="cpu", policy_kwargs=dict(net_arch=[16]))
        fqe.learn(50, callback=callback)
        fits.append(fqe.estimate().value)
    assert fits[0] == fits[1]


def test_settling_rule() -> None:
    assert not settling([1, 2, 3], [1.0, 1.0, 1.0]).settled  # fewer checks than the window
    assert settling([1, 2, 3, 4, 5], [0.0, -90.0, -100.0, -101.0, -102.0]).settled is False  # 12% over the last 4
    result = settling([1, 2, 3, 4, 5], [0.0, -100.0, -101.0, -102.0, -103.0])
    assert result.settled and np.isclose(result.change, 3 / 103)


def test_ope_help_says_how_many_steps_the_estimate_needs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["ope", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "on the shipped Pendulum dataset about 10000 for a policy near the data's" in text
