"""
Read a dataset from any supported source into :class:`~sb3_offline.datasets.transitions.Transitions`: the registry
of formats (:data:`READERS`, format name -> :class:`Reader`) and the rule that picks one for a source.

- ``transitions``: a :class:`Transitions` (returned as it is);
- ``minari`` (:mod:`~sb3_offline.datasets.minari`): a Minari id (``namespace/name-vN``), a Minari dataset folder,
  a ``MinariDataset``;
- ``d3rlpy`` (:mod:`~sb3_offline.datasets.d3rlpy`): a d3rlpy ``MDPDataset`` / ``ReplayBuffer`` (or a list of its
  episodes), or the ``.h5`` file its ``dump`` writes;
- ``imitation`` (:mod:`~sb3_offline.datasets.imitation`): imitation's trajectories (a list of ``Trajectory``), the
  HuggingFace ``datasets`` folder ``imitation.data.serialize.save`` writes, or its older ``.npz`` (the
  ``terminal`` flags read as its default, ``"infos"``, says);
- ``hdf5`` (:mod:`~sb3_offline.datasets.d4rl`): a D4RL-style HDF5 file (``observations, actions, rewards,
  terminals, timeouts``, optional ``next_observations``; ``Dict`` observations as a group with one dataset per key);
- ``npz`` (:mod:`~sb3_offline.datasets.d4rl`): an ``.npz`` with the same keys (``Dict`` observations as
  ``observations/<key>`` entries);
- ``sb3_buffer`` (:mod:`~sb3_offline.datasets.sb3_buffers`): an SB3 replay buffer saved with
  ``model.save_replay_buffer(path)`` (``.pkl``; its actions are mapped back to the env's units with ``action_space``).

Which format reads a source (:func:`source_format`):

1. ``format="<name>"`` names it; a name not in :data:`READERS` is refused, naming the registered ones, and a source
   the named format does not read (a path for ``transitions``, an object for ``hdf5``) raises ``TypeError``;
2. an object in memory: the first format (in the order above) whose :attr:`Reader.accepts` check (an ``isinstance`` or
   protocol check, no import of the library that made it) says yes;
3. a folder: ``imitation`` when it is a HuggingFace ``datasets`` folder with imitation's columns
   (``dataset_info.json`` and ``state.json``, features ``obs``, ``acts`` and ``terminal``), else ``minari``;
4. a file: its suffix (:data:`SUFFIXES`). A suffix two formats share is settled by the file's top-level keys,
   the first format whose :attr:`Reader.layout` accepts them: ``.hdf5``/``.h5`` is ``d3rlpy`` with d3rlpy's
   ``columns`` and ``num_episodes`` (or 1.x's ``episode_terminals``), else ``hdf5`` with any of D4RL's keys;
   ``.npz`` is ``imitation`` with ``obs``, ``acts``, ``indices`` and ``terminal``, else ``npz`` with any of D4RL's
   keys. Keys that fit neither raise :class:`DatasetValidationError` naming ``format=`` and the candidates; a
   file whose keys cannot be listed at all (not HDF5 / not a zip archive, or cut short) goes to the suffix's
   general format (``hdf5``, ``npz``), whose reader says what the file holds;
5. a name that is no existing path but has the shape of a Minari id: ``minari``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

from gymnasium import spaces

from sb3_offline.common.text import article
from sb3_offline.datasets.d3rlpy import from_d3rlpy, is_d3rlpy_dataset, is_d3rlpy_layout
from sb3_offline.datasets.d4rl import D4RL_KEYS, hdf5_env_id, load_hdf5, load_npz, npz_env_id
from sb3_offline.datasets.files import (
    EXPECTED_HDF5,
    EXPECTED_MINARI,
    EXPECTED_NPZ,
    EXPECTED_PKL,
    DatasetNotFoundError,
    describe_file,
    existing_file,
    hdf5_keys,
    npz_keys,
    reading_dataset_file,
)
from sb3_offline.datasets.imitation import (
    from_imitation,
    is_imitation_dataset_folder,
    is_imitation_layout,
    is_trajectory_sequence,
    load_imitation,
)
from sb3_offline.datasets.minari import (
    MINARI_EPISODES_PER_READ,
    MINARI_ID,
    is_minari_dataset,
    is_minari_source,
    load_minari,
    open_minari_dataset,
)
from sb3_offline.datasets.sb3_buffers import load_sb3_replay_buffer, transitions_from_replay_buffer, unscale_action
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.datasets.validation import DatasetValidationError

#: What a user may pass as ``dataset=``.
DatasetSource = str | os.PathLike | Transitions | Any  # Any: a minari.MinariDataset, a d3rlpy dataset, ...


class ReadOptions(NamedTuple):
    """What :func:`load_transitions` passes to every reader (each uses what it needs)."""

    action_space: spaces.Space | None
    download: bool


@dataclass(frozen=True)
class Reader:
    """
    One format of the registry.

    :param read: ``(source, options) -> Transitions``
    :param expected: what a source of this format is (for messages)
    :param paths: whether it reads a path (a file, a folder or a Minari id)
    :param accepts: the ``isinstance`` / protocol check of the objects in memory it reads (``None``: none)
    :param layout: whether a file's top-level keys are this format's (for a suffix shared with another format)
    """

    read: Callable[[Any, ReadOptions], Transitions]
    expected: str
    paths: bool = True
    accepts: Callable[[Any], bool] | None = None
    layout: Callable[[set[str]], bool] | None = None


def _is_transitions(source: Any) -> bool:
    return isinstance(source, Transitions)


def _is_d4rl_layout(keys: set[str]) -> bool:
    """Any of D4RL's keys at the top (the reader then names any required one that is missing)."""
    return any(key in keys for key in D4RL_KEYS)


