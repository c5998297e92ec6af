"""
The replay buffer that holds a dataset: :class:`OfflineReplayBuffer` over its pieces (the tensors, the episode index,
the online ring) and the reward transforms it applies.
"""

from sb3_offline.buffers.offline import OfflineReplayBuffer
from sb3_offline.buffers.rewards import (
    REWARD_RULES,
    RewardTransform,
    RewardTransformSpec,
    register_reward_rule,
    resolve_reward_transform,
)

__all__ = [
    "REWARD_RULES",
    "OfflineReplayBuffer",
    "RewardTransform",
    "RewardTransformSpec",
    "register_reward_rule",
    "resolve_reward_transform",
]
