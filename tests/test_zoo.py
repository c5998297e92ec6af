"""
rl-zoo3 integration, run for real: the packaged configs build their models the way rl-zoo3 builds
them, ``train`` -> ``enjoy`` round trips through rl-zoo3's own scripts, ``--optimize`` runs an Optuna
study in a SQLite storage, and online HER entries step the env. Datasets the configs name that are
not on local disk (remote D4RL-style ids, the local Fetch dataset, the shipped Pendulum one until it
lands) are recorded under the same id, from the same env, into the test's own Minari folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import pytest
import yaml
from conftest import DISCRETE_NAMES
from stable_baselines3 import HerReplayBuffer

from sb3_offline import AWAC, BCQ
from sb3_offline.algorithms import ALGOS
from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.cli import build_parser
from sb3_offline.cli import main as cli_main
from sb3_offline.datasets import (
    DatasetValidationError,
    Transitions,
    pendulum_imperfect_demonstrations,
    record_transitions,
    save_minari,
)
from sb3_offline.zoo import (
    CONFIG_DIR,
    SHARED_TRAIN_OPTIONS,
    ZOO_ONLY_TRAIN_OPTIONS,
    config_path,
    register,
    zoo_only_options,
)
from sb3_offline.zoo import main as zoo_main
from sb3_offline.zoo.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    "awac",
    "batch_ddpg",
    "bc",
    "bcq",
    "calql",
    "cql",
    "edac",
    "her",
    "iql",
    "lapo",
    "plas",
    "rebrac",
    "sac_n",
    "td3bc",
]
#: the configs of the algorithms on a Discrete action space (classic-control envs)
DISCRETE_CONFIGS = ["discrete_bc", "discrete_bcq", "discrete_cql", "discrete_iql"]
REQUIRED_ENVS = {"Pendulum-v1", "Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "FetchReach-v4"}
# fast settings every rl-zoo3 run here shares: one torch thread, CPU, quiet
FAST = ["--device", "cpu", "--num-threads", "1", "--verbose", "0"]


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    """
    Our algorithms in rl-zoo3, and the gymnasium-robotics ids. Not at import: importing rl-zoo3 replaces
    gymnasium's TimeLimit (rl_zoo3.gym_patches), which the other test files should not see at collection.
    """
    register()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


@pytest.fixture(scope="module")
def recorded(registered: None) -> dict[str, Transitions]:
    """A little real data per env the configs name (shared by the tests; never mutated)."""
    data = {"Pendulum-v1": pendulum_imperfect_demonstrations(400, seed=0)}
    # HalfCheetah never terminates: 1010 steps give two episodes, whose returns differ (IQL's "iql_locomotion")
    for env_id, steps in (("Hopper-v5", 60), ("HalfCheetah-v5", 1010), ("Walker2d-v5", 60), ("FetchReach-v4", 100)):
        data[env_id] = record_transitions(env_id, steps, seed=0)
    # iql.yml's AntMaze entry; the env is made as its Minari dataset records it (D4RL/antmaze/umaze-v1)
    data["AntMaze_UMaze-v4"] = record_transitions("AntMaze_UMaze-v4", 60, seed=0)
    return data


def load_config(name: str) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(config_path(name).read_text())


def make_local_datasets(recorded: dict[str, Transitions], configs: list[str]) -> None:
    """Write each Minari dataset the configs name under its own id into the test's Minari folder."""
    import minari

    for name in configs:
        for env_id, entry in load_config(name).items():
            dataset = entry.get("dataset")
            if dataset is not None and dataset not in minari.list_local_datasets():
                save_minari(recorded[env_id], dataset, algorithm_name="test stand-in")


def manager(algo: str, env_id: str, log_folder: Path, **kwargs: Any) -> Any:
    """Our experiment manager as rl-zoo3's train makes it (no eval callback unless asked)."""
    from sb3_offline.zoo.experiment import OfflineExperimentManager

    kwargs.setdefault("eval_freq", -1)
    return OfflineExperimentManager(
        argparse.Namespace(), algo, env_id, str(log_folder), device="cpu", seed=0, verbose=0, **kwargs
    )


def run_dir(log_folder: Path, algo: str, env_id: str, run: int = 1) -> Path:
    return log_folder / algo / f"{env_id}_{run}"


def monitor_episodes(folder: Path) -> int:
    """Rows (finished episodes) of the training env's Monitor file."""
    lines = (folder / "0.monitor.csv").read_text().splitlines()
    return len(lines) - 2  # JSON header + column names


