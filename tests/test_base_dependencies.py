"""
The package's own dependencies (``[project] dependencies`` and what they require) cover what the README's main job
imports: ``sb3-offline train`` runs in a subprocess where every other installed module (the extras', the tests':
rl-zoo3, onnx, ...) refuses to import, as on a fresh ``pip install -e .``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCKER = """
import importlib.abc, importlib.machinery, sys
BLOCKED = set({blocked!r})
class Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # a blocked module is found (importlib.util.find_spec callers, e.g. torch._dynamo, only look) but fails to load
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in BLOCKED:
            return None
        return importlib.machinery.ModuleSpec(name, self, origin=None)
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {{spec.name!r}} (not a dependency of sb3-offline)", name=spec.name)
    def exec_module(self, module):
        raise AssertionError("unreachable")
sys.meta_path.insert(0, Block())
sys.argv = ["sb3-offline", *{argv!r}]
from sb3_offline.cli import main
raise SystemExit(main())
"""


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def base_distributions() -> set[str]:
    """The distributions ``pip install .`` brings: the base dependencies and, recursively, theirs (no extras)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pending = [_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        pending += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def blocked_modules() -> set[str]:
    """Top-level modules of installed distributions that ``pip install .`` would not bring."""
    distributions = base_distributions() | {"sb3-offline", "setuptools"}
    return {
        module
        for module, owners in metadata.packages_distributions().items()
        if not any(_name(owner) in distributions for owner in owners)
    }


@pytest.mark.slow  # a subprocess that imports torch and trains: about 15 s
def test_the_main_job_needs_only_the_base_dependencies(tmp_path: Path) -> None:
    blocked = blocked_modules()
    assert "yaml" not in blocked and "rl_zoo3" in blocked and "onnx" in blocked  # the blocker's premise
    argv = ["train", "--steps", "20", "--eval-freq", "10", "--eval-episodes", "1", "--output", str(tmp_path / "logs")]
    script = BLOCKER.format(blocked=sorted(blocked), argv=argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (tmp_path / "logs" / "bcq" / "Pendulum-v1_1" / "Pendulum-v1.zip").is_file()
