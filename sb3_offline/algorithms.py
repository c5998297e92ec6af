"""Name -> class of every algorithm, for the command line and the rl-zoo3 integration."""

from __future__ import annotations

from sb3_offline.awac import AWAC
from sb3_offline.batch_ddpg import BatchDDPG
from sb3_offline.bc import BC
from sb3_offline.bcq import BCQ
from sb3_offline.calql import CalQL
from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.cql import CQL
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
}
