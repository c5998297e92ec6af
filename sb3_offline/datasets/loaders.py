"""
Read a dataset from any supported source into :class:`~sb3_offline.datasets.transitions.Transitions`.

Sources:

- a Minari dataset: an id such as ``"pendulum/random-v0"`` found under the local Minari folder
  (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``), a dataset folder, or a ``MinariDataset``;
- a D4RL-style HDF5 file (``observations, actions, rewards, terminals, timeouts``, optional
  ``next_observations``; ``Dict`` observations as a group with one dataset per key);
- an ``.npz`` with the same keys (``Dict`` observations as ``observations/<key>`` entries);
- an SB3 replay buffer saved with ``model.save_replay_buffer(path)`` (``.pkl``);
- a d3rlpy ``MDPDataset``/``ReplayBuffer`` or the ``.h5`` file its ``dump`` writes
  (:mod:`sb3_offline.datasets.d3rlpy`);
- trajectories saved by imitation: a HuggingFace ``datasets`` folder or its older ``.npz``
  (:mod:`sb3_offline.datasets.imitation`; the ``terminal`` flags read as its default, ``"infos"``, says).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
from gymnasium import spaces

from sb3_offline.datasets.transitions import (
    FIELD_NAMES,
    Observations,
    Transitions,
    close_episodes_before_dropped,
    derive_next_observations,
)
from sb3_offline.datasets.validation import DatasetValidationError, row_chunks

#: What a user may pass as ``dataset=``.
DatasetSource = str | os.PathLike | Transitions | Any  # Any: a minari.MinariDataset

_MINARI_ID = re.compile(r"^([\w.-]+/)*[\w.-]+-v\d+$")
_TERMINAL_KEYS = ("terminals", "terminations")
_TIMEOUT_KEYS = ("timeouts", "truncations")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset source names nothing that exists locally."""


# ----------------------------------------------------------------------------------- unreadable files
#: What each reader expects, for the message when a file is not that.
EXPECTED_HDF5 = "an HDF5 file with D4RL's datasets (observations, actions, rewards, terminals, timeouts)"
EXPECTED_NPZ = "an .npz archive (numpy.savez) with D4RL's keys (observations, actions, rewards, terminals, timeouts)"
EXPECTED_PKL = "an SB3 replay buffer pickled by model.save_replay_buffer"
EXPECTED_MINARI = "a Minari dataset folder (data/metadata.json and data/main_data.hdf5)"
_UNREADABLE_HINT = (
    "The file may be incomplete (an interrupted download or copy) or in another format than its name says"
)

_SIGNATURES = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x93NUMPY", "a single .npy array"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x80", "a Python pickle"),
)


def describe_file(path: str | os.PathLike) -> str:
    """What a file holds, judged from its size and first bytes (for messages): ``"an HTML page of 1234 bytes ..."``."""
    file = Path(path)
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(64)
    except OSError as error:
        return f"a file that cannot be read ({error})"
    if size == 0:
        return "an empty file (0 bytes)"
    kind = next((name for signature, name in _SIGNATURES if head.startswith(signature)), None)
    if kind is None:
        text = head.lstrip().lower()
        if text.startswith((b"<!doctype html", b"<html")):
            kind = "an HTML page (a download that returned a web page?)"
        elif all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
            kind = "a text file"
        else:
            kind = "bytes of no known format"
    return f"{kind} of {size} bytes starting {head[:16]!r}"


def existing_file(path: str | os.PathLike, suffix: str | None = None) -> Path:
    """``path`` as a ``Path`` if it is a file (or ``path + suffix`` is); else :class:`DatasetNotFoundError`."""
    file = Path(path).expanduser()
    if file.is_file():
        return file
    if suffix is not None and file.with_name(file.name + suffix).is_file():
        return file.with_name(file.name + suffix)
    raise DatasetNotFoundError(f"dataset '{path}': no such file")


