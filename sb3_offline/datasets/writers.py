"""
Write ``Transitions`` to disk: D4RL-style HDF5, ``.npz``, or a local Minari dataset.

Every writer is atomic: the data goes to a temporary name in the same folder and is renamed into
place only once complete, so an interrupted write never leaves a half-written dataset behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.common.observations import map_obs_pair, obs_index
from sb3_offline.datasets.transitions import REFERENCE_SCORES, Transitions


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    final = Path(path).expanduser()
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved dataset gets the usual mode
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_hdf5_attributes(f: Any, transitions: Transitions) -> None:
    """Record the env id and the reference scores ``transitions`` know as attributes of an open HDF5 file."""
    if transitions.env_id:
        f.attrs["env_id"] = transitions.env_id
    for key in REFERENCE_SCORES:
        if key in transitions.metadata:
            f.attrs[key] = float(transitions.metadata[key])


def save_hdf5(transitions: Transitions, path: str | os.PathLike, next_observations: bool = True) -> Path:
    """
    Write D4RL's layout: ``observations, actions, rewards, terminals, timeouts`` (+ ``next_observations``
    unless ``next_observations=False``); ``Dict`` observations become a group with one dataset per key.
    The env id and reference scores, when known, are stored as file attributes.
    """
    import h5py

    final = Path(path).expanduser()
    with atomic_path(final) as tmp, h5py.File(tmp, "w") as f:
        fields: dict[str, Any] = {
            "observations": transitions.observations,
            "actions": transitions.actions,
            "rewards": transitions.rewards,
            "terminals": transitions.terminations,
            "timeouts": transitions.truncations,
        }
        if next_observations:
            fields["next_observations"] = transitions.next_observations
        for key, value in fields.items():
            if isinstance(value, dict):
                group = f.create_group(key)
                for sub, array in value.items():
                    group.create_dataset(sub, data=array)
            else:
                f.create_dataset(key, data=value)
        write_hdf5_attributes(f, transitions)
    return final


def save_npz(transitions: Transitions, path: str | os.PathLike, next_observations: bool = True) -> Path:
    """Write the HDF5 layout as an ``.npz`` (``Dict`` observations as ``observations/<key>`` entries)."""
    final = Path(path).expanduser()
    if final.suffix != ".npz":
        raise ValueError(f"path: expected a file name ending in .npz, found '{final.name}'")
    arrays: dict[str, np.ndarray] = {
        "actions": transitions.actions,
        "rewards": transitions.rewards,
        "terminals": transitions.terminations,
        "timeouts": transitions.truncations,
    }
    obs_fields = {"observations": transitions.observations}
    if next_observations:
        obs_fields["next_observations"] = transitions.next_observations
    for key, value in obs_fields.items():
        if isinstance(value, dict):
            arrays.update({f"{key}/{sub}": array for sub, array in value.items()})
        else:
            arrays[key] = value
    if transitions.env_id:
        arrays["env_id"] = np.asarray(transitions.env_id)
    for key in REFERENCE_SCORES:
        if key in transitions.metadata:
            arrays[key] = np.asarray(float(transitions.metadata[key]))
    with atomic_path(final) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    return final


def _episode_buffers(transitions: Transitions) -> list[Any]:
    """Split transitions into Minari ``EpisodeBuffer``s (observations of length T + 1 per episode)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    buffers = []
    truncations = transitions.truncations.copy()
    for episode_id, part in enumerate(transitions.episode_slices()):
        last = part.stop - 1
        if not (transitions.terminations[last] or truncations[last]):
            # Collection stopped mid-episode: for Minari that episode was truncated.
            truncations[last] = True
        observations = map_obs_pair(
            lambda obs, final: np.concatenate([obs, final], axis=0),
            obs_index(transitions.observations, part),
            obs_index(transitions.next_observations, slice(last, last + 1)),
        )
        buffers.append(
            EpisodeBuffer(
                id=episode_id,
                observations=observations,
                actions=transitions.actions[part],
                rewards=transitions.rewards[part],
                terminations=transitions.terminations[part].astype(bool),
                truncations=truncations[part].astype(bool),
                infos={},
            )
        )
    return buffers


def save_minari(
    transitions: Transitions,
    dataset_id: str,
    env: Any = None,
    overwrite: bool = False,
    **metadata: Any,
) -> Any:
    """
    Write a Minari dataset under the local Minari folder with ``minari.create_dataset_from_buffers``
    (no jax needed), atomically: it is built in a temporary folder and renamed into place.

    :param transitions: the data; each run up to a termination or truncation is one episode
    :param dataset_id: e.g. ``"pendulum/random-v0"``
    :param env: the env (or its id or ``EnvSpec``) recorded for ``recover_environment()``;
        defaults to ``transitions.env_id``
    :param overwrite: replace an existing local dataset of that id
    :param metadata: passed to Minari (``ref_min_score``, ``ref_max_score``, ``algorithm_name``, ...)
    :return: the written ``MinariDataset``
    """
    import minari
    from minari.storage.datasets_root_dir import get_dataset_path

    env = env if env is not None else transitions.env_id
    if env is None:
        raise ValueError("env: expected an env, env id or EnvSpec to record in the Minari dataset, found None")
    root = Path(get_dataset_path())
    final = root / dataset_id
    if final.exists() and not overwrite:
        raise FileExistsError(f"dataset_id: '{dataset_id}' already exists at {final} (pass overwrite=True)")
    for key in REFERENCE_SCORES:
        if key in transitions.metadata:
            metadata.setdefault(key, float(transitions.metadata[key]))
    # Minari warns about every unset descriptive field; give it real values instead of silencing it.
    metadata.setdefault("author", "sb3-offline")
    metadata.setdefault("author_email", "n/a")
    metadata.setdefault("code_permalink", "https://pypi.org/project/sb3-offline/")
    metadata.setdefault("algorithm_name", "unspecified")
    metadata.setdefault("description", f"{len(transitions)} transitions from {transitions.source}")
    metadata.setdefault("eval_env", env)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    previous = os.environ.get("MINARI_DATASETS_PATH")
    try:
        os.environ["MINARI_DATASETS_PATH"] = str(staging)
        minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=_episode_buffers(transitions), env=env, **metadata
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging / dataset_id, final)
        # namespace metadata written by Minari (if any) moves too, without clobbering existing ones
        for item in (staging / dataset_id).parents:
            if item == staging:
                break
            meta = item / "namespace_metadata.json"
            target = root / item.relative_to(staging) / "namespace_metadata.json"
            if meta.exists() and not target.exists():
                os.replace(meta, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return minari.load_dataset(dataset_id)
