from sb3_offline.awac.awac import AWAC
from sb3_offline.awac.policies import AWACPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.common.gaussian_actor import GaussianActor

__all__ = ["AWAC", "AWACPolicy", "GaussianActor", "MlpPolicy", "MultiInputPolicy"]