def _read_imitation(source: Any, options: ReadOptions) -> Transitions:
    if isinstance(source, str | os.PathLike):
        return load_imitation(source)
    return from_imitation(source)


#: The formats, by name; the order is the order in which objects are offered to ``accepts``.
READERS: dict[str, Reader] = {
    "transitions": Reader(lambda source, options: source, "a Transitions", paths=False, accepts=_is_transitions),
    "minari": Reader(
        lambda source, options: load_minari(source, download=options.download),
        "a Minari id (namespace/name-vN), a Minari dataset folder or a MinariDataset",
        accepts=is_minari_dataset,
    ),
    "d3rlpy": Reader(
        lambda source, options: from_d3rlpy(source),
        "a d3rlpy MDPDataset or ReplayBuffer (or a list of its episodes), or the .h5 file its dump writes",
        accepts=is_d3rlpy_dataset,
        layout=is_d3rlpy_layout,
    ),
    "imitation": Reader(
        _read_imitation,
        "imitation's trajectories (a list of Trajectory), its HuggingFace datasets folder or its .npz",
        accepts=is_trajectory_sequence,
        layout=is_imitation_layout,
    ),
    "hdf5": Reader(lambda source, options: load_hdf5(source), EXPECTED_HDF5, layout=_is_d4rl_layout),
    "npz": Reader(lambda source, options: load_npz(source), EXPECTED_NPZ, layout=_is_d4rl_layout),
    "sb3_buffer": Reader(lambda source, options: load_sb3_replay_buffer(source, options.action_space), EXPECTED_PKL),
}

#: File suffix -> the formats written under it, the most specific first; the last one is the suffix's general
#: format, which also reads a file whose top-level keys cannot be listed (and reports what the file holds).
SUFFIXES: dict[str, tuple[str, ...]] = {
    ".hdf5": ("d3rlpy", "hdf5"),
    ".h5": ("d3rlpy", "hdf5"),
    ".npz": ("imitation", "npz"),
    ".pkl": ("sb3_buffer",),
    ".pickle": ("sb3_buffer",),
}
#: How the top-level keys of a file of a shared suffix are listed (``None`` when they cannot be).
_KEY_LISTERS: dict[str, Callable[[Path], set[str] | None]] = {".hdf5": hdf5_keys, ".h5": hdf5_keys, ".npz": npz_keys}


