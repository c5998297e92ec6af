from sb3_offline.cql.cql import CQL
from sb3_offline.cql.policies import CQLPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CQL", "CQLPolicy", "MlpPolicy", "MultiInputPolicy"]
