from sb3_offline.discrete_bc.discrete_bc import DiscreteBC
from sb3_offline.discrete_bc.policies import DiscreteBCPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["DiscreteBC", "DiscreteBCPolicy", "MlpPolicy", "MultiInputPolicy"]