@contextmanager
def reading_dataset_file(path: str | os.PathLike, expected: str, source: str | None = None) -> Iterator[None]:
    """
    Around the code that parses a dataset file: any failure to read it (another format under the suffix,
    random bytes, a truncated download, a corrupt archive or pickle) becomes a :class:`DatasetValidationError`
    naming the file, what was ``expected`` and what the file holds. Errors about the data's content
    (``DatasetValidationError``) pass through, and so do ``MemoryError`` and interrupts.

    :param path: the file
    :param expected: what it should be (``EXPECTED_HDF5``, ...)
    :param source: the name in the message (default: ``path``)
    """
    try:
        yield
    except (DatasetValidationError, MemoryError):
        raise
    except Exception as error:  # any failure of the format's reader means the same thing: not a readable file
        found = f"{describe_file(path)} ({type(error).__name__}: {error})"
        raise DatasetValidationError(source or str(path), "", expected, found, hint=_UNREADABLE_HINT) from error


def is_minari_dataset(obj: object) -> bool:
    try:
        from minari import MinariDataset
    except ImportError:  # pragma: no cover - minari is a dependency
        return False
    return isinstance(obj, MinariDataset)


def is_minari_source(source: Any) -> bool:
    """
    Whether ``source`` names a Minari dataset: a ``MinariDataset``, a dataset folder, or a string shaped
    like a Minari id (``namespace/name-vN``) that names no existing path. The one place that decides it.
    """
    if is_minari_dataset(source):
        return True
    if not isinstance(source, str | os.PathLike):
        return False
    path = Path(source).expanduser()
    if path.is_dir():
        from sb3_offline.datasets.imitation import is_imitation_dataset_folder

        return not is_imitation_dataset_folder(path)
    return not path.exists() and bool(_MINARI_ID.match(os.fspath(source)))


def describe_source(source: DatasetSource) -> str:
    """A short name for a source, for messages and for saving a reference in a checkpoint."""
    if isinstance(source, Transitions):
        return source.source
    if is_minari_dataset(source):
        return str(cast(Any, source).spec.dataset_id)
    return str(source)


# --------------------------------------------------------------------------------------------- Minari
def _minari_root() -> Path:
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path())


def open_minari_dataset(dataset: Any, download: bool = False) -> Any:
    """
    Open a Minari dataset given an id, a dataset folder, or a ``MinariDataset`` (returned as is).

    :param dataset: the id (``namespace/name-vN``), a path to a dataset folder, or a ``MinariDataset``
    :param download: fetch the id from Minari's remote store when it is not on local disk
        (needs network access; off by default so that nothing is fetched behind the user's back)
    """
    import minari

    if is_minari_dataset(dataset):
        return dataset
    path = Path(dataset).expanduser()
    if path.is_dir():
        data_dir = path / "data" if (path / "data").is_dir() else path
        metadata_file = data_dir / "metadata.json"
        with reading_dataset_file(metadata_file, EXPECTED_MINARI, source=f"{path} ({metadata_file})"):
            return minari.MinariDataset(data_dir)
    dataset_id = str(dataset)
    from sb3_offline.datasets.packaged import install_packaged_dataset, packaged_datasets

    if dataset_id in packaged_datasets() and dataset_id not in minari.list_local_datasets():
        install_packaged_dataset(dataset_id)  # shipped with sb3-offline: copied into the local Minari folder once
    folder = _minari_root() / dataset_id
    if folder.is_dir():  # on local disk: a failure to open it is a broken dataset
        metadata_file = folder / "data" / "metadata.json"
        with reading_dataset_file(metadata_file, EXPECTED_MINARI, source=f"{dataset_id} ({folder})"):
            return minari.load_dataset(dataset_id, download=download)
    try:
        return minari.load_dataset(dataset_id, download=download)
    except FileNotFoundError as error:
        local = sorted(minari.list_local_datasets())
        raise DatasetNotFoundError(
            f"Minari dataset '{dataset_id}' is not in the local Minari folder {_minari_root()} "
            f"(local datasets: {local or 'none'}). Create it locally (sb3-offline collect), or pass "
            f"download=True in replay_buffer_kwargs to fetch it from Minari's remote store."
        ) from error


#: Episodes read from a Minari dataset at a time (Minari's storage returns a batch of episodes as one list).
MINARI_EPISODES_PER_READ = 64


