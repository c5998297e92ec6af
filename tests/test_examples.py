"""
The example scripts of ``examples/`` that train one algorithm on the shipped Pendulum dataset, each run as a user
runs it (``python examples/<name>.py``) with a few gradient steps: it trains, saves, loads, evaluates and prints
its scores beside the data's. Their default sizes take minutes; these runs take seconds each.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from code_blocks import ROOT, repository_env

#: example -> the arguments of a short run (Cal-QL's fine-tuning trains a whole 200-step episode: left out here,
#: tests/test_contract.py runs every algorithm's learn_online)
SHORT_RUNS = {
    "td3bc_pendulum.py": ["--steps", "20"],
    "iql_pendulum.py": ["--steps", "20", "--online-steps", "20"],
    "cql_pendulum.py": ["--steps", "10", "--bc-fraction", "0.5"],
    "calql_pendulum.py": ["--steps", "10", "--online-steps", "0"],
    "lapo_pendulum.py": ["--steps", "10"],
}
#: examples of this kind run, shortened, by their algorithm's own test
RUN_ELSEWHERE = {"edac_pendulum.py": "tests/test_edac.py", "rebrac_pendulum.py": "tests/test_rebrac.py"}
#: what each one saves into --output
CHECKPOINTS = {
    "td3bc_pendulum.py": ["td3bc.zip", "bc.zip"],
    "iql_pendulum.py": ["iql.zip"],
    "cql_pendulum.py": ["cql.zip"],
    "calql_pendulum.py": ["calql.zip"],
    "lapo_pendulum.py": ["lapo.zip"],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SHORT_RUNS))
def test_example_runs(script: str, tmp_path: Path) -> None:
    argv = [sys.executable, str(ROOT / "examples" / script), *SHORT_RUNS[script], "--episodes", "1"]
    done = subprocess.run(
        [*argv, "--output", str(tmp_path)],
        env={**repository_env(), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    # the data's own return is printed (the shipped dataset's: -432.8, normalized 68.9), then the trained policy's
    assert re.search(r"data\W+(return )?-432\.8\W+(normalized )?68\.9", done.stdout), done.stdout
    assert len(re.findall(r"-?\d+\.\d", done.stdout)) >= 4, done.stdout
    for name in CHECKPOINTS[script]:
        assert (tmp_path / name).stat().st_size > 0, f"{script}: expected {name} in --output"


def test_every_single_algorithm_example_is_run_here() -> None:
    """A new ``examples/<algo>_pendulum.py`` of this kind (one algorithm, the shipped dataset) is added above."""
    shipped = {
        path.name for path in (ROOT / "examples").glob("*_pendulum.py") if "pendulum/imperfect-v0" in path.read_text()
    }
    assert shipped <= set(SHORT_RUNS) | set(RUN_ELSEWHERE), (
        f"examples not run by tests/test_examples.py: {sorted(shipped - set(SHORT_RUNS) - set(RUN_ELSEWHERE))}"
    )