def _format_by_layout(path: Path, suffix: str, source: str) -> str:
    """The format of an existing file of a registered suffix (rule 4 of the module docstring)."""
    candidates = SUFFIXES[suffix]
    if len(candidates) == 1:
        return candidates[0]
    keys = _KEY_LISTERS[suffix](path)
    if keys is None:
        return candidates[-1]
    for name in candidates:
        layout = READERS[name].layout
        if layout is not None and layout(keys):
            return name
    expected = " or ".join(f"format '{name}' ({READERS[name].expected})" for name in candidates)
    raise DatasetValidationError(
        source,
        "",
        f"the top-level keys of {expected}",
        f"{describe_file(path)} with keys {sorted(keys)}",
        hint=f"Name the format that reads it with format= one of {list(candidates)}",
    )


def _path_format(source: str | os.PathLike) -> str:
    """The format of a path (rules 3 to 5 of the module docstring)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return "imitation" if is_imitation_dataset_folder(path) else "minari"
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix not in SUFFIXES:
            raise ValueError(
                f"dataset '{source}': expected a file whose suffix names its format ({', '.join(SUFFIXES)}) or a "
                f"format= one of {list(READERS)}, found suffix '{suffix}'"
            )
        return _format_by_layout(path, suffix, str(source))
    if suffix in SUFFIXES:
        raise DatasetNotFoundError(f"dataset '{source}': no such file")
    if MINARI_ID.match(os.fspath(source)):
        return "minari"
    raise DatasetNotFoundError(
        f"dataset '{source}': expected an existing file (.hdf5, .npz, .pkl), a Minari dataset folder, "
        "or a Minari id such as 'pendulum/random-v0', found nothing of that name"
    )


def _check_format(format: str | None) -> None:
    """A ``ValueError`` naming the registered formats unless ``format`` is ``None`` or one of them."""
    if format is not None and format not in READERS:
        raise ValueError(f"format: expected one of {list(READERS)} (or None: from the source), found {format!r}")


def source_format(source: DatasetSource, format: str | None = None) -> str:
    """
    The name of the registered format that reads ``source`` (see the module docstring for the rule).

    :param source: anything :func:`load_transitions` reads
    :param format: a name in :data:`READERS` to use instead of the rule (checked, returned as is)
    """
    _check_format(format)
    if format is not None:
        return format
    for name, reader in READERS.items():
        if reader.accepts is not None and reader.accepts(source):
            return name
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"dataset: expected a Minari id, a path (.hdf5, .npz, .pkl, Minari folder), a MinariDataset, "
            f"Transitions, a d3rlpy dataset or imitation's trajectories, found {type(source).__name__}"
        )
    return _path_format(source)


def load_transitions(
    source: DatasetSource,
    action_space: spaces.Space | None = None,
    download: bool = False,
    format: str | None = None,
) -> Transitions:
    """
    Read any supported source (see the module docstring) into ``Transitions`` (not yet validated).

    :param source: a ``Transitions``, a ``MinariDataset``, a Minari id, a path (``.hdf5``/``.h5``, ``.npz``,
        ``.pkl``, a Minari or imitation dataset folder), a d3rlpy dataset or imitation's trajectories
    :param action_space: the env's action space (needed to read SB3 replay buffers)
    :param download: let Minari fetch a remote dataset that is not on local disk
    :param format: the name of the format that reads ``source``, one of :data:`READERS` (default: from the
        source: its type, or its suffix and top-level keys)
    """
    name = source_format(source, format)
    reader = READERS[name]
    is_path = isinstance(source, str | os.PathLike)
    if not (reader.paths if is_path else reader.accepts is not None and reader.accepts(source)):
        found = f"the path '{source}'" if is_path else article(type(source).__name__)
        raise TypeError(f"dataset: format '{name}' reads {reader.expected}, found {found}")
    return reader.read(source, ReadOptions(action_space, download))


# ----------------------------------------------------------------------------- what a source records
def describe_source(source: DatasetSource) -> str:
    """A short name for a source, for messages and for saving a reference in a checkpoint."""
    if isinstance(source, Transitions):
        return source.source
    if is_minari_dataset(source):
        return str(cast(Any, source).spec.dataset_id)
    return str(source)


#: Format -> how the env id a file of that format records is read (both HDF5 layouts keep it in an ``env_id``
#: attribute); the formats not listed record none in their files (imitation's, SB3 buffers).
_ENV_ID_READERS: dict[str, Callable[[Path, str], str | None]] = {
    "hdf5": hdf5_env_id,
    "d3rlpy": hdf5_env_id,
    "npz": npz_env_id,
}


def dataset_env_id(source: DatasetSource, format: str | None = None) -> str | None:
    """
    The gymnasium id recorded by a dataset (Minari env spec, HDF5 attribute, npz key), if any; ``None`` for the
    sources that record none (an SB3 replay buffer, d3rlpy's and imitation's own data) and for names of nothing.

    :param source: anything :func:`load_transitions` reads
    :param format: the format of a file whose suffix names none (see :func:`load_transitions`); default: the
        general format of its suffix (``.hdf5``/``.h5``: an ``env_id`` attribute; ``.npz``: an ``env_id`` entry)
    """
    _check_format(format)
    if isinstance(source, Transitions):
        return source.env_id
    if is_minari_source(source):
        spec = open_minari_dataset(source).spec.env_spec
        return spec.id if spec is not None else None
    if not isinstance(source, str | os.PathLike):
        return None
    path = Path(source).expanduser()
    if format is None:
        format = SUFFIXES.get(path.suffix.lower(), ("",))[-1]
    read = _ENV_ID_READERS.get(format)
    return read(path, str(source)) if read is not None and path.is_file() else None


def recover_env(source: DatasetSource, format: str | None = None) -> Any:
    """
    Make the environment a dataset was recorded in: Minari's ``recover_environment()`` (full env
    spec, wrappers and kwargs included) when the source is a Minari dataset, else ``gym.make`` of the
    recorded env id (:func:`dataset_env_id`, with ``format``). Raises :class:`DatasetNotFoundError` when a path
    names nothing, ``ValueError`` when the source records no environment.
    """
    import gymnasium as gym

    if is_minari_source(source):
        ds = open_minari_dataset(source)
        if ds.spec.env_spec is not None:
            return ds.recover_environment()
    elif isinstance(source, str | os.PathLike):
        source_format(source, format)  # a path that names nothing: DatasetNotFoundError, not "no env id"
    env_id = dataset_env_id(source, format)
    if env_id is None:
        raise ValueError(
            f"env: expected an environment or a dataset that records one, found env=None and dataset "
            f"'{describe_source(source)}' with no env id; pass env=gym.make(...)"
        )
    return gym.make(env_id)


__all__ = [
    "EXPECTED_HDF5",
    "EXPECTED_MINARI",
    "EXPECTED_NPZ",
    "EXPECTED_PKL",
    "MINARI_EPISODES_PER_READ",
    "READERS",
    "SUFFIXES",
    "DatasetNotFoundError",
    "DatasetSource",
    "ReadOptions",
    "Reader",
    "dataset_env_id",
    "describe_file",
    "describe_source",
    "existing_file",
    "is_minari_dataset",
    "is_minari_source",
    "load_hdf5",
    "load_minari",
    "load_npz",
    "load_sb3_replay_buffer",
    "load_transitions",
    "open_minari_dataset",
    "reading_dataset_file",
    "recover_env",
    "source_format",
    "transitions_from_replay_buffer",
    "unscale_action",
]
