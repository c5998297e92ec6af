"""
``minimize`` computes the gradients of its optimizer's parameters only: an actor's loss through the critics leaves
the critics' ``.grad`` untouched and the actor's gradients are those of a full ``backward()``, and every algorithm's
update with it is the one pinned by the golden files (``tests/test_golden.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch as th
from torch import nn

from sb3_offline.common.training import minimize

ROOT = Path(__file__).resolve().parents[1]


def test_only_the_optimizers_parameters_get_gradients() -> None:
    th.manual_seed(0)
    actor, critic = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)), nn.Linear(5, 1)
    frozen = nn.Linear(3, 3).requires_grad_(False)
    states = th.randn(16, 3)

    def actor_loss() -> th.Tensor:
        return -critic(th.cat([states, th.tanh(actor(frozen(states)))], dim=1)).mean()

    loss = actor_loss()
    expected = th.autograd.grad(loss, list(actor.parameters()))
    optimizer = th.optim.SGD(actor.parameters(), lr=0.0)  # lr 0: the gradients stay to be read
    minimize(optimizer, actor_loss())
    for found, wanted in zip((p.grad for p in actor.parameters()), expected, strict=True):
        assert found is not None and th.equal(found, wanted)
    assert all(p.grad is None for p in critic.parameters())  # no weight gradient computed for the critic
    # a critic's stale gradient is neither read nor changed by the actor's step
    critic.weight.grad = th.full_like(critic.weight, 7.0)
    minimize(optimizer, actor_loss())
    assert th.equal(critic.weight.grad, th.full_like(critic.weight, 7.0))


def _run(module: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},  # TMPDIR: the suite's temp dir
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_twin_critic_table() -> None:
    out = _run("benchmarks.twin_critics", "--algos", "TD3+BC", "BCQ", "--repeats", "2", "--rounds", "1")
    rows = [line for line in out.splitlines() if line.startswith("| TD3+BC") or line.startswith("| BCQ")]
    assert len(rows) == 2 and rows[0].startswith("| TD3+BC | 256 x 256 | 256 + 256 |") and rows[1].endswith("x |")


def test_profile_of_an_update() -> None:
    out = _run("benchmarks.profile_update", "td3bc", "--steps", "3", "--warmup", "2", "--dataset-size", "2000")
    assert out.startswith("td3bc: batch 256, ") and "aten::addmm" in out
