from sb3_offline.calql.calql import CalQL
from sb3_offline.calql.policies import CalQLPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CalQL", "CalQLPolicy", "MlpPolicy", "MultiInputPolicy"]
