"""The sb3-offline command, run for real on small Pendulum data, and its subcommand tree."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import BOX_ALGOS

from sb3_offline import BatchDDPG
from sb3_offline.algorithms import ALGOS
from sb3_offline.cli import DEFAULT_DATASET, _subparser, build_parser, main
from sb3_offline.datasets import Transitions, save_minari


def test_record_then_train_then_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pendulum.npz"
    assert main(["record", "--env", "Pendulum-v1", "--steps", "400", "--output", str(data)]) == 0
    args = ["train", "--algo", "batch_ddpg", "--dataset", str(data), "--env", "Pendulum-v1", "--steps", "60"]
    assert main([*args, "--eval-episodes", "1", "--output", str(tmp_path / "run"), "--no-cuda-graphs"]) == 0
    out = capsys.readouterr().out
    assert "batch_ddpg on" in out and "random" in out and "| behaviour " in out
    model = BatchDDPG.load(
        tmp_path / "run" / "batch_ddpg" / "Pendulum-v1_1" / "Pendulum-v1.zip", env=gym.make("Pendulum-v1")
    )
    assert model.num_timesteps == 60
    assert model.cuda_graphs is False  # the switch reaches the model and its checkpoint


def test_default_train_needs_no_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the README's default job: BCQ on the shipped dataset, evaluated as it learns, plotted
    args = ["train", "--steps", "20", "--eval-freq", "10", "--eval-episodes", "1", "--output", str(tmp_path / "m")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"bcq on {DEFAULT_DATASET}: 50000 transitions" in out
    rows = {
        line.split("|")[1].strip(): line.split("|")[4].strip() for line in out.splitlines() if line.startswith("| ")
    }
    assert set(rows) >= {"bcq", "behaviour", "random"}
    assert all(score != "n/a" for score in rows.values())  # the shipped dataset has reference scores
    run = tmp_path / "m" / "bcq" / "Pendulum-v1_1"  # rl-zoo3's layout
    assert f"run folder: {run}" in out
    assert (run / "Pendulum-v1.zip").exists() and (run / "evaluations.npz").exists()
    assert (run / "learning_curve.png").stat().st_size > 1000
    assert main(["datasets"]) == 0
    assert DEFAULT_DATASET in capsys.readouterr().out.split("Minari datasets in")[1]


def test_collect_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB3_OFFLINE_AGENTS", str(tmp_path / "agents"))
    args = ["collect", "--env", "Pendulum-v1", "--protocol", "random", "--steps", "400", "--expert-steps", "150"]
    assert main([*args, "--ref-episodes", "1", "--no-progress-bar"]) == 0
    assert "wrote 'pendulum/random-v0': 400 transitions" in capsys.readouterr().out
    assert main(["datasets"]) == 0
    assert "pendulum/random-v0" in capsys.readouterr().out


@pytest.mark.parametrize("algo", BOX_ALGOS)
def test_train_every_algorithm(algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "pendulum.hdf5"
    assert main(["record", "--env", "Pendulum-v1", "--steps", "300", "--output", str(data)]) == 0
    args = ["train", "--algo", algo, "--dataset", str(data), "--steps", "3", "--eval-episodes", "1"]
    assert main([*args, "--output", str(tmp_path / algo)]) == 0  # the env is recovered from the file
    assert f"{algo} on {data}" in capsys.readouterr().out
    loaded = ALGOS[algo].load(tmp_path / algo / algo / "Pendulum-v1_1" / "Pendulum-v1.zip")
    assert loaded.num_timesteps == 3


def test_train_refuses_rl_zoo3_options_and_names_zoo_train(capsys: pytest.CaptureFixture[str]) -> None:
    """No silent hand-over: `sb3-offline train -f logs/` is an argparse error that names `sb3-offline zoo train`."""
    for argv in (["-f", "logs/"], ["-optimize", "-n", "5"], ["--optimize", "--storage", "sqlite:///s.db"]):
        with pytest.raises(SystemExit) as error:
            main(["train", "--algo", "bcq", "--env", "Pendulum-v1", *argv])
        assert error.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: sb3-offline train") and "sb3-offline train: error: unrecognized arguments" in err
        assert f"{argv[0]}" in err and "rl-zoo3's train options" in err and "`sb3-offline zoo train ...`" in err
    with pytest.raises(SystemExit):
        main(["enjoy", "--algo", "bcq", "--env", "Pendulum-v1", "-f", "logs"])
    assert "rl-zoo3's enjoy is `sb3-offline zoo enjoy`" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # another command's unknown option: argparse's own error
        main(["record", "-f", "logs", "--output", "x.npz"])
    err = capsys.readouterr().err
    assert "sb3-offline record: error: unrecognized arguments: -f logs" in err and "zoo" not in err


def test_zoo_subcommand_hands_every_argument_after_it_to_rl_zoo3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sb3_offline.zoo

    calls: list[tuple[list[str], str | None]] = []
    monkeypatch.setattr(sb3_offline.zoo, "main", lambda argv, prog=None: calls.append((list(argv), prog)) or 0)
    options = ["--algo", "bcq", "-f", "logs", "-h", "--seed", "-1", "-params", "batch_size:32"]
    assert main(["zoo", "train", *options, "--no-progress-bar"]) == 0
    assert main(["zoo", "enjoy", "--algo", "bcq", "--help"]) == 0
    assert calls == [
        (["train", *options], "sb3-offline zoo train"),  # -h too: rl-zoo3 prints its own help
        (["enjoy", "--algo", "bcq", "--help"], "sb3-offline zoo enjoy"),
    ]
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "zoo                 rl-zoo3's train and enjoy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["zoo", "fit"])
    assert "sb3-offline zoo: error: argument {train,enjoy}: invalid choice: 'fit'" in capsys.readouterr().err


def test_one_checkpoint_one_score(pendulum_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The train table, the learning curve's last point and `sb3-offline evaluate` agree on the same checkpoint."""
    train = ["train", "--algo", "bc", "--dataset", str(pendulum_file), "--device", "cpu", "--output", str(tmp_path)]
    assert main([*train, "--steps", "20", "--eval-freq", "10", "--eval-episodes", "3"]) == 0
    out = capsys.readouterr().out
    rows = {
        cells[1].strip(): cells for cells in (line.split("|") for line in out.splitlines() if line.startswith("| "))
    }
    table = float(rows["bc"][3].split("±")[0])
    assert rows["bc"][2].strip() == rows["random"][2].strip() == "3 in the env"
    assert rows["behaviour"][2].strip() == "5 in the dataset"  # its episodes are the dataset's, said so
    run = tmp_path / "bc" / "Pendulum-v1_1"
    evaluations = np.load(run / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [10, 20]
    curve = float(evaluations["results"][-1].mean())
    assert main(["evaluate", str(run / "Pendulum-v1.zip"), "--episodes", "3", "--device", "cpu"]) == 0
    evaluated = float(capsys.readouterr().out.split(": return ")[1].split(" ±")[0])
    assert f"{curve:.1f}" == f"{table:.1f}" == f"{evaluated:.1f}"
    # the same defaults everywhere: 10 episodes (SB3's evaluate_policy's), reset seed 0
    commands = _subparser(build_parser(), "train"), _subparser(build_parser(), "evaluate")
    assert commands[0].get_default("eval_episodes") == commands[1].get_default("episodes") == 10
    assert commands[0].get_default("eval_seed") == commands[1].get_default("seed") == 0


def test_train_download_fetches_a_remote_minari_dataset_first(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    pendulum_transitions: Transitions,
) -> None:
    import minari

    fetched: list[str] = []

    def download_dataset(dataset_id: str, force_download: bool = False) -> None:
        """Minari's remote store cannot be reached here: the 'download' writes the dataset locally."""
        fetched.append(dataset_id)
        save_minari(pendulum_transitions, dataset_id, env=gym.make("Pendulum-v1"))

    monkeypatch.setattr(minari, "download_dataset", download_dataset)
    args = ["train", "--dataset", "remote/pendulum-v0", "--steps", "2", "--eval-episodes", "0"]
    args += ["--output", str(tmp_path / "run")]
    assert main(args) == 2  # not on local disk, and no --download
    assert "`sb3-offline train --download`" in capsys.readouterr().err and not fetched
    assert main([*args, "--download"]) == 0
    assert fetched == ["remote/pendulum-v0"] and "bcq on remote/pendulum-v0" in capsys.readouterr().out
