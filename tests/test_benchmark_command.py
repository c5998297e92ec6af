"""
``sb3-offline benchmark``: a tiny grid (2 algorithms x the shipped Pendulum dataset x 2 seeds x a few dozen steps)
through the local engine and through Ray Tune (one Ray session for the run: ``conftest.ray_session``), the same
results from both; an interrupted grid resumed without running a finished trial again; wrong grid files refused
before anything runs, naming the key.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sb3_offline.algorithms import ALGOS
from sb3_offline.benchmark import COLUMNS
from sb3_offline.cli import main
from sb3_offline.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[1]
#: The tiny grid: small networks, 30 gradient steps, evaluated at 15 and 30 over one episode.
TINY_GRID = {
    "name": "tiny",
    "datasets": ["pendulum/imperfect-v0"],
    "algorithms": {
        "td3bc": {"batch_size": 64, "policy_kwargs": {"net_arch": [32, 32]}},
        "iql": {"batch_size": 64, "policy_kwargs": "dict(net_arch=[32, 32])"},
    },
    "seeds": [0, 1],
    "steps": 30,
    "eval": {"every": 15, "episodes": 1},
}


def write_grid(folder: Path, content: dict, name: str = "grid.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(content))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny grid run by the local engine with two workers: its output folder."""
    folder = tmp_path_factory.mktemp("local")
    assert (
        main(["benchmark", str(write_grid(folder, TINY_GRID)), "--output", str(folder / "out"), "--workers", "2"]) == 0
    )
    return folder / "out"


def test_local_engine_writes_every_trial_and_the_report(local_grid: Path, capsys: pytest.CaptureFixture) -> None:
    rows = read_csv(local_grid / "results.csv")
    assert list(rows[0]) == list(COLUMNS)
    assert sorted((row["algorithm"], row["seed"]) for row in rows) == [
        ("iql", "0"),
        ("iql", "1"),
        ("td3bc", "0"),
        ("td3bc", "1"),
    ]
    for row in rows:
        folder = local_grid / "trials" / row["trial"]
        result = json.loads((folder / "result.json").read_text())
        assert [step for step, _, _ in result["curve"]] == [15, 30]
        assert (folder / "curve.csv").read_text().splitlines()[0] == "step,mean,std"
        assert result["best_return"] >= result["final_return"] == pytest.approx(float(row["final_return"]))
        assert result["updates_per_s"] > 0 and result["wall_s"] > 0 and result["version"]
        # the final return is the saved checkpoint's, evaluated as `sb3-offline evaluate --episodes 1 --seed 0`
        model = ALGOS[row["algorithm"]].load(folder / "model.zip", device="cpu")
        assert evaluate(model, "Pendulum-v1", n_episodes=1, seed=0).mean_return == pytest.approx(result["final_return"])
        assert float(row["normalized_score"]) == pytest.approx(
            evaluate(model, "Pendulum-v1", 1, "pendulum/imperfect-v0").normalized_score
        )
    report = (local_grid / "report.md").read_text()
    assert "| td3bc |" in report and "IQM" in report and "[" in report
    assert (local_grid / "performance_profile.png").stat().st_size > 0
    assert (local_grid / "curves" / "pendulum-imperfect-v0.png").stat().st_size > 0
    assert not list(local_grid.rglob(".*"))  # no temporary file left


