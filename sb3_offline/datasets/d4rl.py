"""
D4RL-style files (https://github.com/Farama-Foundation/D4RL, ``d4rl/offline_env.py``'s ``get_dataset`` layout):

- an HDF5 file with the datasets ``observations, actions, rewards, terminals, timeouts`` (Minari's spellings
  ``terminations`` / ``truncations`` are read too), optional ``next_observations``; ``Dict`` observations as a
  group with one dataset per key; the env id and reference scores as file attributes;
- an ``.npz`` with the same keys (``Dict`` observations as ``observations/<key>`` entries; the env id and the
  reference scores as 0-d arrays).

Without ``next_observations``, ``s'`` is derived inside each episode and the rows whose ``s'`` is unknown (a
timeout's, the last row's) are dropped, as D4RL's ``qlearning_dataset`` does
(:func:`~sb3_offline.datasets.transitions.derive_next_observations`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.common.observations import map_obs, obs_len
from sb3_offline.datasets.files import (
    EXPECTED_HDF5,
    EXPECTED_NPZ,
    describe_file,
    existing_file,
    reading_dataset_file,
)
from sb3_offline.datasets.transitions import (
    FIELD_NAMES,
    REFERENCE_SCORES,
    Transitions,
    close_episodes_before_dropped,
    derive_next_observations,
)
from sb3_offline.datasets.validation import DatasetValidationError, row_chunks

_TERMINAL_KEYS = ("terminals", "terminations")
_TIMEOUT_KEYS = ("timeouts", "truncations")
#: The names a D4RL-style file may hold at its top (one of them is enough to be read as one: see ``loaders``).
D4RL_KEYS = ("observations", "next_observations", "actions", "rewards", *_TERMINAL_KEYS, *_TIMEOUT_KEYS)


def _first_key(keys: Any, names: tuple[str, ...]) -> str | None:
    return next((name for name in names if name in keys), None)


def _keep_rows_in_place(array: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """
    ``array[keep]`` written over ``array``'s first rows, a chunk of rows at a time (no copy the size of the
    array; ``keep`` drops few rows), returned as the view ``array[:keep.sum()]``. A read-only array is copied.
    """
    if keep.all():
        return array
    if not array.flags.writeable:
        return array[keep]
    kept = 0
    for rows in row_chunks(array):
        block = array[rows][keep[rows]]  # a copy: rows are only ever moved towards the start
        array[kept : kept + len(block)] = block
        kept += len(block)
    return array[:kept]


def _episode_flags(arrays: dict[str, Any], source: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """The termination and truncation flags as stored, and how the file spells their names (for messages)."""
    terminal_key = _first_key(arrays, _TERMINAL_KEYS)
    if terminal_key is None:
        raise DatasetValidationError(
            source, "terminals", "a dataset ('terminals', or 'terminations')", f"none (keys: {sorted(arrays)})"
        )
    terminations = np.asarray(arrays[terminal_key])
    timeout_key = _first_key(arrays, _TIMEOUT_KEYS)
    if timeout_key is not None:
        truncations = np.asarray(arrays[timeout_key])
    elif "next_observations" in arrays:
        truncations = np.zeros(len(terminations), dtype=bool)
    else:
        raise DatasetValidationError(
            source,
            "timeouts",
            "a dataset (episode boundaries are needed to derive next_observations without crossing episodes)",
            f"none (keys: {sorted(arrays)})",
        )
    return terminations, truncations, {"terminations": terminal_key, "truncations": timeout_key or "timeouts"}


def _derivable(transitions: Transitions) -> bool:
    """Whether ``s'`` can be derived: flags of 0/1 as long as the observations (else the validator reports it)."""
    n = len(transitions.actions)
    flags = (transitions.terminations, transitions.truncations)
    if {len(flags[0]), len(flags[1]), len(np.asarray(transitions.rewards)), n} != {n}:
        return False
    if obs_len(transitions.observations) != n:
        return False
    return all(np.all((flag == 0) | (flag == 1)) for flag in flags)


def _derive_next_observations_in_place(transitions: Transitions) -> Transitions:
    """``s'`` derived inside each episode; the rows it drops are removed from the reader's own arrays in place."""
    next_observations, keep = derive_next_observations(
        transitions.observations, transitions.terminations, transitions.truncations
    )
    truncations = close_episodes_before_dropped(transitions.terminations, transitions.truncations, keep)

    def kept(array: np.ndarray) -> np.ndarray:
        return _keep_rows_in_place(np.asarray(array), keep)

    transitions.observations = map_obs(kept, transitions.observations)
    transitions.next_observations = map_obs(kept, next_observations)
    transitions.actions = kept(transitions.actions)
    transitions.rewards = kept(transitions.rewards)
    transitions.terminations = kept(transitions.terminations)
    transitions.truncations = kept(truncations)
    return transitions


