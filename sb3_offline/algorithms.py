"""Name -> class of every algorithm, for the command line and the rl-zoo3 integration."""

from __future__ import annotations

from sb3_offline.awac import AWAC
from sb3_offline.batch_ddpg import BatchDDPG
from sb3_offline.bc import BC
from sb3_offline.bcq import BCQ
from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.plas import PLAS

ALGOS: dict[str, type[OfflineAlgorithm]] = {
    "awac": AWAC,
    "bc": BC,
    "batch_ddpg": BatchDDPG,
    "bcq": BCQ,
    "plas": PLAS,
}
