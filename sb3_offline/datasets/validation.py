"""Check a dataset against the environment's spaces before anything trains on it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from gymnasium import spaces

from sb3_offline.datasets.transitions import Transitions

#: Default tolerance on action bounds, as a fraction of each dimension's range ``high - low``.
DEFAULT_ACTION_BOUND_TOLERANCE = 1e-3

#: Arrays are checked (and converted) this many bytes of rows at a time, so that no check needs a temporary
#: array the size of the dataset.
CHUNK_BYTES = 1 << 22


class DatasetValidationError(ValueError):
    """
    A dataset is not what it should be: a field does not fit the environment it is meant to train an agent for
    (``field`` names it, as the source spells it), or the file cannot be read as its format at all (``field``
    is ``""``: a truncated download, another format under the suffix, ...).
    """

    def __init__(self, source: str, field: str, expected: str, found: str, hint: str = "") -> None:
        self.source = source
        self.field = field
        self.expected = expected
        self.found = found
        self.hint = hint
        where = f"{source}: field '{field}'" if field else source
        message = f"{where}: expected {expected}, found {found}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str, str]]:
        return (type(self), (self.source, self.field, self.expected, self.found, self.hint))


def row_chunks(array: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> Iterator[slice]:
    """Slices of ``array``'s rows, about ``chunk_bytes`` each (at least one row), in order."""
    n = len(array)
    row_bytes = array[:1].nbytes if n else 1
    step = max(1, chunk_bytes // max(row_bytes, 1))
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _check_finite(source: str, field: str, array: np.ndarray) -> None:
    if not np.issubdtype(array.dtype, np.floating):
        return
    for rows in row_chunks(array):
        finite = np.isfinite(array[rows])
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            bad[0] += rows.start
            raise DatasetValidationError(
                source, field, "finite values", f"{array[tuple(bad)]} at index {tuple(int(i) for i in bad)}"
            )


def _check_flags(source: str, field: str, array: np.ndarray, n: int, copy: bool = True) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != (n,):
        raise DatasetValidationError(source, field, f"shape ({n},)", f"shape {array.shape}")
    if array.dtype != bool and not np.all((array == 0) | (array == 1)):
        bad = np.flatnonzero((array != 0) & (array != 1))[0]
        raise DatasetValidationError(source, field, "0/1 flags", f"{array[bad]} at index {bad}")
    return array.astype(bool, copy=copy)


def _check_observations(source: str, field: str, observations: object, space: spaces.Space, n: int) -> None:
    if isinstance(space, spaces.Dict):
        if not isinstance(observations, dict):
            raise DatasetValidationError(
                source, field, f"a dict with keys {sorted(space.spaces)}", f"{type(observations).__name__}"
            )
        if set(observations) != set(space.spaces):
            raise DatasetValidationError(source, field, f"keys {sorted(space.spaces)}", f"keys {sorted(observations)}")
        for key, subspace in space.spaces.items():
            _check_observations(source, f"{field}/{key}", observations[key], subspace, n)
        return
    if isinstance(observations, dict):
        raise DatasetValidationError(
            source, field, f"an array for a {type(space).__name__} space", f"a dict with keys {sorted(observations)}"
        )
    array = np.asarray(observations)
    if len(array) != n:
        raise DatasetValidationError(source, field, f"{n} rows (the length of 'actions')", f"{len(array)} rows")
    expected_shape = (n, *space.shape) if space.shape is not None else None
    if expected_shape is not None and array.shape != expected_shape:
        raise DatasetValidationError(source, field, f"shape {expected_shape}", f"shape {array.shape}")
    _check_finite(source, field, array)


def validate_transitions(
    transitions: Transitions,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    action_bound_tolerance: float = DEFAULT_ACTION_BOUND_TOLERANCE,
    copy: bool = True,
) -> Transitions:
    """
    Check ``transitions`` against the spaces and return a normalised copy (rewards ``(N,)`` float32,
    flags bool, Box actions clipped into the Box once they are known to be inside the tolerance, Discrete
    actions int64 indices ``(N,)``: :func:`discrete_actions`).

    Fails with :class:`DatasetValidationError` (field, expected, found) on: empty data, mismatched
    lengths, wrong shapes or dict keys, NaN/inf, flags other than 0/1, and actions outside the action
    Box by more than ``action_bound_tolerance * (high - low)`` (Discrete: see :func:`discrete_actions`). A field
    is named as the source spells it (:meth:`Transitions.source_field`: ``terminals`` in a D4RL file,
    ``terminations`` in Minari).

    The checks read the arrays a chunk of rows at a time: no temporary is the size of the data. Observations
    are never copied (the result holds the same arrays).

    :param transitions: the data
    :param observation_space: the environment's observation space (``Box`` or ``Dict`` of ``Box``)
    :param action_space: the environment's action space (a bounded ``Box``, or a ``Discrete``)
    :param action_bound_tolerance: allowed overshoot of the action bounds, as a fraction of the range
    :param copy: ``False``: ``transitions``' arrays may be changed and reused in place (float32 actions
        clipped where they are, float32 rewards and bool flags returned as they are); for data read from a
        file that nothing else holds
    :return: the validated transitions
    """
    source = transitions.source
    name = transitions.source_field
    n = len(transitions.actions)
    if n == 0:
        raise DatasetValidationError(source, name("actions"), "at least one transition", "0 transitions")
    if not isinstance(action_space, spaces.Box | spaces.Discrete):
        raise DatasetValidationError(
            source, "action_space", "a gymnasium.spaces.Box or Discrete", type(action_space).__name__
        )

    for field in ("rewards", "terminations", "truncations"):
        length = len(np.asarray(getattr(transitions, field)))
        if length != n:
            raise DatasetValidationError(
                source, name(field), f"{n} rows (the length of '{name('actions')}')", f"{length} rows"
            )

    _check_observations(source, name("observations"), transitions.observations, observation_space, n)
    _check_observations(source, name("next_observations"), transitions.next_observations, observation_space, n)

    if isinstance(action_space, spaces.Discrete):
        clipped = discrete_actions(source, name("actions"), transitions.actions, action_space, n)
    else:
        clipped = _box_actions(
            source, name("actions"), transitions.actions, action_space, n, action_bound_tolerance, copy
        )

    rewards = np.asarray(transitions.rewards)
    if rewards.ndim == 2 and rewards.shape[1] == 1:
        rewards = rewards[:, 0]
    if rewards.shape != (n,):
        raise DatasetValidationError(source, name("rewards"), f"shape ({n},)", f"shape {rewards.shape}")
    _check_finite(source, name("rewards"), rewards)

    terminations = _check_flags(source, name("terminations"), np.asarray(transitions.terminations), n, copy)
    truncations = _check_flags(source, name("truncations"), np.asarray(transitions.truncations), n, copy)

    return Transitions(
        observations=transitions.observations,
        actions=clipped,
        rewards=rewards.astype(np.float32, copy=copy),
        next_observations=transitions.next_observations,
        terminations=terminations,
        truncations=truncations,
        source=source,
        env_id=transitions.env_id,
        metadata=dict(transitions.metadata),
    )


def _box_actions(
    source: str, field: str, values: np.ndarray, action_space: spaces.Box, n: int, tolerance: float, copy: bool
) -> np.ndarray:
    """Box actions checked against the bounds (within ``tolerance`` of the range) and clipped into them, float32."""
    actions = np.asarray(values)
    if actions.ndim == 1 and action_space.shape == (1,):
        actions = actions[:, None]
    if actions.shape != (n, *action_space.shape):
        raise DatasetValidationError(source, field, f"shape {(n, *action_space.shape)}", f"shape {actions.shape}")
    _check_finite(source, field, actions)
    low, high = action_space.low.astype(np.float64), action_space.high.astype(np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise DatasetValidationError(
            source, "action_space", "finite bounds (actions are rescaled to [-1, 1])", f"low={low}, high={high}"
        )
    margin = tolerance * (high - low)
    in_place = not copy and actions.dtype == np.float32 and actions.flags.writeable
    clipped = actions if in_place else np.empty(actions.shape, dtype=np.float32)
    for rows in row_chunks(actions):
        block = actions[rows].astype(np.float64)
        outside = (block < low - margin) | (block > high + margin)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            index = (index[0] + rows.start, *index[1:])
            dim = index[1:]
            raise DatasetValidationError(
                source,
                field,
                f"values in the action space [{low[dim]}, {high[dim]}] (tolerance {margin[dim]:.3g})",
                f"{actions[index]} at index {index}",
                hint="Were the actions saved rescaled to [-1, 1], or for another environment?",
            )
        np.clip(block, low, high, out=block)
        clipped[rows] = block
    return clipped


def discrete_actions(source: str, field: str, values: np.ndarray, action_space: spaces.Discrete, n: int) -> np.ndarray:
    """
    Discrete actions as an int64 array ``(n,)`` of indices in ``0..action_space.n - 1``: shape ``(n,)`` or
    ``(n, 1)``, integers or integral floats (converted). A one-hot array ``(n, action_space.n)``, a float that is
    not an integer, a value outside the range, or a space whose ``start`` is not 0 raise a
    :class:`DatasetValidationError` naming ``field``.
    """
    count = int(action_space.n)
    if int(action_space.start) != 0:
        raise DatasetValidationError(
            source, "action_space", "a Discrete space starting at 0 (as SB3's DQN)", f"start={action_space.start}"
        )
    actions = np.asarray(values)
    if actions.ndim == 2 and actions.shape[1] == 1:
        actions = actions[:, 0]
    if actions.shape != (n,):
        one_hot = actions.ndim == 2 and actions.shape == (n, count)
        raise DatasetValidationError(
            source,
            field,
            f"shape ({n},) or ({n}, 1): one action index in 0..{count - 1} per transition",
            f"shape {actions.shape}" + (" (one-hot rows?)" if one_hot else ""),
            hint="Store the index of each action (one-hot rows: actions.argmax(axis=1))" if one_hot else "",
        )
    if actions.dtype == bool or not np.issubdtype(actions.dtype, np.number):
        raise DatasetValidationError(
            source, field, f"integer action indices in 0..{count - 1}", f"dtype {actions.dtype}"
        )
    if np.issubdtype(actions.dtype, np.floating):
        _check_finite(source, field, actions)
        fractional = actions != np.round(actions)
        if fractional.any():
            bad = int(np.flatnonzero(fractional)[0])
            raise DatasetValidationError(
                source, field, f"integer action indices in 0..{count - 1}", f"{actions[bad]} at index {bad}"
            )
    outside = (actions < 0) | (actions >= count)
    if outside.any():
        bad = int(np.flatnonzero(outside)[0])
        raise DatasetValidationError(
            source,
            field,
            f"action indices in 0..{count - 1} (the env's Discrete({count}))",
            f"{actions[bad]} at index {bad}",
        )
    return actions.astype(np.int64)
