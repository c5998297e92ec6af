"""
Observations that are an array (a ``Box``) or a dict of arrays (a ``Dict`` of ``Box``), numpy or torch alike: the
one place that branches on the two, so the rest of the package does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def is_dict_obs(observations: Any) -> bool:
    """Whether ``observations`` is a dict of arrays (a ``Dict`` space's)."""
    return isinstance(observations, dict)


def map_obs(function: Callable[[Any], Any], observations: Any) -> Any:
    """``function`` applied to the array, or to every key's array."""
    if isinstance(observations, dict):
        return {key: function(value) for key, value in observations.items()}
    return function(observations)


def map_obs_pair(function: Callable[[Any, Any], Any], first: Any, second: Any) -> Any:
    """``function(first, second)`` on two observations of one layout, key by key for dicts."""
    if isinstance(first, dict):
        return {key: function(value, second[key]) for key, value in first.items()}
    return function(first, second)


def obs_len(observations: Any) -> int:
    """Number of rows of an observation array, or of the first key of a dict of arrays."""
    if isinstance(observations, dict):
        if not observations:
            return 0
        return len(next(iter(observations.values())))
    return len(observations)


def obs_index(observations: Any, index: Any) -> Any:
    """Index (or mask) the rows of an observation array or of every key of a dict of arrays (numpy or torch)."""
    return map_obs(lambda value: value[index], observations)


def obs_concatenate(parts: list[Any]) -> Any:
    """Concatenate numpy observation arrays (or dicts of arrays, key by key) along the first axis."""
    if isinstance(parts[0], dict):
        keys = parts[0].keys()
        return {key: np.concatenate([part[key] for part in parts], axis=0) for key in keys}
    return np.concatenate(parts, axis=0)


def obs_values(observations: Any) -> list[Any]:
    """The arrays of an observation: ``[array]`` or every key's, in order."""
    return list(observations.values()) if isinstance(observations, dict) else [observations]
