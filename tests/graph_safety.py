"""
A strict stand-in for the CUDA-graph backend: every gradient update run through ``UpdateGraphs`` (its
eager warm-up runs and its "replays") runs inside a ``TorchFunctionMode`` and a ``TorchDispatchMode``
that raise :class:`HostSyncError` (an ``AssertionError``) naming the operation and the line that did it
whenever the update does something that would sync with the host, or fail, inside a CUDA-graph capture.

Like ``ReplayByRerun`` in ``test_cuda_graphs.py``, "capture" runs nothing and each replay re-runs the
update's Python code with the loss counts frozen, so the checks see exactly the code a CUDA graph records.

Intercepted (verified on CPU with torch 2.13; each has a negative test in ``test_graph_safety.py``):

* host reads of a value, at the Python API (``TorchFunctionMode``): ``.item()``, ``.tolist()``,
  ``.numpy()``, ``np.asarray(t)`` (``__array__``), ``bool(t)`` / ``if t:`` / ``while t:`` / ``t and x``,
  ``.is_nonzero()``, ``float(t)``, ``int(t)``, ``complex(t)``, ``operator.index(t)`` (``__index__``:
  ``range(t)``, ``lst[t]``), ``format``/f-strings, ``repr``/``str``/``print`` of a tensor, ``x in t``,
  ``th.equal``, ``th.allclose``;
* device->host moves: ``.cpu()``, ``.to("cpu")`` / ``.to(device="cpu")`` (a device *string* naming the
  host) and ``th.device("cpu")`` built inside the update; host->device copies of host data
  (``th.tensor(data, device=...)``, ``th.as_tensor(non_tensor, device=...)``);
* data-dependent shapes: ``th.nonzero``/``Tensor.nonzero``, ``th.argwhere``, one-argument ``th.where``,
  ``masked_select``, ``unique``/``unique_consecutive``, ``bincount``, ``repeat_interleave`` with a
  tensor of repeats and no ``output_size``, boolean-mask indexing ``x[mask]`` (also inside a tuple of
  indices), boolean-mask assignment ``x[mask] = tensor`` (``x[mask] = 3.0`` is allowed: PyTorch turns it
  into ``masked_fill_``), and ``x[t]`` with a 0-dim integer tensor ``t`` (a ``select`` at ``t.item()``);
* the same at the ATen level (``TorchDispatchMode``), which also sees what the Python API hides: C++
  reads of a value (``aten._local_scalar_dense``: ``th.randint(0, t, ...)``, ``th.arange(t)``,
  ``x.expand(t)``, a ``.item()`` in a custom autograd ``backward``), ``aten.nonzero``,
  ``aten.masked_select``, ``aten._unique2`` & co, ``aten.bincount``, ``aten.repeat_interleave.Tensor``
  without ``output_size``, ``aten.index``/``aten.index_put_`` with boolean indices, ``aten.equal``, and
  copies from another device to the host (``aten._to_copy``/``aten.copy_``; only seen on a non-CPU run).
  Backward passes are checked by this mode only: the function mode never sees inside ``backward()``.

Not intercepted (a CPU run cannot tell, or nothing is called that a mode sees):

* ``.to(th.device("cpu"))`` with a device object made *outside* the update and ``.to(self.device)``
  look the same on a CPU model, so a ``th.device`` target is never flagged; likewise, on a CPU run,
  ``x.copy_(y)`` between host and device, ``.to(device)`` of a host tensor, ``th.zeros(...,
  device="cpu")`` (a host tensor made in the update) and pinned/non-blocking transfers: every tensor is
  on the host (the ATen rules for device->host copies only fire where a tensor is elsewhere);
* work inside a C++ kernel that the dispatcher does not see again (a kernel's own internal sync, e.g.
  a CUDA kernel that reads a size): only the op's name is checked; the fused Adam kernel is one such op;
* Python-side state that a graph bakes in (a Python ``float`` computed once and used as a constant, a
  branch on a Python counter, a new tensor allocated in a replay and kept): they are not syncs, so out
  of scope; ``UpdateGraphs``'s frozen loss accumulator refuses a new loss name, and the CUDA-only
  parity tests in ``test_cuda_graphs.py`` are the check for the rest;
* syncs of other CUDA-only APIs (``th.cuda.synchronize()``, events, streams), and anything in code
  that runs outside ``update`` (``train()``, callbacks, logging), which is allowed to sync.

Optimizers (a deliberate choice): torch's default CPU Adam (single-tensor, ``capturable=False``) reads
its ``step`` counter with ``.item()`` on every step, which the strict modes flag. Rather than exempting
``torch.optim`` frames (or only flagging ops called from ``sb3_offline``, which would miss syncs in
torch or SB3 code that an update calls, e.g. ``clip_grad_norm_(..., error_if_nonfinite=True)``),
:func:`strict_update_graphs` switches every optimizer of the model with the package's own
``make_capturable`` (``capturable=True``, ``fused=True``, learning rate a tensor), exactly as
``UpdateRunner.applies`` does on CUDA. Fused Adam/AdamW run on CPU and their Python path has no
host sync, so the optimizer steps are checked like everything else, with no exemption. An optimizer
that ``make_capturable`` cannot make fused (not Adam/AdamW) cannot step with ``capturable=True`` on CPU:
:func:`strict_update_graphs` refuses it with a message saying so.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Hashable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import torch as th
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._python_dispatch import TorchDispatchMode

from sb3_offline.common import cuda_graphs
from sb3_offline.common.cuda_graphs import UpdateGraphs
from sb3_offline.common.training import DeviceLossAccumulator

Update = Callable[[], None]


class HostSyncError(AssertionError):
    """An update run by the strict backend did a host sync (or something a CUDA-graph capture refuses)."""


# ------------------------------------------------------------------------------------- where it happened
_TORCH_DIR = os.path.dirname(th.__file__) + os.sep
_THIS_FILE = os.path.abspath(__file__)
# torch's own library code worth naming as the place of a sync (not its dispatch machinery)
_TORCH_LIBRARY = tuple(
    os.path.join(_TORCH_DIR, name)
    for name in ("optim" + os.sep, "nn" + os.sep, "distributions" + os.sep, "functional.py")
)
_PROJECT_MARKS = (os.sep + "sb3_offline" + os.sep, os.path.dirname(_THIS_FILE) + os.sep)


def _where(frame: Any) -> str:
    """``path:line (function)``, the path relative to the deepest ``sys.path`` entry (or the repository) holding it."""
    filename = os.path.abspath(frame.f_code.co_filename)
    candidates = [*sys.path, os.path.dirname(os.path.dirname(_THIS_FILE))]  # and the repository's root
    roots = [
        root for root in candidates if root and os.path.isabs(root) and filename.startswith(os.path.join(root, ""))
    ]
    if roots:
        filename = os.path.relpath(filename, max(roots, key=len))
    return f"{filename}:{frame.f_lineno} ({frame.f_code.co_name})"


def _location() -> str:
    """``A``, or ``A, reached from B, in C``: the innermost frame outside torch's machinery (may be in
    ``torch.optim``, ``torch.nn``...), the first one outside torch, the first one in sb3_offline or the tests."""
    frame = sys._getframe(1)
    innermost = outside_torch = project = None
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename != _THIS_FILE:
            in_torch = filename.startswith(_TORCH_DIR)
            if innermost is None and (not in_torch or filename.startswith(_TORCH_LIBRARY)):
                innermost = frame
            if outside_torch is None and not in_torch:
                outside_torch = frame
            if project is None and any(mark in filename for mark in _PROJECT_MARKS):
                project = frame
        frame = frame.f_back
    parts = []
    for found in (innermost, outside_torch, project):
        if found is not None and (not parts or _where(found) not in parts):
            parts.append(_where(found))
    if not parts:
        return "an unknown place"
    return parts[0] + "".join(f", reached from {p}" for p in parts[1:2]) + "".join(f", in {p}" for p in parts[2:])


# ------------------------------------------------------------------------------------- the rules
def _fn(owner: Any, name: str) -> Any:
    return getattr(owner, name, None)


_ALWAYS: dict[Any, str] = {
    _fn(th.Tensor, "item"): "tensor.item() reads the value on the host",
    _fn(th.Tensor, "tolist"): "tensor.tolist() copies to the host",
    _fn(th.Tensor, "numpy"): "tensor.numpy() copies to the host",
    _fn(th.Tensor, "__array__"): "np.asarray(tensor) / tensor.__array__ copies to the host",
    _fn(th.Tensor, "__bool__"): "bool(tensor) (`if tensor:`, `while`, `and`/`or`, `not`) reads the value on the host",
    _fn(th.Tensor, "is_nonzero"): "tensor.is_nonzero() reads the value on the host",
    _fn(th.Tensor, "__float__"): "float(tensor) reads the value on the host",
    _fn(th.Tensor, "__int__"): "int(tensor) reads the value on the host",
    _fn(th.Tensor, "__complex__"): "complex(tensor) reads the value on the host",
    _fn(th.Tensor, "__index__"): "a tensor used as a Python index (__index__: range(t), lst[t]) reads its value",
    _fn(th.Tensor, "__format__"): "format(tensor) / an f-string of a tensor reads it on the host",
    _fn(th.Tensor, "__repr__"): "repr/str/print of a tensor copies it to the host",
    _fn(th.Tensor, "__contains__"): "`value in tensor` reads the result on the host",
    _fn(th.Tensor, "cpu"): "tensor.cpu() copies to the host",
    _fn(th, "equal"): "torch.equal returns a Python bool (host read)",
    _fn(th.Tensor, "equal"): "tensor.equal returns a Python bool (host read)",
    _fn(th, "allclose"): "torch.allclose returns a Python bool (host read)",
    _fn(th.Tensor, "allclose"): "tensor.allclose returns a Python bool (host read)",
    _fn(th, "nonzero"): "torch.nonzero has a data-dependent shape (host sync)",
    _fn(th.Tensor, "nonzero"): "tensor.nonzero has a data-dependent shape (host sync)",
    _fn(th, "argwhere"): "torch.argwhere has a data-dependent shape (host sync)",
    _fn(th.Tensor, "argwhere"): "tensor.argwhere has a data-dependent shape (host sync)",
    _fn(th, "masked_select"): "torch.masked_select has a data-dependent shape (host sync)",
    _fn(th.Tensor, "masked_select"): "tensor.masked_select has a data-dependent shape (host sync)",
    _fn(th, "unique"): "torch.unique has a data-dependent shape (host sync)",
    _fn(th.Tensor, "unique"): "tensor.unique has a data-dependent shape (host sync)",
    _fn(th, "unique_consecutive"): "torch.unique_consecutive has a data-dependent shape (host sync)",
    _fn(th.Tensor, "unique_consecutive"): "tensor.unique_consecutive has a data-dependent shape (host sync)",
    _fn(th, "bincount"): "torch.bincount has a data-dependent shape (host sync)",
    _fn(th.Tensor, "bincount"): "tensor.bincount has a data-dependent shape (host sync)",
}
_ALWAYS.pop(None, None)


def _is_mask(value: Any) -> bool:
    return isinstance(value, th.Tensor) and value.dtype in (th.bool, th.uint8)


def _is_scalar_index(value: Any) -> bool:
    return isinstance(value, th.Tensor) and value.dim() == 0 and not value.is_floating_point() and not _is_mask(value)


def _index_parts(index: Any) -> list[Any]:
    return list(index) if isinstance(index, tuple | list) else [index]


def _names_host(device: Any) -> bool:
    return isinstance(device, str) and th.device(device).type == "cpu"


def _function_rule(func: Any, args: tuple, kwargs: dict) -> str | None:
    """Why ``func(*args, **kwargs)`` (a call the TorchFunctionMode sees) is refused, or None."""
    try:
        reason = _ALWAYS.get(func)
    except TypeError:  # an unhashable callable
        reason = None
    if reason is not None:
        return reason
    if func is th.Tensor.__getitem__ and len(args) > 1:
        parts = _index_parts(args[1])
        if any(_is_mask(part) for part in parts):
            return "boolean-mask indexing x[mask] has a data-dependent shape (host sync)"
        if any(_is_scalar_index(part) for part in parts):
            return "indexing with a 0-dim integer tensor x[t] reads t on the host (use x[t.view(1)] or index_select)"
    if func is th.Tensor.__setitem__ and len(args) > 2:
        if any(_is_mask(part) for part in _index_parts(args[1])) and isinstance(args[2], th.Tensor):
            return "boolean-mask assignment x[mask] = tensor gathers the mask's nonzeros (host sync); use th.where"
        if any(_is_scalar_index(part) for part in _index_parts(args[1])):
            return "assignment at a 0-dim integer tensor x[t] = v reads t on the host"
    if func is th.where and len(args) + len(kwargs) == 1:
        return "one-argument torch.where is nonzero (data-dependent shape, host sync)"
    if func in (th.repeat_interleave, th.Tensor.repeat_interleave):
        if len(args) > 1:
            repeats = args[1]
        elif "repeats" in kwargs:
            repeats = kwargs["repeats"]
        else:  # torch.repeat_interleave(repeats): the one-argument form
            repeats = args[0] if args and func is th.repeat_interleave else None
        if isinstance(repeats, th.Tensor) and kwargs.get("output_size") is None:
            return "repeat_interleave with a tensor of repeats and no output_size has a data-dependent shape"
    if func is th.Tensor.to:
        device = kwargs.get("device", args[1] if len(args) > 1 else None)
        if _names_host(device):
            return "tensor.to('cpu') copies to the host"
    if func is th.device and args and _names_host(args[0]):
        return "th.device('cpu') made inside the update (a copy to the host follows)"
    if func in (th.tensor, th.as_tensor) and kwargs.get("device") is not None:
        data = args[0] if args else kwargs.get("data")
        if not isinstance(data, th.Tensor):
            return f"{resolve_name(func)}(host data, device=...) copies host data to the device in the update"
    return None


_ATEN = th.ops.aten
_DISPATCH_ALWAYS: dict[Any, str] = {}
for _packet, _reason in (
    ("_local_scalar_dense", "a tensor's value read on the host (.item(), bool(), int(), a tensor used as a size)"),
    ("nonzero", "nonzero has a data-dependent shape (host sync)"),
    ("nonzero_numpy", "nonzero has a data-dependent shape (host sync)"),
    ("masked_select", "masked_select has a data-dependent shape (host sync)"),
    ("_unique", "unique has a data-dependent shape (host sync)"),
    ("_unique2", "unique has a data-dependent shape (host sync)"),
    ("unique_dim", "unique has a data-dependent shape (host sync)"),
    ("unique_consecutive", "unique_consecutive has a data-dependent shape (host sync)"),
    ("unique_dim_consecutive", "unique_consecutive has a data-dependent shape (host sync)"),
    ("bincount", "bincount has a data-dependent shape (host sync)"),
    ("equal", "equal returns a Python bool (host read)"),
    ("allclose", "allclose returns a Python bool (host read)"),
):
    if hasattr(_ATEN, _packet):
        _DISPATCH_ALWAYS[getattr(_ATEN, _packet)] = _reason
_INDEX_PUT = tuple(
    getattr(_ATEN, name) for name in ("index_put", "index_put_", "_index_put_impl_") if hasattr(_ATEN, name)
)


def _dispatch_rule(func: Any, args: tuple, kwargs: dict) -> str | None:
    """Why the ATen op ``func`` (seen by the TorchDispatchMode) is refused, or None."""
    packet = func.overloadpacket
    reason = _DISPATCH_ALWAYS.get(packet)
    if reason is not None:
        return reason
    if packet is _ATEN.index and len(args) > 1 and any(_is_mask(i) for i in args[1] if i is not None):
        return "index with a boolean mask has a data-dependent shape (host sync)"
    if (
        packet in _INDEX_PUT
        and len(args) > 2
        and any(_is_mask(i) for i in args[1] if i is not None)
        and isinstance(args[2], th.Tensor)
        and args[2].numel() != 1
    ):
        return "index_put with a boolean mask and a tensor of values gathers the mask's nonzeros (host sync)"
    if func is _ATEN.repeat_interleave.Tensor and kwargs.get("output_size") is None:
        return "repeat_interleave with a tensor of repeats and no output_size has a data-dependent shape"
    if packet is _ATEN._to_copy and args and isinstance(args[0], th.Tensor):
        device = kwargs.get("device")
        if device is not None and th.device(device).type == "cpu" and args[0].device.type != "cpu":
            return "a copy to the host (.to('cpu'))"
    if (
        packet is _ATEN.copy_
        and len(args) > 1
        and isinstance(args[1], th.Tensor)
        and args[0].device.type == "cpu"
        and args[1].device.type != "cpu"
    ):
        return "a copy to the host (copy_ into a host tensor)"
    return None


class _StrictFunctions(TorchFunctionMode):
    def __init__(self, violations: list[str]) -> None:
        super().__init__()
        self.violations = violations

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        reason = _function_rule(func, args, kwargs)
        if reason is not None:
            _refuse(self.violations, resolve_name(func) or getattr(func, "__name__", repr(func)), reason)
        return func(*args, **kwargs)


class _StrictDispatch(TorchDispatchMode):
    def __init__(self, violations: list[str]) -> None:
        super().__init__()
        self.violations = violations

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        reason = _dispatch_rule(func, args, kwargs)
        if reason is not None:
            _refuse(self.violations, str(func), reason)
        return func(*args, **kwargs)


def _refuse(violations: list[str], op: str, reason: str) -> None:
    message = f"host sync in a graph-captured update: {op}: {reason}; at {_location()}"
    violations.append(message)
    raise HostSyncError(message)


@contextmanager
def no_host_sync(
    violations: list[str] | None = None, *, function_mode: bool = True, dispatch_mode: bool = True
) -> Iterator[list[str]]:
    """
    Within: a host sync raises :class:`HostSyncError`; each is also appended to ``violations`` (so one
    that the code under test catches and swallows is still on record). ``function_mode``/``dispatch_mode``
    turn one of the two layers off (to test the other alone).
    """
    violations = [] if violations is None else violations
    with ExitStack() as stack:
        if function_mode:
            stack.enter_context(_StrictFunctions(violations))
        if dispatch_mode:
            stack.enter_context(_StrictDispatch(violations))
        yield violations


# ------------------------------------------------------------------------------------- the backend
@dataclass
class KindRuns:
    """What the strict backend did with one key of ``UpdateGraphs``."""

    eager: int = 0
    captures: int = 0
    replays: int = 0


class StrictGraphBackend:
    """
    ``GraphBackend`` stand-in: warm-up runs and replays run the update under :func:`no_host_sync`; a
    capture runs nothing and returns a replay that re-runs the update with the loss counts frozen (a
    CUDA graph adds to the sums without ``add`` counting). ``violations`` lists every sync seen, ``kinds``
    what happened to each key (set by :class:`StrictUpdateGraphs`).
    """

    def __init__(self, losses: DeviceLossAccumulator) -> None:
        self.losses = losses
        self.violations: list[str] = []
        self.kinds: dict[Hashable, KindRuns] = {}
        self.current: Hashable = None

    def _runs(self) -> KindRuns:
        return self.kinds.setdefault(self.current, KindRuns())

    def _strict(self, update: Update) -> None:
        with warnings.catch_warnings():
            # capturable optimizers warn when stepped outside a capture (only where CUDA is available)
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            with no_host_sync(self.violations):
                update()

    def eager(self, update: Update) -> None:
        self._runs().eager += 1
        self._strict(update)

    def capture(self, update: Update) -> Update:
        runs = self._runs()
        runs.captures += 1

        def replay() -> None:
            runs.replays += 1
            with self.losses.frozen():
                self._strict(update)

        return replay


class StrictUpdateGraphs(UpdateGraphs):
    """``UpdateGraphs`` that tells its :class:`StrictGraphBackend` which key each run is for."""

    backend: StrictGraphBackend

    def run(self, key: Hashable, update: Update) -> None:
        self.backend.current = key
        try:
            super().run(key, update)
        finally:
            self.backend.current = None


def switch_optimizers_as_on_cuda(model: Any) -> None:
    """Every optimizer of ``model`` as ``UpdateRunner.applies`` leaves it on CUDA (``make_capturable``), on CPU."""
    with mock.patch.object(cuda_graphs, "can_capture", lambda optimizer: True):
        for optimizer in model._optimizers().values():
            cuda_graphs.make_capturable(optimizer)
            if not all(group.get("fused") for group in optimizer.param_groups):
                raise NotImplementedError(
                    f"{type(optimizer).__name__}: make_capturable does not make it fused, and torch steps a "
                    "capturable=True optimizer on CUDA only; the strict CPU check covers fused Adam/AdamW"
                )


def strict_update_graphs(model: Any, warmup: int = 3) -> StrictGraphBackend:
    """
    Force ``model``'s offline gradient updates (everything ``OfflineAlgorithm.train`` runs)
    through ``UpdateGraphs`` on CPU with a :class:`StrictGraphBackend`, after switching its optimizers as
    on CUDA; returns the backend (check ``violations`` and ``kinds`` after ``learn``).
    """
    switch_optimizers_as_on_cuda(model)
    backend = StrictGraphBackend(model._losses)
    model._runner.graphs = StrictUpdateGraphs(model._losses, backend, warmup=warmup)
    model._runner.applies = lambda *args, **kwargs: True
    return backend
