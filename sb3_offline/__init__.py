"""sb3-offline: offline (batch) reinforcement learning for stable-baselines3."""

from sb3_offline.awac import AWAC
from sb3_offline.batch_ddpg import BatchDDPG
from sb3_offline.bc import BC
from sb3_offline.bcq import BCQ
from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.calql import CalQL
from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.cql import CQL
from sb3_offline.datasets import DatasetValidationError, Transitions
from sb3_offline.discrete_bc import DiscreteBC
from sb3_offline.discrete_bcq import DiscreteBCQ
from sb3_offline.discrete_cql import DiscreteCQL
from sb3_offline.discrete_iql import DiscreteIQL
from sb3_offline.edac import EDAC, SACN
from sb3_offline.exporting import export
from sb3_offline.iql import IQL
from sb3_offline.lapo import LAPO
from sb3_offline.plas import PLAS
from sb3_offline.rebrac import ReBRAC
from sb3_offline.td3bc import TD3BC

__version__ = "0.1.0"

__all__ = [
    "AWAC",
    "BC",
    "BCQ",
    "CQL",
    "EDAC",
    "IQL",
    "LAPO",
    "PLAS",
    "SACN",
    "TD3BC",
    "BatchDDPG",
    "CalQL",
    "DatasetValidationError",
    "DiscreteBC",
    "DiscreteBCQ",
    "DiscreteCQL",
    "DiscreteIQL",
    "OfflineAlgorithm",
    "OfflineReplayBuffer",
    "ReBRAC",
    "Transitions",
    "__version__",
    "export",
]
