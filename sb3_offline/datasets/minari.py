"""
Minari datasets (https://minari.farama.org): an id found under the local Minari folder (``MINARI_DATASETS_PATH``,
default ``~/.minari/datasets``; the datasets shipped with sb3-offline are installed there on first use), a dataset
folder, or a ``MinariDataset``, read into :class:`~sb3_offline.datasets.transitions.Transitions`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.datasets.files import EXPECTED_MINARI, DatasetNotFoundError, reading_dataset_file
from sb3_offline.datasets.transitions import REFERENCE_SCORES, Observations, Transitions
from sb3_offline.datasets.validation import DatasetValidationError

#: A Minari id: ``namespace/name-vN`` (namespaces optional).
MINARI_ID = re.compile(r"^([\w.-]+/)*[\w.-]+-v\d+$")


def is_minari_dataset(obj: object) -> bool:
    """Whether ``obj`` is a ``minari.MinariDataset`` (an ``isinstance`` check)."""
    try:
        from minari import MinariDataset
    except ImportError:  # pragma: no cover - minari is a dependency
        return False
    return isinstance(obj, MinariDataset)


def is_minari_source(source: Any) -> bool:
    """
    Whether ``source`` names a Minari dataset: a ``MinariDataset``, a dataset folder, or a string shaped
    like a Minari id (``namespace/name-vN``) that names no existing path; a folder holding imitation's
    HuggingFace dataset is not one (the rule :func:`~sb3_offline.datasets.loaders.source_format` applies).
    """
    if is_minari_dataset(source):
        return True
    if not isinstance(source, str | os.PathLike):
        return False
    path = Path(source).expanduser()
    if path.is_dir():
        from sb3_offline.datasets.imitation import is_imitation_dataset_folder

        return not is_imitation_dataset_folder(path)
    return not path.exists() and bool(MINARI_ID.match(os.fspath(source)))


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
            f"(local datasets: {local or 'none'}). Create it locally (sb3-offline collect), or fetch it from "
            "Minari's remote store: download=True in replay_buffer_kwargs, `sb3-offline train --download` "
            "(ope and evaluate take --download too)."
        ) from error


def download_minari_dataset(dataset_id: str) -> None:
    """
    Fetch the Minari dataset ``dataset_id`` from Minari's remote store into the local Minari folder
    (``minari.download_dataset``; a dataset already there is kept). Needs network access.

    :param dataset_id: a Minari id, ``namespace/name-vN`` (e.g. ``"D4RL/pen/human-v2"``)
    """
    import minari

    if not MINARI_ID.match(dataset_id):
        raise ValueError(f"--download: expected a Minari id such as 'D4RL/pen/human-v2', found {dataset_id!r}")
    minari.download_dataset(dataset_id)


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
    transitions.metadata = {key: stored[key] for key in REFERENCE_SCORES if stored.get(key) is not None}
    transitions.metadata["dataset_id"] = ds.spec.dataset_id
    return transitions


__all__ = [
    "MINARI_EPISODES_PER_READ",
    "MINARI_ID",
    "is_minari_dataset",
    "is_minari_source",
    "load_minari",
    "open_minari_dataset",
]
