"""
The reward rules of IQL's authors (``ikostrikov/implicit_q_learning``, ``train_offline.py``), registered as
``reward_transform="iql_locomotion"`` and ``"antmaze"`` (:mod:`sb3_offline.buffers.rewards`).
"""

from __future__ import annotations

import numpy as np

from sb3_offline.buffers.rewards import RewardTransform, dataset_needed, register_reward_rule
from sb3_offline.common.episodes import episode_returns


def iql_locomotion(rewards: np.ndarray | None, episode_ends: np.ndarray | None) -> RewardTransform:
    """
    ``r' = r / (max episode return - min episode return) * 1000``, the rule for the locomotion tasks
    (``normalize``: the dataset is split into trajectories at its ``dones_float`` (a termination, a time-limit cut
    or the end of the data: the buffer's episodes), each trajectory's return is the plain sum of its rewards, and
    the rewards are divided by the spread between the best and the worst trajectory, then multiplied by 1000).
    """
    returns = episode_returns(dataset_needed("iql_locomotion", rewards), episode_ends)  # type: ignore[arg-type]
    spread = float(returns.max() - returns.min())
    if not spread > 0.0:
        raise ValueError(
            f"reward_transform: 'iql_locomotion' expected episode returns with max > min, found "
            f"max = min = {float(returns.max())} over {len(returns)} episode(s)"
        )
    return RewardTransform(scale=1000.0 / spread, shift=0.0)


def antmaze(rewards: np.ndarray | None, episode_ends: np.ndarray | None) -> RewardTransform:
    """``r' = r - 1``, the rule for AntMaze (whatever the data, so also without a dataset)."""
    return RewardTransform(scale=1.0, shift=-1.0)


register_reward_rule("iql_locomotion", iql_locomotion)
register_reward_rule("antmaze", antmaze)
