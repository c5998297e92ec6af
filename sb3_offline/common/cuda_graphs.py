"""
One CUDA graph per kind of gradient update: the whole update (sampling from the device-resident
buffer, every loss, backward passes, optimizer steps, target updates, loss sums) is captured once and
replayed, so a gradient step costs one graph launch instead of a few hundred kernel launches.

The graph replays the *same* Python update code that the eager path runs, so the eager path stays the
reference (why graphs rather than ``torch.compile``: ``docs/design.md``). The optimizers are switched to
``capturable=True, fused=True`` Adam (their learning rate becomes a device tensor, which
:func:`~sb3_offline.common.training.set_learning_rate` fills in place); checkpoints keep the optimizers'
original settings (:func:`portable_optimizer_state`).

What the captured function may do: tensor work on the device only. No ``.item()``, no ``if`` on a tensor,
no new tensor that must outlive the step except through the loss accumulator (whose sums are allocated by
the eager warm-up runs). Python-side counters (``_n_updates`` ...) are updated outside. The test suite
checks every registered algorithm's updates for host syncs on CPU (``tests/test_contract.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any, Protocol

import torch as th

from sb3_offline.common.training import DeviceLossAccumulator

Update = Callable[[], None]


class GraphBackend(Protocol):
    """How eager warm-up runs are launched and how an update is captured (CUDA here; a fake in the tests)."""

    def eager(self, update: Update) -> None: ...

    def capture(self, update: Update) -> Update: ...


class CudaGraphBackend:
    """Warm-up runs on a side stream, as ``torch.cuda.graphs`` requires; capture with ``torch.cuda.graph``."""

    def __init__(self, device: th.device) -> None:
        self.device = device
        self.stream = th.cuda.Stream(device)

    def eager(self, update: Update) -> None:
        current = th.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with th.cuda.stream(self.stream):
            update()
        current.wait_stream(self.stream)

    def capture(self, update: Update) -> Update:
        graph = th.cuda.CUDAGraph()
        with th.cuda.graph(graph):
            update()
        return graph.replay


class UpdateGraphs:
    """
    Runs gradient updates, each identified by a hashable key: the first ``warmup`` runs of a key are
    eager (they are real updates), the next one captures the update in a CUDA graph and replays it, and
    every later run replays it. Each :meth:`run` performs exactly one update. A key whose capture fails
    is run eagerly from then on, with a warning naming the error.

    :param losses: the accumulator the update adds its losses to (its counts advance on every replay)
    :param backend: the CUDA backend, or a stand-in
    :param warmup: eager runs of each key before its capture
    """

    def __init__(self, losses: DeviceLossAccumulator, backend: GraphBackend, warmup: int = 3) -> None:
        if warmup < 1:
            raise ValueError(f"warmup: expected >= 1 eager run before a capture, found {warmup}")
        self.losses = losses
        self.backend = backend
        self.warmup = warmup
        self._runs: dict[Hashable, int] = {}
        self._graphs: dict[Hashable, tuple[Update, dict[str, int]]] = {}
        self._eager_only: set[Hashable] = set()
        self._increments: dict[Hashable, dict[str, int]] = {}  # losses one run of each key adds

    def __contains__(self, key: Hashable) -> bool:
        return key in self._graphs

    def run(self, key: Hashable, update: Update) -> None:
        """One update: eager during the warm-up of ``key``, replayed from its graph after."""
        graph = self._graphs.get(key)
        if graph is not None:
            replay, increments = graph
            replay()
            self.losses.count(increments)
            return
        runs = self._runs.get(key, 0)
        if runs < self.warmup or key in self._eager_only:
            before = self.losses.counts()
            with warnings.catch_warnings():
                # capturable optimizers warn when stepped outside a capture; the warm-up must.
                warnings.filterwarnings("ignore", message=".*capturable=True.*")
                self.backend.eager(update)
            self._runs[key] = runs + 1
            self._increments[key] = {n: c - before.get(n, 0) for n, c in self.losses.counts().items()}
            return
        increments = self._increments[key]
        try:
            with self.losses.frozen():
                replay = self.backend.capture(update)
        except Exception as error:
            warnings.warn(
                f"CUDA graph capture of the update {key!r} failed ({error!r}); this update runs eagerly from now on "
                "(cuda_graphs=False turns capture off)",
                RuntimeWarning,
                stacklevel=3,
            )
            self._eager_only.add(key)
            self.run(key, update)
            return
        self._graphs[key] = (replay, increments)
        replay()
        self.losses.count(increments)

    def discard(self, predicate: Callable[[Any], bool]) -> None:
        """Forget the graphs (and warm-up counts) of the keys ``predicate`` accepts, freeing their memory."""
        for store in (self._graphs, self._runs, self._increments):
            for key in [k for k in store if predicate(k)]:
                del store[key]

    def clear(self) -> None:
        """Forget every graph (after parameters or optimizer states were replaced)."""
        self._graphs.clear()
        self._runs.clear()
        self._eager_only.clear()
        self._increments.clear()


def can_capture(optimizer: th.optim.Optimizer) -> bool:
    """Whether ``optimizer`` has a ``capturable`` option and all its parameters on CUDA."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return "capturable" in optimizer.defaults and bool(params) and all(p.device.type == "cuda" for p in params)


