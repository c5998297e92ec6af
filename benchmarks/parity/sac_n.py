"""
Update-level parity of our SAC-N with CORL's single-file PyTorch port (``tinkoff-ai/CORL`` commit 6afec90,
``algorithms/offline/sac_n.py``), loaded from a local checkout (``--reference``, never copied here). Run with
``python -m benchmarks.parity sac_n --reference CORL_CHECKOUT [--updates 10] [--seed 0] [--set n_critics=10]``.

The harness, its rows and the difference of order are :mod:`benchmarks.parity.edac`'s (SAC-N is EDAC with
``eta = 0``; CORL's ``sac_n.py`` is its ``edac.py`` without the diversity term).
"""

from __future__ import annotations

import pathlib
from typing import Any

from benchmarks.parity.core import ParityRow
from benchmarks.parity.edac import run_algorithm


def run(
    reference: pathlib.Path, updates: int = 10, seed: int = 0, batch_size: int = 256, **kwargs: Any
) -> list[ParityRow]:
    """
    The parity rows of SAC-N against CORL's ``sac_n.py`` in the checkout ``reference``.

    :param reference: a CORL checkout (commit 6afec90)
    :param updates: K, the updates each side runs
    :param seed: seed of the weights, the batches and the random draws
    :param batch_size: rows per batch
    :param kwargs: our constructor's arguments (``n_critics``)
    """
    return run_algorithm(reference, "sac_n", updates, seed, batch_size, **kwargs)
