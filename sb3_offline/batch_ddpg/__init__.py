from sb3_offline.batch_ddpg.batch_ddpg import BatchDDPG
from sb3_offline.batch_ddpg.policies import BatchDDPGPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["BatchDDPG", "BatchDDPGPolicy", "MlpPolicy", "MultiInputPolicy"]