def _from_d4rl_arrays(arrays: dict[str, Any], source: str, env_id: str | None) -> Transitions:
    """
    Turn D4RL-style arrays into transitions, deriving ``next_observations`` per episode if absent. The
    arrays are the reader's own: used as they are, and the rows a derivation drops are removed in place.
    """
    for required in ("observations", "actions", "rewards"):
        if required not in arrays:
            raise DatasetValidationError(source, required, "a dataset", f"none (keys: {sorted(arrays)})")
    terminations, truncations, names = _episode_flags(arrays, source)
    metadata: dict[str, Any] = {key: value for key, value in arrays.items() if key in REFERENCE_SCORES}
    metadata[FIELD_NAMES] = names  # the flags as the file spells them, for the messages of the validation
    has_next = "next_observations" in arrays
    transitions = Transitions(
        observations=arrays["observations"],
        actions=np.asarray(arrays["actions"]),
        rewards=np.asarray(arrays["rewards"]),
        next_observations=arrays["next_observations"] if has_next else arrays["observations"],
        terminations=terminations,
        truncations=truncations,
        source=source,
        env_id=env_id,
        metadata=metadata,
    )
    if has_next or not _derivable(transitions):
        return transitions
    return _derive_next_observations_in_place(transitions)


# --------------------------------------------------------------------------------------------- HDF5
def _read_hdf5_node(node: Any) -> Any:
    """A dataset read once into a new array (a group: one per member)."""
    import h5py

    if isinstance(node, h5py.Group):
        return {key: node[key][()] for key in node}
    return node[()]


def hdf5_attributes(attrs: Any) -> dict[str, Any]:
    """``env_id`` and the reference scores among an HDF5 file's attributes (those it has)."""
    found: dict[str, Any] = {}
    env_id = attrs.get("env_id")
    if isinstance(env_id, bytes):
        env_id = env_id.decode()
    if env_id:
        found["env_id"] = str(env_id)
    for key in REFERENCE_SCORES:
        if key in attrs:
            found[key] = float(attrs[key])
    return found


def load_hdf5(path: str | os.PathLike) -> Transitions:
    """
    Read a D4RL-style HDF5 file (see the module docstring for the layout), each dataset once into its own
    array. A file that is not HDF5 or is cut short raises :class:`DatasetValidationError`.
    """
    import h5py

    source = str(path)
    file = existing_file(path)
    with reading_dataset_file(file, EXPECTED_HDF5, source), h5py.File(file, "r") as f:
        arrays = {key: _read_hdf5_node(f[key]) for key in f}
        attributes = hdf5_attributes(f.attrs)
    env_id = attributes.pop("env_id", None)
    return _from_d4rl_arrays({**arrays, **attributes}, source, env_id)


def hdf5_env_id(path: Path, source: str) -> str | None:
    """The ``env_id`` attribute of an HDF5 file (D4RL-style or a d3rlpy dump we wrote), if any."""
    import h5py

    with reading_dataset_file(path, EXPECTED_HDF5, source), h5py.File(path, "r") as f:
        return hdf5_attributes(f.attrs).get("env_id")


# ---------------------------------------------------------------------------------------------- npz
def _open_npz(file: Path, source: str) -> Any:
    """``np.load`` of an ``.npz`` (no pickles), refusing a lone ``.npy`` array saved under the name."""
    data = np.load(file, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        found = f"{describe_file(file)}: one array of shape {data.shape}"
        raise DatasetValidationError(source, "", EXPECTED_NPZ, found)
    return data


def load_npz(path: str | os.PathLike) -> Transitions:
    """
    Read an ``.npz`` with D4RL's keys; ``Dict`` observations are stored as ``observations/<key>``. A file that
    is not an ``.npz`` or is cut short raises :class:`DatasetValidationError`.
    """
    source = str(path)
    file = existing_file(path)
    with reading_dataset_file(file, EXPECTED_NPZ, source), _open_npz(file, source) as data:
        arrays: dict[str, Any] = {}
        for key in data.files:
            if "/" in key:
                group, sub = key.split("/", 1)
                arrays.setdefault(group, {})[sub] = data[key]
            else:
                arrays[key] = data[key]
    env_id = arrays.pop("env_id", None)
    for key in REFERENCE_SCORES:
        if key in arrays:
            arrays[key] = float(arrays[key])
    return _from_d4rl_arrays(arrays, source, str(env_id) if env_id is not None and env_id.size else None)


def npz_env_id(path: Path, source: str) -> str | None:
    """The ``env_id`` entry of an ``.npz``, if any."""
    with reading_dataset_file(path, EXPECTED_NPZ, source), _open_npz(path, source) as data:
        return str(data["env_id"]) if "env_id" in data.files else None


__all__ = ["D4RL_KEYS", "hdf5_attributes", "hdf5_env_id", "load_hdf5", "load_npz", "npz_env_id"]