# ------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.filterwarnings("ignore:PLAS.learn.*VAE pre-training:UserWarning")  # 2 steps, all of them VAE's
def test_every_config_entry_builds_its_model_as_rl_zoo3_does(
    name: str, recorded: dict[str, Transitions], tmp_path: Path
) -> None:
    """Each entry goes through rl-zoo3's own reading and pre-processing, builds, and takes a few steps."""
    config = load_config(name)
    assert all(isinstance(entry["n_timesteps"], float | int) and entry["n_timesteps"] > 0 for entry in config.values())
    assert all(isinstance(entry.get("policy_kwargs", ""), str) for entry in config.values())  # eval'd by rl-zoo3
    if name == "her":
        assert set(config) == {"FetchReach-v4", "FetchPush-v4", "FetchSlide-v4", "FetchPickAndPlace-v4"}
        algos = ["awac", "batch_ddpg"]
    else:
        assert set(config) >= REQUIRED_ENVS
        assert config["Pendulum-v1"]["dataset"] == "pendulum/imperfect-v0"
        algos = [name]
        make_local_datasets(recorded, [name])
    for algo in algos:
        for env_id, entry in config.items():
            # rows for online transitions are allocated at once (HerReplayBuffer also fills an info dict per
            # row): seconds for the entries' 1e6, so fewer here; every other value is the entry's
            custom = {"buffer_size": 10_000} if entry.get("buffer_size", 1_000_000) > 10_000 else None
            exp = manager(algo, env_id, tmp_path / "logs", config=str(config_path(name)), hyperparams=custom)
            model, saved = exp.setup_experiment()
            assert isinstance(model, ALGOS[algo])
            assert saved["n_timesteps"] == entry["n_timesteps"]
            if env_id.startswith("Fetch"):  # rl-zoo3 logs is_success only for its old gym.envs.robotics ids
                assert exp.monitor_kwargs == {"info_keywords": ("is_success",)}
            assert exp.online == (name == "her")
            if exp.online:
                assert isinstance(model.replay_buffer, HerReplayBuffer)
                model.learn_online(5)  # steps the env into the HER buffer (learning_starts is not reached)
                assert model.num_timesteps == 5 and model.replay_buffer.pos == 5
            else:
                assert isinstance(model.replay_buffer, OfflineReplayBuffer)
                assert model.replay_buffer.size() == len(recorded[env_id])
                model.learn(2)
                assert model.num_timesteps == 2 and model._last_obs is None  # the env was never reset
            model.env.close()


@pytest.mark.parametrize("name", DISCRETE_CONFIGS)
def test_every_discrete_config_entry_builds_its_model(name: str, tmp_path: Path) -> None:
    """CartPole-v1 and Acrobot-v1 entries on little random data of each env, through rl-zoo3's reading."""
    config = load_config(name)
    assert set(config) == {"CartPole-v1", "Acrobot-v1"}
    for env_id, entry in config.items():
        save_minari(record_transitions(env_id, 200, seed=0), entry["dataset"], algorithm_name="test stand-in")
        exp = manager(name, env_id, tmp_path / "logs", config=str(config_path(name)))
        model, saved = exp.setup_experiment()
        assert isinstance(model, ALGOS[name]) and saved["n_timesteps"] == entry["n_timesteps"]
        assert model.replay_buffer.size() == 200
        model.learn(2)
        model.env.close()


def test_configs_are_packaged_and_zoo_configs_is_the_same_folder() -> None:
    assert {p.stem for p in CONFIG_DIR.glob("*.yml")} == set(CONFIGS) | set(DISCRETE_CONFIGS)
    assert (ROOT / "zoo_configs").resolve() == CONFIG_DIR
    assert config_path("bcq") == CONFIG_DIR / "bcq.yml"
    with pytest.raises(ValueError, match=r"algo: expected one of \['awac'.*found 'td3'"):
        config_path("td3")


