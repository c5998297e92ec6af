"""
Long jobs without hidden hours or lost work: collect without a needless expert (announced with a time
estimate where one is needed), train's progress bar, Ctrl-C checkpoints, and rl-zoo3's ``--track`` offline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import minari
import numpy as np
import pytest

import sb3_offline.collect.collect as collect_module
from sb3_offline import BC
from sb3_offline.cli import main
from sb3_offline.collect import collect_dataset
from sb3_offline.collect.agents import TimeEstimate, expert_folder, format_duration, random_score
from sb3_offline.datasets import record_transitions, save_npz
from sb3_offline.zoo import progress_options

ENV = "Pendulum-v1"
EXPERT_STEPS = 200
BEHAVIOUR = dict(learning_starts=150, policy_kwargs=dict(net_arch=[32, 32]))
TINY = dict(expert_steps=EXPERT_STEPS, ref_episodes=2, behaviour_kwargs=BEHAVIOUR, progress_bar=False)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pendulum_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 random-policy transitions of Pendulum-v1 in an .npz file."""
    return save_npz(record_transitions(ENV, 400, seed=0), tmp_path_factory.mktemp("data") / "pendulum.npz")


@pytest.fixture
def no_expert(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any expert training or loading during the test fails it."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"an expert was asked for: {args} {kwargs}")

    monkeypatch.setattr(collect_module, "expert_agent", refuse)


def _metadata(dataset_id: str) -> dict[str, Any]:
    return dict(minari.load_dataset(dataset_id).storage.metadata)


# ------------------------------------------------------------------------------------------- collect
def test_random_protocol_needs_no_expert(no_expert: None, tmp_path: Path) -> None:
    cache = tmp_path / "agents"
    result = collect_dataset(ENV, "random", 300, agents_cache=cache, **TINY)
    assert len(result.transitions) == 300 and result.random_actions is not None and result.random_actions.all()
    # the random policy's return is measured; without an expert nothing is written (Minari keeps the pair)
    assert result.scores is not None and result.scores.expert is None
    assert result.scores.random == pytest.approx(random_score(ENV, 2, 0))
    assert -2000 < result.scores.random < -500  # Pendulum's random policy
    metadata = _metadata("pendulum/random-v0")
    assert metadata.get("ref_min_score") is None and metadata.get("ref_max_score") is None
    assert not cache.exists()  # nothing trained, nothing cached
    with pytest.raises(ValueError, match="expert: expected the expert's reference score"):
        result.scores.normalize(-500.0)


def test_random_protocol_reads_a_cached_experts_scores_without_loading_it(no_expert: None, tmp_path: Path) -> None:
    cache = tmp_path / "agents"
    folder = expert_folder(ENV, "td3", EXPERT_STEPS, 0, cache, BEHAVIOUR)
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps({"random": -1234.5, "expert": -160.25}))  # no agent.zip
    result = collect_dataset(ENV, "random", 200, agents_cache=cache, **TINY)
    assert result.scores is not None and (result.scores.random, result.scores.expert) == (-1234.5, -160.25)
    metadata = _metadata("pendulum/random-v0")
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == (-1234.5, -160.25)


