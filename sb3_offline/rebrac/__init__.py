from sb3_offline.rebrac.policies import MlpPolicy, MultiInputPolicy, ReBRACPolicy
from sb3_offline.rebrac.rebrac import ReBRAC

__all__ = ["MlpPolicy", "MultiInputPolicy", "ReBRAC", "ReBRACPolicy"]
