from sb3_offline.edac.edac import EDAC, SACN
from sb3_offline.edac.policies import EDACPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["EDAC", "SACN", "EDACPolicy", "MlpPolicy", "MultiInputPolicy"]
