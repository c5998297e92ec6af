from sb3_offline.lapo.lapo import LAPO
from sb3_offline.lapo.policies import LAPOPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.lapo.rewards import PRESETS  # also registers the reward rules "max", "max_abs", ...

__all__ = ["LAPO", "PRESETS", "LAPOPolicy", "MlpPolicy", "MultiInputPolicy"]
