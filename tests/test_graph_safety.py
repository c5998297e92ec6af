"""
The strict stand-in for the CUDA-graph backend (``graph_safety.py``): it catches each kind of host sync, at the
Python API and at the ATen level, in warm-up runs and in replays, and lets device work through. Every algorithm's
updates are run through it in ``test_contract.py``.
"""

from __future__ import annotations

import contextlib
import re
import types

import numpy as np
import pytest
import torch as th
from graph_safety import (
    HostSyncError,
    StrictGraphBackend,
    no_host_sync,
    switch_optimizers_as_on_cuda,
)

from sb3_offline.common.cuda_graphs import UpdateGraphs
from sb3_offline.common.training import DeviceLossAccumulator, soft_update


# --------------------------------------------------------------------------------- the backend itself
def _run(update, runs: int = 4, warmup: int = 1) -> StrictGraphBackend:
    losses = DeviceLossAccumulator()
    backend = StrictGraphBackend(losses)
    graphs = UpdateGraphs(losses, backend, warmup=warmup)
    for _ in range(runs):
        graphs.run("update", update)
    return backend


class _Backward(th.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        grad.sum().item()  # a host read where only the dispatch mode sees it
        return grad * 2


def _while_positive(value: th.Tensor) -> None:
    while value > 0:
        value = value - 1.0


X = th.tensor([1.5, -2.0, 3.0])
INDEX = th.tensor([0, 2])
N = th.tensor(2)

SYNCS = {  # what the update does -> (the op the error names, a regex)
    ".item()": (lambda: X.sum().item(), r"Tensor\.item"),
    "if tensor": (lambda: 1 if X.sum() > 0 else 0, r"Tensor\.__bool__"),
    "bool()": (lambda: bool(X[0] > 0), r"Tensor\.__bool__"),
    "while tensor": (lambda: _while_positive(X.sum()), r"Tensor\.__bool__"),
    "a and b": (lambda: (X[0] > 0) and (X[1] > 0), r"Tensor\.__bool__"),
    "is_nonzero": (lambda: X[:1].is_nonzero(), r"Tensor\.is_nonzero"),
    ".tolist()": (lambda: X.tolist(), r"Tensor\.tolist"),
    ".numpy()": (lambda: X.numpy(), r"Tensor\.numpy"),
    "np.asarray": (lambda: np.asarray(X), r"Tensor\.__array__"),
    "float()": (lambda: float(X.sum()), r"Tensor\.__float__"),
    "int()": (lambda: int(N), r"Tensor\.__int__"),
    "complex()": (lambda: complex(X.sum()), r"Tensor\.__complex__"),
    "__index__": (lambda: list(range(N)), r"Tensor\.__index__"),
    "list[tensor]": (lambda: [1, 2, 3][N], r"Tensor\.__index__"),
    "f-string": (lambda: f"{X.sum():.3f}", r"Tensor\.__format__"),
    "repr": (lambda: repr(X), r"Tensor\.__repr__"),
    "print": (lambda: print(X), r"Tensor\.__repr__"),
    "in": (lambda: 1.5 in X, r"Tensor\.__contains__"),
    ".cpu()": (lambda: X.cpu(), r"Tensor\.cpu"),
    ".to('cpu')": (lambda: X.to("cpu"), r"Tensor\.to"),
    ".to(device='cpu')": (lambda: X.to(device="cpu"), r"Tensor\.to"),
    "th.device('cpu')": (lambda: th.device("cpu"), r"torch\.device"),
    "th.tensor(device=)": (lambda: th.tensor([1.0], device=X.device), r"torch\.tensor"),
    "th.as_tensor(device=)": (lambda: th.as_tensor([1.0], device=X.device), r"torch\.as_tensor"),
    "th.equal": (lambda: th.equal(X, X), r"torch\.equal"),
    "th.allclose": (lambda: th.allclose(X, X), r"torch\.allclose"),
    "th.nonzero": (lambda: th.nonzero(X), r"torch\.nonzero"),
    "Tensor.nonzero": (lambda: X.nonzero(), r"Tensor\.nonzero"),
    "th.argwhere": (lambda: th.argwhere(X), r"torch\.argwhere"),
    "th.where(cond)": (lambda: th.where(X > 0), r"torch\.where"),
    "masked_select": (lambda: X.masked_select(X > 0), r"masked_select"),
    "th.unique": (lambda: th.unique(X), r"unique"),
    "unique_consecutive": (lambda: X.unique_consecutive(), r"unique_consecutive"),
    "bincount": (lambda: th.bincount(INDEX), r"bincount"),
    "repeat_interleave(tensor)": (lambda: X.repeat_interleave(th.ones(3, dtype=th.long)), r"repeat_interleave"),
    "x[mask]": (lambda: X[X > 0], r"Tensor\.__getitem__.*boolean-mask"),
    "x[:, mask]": (lambda: X.view(1, 3)[:, X > 0], r"Tensor\.__getitem__.*boolean-mask"),
    "x[mask] = tensor": (lambda: X.clone().__setitem__(X > 0, th.zeros(2)), r"Tensor\.__setitem__"),
    "x[0-dim tensor]": (lambda: X[N], r"Tensor\.__getitem__.*0-dim integer"),
    # only the dispatch mode sees these: the value is read in C++
    "th.randint(0, tensor)": (lambda: th.randint(0, N, (3,)), r"aten\._local_scalar_dense"),
    "th.arange(tensor)": (lambda: th.arange(N), r"aten\._local_scalar_dense"),
    "x.expand(tensor)": (lambda: X[:1].expand(N), r"aten\._local_scalar_dense"),
    ".item() in backward": (
        lambda: _Backward.apply(X.clone().requires_grad_()).sum().backward(),
        r"aten\._local_scalar_dense",
    ),
}


@pytest.mark.parametrize("kind", list(SYNCS))
def test_the_strict_backend_catches_each_kind_of_host_sync(kind):
    does, names = SYNCS[kind]
    with pytest.raises(HostSyncError, match=names) as caught:
        _run(does)
    message = str(caught.value)
    assert message.startswith("host sync in a graph-captured update")
    assert "test_graph_safety.py:" in message, message  # the line that did it
    assert isinstance(caught.value, AssertionError)


# what only the function mode sees: no ATen op reads the value (CPU tensors are read in place), or the
# op is harmless on a CPU run (.to of a CPU tensor to the host is a no-op, th.tensor is lift_fresh)
FUNCTION_MODE_ONLY = {
    ".tolist()",
    ".numpy()",
    "np.asarray",
    "repr",
    "print",
    ".cpu()",
    ".to('cpu')",
    ".to(device='cpu')",
    "th.device('cpu')",
    "th.tensor(device=)",
    "th.as_tensor(device=)",
}
META = th.empty(3, device="meta")  # stands for a device tensor: a copy from it to the host


@pytest.mark.parametrize(
    "kind",
    [k for k in SYNCS if k not in FUNCTION_MODE_ONLY] + ["meta.to('cpu')", "meta.cpu()", "host.copy_(meta)"],
)
def test_the_dispatch_mode_alone_backs_up_the_function_mode(kind):
    """Each kind above, except ``FUNCTION_MODE_ONLY``, is caught at the ATen level too (code the function
    mode does not see: inside ``backward()``, C++ reads), and so are copies from another device."""
    does = {
        "meta.to('cpu')": lambda: META.to("cpu"),
        "meta.cpu()": lambda: META.cpu(),
        "host.copy_(meta)": lambda: th.empty(3).copy_(META),
    }.get(kind) or SYNCS[kind][0]
    with no_host_sync(function_mode=False) as violations, pytest.raises(HostSyncError, match=r"aten\.") as caught:
        does()
    assert len(violations) == 1
    assert "test_graph_safety.py:" in str(caught.value)


def test_a_sync_in_a_replay_is_caught_too():
    runs = []

    def update() -> None:
        runs.append(None)
        if len(runs) > 2:  # only from the first replay on (two eager warm-up runs)
            X.sum().item()

    with pytest.raises(HostSyncError, match=r"Tensor\.item"):
        _run(update, runs=5, warmup=2)
    assert len(runs) == 3


def test_a_swallowed_sync_stays_on_record():
    def update() -> None:
        with contextlib.suppress(AssertionError):
            float(X.sum())

    backend = _run(update)
    assert len(backend.violations) == 4 and all("Tensor.__float__" in v for v in backend.violations)


def test_device_work_is_not_flagged():
    """Gathers, sampling, masks used arithmetically, fused Adam switched as on CUDA, target updates."""
    th.manual_seed(0)
    net, target = th.nn.Linear(3, 2), th.nn.Linear(3, 2)
    optimizer = th.optim.Adam(net.parameters(), lr=1e-3)
    switch_optimizers_as_on_cuda(types.SimpleNamespace(_optimizers=lambda: {"actor": optimizer}))
    data = th.randn(50, 3)
    losses = DeviceLossAccumulator()

    def update() -> None:
        idx = th.randint(0, data.shape[0], (8,), device=data.device)
        batch = data[idx]  # integer-tensor gather
        batch = th.cat([batch[:4], data.index_select(0, idx[4:])])
        positive = batch > 0
        batch = th.where(positive, batch, batch * 0.5).masked_fill(~positive & (batch < -2), 0.0)
        batch[batch > 3] = 3.0  # scalar mask assignment: masked_fill_, no nonzero
        batch = batch.to(th.float32).to(data.device).repeat_interleave(2, dim=0)
        rows = [row.sum() for row in batch[:2]] + [batch[th.tensor([1])].sum()]
        loss = net(batch).pow(2).mean() + th.stack(rows).mean() * 0 + len(batch) * 0
        optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        soft_update(net.parameters(), target.parameters(), 0.01)
        losses.add("loss", loss)

    backend = StrictGraphBackend(losses)
    graphs = UpdateGraphs(losses, backend, warmup=2)
    before = net.weight.detach().clone()
    for _ in range(6):
        graphs.run("update", update)
    assert backend.violations == []
    assert not th.equal(net.weight.detach(), before)
    assert losses.counts() == {"loss": 6}


def test_an_optimizer_left_in_its_cpu_configuration_is_flagged():
    """Why the optimizers are switched first: torch's default CPU Adam reads its step count on the host
    (on CUDA ``UpdateRunner.applies`` makes it capturable; an optimizer it could not switch would not be captured)."""
    param = th.nn.Parameter(th.ones(3))
    optimizer = th.optim.Adam([param])

    def update() -> None:
        optimizer.zero_grad()
        param.pow(2).sum().backward()
        optimizer.step()

    update()  # its state made outside (the first step makes it with th.tensor(0.0, device=...), flagged too)
    with pytest.raises(HostSyncError, match=r"Tensor\.item.*torch/optim/.*test_graph_safety\.py:") as caught:
        _run(update)
    assert re.search(r"reached from [^,]*test_graph_safety\.py:\d+ \(update\)", str(caught.value))


def test_no_host_sync_is_only_active_inside():
    with no_host_sync() as violations, pytest.raises(HostSyncError):
        X.sum().item()
    assert len(violations) == 1
    assert X.sum().item() == pytest.approx(2.5)
