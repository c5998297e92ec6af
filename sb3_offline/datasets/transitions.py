"""The in-memory form every dataset source is turned into: flat arrays of transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sb3_offline.common.episodes import episode_bounds
from sb3_offline.common.observations import map_obs, obs_concatenate, obs_index

Observations = np.ndarray | dict[str, np.ndarray]

#: The key of ``Transitions.metadata`` holding how the source spells our field names (see ``source_field``).
FIELD_NAMES = "field_names"
#: The keys of ``Transitions.metadata`` (and of the files' attributes) holding D4RL's reference scores, the bounds
#: of the normalized score.
REFERENCE_SCORES = ("ref_min_score", "ref_max_score")


@dataclass
class Transitions:
    """
    A dataset as flat, aligned arrays of ``N`` transitions ``(s, a, r, s', termination, truncation)``.

    ``terminations[i]`` means the episode *ended* at transition ``i`` (no bootstrapping from ``s'``);
    ``truncations[i]`` means it was *cut* there (a time limit: the target still bootstraps from ``s'``).
    Either one closes an episode. Actions are in the environment's units (not rescaled).

    :param observations: ``(N, *obs_shape)``, or a dict of such arrays for ``Dict`` observation spaces
    :param actions: ``(N, *action_shape)``
    :param rewards: ``(N,)``
    :param next_observations: same layout as ``observations``
    :param terminations: ``(N,)`` bool
    :param truncations: ``(N,)`` bool
    :param source: where the data came from, used in error messages
    :param env_id: the gymnasium id of the environment that produced the data, when known
    :param metadata: anything else the source recorded (reference scores, ...); under ``"field_names"``, how
        the source spells a field whose name differs from ours (``{"terminations": "terminals"}`` for D4RL's
        layout), used in error messages (:meth:`source_field`)
    """

    observations: Observations
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: Observations
    terminations: np.ndarray
    truncations: np.ndarray
    source: str = "<in-memory>"
    env_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    def source_field(self, name: str) -> str:
        """How the source spells field ``name`` (``"terminals"`` for ``"terminations"`` in a D4RL file)."""
        return str(self.metadata.get(FIELD_NAMES, {}).get(name, name))

    @property
    def episode_ends(self) -> np.ndarray:
        """Bool mask of the transitions that close an episode (termination or truncation)."""
        return np.logical_or(self.terminations, self.truncations)

    def episode_slices(self) -> list[slice]:
        """
        The episodes, as slices in order. A trailing run of transitions that no termination or
        truncation closes (collection stopped mid-episode) is returned as a last episode too.
        """
        starts, lengths = episode_bounds(self.episode_ends)
        return [slice(int(start), int(start + length)) for start, length in zip(starts, lengths, strict=True)]

    def select(self, index: Any) -> Transitions:
        """A new ``Transitions`` holding only the rows picked by ``index`` (mask, slice or indices)."""
        return Transitions(
            observations=obs_index(self.observations, index),
            actions=self.actions[index],
            rewards=self.rewards[index],
            next_observations=obs_index(self.next_observations, index),
            terminations=self.terminations[index],
            truncations=self.truncations[index],
            source=self.source,
            env_id=self.env_id,
            metadata=dict(self.metadata),
        )

    @classmethod
    def concatenate(cls, parts: list[Transitions]) -> Transitions:
        """Join several ``Transitions`` (e.g. one per episode) in order."""
        if not parts:
            raise ValueError("Transitions.concatenate: got no parts to join")
        first = parts[0]
        return cls(
            observations=obs_concatenate([p.observations for p in parts]),
            actions=np.concatenate([p.actions for p in parts], axis=0),
            rewards=np.concatenate([p.rewards for p in parts], axis=0),
            next_observations=obs_concatenate([p.next_observations for p in parts]),
            terminations=np.concatenate([p.terminations for p in parts], axis=0),
            truncations=np.concatenate([p.truncations for p in parts], axis=0),
            source=first.source,
            env_id=first.env_id,
            metadata=dict(first.metadata),
        )


def derive_next_observations(
    observations: Observations,
    terminations: np.ndarray,
    truncations: np.ndarray,
) -> tuple[Observations, np.ndarray]:
    """
    Build ``next_observations`` for a source that stores only ``observations`` (D4RL's layout, where
    row ``i + 1`` holds the next state unless an episode ended at row ``i``).

    Never crosses an episode boundary:

    - inside an episode, ``s'_i = s_{i+1}``;
    - at a termination, ``s'`` is never bootstrapped from, so ``s'_i = s_i`` is a harmless filler;
    - at a truncation (time limit) the true ``s'`` is unknown (row ``i + 1`` starts the next
      episode), so the transition is dropped, as D4RL's ``qlearning_dataset`` does;
    - the dataset's last row, if not a termination, has no known successor and is dropped too.

    :return: ``(next_observations, keep)``, where ``keep`` is the bool mask of rows to keep.
    """
    terminations = np.asarray(terminations, dtype=bool)
    truncations = np.asarray(truncations, dtype=bool)
    n = len(terminations)
    keep = ~(truncations & ~terminations)
    if n > 0 and not terminations[-1]:
        keep[-1] = False

    def shift(array: np.ndarray) -> np.ndarray:
        nxt = np.empty_like(array)
        if n > 1:
            nxt[:-1] = array[1:]
        if n > 0:
            nxt[-1] = array[-1]
        nxt[terminations] = array[terminations]
        return nxt

    return map_obs(shift, observations), keep


def close_episodes_before_dropped(terminations: np.ndarray, truncations: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """
    Truncation flags after dropping the rows not in ``keep``: a kept row whose successor is dropped
    (or that is the last kept row) and that does not already end its episode now ends it, as a
    truncation (its ``s'`` is still right, so it bootstraps). Without this, the rows before a dropped
    timeout would run on into the next episode.
    """
    terminations = np.asarray(terminations, dtype=bool)
    truncations = np.asarray(truncations, dtype=bool).copy()
    keep = np.asarray(keep, dtype=bool)
    successor_dropped = np.ones_like(keep)
    successor_dropped[:-1] = ~keep[1:]
    closes = keep & successor_dropped & ~terminations & ~truncations
    truncations[closes] = True
    return truncations