# ----------------------------------------------------------------------------------- train / enjoy
def test_train_then_enjoy_bcq_pendulum(recorded: dict[str, Transitions], tmp_path: Path) -> None:
    """`sb3-offline zoo train` runs rl-zoo3's train; `sb3-offline zoo enjoy`, in a fresh process, loads its model."""
    save_minari(recorded["Pendulum-v1"], "pendulum/imperfect-v0")
    logs, tensorboard = tmp_path / "logs", tmp_path / "tb"
    args = ["train", "--algo", "bcq", "--env", "Pendulum-v1", "-f", str(logs), "-n", "40", "--seed", "7"]
    args += ["--eval-freq", "20", "--eval-episodes", "1", "-tb", str(tensorboard), "-params", "batch_size:32"]
    assert cli_main(["zoo", *args, *FAST]) == 0

    folder = run_dir(logs, "bcq", "Pendulum-v1")
    model = BCQ.load(folder / "Pendulum-v1.zip", device="cpu")
    assert model.num_timesteps == 40 and model.batch_size == 32 and model.dataset == "pendulum/imperfect-v0"
    # offline: 40 gradient steps, and the training env was never reset or stepped
    assert model._last_obs is None and model._episode_num == 0 and monitor_episodes(folder) == 0
    assert model._n_updates == 40
    # the eval callback ran on rl-zoo3's separate eval env every 20 gradient steps
    evaluations = np.load(folder / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [20, 40]
    assert (folder / "best_model.zip").is_file()
    saved = yaml.load((folder / "Pendulum-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert saved["dataset"] == "pendulum/imperfect-v0" and saved["batch_size"] == 32
    assert yaml.load((folder / "Pendulum-v1" / "args.yml").read_text(), Loader=yaml.UnsafeLoader)["seed"] == 7
    assert list((tensorboard / "Pendulum-v1").glob("BCQ_1/events.out.tfevents.*"))

    # rl-zoo3's enjoy, as a user runs it: a fresh process, no dataset needed
    command = [sys.executable, "-m", "sb3_offline.cli", "zoo", "enjoy", "--algo", "bcq", "--env", "Pendulum-v1"]
    command += ["-f", str(logs), "-n", "200", "--no-render", "--deterministic", "--device", "cpu", "--num-threads", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env["MINARI_DATASETS_PATH"] = str(tmp_path / "empty_minari")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Loading {folder / 'Pendulum-v1.zip'}" in result.stdout
    assert "1 Episodes" in result.stdout and "Mean episode length: 200.00" in result.stdout


def test_online_her_entry_steps_the_env(tmp_path: Path) -> None:
    """her.yml's `learn_online: True`: n_timesteps are env steps into a HerReplayBuffer, is_success is logged."""
    logs = tmp_path / "logs"
    args = ["train", "--algo", "awac", "--env", "FetchReach-v4", "-conf", str(config_path("her")), "-f", str(logs)]
    args += ["-n", "150", "--eval-freq", "-1", "-params", "learning_starts:100", "batch_size:16", "buffer_size:1000"]
    assert cli_main(["zoo", *args, *FAST]) == 0
    folder = run_dir(logs, "awac", "FetchReach-v4")
    model = AWAC.load(folder / "FetchReach-v4.zip", device="cpu")
    assert model.num_timesteps == 150 and model._episode_num == 3  # FetchReach episodes are 50 steps
    assert model._n_updates == 50  # one gradient step per env step after learning_starts
    assert model.replay_buffer_class is HerReplayBuffer
    header = (folder / "0.monitor.csv").read_text().splitlines()[1]
    assert header.split(",") == ["r", "l", "t", "is_success"] and monitor_episodes(folder) == 3


def test_offline_awac_run_fine_tuned_online_with_trained_agent(
    recorded: dict[str, Transitions], tmp_path: Path
) -> None:
    """awac.yml's recipe: an offline run, then `-i <zip> -params learn_online:True` steps the env."""
    save_minari(recorded["Pendulum-v1"], "pendulum/imperfect-v0")
    logs = tmp_path / "logs"
    base = ["train", "--algo", "awac", "--env", "Pendulum-v1", "-f", str(logs), "--eval-freq", "-1", *FAST]
    assert cli_main(["zoo", *base, "-n", "10", "-params", "batch_size:32"]) == 0
    offline = run_dir(logs, "awac", "Pendulum-v1", 1) / "Pendulum-v1.zip"
    assert (
        cli_main(["zoo", *base, "-n", "200", "-i", str(offline), "-params", "learn_online:True", "batch_size:32"]) == 0
    )
    folder = run_dir(logs, "awac", "Pendulum-v1", 2)
    model = AWAC.load(folder / "Pendulum-v1.zip", device="cpu")
    assert model.num_timesteps == 200 and model._episode_num == 1 and monitor_episodes(folder) == 1
    saved = yaml.load((folder / "Pendulum-v1" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert saved["learn_online"] is True


# ------------------------------------------------------------------------------------------ optimize
def test_optimize_with_a_shared_sqlite_storage(recorded: dict[str, Transitions], tmp_path: Path) -> None:
    """Two workers on one study (the SQLite URL stands for a shared database), then a trial trained by id."""
    save_minari(recorded["Pendulum-v1"], "pendulum/imperfect-v0")
    logs, storage, study = tmp_path / "logs", f"sqlite:///{tmp_path / 'study.db'}", "bcq-pendulum"
    args = ["train", "--algo", "bcq", "--env", "Pendulum-v1", "-f", str(logs), "-optimize", "-n", "4"]
    args += ["--n-evaluations", "1", "--eval-episodes", "1", "--eval-env-kwargs", "max_episode_steps:20"]
    args += ["--storage", storage, "--study-name", study, "--sampler", "random", "--pruner", "none"]
    args += ["--no-optim-plots", "--seed", "0", *FAST]
    assert cli_main(["zoo", *args, "--n-trials", "2", "--optimization-log-path", str(tmp_path / "trials")]) == 0
    assert cli_main(["zoo", *args, "--n-trials", "1", "--seed", "1"]) == 0  # a second worker joins the same study
    trial_model = BCQ.load(tmp_path / "trials" / "trial_1" / "best_model.zip", device="cpu")
    assert trial_model.num_timesteps == 4 and trial_model._last_obs is None  # trials train offline too

    trials = optuna.load_study(study_name=study, storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert all(-20 * 16.3 <= t.value <= 0 for t in trials)  # a 20-step Pendulum return
    assert {"learning_rate", "lmbda", "phi", "one_minus_gamma", "batch_size_pow", "tau", "net_arch"} == set(
        trials[1].params
    )
    assert len(list((logs / "bcq").glob("report_Pendulum-v1_*.csv"))) == 2

    # any machine can train a trial of the study by its id (rl-zoo3 ignores --trial-id 0: it tests `if trial_id`);
    # `python -m sb3_offline.zoo train` is the same launcher without the sb3-offline command
    run = ["train", "--algo", "bcq", "--env", "Pendulum-v1", "-f", str(logs), "-n", "3", "--eval-freq", "-1"]
    assert zoo_main([*run, "--storage", storage, "--study-name", study, "--trial-id", "1", *FAST]) == 0
    model = BCQ.load(next((logs / "bcq").glob("Pendulum-v1_*/Pendulum-v1.zip")), device="cpu")
    params = trials[1].params
    assert model.batch_size == 2 ** params["batch_size_pow"] and model.lmbda == pytest.approx(params["lmbda"])
    assert model.gamma == pytest.approx(1 - params["one_minus_gamma"]) and model.tau == pytest.approx(params["tau"])


def test_optimize_an_online_her_entry(tmp_path: Path) -> None:
    """Trials of a `learn_online: True` entry step the env, and sample HER's parameters too."""
    storage, study = f"sqlite:///{tmp_path / 'study.db'}", "awac-her"
    args = ["train", "--algo", "awac", "--env", "FetchReach-v4", "-conf", str(config_path("her")), "-optimize"]
    args += [
        "-f",
        str(tmp_path / "logs"),
        "-n",
        "60",
        "--n-trials",
        "1",
        "--n-evaluations",
        "1",
        "--eval-episodes",
        "1",
    ]
    args += ["--storage", storage, "--study-name", study, "--optimization-log-path", str(tmp_path / "trials")]
    args += ["--no-optim-plots", "--seed", "0", "-params", "learning_starts:50", "buffer_size:1000", *FAST]
    assert cli_main(["zoo", *args]) == 0
    (trial,) = optuna.load_study(study_name=study, storage=storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert {"beta", "n_sampled_goal", "goal_selection_strategy"} <= set(trial.params)
    model = AWAC.load(tmp_path / "trials" / "trial_0" / "best_model.zip", device="cpu")
    # saved by the evaluation at env step 60, which runs before that step's update: steps 51-59 trained
    assert model.num_timesteps == 60 and model._episode_num == 1 and model._n_updates == 9
    assert model.replay_buffer_kwargs["n_sampled_goal"] == trial.params["n_sampled_goal"]


def test_optimize_stops_on_a_bad_dataset_instead_of_pruning_every_trial(
    recorded: dict[str, Transitions], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_minari(recorded["Hopper-v5"], "mujoco/hopper/medium-v0")
    args = ["train", "--algo", "bcq", "--env", "Pendulum-v1", "-f", str(tmp_path / "logs"), "-optimize", "-n", "5"]
    args += ["--n-trials", "2", "--no-optim-plots", "-params", "dataset:'mujoco/hopper/medium-v0'", *FAST]
    assert cli_main(["zoo", *args]) == 2  # the dataset's error, one line
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("sb3-offline zoo: error: ") and "observations" in err[-1]
    with pytest.raises(DatasetValidationError, match="observations"):  # --debug: the exception itself
        cli_main(["--debug", "zoo", *args])


@pytest.mark.parametrize("algo", sorted(ALGOS))
@pytest.mark.parametrize("her", [False, True])
def test_samplers_give_constructor_arguments_and_converters_give_them_back(
    algo: str, her: bool, recorded: dict[str, Transitions], pendulum_env: gym.Env, cartpole_transitions: Transitions
) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=len(algo)))
    trial = study.ask()
    her_kwargs = {"goal_selection_strategy": "future", "n_sampled_goal": 4, "copy_info_dict": False}
    hyperparams = HYPERPARAMS_SAMPLER[algo](trial, 1, 1, {"using_her_replay_buffer": her, "her_kwargs": her_kwargs})
    assert HYPERPARAMS_CONVERTER[algo](trial.params, her_kwargs if her else None) == hyperparams
    assert hyperparams["batch_size"] in {2**p for p in range(5, 12)}  # DiscreteCQL from 32 (its default)
    if algo in ("bc", "discrete_bc"):  # no value function: gamma and tau play no part in its loss, not searched
        assert "gamma" not in hyperparams and "tau" not in hyperparams
    else:
        assert 0.97 <= hyperparams["gamma"] < 1
    if her:
        assert hyperparams.pop("replay_buffer_kwargs")["copy_info_dict"] is False  # the entry's own kwargs kept
        assert {"n_sampled_goal", "goal_selection_strategy"} <= set(trial.params)
    else:
        assert "replay_buffer_kwargs" not in hyperparams
    env, data = (gym.make("CartPole-v1"), cartpole_transitions) if algo in DISCRETE_NAMES else (pendulum_env, None)
    model = ALGOS[algo]("MlpPolicy", env, dataset=data or recorded["Pendulum-v1"], device="cpu", **hyperparams)
    for key in ("gamma", "tau", "batch_size"):
        if key in hyperparams:
            assert getattr(model, key) == pytest.approx(hyperparams[key])


# ----------------------------------------------------------------------------------- bad entries
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, r"dataset: expected a dataset .* for offline training \(the bcq entry for Pendulum-v1 in .*bad.yml\)"),
        (
            {"dataset": "pendulum/imperfect-v0", "normalize": True},
            r"normalize: expected no VecNormalize for offline training .*found normalize=True",
        ),
        (
            {"dataset": "pendulum/imperfect-v0", "learn_online": "yes"},
            r"learn_online: expected True or False, found 'yes'",
        ),
    ],
)
def test_bad_entries_name_the_field(entry: dict[str, Any], message: str, tmp_path: Path) -> None:
    conf = tmp_path / "bad.yml"
    conf.write_text(yaml.safe_dump({"Pendulum-v1": {"n_timesteps": 10, "policy": "MlpPolicy", **entry}}))
    with pytest.raises(ValueError, match=message):
        manager("bcq", "Pendulum-v1", tmp_path / "logs", config=str(conf)).setup_experiment()


def test_zoo_main_names_a_bad_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert zoo_main(["fit", "--algo", "bcq"]) == 2
    assert "command: expected one of ['train', 'enjoy'], found 'fit'" in capsys.readouterr().err
    assert zoo_main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m sb3_offline.zoo {train,enjoy}")


# ------------------------------------------------------------------- rl-zoo3 options and sb3-offline
def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {option for option in parser._option_string_actions if option not in ("-h", "--help")}


def test_zoo_only_options_are_exactly_rl_zoo3_train_options_sb3_offline_train_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rl_zoo3.train

    parsers: list[argparse.ArgumentParser] = []

    def capture(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parsers.append(parser)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        rl_zoo3.train.train()
    zoo_options = _option_strings(parsers[0])
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    own_options = _option_strings(subparsers.choices["train"])
    assert zoo_options - own_options == ZOO_ONLY_TRAIN_OPTIONS
    assert zoo_options & own_options == SHARED_TRAIN_OPTIONS


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--algo", "bcq", "--env", "Pendulum-v1", "--steps", "5"], []),
        (["--algo", "bcq", "--tensorboard-log", "tb"], []),  # both commands have it
        (["--algo", "bcq", "-f", "logs/"], ["-f"]),
        (["-conf", "zoo_configs/bcq.yml", "-n", "5"], ["-n"]),  # both commands read rl-zoo3's config files
        (["-params", "batch_size:64"], []),  # both commands take rl-zoo3's -params
        (["--eval-freq=100"], []),  # both commands have it
        (["--optimize", "--storage=sqlite:///s.db"], ["--optimize", "--storage"]),  # an abbreviation of rl-zoo3's
        (["--seed", "-1"], []),  # a negative number is a value, not an option
    ],
)
def test_zoo_only_options(argv: list[str], expected: list[str]) -> None:
    assert zoo_only_options(argv) == expected
