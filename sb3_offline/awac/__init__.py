from sb3_offline.awac.awac import AWAC
from sb3_offline.awac.policies import AWACPolicy, GaussianActor, MlpPolicy, MultiInputPolicy

__all__ = ["AWAC", "AWACPolicy", "GaussianActor", "MlpPolicy", "MultiInputPolicy"]
