"""
The speed scripts run as their docstrings say (tiny sizes: what they print, not how fast): ``benchmarks.throughput``
over the Box-action algorithms with SAC-N/EDAC rows per ensemble size, ``benchmarks.ensemble_throughput`` against
CORL's ``sac_n.py``/``edac.py`` when a CORL checkout is named by ``SB3_OFFLINE_CORL`` (skipped without one),
``benchmarks.twin_critics``, ``benchmarks.profile_update`` and ``benchmarks.minimize_ab``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks.throughput import make_parser
from sb3_offline.algorithms import ALGOS

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORL = os.environ.get("SB3_OFFLINE_CORL")


def _stdout(module: str, *args: str) -> str:
    """What ``python -m module args`` prints, run with the suite's environment (its TMPDIR), one torch thread."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},  # TMPDIR: the suite's temp dir
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _run(module: str, *args: str) -> list[str]:
    """The markdown rows the script prints to stdout, after its header rows (nothing else may land between them)."""
    stdout = _stdout(module, *args)
    lines = stdout.splitlines()
    table = [i for i, line in enumerate(lines) if line.startswith("|")]
    assert table and table == list(range(table[0], table[-1] + 1)), stdout  # one unbroken table
    return [lines[i] for i in table[2:]]


def test_default_algorithms_are_every_box_action_one() -> None:
    """The default run measures every algorithm for Box actions (the discrete ones cannot take Hopper's actions)."""
    default = make_parser().parse_args([]).algos
    assert set(default) == {name for name in ALGOS if not name.startswith("discrete_")} | {"plas/vae"}
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--algos", "discrete_bc"])


def test_throughput_table_with_ensemble_sizes() -> None:
    rows = _run(
        "benchmarks.throughput",
        *("--algos", "bc", "sac_n", "--n-critics", "2", "3", "--no-d3rlpy", "--devices", "cpu"),
        *("--dataset-size", "2000", "--steps", "2", "--warmup", "1"),
    )
    names = [row.split("|")[1].strip() for row in rows]
    assert names == ["bc", "sac_n/N2", "sac_n/N3"]
    assert all(float(row.split("|")[4]) > 0 for row in rows)


@pytest.mark.skipif(
    not CORL or not (pathlib.Path(str(CORL)) / "algorithms/offline/edac.py").is_file(),
    reason="SB3_OFFLINE_CORL: no CORL checkout given",
)
def test_ensemble_throughput_against_corl() -> None:
    rows = _run(
        "benchmarks.ensemble_throughput",
        *("--reference", str(CORL), "--n-critics", "2", "--dataset-size", "2000", "--steps", "2", "--warmup", "1"),
    )
    assert [row.split("|")[1:3] for row in rows] == [[" sac_n ", " 2 "], [" edac ", " 2 "]]
    assert all(float(row.split("|")[5]) > 0 for row in rows)


def test_twin_critic_table() -> None:
    rows = _run("benchmarks.twin_critics", "--algos", "TD3+BC", "BCQ", "--repeats", "2", "--rounds", "1")
    assert len(rows) == 2 and rows[0].startswith("| TD3+BC | 256 x 256 | 256 + 256 |") and rows[1].endswith("x |")


def test_profile_of_an_update() -> None:
    out = _stdout("benchmarks.profile_update", "td3bc", "--steps", "3", "--warmup", "2", "--dataset-size", "2000")
    assert out.startswith("td3bc: batch 256, ") and "aten::addmm" in out


def test_minimize_against_a_full_backward() -> None:
    """The A/B swaps every module's ``minimize`` for the full ``backward()`` form inside, and back after."""
    import sb3_offline.td3bc.td3bc as td3bc_module
    from benchmarks.minimize_ab import full_backward, full_backward_minimize
    from sb3_offline.common.training import minimize

    with full_backward():
        assert td3bc_module.minimize is full_backward_minimize
    assert td3bc_module.minimize is minimize
    rows = _run("benchmarks.minimize_ab", *("--algos", "td3bc", "--dataset-size", "2000", "--steps", "2"))
    assert len(rows) == 1 and rows[0].startswith("| td3bc | ") and rows[0].endswith("x |")