def test_collect_cli_takes_the_users_reference_scores_or_none(
    no_expert: None, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["collect", "--env", ENV, "--steps", "300", "--ref-episodes", "2", "--no-progress-bar"]
    assert main([*base, "--protocol", "random", "--ref-min", "-1200", "--ref-max", "-150"]) == 0
    metadata = _metadata("pendulum/random-v0")
    assert (metadata["ref_min_score"], metadata["ref_max_score"]) == (-1200.0, -150.0)
    assert "ref scores: random -1200.0, expert -150.0" in capsys.readouterr().out

    assert main([*base, "--protocol", "random", "--no-ref-scores", "--dataset-id", "pendulum/bare-v0"]) == 0
    assert "ref_min_score" not in _metadata("pendulum/bare-v0")
    assert "no ref scores" in capsys.readouterr().out

    assert main([*base, "--protocol", "random", "--ref-min", "-1200", "--dataset-id", "pendulum/x-v0"]) == 2
    assert "--ref-max: expected with --ref-min" in capsys.readouterr().err
    assert main([*base, "--protocol", "random", "--ref-max", "-1", "--dataset-id", "pendulum/x-v0"]) == 2
    assert "--ref-min: expected with --ref-max" in capsys.readouterr().err
    assert "pendulum/x-v0" not in minari.list_local_datasets()


def test_collect_api_checks_the_reference_scores() -> None:
    with pytest.raises(ValueError, match=r"ref_max: expected a score with ref_min=-1\.0"):
        collect_dataset(ENV, "random", 10, ref_min=-1.0)
    with pytest.raises(ValueError, match=r"ref_min: expected a score with ref_max=2\.0"):
        collect_dataset(ENV, "random", 10, ref_max=2.0)
    with pytest.raises(ValueError, match="ref_max: expected a return other than ref_min"):
        collect_dataset(ENV, "random", 10, ref_min=3.0, ref_max=3.0)
    with pytest.raises(ValueError, match="ref_scores: expected True"):
        collect_dataset(ENV, "random", 10, ref_min=0.0, ref_max=1.0, ref_scores=False)
    assert minari.list_local_datasets() == {}


def test_training_protocol_with_the_users_scores_trains_no_expert(
    no_expert: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = collect_dataset(ENV, "final", 200, agents_cache=tmp_path, ref_min=-1300.0, ref_max=-140.0, **TINY)
    assert len(result.transitions) == 200 and result.info["behaviour_training_steps"] == 200
    assert result.scores is not None and (result.scores.random, result.scores.expert) == (-1300.0, -140.0)
    assert _metadata("pendulum/final-v0")["ref_max_score"] == -140.0
    # the behaviour agent's own training says how long it will take
    assert "TD3 behaviour agent: the first 152 of 200 steps took" in capsys.readouterr().out


@pytest.mark.slow
def test_expert_training_is_announced_with_a_time_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "agents"
    collect_dataset(ENV, "imitation", 200, agents_cache=cache, **TINY)
    out = capsys.readouterr().out
    folder = expert_folder(ENV, "td3", EXPERT_STEPS, 0, cache, BEHAVIOUR)
    announcement = out.index(f"no cached expert of {ENV}: training TD3 expert of {ENV} for 200 env steps")
    assert "(needed for the 'imitation' rollouts)" in out and str(folder) in out
    estimate = out.index("TD3 expert of Pendulum-v1: the first 152 of 200 steps took")
    assert announcement < estimate and "in all (" in out[estimate:]
    assert (folder / "agent.zip").exists() and (folder / "scores.json").exists()

    # cached now: no announcement; a training protocol without --ref-min/--ref-max uses it for the scores
    result = collect_dataset(ENV, "concurrent", 200, agents_cache=cache, **TINY)
    assert "no cached expert" not in capsys.readouterr().out
    scores = json.loads((folder / "scores.json").read_text())
    assert result.scores is not None and (result.scores.random, result.scores.expert) == (
        scores["random"],
        scores["expert"],
    )


def test_time_estimate_projects_the_first_percent(capsys: pytest.CaptureFixture[str]) -> None:
    import gymnasium as gym
    from stable_baselines3 import TD3

    model = TD3("MlpPolicy", gym.make(ENV), learning_starts=1000, policy_kwargs=dict(net_arch=[8]), seed=0)
    estimate = TimeEstimate("TD3 test", fraction=0.1)
    start = time.perf_counter()
    model.learn(400, callback=estimate)
    elapsed = time.perf_counter() - start
    assert estimate.estimate_s is not None and 0 < estimate.estimate_s < 50 * elapsed
    assert capsys.readouterr().out.count("TD3 test: the first 40 of 400 steps took") == 1
    assert [format_duration(s) for s in (4.2, 425, 12_000)] == ["4 s", "7 min 05 s", "3 h 20 min"]


def test_time_estimate_times_learning_not_the_random_warm_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clock where a random warm-up step costs 1 ms and a learning step 10 ms: 100 + 900 steps take 9.1 s.
    Timing the first 1% from the start (all warm-up) would have projected 1 s."""
    import gymnasium as gym
    from stable_baselines3 import TD3

    from sb3_offline.collect import agents

    model = TD3("MlpPolicy", gym.make(ENV), learning_starts=100, policy_kwargs=dict(net_arch=[8]), seed=0)

    def clock() -> float:
        steps = model.num_timesteps
        return 0.001 * min(steps, 100) + 0.010 * max(steps - 100, 0)

    monkeypatch.setattr(agents.time, "perf_counter", clock)
    estimate = TimeEstimate("TD3 test", fraction=0.01)
    model.learn(1000, callback=estimate)
    assert estimate.estimate_s == pytest.approx(9.1)
    assert "TD3 test: the first 110 of 1,000 steps took 0 s (the first 100 without learning); about 9 s in all" in (
        capsys.readouterr().out
    )


# --------------------------------------------------------------------------------------------- train
def _train_args(dataset: Path, output: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--algo",
        "bc",
        "--env",
        ENV,
        "--dataset",
        str(dataset),
        "--device",
        "cpu",
        "--eval-freq",
        "0",
        "--eval-episodes",
        "0",
        "--output",
        str(output),
        *extra,
    ]


@pytest.mark.parametrize(
    ("tty", "flags", "expected"),
    [(False, [], False), (True, [], True), (True, ["--no-progress-bar"], False), (False, ["--progress-bar"], True)],
)
def test_train_progress_bar_defaults_to_the_terminal(
    tty: bool,
    flags: list[str],
    expected: bool,
    pendulum_npz: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bool] = []
    learn = BC.learn

    def spy(self: BC, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["progress_bar"])
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(BC, "learn", spy)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert main(_train_args(pendulum_npz, tmp_path, "--steps", "5", *flags)) == 0
    assert seen == [expected]
    assert BC.load(tmp_path / "bc" / f"{ENV}_1" / f"{ENV}.zip", device="cpu").num_timesteps == 5


def test_zoo_runs_get_the_same_progress_bar_options() -> None:
    run = ["train", "--algo", "bc", "-f", "logs"]
    assert progress_options(run, isatty=True) == [*run, "-P"]
    assert progress_options(run, isatty=False) == run
    assert progress_options([*run, "--no-progress-bar"], isatty=True) == run
    assert progress_options([*run, "--progress-bar"], isatty=False) == [*run, "-P"]
    assert progress_options([*run, "--progress"], isatty=False) == [*run, "--progress"]
    assert progress_options(["enjoy", "--algo", "bc"], isatty=True) == ["enjoy", "--algo", "bc"]


def _child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_ctrl_c_during_train_saves_a_loadable_checkpoint(pendulum_npz: Path, tmp_path: Path) -> None:
    output, log_path = tmp_path / "run", tmp_path / "train.log"
    total = 10_000_000
    command = [sys.executable, "-m", "sb3_offline.cli"]
    command += _train_args(pendulum_npz, output, "--steps", str(total), "--verbose", "1", "--log-interval", "5")
    with log_path.open("w") as log:
        # SIGINT's default action in the child, even when this test runs in a background job (where it is ignored)
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 120
            while "n_updates" not in log_path.read_text():  # the logger's first dump: training has started
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            process.send_signal(signal.SIGINT)
            returncode = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    out = log_path.read_text()
    assert returncode == 130, out
    run = output / "bc" / f"{ENV}_1"
    checkpoint = run / f"{ENV}_interrupted.zip"
    assert f"saved {checkpoint}" in out
    model = BC.load(checkpoint, device="cpu")
    assert 0 < model.num_timesteps < total
    assert sorted(p.name for p in run.iterdir()) == [ENV, f"{ENV}_interrupted.zip"]  # no temporary file left
    assert not (run / f"{ENV}.zip").exists()
    # it continues where it stopped
    model.set_env(__import__("gymnasium").make(ENV))
    steps = model.num_timesteps
    model.learn(3, reset_num_timesteps=False)
    assert model.num_timesteps == steps + 3


# --------------------------------------------------------------------------------------------- track
@pytest.mark.slow
def test_track_writes_an_offline_wandb_run(pendulum_npz: Path, tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    command = [sys.executable, "-m", "sb3_offline.cli", "zoo", "train", "--algo", "bc", "--env", ENV, "-f", "logs"]
    command += ["-n", "30", "--eval-freq", "-1", "--device", "cpu", "--seed", "3", "--track"]
    command += ["--wandb-project-name", "sb3-offline-test", "-params", f"dataset:'{pendulum_npz}'", "batch_size:32"]
    env = _child_env(WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true", WANDB_API_KEY="")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, result.stderr[-3000:]
    run = runs[0]
    assert list(run.glob("run-*.wandb")) and (run / "files" / "output.log").is_file()
    # rl-zoo3 syncs SB3's TensorBoard logs into the run: our algorithm's training metrics are in it
    events = list((run / "files" / "runs").rglob("events.out.tfevents.*"))
    assert len(events) == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    assert "train/actor_loss" in accumulator.Tags()["scalars"]
    losses = [event.value for event in accumulator.Scalars("train/actor_loss")]
    assert losses and np.isfinite(losses).all()
    # and the model was trained and saved by rl-zoo3 as usual
    model = BC.load(tmp_path / "logs" / "bc" / f"{ENV}_1" / f"{ENV}.zip", device="cpu")
    assert model.num_timesteps == 30
