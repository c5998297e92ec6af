"""
``sb3-offline train``'s knobs and run folders, in rl-zoo3's formats: ``-params key:value`` typed from the
constructor, ``--config file.yml``, numbered run folders with ``args.yml`` and ``config.yml``; run for real on a
small recorded Pendulum dataset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sb3_offline import BC, IQL, PLAS
from sb3_offline.cli import main
from sb3_offline.cli.hyperparams import SettingsError, parse_params, valid_keys

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU

ENV = "Pendulum-v1"


def _train(dataset: Path, output: Path, algo: str, *extra: str) -> list[str]:
    common = ["--dataset", str(dataset), "--device", "cpu", "--eval-freq", "0", "--eval-episodes", "0"]
    return ["train", "--algo", algo, *common, "--output", str(output), *extra]


def _saved(run: Path, name: str) -> dict:
    return yaml.safe_load((run / ENV / name).read_text())


def test_params_reach_the_model_typed_from_its_constructor(
    pendulum_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PLAS from the command line: its VAE steps, batch size and networks, rl-zoo3's syntax (as a shell passes it)."""
    params = ["-params", "vae_steps:3e0", "batch_size:32", "policy_kwargs:dict(net_arch=[16, 16])", "phi:0"]
    assert main(_train(pendulum_file, tmp_path, "plas", "--steps", "6", *params)) == 0
    run = tmp_path / "plas" / f"{ENV}_1"
    assert f"run folder: {run}" in capsys.readouterr().out
    model = PLAS.load(run / f"{ENV}.zip", device="cpu")
    assert (model.vae_steps, model.batch_size, model.num_timesteps) == (3, 32, 6)
    assert isinstance(model.vae_steps, int) and isinstance(model.phi, float)  # 3e0 -> 3, 0 -> 0.0 by the annotation
    assert model.policy_kwargs["net_arch"] == [16, 16]
    config = _saved(run, "config.yml")
    assert (
        config["vae_steps"] == 3 and config["n_timesteps"] == 6 and config["policy_kwargs"] == "dict(net_arch=[16, 16])"
    )
    assert config["lmbda"] == 0.75 and config["policy"] == "MlpPolicy"  # the defaults the run used, resolved
    args = _saved(run, "args.yml")
    assert args["steps"] == 6 and args["env"] == ENV and args["hyperparams"] == params[1:]


def test_a_wrong_params_key_or_value_is_refused_naming_what_is_valid(
    pendulum_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train(pendulum_file, tmp_path, "plas", "--steps", "5", "-params", "vae_step:10")) == 2
    err = capsys.readouterr().err
    assert err.startswith("sb3-offline train: error: -params: 'vae_step' is not a hyper-parameter of plas (PLAS)")
    assert "'vae_steps'" in err and "'batch_size'" in err and "zoo" not in err  # never another command
    assert main(_train(pendulum_file, tmp_path, "bc", "-params", "batch_size:1.5")) == 2
    assert "-params batch_size: expected int, found 1.5 (float)" in capsys.readouterr().err
    assert main(_train(pendulum_file, tmp_path, "bc", "-params", "seed:3")) == 2
    assert "seed is set by train's --seed flag" in capsys.readouterr().err
    assert not (tmp_path / "plas").exists() and not (tmp_path / "bc").exists()  # nothing made of a refused line


def test_params_values_follow_the_annotation() -> None:
    # a bare name where a string is admitted is that string, not Python's builtin of that name
    assert parse_params("iql", IQL, ["reward_transform:max", "expectile:0.8"]) == {
        "reward_transform": "max",
        "expectile": 0.8,
    }
    assert parse_params("bc", BC, ["learning_rate:1e-3", "n_timesteps:2e3"]) == {
        "learning_rate": 1e-3,
        "n_timesteps": 2e3,
    }
    with pytest.raises(SettingsError, match=r"-params gamma: could not evaluate 'x' as Python"):
        parse_params("bc", BC, ["gamma:x"])
    with pytest.raises(SettingsError, match=r"expected key:value"):
        parse_params("bc", BC, ["batch_size=3"])
    assert "vae_steps" in valid_keys(PLAS) and "vae_steps" not in valid_keys(BC)
    assert "seed" not in valid_keys(BC) and "_init_setup_model" not in valid_keys(BC)


