"""
Reward transforms: an affine ``r' = scale * r + shift`` the buffer applies to the dataset's and to every online
reward. A named rule is resolved once, from the dataset, into that affine form; the rules are defined by the
algorithms whose authors use them (IQL's in :mod:`sb3_offline.iql.rewards`, LAPO's in :mod:`sb3_offline.lapo.rewards`)
and registered here by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch as th


@dataclass(frozen=True)
class RewardTransform:
    """
    An affine reward transform ``r' = scale * r + shift``, the resolved form of every ``reward_transform`` an
    :class:`~sb3_offline.buffers.OfflineReplayBuffer` accepts. Applies to numpy arrays and torch tensors alike
    (their dtype and device are kept).

    :param scale: multiplies the reward (finite, not 0)
    :param shift: added after scaling (finite)
    """

    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        for name, value, nonzero in (("scale", self.scale, True), ("shift", self.shift, False)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise ValueError(f"reward_transform: expected a real number as {name}, found {value!r}")
            if not math.isfinite(float(value)) or (nonzero and float(value) == 0.0):
                expected = "a finite, non-zero scale" if nonzero else "a finite shift"
                raise ValueError(f"reward_transform: expected {expected}, found {name}={value!r}")
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "shift", float(self.shift))

    @overload
    def __call__(self, rewards: th.Tensor) -> th.Tensor: ...

    @overload
    def __call__(self, rewards: np.ndarray) -> np.ndarray: ...

    def __call__(self, rewards: np.ndarray | th.Tensor) -> np.ndarray | th.Tensor:
        """``scale * rewards + shift`` (same type and device as ``rewards``; same dtype if floating)."""
        if isinstance(rewards, th.Tensor):
            return rewards * self.scale + self.shift
        rewards = np.asarray(rewards)
        if not np.issubdtype(rewards.dtype, np.floating):
            rewards = rewards.astype(np.float64)
        return (rewards * self.scale + self.shift).astype(rewards.dtype, copy=False)

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.shift == 0.0

    def to_dict(self) -> dict[str, float]:
        """``dict(scale=..., shift=...)``: what ``reward_transform=`` accepts to rebuild exactly this transform."""
        return {"scale": self.scale, "shift": self.shift}


RewardTransformSpec = RewardTransform | dict[str, float] | str | None

#: a named rule: ``(rewards (N,) raw, episode_ends (N,) bool) -> RewardTransform``, both ``None`` without a dataset;
#: it raises ``ValueError`` (naming ``reward_transform``) on data it is not defined for
RewardRule = Callable[[np.ndarray | None, np.ndarray | None], RewardTransform]

#: the named rules, by name: each registered by the algorithm whose authors define it
REWARD_RULES: dict[str, RewardRule] = {}


def register_reward_rule(name: str, rule: RewardRule) -> RewardRule:
    """Make ``reward_transform=name`` resolve with ``rule`` (an algorithm's module registers its authors' rules)."""
    REWARD_RULES[name] = rule
    return rule


def resolve_reward_transform(
    spec: RewardTransformSpec,
    rewards: np.ndarray | None = None,
    episode_ends: np.ndarray | None = None,
) -> RewardTransform:
    """
    Turn what ``OfflineReplayBuffer(reward_transform=...)`` accepts into a :class:`RewardTransform`.

    - ``None``: the identity;
    - a ``RewardTransform``, or a dict ``dict(scale=a, shift=b)`` (either key may be left out; ``to_dict()``'s
      output): ``r' = a * r + b``, exactly, whatever the dataset;
    - a registered rule's name (:data:`REWARD_RULES`, registered by the algorithms: IQL's ``"iql_locomotion"`` and
      ``"antmaze"``, LAPO's ``"max"``, ``"max_abs"``, ...), resolved from the dataset's raw ``rewards`` and
      ``episode_ends``.

    :param spec: the ``reward_transform`` argument
    :param rewards: the dataset's raw rewards ``(N,)`` (for the rules computed from the dataset)
    :param episode_ends: ``(N,)`` bool, True on the rows that end an episode (termination or truncation)
    :raises ValueError: naming ``reward_transform``: an unknown rule or type, a bad scale/shift, a rule that
        needs a dataset without one, or data the rule is not defined for
    """
    if spec is None:
        return RewardTransform()
    if isinstance(spec, RewardTransform):
        return spec
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"scale", "shift"})
        if unknown:
            raise ValueError(f"reward_transform: expected a dict with keys 'scale' and 'shift', found keys {unknown}")
        return RewardTransform(scale=spec.get("scale", 1.0), shift=spec.get("shift", 0.0))
    if isinstance(spec, str) and spec in REWARD_RULES:
        if rewards is None or episode_ends is None or len(rewards) == 0:
            return REWARD_RULES[spec](None, None)
        return REWARD_RULES[spec](np.asarray(rewards), np.asarray(episode_ends, dtype=bool))
    if isinstance(spec, str):
        raise ValueError(f"reward_transform: expected one of {sorted(REWARD_RULES)}, found {spec!r}")
    raise ValueError(
        f"reward_transform: expected None, a RewardTransform, dict(scale=..., shift=...) or one of "
        f"{sorted(REWARD_RULES)}, found {spec!r}"
    )


def dataset_needed(rule: str, rewards: np.ndarray | None) -> np.ndarray:
    """The rewards a rule is computed from, or ``ValueError`` naming ``reward_transform`` when there is no dataset."""
    if rewards is None:
        raise ValueError(
            f"reward_transform: expected a dataset to compute {rule!r} from, found none; pass the resolved "
            "transform instead (dict(scale=..., shift=...))"
        )
    return rewards
