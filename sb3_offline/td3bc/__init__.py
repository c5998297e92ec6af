from sb3_offline.td3bc.policies import MlpPolicy, MultiInputPolicy, TD3BCPolicy
from sb3_offline.td3bc.td3bc import TD3BC

__all__ = ["TD3BC", "MlpPolicy", "MultiInputPolicy", "TD3BCPolicy"]
