"""gymnasium-robotics imported by sb3_offline (the zoo, HER's goal envs) without the notice its import prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "code",
    [
        "from sb3_offline.her.collect import make_goal_env; make_goal_env('FetchReach-v4').close()",
        "import sb3_offline.zoo as zoo; zoo.register(); import gymnasium as gym; gym.make('AntMaze_UMaze-v4').close()",
    ],
)
def test_gymnasium_robotics_imported_without_its_notice(code: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "AdroitHand" not in result.stderr and "gymnasium-robotics==" not in result.stderr, result.stderr
