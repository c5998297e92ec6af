"""The OPE commands on real files: train --validation-fraction, evaluate, ope; loading a checkpoint of any class."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DDPG, SAC, TD3

from sb3_offline import BC, TD3BC
from sb3_offline.cli import main
from sb3_offline.datasets import load_transitions
from sb3_offline.ope import FQE, find_algorithm_class, load_model
from sb3_offline.ope.report import evaluate_checkpoints, spearman

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


def test_train_with_held_out_episodes_then_evaluate_then_ope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pendulum.hdf5"
    assert main(["record", "--env", "Pendulum-v1", "--steps", "800", "--output", str(data)]) == 0
    common = ["--dataset", str(data), "--steps", "30", "--eval-freq", "10", "--validation-fraction", "0.25"]
    run_a, run_b = tmp_path / "logs" / "td3bc" / "Pendulum-v1_1", tmp_path / "logs" / "bc" / "Pendulum-v1_1"
    assert main(["train", "--algo", "td3bc", *common, "--eval-episodes", "1", "--output", str(tmp_path / "logs")]) == 0
    out = capsys.readouterr().out
    assert "held out 1 of 4 episodes (200 transitions)" in out and "best on the held-out episodes by td_error" in out
    train, validation = run_a / "datasets" / "train.hdf5", run_a / "datasets" / "validation.hdf5"
    assert len(load_transitions(train)) == 600 and len(load_transitions(validation)) == 200
    assert (run_a / "best_model.zip").exists() and (run_a / "offline_evaluations.npz").exists()
    model = TD3BC.load(run_a / "Pendulum-v1.zip")
    assert model.dataset == str(train.resolve())  # the checkpoint refers to the training part
    assert main(["train", "--algo", "bc", *common, "--eval-episodes", "0", "--output", str(tmp_path / "logs")]) == 0
    assert (run_b / "best_model.zip").exists()  # BC: by the action difference

    assert (
        main(["evaluate", str(run_a / "Pendulum-v1.zip"), "--episodes", "1"]) == 0
    )  # the env from the model's dataset
    out = capsys.readouterr().out
    assert "TD3BC" in out and "on Pendulum-v1: return" in out and "normalized score n/a" in out
    assert "over 1 episode;" in out  # not "1 episodes"

    report = tmp_path / "ope"
    checkpoints = [str(run_a / "Pendulum-v1.zip"), str(run_b / "Pendulum-v1.zip")]
    args = ["--dataset", str(data), "--steps", "20", "--net-arch", "16", "--device", "cpu", "--output", str(report)]
    assert main(["ope", *checkpoints, *args, "--env", "Pendulum-v1", "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert "true return" in rows[0] and {row.split("|")[2].strip() for row in rows[1:]} == {
        "td3bc/Pendulum-v1_1",
        "bc/Pendulum-v1_1",
    }
    assert "FQE's pick:" in out and "regret@1" in out
    assert (report / "ope.png").stat().st_size > 1000
    with open(report / "ope.csv") as f:
        table = list(csv.DictReader(f))
    assert [row["rank"] for row in table] == ["1", "2"] and all(row["true_discounted"] for row in table)
    assert float(table[0]["fqe_value"]) >= float(table[1]["fqe_value"])
    fqe = FQE.load(report / "fqe_bc_Pendulum-v1_1.zip", device="cpu")  # the FQE checkpoint refers to the evaluated one
    assert fqe.evaluation_policy_path == str(run_b / "Pendulum-v1.zip") and np.isfinite(fqe.estimate().value)

    # data only (no env): the table and the picture of the estimates
    assert main(["ope", checkpoints[1], *args, "--validation", str(run_b / "datasets" / "validation.hdf5")]) == 0
    out = capsys.readouterr().out
    assert "true return" not in out and "bc/Pendulum-v1_1" in out and (report / "ope.png").exists()


def test_load_model_reads_the_algorithm_from_the_checkpoint(pendulum_transitions, tmp_path: Path) -> None:
    def small() -> dict:  # a fresh dict each time: SB3's SAC writes into policy_kwargs
        return dict(policy_kwargs=dict(net_arch=[8]), device="cpu")

    models = {
        "bc": BC("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, **small()),
        "td3bc": TD3BC("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, **small()),
        "td3": TD3("MlpPolicy", "Pendulum-v1", **small()),
        "sac": SAC("MlpPolicy", "Pendulum-v1", **small()),
        "ddpg": DDPG("MlpPolicy", "Pendulum-v1", **small()),
    }
    models["fqe"] = FQE(models["bc"], dataset=pendulum_transitions, env="Pendulum-v1", **small())
    expected = {"bc": BC, "td3bc": TD3BC, "td3": TD3, "sac": SAC, "ddpg": TD3, "fqe": FQE}  # DDPG saves TD3's policy
    obs = pendulum_transitions.observations[:3]
    for name, model in models.items():
        model.save(tmp_path / name)
        assert find_algorithm_class(tmp_path / f"{name}.zip") is expected[name], name
        if name != "fqe":
            loaded = load_model(tmp_path / f"{name}.zip", device="cpu")
            assert loaded.predict(obs, deterministic=True)[0] == pytest.approx(
                model.predict(obs, deterministic=True)[0]
            )
    assert isinstance(load_model(tmp_path / "ddpg.zip", algo="ddpg", device="cpu"), DDPG)
    (tmp_path / "bogus.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"expected an SB3 \.zip"):
        find_algorithm_class(tmp_path / "bogus.zip")
    with pytest.raises(ValueError, match="algo: expected one of"):
        load_model(tmp_path / "bc.zip", algo="nope")


def test_report_normalizes_the_true_return_with_the_datasets_scores(pendulum_transitions, tmp_path: Path) -> None:
    bc = BC("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, policy_kwargs=dict(net_arch=[8]), device="cpu")
    bc.save(tmp_path / "bc")
    scored = pendulum_transitions.select(np.arange(len(pendulum_transitions)))
    kwargs = dict(env_id="Pendulum-v1", steps=2, n_episodes=1, device="cpu", fqe_kwargs=dict(batch_size=32))
    for low, high in ((-1500.0, -150.0), (-150.0, -150.0)):
        scored.metadata.update(ref_min_score=low, ref_max_score=high)
        [report] = evaluate_checkpoints([tmp_path / "bc.zip"], scored, **kwargs)
        assert report.rollout is not None
        if low == high:  # no scale to normalize with
            assert report.normalized_score is None
        else:
            assert report.normalized_score == pytest.approx(100.0 * (report.rollout.mean_return - low) / (high - low))


def test_spearman() -> None:
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert np.isnan(spearman([1], [2]))
