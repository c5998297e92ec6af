"""DiscreteIQL: Implicit Q-Learning with a softmax policy over discrete actions."""

from sb3_offline.discrete_iql.discrete_iql import DiscreteIQL

__all__ = ["DiscreteIQL"]
