from sb3_offline.plas.plas import PLAS
from sb3_offline.plas.policies import LatentActor, MlpPolicy, MultiInputPolicy, PLASPolicy

__all__ = ["PLAS", "LatentActor", "MlpPolicy", "MultiInputPolicy", "PLASPolicy"]
