"""The training device as asked for: a CUDA device asked for where CUDA is not available is said, not hidden."""

from __future__ import annotations

import warnings
from typing import Any

import torch as th


def warn_unavailable_cuda(device: Any) -> None:
    """
    A ``UserWarning`` when ``device`` names a CUDA device (``"cuda"``, ``"cuda:1"``, ``th.device("cuda")``) and
    ``torch.cuda.is_available()`` is false. SB3's ``get_device`` then falls back to the CPU without a word; the
    run still goes on there (as in SB3), but a user who asked for the GPU is told it is not used.

    :param device: the ``device`` argument of an algorithm (``"auto"`` never warns)
    """
    if isinstance(device, str) and device == "auto":
        return
    if th.device(device).type == "cuda" and not th.cuda.is_available():
        warnings.warn(
            f"device={str(device)!r}: CUDA is not available here (torch.cuda.is_available() is False; a CPU-only "
            "PyTorch build or no GPU); running on the CPU instead",
            UserWarning,
            stacklevel=2,
        )
