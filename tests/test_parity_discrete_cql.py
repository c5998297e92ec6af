"""
Update-level parity of DiscreteCQL (base "dqn") with d3rlpy 2.8.1's ``DiscreteCQLImpl`` (``benchmarks/parity``): the
same losses, gradients and parameters (the target's copies included) to float tolerance on the same weights and
batches. Needs d3rlpy 2.8.1 installed (run with a venv that has it); skipped without it.
"""

from __future__ import annotations

import pathlib

import pytest

d3rlpy = pytest.importorskip("d3rlpy")


def test_update_matches_d3rlpys_discrete_cql() -> None:
    from benchmarks.parity.discrete_cql import run

    package = pathlib.Path(d3rlpy.__file__).parent
    (row,) = run(package, updates=7, batch_size=32, interval=3)
    assert row.at_float_tolerance, row
    assert max(row.max_loss_diff, row.max_param_diff, row.max_grad_diff) < 1e-5
    # the harness sees a difference: d3rlpy with another alpha parts at the first update's loss
    (other,) = run(package, updates=2, batch_size=32, interval=3, reference_alpha=2.0)
    assert other.max_loss_diff > 1e-2
