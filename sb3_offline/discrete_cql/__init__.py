"""DiscreteCQL: Conservative Q-Learning for discrete actions, on DQN or QR-DQN."""

from sb3_offline.discrete_cql.discrete_cql import DiscreteCQL

__all__ = ["DiscreteCQL"]
