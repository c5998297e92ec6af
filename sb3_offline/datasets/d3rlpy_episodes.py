"""
d3rlpy's episodes and our transitions, both ways, with numpy alone (the rules are in
:mod:`sb3_offline.datasets.d3rlpy`'s docstring): an episode of ``T`` rows holds ``T`` transitions when it
terminated and ``T - 1`` when it timed out; :func:`flat_rows` lays our transitions out as d3rlpy's flat rows
(one extra row closing each episode that does not terminate), which :meth:`FlatRows.episodes` cuts into episodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sb3_offline.common.observations import obs_len
from sb3_offline.datasets.transitions import Observations, Transitions


@dataclass
class Episode:
    """One d3rlpy episode as arrays: ``observations`` ``(T, ...)`` (or a list of such arrays), ``actions``
    ``(T, ...)``, ``rewards`` ``(T, 1)``, and whether it ``terminated`` (else it timed out)."""

    observations: np.ndarray | list[np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool


def action_bounds(action_space: Any) -> tuple[np.ndarray, np.ndarray]:
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
        low, high = action_bounds(action_space)
        actions = actions.reshape(len(actions), *low.shape)
        actions = (low + 0.5 * (actions.astype(np.float64) + 1.0) * (high - low)).astype(np.float32)
    transitions.actions = actions
    transitions.source = source
    transitions.env_id = env_id
    return transitions


# ------------------------------------------------------------------------------------- ours -> d3rlpy
@dataclass
class FlatRows:
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


def flat_rows(transitions: Transitions, action_space: Any, exact_next_observations: bool) -> FlatRows:
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
        low, high = (bound.astype(np.float32) for bound in action_bounds(action_space))
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
    return FlatRows(
        placed if keys is not None else placed[0], out_actions, out_rewards, out_terminals, out_timeouts, keys
    )


__all__ = ["Episode", "FlatRows", "action_bounds", "flat_rows", "transitions_from_episodes"]
