"""
Held-out episodes: a dataset split by whole episodes (never by transitions), written as two dataset sources.

The episodes are :func:`~sb3_offline.common.episodes.episode_bounds`' (the contiguous runs of rows closed by a
termination or a truncation, a last run no flag closes ending with the data), the rule an
:class:`~sb3_offline.buffers.OfflineReplayBuffer` indexes its episodes with.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.episodes import episode_bounds
from sb3_offline.common.observations import map_obs
from sb3_offline.datasets.loaders import DatasetSource, describe_source, load_transitions, unscale_action
from sb3_offline.datasets.transitions import Observations, Transitions
from sb3_offline.datasets.writers import save_hdf5, save_minari, save_npz

#: ``split_episodes(format=...)``: how the two parts are written
SPLIT_FORMATS = ("hdf5", "npz", "minari")
_MINARI_ID = re.compile(r"^(?P<head>(?:[\w.-]+/)*[\w.-]+)-v(?P<version>\d+)$")


@dataclass
class EpisodeSplit:
    """
    A dataset split into training and held-out (validation) episodes.

    :param train: the training part: a file path or Minari id (``Transitions`` when nothing was written)
    :param validation: the held-out part, likewise
    :param train_episodes: indices (in the original dataset's order) of the training episodes
    :param validation_episodes: indices of the held-out episodes
    :param n_train_transitions: rows of the training part
    :param n_validation_transitions: rows of the held-out part
    :param validation_fraction: the fraction asked for (of the episodes)
    :param seed: the seed of the draw
    :param source: the dataset that was split (its description)
    """

    train: str | Transitions
    validation: str | Transitions
    train_episodes: np.ndarray
    validation_episodes: np.ndarray
    n_train_transitions: int
    n_validation_transitions: int
    validation_fraction: float
    seed: int | None
    source: str = ""
    written: list[str] = field(default_factory=list)

    @property
    def n_episodes(self) -> int:
        return len(self.train_episodes) + len(self.validation_episodes)


def _numpy_rows(values: th.Tensor | dict[str, th.Tensor], rows: slice) -> Observations:
    return map_obs(lambda tensor: tensor[rows].cpu().numpy(), values)


def buffer_transitions(buffer: OfflineReplayBuffer) -> Transitions:
    """
    The dataset rows of an :class:`~sb3_offline.buffers.OfflineReplayBuffer` as ``Transitions`` in the
    dataset's own units: actions mapped back from [-1, 1] to the action Box, rewards back through the
    inverse of the buffer's ``reward_transform``, terminations and timeouts as the buffer keeps them.
    Online rows are left out.
    """
    rows = slice(0, buffer.dataset_size)
    assert isinstance(buffer.action_space, spaces.Box)
    actions = unscale_action(buffer.action_space, buffer.actions[rows].cpu().numpy().astype(np.float64))
    transform = buffer.reward_transform
    rewards = (buffer.rewards[rows, 0].cpu().numpy().astype(np.float64) - transform.shift) / transform.scale
    return Transitions(
        observations=_numpy_rows(buffer.observations, rows),
        actions=actions.astype(np.float32).reshape(buffer.dataset_size, *buffer.action_space.shape),
        rewards=rewards.astype(np.float32),
        next_observations=_numpy_rows(buffer.next_observations, rows),
        terminations=buffer.dones[rows, 0].cpu().numpy() > 0,
        truncations=buffer.timeouts[rows, 0].cpu().numpy() > 0,
        source=buffer.dataset_name or "<replay buffer>",
        env_id=buffer.env_id,
        metadata=dict(buffer.metadata),
    )


def dataset_episodes(
    dataset: DatasetSource | OfflineReplayBuffer, action_space: spaces.Space | None = None
) -> tuple[Transitions, np.ndarray, np.ndarray]:
    """
    ``(transitions, episode_starts, episode_lengths)`` of a dataset, its episodes cut at
    ``terminations | truncations`` by :func:`~sb3_offline.common.episodes.episode_bounds` (the last run, closed or
    not, is an episode): the rule an ``OfflineReplayBuffer`` indexes its own episodes with.

    :param dataset: an ``OfflineReplayBuffer`` (its dataset rows) or anything ``load_transitions`` reads
    :param action_space: the env's action space (to read SB3 replay-buffer ``.pkl`` files)
    """
    if isinstance(dataset, OfflineReplayBuffer):
        transitions = buffer_transitions(dataset)
    else:
        transitions = load_transitions(dataset, action_space=action_space)
    starts, lengths = episode_bounds(transitions.episode_ends)
    return transitions, starts, lengths


def _part_ids(output: str, names: tuple[str, str]) -> tuple[str, str]:
    """``ns/name-vN`` -> ``ns/name-<part>-vN`` for each part name."""
    match = _MINARI_ID.match(output)
    if match is None:
        raise ValueError(
            f"output: expected a Minari id such as 'pendulum/imperfect-v0' with format='minari', found {output!r}"
        )
    head, version = match.group("head"), match.group("version")
    return f"{head}-{names[0]}-v{version}", f"{head}-{names[1]}-v{version}"


def _write_parts(
    parts: dict[str, Transitions], output: str | os.PathLike | None, format: str, overwrite: bool, origin: str
) -> tuple[dict[str, str | Transitions], list[str]]:
    """
    Write each part (:func:`split_episodes`' ``output`` and ``format``; ``origin`` names the split in a Minari
    dataset's description): ``(part name -> its source, written paths or Minari ids)``; the parts themselves where
    ``output`` is ``None``.
    """
    sources: dict[str, str | Transitions] = dict(parts)
    written: list[str] = []
    if output is None:
        return sources, written
    if format == "minari":
        ids = _part_ids(os.fspath(output), ("train", "validation"))
        for (name, part), dataset_id in zip(parts.items(), ids, strict=True):
            save_minari(part, dataset_id, overwrite=overwrite, algorithm_name=f"{name} episodes of {origin}")
            sources[name] = dataset_id
            written.append(dataset_id)
        return sources, written
    folder = Path(output).expanduser()
    for name, part in parts.items():
        path = folder / f"{name}.{format}"
        if path.exists() and not overwrite:
            raise FileExistsError(f"output: {path} already exists (pass overwrite=True)")
        path = save_hdf5(part, path) if format == "hdf5" else save_npz(part, path)
        sources[name] = str(path)
        written.append(str(path))
    return sources, written


def split_episodes(
    dataset: DatasetSource | OfflineReplayBuffer,
    validation_fraction: float = 0.1,
    seed: int | None = 0,
    output: str | os.PathLike | None = None,
    format: str = "hdf5",
    overwrite: bool = False,
    action_space: spaces.Space | None = None,
) -> EpisodeSplit:
    """
    Split a dataset into training and held-out episodes, whole episodes only, and write both parts so that
    a checkpoint or a zoo config can refer to them (``dataset=split.train``).

    ``round(validation_fraction * n_episodes)`` episodes (at least 1, at most ``n_episodes - 1``) are drawn
    without replacement with ``numpy.random.default_rng(seed)``: the same seed and dataset give the same
    split. Each part keeps the episodes in the dataset's order, every row of an episode with it, so a part
    has exactly the episode boundaries (terminations, truncations) the dataset had; the env id and reference
    scores go with both parts.

    :param dataset: an ``OfflineReplayBuffer`` (its episode index; its actions and rewards are written back in
        the dataset's units), or any dataset source (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/``.pkl``
        path, ``Transitions``)
    :param validation_fraction: the fraction of the episodes held out, in (0, 1)
    :param seed: seed of the draw (``None``: fresh entropy, not reproducible)
    :param output: where to write: a folder (``format`` ``"hdf5"`` or ``"npz"``: ``train.<ext>`` and
        ``validation.<ext>`` in it) or a Minari id ``ns/name-vN`` (``format="minari"``: the local datasets
        ``ns/name-train-vN`` and ``ns/name-validation-vN``); ``None``: nothing is written and both parts are
        in-memory ``Transitions``
    :param format: ``"hdf5"``, ``"npz"`` or ``"minari"``
    :param overwrite: replace existing files or Minari datasets of those names
    :param action_space: the env's action space (needed only to read an SB3 replay-buffer ``.pkl``)
    :return: the :class:`EpisodeSplit`
    """
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(f"validation_fraction: expected a fraction in (0, 1), found {validation_fraction}")
    if format not in SPLIT_FORMATS:
        raise ValueError(f"format: expected one of {SPLIT_FORMATS}, found {format!r}")
    transitions, starts, lengths = dataset_episodes(dataset, action_space)
    n_episodes = len(starts)
    if n_episodes < 2:
        raise ValueError(
            f"dataset: expected at least 2 episodes to hold some out, found {n_episodes} in "
            f"{transitions.source if isinstance(dataset, OfflineReplayBuffer) else describe_source(dataset)}"
        )
    n_validation = min(max(round(float(validation_fraction) * n_episodes), 1), n_episodes - 1)
    rng = np.random.default_rng(seed)
    validation_episodes = np.sort(rng.choice(n_episodes, size=n_validation, replace=False)).astype(np.int64)
    train_episodes = np.setdiff1d(np.arange(n_episodes, dtype=np.int64), validation_episodes)
    episode_of_row = np.repeat(np.arange(n_episodes, dtype=np.int64), lengths)
    validation_rows = np.isin(episode_of_row, validation_episodes)
    parts = {"train": transitions.select(~validation_rows), "validation": transitions.select(validation_rows)}
    source_name = transitions.source
    for name, part in parts.items():
        part.source = f"{source_name}[{name}]"
    origin = f"{source_name} (validation_fraction={validation_fraction}, seed={seed})"
    sources, written = _write_parts(parts, output, format, overwrite, origin)
    return EpisodeSplit(
        train=sources["train"],
        validation=sources["validation"],
        train_episodes=train_episodes,
        validation_episodes=validation_episodes,
        n_train_transitions=len(parts["train"]),
        n_validation_transitions=len(parts["validation"]),
        validation_fraction=float(validation_fraction),
        seed=seed,
        source=source_name,
        written=written,
    )


__all__ = ["SPLIT_FORMATS", "EpisodeSplit", "buffer_transitions", "dataset_episodes", "split_episodes"]
