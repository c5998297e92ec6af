"""
The reward rules of LAPO's authors (``pcchenxi/LAPO-offlienRL``, ``main_d4rl.py``, lines 108-115):
``dataset['rewards'] / dataset['rewards'].max()`` for every D4RL task but AntMaze, registered as
``reward_transform="max"``, with its sign-safe forms ``"max_abs"`` and ``"max_else_max_abs"`` (LAPO's default);
AntMaze's ``r * 100`` as ``"lapo_antmaze"``, part of the preset :data:`PRESETS` ``["antmaze"]``
(:mod:`sb3_offline.buffers.rewards` resolves the names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sb3_offline.buffers.rewards import RewardTransform, dataset_needed, register_reward_rule

#: The authors' settings of a family of tasks, as constructor arguments: ``LAPO(..., **PRESETS["antmaze"])``.
#: ``"antmaze"``: ``main_d4rl.py``'s AntMaze branch (rewards ``r * 100``, V's target clamped to
#: ``[min_v, max_v] = [0, 100]``, lines 108-111; also in ``main_d4rl_finetune.py`` on branch ``finetune``, for
#: the dataset's and every online reward, lines 131-134, 187-188 and 203-205) and the README's AntMaze command
#: (``--doubleq_min 0.7``). Their AntMaze rewards are D4RL's: 1 at the goal, else 0.
PRESETS: dict[str, dict[str, Any]] = {
    "antmaze": {"reward_transform": "lapo_antmaze", "value_bounds": (0.0, 100.0), "doubleq_min": 0.7},
}


def _divide_by(rewards: np.ndarray | None, rule: str) -> RewardTransform:
    values = np.asarray(dataset_needed(rule, rewards), dtype=np.float64)
    largest = float(values.max()) if rule == "max" else float(np.abs(values).max())
    if not largest > 0.0:
        expected = "a largest reward > 0" if rule == "max" else "a reward != 0"
        hint = "; 'max_abs' divides by max |r|" if rule == "max" else ""
        raise ValueError(
            f"reward_transform: {rule!r} expected {expected}, found rewards in "
            f"[{float(values.min())}, {float(values.max())}]{hint}"
        )
    return RewardTransform(scale=1.0 / largest, shift=0.0)


def max_reward(rewards: np.ndarray | None, episode_ends: np.ndarray | None) -> RewardTransform:
    """``r' = r / max r``; it needs a dataset whose largest reward is > 0 (else it would flip signs or divide by 0)."""
    return _divide_by(rewards, "max")


def max_abs_reward(rewards: np.ndarray | None, episode_ends: np.ndarray | None) -> RewardTransform:
    """
    ``r' = r / max |r|``: the same as ``"max"`` whenever ``max r >= |min r|`` (rewards >= 0, or a largest reward that
    dominates), and defined for any data with a reward != 0 (Pendulum's are all <= 0).
    """
    return _divide_by(rewards, "max_abs")


def max_else_max_abs_reward(rewards: np.ndarray | None, episode_ends: np.ndarray | None) -> RewardTransform:
    """
    The authors' ``r' = r / max r`` wherever it is defined (the largest reward is > 0), else ``r / max |r|`` (data
    whose rewards are all <= 0, such as Pendulum's, where dividing by the maximum would flip the signs or divide
    by 0). LAPO's default.
    """
    values = dataset_needed("max_else_max_abs", rewards)
    return _divide_by(values, "max" if float(np.max(values)) > 0.0 else "max_abs")


def lapo_antmaze_reward(rewards: np.ndarray | None, episode_ends: np.ndarray | None) -> RewardTransform:
    """``r' = 100 r``, the authors' AntMaze rule (whatever the data, so also without a dataset)."""
    return RewardTransform(scale=100.0, shift=0.0)


def widened_range(reward_range: tuple[float, float] | None, rewards: np.ndarray) -> tuple[float, float]:
    """``reward_range`` (``(smallest, largest)`` or ``None``) widened to hold ``rewards`` (the authors' fine-tuning)."""
    low, high = float(np.min(rewards)), float(np.max(rewards))
    return (low, high) if reward_range is None else (min(low, reward_range[0]), max(high, reward_range[1]))


register_reward_rule("max", max_reward)
register_reward_rule("max_abs", max_abs_reward)
register_reward_rule("max_else_max_abs", max_else_max_abs_reward)
register_reward_rule("lapo_antmaze", lapo_antmaze_reward)
