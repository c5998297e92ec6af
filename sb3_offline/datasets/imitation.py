"""
Demonstrations from ``imitation`` (https://github.com/HumanCompatibleAI/imitation, read at 1.0.1:
``imitation/data/{types,serialize,huggingface_utils}.py``) as :class:`~sb3_offline.datasets.transitions.Transitions`.

- :func:`from_imitation`: a list of ``Trajectory`` / ``TrajectoryWithRew`` (or anything with ``obs``, ``acts``,
  ``terminal`` and, for rewards, ``rews``; ``obs`` an array or a ``DictObs``).
- :func:`load_imitation`: what ``imitation.data.serialize.save`` writes (a HuggingFace ``datasets`` folder,
  read with ``datasets.load_from_disk``: ``pip install datasets``) and the older ``.npz`` it still reads
  (``obs``, ``acts``, ``indices``, ``terminal``, ``rews``, ``infos``; numpy alone).

imitation is never imported: its objects are read by their fields and its files by their documented layout.

A trajectory of ``T`` actions has ``T + 1`` observations, so every ``s'`` is known. Its ``terminal`` flag says
the trajectory reached the end of its episode, **time limits included** (imitation's rollouts take SB3's
``done = terminated or truncated``), so it cannot by itself tell a termination (no bootstrap) from a timeout
(bootstraps). The ``terminal`` option says which it is:

- ``"infos"`` (default): the last step's info, where SB3's ``VecEnv`` (imitation's rollouts) records
  ``"TimeLimit.truncated"``: true means a timeout, false a termination; a trajectory whose last info lacks it
  is refused with a clear error naming this option;
- ``"termination"``: every terminal trajectory ended in a termination (e.g. an env without a time limit);
- ``"truncation"``: every terminal trajectory was cut by a time limit (e.g. Pendulum, whose episodes never end).

A trajectory with ``terminal=False`` (a fragment cut before its episode ended) ends in a truncation whatever
the option: its last ``s'`` is known and bootstraps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.common.observations import map_obs
from sb3_offline.datasets.files import npz_keys
from sb3_offline.datasets.transitions import Transitions

#: What ``terminal=True`` of a trajectory means (see the module docstring).
TERMINAL_MODES = ("infos", "termination", "truncation")
#: The key SB3's ``VecEnv`` sets in the last info of an episode cut by a time limit.
TIME_LIMIT_KEY = "TimeLimit.truncated"
#: Keys of imitation's ``.npz`` format (``imitation.data.serialize.load``).
NPZ_KEYS = ("obs", "acts", "indices", "terminal")


def _check_mode(terminal: str) -> None:
    if terminal not in TERMINAL_MODES:
        raise ValueError(f"terminal: expected one of {list(TERMINAL_MODES)}, found {terminal!r}")


def _last_info_truncated(infos: Any, source: str, index: int) -> bool:
    """Whether the last info of trajectory ``index`` says its episode was cut by a time limit."""
    info: Any = None
    if infos is not None and len(infos) > 0:
        info = infos[-1]
        if isinstance(info, str | bytes):  # HuggingFace format: jsonpickle strings (plain JSON for these keys)
            info = json.loads(info)
    if not isinstance(info, dict) or TIME_LIMIT_KEY not in info:
        found = f"keys {sorted(info)}" if isinstance(info, dict) else ("no infos" if info is None else repr(info))
        raise ValueError(
            f"{source}: field 'infos' of trajectory {index}: expected SB3's '{TIME_LIMIT_KEY}' in the last step's "
            f"info (to tell a time limit from a termination), found {found}; say what the trajectories' terminal "
            "flag means with terminal='termination' or terminal='truncation' (sb3-offline convert: "
            "--imitation-terminal)"
        )
    return bool(info[TIME_LIMIT_KEY])


def _observations(obs: Any) -> np.ndarray | dict[str, np.ndarray]:
    if hasattr(obs, "unwrap"):  # imitation.data.types.DictObs
        obs = obs.unwrap()
    if isinstance(obs, dict):
        return {str(key): np.asarray(value) for key, value in obs.items()}
    return np.asarray(obs)


def _trajectory(
    obs: Any,
    acts: Any,
    rews: Any,
    terminal: bool,
    infos: Any,
    mode: str,
    reward_fill: float | None,
    source: str,
    index: int,
) -> Transitions | None:
    actions = np.asarray(acts)
    n = len(actions)
    if n == 0:
        return None
    observations = _observations(obs)
    columns = observations if isinstance(observations, dict) else {"": observations}
    for key, column in columns.items():
        if len(column) != n + 1:
            field = f"obs/{key}" if key else "obs"
            raise ValueError(
                f"{source}: field '{field}' of trajectory {index}: expected {n + 1} rows (one more than its {n} "
                f"actions), found {len(column)}"
            )
    if rews is None:
        if reward_fill is None:
            raise ValueError(
                f"{source}: field 'rews' of trajectory {index}: expected rewards (a TrajectoryWithRew), found none; "
                "pass reward_fill=0.0 to train reward-free algorithms (BC) on these demonstrations"
            )
        rewards = np.full(n, reward_fill, dtype=np.float32)
    else:
        rewards = np.asarray(rews, dtype=np.float32).reshape(-1)
        if len(rewards) != n:
            raise ValueError(
                f"{source}: field 'rews' of trajectory {index}: expected {n} rewards (one per action), "
                f"found {len(rewards)}"
            )
    terminated = bool(terminal) and (
        mode == "termination" or (mode == "infos" and not _last_info_truncated(infos, source, index))
    )
    terminations = np.zeros(n, dtype=bool)
    truncations = np.zeros(n, dtype=bool)
    (terminations if terminated else truncations)[-1] = True

    return Transitions(
        observations=map_obs(lambda column: column[:n], observations),
        actions=actions,
        rewards=rewards,
        next_observations=map_obs(lambda column: column[1 : n + 1], observations),
        terminations=terminations,
        truncations=truncations,
    )


def _join(parts: list[Transitions | None], source: str, env_id: str | None) -> Transitions:
    kept = [part for part in parts if part is not None]
    if not kept:
        raise ValueError(f"{source}: field 'trajectories': expected at least one transition, found none")
    transitions = Transitions.concatenate(kept)
    transitions.source = source
    transitions.env_id = env_id
    return transitions


def from_imitation(
    trajectories: Iterable[Any],
    terminal: str = "infos",
    reward_fill: float | None = None,
    env_id: str | None = None,
    source: str = "<imitation trajectories>",
) -> Transitions:
    """
    imitation's trajectories as ``Transitions``, one episode per trajectory.

    :param trajectories: ``Trajectory`` / ``TrajectoryWithRew`` objects (``obs`` ``(T + 1, ...)`` or a ``DictObs``,
        ``acts`` ``(T, ...)``, ``rews`` ``(T,)``, ``terminal``, ``infos``)
    :param terminal: what a trajectory's ``terminal=True`` means: ``"infos"`` (SB3's ``TimeLimit.truncated`` in its
        last info), ``"termination"`` or ``"truncation"`` (see the module docstring)
    :param reward_fill: the reward of every step of trajectories without rewards (``Trajectory``); ``None``:
        such trajectories are refused
    :param env_id: the gymnasium id to record (imitation's trajectories do not record one)
    :param source: a name for error messages
    """
    _check_mode(terminal)
    parts = [
        _trajectory(
            trajectory.obs,
            trajectory.acts,
            getattr(trajectory, "rews", None),
            trajectory.terminal,
            getattr(trajectory, "infos", None),
            terminal,
            reward_fill,
            source,
            index,
        )
        for index, trajectory in enumerate(trajectories)
    ]
    return _join(parts, source, env_id)


# ------------------------------------------------------------------------------------------ files
def is_imitation_dataset_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a HuggingFace ``datasets`` folder (``save_to_disk``) with imitation's columns."""
    folder = Path(path).expanduser()
    info = folder / "dataset_info.json"
    if not (folder.is_dir() and info.is_file() and (folder / "state.json").is_file()):
        return False
    try:
        features = json.loads(info.read_text()).get("features", {})
    except (OSError, ValueError):
        return False
    return all(key in features for key in ("obs", "acts", "terminal"))


def is_imitation_layout(keys: set[str]) -> bool:
    """Whether an ``.npz``'s top-level names are imitation's (``obs``, ``acts``, ``indices`` and ``terminal``)."""
    return all(key in keys for key in NPZ_KEYS)


def is_imitation_npz(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``.npz`` in imitation's layout (:func:`is_imitation_layout`)."""
    keys = npz_keys(path)
    return keys is not None and is_imitation_layout(keys)


def is_trajectory_sequence(obj: Any) -> bool:
    """
    Whether ``obj`` is a list or tuple of imitation's trajectories: at least one item, each with ``obs``, ``acts``
    and ``terminal`` (the fields :func:`from_imitation` reads; ``Trajectory`` and ``TrajectoryWithRew`` have them).
    """
    return (
        isinstance(obj, list | tuple)
        and len(obj) > 0
        and all(hasattr(item, field) for item in obj for field in ("obs", "acts", "terminal"))
    )


def is_imitation_source(source: Any) -> bool:
    """Whether ``source`` is a path to imitation's saved trajectories (HuggingFace folder or ``.npz``)."""
    if not isinstance(source, str | os.PathLike):
        return False
    path = Path(source).expanduser()
    if path.is_dir():
        return is_imitation_dataset_folder(path)
    return path.suffix.lower() == ".npz" and path.is_file() and is_imitation_npz(path)


def _load_npz(path: Path, terminal: str, reward_fill: float | None, env_id: str | None) -> Transitions:
    source = str(path)
    # infos are pickled objects: read (allow_pickle) only when the terminal flags are to be read from them
    with np.load(path, allow_pickle=terminal == "infos") as data:
        missing = [key for key in NPZ_KEYS if key not in data.files]
        if missing:
            raise ValueError(
                f"{source}: field '{missing[0]}': expected imitation's .npz keys {list(NPZ_KEYS)}, found {data.files}"
            )
        indices = np.asarray(data["indices"], dtype=np.int64)
        n_traj = len(indices) + 1
        obs = np.split(data["obs"], indices + np.arange(1, n_traj))  # each trajectory has one more observation
        acts = np.split(data["acts"], indices)
        rews = np.split(data["rews"], indices) if "rews" in data.files else [None] * n_traj
        infos = np.split(data["infos"], indices) if terminal == "infos" and "infos" in data.files else [None] * n_traj
        flags = np.asarray(data["terminal"], dtype=bool).reshape(-1)
    if len(flags) != n_traj:
        raise ValueError(
            f"{source}: field 'terminal': expected {n_traj} flags (one per trajectory), found {len(flags)}"
        )
    parts = [
        _trajectory(o, a, r, f, i, terminal, reward_fill, source, index)
        for index, (o, a, r, f, i) in enumerate(zip(obs, acts, rews, flags, infos, strict=True))
    ]
    return _join(parts, source, env_id)


def _load_folder(path: Path, terminal: str, reward_fill: float | None, env_id: str | None) -> Transitions:
    source = str(path)
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"{source}: reading imitation's HuggingFace dataset folder needs the `datasets` package ({error}); "
            "install it with `pip install datasets`"
        ) from error
    dataset = datasets.load_from_disk(source)
    if not isinstance(dataset, datasets.Dataset):
        raise ValueError(
            f"{source}: expected one datasets.Dataset (imitation's format), found {type(dataset).__name__}"
        )
    columns = set(dataset.column_names)
    parts = []
    for index in range(len(dataset)):
        row = dataset[index]
        parts.append(
            _trajectory(
                row["obs"],  # lists (a dict of lists for Dict observations): _trajectory makes them arrays
                np.asarray(row["acts"]),
                row["rews"] if "rews" in columns else None,
                bool(row["terminal"]),
                row["infos"] if "infos" in columns else None,
                terminal,
                reward_fill,
                source,
                index,
            )
        )
    return _join(parts, source, env_id)


def load_imitation(
    path: str | os.PathLike,
    terminal: str = "infos",
    reward_fill: float | None = None,
    env_id: str | None = None,
) -> Transitions:
    """
    Read trajectories saved by imitation: a HuggingFace ``datasets`` folder (``imitation.data.serialize.save``;
    needs ``datasets``) or the older ``.npz`` (numpy only; its ``infos`` are pickled objects, read only for
    ``terminal="infos"``). See :func:`from_imitation` for the options.
    """
    _check_mode(terminal)
    where = Path(path).expanduser()
    if where.is_dir():
        if not is_imitation_dataset_folder(where):
            raise ValueError(
                f"{path}: expected a HuggingFace datasets folder (dataset_info.json, state.json) with imitation's "
                "columns obs, acts, terminal, found none"
            )
        return _load_folder(where, terminal, reward_fill, env_id)
    if not where.is_file():
        raise FileNotFoundError(f"{path}: no such file or folder (imitation trajectories)")
    return _load_npz(where, terminal, reward_fill, env_id)


__all__ = [
    "TERMINAL_MODES",
    "from_imitation",
    "is_imitation_dataset_folder",
    "is_imitation_layout",
    "is_imitation_npz",
    "is_imitation_source",
    "is_trajectory_sequence",
    "load_imitation",
]