def test_config_file_in_rl_zoo3_format(pendulum_file: Path, tmp_path: Path) -> None:
    """An entry per env id (rl-zoo3's files, ours included) or the settings themselves; -params and flags win."""
    nested = tmp_path / "plas.yml"
    entry = {"n_timesteps": 4.0, "policy": "MlpPolicy", "vae_steps": 2, "batch_size": 16, "dataset": str(pendulum_file)}
    nested.write_text(yaml.safe_dump({ENV: entry, "Hopper-v5": {"n_timesteps": 1e6, "vae_steps": 9}}))
    assert main(["train", "--algo", "plas", "--config", str(nested), "--env", ENV, "--device", "cpu", "--output",
                 str(tmp_path), "--eval-episodes", "0", "-params", "batch_size:8"]) == 0  # fmt: skip
    model = PLAS.load(tmp_path / "plas" / f"{ENV}_1" / f"{ENV}.zip", device="cpu")
    assert (model.num_timesteps, model.vae_steps, model.batch_size) == (4, 2, 8)
    assert model.dataset == str(pendulum_file)
    flat = tmp_path / "flat.yml"
    flat.write_text(yaml.safe_dump({"n_timesteps": 50, "batch_size": 16, "train_freq": [1, "step"]}))
    assert main(_train(pendulum_file, tmp_path, "bc", "-conf", str(flat), "--steps", "3")) == 0
    run = tmp_path / "bc" / f"{ENV}_1"
    assert BC.load(run / f"{ENV}.zip", device="cpu").num_timesteps == 3  # --steps over n_timesteps
    assert _saved(run, "config.yml")["batch_size"] == 16
    # the run's config.yml repeats it
    assert main(_train(pendulum_file, tmp_path, "bc", "--config", str(run / ENV / "config.yml"))) == 0
    assert BC.load(tmp_path / "bc" / f"{ENV}_2" / f"{ENV}.zip", device="cpu").batch_size == 16


def test_config_file_errors_name_the_file_and_the_fix(
    pendulum_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"Hopper-v5": {"batch_size": 3}, "Walker2d-v5": {"batch_size": 4}}))
    assert main(_train(pendulum_file, tmp_path, "bc", "--config", str(config))) == 2
    assert f"--config {config}: no entry for --env {ENV} (nor 'default')" in capsys.readouterr().err
    config.write_text(yaml.safe_dump({ENV: {"batch_sizes": 3}}))
    assert main(_train(pendulum_file, tmp_path, "bc", "--config", str(config))) == 2
    assert f"--config {config}: 'batch_sizes' is not a hyper-parameter of bc (BC)" in capsys.readouterr().err
    config.write_text(yaml.safe_dump({ENV: {"learn_online": True}}))
    assert main(_train(pendulum_file, tmp_path, "bc", "--config", str(config))) == 2
    assert "learn_online is rl-zoo3's setting of its own runs: run `sb3-offline zoo train`" in capsys.readouterr().err
    assert main(_train(pendulum_file, tmp_path, "bc", "--config", str(tmp_path / "none.yml"))) == 2
    assert f"--config: no file {tmp_path / 'none.yml'}" in capsys.readouterr().err


def test_two_runs_in_one_folder_keep_both(
    pendulum_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """rl-zoo3's numbering: <output>/<algo>/<env>_1, then _2; each with its checkpoint and its arguments."""
    for steps in ("2", "3"):
        assert main(_train(pendulum_file, tmp_path, "bc", "--steps", steps)) == 0
    first, second = tmp_path / "bc" / f"{ENV}_1", tmp_path / "bc" / f"{ENV}_2"
    out = capsys.readouterr().out
    assert f"run folder: {first}" in out and f"run folder: {second}" in out
    assert BC.load(first / f"{ENV}.zip", device="cpu").num_timesteps == 2
    assert BC.load(second / f"{ENV}.zip", device="cpu").num_timesteps == 3
    assert _saved(first, "args.yml")["steps"] == 2 and _saved(second, "args.yml")["steps"] == 3
    assert not list(tmp_path.rglob(".*"))  # the YAML files and checkpoints written atomically: no temporary left
    (tmp_path / "bc" / f"{ENV}_9").mkdir()  # the next run is one above the highest, as rl-zoo3 numbers them
    assert main(_train(pendulum_file, tmp_path, "bc", "--steps", "1")) == 0
    assert (tmp_path / "bc" / f"{ENV}_10" / f"{ENV}.zip").is_file()


def test_rl_zoo3_enjoy_runs_a_train_run(
    pendulum_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The layout is rl-zoo3's: `sb3-offline zoo enjoy -f <output>` loads the latest `sb3-offline train` run."""
    pytest.importorskip("rl_zoo3")
    assert main(_train(pendulum_file, tmp_path, "bc", "--steps", "2")) == 0
    enjoy = ["zoo", "enjoy", "--algo", "bc", "--env", ENV, "-f", str(tmp_path), "--no-render", "-n", "200"]
    assert main([*enjoy, "--device", "cpu", "--deterministic"]) == 0
    out = capsys.readouterr().out
    assert f"Loading {tmp_path / 'bc' / f'{ENV}_1' / f'{ENV}.zip'}" in out and "1 Episodes" in out
