from sb3_offline.bcq.bcq import BCQ
from sb3_offline.bcq.policies import BCQPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["BCQ", "BCQPolicy", "MlpPolicy", "MultiInputPolicy"]
