"""Pieces shared by every offline algorithm."""

from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.common.training import DeviceLossAccumulator, soft_update

__all__ = ["DeviceLossAccumulator", "OfflineAlgorithm", "soft_update"]
