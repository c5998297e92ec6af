from sb3_offline.discrete_bcq.discrete_bcq import DiscreteBCQ
from sb3_offline.discrete_bcq.policies import DiscreteBCQPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["DiscreteBCQ", "DiscreteBCQPolicy", "MlpPolicy", "MultiInputPolicy"]