def make_capturable(optimizer: th.optim.Optimizer) -> None:
    """
    Switch ``optimizer`` (see :func:`can_capture`) to a CUDA-graph-capturable configuration in place:
    ``capturable=True``, Adam/AdamW ``fused=True`` (``foreach`` off), the learning rate a 0-dim tensor on
    the parameters' device. Existing state (a loaded checkpoint's ``step``) is moved to the device.
    Call it before any capture: it may replace the learning-rate tensors.
    """
    if not can_capture(optimizer):
        raise ValueError(
            f"optimizer: expected one with a capturable option and its parameters on CUDA, found "
            f"{type(optimizer).__name__} (options {sorted(optimizer.defaults)})"
        )
    params = [p for group in optimizer.param_groups for p in group["params"]]
    fused = isinstance(optimizer, th.optim.Adam | th.optim.AdamW) and all(p.is_floating_point() for p in params)
    changed = False
    for group in optimizer.param_groups:
        if "_eager_settings" in group:
            continue  # already switched
        changed = True
        group["_eager_settings"] = {key: group.get(key) for key in ("capturable", "fused", "foreach")}
        group["capturable"] = True
        if fused:
            group["fused"], group["foreach"] = True, False
        if not isinstance(group["lr"], th.Tensor):
            value = float(group["lr"])
            group["lr"] = th.tensor(value, dtype=th.float32, device=group["params"][0].device)
            group["_lr_value"] = value
    if changed and optimizer.state:
        # Re-process the existing state under the new flags (``step`` onto the device).
        optimizer.load_state_dict(optimizer.state_dict())


def portable_optimizer_state(state: dict[str, Any]) -> dict[str, Any]:
    """
    An optimizer ``state_dict`` as the optimizer had it before :func:`make_capturable`: original
    ``capturable``/``fused``/``foreach`` flags and a float learning rate, so a checkpoint written after
    CUDA-graph training loads and trains on any device.
    """
    groups = []
    for group in state["param_groups"]:
        group = dict(group)
        settings = group.pop("_eager_settings", None)
        value = group.pop("_lr_value", None)
        if isinstance(group.get("lr"), th.Tensor):
            group["lr"] = float(group["lr"].item()) if value is None else value
        if settings is not None:
            for key in ("capturable", "fused", "foreach"):
                group[key] = settings[key]
        groups.append(group)
    return {**state, "param_groups": groups}


class UpdateRunner:
    """
    Runs an algorithm's gradient updates, eagerly or through :class:`UpdateGraphs`: what the algorithm owns to
    decide, per update, whether CUDA graphs apply (``cuda_graphs`` on, a CUDA device, a buffer whose sampling is
    device work only, offline training, optimizers that can be made capturable) and to keep the graphs.

    :param losses: the algorithm's loss accumulator
    :param enabled: the algorithm's ``cuda_graphs`` switch
    """

    def __init__(self, losses: DeviceLossAccumulator, enabled: bool = True) -> None:
        self.losses = losses
        self.enabled = enabled
        self.graphs: UpdateGraphs | None = None
        self.unavailable = False

    def applies(self, device: th.device, buffer: Any, optimizers: list[th.optim.Optimizer], offline: bool) -> bool:
        """Whether updates go through CUDA graphs (the first time, the optimizers are made capturable)."""
        if not self.enabled or self.unavailable or not offline or device.type != "cuda":
            return False
        if not getattr(buffer, "graph_safe", False):
            return False
        if self.graphs is None:
            if not all(can_capture(optimizer) for optimizer in optimizers):
                warnings.warn(
                    "cuda_graphs: an optimizer cannot be captured in a CUDA graph (it needs a capturable option "
                    "and its parameters on CUDA); training eagerly",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self.unavailable = True
                return False
            for optimizer in optimizers:
                make_capturable(optimizer)
            self.graphs = UpdateGraphs(self.losses, CudaGraphBackend(device))
        return True

    def run(self, key: tuple[Any, ...], update: Update, graphed: bool) -> None:
        """
        One update: ``update()`` directly (the eager reference path), or through the graph of ``key`` (whose first
        item is the kind of update; a graph of the same kind with another key is stale and freed).
        """
        if not graphed or self.graphs is None:
            update()
            return
        if key not in self.graphs:
            self.graphs.discard(lambda other: other[0] == key[0] and other != key)
        self.graphs.run(key, update)

    def discard(self, kind: str) -> None:
        """Free the graphs of one kind of update (e.g. a phase that is over)."""
        if self.graphs is not None:
            self.graphs.discard(lambda key: key[0] == kind)

    def reset(self) -> None:
        """Forget every graph (the parameters or optimizer states they read were replaced)."""
        if self.graphs is not None:
            self.graphs.clear()
        self.graphs = None
        self.unavailable = False
