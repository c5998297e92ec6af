"""
Datasets a grid makes on demand: a ``datasets`` entry ``{collect: {...}}`` is a dataset made with
:func:`sb3_offline.collect.collect_dataset` (the protocols of the BCQ paper and D4RL, as ``sb3-offline collect``)
into the local Minari folder, once: a grid run again, or continued with ``--resume``, finds it there and reuses it.

.. code-block:: yaml

    datasets:
      - pendulum/imperfect-v0          # a Minari id or a path, as it is
      - collect: {env: Pendulum-v1, protocol: imperfect, steps: 10000, seed: 0}
      - concatenate:                   # heterogeneous data: datasets made as above, joined in this order
          - collect: {env: Pendulum-v1, protocol: random, steps: 10000}
          - collect: {env: Pendulum-v1, protocol: expert, steps: 10000}

The keys are ``sb3-offline collect``'s options (``--no-ref-scores`` is ``ref_scores: false``) and
``behaviour_kwargs`` (more arguments of the SB3 behaviour agent); ``env``, ``protocol`` and ``steps`` are required.
The dataset's id is ``dataset_id`` when given, else ``<env>/<protocol>-n<steps>-s<seed>-<digest>-v0``, where the
digest (8 hex digits) is of every option with its default filled in: the same entry names the same dataset in every
grid, a different one another. A ``concatenate`` entry's parts are datasets of their own (made, or found, first);
its id is ``<env>/<protocol>-<protocol>-mix-<digest>-v0`` and its reference scores the first part's that has some
(as ``benchmarks/batch_settings.py``'s ``random-expert``).

An entry is checked in full when the grid is read (:func:`check_entries`); the dataset
is made by the first trial that needs it (:func:`ensure_dataset`, under a file lock beside the Minari datasets, so
that trials in parallel processes make it once) and by nobody once it is there.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from sb3_offline.benchmark.grid import GridError

#: The keys of a ``collect`` entry, with their defaults (``sb3-offline collect``'s; ``None`` first: required).
COLLECT_DEFAULTS: dict[str, Any] = {
    "env": None,
    "protocol": None,
    "steps": None,
    "algo": "td3",
    "seed": 0,
    "expert_steps": None,
    "ref_episodes": 20,
    "ref_min": None,
    "ref_max": None,
    "ref_scores": True,
    "behaviour_kwargs": None,
    "dataset_id": None,
}
REQUIRED = ("env", "protocol", "steps")
#: A Minari id: ``namespace/name-vN`` (what :func:`ensure_dataset` writes).
MINARI_ID = re.compile(r"^[\w:.-]+/[\w:.-]+-v\d+$")


def _check_value(where: str, key: str, value: Any) -> None:
    """One option's value: its type (a bool is no number) and range, else a :class:`GridError` naming it."""
    from sb3_offline.collect import BEHAVIOUR_ALGOS, PROTOCOLS

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise GridError(f"{where}.{key}: expected {what}, found {value!r} ({type(value).__name__})")

    is_int = isinstance(value, int) and not isinstance(value, bool)
    if key == "env":
        expect(isinstance(value, str), "a gymnasium id")
        import gymnasium as gym

        try:
            gym.spec(value)
        except gym.error.Error as error:
            raise GridError(f"{where}.env: expected a registered gymnasium id, found {value!r} ({error})") from error
    elif key == "protocol":
        expect(value in PROTOCOLS, f"one of {list(PROTOCOLS)}")
    elif key == "algo":
        expect(value in BEHAVIOUR_ALGOS, f"one of {sorted(BEHAVIOUR_ALGOS)}")
    elif key in ("steps", "ref_episodes") or (key == "expert_steps" and value is not None):
        expect(is_int and value >= 1, "an integer >= 1")
    elif key == "seed":
        expect(is_int and value >= 0, "an integer >= 0")
    elif key in ("ref_min", "ref_max") and value is not None:
        expect(isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value), "a number")
    elif key == "ref_scores":
        expect(isinstance(value, bool), "true or false")
    elif key == "behaviour_kwargs" and value is not None:
        expect(isinstance(value, dict) and all(isinstance(k, str) for k in value), "a mapping of arguments")
    elif key == "dataset_id" and value is not None:
        expect(isinstance(value, str) and MINARI_ID.match(value) is not None, "a Minari id namespace/name-vN")


