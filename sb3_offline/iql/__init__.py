from sb3_offline.iql import rewards  # noqa: F401 (registers the reward rules "iql_locomotion" and "antmaze")
from sb3_offline.iql.iql import IQL
from sb3_offline.iql.policies import IQLPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["IQL", "IQLPolicy", "MlpPolicy", "MultiInputPolicy"]
