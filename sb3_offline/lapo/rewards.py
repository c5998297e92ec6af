"""
The reward rule of LAPO's authors (``pcchenxi/LAPO-offlienRL``, ``main_d4rl.py``:
``dataset['rewards'] / dataset['rewards'].max()`` for every D4RL task but AntMaze), registered as
``reward_transform="max"``, and its sign-safe form ``"max_abs"`` (:mod:`sb3_offline.buffers.rewards`).
"""

from __future__ import annotations

import numpy as np

from sb3_offline.buffers.rewards import RewardTransform, dataset_needed, register_reward_rule


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


register_reward_rule("max", max_reward)
register_reward_rule("max_abs", max_abs_reward)
