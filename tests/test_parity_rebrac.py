"""
Update-level parity of ReBRAC with the authors' JAX code (``benchmarks/parity/rebrac.py``): with SGD on both sides
(no optimizer state to magnify float roundings) our losses, gradients and parameters are theirs to float tolerance;
as shipped (Adam) the first update is. Needs ``jax``, ``flax``, ``optax`` and ``chex`` and a checkout of
``tinkoff-ai/ReBRAC`` named by ``SB3_OFFLINE_REBRAC``; skipped without them.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import pytest

REBRAC = os.environ.get("SB3_OFFLINE_REBRAC")
pytestmark = [
    pytest.mark.skipif(
        not REBRAC or not (pathlib.Path(REBRAC) / "src/algorithms/rebrac.py").is_file(),
        reason="SB3_OFFLINE_REBRAC: no checkout of tinkoff-ai/ReBRAC given",
    ),
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in ("jax", "flax", "optax", "chex")),
        reason="jax, flax, optax or chex is not installed",
    ),
]


def test_update_matches_the_authors_jax_code() -> None:
    from benchmarks.parity import rebrac

    (sgd,) = rebrac.run(pathlib.Path(str(REBRAC)), updates=4, batch_size=64, variants=("sgd",))
    assert sgd.at_float_tolerance, sgd
    (adam,) = rebrac.run(pathlib.Path(str(REBRAC)), updates=1, batch_size=64, variants=("adam",))
    assert adam.at_float_tolerance, adam
