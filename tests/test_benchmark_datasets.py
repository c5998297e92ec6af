"""
Datasets a grid makes on demand (``datasets: [{collect: {...}}]``, :mod:`sb3_offline.benchmark.datasets`): an entry
checked before anything runs, its id the same for the same entry, the dataset made once by ``sb3-offline
benchmark`` (Pendulum-v1, a few hundred transitions, a tiny expert as in ``test_collect.py``) and reused by a
second grid and by ``--resume``; and every grid file of ``benchmarks/grids`` a valid grid.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import minari
import pytest
import yaml

from sb3_offline.benchmark.datasets import collect_dataset_id, collect_options, dataset_exists, ensure_dataset
from sb3_offline.benchmark.grid import GridError, check_grid
from sb3_offline.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: A tiny `imperfect` dataset: 400 transitions of a 300-step TD3 expert with 64-64 networks.
ENTRY = {
    "env": "Pendulum-v1",
    "protocol": "imperfect",
    "steps": 400,
    "seed": 0,
    "expert_steps": 300,
    "ref_episodes": 2,
    "behaviour_kwargs": {"learning_starts": 100, "policy_kwargs": {"net_arch": [64, 64]}},
}
GRID = {
    "name": "collected",
    "datasets": [{"collect": ENTRY}],
    "algorithms": {"bc": {"batch_size": 64, "policy_kwargs": {"net_arch": [32, 32]}}},
    "seeds": [0, 1],
    "steps": 20,
    "eval": {"every": 10, "episodes": 1, "seed": 100, "add_seed": True},  # reset seed 100 + the trial's seed
}


def grid_with(**entry: Any) -> dict[str, Any]:
    """GRID with its entry's keys replaced (``None``: removed)."""
    content = copy.deepcopy(GRID)
    options = content["datasets"][0]["collect"]
    for key, value in entry.items():
        if value is None:
            options.pop(key)
        else:
            options[key] = value
    return content


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"protocol": "expert-replay"}, "datasets[0].collect.protocol: expected one of ['final'"),
        ({"transitions": 400}, "datasets[0].collect.transitions: expected a key among ['env'"),
        ({"steps": None}, "datasets[0].collect.steps: expected this key"),
        ({"steps": 0}, "datasets[0].collect.steps: expected an integer >= 1, found 0"),
        ({"env": "NoSuchEnv-v0"}, "datasets[0].collect.env: expected a registered gymnasium id"),
        ({"algo": "ppo"}, "datasets[0].collect.algo: expected one of ['ddpg', 'dqn', 'qrdqn', 'sac', 'td3']"),
        ({"ref_min": -1000.0}, "datasets[0].collect.ref_max: expected both reference scores"),
        ({"dataset_id": "no-namespace"}, "datasets[0].collect.dataset_id: expected a Minari id"),
        ({"seed": True}, "datasets[0].collect.seed: expected an integer >= 0, found True (bool)"),
    ],
)
def test_a_wrong_entry_is_named_before_anything_runs(entry: dict[str, Any], named: str) -> None:
    with pytest.raises(GridError) as error:
        check_grid(grid_with(**entry))
    assert named in str(error.value)
    assert minari.list_local_datasets() == {}  # nothing made


def test_an_entry_that_is_not_collect_is_named() -> None:
    content = copy.deepcopy(GRID)
    content["datasets"] = [{"record": ENTRY}]
    with pytest.raises(
        GridError, match=r"datasets\[0\]: expected a Minari id, a path, \{collect: \{...\}\} or \{concatenate"
    ):
        check_grid(content)


def test_eval_add_seed_is_true_or_false() -> None:
    with pytest.raises(GridError, match=r"eval.add_seed: expected true or false, found 1 \(int\)"):
        check_grid({**GRID, "eval": {"add_seed": 1}})
    assert check_grid(GRID).eval_add_seed and not check_grid({**GRID, "eval": {}}).eval_add_seed


def test_the_same_entry_names_the_same_dataset() -> None:
    options = collect_options("e", ENTRY)
    same = collect_options("e", {**ENTRY, "algo": "td3", "ref_scores": True})  # defaults written out
    assert collect_dataset_id(options) == collect_dataset_id(same)
    assert collect_dataset_id(options).startswith("pendulum/imperfect-n400-s0-")
    assert collect_dataset_id(options).endswith("-v0")
    assert collect_dataset_id(collect_options("e", {**ENTRY, "seed": 1})) != collect_dataset_id(options)
    assert collect_dataset_id(collect_options("e", {**ENTRY, "expert_steps": 301})) != collect_dataset_id(options)
    assert collect_dataset_id(collect_options("e", {**ENTRY, "dataset_id": "mine/data-v3"})) == "mine/data-v3"
    grid = check_grid(GRID)
    assert grid.datasets == [collect_dataset_id(options)] and grid.collect == {grid.datasets[0]: options}


def collected_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("collected ")]


