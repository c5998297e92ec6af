"""Small pieces every algorithm's ``train()`` shares: device-side loss sums and target updates."""

from __future__ import annotations

from collections.abc import Iterable

import torch as th
from stable_baselines3.common.logger import Logger


class DeviceLossAccumulator:
    """
    Sums scalar losses on the device, one ``add`` per gradient step, with no host sync.

    The values are read (one device->host copy for all of them) only when :meth:`flush` writes
    their means to the SB3 logger, i.e. when the logger dumps.
    """

    def __init__(self) -> None:
        self._sums: dict[str, th.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, name: str, value: th.Tensor) -> None:
        value = value.detach()
        if name in self._sums:
            self._sums[name] += value
            self._counts[name] += 1
        else:
            self._sums[name] = value.clone()
            self._counts[name] = 1

    def __bool__(self) -> bool:
        return bool(self._counts)

    def means(self) -> dict[str, float]:
        """Means since the last flush (one host sync); empty when nothing was added."""
        if not self._sums:
            return {}
        names = list(self._sums)
        values = th.stack([self._sums[n].float().reshape(()) for n in names]).cpu().tolist()
        return {name: value / self._counts[name] for name, value in zip(names, values, strict=True)}

    def flush(self, logger: Logger, prefix: str = "train/") -> dict[str, float]:
        """Record the means as ``prefix + name`` (a name with a ``/`` is a full key) and start over."""
        means = self.means()
        for name, value in means.items():
            logger.record(name if "/" in name else prefix + name, value)
        self._sums.clear()
        self._counts.clear()
        return means


@th.no_grad()
def soft_update(params: Iterable[th.Tensor], target_params: Iterable[th.Tensor], tau: float) -> None:
    """Polyak averaging ``target <- tau * param + (1 - tau) * target`` in one fused foreach call."""
    params, target_params = list(params), list(target_params)
    if len(params) != len(target_params):
        raise ValueError(
            f"soft_update: expected as many target tensors as tensors, found {len(target_params)} vs {len(params)}"
        )
    if params:
        th._foreach_lerp_(target_params, params, tau)


@th.no_grad()
def copy_buffers(buffers: Iterable[th.Tensor], target_buffers: Iterable[th.Tensor]) -> None:
    """Copy running statistics (e.g. batch-norm) into the targets, as SB3's TD3 does with tau = 1."""
    buffers, target_buffers = list(buffers), list(target_buffers)
    if buffers:
        th._foreach_copy_(target_buffers, buffers)
