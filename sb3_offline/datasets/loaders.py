"""
Read a dataset from any supported source into :class:`~sb3_offline.datasets.transitions.Transitions`.

Sources:

- a Minari dataset: an id such as ``"pendulum/random-v0"`` found under the local Minari folder
  (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``), a dataset folder, or a ``MinariDataset``;
- a D4RL-style HDF5 file (``observations, actions, rewards, terminals, timeouts``, optional
  ``next_observations``; ``Dict`` observations as a group with one dataset per key);
- an ``.npz`` with the same keys (``Dict`` observations as ``observations/<key>`` entries);
- an SB3 replay buffer saved with ``model.save_replay_buffer(path)`` (``.pkl``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, cast

import numpy as np
from gymnasium import spaces

from sb3_offline.datasets.transitions import (
    Observations,
    Transitions,
    close_episodes_before_dropped,
    derive_next_observations,
)

#: What a user may pass as ``dataset=``.
DatasetSource = str | os.PathLike | Transitions | Any  # Any: a minari.MinariDataset

_MINARI_ID = re.compile(r"^([\w.-]+/)*[\w.-]+-v\d+$")
_TERMINAL_KEYS = ("terminals", "terminations")
_TIMEOUT_KEYS = ("timeouts", "truncations")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset source names nothing that exists locally."""


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
        return True
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
        return minari.MinariDataset(data_dir)
    dataset_id = str(dataset)
    from sb3_offline.datasets.packaged import install_packaged_dataset, packaged_datasets

    if dataset_id in packaged_datasets() and dataset_id not in minari.list_local_datasets():
        install_packaged_dataset(dataset_id)  # shipped with sb3-offline: copied into the local Minari folder once
    try:
        return minari.load_dataset(dataset_id, download=download)
    except FileNotFoundError as error:
        local = sorted(minari.list_local_datasets())
        raise DatasetNotFoundError(
            f"Minari dataset '{dataset_id}' is not in the local Minari folder {_minari_root()} "
            f"(local datasets: {local or 'none'}). Create it locally (sb3-offline collect), or pass "
            f"download=True in replay_buffer_kwargs to fetch it from Minari's remote store."
        ) from error


def load_minari(dataset: Any, download: bool = False) -> Transitions:
    """Read every episode of a Minari dataset; ``s'`` is the episode's next observation (never crosses)."""
    ds = open_minari_dataset(dataset, download=download)
    parts = []
    for episode in ds.iterate_episodes():
        obs = episode.observations
        length = len(episode.actions)

        def head(value: np.ndarray, length: int = length) -> np.ndarray:
            return np.asarray(value[:length])

        def tail(value: np.ndarray, length: int = length) -> np.ndarray:
            return np.asarray(value[1 : length + 1])

        if isinstance(obs, dict):
            observations: Observations = {k: head(v) for k, v in obs.items()}
            next_observations: Observations = {k: tail(v) for k, v in obs.items()}
        else:
            observations, next_observations = head(obs), tail(obs)
        parts.append(
            Transitions(
                observations=observations,
                actions=np.asarray(episode.actions),
                rewards=np.asarray(episode.rewards),
                next_observations=next_observations,
                terminations=np.asarray(episode.terminations, dtype=bool),
                truncations=np.asarray(episode.truncations, dtype=bool),
            )
        )
    source = f"minari:{ds.spec.dataset_id}"
    if not parts:
        raise ValueError(f"{source}: field 'episodes': expected at least one episode, found 0")
    transitions = Transitions.concatenate(parts)
    transitions.source = source
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


