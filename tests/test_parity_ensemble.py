"""
Update-level parity of SAC-N and EDAC with CORL's PyTorch ports (``benchmarks/parity/sac_n.py``, ``edac.py``): our
update made to follow CORL's order (a harness variant) must give CORL's losses, gradients and parameters to float
tolerance, and the update as shipped (the EDAC authors' order: every loss from the networks of the start of the step)
must differ. Needs a CORL checkout (``tinkoff-ai/CORL`` commit 6afec90) named by ``SB3_OFFLINE_CORL``; skipped
without one.
"""

from __future__ import annotations

import importlib
import os
import pathlib

import pytest

CORL = os.environ.get("SB3_OFFLINE_CORL")
pytestmark = pytest.mark.skipif(
    not CORL or not (pathlib.Path(CORL) / "algorithms/offline/edac.py").is_file(),
    reason="SB3_OFFLINE_CORL: no CORL checkout given",
)


@pytest.mark.parametrize("algorithm", ["sac_n", "edac"])
def test_update_matches_corl_when_made_to_follow_it(algorithm: str) -> None:
    module = importlib.import_module(f"benchmarks.parity.{algorithm}")
    rows = {row.variant: row for row in module.run(pathlib.Path(str(CORL)), updates=3, batch_size=64, n_critics=5)}
    assert rows["ours-as-corl"].at_float_tolerance, rows["ours-as-corl"]
    assert rows["as-shipped"].max_loss_diff > 1e-3  # the authors' order, not CORL's
