from sb3_offline.bc.bc import BC
from sb3_offline.bc.policies import BCPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["BC", "BCPolicy", "MlpPolicy", "MultiInputPolicy"]
