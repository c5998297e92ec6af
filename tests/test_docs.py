"""
The documentation site (``mkdocs.yml``, ``docs/``) as a reader uses it: every ```python block of every page runs as
a fresh script, and every ``sb3-offline`` command of its ```bash blocks through the command's entry point, a page's
blocks in order in one fresh folder (one reader's session); a block marked ``<!-- norun: reason -->`` on the line
before its fence is left out, with its reason. The site builds with ``mkdocs build --strict`` (warnings as errors:
a broken link or anchor, a page left out of the nav, a docstring mkdocstrings cannot read), every algorithm has its
page, and the home page's first run is the README's first block.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from code_blocks import ROOT, CodeBlock, cli_commands, markdown_blocks, run_cli, run_python_script

from sb3_offline.algorithms import ALGOS

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
#: algorithm pages beyond ``ALGOS`` (classes used from Python only), name -> the class the page documents
EXTRA_ALGORITHM_PAGES = {"her_ddpg": "sb3_offline.her.HerDDPG"}
#: the sections of an algorithm page, in order (sb3-contrib's module pages)
ALGORITHM_SECTIONS = ["## Notes", "## Can I use?", "## Example", "## Results", "## Parameters"]


def page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def runnable(page: Path) -> list[CodeBlock]:
    """The page's Python blocks and its bash blocks with ``sb3-offline`` commands, not marked norun."""
    return [
        block
        for block in markdown_blocks(page)
        if block.norun is None
        and (block.language == "python" or (block.language == "bash" and cli_commands(block.code)))
    ]


def test_every_fence_is_found_and_every_norun_names_its_reason() -> None:
    """No block escapes the runner: fences are at the start of a line (not indented), a norun says why."""
    for page in PAGES:
        text = page.read_text()
        indented = re.findall(r"^[ \t]+```", text, flags=re.M)
        assert not indented, f"{page_id(page)}: an indented fence is not run by tests/test_docs.py; unindent it"
        assert text.count("```") == 2 * len(markdown_blocks(page)), f"{page_id(page)}: an unclosed or odd fence"
        for marker in re.findall(r"<!--\s*norun.*?-->", text):
            assert re.fullmatch(r"<!--\s*norun:\s*\S.*-->", marker), f"{page_id(page)}: {marker} names no reason"


def test_python_blocks_compile() -> None:
    """Every Python block is valid Python, runnable or not."""
    for page in PAGES:
        for block in markdown_blocks(page, "python"):
            ast.parse(block.code, f"{page_id(page)}:{block.line}")


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=page_id)
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    """A page's blocks in order in one fresh folder: Python as a fresh script, ``sb3-offline`` commands as typed."""
    for block in runnable(page):
        where = f"docs/{page_id(page)}:{block.line}"
        if block.language == "python":
            done = run_python_script(block.code, tmp_path)
            assert done.returncode == 0, f"{where}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            continue
        for command in cli_commands(block.code):
            done = run_cli(command, tmp_path)
            assert done.returncode == 0, f"{where}: {command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_every_algorithm_has_its_page_in_the_nav() -> None:
    """``docs/algorithms/<name>.md`` for each of ``ALGOS`` (and HerDDPG), with the sections, the class, a nav line."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {name: f"sb3_offline.{cls.__name__}" for name, cls in ALGOS.items()} | EXTRA_ALGORITHM_PAGES
    for name, target in pages.items():
        page = DOCS / "algorithms" / f"{name}.md"
        assert page.exists(), f"{name}: expected docs/algorithms/{name}.md (Notes, Can I use?, Example, Results, ...)"
        text = page.read_text()
        found = [section for section in ALGORITHM_SECTIONS if f"\n{section}\n" in text]
        assert found == ALGORITHM_SECTIONS, f"docs/algorithms/{name}.md: expected {ALGORITHM_SECTIONS}, found {found}"
        assert f"\n::: {target}\n" in text, f"docs/algorithms/{name}.md: expected the line '::: {target}'"
        assert f"- algorithms/{name}.md" in nav, f"mkdocs.yml: expected '- algorithms/{name}.md' in the nav"


def test_home_page_first_run_is_the_readme_first_block() -> None:
    """docs/index.md's first run is README.md's first block, character for character (tests/test_readme.py runs it)."""
    readme = markdown_blocks(ROOT / "README.md", "python")[0]
    home = markdown_blocks(DOCS / "index.md", "python")[0]
    assert home.code == readme.code, "docs/index.md: the first Python block differs from README.md's first block"


MKDOCS = all(
    importlib.util.find_spec(name) for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
)


@pytest.mark.skipif(
    not MKDOCS, reason="mkdocs, mkdocs-material or mkdocstrings[python] not installed (pip install -e '.[docs]')"
)
def test_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict``: warnings (broken links and anchors, pages out of the nav) fail the build."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    for name in ALGOS:
        assert (tmp_path / "site" / "algorithms" / name / "index.html").exists()
    assert "IQL" in (tmp_path / "site" / "algorithms" / "iql" / "index.html").read_text()
    # the home page is docs/index.md, and README.md and RESULTS.md are pages of their own (docs/hooks/)
    assert "A first run" in (tmp_path / "site" / "index.html").read_text()
    assert "Set-up" in (tmp_path / "site" / "readme" / "index.html").read_text()
    assert (tmp_path / "site" / "RESULTS" / "index.html").exists()
    assert (tmp_path / "site" / "examples" / "iql_pendulum.py").exists()  # linked from docs/algorithms/iql.md
