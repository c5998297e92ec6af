"""Name -> class of every algorithm, for the command line and the rl-zoo3 integration."""

from __future__ import annotations

from sb3_offline.awac import AWAC
from sb3_offline.batch_ddpg import BatchDDPG
from sb3_offline.bc import BC
from sb3_offline.bcq import BCQ
from sb3_offline.calql import CalQL
from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.cql import CQL
from sb3_offline.discrete_bc import DiscreteBC
from sb3_offline.discrete_bcq import DiscreteBCQ
from sb3_offline.discrete_cql import DiscreteCQL
from sb3_offline.discrete_iql import DiscreteIQL
from sb3_offline.edac import EDAC, SACN
from sb3_offline.iql import IQL
from sb3_offline.lapo import LAPO
from sb3_offline.plas import PLAS
from sb3_offline.rebrac import ReBRAC
from sb3_offline.td3bc import TD3BC

ALGOS: dict[str, type[OfflineAlgorithm]] = {
    "awac": AWAC,
    "bc": BC,
    "batch_ddpg": BatchDDPG,
    "bcq": BCQ,
    "calql": CalQL,
    "cql": CQL,
    "iql": IQL,
    "lapo": LAPO,
    "plas": PLAS,
    "rebrac": ReBRAC,
    "td3bc": TD3BC,
    "discrete_bc": DiscreteBC,
    "discrete_bcq": DiscreteBCQ,
    "discrete_cql": DiscreteCQL,
    "discrete_iql": DiscreteIQL,
    "sac_n": SACN,
    "edac": EDAC,
}
