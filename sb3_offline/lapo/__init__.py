from sb3_offline.lapo.lapo import LAPO
from sb3_offline.lapo.policies import LAPOPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["LAPO", "LAPOPolicy", "MlpPolicy", "MultiInputPolicy"]
