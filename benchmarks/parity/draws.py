"""
Shared random draws for the parity harness: the k-th draw of a kind that one implementation makes is the k-th
draw of that kind the other makes (:class:`SharedDraws`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch as th
import torch.distributions.normal as normal_module

#: torch's own samplers (the ones :meth:`SharedDraws.patched` replaces), for the shared draws themselves
_RANDN, _RAND, _RANDINT = th.randn, th.rand, th.randint


class ParityError(RuntimeError):
    """The two sides cannot be compared (layers of other shapes, random draws of other shapes or counts)."""


def _shape(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[int, ...]:
    size = kwargs.get("size", args)
    if len(size) == 1 and isinstance(size[0], tuple | list | th.Size):
        size = size[0]
    return tuple(int(s) for s in size)


class SharedDraws:
    """
    The random draws of one update, shared by both sides: the k-th draw of a kind (``normal``, ``uniform``,
    ``integers``) that a side makes is the k-th one of that kind made on either side, drawn once from a generator
    seeded with ``seed``. Inside :meth:`patched` the torch and numpy functions the implementations draw with
    return these draws; :meth:`finish_update` checks that both sides drew alike and starts the next update's.
    """

    def __init__(self, seed: int) -> None:
        self.generator = th.Generator().manual_seed(seed)
        self.drawn: dict[str, list[tuple[th.Tensor, tuple[int, int]]]] = {}
        self.cursors: dict[str, dict[str, int]] = {}

    def draw(self, side: str, kind: str, shape: tuple[int, ...], bounds: tuple[int, int] = (0, 0)) -> th.Tensor:
        """The side's next draw of ``kind`` (``bounds``: ``[low, high)`` of integers), made if no side made it yet."""
        drawn, cursor = self.drawn.setdefault(kind, []), self.cursors.setdefault(side, {})
        k = cursor.get(kind, 0)
        cursor[kind] = k + 1
        if k == len(drawn):
            if kind == "normal":
                value = _RANDN(shape, generator=self.generator)
            elif kind == "uniform":
                value = _RAND(shape, generator=self.generator)
            else:
                value = _RANDINT(bounds[0], bounds[1], shape, generator=self.generator)
            drawn.append((value, bounds))
        value, drawn_bounds = drawn[k]
        if tuple(value.shape) != tuple(shape) or drawn_bounds != bounds:
            raise ParityError(
                f"{side}'s {kind} draw #{k + 1}: expected shape {tuple(value.shape)} and bounds {drawn_bounds} "
                f"(the other side's), found {tuple(shape)} and {bounds}"
            )
        return value.clone()

    def finish_update(self) -> None:
        """Check that every side made as many draws of each kind, then forget them."""
        counts = {side: dict(sorted(cursor.items())) for side, cursor in self.cursors.items()}
        if len({str(c) for c in counts.values()}) > 1:
            raise ParityError(f"random draws: expected the same number of each kind on both sides, found {counts}")
        self.drawn.clear()
        self.cursors.clear()

    def _functions(self, side: str) -> dict[tuple[Any, str], Callable[..., Any]]:
        def floats(kind: str, shape: tuple[int, ...], dtype: Any, device: Any) -> th.Tensor:
            return self.draw(side, kind, shape).to(dtype=dtype or th.get_default_dtype(), device=device or "cpu")

        def like(kind: str) -> Callable[..., th.Tensor]:
            def draw_like(t: th.Tensor, dtype: Any = None, device: Any = None, **_: Any) -> th.Tensor:
                return floats(kind, tuple(t.shape), dtype or t.dtype, device or t.device)

            return draw_like

        def randint(*args: Any, dtype: Any = th.int64, device: Any = None, **kwargs: Any) -> th.Tensor:
            low, high, shape = (0, *args) if len(args) == 2 else args
            return self.draw(side, "integers", _shape((shape,), {}), (int(low), int(high))).to(
                dtype=dtype, device=device
            )

        def normal(mean: Any, std: Any = 1.0, *args: Any, **kwargs: Any) -> th.Tensor:
            shape = th.broadcast_shapes(th.as_tensor(mean).shape, th.as_tensor(std).shape) or _shape(args, kwargs)
            return mean + std * floats("normal", tuple(shape), kwargs.get("dtype"), kwargs.get("device"))

        def numpy_randint(low: int, high: int | None = None, size: Any = None, dtype: Any = int) -> Any:
            low, high = (0, low) if high is None else (low, high)
            shape = () if size is None else (size,) if np.isscalar(size) else tuple(size)
            value = self.draw(side, "integers", shape, (int(low), int(high))).numpy().astype(dtype)
            return value if size is not None else value.item()

        return {
            (th, "randn"): lambda *a, dtype=None, device=None, **k: floats("normal", _shape(a, k), dtype, device),
            (th, "rand"): lambda *a, dtype=None, device=None, **k: floats("uniform", _shape(a, k), dtype, device),
            (th, "randn_like"): like("normal"),
            (th, "rand_like"): like("uniform"),
            (th, "randint"): randint,
            (th, "normal"): normal,
            (normal_module, "_standard_normal"): lambda shape, dtype, device: floats("normal", shape, dtype, device),
            (np.random, "randint"): numpy_randint,
        }

    @contextlib.contextmanager
    def patched(self, side: str) -> Iterator[None]:
        """Within: ``side``'s random draws are the shared ones."""
        functions = self._functions(side)
        saved = {key: getattr(*key) for key in functions}
        for (owner, name), function in functions.items():
            setattr(owner, name, function)
        try:
            yield
        finally:
            for (owner, name), function in saved.items():
                setattr(owner, name, function)
