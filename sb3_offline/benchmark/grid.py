"""
A benchmark grid file (YAML): what ``sb3-offline benchmark`` runs, checked in full before any trial runs.

.. code-block:: yaml

    name: pendulum-smoke
    env: Pendulum-v1                # optional where the datasets record their env
    datasets:                       # Minari ids or paths (.hdf5, .npz, ...), or entries made on demand
      - pendulum/imperfect-v0
      - {collect: {env: Pendulum-v1, protocol: final, steps: 10000}}   # see sb3_offline.benchmark.datasets
    algorithms: {bcq: {}, iql: {batch_size: 128}}   # ALGOS name -> constructor arguments (n_timesteps: its steps)
    seeds: [0, 1]
    steps: 200                      # gradient steps per trial
    eval: {every: 100, episodes: 2, seed: 0}   # add_seed: true -> reset seed `seed` + the trial's seed
    d3rlpy: [iql]                   # optional: d3rlpy's counterpart of these algorithms as trials too
    device: cpu                     # optional (default cpu)

An entry made on demand (``collect`` or ``concatenate``) is described in :mod:`sb3_offline.benchmark.datasets`: the
first trial that needs it makes it in the local Minari folder, once. The constructor arguments are checked as
``sb3-offline train``'s ``-params`` are (:mod:`sb3_offline.cli.hyperparams`: the key against the constructor, the
value's type against its annotation).
A wrong grid is a :class:`GridError` naming the key, what was expected and what was found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The keys a grid file may hold; the first five are required.
REQUIRED_KEYS = ("name", "datasets", "algorithms", "seeds", "steps")
OPTIONAL_KEYS = ("env", "eval", "d3rlpy", "device")
#: The keys of ``eval`` and their defaults (``seed``: the reset seed of every evaluation, as ``train --eval-seed``;
#: ``add_seed``: each trial's seed added to it, as ``benchmarks/batch_settings.py``'s ``10000 + seed``).
EVAL_DEFAULTS = {"every": 0, "episodes": 10, "seed": 0, "add_seed": False}
#: Constructor arguments a grid sets with its own keys, not per algorithm.
GRID_ARGUMENTS = {"seed": "seeds", "env": "env", "device": "device", "dataset": "datasets"}


class GridError(ValueError):
    """A grid file that cannot run: the key, what was expected and what was found, in one line."""


@dataclass(frozen=True)
class Trial:
    """
    One run of a grid: an algorithm (ours, or d3rlpy's counterpart: ``kind="d3rlpy"``) on a dataset with a seed.

    :param algorithm: the ``ALGOS`` name
    :param dataset: the Minari id or path
    :param seed: the seed of the model
    :param kwargs: the constructor arguments from the grid (as written there: ``policy_kwargs`` may be text)
    :param kind: ``"sb3"`` (ours) or ``"d3rlpy"``
    """

    algorithm: str
    dataset: str
    seed: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "sb3"

    def steps(self, grid: Grid) -> int:
        """The trial's gradient steps: its algorithm's ``n_timesteps``, else the grid's ``steps``."""
        return int(self.kwargs.get("n_timesteps", grid.steps))

    @property
    def label(self) -> str:
        """The algorithm as results.csv names it: ``iql``, or ``d3rlpy-iql`` for d3rlpy's."""
        return self.algorithm if self.kind == "sb3" else f"{self.kind}-{self.algorithm}"

    @property
    def name(self) -> str:
        """The trial's folder name under ``DIR/trials``: ``<label>_<dataset>_seed<seed>`` (file-name safe)."""
        dataset = re.sub(r"[^A-Za-z0-9]+", "-", self.dataset).strip("-")[-60:]
        return f"{self.label}_{dataset}_seed{self.seed}"


@dataclass(frozen=True)
class Grid:
    """A checked grid file (see the module docstring); :meth:`trials` lists its runs."""

    name: str
    datasets: list[str]
    algorithms: dict[str, dict[str, Any]]
    seeds: list[int]
    steps: int
    env: str | None = None
    eval_every: int = 0
    eval_episodes: int = 10
    eval_seed: int = 0
    eval_add_seed: bool = False
    d3rlpy: list[str] = field(default_factory=list)
    device: str = "cpu"
    #: the datasets made on demand: id -> ``collect`` options (:mod:`sb3_offline.benchmark.datasets`)
    collect: dict[str, dict[str, Any]] = field(default_factory=dict)
    left_out: str = ""

    def trials(self) -> list[Trial]:
        """Every (algorithm, dataset, seed), ours then d3rlpy's, dataset by dataset."""
        runs = [
            Trial(algorithm, dataset, seed, kwargs)
            for dataset in self.datasets
            for algorithm, kwargs in self.algorithms.items()
            for seed in self.seeds
        ]
        runs += [
            Trial(algorithm, dataset, seed, self.algorithms[algorithm], kind="d3rlpy")
            for dataset in self.datasets
            for algorithm in self.d3rlpy
            for seed in self.seeds
        ]
        return runs


def _type_name(value: Any) -> str:
    return type(value).__name__


def _expect(key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` when it is a ``kind`` (a bool is no int), else a :class:`GridError` naming ``key``."""
    if not isinstance(value, kind) or (
        isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise GridError(f"{key}: expected {what}, found {value!r} ({_type_name(value)})")
    return value


def _int_list(key: str, value: Any, minimum: int | None = None) -> list[int]:
    items = _expect(key, value, list, "a non-empty list of integers")
    if not items:
        raise GridError(f"{key}: expected a non-empty list of integers, found []")
    for index, item in enumerate(items):
        _expect(f"{key}[{index}]", item, int, "an integer")
    if len(set(items)) != len(items):
        raise GridError(f"{key}: expected distinct values, found {items}")
    return list(items)


def _count(key: str, value: Any, minimum: int) -> int:
    number = _expect(key, value, int, f"an integer >= {minimum}")
    if number < minimum:
        raise GridError(f"{key}: expected an integer >= {minimum}, found {number}")
    return int(number)


def check_env(env: Any) -> str | None:
    """The ``env`` key: ``None`` or a registered gymnasium id."""
    if env is None:
        return None
    import gymnasium as gym

    _expect("env", env, str, "a gymnasium id")
    try:
        gym.spec(env)
    except gym.error.Error as error:
        raise GridError(f"env: expected a registered gymnasium id, found {env!r} ({error})") from error
    return env


def check_datasets(value: Any, env: str | None, made: Mapping[str, Any] | None = None) -> list[str]:
    """
    The ``datasets`` key (its entries made on demand already replaced by their ids): each a path that exists or a
    Minari id on local disk (or shipped) with an env, or one of ``made`` (a dataset made on demand, checked by
    :mod:`sb3_offline.benchmark.datasets`).
    """
    from sb3_offline.datasets.loaders import dataset_env_id
    from sb3_offline.datasets.minari import is_minari_source, open_minari_dataset

    datasets = _expect("datasets", value, list, "a non-empty list of Minari ids or paths")
    if not datasets:
        raise GridError("datasets: expected a non-empty list of Minari ids or paths, found []")
    for index, dataset in enumerate(datasets):
        key = f"datasets[{index}]"
        _expect(key, dataset, str, "a Minari id, a path or {collect: {...}}")
        if made and dataset in made:
            continue
        if is_minari_source(dataset):
            try:
                open_minari_dataset(dataset)
            except Exception as error:  # a missing or broken dataset, in the reader's own words
                raise GridError(
                    f"{key}: expected a Minari dataset on local disk, found {dataset!r} ({error})"
                ) from error
        elif not Path(dataset).expanduser().exists():
            raise GridError(f"{key}: expected a Minari id or an existing path, found {dataset!r} (no such file)")
        if env is None and dataset_env_id(dataset) is None:
            raise GridError(f"env: expected a gymnasium id, since {key} ({dataset!r}) records no env; found none")
    if len(set(datasets)) != len(datasets):
        raise GridError(f"datasets: expected distinct entries, found {datasets}")
    return datasets


def check_kwargs(algorithm: str, algo_class: type, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """
    One algorithm's constructor arguments: each key one of the constructor's (``-params``' rule, reused from
    :mod:`sb3_offline.cli.hyperparams`), each value of the type its annotation admits.
    """
    from sb3_offline.cli import hyperparams

    where = f"algorithms.{algorithm}"
    parameters = hyperparams.constructor_parameters(algo_class)
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in GRID_ARGUMENTS:
            raise GridError(f"{where}.{key}: set by the grid's {GRID_ARGUMENTS[key]!r} key, not per algorithm")
        if key == "n_timesteps":  # rl-zoo3's key: this algorithm's gradient steps instead of the grid's steps
            checked[key] = _count(f"{where}.n_timesteps", value, 1)
            continue
        try:
            hyperparams.check_keys(algorithm, algo_class, {key: value}, f"{where}.{key}")
            if key in hyperparams.EVALUATED_KEYS and isinstance(value, str):
                hyperparams.evaluate_settings({key: value})  # the Python text evaluates
            elif key in parameters:
                value = hyperparams.type_value(key, repr(value), parameters[key].annotation)
        except hyperparams.SettingsError as error:
            raise GridError(str(error).replace("-params ", f"{where}.", 1)) from error
        checked[key] = value
    return checked


def check_algorithms(value: Any) -> dict[str, dict[str, Any]]:
    """The ``algorithms`` key: ``ALGOS`` names, each with a mapping (or nothing) of constructor arguments."""
    from sb3_offline.algorithms import ALGOS

    algorithms = _expect("algorithms", value, dict, "a mapping of algorithm names to constructor arguments")
    if not algorithms:
        raise GridError(f"algorithms: expected at least one of {sorted(ALGOS)}, found none")
    checked = {}
    for name, kwargs in algorithms.items():
        if name not in ALGOS:
            raise GridError(f"algorithms: expected names among {sorted(ALGOS)}, found {name!r}")
        kwargs = _expect(f"algorithms.{name}", {} if kwargs is None else kwargs, dict, "a mapping of arguments")
        checked[name] = check_kwargs(name, ALGOS[name], kwargs)
    return checked


def check_d3rlpy(value: Any, algorithms: Mapping[str, Any]) -> tuple[list[str], str]:
    """
    The ``d3rlpy`` key: algorithms of the grid to run with d3rlpy too (``benchmarks.d3rlpy_runs``, our defaults).
    Where d3rlpy or the clone's ``benchmarks`` package does not import, they are left out and the second value
    says so (the grid's other trials run).
    """
    if value is None:
        return [], ""
    names = _expect("d3rlpy", value, list, "a list of algorithm names")
    for index, name in enumerate(names):
        if name not in algorithms:
            raise GridError(
                f"d3rlpy[{index}]: expected one of the grid's algorithms {list(algorithms)}, found {name!r}"
            )
    try:
        from benchmarks.d3rlpy_compat import D3RLPY_ALGOS, d3rlpy_available
    except ImportError as error:
        return [], f"d3rlpy's {names} left out: the clone's benchmarks package does not import here ({error})"
    for index, name in enumerate(names):
        if name not in D3RLPY_ALGOS:
            raise GridError(f"d3rlpy[{index}]: expected one of {list(D3RLPY_ALGOS)} (d3rlpy's), found {name!r}")
    if names and not d3rlpy_available():
        return [], f"d3rlpy's {names} left out: d3rlpy does not import here (pip install d3rlpy==2.8.1)"
    return list(names), ""


def check_grid(content: Any) -> Grid:
    """A :class:`Grid` from a grid file's content (a mapping), every key checked; :class:`GridError` else."""
    from sb3_offline.benchmark.datasets import check_entries

    content = _expect("grid", content, dict, "a mapping of the keys " + ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS))
    unknown = [key for key in content if key not in REQUIRED_KEYS + OPTIONAL_KEYS]
    if unknown:
        raise GridError(
            f"{unknown[0]}: expected a key among {list(REQUIRED_KEYS + OPTIONAL_KEYS)}, found {unknown[0]!r}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise GridError(f"{missing[0]}: expected this key in the grid, found none")
    name = _expect("name", content["name"], str, "a name")
    evaluation = dict(EVAL_DEFAULTS)
    given = _expect("eval", content.get("eval") or {}, dict, "a mapping with every, episodes, seed")
    for key, item in given.items():
        if key not in EVAL_DEFAULTS:
            raise GridError(f"eval.{key}: expected a key among {list(EVAL_DEFAULTS)}, found {key!r}")
        if key == "add_seed":
            evaluation[key] = _expect("eval.add_seed", item, bool, "true or false")
            continue
        evaluation[key] = _count(f"eval.{key}", item, 0)
    env = check_env(content.get("env"))
    algorithms = check_algorithms(content["algorithms"])
    entries, collect = check_entries(content["datasets"])  # {collect: {...}} entries: their dataset ids
    datasets = check_datasets(entries, env, made=collect)
    d3rlpy, left_out = check_d3rlpy(content.get("d3rlpy"), algorithms)
    return Grid(
        name=name,
        datasets=datasets,
        collect=collect,
        algorithms=algorithms,
        seeds=_int_list("seeds", content["seeds"]),
        steps=_count("steps", content["steps"], 1),
        env=env,
        eval_every=evaluation["every"],
        eval_episodes=evaluation["episodes"],
        eval_seed=evaluation["seed"],
        eval_add_seed=bool(evaluation["add_seed"]),
        d3rlpy=d3rlpy,
        left_out=left_out,
        device=_expect("device", content.get("device", "cpu"), str, "a torch device name"),
    )


def read_grid(path: str | Path) -> tuple[Grid, dict[str, Any]]:
    """The checked grid of a YAML file and the file's content; :class:`GridError` for a wrong one."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GridError(f"grid: expected a YAML file, found no file {path}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise GridError(f"grid: expected YAML in {path}, found a syntax error ({error})".replace("\n", " ")) from error
    try:
        return check_grid(content), content
    except GridError as error:
        raise GridError(f"{path}: {error}") from error
