"""
d3rlpy's datasets and ours: a d3rlpy ``MDPDataset`` (or any of its ``ReplayBuffer``s) and the ``.h5`` file
its ``dump`` writes, to and from :class:`~sb3_offline.datasets.transitions.Transitions`.

d3rlpy (https://github.com/takuseno/d3rlpy, read at 2.8.1: ``d3rlpy/dataset/{components,io,compat,
episode_generator,transition_pickers}.py``) stores *episodes of observations*: an episode of ``T`` rows
holds ``T`` transitions when it terminated (the last one's ``s'`` is not stored: it is never bootstrapped
from) and ``T - 1`` when it timed out (its last row only supplies the previous transition's ``s'``; its
action and reward are never used). Terminations and timeouts are kept apart on both sides: a terminated
episode ends in a termination here, a timed-out one in a truncation.

- :func:`from_d3rlpy`: an ``MDPDataset``/``ReplayBuffer`` (or a sequence of its episodes) -> ``Transitions``.
- :func:`to_mdp_dataset`: ``Transitions`` -> ``MDPDataset``, with exactly our transitions (see there).
- :func:`load_d3rlpy` / :func:`save_d3rlpy`: its ``.h5`` dump (format 2.1, and 1.x's flat layout for
  reading), read and written with ``h5py`` alone: **no d3rlpy needed**. What we write loads with
  ``d3rlpy.dataset.ReplayBuffer.load(f, InfiniteBuffer())``; the env id, reference scores, ``Dict``
  observation keys and action bounds go into file attributes, which d3rlpy ignores.

The conversion between episodes and transitions is :mod:`sb3_offline.datasets.d3rlpy_episodes` (numpy alone).
d3rlpy itself is optional and imported only by :func:`to_mdp_dataset`, which builds its objects (they are read by
their fields: :func:`is_d3rlpy_dataset`); it is no extra of sb3-offline because d3rlpy 2.8.1 pins
``gymnasium==1.0.0``.

d3rlpy has no ``Dict`` observations; it has tuple observations (a list of arrays). Ours go there in the order
of the dict's keys and come back under ``observation_keys`` (default: the keys recorded in our file, else
``"0"``, ``"1"``, ...). Actions stay in the env's units unless an ``action_space`` is given: then they are
rescaled to [-1, 1] (what d3rlpy's ``tanh``-bounded continuous policies output; the alternative is d3rlpy's
``MinMaxActionScaler``) and mapped back on reading.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.datasets.d3rlpy_episodes import (
    Episode,
    FlatRows,
    action_bounds,
    flat_rows,
    transitions_from_episodes,
)
from sb3_offline.datasets.d4rl import hdf5_attributes
from sb3_offline.datasets.files import EXPECTED_D3RLPY, existing_file, hdf5_keys, reading_dataset_file
from sb3_offline.datasets.transitions import REFERENCE_SCORES, Transitions
from sb3_offline.datasets.validation import DatasetValidationError

#: The dump format version d3rlpy 2.x writes (``d3rlpy.dataset.io.DATASET_VERSION``).
DATASET_VERSION = "2.1"
#: The columns of a d3rlpy ``Episode`` as ``dump`` writes them.
COLUMNS = ("observations", "actions", "rewards", "terminated")
#: Our file attributes (ignored by d3rlpy).
_KEYS_ATTR = "sb3_offline_observation_keys"
_LOW_ATTR, _HIGH_ATTR = "sb3_offline_action_low", "sb3_offline_action_high"


def require_d3rlpy(what: str) -> Any:
    """``import d3rlpy``, or an ``ImportError`` that says what needed it and how to get it."""
    try:
        import d3rlpy
    except ImportError as error:
        raise ImportError(
            f"{what} needs d3rlpy, which is not installed ({error}). Install it with `pip install d3rlpy` (d3rlpy "
            "2.8.1 pins gymnasium==1.0.0, so a separate environment may be needed). Its .h5 files need no d3rlpy: "
            "sb3_offline.datasets.load_d3rlpy / save_d3rlpy, or `sb3-offline convert`."
        ) from error
    return d3rlpy


# ------------------------------------------------------------------------------------- d3rlpy -> ours
def is_d3rlpy_dataset(obj: Any) -> bool:
    """
    Whether ``obj`` is what :func:`from_d3rlpy` reads in memory (a protocol check; d3rlpy is not imported): an
    object whose ``episodes`` is a sequence of d3rlpy episodes (d3rlpy's ``ReplayBufferBase``, so its
    ``ReplayBuffer`` and ``MDPDataset``), or a non-empty list or tuple of episodes, each with ``observations``,
    ``actions``, ``rewards`` and ``terminated`` (d3rlpy's ``EpisodeBase``; :class:`Episode`).
    """
    if hasattr(obj, "episodes"):
        episodes = obj.episodes
        if not isinstance(episodes, Sequence) or isinstance(episodes, str | bytes):
            return False
    elif isinstance(obj, list | tuple) and len(obj) > 0:
        episodes = obj
    else:
        return False
    return all(hasattr(episode, field) for episode in episodes for field in COLUMNS)


def from_d3rlpy(
    dataset: Any,
    action_space: Any = None,
    observation_keys: Sequence[str] | None = None,
    env_id: str | None = None,
) -> Transitions:
    """
    A d3rlpy dataset as ``Transitions``: every transition d3rlpy would sample, terminations and timeouts apart.

    An episode that terminated gives all its rows, the last one a termination (its ``s'``, which d3rlpy does
    not store, is filled with ``s``: it is never bootstrapped from); one that timed out gives all rows but
    the last, whose observation is the ``s'`` of the one before, a truncation.

    :param dataset: a d3rlpy ``MDPDataset`` or ``ReplayBuffer`` (anything with ``.episodes``), a sequence of
        its episodes, or the path of an ``.h5`` file written by its ``dump`` (read by :func:`load_d3rlpy`)
    :param action_space: the env's ``Box`` when the data holds actions rescaled to [-1, 1]: they are mapped
        back to its units; ``None`` keeps them as they are
    :param observation_keys: names of tuple observations' parts (our ``Dict`` keys); default ``"0"``, ``"1"``, ...
    :param env_id: the gymnasium id to record (d3rlpy's datasets do not record one)
    """
    if isinstance(dataset, str | os.PathLike):
        transitions = load_d3rlpy(dataset, action_space=action_space, observation_keys=observation_keys)
        if env_id is not None:
            transitions.env_id = env_id
        return transitions
    episodes = dataset.episodes if hasattr(dataset, "episodes") else dataset
    return transitions_from_episodes(
        episodes, action_space, observation_keys, source=f"<d3rlpy {type(dataset).__name__}>", env_id=env_id
    )


def to_mdp_dataset(transitions: Transitions, action_space: Any = None, exact_next_observations: bool = True) -> Any:
    """
    ``Transitions`` as a d3rlpy ``MDPDataset`` holding exactly our transitions.

    d3rlpy reads ``s'`` from the next row of an episode, ``terminals`` (no bootstrap) and ``timeouts`` (episode
    cut, bootstraps) apart. An episode is closed at every termination (a row both terminated and truncated
    counts as terminated) and every truncation, and, with ``exact_next_observations``, wherever
    ``next_observations[i] != observations[i + 1]``. Each closed episode that does not terminate gets one extra
    row holding its true last ``s'`` (zero action and reward, ``timeout=1``), which d3rlpy never samples as a
    transition of its own. The ``s'`` of a termination is not kept (d3rlpy does not store it).
    ``exact_next_observations=False`` (random data whose ``s'`` are unrelated to the next row) keeps only the
    episode structure: ``s'`` is the next row, and an extra row closes only the episodes that do not terminate.

    :param transitions: the data (``Dict`` observations become d3rlpy tuple observations in key order)
    :param action_space: the env's ``Box``: actions are rescaled from its bounds to [-1, 1]; ``None``: kept
    :param exact_next_observations: see above
    """
    require_d3rlpy("to_mdp_dataset")
    from d3rlpy.constants import ActionSpace
    from d3rlpy.dataset import MDPDataset

    rows = flat_rows(transitions, action_space, exact_next_observations)
    discrete = np.issubdtype(rows.actions.dtype, np.integer)
    return MDPDataset(
        rows.observations,
        rows.actions,
        rows.rewards,
        rows.terminals,
        rows.timeouts,
        action_space=ActionSpace.DISCRETE if discrete else ActionSpace.CONTINUOUS,
        action_size=int(rows.actions.max()) + 1 if discrete else int(np.prod(rows.actions.shape[1:])),
    )


# ----------------------------------------------------------------------------------------- .h5 files
def is_d3rlpy_layout(keys: set[str]) -> bool:
    """
    Whether an HDF5 file's top-level names are those of d3rlpy's ``dump``: ``columns`` and ``num_episodes``
    (2.x), or 1.x's flat layout with ``episode_terminals`` (the key D4RL's layout never has).
    """
    return {"columns", "num_episodes"} <= keys or "episode_terminals" in keys


def is_d3rlpy_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file in the layout of d3rlpy's ``dump`` (:func:`is_d3rlpy_layout`)."""
    keys = hdf5_keys(path)
    return keys is not None and is_d3rlpy_layout(keys)


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_column(f: Any, key: str, source: str) -> Any:
    """Dataset ``key`` of a 2.x dump, or the list of its parts ``key_0``, ``key_1``, ... (tuple observations)."""
    if key in f:
        return f[key][()]
    if f"{key}_0" not in f:
        raise DatasetValidationError(source, key, "a dataset", "none")
    parts, j = [], 0
    while f"{key}_{j}" in f:
        parts.append(f[f"{key}_{j}"][()])
        j += 1
    return parts


def _episodes_v2(f: Any, source: str) -> list[Episode]:
    """The episodes of d3rlpy 2.x's layout (per episode ``<column>_<i>``; ``d3rlpy.dataset.io.load``)."""
    version = _text(f["version"][()]) if "version" in f else "?"
    if version == "2.0":
        raise DatasetValidationError(source, "version", "a d3rlpy dump of version 2.1", "2.0 (obsolete)")
    columns = [_text(c) for c in f["columns"][()]]
    if any(c not in columns for c in COLUMNS):
        raise DatasetValidationError(source, "columns", str(list(COLUMNS)), str(columns))
    episodes = []
    for i in range(int(f["num_episodes"][()])):
        data = {key: _read_column(f, f"{key}_{i}", source) for key in COLUMNS}
        episodes.append(Episode(data["observations"], data["actions"], data["rewards"], bool(data["terminated"])))
    return episodes


def _episodes_v1(f: Any, source: str) -> list[Episode]:
    """The episodes of d3rlpy 1.x's flat layout (``MDPDataset.dump``; ``d3rlpy.dataset.io.load_v1``)."""
    for key in ("observations", "actions", "rewards", "terminals"):
        if key not in f:
            raise DatasetValidationError(source, key, "a dataset (d3rlpy 1.x layout)", "none")
    terminals = np.asarray(f["terminals"][()]).reshape(-1)
    timeouts = np.logical_and(np.logical_not(terminals), np.asarray(f["episode_terminals"][()]).reshape(-1))
    rewards = np.asarray(f["rewards"][()]).reshape(-1, 1)
    flat = FlatRows(f["observations"][()], f["actions"][()], rewards, terminals, timeouts.astype(np.float32), None)
    return flat.episodes()


def load_d3rlpy(
    path: str | os.PathLike, action_space: Any = None, observation_keys: Sequence[str] | None = None
) -> Transitions:
    """
    Read an ``.h5`` file written by d3rlpy's ``ReplayBuffer.dump`` / ``MDPDataset.dump`` (or by
    :func:`save_d3rlpy`), with ``h5py`` only; see :func:`from_d3rlpy` for the conventions. A file that is not
    HDF5 or is cut short raises :class:`~sb3_offline.datasets.validation.DatasetValidationError`, and so does
    one in another layout (naming the field it lacks).

    :param path: the file
    :param action_space: the env's ``Box`` when the file holds actions rescaled to [-1, 1] (default: the bounds
        :func:`save_d3rlpy` recorded, if any; else actions are kept as stored)
    :param observation_keys: names for tuple observations (default: the keys :func:`save_d3rlpy` recorded)
    """
    import h5py

    source = str(path)
    file = existing_file(path)
    with reading_dataset_file(file, EXPECTED_D3RLPY, source), h5py.File(file, "r") as f:
        attrs = dict(f.attrs)
        if "columns" in f and "num_episodes" in f:
            episodes = _episodes_v2(f, source)
        elif "episode_terminals" in f:
            episodes = _episodes_v1(f, source)
        else:
            raise DatasetValidationError(
                source, "", "a d3rlpy dump (datasets 'columns', 'num_episodes', 'version')", f"keys {sorted(f)}"
            )
    keys = observation_keys
    if keys is None and _KEYS_ATTR in attrs:
        keys = [_text(k) for k in np.atleast_1d(attrs[_KEYS_ATTR])]
    if action_space is None and _LOW_ATTR in attrs:
        action_space = _BoundsOnly(np.asarray(attrs[_LOW_ATTR]), np.asarray(attrs[_HIGH_ATTR]))
    recorded = hdf5_attributes(attrs)
    transitions = transitions_from_episodes(episodes, action_space, keys, source=source, env_id=recorded.get("env_id"))
    transitions.metadata.update({key: recorded[key] for key in REFERENCE_SCORES if key in recorded})
    return transitions


@dataclass
class _BoundsOnly:
    """The bounds :func:`save_d3rlpy` recorded, standing in for the env's ``Box`` (only its bounds are read)."""

    low: np.ndarray
    high: np.ndarray


def save_d3rlpy(
    transitions: Transitions,
    path: str | os.PathLike,
    action_space: Any = None,
    exact_next_observations: bool = True,
) -> Path:
    """
    Write ``transitions`` as d3rlpy's ``dump`` does (format 2.1: per episode ``observations_<i>`` (or
    ``observations_<i>_<j>`` for tuple observations), ``actions_<i>``, ``rewards_<i>``, ``terminated_<i>``), with
    ``h5py`` only, atomically. It loads with ``d3rlpy.dataset.ReplayBuffer.load(f, InfiniteBuffer())`` and with
    :func:`load_d3rlpy`. The episodes are :func:`to_mdp_dataset`'s (nothing lost but the ``s'`` of a termination).
    The env id, reference scores, ``Dict`` keys and the bounds used to rescale actions go into file attributes.

    :param transitions: the data
    :param path: the ``.h5`` file
    :param action_space: the env's ``Box``: actions are written rescaled from its bounds to [-1, 1] (and the
        bounds recorded, so :func:`load_d3rlpy` maps them back); ``None``: in the env's units
    :param exact_next_observations: see :func:`to_mdp_dataset`
    """
    import h5py

    from sb3_offline.datasets.writers import atomic_path, write_hdf5_attributes

    rows = flat_rows(transitions, action_space, exact_next_observations)
    final = Path(path).expanduser()
    with atomic_path(final) as tmp, h5py.File(tmp, "w") as h5:
        episodes = rows.episodes()
        h5.create_dataset("columns", data=list(COLUMNS))
        h5.create_dataset("num_episodes", data=len(episodes))
        for i, episode in enumerate(episodes):
            if isinstance(episode.observations, list):
                for j, part in enumerate(episode.observations):
                    h5.create_dataset(f"observations_{i}_{j}", data=part)
            else:
                h5.create_dataset(f"observations_{i}", data=episode.observations)
            h5.create_dataset(f"actions_{i}", data=episode.actions)
            h5.create_dataset(f"rewards_{i}", data=episode.rewards)
            h5.create_dataset(f"terminated_{i}", data=episode.terminated)
        h5.create_dataset("version", data=DATASET_VERSION)
        if rows.keys is not None:
            h5.attrs[_KEYS_ATTR] = rows.keys
        if action_space is not None:
            h5.attrs[_LOW_ATTR], h5.attrs[_HIGH_ATTR] = action_bounds(action_space)
        write_hdf5_attributes(h5, transitions)
    return final


__all__ = [
    "DATASET_VERSION",
    "Episode",
    "from_d3rlpy",
    "is_d3rlpy_dataset",
    "is_d3rlpy_file",
    "is_d3rlpy_layout",
    "load_d3rlpy",
    "require_d3rlpy",
    "save_d3rlpy",
    "to_mdp_dataset",
    "transitions_from_episodes",
]
