"""
Nothing in the machine's temp dir: learning (offline, online, a behaviour agent of ``collect``) makes no SB3 logger
folder there, and the suite's guard (``conftest.temp_dir``) points the temp dir to pytest's ``basetemp`` and
catches what would still be written there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gymnasium as gym
import pytest
from conftest import REAL_TEMP_DIR, TEMP_WRITES

from sb3_offline import AWAC
from sb3_offline.collect.agents import make_behaviour_agent
from sb3_offline.datasets import Transitions


def test_learning_makes_no_folder_in_the_temp_dir(
    pendulum_transitions: Transitions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SB3's configure_logger makes an empty ``SB3-<date>`` folder in the temp dir at each learn(): ours does not."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    model = AWAC("MlpPolicy", gym.make("Pendulum-v1"), dataset=pendulum_transitions, batch_size=16, learning_starts=5)
    model.learn(2)
    model.learn_online(8)
    for verbose in (0, 1):
        agent = make_behaviour_agent(gym.make("Pendulum-v1"), "td3", seed=0, learning_starts=5, verbose=verbose)
        agent.learn(8)
    assert [entry for entry in os.listdir(temp) if not entry.startswith("torchinductor_")] == []  # torch's own cache


def test_the_suite_writes_in_its_own_temp_dir(temp_dir: Path) -> None:
    from sb3_offline.common.robotics import register_gymnasium_robotics

    register_gymnasium_robotics()
    assert tempfile.gettempdir() == str(temp_dir) == os.environ["TMPDIR"] != REAL_TEMP_DIR
    env = gym.make("AntMaze_UMaze-v4")  # gymnasium-robotics writes its maze into <temp dir>/ant_maze<time>.xml
    env.close()
    assert list(temp_dir.glob("ant_maze*.xml"))  # v4: ant_maze<time>.xml, one per env made
    # the guard sees a write at the top of the real temp dir
    stray = os.path.join(REAL_TEMP_DIR, f"sb3-offline-guard-check-{os.getpid()}")
    try:
        with open(stray, "w"):
            pass
        assert stray in TEMP_WRITES
        # os.makedirs(exist_ok=True) on a folder already there (CI's MINARI_DATASETS_PATH=$(mktemp -d)) writes nothing
        os.makedirs(stray + ".d")
        TEMP_WRITES.remove(stray + ".d")
        os.makedirs(stray + ".d", exist_ok=True)
        assert stray + ".d" not in TEMP_WRITES
    finally:
        TEMP_WRITES.remove(stray)
        os.remove(stray)
        if os.path.isdir(stray + ".d"):
            os.rmdir(stray + ".d")
