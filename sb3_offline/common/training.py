"""Small pieces every algorithm's ``train()`` shares: device-side loss sums and target updates."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch as th
from stable_baselines3.common import utils
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.utils import get_parameters_by_name
from torch import nn


class DeviceLossAccumulator:
    """
    Sums scalar losses on the device, one ``add`` per gradient step, with no host sync.

    The values are read (one device->host copy for all of them) only when :meth:`flush` writes
    their means to the SB3 logger, i.e. when the logger dumps. Each sum is one tensor that lives as
    long as the accumulator (``flush`` zeroes it in place), so an update captured in a CUDA graph
    keeps adding into it when the graph is replayed; :meth:`count` then counts those replays.
    """

    def __init__(self) -> None:
        self._sums: dict[str, th.Tensor] = {}
        self._counts: dict[str, int] = {}
        self._frozen = False

    def add(self, name: str, value: th.Tensor) -> None:
        """Add a scalar (any shape with one element) to the sum called ``name``."""
        total = self._sums.get(name)
        if total is None:
            if self._frozen:
                raise RuntimeError(
                    f"DeviceLossAccumulator.add: {name!r} first appears while an update is captured in a CUDA "
                    "graph; every loss must already have been added by the eager warm-up steps"
                )
            total = self._sums[name] = th.zeros((), dtype=th.float32, device=value.device)
            self._counts[name] = 0
        total.add_(value.detach().reshape(()))
        self._counts[name] += 1

    def counts(self) -> dict[str, int]:
        """How many values each sum holds since the last flush."""
        return dict(self._counts)

    def count(self, increments: dict[str, int]) -> None:
        """Count values that were added on the device without :meth:`add` (a replayed CUDA graph)."""
        for name, increment in increments.items():
            self._counts[name] += increment

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """Within: no new names, and the counts are left as they were (a CUDA-graph capture runs nothing)."""
        counts, self._frozen = dict(self._counts), True
        try:
            yield
        finally:
            self._counts, self._frozen = counts, False

    def __bool__(self) -> bool:
        return any(self._counts.values())

    def means(self) -> dict[str, float]:
        """Means since the last flush (one host sync); empty when nothing was added."""
        names = [name for name, count in self._counts.items() if count]
        if not names:
            return {}
        values = th.stack([self._sums[n] for n in names]).cpu().tolist()
        return {name: value / self._counts[name] for name, value in zip(names, values, strict=True)}

    def flush(self, logger: Logger, prefix: str = "train/") -> dict[str, float]:
        """Record the means as ``prefix + name`` (a name with a ``/`` is a full key) and start over."""
        means = self.means()
        for name, value in means.items():
            logger.record(name if "/" in name else prefix + name, value)
        for name, total in self._sums.items():
            if self._counts[name]:
                total.zero_()
                self._counts[name] = 0
        return means


def minimize(optimizer: th.optim.Optimizer, loss: th.Tensor) -> None:
    """
    One optimizer step on ``loss``: zero the gradients, back-propagate, step (device work only). The gradients are
    computed for ``optimizer``'s parameters only (``backward(inputs=...)``): a loss that reaches other networks (an
    actor's loss through the critics, a policy's through a target decoder) computes no gradient for their weights
    and leaves their ``.grad`` untouched. The values are those of a full ``loss.backward()``.
    """
    optimizer.zero_grad()
    loss.backward(inputs=[p for group in optimizer.param_groups for p in group["params"] if p.requires_grad])
    optimizer.step()


def set_learning_rate(optimizer: th.optim.Optimizer, learning_rate: float) -> None:
    """
    SB3's ``update_learning_rate``, which also keeps a tensor learning rate (that of an optimizer
    replayed in a CUDA graph) the same tensor: it is filled in place, and only when the value changes.
    """
    for group in optimizer.param_groups:
        current = group["lr"]
        if isinstance(current, th.Tensor):
            if group.get("_lr_value") != learning_rate:
                current.fill_(learning_rate)
                group["_lr_value"] = learning_rate
        else:
            group["lr"] = learning_rate


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


def target_pair(module: nn.Module, target: str, source: str) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """
    The parameters and batch-norm statistics of ``module.<source>`` and of its copy ``module.<target>`` (what
    :func:`soft_update` and :func:`copy_buffers` take), after checking that the copy has as many parameter tensors.
    """
    online, copy = getattr(module, source), getattr(module, target)
    params, target_params = list(online.parameters()), list(copy.parameters())
    if len(params) != len(target_params):
        raise ValueError(
            f"{target}: expected a copy of {source} ({len(params)} parameter tensors), found "
            f"{len(target_params)} parameter tensors"
        )
    stats = get_parameters_by_name(online, ["running_"]), get_parameters_by_name(copy, ["running_"])
    return params, target_params, *stats


def configure_logger(verbose: int, tensorboard_log: str | None, tb_log_name: str, reset_num_timesteps: bool) -> Logger:
    """
    SB3's ``utils.configure_logger``, without the empty ``SB3-<date>`` folder it makes in the temp dir when the
    logger writes no file (no ``tensorboard_log``): then a logger without a folder, printing to stdout with
    ``verbose >= 1`` (as SB3's), writing nothing otherwise.
    """
    if tensorboard_log is not None:
        return utils.configure_logger(verbose, tensorboard_log, tb_log_name, reset_num_timesteps)
    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose >= 1 else [])


@contextmanager
def own_logger(model: Any, tb_log_name: str, reset_num_timesteps: bool) -> Iterator[None]:
    """
    Around SB3's ``_setup_learn`` (or our own): ``model``'s logger made by :func:`configure_logger` (unless
    ``model.set_logger`` gave one), and kept by SB3's ``_setup_learn``, which would make its own otherwise.
    """
    custom = model._custom_logger
    if not custom:
        model._logger = configure_logger(model.verbose, model.tensorboard_log, tb_log_name, reset_num_timesteps)
    model._custom_logger = True
    try:
        yield
    finally:
        model._custom_logger = custom