def test_a_grid_makes_its_dataset_once_and_reuses_it(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GRID))
    dataset_id = check_grid(GRID).datasets[0]
    assert not dataset_exists(dataset_id)
    # two trials in two processes at once: one makes the dataset, the other waits for it
    assert main(["benchmark", str(path), "--output", str(tmp_path / "a"), "--workers", "2"]) == 0
    first = capfd.readouterr().out
    assert collected_lines(first) == [collected_lines(first)[0]] and dataset_id in collected_lines(first)[0]
    data = minari.load_dataset(dataset_id)
    assert data.total_steps == 400 and data.spec.env_spec.id == "Pendulum-v1"
    assert {"ref_min_score", "ref_max_score"} <= set(data.storage.metadata)
    written = (minari.storage.get_dataset_path() / dataset_id / "data" / "main_data.hdf5").stat().st_mtime_ns
    # another grid folder, then --resume of the first: the dataset is found, not made again
    assert main(["benchmark", str(path), "--output", str(tmp_path / "b")]) == 0
    assert main(["benchmark", str(path), "--output", str(tmp_path / "a"), "--resume"]) == 0
    assert collected_lines(capfd.readouterr().out) == []
    assert (minari.storage.get_dataset_path() / dataset_id / "data" / "main_data.hdf5").stat().st_mtime_ns == written
    results = (tmp_path / "b" / "results.csv").read_text()
    assert results.count(dataset_id) == 2 and "normalized_score" in results
    for seed in (0, 1):  # eval.add_seed: each trial evaluated from 100 + its seed (benchmarks/batch_settings.py's rule)
        result = json.loads(next((tmp_path / "b" / "trials").glob(f"*seed{seed}/result.json")).read_text())
        assert result["eval_seed"] == 100 + seed
    assert ensure_dataset(dataset_id, check_grid(GRID).collect[dataset_id]) is False


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "grids").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_grid_is_valid(path: Path) -> None:
    """Each grid of benchmarks/grids checks (its d3rlpy key left out where d3rlpy is not installed)."""
    from benchmarks.d3rlpy_compat import d3rlpy_available

    content = yaml.safe_load(path.read_text())
    assert content["name"] == path.stem
    if not d3rlpy_available():
        content.pop("d3rlpy", None)
    grid = check_grid(content)
    assert grid.trials() and set(grid.collect) <= set(grid.datasets)
    command = f"sb3-offline benchmark benchmarks/grids/{path.name} --output results/{path.stem}"
    assert command in path.read_text()  # the one line that remakes the table, in the file's header


def test_a_concatenate_entry_joins_its_parts_in_order() -> None:
    """random then imitation (the expert made after the random part): the scores are the imitation part's."""
    random_part = {**ENTRY, "protocol": "random", "steps": 200}
    expert_part = {**ENTRY, "protocol": "imitation", "steps": 200}
    content = {**GRID, "datasets": [{"concatenate": [{"collect": random_part}, {"collect": expert_part}]}]}
    grid = check_grid(content)
    (dataset_id,) = grid.datasets
    assert dataset_id.startswith("pendulum/random-imitation-mix-") and check_grid(content).datasets == [dataset_id]
    assert ensure_dataset(dataset_id, grid.collect[dataset_id]) is True
    parts = [part["dataset_id"] for part in grid.collect[dataset_id]["concatenate"]]
    assert all(dataset_exists(part) for part in parts)
    mixture = minari.load_dataset(dataset_id)
    random_data, expert_data = (minari.load_dataset(part) for part in parts)
    assert mixture.total_steps == 400 and "ref_min_score" not in random_data.storage.metadata
    assert mixture.storage.metadata["ref_max_score"] == expert_data.storage.metadata["ref_max_score"]
    episodes = [episode.actions for episode in mixture.iterate_episodes()]
    assert (episodes[0] == next(iter(random_data.iterate_episodes())).actions).all()
    assert (episodes[-1] == list(expert_data.iterate_episodes())[-1].actions).all()
    with pytest.raises(GridError, match=r"datasets\[0\].concatenate: expected a list of two or more"):
        check_grid({**GRID, "datasets": [{"concatenate": [{"collect": random_part}]}]})
    with pytest.raises(GridError, match=r"datasets\[0\].concatenate\[1\].collect.steps: expected an integer"):
        check_grid(
            {**GRID, "datasets": [{"concatenate": [{"collect": random_part}, {"collect": {**ENTRY, "steps": -1}}]}]}
        )


def test_every_shipped_algorithm_setting_builds() -> None:
    """Each (algorithm, arguments) of benchmarks/grids builds on Pendulum-v1 (the networks' sizes as written)."""
    import gymnasium as gym

    from sb3_offline.algorithms import ALGOS

    settings = {
        (name, yaml.safe_dump(kwargs)): kwargs
        for path in (ROOT / "benchmarks" / "grids").glob("*.yaml")
        if "paper" not in path.name and "discrete" not in path.name  # the papers' budget, CartPole's: the defaults
        for name, kwargs in yaml.safe_load(path.read_text())["algorithms"].items()
    }
    assert len(settings) >= 10
    for (name, _), kwargs in sorted(settings.items()):
        kwargs = {key: value for key, value in kwargs.items() if key != "n_timesteps"}  # the trial's, not the model's
        model = ALGOS[name]("MlpPolicy", gym.make("Pendulum-v1"), dataset="pendulum/imperfect-v0", **kwargs)
        widths = [m.out_features for m in model.policy.modules() if hasattr(m, "out_features")]
        assert 64 in widths and 256 not in widths, (name, widths)  # the small networks, none of the defaults
