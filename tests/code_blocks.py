"""
The code blocks of a Markdown file as a reader pastes them, for the tests that run them (``tests/test_readme.py``:
README.md; ``tests/test_docs.py``: the site's pages under ``docs/``): the fenced blocks, the ``sb3-offline``
commands of a bash block, a text substitution, and the ``sb3-offline`` command run through its entry point.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: an HTML comment on the line before a fence that keeps the block from being run, with its reason:
#: ``<!-- norun: reads a remote dataset -->``
NORUN = re.compile(r"<!--\s*norun:\s*(\S.*?)\s*-->")


@dataclass(frozen=True)
class CodeBlock:
    """
    :param line: line of the opening fence (1-based)
    :param language: the fence's language (``python``, ``bash``; empty for a plain fence)
    :param code: the block's text
    :param norun: the reason given by a ``<!-- norun: ... -->`` on the line before the fence, or ``None``
    """

    line: int
    language: str
    code: str
    norun: str | None = None


def markdown_blocks(path: Path, language: str | None = None) -> list[CodeBlock]:
    """
    The file's fenced blocks (a fence at the start of a line; attributes after the language allowed), in order,
    of ``language`` only when given.
    """
    text = path.read_text()
    blocks = []
    for found in re.finditer(r"^```(\w*)[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        if language is not None and found.group(1) != language:
            continue
        before = text[: found.start()]
        previous = before.rstrip("\n").rsplit("\n", 1)[-1]
        norun = NORUN.fullmatch(previous.strip())
        blocks.append(
            CodeBlock(before.count("\n") + 1, found.group(1), found.group(2), norun.group(1) if norun else None)
        )
    return blocks


def cli_commands(code: str) -> list[str]:
    """A bash block's ``sb3-offline`` commands as written: continuation lines joined, comments cut, ``&&`` split."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        for part in re.sub(r"(^|\s+)#.*$", "", line).split(" && "):
            part = " ".join(part.split())
            if part.startswith("sb3-offline "):
                commands.append(part)
    return commands


def substitute(code: str, substitutions: dict[str, str]) -> str:
    """``code`` with each key of ``substitutions`` that it holds replaced by its value."""
    for written, run in substitutions.items():
        if written in code:
            code = code.replace(written, run)
    return code


def repository_env() -> dict[str, str]:
    """The environment of a subprocess that imports this checkout's ``sb3_offline`` (and ``benchmarks``)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def run_cli(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``sb3-offline ...`` as the shell runs it, through the script's ``main`` (``python -m sb3_offline.cli``)."""
    argv = [sys.executable, "-m", "sb3_offline.cli", *shlex.split(command)[1:]]
    return subprocess.run(argv, cwd=cwd, env=repository_env(), capture_output=True, text=True, timeout=600)


def run_python_script(code: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``code`` as a fresh script (``python -c``) in ``cwd``, one torch thread."""
    env = {**repository_env(), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