def _from_d4rl_arrays(arrays: dict[str, Any], source: str, env_id: str | None) -> Transitions:
    """Turn D4RL-style arrays into transitions, deriving ``next_observations`` per episode if absent."""
    for required in ("observations", "actions", "rewards"):
        if required not in arrays:
            raise ValueError(f"{source}: field '{required}': expected a dataset, found none (keys: {sorted(arrays)})")
    terminal_key = _first_key(arrays, _TERMINAL_KEYS)
    if terminal_key is None:
        raise ValueError(f"{source}: field 'terminals': expected a dataset, found none (keys: {sorted(arrays)})")
    n = len(arrays["actions"])
    terminations = np.asarray(arrays[terminal_key])
    timeout_key = _first_key(arrays, _TIMEOUT_KEYS)
    has_next = "next_observations" in arrays
    if timeout_key is None:
        if not has_next:
            raise ValueError(
                f"{source}: field 'timeouts': expected a dataset (episode boundaries are needed to derive "
                f"next_observations without crossing episodes), found none (keys: {sorted(arrays)})"
            )
        truncations = np.zeros(len(terminations), dtype=bool)
    else:
        truncations = np.asarray(arrays[timeout_key])
    observations = arrays["observations"]
    transitions = Transitions(
        observations=observations,
        actions=np.asarray(arrays["actions"]),
        rewards=np.asarray(arrays["rewards"]),
        next_observations=arrays["next_observations"] if has_next else observations,
        terminations=terminations,
        truncations=truncations,
        source=source,
        env_id=env_id,
        metadata={k: v for k, v in arrays.items() if k in ("ref_min_score", "ref_max_score")},
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
    transitions.next_observations = next_observations
    transitions.truncations = close_episodes_before_dropped(terminations, truncations, keep)
    return transitions.select(keep)


def _read_hdf5_node(node: Any) -> Any:
    import h5py

    if isinstance(node, h5py.Group):
        return {key: np.asarray(node[key]) for key in node}
    return np.asarray(node)


def load_hdf5(path: str | os.PathLike) -> Transitions:
    """Read a D4RL-style HDF5 file (see the module docstring for the layout)."""
    import h5py

    source = str(path)
    with h5py.File(path, "r") as f:
        arrays = {key: _read_hdf5_node(f[key]) for key in f}
        env_id = f.attrs.get("env_id")
        for key in ("ref_min_score", "ref_max_score"):
            if key in f.attrs:
                arrays[key] = float(f.attrs[key])
    if isinstance(env_id, bytes):
        env_id = env_id.decode()
    return _from_d4rl_arrays(arrays, source, str(env_id) if env_id else None)


def load_npz(path: str | os.PathLike) -> Transitions:
    """Read an ``.npz`` with D4RL's keys; ``Dict`` observations are stored as ``observations/<key>``."""
    source = str(path)
    with np.load(path, allow_pickle=False) as data:
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
    """
    from stable_baselines3.common.save_util import load_from_pkl

    return transitions_from_replay_buffer(
        load_from_pkl(Path(path)), action_space, actions_scaled=actions_scaled, source=str(path)
    )


def transitions_from_replay_buffer(
    buffer: Any, action_space: spaces.Space | None = None, actions_scaled: bool = True, source: str = "<replay buffer>"
) -> Transitions:
    """
    The transitions held by an in-memory SB3 ``ReplayBuffer``/``DictReplayBuffer`` (e.g. ``model.replay_buffer``
    of a trained DDPG/TD3/SAC), oldest first; see :func:`load_sb3_replay_buffer` for the conventions.
    """
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

    if actions_scaled and not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"{source}: field 'action_space': expected the env's Box (SB3 buffers hold actions rescaled to [-1, 1], "
            f"mapped back with it), found {action_space!r}; or pass actions_scaled=False"
        )
    if isinstance(buffer, HerReplayBuffer):
        raise ValueError(
            f"{source}: expected an SB3 ReplayBuffer or DictReplayBuffer, found a HerReplayBuffer "
            "(its transitions are relabelled at sampling time; load it with model.load_replay_buffer)"
        )
    if not isinstance(buffer, ReplayBuffer | DictReplayBuffer):
        raise ValueError(f"{source}: expected an SB3 ReplayBuffer, found {type(buffer).__name__}")

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

    def flatten(array: np.ndarray) -> np.ndarray:
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
    )


# ----------------------------------------------------------------------------------------- dispatch
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
            return load_hdf5(path)
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

        with h5py.File(path, "r") as f:
            env_id = f.attrs.get("env_id")
        if isinstance(env_id, bytes):
            env_id = env_id.decode()
        return str(env_id) if env_id else None
    if path.suffix.lower() == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return str(data["env_id"]) if "env_id" in data.files else None
    return None


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