class _Rows:
    """Arrays of ``total`` rows, allocated from the first block written to them and filled block by block."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, name: str, start: int, value: Any, dtype: Any = None) -> None:
        value = np.asarray(value, dtype=dtype)
        if name not in self.arrays:
            self.arrays[name] = np.empty((self.total, *value.shape[1:]), dtype=value.dtype)
        self.arrays[name][start : start + len(value)] = value

    def obs(self, prefix: str) -> Observations:
        keys = [name for name in self.arrays if name.startswith(prefix + "/")]
        if keys:
            return {name[len(prefix) + 1 :]: self.arrays[name] for name in keys}
        return self.arrays[prefix]


def load_minari(dataset: Any, download: bool = False) -> Transitions:
    """
    Read every episode of a Minari dataset; ``s'`` is the episode's next observation (never crosses).
    Each field is written once into an array of the dataset's length, a few episodes at a time.
    """
    ds = open_minari_dataset(dataset, download=download)
    source = f"minari:{ds.spec.dataset_id}"
    data_path = Path(ds.storage.data_path)
    main_data = data_path / "main_data.hdf5"
    with reading_dataset_file(main_data, EXPECTED_MINARI, source=f"{source} ({main_data})"):
        indices = np.asarray(ds.episode_indices)
        total = ds.total_steps
        rows, start = _Rows(total), 0
        for first in range(0, len(indices), MINARI_EPISODES_PER_READ):
            for episode in ds.iterate_episodes(indices[first : first + MINARI_EPISODES_PER_READ]):
                length = len(episode.actions)
                if start + length > total:
                    raise DatasetValidationError(
                        source, "total_steps", f"at least the {start + length} steps its episodes hold", str(total)
                    )
                obs = episode.observations
                for key, value in obs.items() if isinstance(obs, dict) else [("", obs)]:
                    suffix = f"/{key}" if key else ""
                    rows.put("observations" + suffix, start, value[:length])
                    rows.put("next_observations" + suffix, start, value[1 : length + 1])
                rows.put("actions", start, episode.actions)
                rows.put("rewards", start, episode.rewards)
                rows.put("terminations", start, episode.terminations, dtype=bool)
                rows.put("truncations", start, episode.truncations, dtype=bool)
                start += length
    if len(indices) == 0:
        raise DatasetValidationError(source, "episodes", "at least one episode", "0")
    arrays = {name: array[:start] for name, array in rows.arrays.items()}
    rows.arrays = arrays
    transitions = Transitions(
        observations=rows.obs("observations"),
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        next_observations=rows.obs("next_observations"),
        terminations=arrays["terminations"],
        truncations=arrays["truncations"],
        source=source,
    )
    env_spec = ds.spec.env_spec
    transitions.env_id = env_spec.id if env_spec is not None else None
    stored = ds.storage.metadata
    transitions.metadata = {
        key: stored[key] for key in ("ref_min_score", "ref_max_score") if stored.get(key) is not None
    }
    transitions.metadata["dataset_id"] = ds.spec.dataset_id
    return transitions


# --------------------------------------------------------------------------------- HDF5 / npz (D4RL)
def _first_key(keys: Any, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in keys:
            return name
    return None


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


def _from_d4rl_arrays(arrays: dict[str, Any], source: str, env_id: str | None) -> Transitions:
    """
    Turn D4RL-style arrays into transitions, deriving ``next_observations`` per episode if absent. The
    arrays are the reader's own: used as they are, and the rows a derivation drops are removed in place.
    """
    for required in ("observations", "actions", "rewards"):
        if required not in arrays:
            raise DatasetValidationError(source, required, "a dataset", f"none (keys: {sorted(arrays)})")
    terminal_key = _first_key(arrays, _TERMINAL_KEYS)
    if terminal_key is None:
        raise DatasetValidationError(
            source, "terminals", "a dataset ('terminals', or 'terminations')", f"none (keys: {sorted(arrays)})"
        )
    n = len(arrays["actions"])
    terminations = np.asarray(arrays[terminal_key])
    timeout_key = _first_key(arrays, _TIMEOUT_KEYS)
    has_next = "next_observations" in arrays
    if timeout_key is None:
        if not has_next:
            raise DatasetValidationError(
                source,
                "timeouts",
                "a dataset (episode boundaries are needed to derive next_observations without crossing episodes)",
                f"none (keys: {sorted(arrays)})",
            )
        truncations = np.zeros(len(terminations), dtype=bool)
    else:
        truncations = np.asarray(arrays[timeout_key])
    observations = arrays["observations"]
    metadata: dict[str, Any] = {k: v for k, v in arrays.items() if k in ("ref_min_score", "ref_max_score")}
    # the flags as the file spells them, for the messages of the validation
    metadata[FIELD_NAMES] = {"terminations": terminal_key, "truncations": timeout_key or "timeouts"}
    transitions = Transitions(
        observations=observations,
        actions=np.asarray(arrays["actions"]),
        rewards=np.asarray(arrays["rewards"]),
        next_observations=arrays["next_observations"] if has_next else observations,
        terminations=terminations,
        truncations=truncations,
        source=source,
        env_id=env_id,
        metadata=metadata,
    )
    if has_next:
        return transitions
    # Only derive when the flags line up with the observations; the validator reports any mismatch.
    lengths = {len(np.asarray(terminations)), len(np.asarray(truncations)), len(np.asarray(arrays["rewards"])), n}
    obs_rows = len(next(iter(observations.values()))) if isinstance(observations, dict) else len(observations)
    if len(lengths) != 1 or obs_rows != n:
        return transitions
    flags_ok = all(np.all((np.asarray(f) == 0) | (np.asarray(f) == 1)) for f in (terminations, truncations))
    if not flags_ok:
        return transitions
    next_observations, keep = derive_next_observations(observations, terminations, truncations)
    truncations = close_episodes_before_dropped(terminations, truncations, keep)

    def kept(value: Observations) -> Observations:
        if isinstance(value, dict):
            return {key: _keep_rows_in_place(array, keep) for key, array in value.items()}
        return _keep_rows_in_place(np.asarray(value), keep)

    transitions.observations = kept(observations)
    transitions.next_observations = kept(next_observations)
    transitions.actions = _keep_rows_in_place(transitions.actions, keep)
    transitions.rewards = _keep_rows_in_place(transitions.rewards, keep)
    transitions.terminations = _keep_rows_in_place(np.asarray(terminations), keep)
    transitions.truncations = _keep_rows_in_place(truncations, keep)
    return transitions


def _read_hdf5_node(node: Any) -> Any:
    """A dataset read once into a new array (a group: one per member)."""
    import h5py

    if isinstance(node, h5py.Group):
        return {key: node[key][()] for key in node}
    return node[()]


def _hdf5_attributes(f: Any) -> dict[str, Any]:
    """``env_id`` and the reference scores an HDF5 file records as attributes (those it has)."""
    found: dict[str, Any] = {}
    env_id = f.attrs.get("env_id")
    if isinstance(env_id, bytes):
        env_id = env_id.decode()
    if env_id:
        found["env_id"] = str(env_id)
    for key in ("ref_min_score", "ref_max_score"):
        if key in f.attrs:
            found[key] = float(f.attrs[key])
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
        attributes = _hdf5_attributes(f)
    env_id = attributes.pop("env_id", None)
    return _from_d4rl_arrays({**arrays, **attributes}, source, env_id)


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
    for key in ("ref_min_score", "ref_max_score"):
        if key in arrays:
            arrays[key] = float(arrays[key])
    return _from_d4rl_arrays(arrays, source, str(env_id) if env_id is not None and env_id.size else None)


# ------------------------------------------------------------------------------------- SB3 buffers
def unscale_action(action_space: spaces.Box, scaled: np.ndarray) -> np.ndarray:
    """Map actions from SB3's [-1, 1] buffer convention back to the Box's units."""
    low, high = action_space.low, action_space.high
    return low + 0.5 * (scaled + 1.0) * (high - low)


def load_sb3_replay_buffer(
    path: str | os.PathLike, action_space: spaces.Space | None = None, actions_scaled: bool = True
) -> Transitions:
    """
    Read an SB3 ``ReplayBuffer``/``DictReplayBuffer`` saved with ``model.save_replay_buffer(path)``.

    SB3's off-policy algorithms (DDPG, TD3, SAC, TQC, ...) store Box actions rescaled to [-1, 1];
    with ``actions_scaled=True`` (default) they are mapped back to the env's units with ``action_space``.
    A done that SB3 flagged as a time-limit timeout is a truncation, any other done a termination.
    A file that is not such a pickle (or is cut short) raises :class:`DatasetValidationError`.
    """
    from stable_baselines3.common.save_util import load_from_pkl

    file = existing_file(path, suffix=".pkl")
    with reading_dataset_file(file, EXPECTED_PKL, str(path)):
        buffer = load_from_pkl(file)
    return transitions_from_replay_buffer(
        buffer, action_space, actions_scaled=actions_scaled, source=str(path), copy=False
    )


def transitions_from_replay_buffer(
    buffer: Any,
    action_space: spaces.Space | None = None,
    actions_scaled: bool = True,
    source: str = "<replay buffer>",
    copy: bool = True,
) -> Transitions:
    """
    The transitions held by an in-memory SB3 ``ReplayBuffer``/``DictReplayBuffer`` (e.g. ``model.replay_buffer``
    of a trained DDPG/TD3/SAC), oldest first; see :func:`load_sb3_replay_buffer` for the conventions.

    :param copy: ``False``: where the rows are one contiguous run of one env's, the observations and rewards
        are views of the buffer's arrays (for a buffer nothing else uses, e.g. one just unpickled)
    """
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

    if actions_scaled and not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"{source}: field 'action_space': expected the env's Box (SB3 buffers hold actions rescaled to [-1, 1], "
            f"mapped back with it), found {action_space!r}; or pass actions_scaled=False"
        )
    if isinstance(buffer, HerReplayBuffer):
        raise DatasetValidationError(
            source,
            "",
            "an SB3 ReplayBuffer or DictReplayBuffer",
            "a HerReplayBuffer",
            hint="Its transitions are relabelled at sampling time; load it with model.load_replay_buffer",
        )
    if not isinstance(buffer, ReplayBuffer | DictReplayBuffer):
        raise DatasetValidationError(
            source, "", "an SB3 ReplayBuffer or DictReplayBuffer", f"a pickled {type(buffer).__name__}"
        )

    size = buffer.buffer_size
    optimize = bool(getattr(buffer, "optimize_memory_usage", False))
    rows = (
        np.arange(buffer.pos, size).tolist() + np.arange(0, buffer.pos).tolist()
        if buffer.full
        else list(range(buffer.pos))
    )
    if optimize and buffer.full:
        # With optimize_memory_usage, row `pos` was overwritten by the next observation of row pos - 1.
        rows = [r for r in rows if r != buffer.pos]
    rows_arr = np.asarray(rows, dtype=np.int64)
    n_envs = buffer.n_envs
    one_run = len(rows_arr) > 0 and bool(np.all(np.diff(rows_arr) == 1))

    def flatten(array: np.ndarray) -> np.ndarray:
        if not copy and n_envs == 1 and one_run:
            return array[rows_arr[0] : rows_arr[-1] + 1, 0]  # a view
        # (rows, n_envs, ...) -> env-major, so each env's episodes stay contiguous
        picked = array[rows_arr]
        return np.concatenate([picked[:, e] for e in range(n_envs)], axis=0)

    def next_rows(array: np.ndarray) -> np.ndarray:
        return array[(rows_arr + 1) % size]

    if isinstance(buffer, DictReplayBuffer):
        observations: Observations = {k: flatten(v) for k, v in buffer.observations.items()}
        next_observations: Observations = {k: flatten(v) for k, v in buffer.next_observations.items()}
    else:
        observations = flatten(buffer.observations)
        if optimize:
            next_obs = buffer.observations[(rows_arr + 1) % size]
            next_observations = np.concatenate([next_obs[:, e] for e in range(n_envs)], axis=0)
        else:
            next_observations = flatten(buffer.next_observations)
    actions = flatten(buffer.actions)
    if actions_scaled and isinstance(action_space, spaces.Box):
        actions = unscale_action(action_space, actions.reshape(len(actions), *action_space.shape))
    dones = flatten(buffer.dones).astype(bool)
    timeouts = flatten(buffer.timeouts).astype(bool) if hasattr(buffer, "timeouts") else np.zeros_like(dones)
    terminations, truncations = dones & ~timeouts, dones & timeouts
    # Each env's stream stops where the buffer stops: its last transition closes an episode (as a
    # truncation; it still bootstraps from its stored next observation), so env streams never merge.
    stream = len(rows_arr)
    if stream:
        last = np.arange(1, n_envs + 1) * stream - 1
        truncations[last] |= ~terminations[last]
    return Transitions(
        observations=observations,
        actions=actions,
        rewards=flatten(buffer.rewards),
        next_observations=next_observations,
        terminations=terminations,
        truncations=truncations,
        source=source,
        metadata={FIELD_NAMES: {"terminations": "dones", "truncations": "timeouts"}},
    )


# ----------------------------------------------------------------------------------------- dispatch
def _is_imitation_source(source: Any) -> bool:
    """
    :func:`sb3_offline.datasets.imitation.is_imitation_source`, ``False`` for a file it cannot read (a truncated
    or foreign ``.npz``): the loader of the file's suffix then reports what the file holds.
    """
    from sb3_offline.datasets.imitation import is_imitation_source

    try:
        return is_imitation_source(source)
    except Exception:  # any reader failure (BadZipFile, EOFError, ValueError, OSError): not imitation's file
        return False


def load_transitions(
    source: DatasetSource,
    action_space: spaces.Space | None = None,
    download: bool = False,
) -> Transitions:
    """
    Read any supported source (see the module docstring) into ``Transitions`` (not yet validated).

    :param source: a ``Transitions``, a ``MinariDataset``, a Minari id, or a path
        (``.hdf5``/``.h5``, ``.npz``, ``.pkl``, or a Minari dataset folder)
    :param action_space: the env's action space (needed to read SB3 replay buffers)
    :param download: let Minari fetch a remote dataset that is not on local disk
    """
    if isinstance(source, Transitions):
        return source
    from sb3_offline.datasets import d3rlpy as d3rlpy_io
    from sb3_offline.datasets.imitation import load_imitation

    if type(source).__module__.startswith("d3rlpy") and hasattr(source, "episodes"):
        return d3rlpy_io.from_d3rlpy(source)
    if _is_imitation_source(source):
        return load_imitation(source)
    if is_minari_source(source):
        return load_minari(source, download=download)
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"dataset: expected a Minari id, a path (.hdf5, .npz, .pkl, Minari folder), a MinariDataset or "
            f"Transitions, found {type(source).__name__}"
        )
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if path.is_file():
        if suffix in (".hdf5", ".h5"):
            return d3rlpy_io.load_d3rlpy(path) if d3rlpy_io.is_d3rlpy_file(path) else load_hdf5(path)
        if suffix == ".npz":
            return load_npz(path)
        if suffix in (".pkl", ".pickle"):
            return load_sb3_replay_buffer(path, action_space)
        raise ValueError(f"dataset '{source}': expected a .hdf5, .h5, .npz or .pkl file, found suffix '{suffix}'")
    if suffix in (".hdf5", ".h5", ".npz", ".pkl", ".pickle"):
        raise DatasetNotFoundError(f"dataset '{source}': no such file")
    raise DatasetNotFoundError(
        f"dataset '{source}': expected an existing file (.hdf5, .npz, .pkl), a Minari dataset folder, "
        "or a Minari id such as 'pendulum/random-v0', found nothing of that name"
    )


def dataset_env_id(source: DatasetSource) -> str | None:
    """The gymnasium id recorded by a dataset (Minari env spec, HDF5 attribute, npz key), if any."""
    if isinstance(source, Transitions):
        return source.env_id
    if is_minari_source(source):
        spec = open_minari_dataset(source).spec.env_spec
        return spec.id if spec is not None else None
    path = Path(str(source)).expanduser()
    if path.suffix.lower() in (".hdf5", ".h5") and path.is_file():
        import h5py

        with reading_dataset_file(path, EXPECTED_HDF5, str(source)), h5py.File(path, "r") as f:
            env_id = f.attrs.get("env_id")
        if isinstance(env_id, bytes):
            env_id = env_id.decode()
        return str(env_id) if env_id else None
    if path.suffix.lower() == ".npz" and path.is_file():
        with reading_dataset_file(path, EXPECTED_NPZ, str(source)), _open_npz(path, str(source)) as data:
            return str(data["env_id"]) if "env_id" in data.files else None
    return None  # an SB3 replay buffer (.pkl) records no env id: it is not opened here


def recover_env(source: DatasetSource) -> Any:
    """
    Make the environment a dataset was recorded in: Minari's ``recover_environment()`` (full env
    spec, wrappers and kwargs included) when the source is a Minari dataset, else ``gym.make`` of the
    recorded env id. Raises ``ValueError`` when the source records no environment.
    """
    import gymnasium as gym

    if is_minari_source(source):
        ds = open_minari_dataset(source)
        if ds.spec.env_spec is not None:
            return ds.recover_environment()
    env_id = dataset_env_id(source)
    if env_id is None:
        raise ValueError(
            f"env: expected an environment or a dataset that records one, found env=None and dataset "
            f"'{describe_source(source)}' with no env id; pass env=gym.make(...)"
        )
    return gym.make(env_id)