def collect_options(where: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """
    The checked options of a ``collect`` entry, every default filled in (:data:`COLLECT_DEFAULTS`).

    :param where: the entry's place in the grid, for errors (``datasets[1].collect``)
    """
    if not isinstance(entry, dict):
        raise GridError(f"{where}: expected a mapping of {list(COLLECT_DEFAULTS)}, found {entry!r}")
    for key in entry:
        if key not in COLLECT_DEFAULTS:
            raise GridError(f"{where}.{key}: expected a key among {list(COLLECT_DEFAULTS)}, found {key!r}")
    for key in REQUIRED:
        if key not in entry:
            raise GridError(f"{where}.{key}: expected this key (the env, the protocol and the transitions), found none")
    options = {**COLLECT_DEFAULTS, **entry}
    for key, value in options.items():
        _check_value(where, key, value)
    if (options["ref_min"] is None) != (options["ref_max"] is None):
        missing = "ref_max" if options["ref_max"] is None else "ref_min"
        raise GridError(f"{where}.{missing}: expected both reference scores (ref_min, ref_max) or neither, found one")
    if options["ref_min"] is not None and not options["ref_scores"]:
        raise GridError(f"{where}.ref_scores: expected true with ref_min/ref_max (scores to record), found false")
    return options


def collect_dataset_id(options: Mapping[str, Any]) -> str:
    """The dataset id of checked options: ``dataset_id``, else ``<env>/<protocol>-n<steps>-s<seed>-<digest>-v0``."""
    from sb3_offline.collect import default_dataset_id

    if options.get("dataset_id"):
        return str(options["dataset_id"])
    content = {key: value for key, value in options.items() if key != "dataset_id"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    namespace = default_dataset_id(options["env"], options["protocol"]).split("/")[0]
    return f"{namespace}/{options['protocol']}-n{options['steps']}-s{options['seed']}-{digest}-v0"


def _check_entry(where: str, entry: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A ``collect`` or ``concatenate`` entry's dataset id and checked options (a mixture's: its parts')."""
    if list(entry) == ["collect"]:
        options = collect_options(f"{where}.collect", entry["collect"])
        return collect_dataset_id(options), options
    if list(entry) != ["concatenate"]:
        raise GridError(
            f"{where}: expected a Minari id, a path, {{collect: {{...}}}} or {{concatenate: [...]}}, found keys "
            f"{list(entry)}"
        )
    parts = entry["concatenate"]
    if not isinstance(parts, list) or len(parts) < 2 or not all(isinstance(part, dict) for part in parts):
        raise GridError(f"{where}.concatenate: expected a list of two or more {{collect: {{...}}}}, found {parts!r}")
    checked = [_check_entry(f"{where}.concatenate[{index}]", part) for index, part in enumerate(parts)]
    if any("concatenate" in options for _, options in checked):
        raise GridError(f"{where}.concatenate: expected {{collect: {{...}}}} parts, found a concatenate inside")
    envs = {options["env"] for _, options in checked}
    if len(envs) != 1:
        raise GridError(f"{where}.concatenate: expected parts of one env, found {sorted(envs)}")
    options = {"concatenate": [{**part, "dataset_id": part_id} for part_id, part in checked]}
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    namespace = checked[0][0].split("/")[0]
    protocols = "-".join(part["protocol"] for _, part in checked)
    return f"{namespace}/{protocols}-mix-{digest}-v0", options


def check_entries(value: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    """
    The ``datasets`` key with each ``{collect: {...}}`` or ``{concatenate: [...]}`` entry replaced by its dataset
    id, and those ids' options (checked); anything else is left as it is for
    :func:`sb3_offline.benchmark.grid.check_datasets`.
    """
    if not isinstance(value, list):
        return value, {}
    datasets: list[Any] = []
    collect: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            datasets.append(entry)
            continue
        where = f"datasets[{index}]"
        dataset_id, options = _check_entry(where, entry)
        if dataset_id in collect and collect[dataset_id] != options:
            raise GridError(f"{where}: expected a dataset_id of one entry, found {dataset_id!r} twice")
        collect[dataset_id] = options
        datasets.append(dataset_id)
    return datasets, collect


def dataset_exists(dataset_id: str) -> bool:
    """Whether the local Minari folder holds ``dataset_id`` (its ``data`` folder: a finished dataset)."""
    from minari.storage import get_dataset_path

    return (get_dataset_path() / dataset_id / "data").is_dir()


def ensure_dataset(dataset_id: str, options: Mapping[str, Any], log: Callable[[str], None] = print) -> bool:
    """
    Make ``dataset_id`` with :func:`~sb3_offline.collect.collect_dataset` (a mixture: its parts, then them joined)
    unless the local Minari folder holds it. A file lock beside the datasets makes parallel callers wait for the one
    that makes it.

    :param options: the entry's checked options (:func:`collect_options`; a mixture's ``{"concatenate": [...]}``)
    :param log: where the line on what was made goes
    :return: whether it was made now
    """
    from filelock import FileLock
    from minari.storage import get_dataset_path

    from sb3_offline.collect import collect_dataset

    if dataset_exists(dataset_id):
        return False
    root = get_dataset_path()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{re.sub(r'[^A-Za-z0-9.-]+', '_', dataset_id)}.lock")):
        if dataset_exists(dataset_id):  # made by another process while this one waited
            return False
        if "concatenate" in options:
            _concatenate(dataset_id, options["concatenate"], log)
            return True
        result = collect_dataset(
            options["env"],
            options["protocol"],
            options["steps"],
            algo=options["algo"],
            dataset_id=dataset_id,
            seed=options["seed"],
            expert_steps=options["expert_steps"],
            ref_episodes=options["ref_episodes"],
            behaviour_kwargs=options["behaviour_kwargs"],
            progress_bar=False,
            ref_min=options["ref_min"],
            ref_max=options["ref_max"],
            ref_scores=options["ref_scores"],
        )
    log(f"collected {dataset_id}: {len(result.transitions)} transitions in {result.seconds:.0f} s")
    return True


def _concatenate(dataset_id: str, parts: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    """The parts made (or found), joined in order into ``dataset_id`` with the first reference scores among them."""
    from sb3_offline.datasets import Transitions, load_transitions, save_minari

    for part in parts:
        ensure_dataset(part["dataset_id"], part, log)
    loaded = [load_transitions(part["dataset_id"]) for part in parts]
    mixture = Transitions.concatenate(loaded)
    scored = [data.metadata for data in loaded if "ref_min_score" in data.metadata and "ref_max_score" in data.metadata]
    if scored:
        mixture.metadata.update(ref_min_score=scored[0]["ref_min_score"], ref_max_score=scored[0]["ref_max_score"])
    names = " and ".join(part["dataset_id"] for part in parts)
    save_minari(mixture, dataset_id, algorithm_name=f"mixture of {names}")
    log(f"collected {dataset_id}: {len(mixture)} transitions ({' + '.join(str(len(d)) for d in loaded)})")


__all__ = [
    "COLLECT_DEFAULTS",
    "check_entries",
    "collect_dataset_id",
    "collect_options",
    "dataset_exists",
    "ensure_dataset",
]