def test_ray_engine_gives_the_local_engines_results(
    local_grid: Path, ray_session: object, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Each trial a Ray Tune trial on the test run's Ray session: the same rows, to the last digit (seeded)."""
    grid = write_grid(tmp_path, TINY_GRID)
    assert main(["benchmark", str(grid), "--output", str(tmp_path / "out"), "--engine", "ray"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("[") >= 4 and "[4/4]" in printed
    ray_rows, local_rows = read_csv(tmp_path / "out" / "results.csv"), read_csv(local_grid / "results.csv")
    assert list(ray_rows[0]) == list(local_rows[0])
    by_trial = {row["trial"]: row for row in local_rows}
    for row in ray_rows:
        for column in ("final_return", "best_return", "normalized_score"):
            assert row[column] == by_trial[row["trial"]][column]
    assert (tmp_path / "out" / "ray" / "tune").is_dir()  # Tune's experiment, what --resume restores


@pytest.mark.parametrize(
    "change, key",
    [
        ({"algorithms": {"nope": {}}}, "algorithms: expected names among"),
        ({"datasets": ["pendulum/missing-v0"]}, "datasets[0]"),
        ({"datasets": ["no/such/file.hdf5"]}, "datasets[0]"),
        ({"algorithms": {"iql": {"not_an_argument": 1}}}, "algorithms.iql.not_an_argument"),
        ({"algorithms": {"iql": {"batch_size": "big"}}}, "algorithms.iql.batch_size: expected int, found 'big'"),
        ({"algorithms": {"iql": {"seed": 3}}}, "algorithms.iql.seed"),
        ({"seeds": [0, "one"]}, "seeds[1]: expected an integer"),
        ({"steps": 0}, "steps: expected an integer >= 1, found 0"),
        ({"eval": {"every": 10, "episodez": 1}}, "eval.episodez"),
        ({"stepz": 10}, "stepz: expected a key among"),
        ({"env": "NoSuchEnv-v0"}, "env: expected a registered gymnasium id"),
        ({"d3rlpy": ["bc"]}, "d3rlpy[0]: expected one of"),
    ],
)
def test_a_wrong_grid_is_refused_before_anything_runs(
    change: dict, key: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = write_grid(tmp_path, {**TINY_GRID, **change})
    assert main(["benchmark", str(grid), "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("sb3-offline benchmark: error: ") and error.count("\n") == 1
    assert key in error
    assert not (tmp_path / "out").exists()


def test_a_missing_required_key_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    content = {key: value for key, value in TINY_GRID.items() if key != "steps"}
    assert main(["benchmark", str(write_grid(tmp_path, content)), "--output", str(tmp_path / "out")]) == 2
    assert "steps: expected this key in the grid, found none" in capsys.readouterr().err


def interrupt_after_a_trial(grid: Path, output: Path, *options: str) -> tuple[int, str]:
    """
    ``sb3-offline benchmark GRID --output OUTPUT OPTIONS`` in a process of its own, stopped by Ctrl-C (SIGINT to its
    process group, as a terminal sends it) once a trial's ``result.json`` is there; its exit status and stderr.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "sb3_offline.cli", "benchmark", str(grid), "--output", str(output), *options]
    process = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 600  # a Ray trial's start took over 240 s on a 2-core machine with 4 jobs
    while not list(output.glob("trials/*/result.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def test_an_interrupted_grid_resumes_without_running_a_finished_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """
    Ctrl-C (SIGINT to the command's process group, as a terminal sends it) once the first trial finished: exit
    status 130, the finished trial kept; ``--resume`` runs the others only (the first's files untouched), and
    without ``--resume`` the folder is refused.
    """
    content = {**TINY_GRID, "algorithms": {"bc": {"policy_kwargs": {"net_arch": [16, 16]}}}, "seeds": [0, 1, 2]}
    content |= {"steps": 200, "eval": {"every": 100, "episodes": 1}}  # a trial: ~2 s, most of it reading the data
    grid, output = write_grid(tmp_path, content), tmp_path / "out"
    returncode, stderr = interrupt_after_a_trial(grid, output)
    assert returncode == 130, stderr
    assert "--resume` continues" in stderr
    finished = {path: path.stat().st_mtime_ns for path in output.glob("trials/*/*") if path.is_file()}
    finished_results = [path for path in finished if path.name == "result.json"]
    assert 1 <= len(finished_results) < 3
    assert main(["benchmark", str(grid), "--output", str(output)]) == 2
    assert "pass --resume to continue it" in capsys.readouterr().err
    assert main(["benchmark", str(grid), "--output", str(output), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"3 trials, {len(finished_results)} finished before, {3 - len(finished_results)} to run" in printed
    assert {path: path.stat().st_mtime_ns for path in finished} == finished  # the finished trials untouched
    assert len(read_csv(output / "results.csv")) == 3


def test_another_grid_in_the_same_folder_is_refused(
    local_grid: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = write_grid(tmp_path, {**TINY_GRID, "steps": 31})
    assert main(["benchmark", str(grid), "--output", str(local_grid), "--resume"]) == 2
    assert "holds another grid" in capsys.readouterr().err


def test_the_readme_shows_the_shipped_grid() -> None:
    """The README's grid is the file its command runs (tests/test_readme.py runs the command)."""
    from test_readme import readme_blocks

    shipped = (ROOT / "sb3_offline" / "benchmark" / "grids" / "pendulum-smoke.yaml").read_text()
    assert shipped in [code for _, code in readme_blocks("yaml")]


def test_a_protocol_entry_makes_its_dataset_before_the_first_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``{collect: {...}}``: the dataset made with sb3_offline.collect (random policy), then trained on."""
    content = {
        **TINY_GRID,
        "datasets": [{"collect": {"env": "Pendulum-v1", "protocol": "random", "steps": 400, "ref_scores": False}}],
        "algorithms": {"bc": {"policy_kwargs": {"net_arch": [16, 16]}, "n_timesteps": 20}},
        "seeds": [0],
    }
    output = tmp_path / "out"
    assert main(["benchmark", str(write_grid(tmp_path, content)), "--output", str(output)]) == 0
    (row,) = read_csv(output / "results.csv")
    assert row["dataset"].startswith("pendulum/random-n400-s0-") and row["steps"] == "20"
    import minari

    assert row["dataset"] in minari.list_local_datasets()  # made by the trial's worker, into the local Minari folder


@pytest.mark.parametrize(
    "entry, key",
    [
        ({"collect": {"env": "Pendulum-v1", "protocol": "nope", "steps": 10}}, "datasets[0].collect.protocol"),
        ({"collect": {"env": "Pendulum-v1", "protocol": "random"}}, "datasets[0].collect.steps"),
        ({"make": {}}, "datasets[0]: expected a Minari id, a path, {collect: {...}} or {concatenate"),
    ],
)
def test_a_wrong_protocol_entry_is_refused(
    entry: dict, key: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    grid = write_grid(tmp_path, {**TINY_GRID, "datasets": [entry]})
    assert main(["benchmark", str(grid), "--output", str(tmp_path / "out")]) == 2
    assert key in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "grids").glob("*.yaml")), ids=lambda path: path.stem)
def test_the_repository_grids_are_valid(path: Path) -> None:
    """Each grid of benchmarks/grids (a table of RESULTS.md, or the papers' budget) passes the checks."""
    from sb3_offline.benchmark import read_grid

    grid, _ = read_grid(path)
    assert grid.trials() and all(name.count("/") == 1 for name in grid.datasets)


def test_d3rlpy_trials_beside_ours(tmp_path: Path) -> None:
    """Where d3rlpy imports: its TD3+BC as a trial of the grid (``d3rlpy-td3bc``), evaluated as ours."""
    pytest.importorskip("d3rlpy")
    content = {**TINY_GRID, "algorithms": {"td3bc": TINY_GRID["algorithms"]["td3bc"]}, "seeds": [0]}
    content["d3rlpy"] = ["td3bc"]
    assert main(["benchmark", str(write_grid(tmp_path, content)), "--output", str(tmp_path / "out")]) == 0
    rows = {row["algorithm"]: row for row in read_csv(tmp_path / "out" / "results.csv")}
    assert set(rows) == {"td3bc", "d3rlpy-td3bc"}
    assert (tmp_path / "out" / "trials" / rows["d3rlpy-td3bc"]["trial"] / "model.d3").is_file()


@pytest.mark.slow
def test_an_interrupted_ray_grid_resumes_with_tuner_restore(
    ray_session: object, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """
    ``--engine ray`` from another process on the test run's Ray session (``--address``), Ctrl-C once a trial
    finished: Tune saves its experiment, exit status 130; ``--resume`` restores it (``Tuner.restore``) and runs the
    unfinished trials only.

    Tune lets the trials running at Ctrl-C finish (a trial reports once, at its end), and the session runs two at a
    time: the first two finish together and each hands its worker the next one within the 0.1 s before the signal,
    so up to four can finish (CI saw four of four once). Eight seeds leave trials that cannot have run.
    """
    import ray

    seeds = list(range(8))
    content = {**TINY_GRID, "algorithms": {"bc": {"policy_kwargs": {"net_arch": [16, 16]}}}, "seeds": seeds}
    content |= {"steps": 200, "eval": {"every": 100, "episodes": 1}}
    grid, output = write_grid(tmp_path, content), tmp_path / "out"
    address = ray.get_runtime_context().gcs_address
    returncode, stderr = interrupt_after_a_trial(grid, output, "--engine", "ray", "--address", address)
    assert returncode == 130, stderr
    assert "--engine ray --address" in stderr
    finished = {path: path.stat().st_mtime_ns for path in output.glob("trials/*/result.json")}
    assert 1 <= len(finished) < len(seeds)
    assert main(["benchmark", str(grid), "--output", str(output), "--engine", "ray", "--resume"]) == 0
    assert f"{len(seeds)} trials, {len(finished)} finished before" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in finished} == finished
    assert len(read_csv(output / "results.csv")) == len(seeds)


def test_variants_run_as_the_grids_trials_of_their_algorithm(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """
    ``benchmarks.grid_variants``: a variant's trials are the grid's trials of its algorithm (the grid's networks,
    steps and evaluation) with the variant's policy and algorithm class; ``ALGOS`` is restored after them; a second
    run reads them back; a dataset filter that matches nothing is refused.
    """
    import base64
    import zipfile

    from benchmarks.grid_variants import main as variants_main
    from sb3_offline.algorithms import ALGOS

    content = {**TINY_GRID, "algorithms": {"awac": {"batch_size": 64, "policy_kwargs": {"net_arch": [16, 16]}}}}
    grid, output = write_grid(tmp_path, content), tmp_path / "variants"
    awac = ALGOS["awac"]
    argv = [str(grid), "--seeds", "0", "--variants", "awac_d3_all", "--output", str(output)]
    variants_main(argv)
    assert ALGOS["awac"] is awac
    folder = output / "awac_d3_all" / "trials" / "awac_pendulum-imperfect-v0_seed0"
    result = json.loads((folder / "result.json").read_text())
    assert result["steps"] == 30 and result["eval_episodes"] == 1
    with zipfile.ZipFile(folder / "model.zip") as archive:
        data = json.loads(archive.read("data"))
    assert b"AWACPyTorchInitPolicy" in base64.b64decode(data["policy_class"][":serialized:"])  # the variant's policy
    assert data["_checkpoint_class"]["class"] == "AWACD3rlpy"  # and its algorithm class
    assert "net_arch" in str(data["policy_kwargs"]) and "16" in str(data["policy_kwargs"])
    printed = capsys.readouterr().out
    assert "| pendulum/imperfect-v0 | AWAC (all d3rlpy's differences) | 1 |" in printed
    modified = (folder / "result.json").stat().st_mtime_ns
    variants_main(argv)
    assert (folder / "result.json").stat().st_mtime_ns == modified
    with pytest.raises(SystemExit):
        variants_main([*argv, "--datasets", "hopper"])
    assert "--datasets: expected text in one of the grid's datasets" in capsys.readouterr().err
    variants_main([*argv[:4], "awac_wd_sum_now", "--output", str(output)])  # a variant's own keyword arguments
    with zipfile.ZipFile(output / "awac_wd_sum_now" / "trials" / folder.name / "model.zip") as archive:
        assert json.loads(archive.read("data"))["actor_weight_decay"] == pytest.approx(1e-4 / 128)
    with pytest.raises(SystemExit):
        variants_main([*argv[:4], "iql_temp1", "--output", str(output)])
    assert "--variants iql_temp1: expected its algorithm 'iql' among the grid's ['awac']" in capsys.readouterr().err
