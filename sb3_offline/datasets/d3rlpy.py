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

d3rlpy itself is optional and imported only by the two functions that build or read its objects; it is no
extra of sb3-offline because d3rlpy 2.8.1 pins ``gymnasium==1.0.0``.

d3rlpy has no ``Dict`` observations; it has tuple observations (a list of arrays). Ours go there in the order
of the dict's keys and come back under ``observation_keys`` (default: the keys recorded in our file, else
``"0"``, ``"1"``, ...). Actions stay in the env's units unless an ``action_space`` is given: then they are
rescaled to [-1, 1] (what d3rlpy's ``tanh``-bounded continuous policies output; the alternative is d3rlpy's
``MinMaxActionScaler``) and mapped back on reading.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sb3_offline.common.observations import obs_len
from sb3_offline.datasets.transitions import Observations, Transitions

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


@dataclass
class Episode:
    """One d3rlpy episode as arrays: ``observations`` ``(T, ...)`` (or a list of such arrays), ``actions``
    ``(T, ...)``, ``rewards`` ``(T, 1)``, and whether it ``terminated`` (else it timed out)."""

    observations: np.ndarray | list[np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool


# ------------------------------------------------------------------------------------- d3rlpy -> ours
def _bounds(action_space: Any) -> tuple[np.ndarray, np.ndarray]:
    low = np.asarray(action_space.low, dtype=np.float64)
    high = np.asarray(action_space.high, dtype=np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(
            f"action_space: expected finite Box bounds (actions are rescaled with them), found {action_space}"
        )
    return low, high


def _episode_transitions(episode: Episode, keys: list[str] | None, source: str, index: int) -> Transitions | None:
    tuple_obs = isinstance(episode.observations, list | tuple)
    columns = [np.asarray(o) for o in episode.observations] if tuple_obs else [np.asarray(episode.observations)]
    actions = np.asarray(episode.actions)
    rewards = np.asarray(episode.rewards)
    size = len(actions)
    if rewards.reshape(len(rewards), -1).shape[1:] != (1,) or len(rewards) != size:
        raise ValueError(
            f"{source}: field 'rewards' of episode {index}: expected shape ({size}, 1), found {rewards.shape}"
        )
    for column in columns:
        if len(column) != size:
            raise ValueError(
                f"{source}: field 'observations' of episode {index}: expected {size} rows (its actions), "
                f"found {len(column)}"
            )
    terminated = bool(episode.terminated)
    n = size if terminated else size - 1  # d3rlpy's Episode.transition_count
    if n <= 0:
        return None

    def split(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if terminated:  # the terminal s' is not stored: s itself fills it (never bootstrapped from)
            nxt = np.concatenate([column[1:size], column[size - 1 : size]], axis=0)
            return column[:n], nxt
        return column[:n], column[1 : n + 1]

    pairs = [split(column) for column in columns]
    if tuple_obs:
        names = keys if keys is not None else [str(j) for j in range(len(columns))]
        if len(names) != len(columns):
            raise ValueError(
                f"observation_keys: expected {len(columns)} names (the episode's tuple observations), found {names}"
            )
        observations: Observations = {name: pair[0] for name, pair in zip(names, pairs, strict=True)}
        next_observations: Observations = {name: pair[1] for name, pair in zip(names, pairs, strict=True)}
    else:
        observations, next_observations = pairs[0]
    terminations = np.zeros(n, dtype=bool)
    truncations = np.zeros(n, dtype=bool)
    (terminations if terminated else truncations)[-1] = True
    return Transitions(
        observations=observations,
        actions=actions[:n],
        rewards=rewards.reshape(-1)[:n].astype(np.float32),
        next_observations=next_observations,
        terminations=terminations,
        truncations=truncations,
    )


def transitions_from_episodes(
    episodes: Iterable[Any],
    action_space: Any = None,
    observation_keys: Sequence[str] | None = None,
    source: str = "<d3rlpy episodes>",
    env_id: str | None = None,
) -> Transitions:
    """
    d3rlpy episodes (``Episode`` objects or anything with ``observations``, ``actions``, ``rewards`` and
    ``terminated``) as ``Transitions``; see :func:`from_d3rlpy`.
    """
    keys = list(observation_keys) if observation_keys is not None else None
    parts = []
    for index, episode in enumerate(episodes):
        part = _episode_transitions(
            Episode(episode.observations, episode.actions, episode.rewards, bool(episode.terminated)),
            keys,
            source,
            index,
        )
        if part is not None:
            parts.append(part)
    if not parts:
        raise ValueError(f"{source}: field 'episodes': expected at least one transition, found none")
    transitions = Transitions.concatenate(parts)
    actions = np.asarray(transitions.actions)
    if action_space is not None:
        low, high = _bounds(action_space)
        actions = actions.reshape(len(actions), *low.shape)
        actions = (low + 0.5 * (actions.astype(np.float64) + 1.0) * (high - low)).astype(np.float32)
    transitions.actions = actions
    transitions.source = source
    transitions.env_id = env_id
    return transitions


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


# ------------------------------------------------------------------------------------- ours -> d3rlpy
@dataclass
class _Rows:
    """d3rlpy's flat layout of a dataset: observations (one array, or a list for tuple observations),
    actions, rewards ``(size, 1)``, terminals, timeouts (each ``(size,)`` float32)."""

    observations: np.ndarray | list[np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    keys: list[str] | None

    def episodes(self) -> list[Episode]:
        ends = np.flatnonzero((self.terminals > 0) | (self.timeouts > 0))
        episodes, start = [], 0
        for end in ends:
            part = slice(start, int(end) + 1)
            obs = (
                [o[part] for o in self.observations] if isinstance(self.observations, list) else self.observations[part]
            )
            episodes.append(Episode(obs, self.actions[part], self.rewards[part], bool(self.terminals[end])))
            start = int(end) + 1
        return episodes


def _as_d3rlpy_array(array: Any) -> np.ndarray:
    array = np.asarray(array)
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array


def _rows(transitions: Transitions, action_space: Any, exact_next_observations: bool) -> _Rows:
    n = len(transitions)
    if n == 0:
        raise ValueError(f"{transitions.source}: field 'actions': expected at least one transition, found 0")
    keys = sorted(transitions.observations) if isinstance(transitions.observations, dict) else None

    def columns(observations: Observations, field: str) -> list[np.ndarray]:
        if keys is None:
            assert not isinstance(observations, dict)
            parts = [_as_d3rlpy_array(observations)]
        else:
            assert isinstance(observations, dict)
            parts = [_as_d3rlpy_array(observations[key]) for key in keys]
        if obs_len(observations) != n:
            raise ValueError(
                f"{transitions.source}: field '{field}': expected {n} rows (the length of 'actions'), "
                f"found {obs_len(observations)}"
            )
        return parts

    obs = columns(transitions.observations, "observations")
    next_obs = columns(transitions.next_observations, "next_observations")
    actions = np.asarray(transitions.actions)
    if action_space is not None:
        low, high = (bound.astype(np.float32) for bound in _bounds(action_space))
        scaled = 2.0 * (actions.reshape(n, *low.shape).astype(np.float32) - low) / (high - low) - 1.0
        actions = np.clip(scaled, -1.0, 1.0)
    actions = _as_d3rlpy_array(actions)
    if actions.ndim != 2:
        actions = actions.reshape(n, -1)  # d3rlpy: (T, action_size)
    rewards = np.asarray(transitions.rewards, dtype=np.float32).reshape(-1)
    terminations = np.asarray(transitions.terminations, dtype=bool)
    ends = terminations | np.asarray(transitions.truncations, dtype=bool)
    if exact_next_observations and n > 1:
        for o, s in zip(obs, next_obs, strict=True):
            ends[:-1] |= np.any((s[:-1] != o[1:]).reshape(n - 1, -1), axis=1)
    ends[-1] = True  # a trailing episode that nothing closes: its last s' is known, so it is kept
    extra = ends & ~terminations
    rows = np.arange(n) + np.cumsum(extra) - extra  # where row i goes once the extra rows are inserted
    size = n + int(extra.sum())

    def place(column: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        out = np.empty((size, *column.shape[1:]), dtype=column.dtype)
        out[rows] = column
        out[rows[extra] + 1] = nxt[extra]
        return out

    placed = [place(o, s) for o, s in zip(obs, next_obs, strict=True)]
    out_actions = np.zeros((size, *actions.shape[1:]), dtype=actions.dtype)
    out_rewards = np.zeros((size, 1), dtype=np.float32)
    out_terminals = np.zeros(size, dtype=np.float32)
    out_timeouts = np.zeros(size, dtype=np.float32)
    out_actions[rows], out_rewards[rows, 0] = actions, rewards
    out_terminals[rows[terminations]] = 1.0
    out_timeouts[rows[extra] + 1] = 1.0
    return _Rows(placed if keys is not None else placed[0], out_actions, out_rewards, out_terminals, out_timeouts, keys)


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

    rows = _rows(transitions, action_space, exact_next_observations)
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
def is_d3rlpy_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an HDF5 file written by d3rlpy's ``dump`` (2.x, or 1.x's ``episode_terminals`` layout)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return ("columns" in f and "num_episodes" in f) or "episode_terminals" in f
    except OSError:  # not HDF5: the HDF5 loader reports it
        return False


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_d3rlpy(
    path: str | os.PathLike, action_space: Any = None, observation_keys: Sequence[str] | None = None
) -> Transitions:
    """
    Read an ``.h5`` file written by d3rlpy's ``ReplayBuffer.dump`` / ``MDPDataset.dump`` (or by
    :func:`save_d3rlpy`), with ``h5py`` only; see :func:`from_d3rlpy` for the conventions.

    :param path: the file
    :param action_space: the env's ``Box`` when the file holds actions rescaled to [-1, 1] (default: the bounds
        :func:`save_d3rlpy` recorded, if any; else actions are kept as stored)
    :param observation_keys: names for tuple observations (default: the keys :func:`save_d3rlpy` recorded)
    """
    import h5py

    source = str(path)
    episodes: list[Episode] = []
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        if "columns" in f and "num_episodes" in f:
            version = _text(f["version"][()]) if "version" in f else "?"
            if version == "2.0":
                raise ValueError(
                    f"{source}: field 'version': expected a d3rlpy dump of version 2.1, found 2.0 (obsolete)"
                )
            columns = [_text(c) for c in f["columns"][()]]
            missing = [c for c in COLUMNS if c not in columns]
            if missing:
                raise ValueError(f"{source}: field 'columns': expected {list(COLUMNS)}, found {columns}")
            for i in range(int(f["num_episodes"][()])):
                data: dict[str, Any] = {}
                for key in COLUMNS:
                    if f"{key}_{i}" in f:
                        data[key] = f[f"{key}_{i}"][()]
                    elif f"{key}_{i}_0" in f:
                        parts, j = [], 0
                        while f"{key}_{i}_{j}" in f:
                            parts.append(f[f"{key}_{i}_{j}"][()])
                            j += 1
                        data[key] = parts
                    else:
                        raise ValueError(f"{source}: field '{key}_{i}': expected a dataset, found none")
                episodes.append(
                    Episode(data["observations"], data["actions"], data["rewards"], bool(data["terminated"]))
                )
        elif "episode_terminals" in f:  # d3rlpy 1.x MDPDataset.dump: flat rows (d3rlpy.dataset.io.load_v1)
            for key in ("observations", "actions", "rewards", "terminals"):
                if key not in f:
                    raise ValueError(f"{source}: field '{key}': expected a dataset (d3rlpy 1.x layout), found none")
            terminals = np.asarray(f["terminals"][()]).reshape(-1)
            timeouts = np.logical_and(np.logical_not(terminals), np.asarray(f["episode_terminals"][()]).reshape(-1))
            rewards = np.asarray(f["rewards"][()]).reshape(-1, 1)
            flat = _Rows(f["observations"][()], f["actions"][()], rewards, terminals, timeouts.astype(np.float32), None)
            episodes = flat.episodes()
        else:
            raise ValueError(
                f"{source}: expected a d3rlpy dump (datasets 'columns', 'num_episodes', 'version'), "
                f"found keys {sorted(f)}"
            )
    keys = observation_keys
    if keys is None and _KEYS_ATTR in attrs:
        keys = [_text(k) for k in np.atleast_1d(attrs[_KEYS_ATTR])]
    if action_space is None and _LOW_ATTR in attrs:
        action_space = _BoundsOnly(np.asarray(attrs[_LOW_ATTR]), np.asarray(attrs[_HIGH_ATTR]))
    env_id = _text(attrs["env_id"]) if "env_id" in attrs else None
    transitions = transitions_from_episodes(episodes, action_space, keys, source=source, env_id=env_id)
    for key in ("ref_min_score", "ref_max_score"):
        if key in attrs:
            transitions.metadata[key] = float(attrs[key])
    return transitions


@dataclass
class _BoundsOnly:
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

    from sb3_offline.datasets.writers import atomic_path

    rows = _rows(transitions, action_space, exact_next_observations)
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
            low, high = _bounds(action_space)
            h5.attrs[_LOW_ATTR], h5.attrs[_HIGH_ATTR] = low, high
        if transitions.env_id:
            h5.attrs["env_id"] = transitions.env_id
        for key in ("ref_min_score", "ref_max_score"):
            if key in transitions.metadata:
                h5.attrs[key] = float(transitions.metadata[key])
    return final


__all__ = [
    "DATASET_VERSION",
    "Episode",
    "from_d3rlpy",
    "is_d3rlpy_file",
    "load_d3rlpy",
    "require_d3rlpy",
    "save_d3rlpy",
    "to_mdp_dataset",
    "transitions_from_episodes",
]
