from sb3_offline.lapo import rewards  # noqa: F401 (registers the reward rules "max" and "max_abs")
from sb3_offline.lapo.lapo import LAPO
from sb3_offline.lapo.policies import LAPOPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["LAPO", "LAPOPolicy", "MlpPolicy", "MultiInputPolicy"]
