"""
Update-level parity of our Cal-QL with CORL's single-file PyTorch port (``tinkoff-ai/CORL`` commit 6afec90,
``algorithms/finetune/cal_ql.py``), loaded from a local checkout (``--reference``, never copied here). Run with
``python -m benchmarks.parity calql --reference CORL_CHECKOUT [--updates 10] [--seed 0]``.

The harness is :mod:`benchmarks.parity.cql`'s (same data, batches, shared normal and uniform draws, gradient and
parameter records), with the reference values of Cal-QL's bound (CORL's ``mc_returns``, our returns-to-go) fed to
both sides with each batch: standard normals times 2, so that the bound holds some of the policy actions' values.
Both sides have CORL's sizes (policy 3 x 256, Q-functions 2 x 256; the authors' AntMaze script, our defaults:
2 x 256 and 4 x 256) and our defaults otherwise (the Lagrange form with a target gap of 0.8, the max backup, 10
sampled actions, no behaviour cloning).

Our Cal-QL follows the authors' JAX code (``nakamotoo/Cal-QL`` commit ac6eafe, ``JaxCQL/conservative_sac.py``), whose
step computes every loss from the networks of the start of the step, as CORL's; its actor head is CORL's
(``log sigma = m * head + c``) and its tanh correction exact (CORL's ``TanhTransform``, the authors' distrax
``Tanh``): nothing differs, and the one row, ``as-shipped`` (CORL unmodified against our Cal-QL), must sit at float
tolerance.
"""

from __future__ import annotations

import pathlib
from typing import Any

import torch as th

from benchmarks.parity.core import ParityRow
from benchmarks.parity.cql import build_corl, build_ours, compare
from benchmarks.parity.iql import load_reference, make_batches, make_transitions
from sb3_offline import CalQL

#: CORL's sizes (``TanhGaussianPolicy``: 3 x 256; ``q_n_hidden_layers=2``)
SIZES = {"pi": [256, 256, 256], "qf": [256, 256]}
VARIANTS = ("as-shipped",)


def run(reference: pathlib.Path, updates: int = 10, seed: int = 0, batch_size: int = 256, **_: Any) -> list[ParityRow]:
    """
    The parity rows of Cal-QL against CORL's ``cal_ql.py`` in the checkout ``reference``.

    :param reference: a CORL checkout (commit 6afec90)
    :param updates: K, the updates each side runs
    :param seed: seed of the weights, the batches, the reference values and the random draws
    :param batch_size: rows per batch
    """
    corl = load_reference(pathlib.Path(reference), "algorithms/finetune/cal_ql.py", "corl_cal_ql")
    rows = []
    for variant in VARIANTS:
        th.manual_seed(seed)
        model = build_ours(CalQL, "MlpPolicy", seed, policy_kwargs={"net_arch": SIZES})
        trainer = build_corl(corl, "CalQL", model)
        batches = make_batches(make_transitions(seed=seed), updates, batch_size, seed)
        generator = th.Generator().manual_seed(seed + 3)
        references = {id(batch): 2.0 * th.randn(batch_size, 1, generator=generator) for batch in batches}
        notes = "none in the update"
        draw = references.__getitem__
        row = compare(
            "Cal-QL", variant, "algorithms/finetune/cal_ql.py", model, trainer, batches, seed,
            notes + "; policy 3 x 256, Q 2 x 256", extra=lambda batch, draw=draw: [draw(id(batch))],
            reference=lambda batch, draw=draw: draw(id(batch)),
        )  # fmt: skip
        rows.append(row)
    return rows
