"""
README.md as a user pastes it: every ```python block run as written, in a fresh folder with the shipped dataset,
and every ``sb3-offline`` command of every ```bash block run through the command's entry point (``python -m
sb3_offline.cli``, the ``sb3-offline`` script's ``main``). Install lines (``pip ...``) and other programs
(``python examples/...``, ``python -m pytest``) are not run here.

Not run, with the reason: ``PYTHON_ELSEWHERE`` and ``CLI_NOT_RUN``. Run with fewer steps, only through an explicit
substitution of the README's text (each must match the README exactly, so an edit of the README that drops one
fails here): ``PYTHON_FEWER_STEPS`` and ``CLI_FEWER_STEPS``. The first block is also run exactly as written
(marked slow, with every other block) and must print the score the README states for it; the quick run leaves
out the ``PYTHON_SLOW`` blocks.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from code_blocks import ROOT, cli_commands, markdown_blocks, run_cli, substitute

README = ROOT / "README.md"

#: Python blocks run by another test, by a string that only that block holds
PYTHON_ELSEWHERE = {
    "HerDDPG(": "tests/test_her_ddpg.py runs it as written with 500 gradient steps instead of 3000 (FetchReach)",
}
#: Python blocks run only by the slow test, with the reason
PYTHON_SLOW = {
    "FQE(": "FQE precomputes BCQ's actions (100 candidates per state) for the 45k training states: minutes on a CPU",
}
#: README text -> what runs instead in the quick run (fewer gradient steps); the slow test runs the first block as is
PYTHON_FEWER_STEPS = {
    "model.learn(total_timesteps=5_000, progress_bar=True)": "model.learn(total_timesteps=50, progress_bar=True)",
    "model.learn(20_000, callback=OfflineEvalCallback(split.validation, eval_freq=1000,": (
        "model.learn(100, callback=OfflineEvalCallback(split.validation, eval_freq=50,"
    ),
    "fqe.learn(10_000, progress_bar=True)": "fqe.learn(100, progress_bar=True)",
}
#: ``sb3-offline`` commands of the README not run here, by a string that only they hold, with the reason
CLI_NOT_RUN = {
    "--protocol imperfect --steps 100000": "trains a TD3 expert on Hopper-v5 first (1M env steps: hours)",
    "--env Hopper-v5 -f logs/ -n 100000": "reads mujoco/hopper/medium-v0 from Minari's remote store (network)",
    "--storage postgresql://": "needs a PostgreSQL server holding the Optuna study",
}
#: README command -> the command run (fewer steps or episodes; every other argument as written)
CLI_FEWER_STEPS = {
    "sb3-offline train": "sb3-offline train --steps 20 --eval-freq 10 --eval-episodes 1",
    (
        "sb3-offline train --algo plas --steps 2000 -params vae_steps:1000 batch_size:64 "
        'policy_kwargs:"dict(net_arch=[64, 64])"'
    ): (
        "sb3-offline train --algo plas --steps 20 -params vae_steps:10 batch_size:64 "
        'policy_kwargs:"dict(net_arch=[64, 64])" --eval-freq 10 --eval-episodes 1'
    ),
    (
        "sb3-offline train --algo plas --config sb3_offline/zoo/configs/plas.yml --env Pendulum-v1 --steps 2000 "
        "-params vae_steps:1000"
    ): (
        "sb3-offline train --algo plas --config sb3_offline/zoo/configs/plas.yml --env Pendulum-v1 --steps 20 "
        "-params vae_steps:10 --eval-freq 10 --eval-episodes 1"
    ),
    "sb3-offline collect --env Hopper-v5 --protocol random --steps 100000 --ref-min -20.3 --ref-max 3234.3": (
        "sb3-offline collect --env Hopper-v5 --protocol random --steps 300 --ref-min -20.3 --ref-max 3234.3"
    ),
    "sb3-offline record --env Pendulum-v1 --steps 10000 --output pendulum.hdf5": (
        "sb3-offline record --env Pendulum-v1 --steps 400 --output pendulum.hdf5"
    ),
    "sb3-offline zoo train --algo bcq --env Pendulum-v1 -f logs/ --eval-freq 5000 -tb runs/ --seed 0": (
        "sb3-offline zoo train --algo bcq --env Pendulum-v1 -f logs/ --eval-freq 20 -tb runs/ --seed 0 -n 40 "
        "--eval-episodes 1"
    ),
    "sb3-offline zoo enjoy --algo bcq --env Pendulum-v1 -f logs/ --no-render": (
        "sb3-offline zoo enjoy --algo bcq --env Pendulum-v1 -f logs/ --no-render -n 200"
    ),
}


def readme_blocks(language: str, readme: Path = README) -> list[tuple[int, str]]:
    """The README's ```<language> blocks as (line of the opening fence, code)."""
    return [(block.line, block.code) for block in markdown_blocks(readme, language)]


def run_python_block(code: str, line: int) -> str:
    """Run one block as a fresh script in the current folder; return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__main__"})
    return printed.getvalue()


def test_every_exception_and_substitution_matches_the_readme() -> None:
    """A stale entry (the README changed under it) fails here instead of silently running nothing."""
    python = "".join(code for _, code in readme_blocks("python"))
    commands = [command for _, code in readme_blocks("bash") for command in cli_commands(code)]
    for written in [*PYTHON_ELSEWHERE, *PYTHON_SLOW, *PYTHON_FEWER_STEPS]:
        assert python.count(written) == 1, f"README.md: expected one Python block with {written!r}"
    for written in CLI_NOT_RUN:
        assert any(written in command for command in commands), f"README.md: no command with {written!r}"
    for written in CLI_FEWER_STEPS:
        assert written in commands, f"README.md: expected the command {written!r}, found {commands}"


def run_python_blocks(folder: Path, quick: bool) -> str:
    """
    Every Python block in README order in ``folder`` (one user's session in one folder), each as a fresh script,
    with ``PYTHON_FEWER_STEPS`` except the first block's when not ``quick``, and without the ``PYTHON_SLOW`` blocks
    when ``quick``; return what the first block printed.
    """
    first = ""
    for index, (line, code) in enumerate(readme_blocks("python")):
        if any(key in code for key in PYTHON_ELSEWHERE) or (quick and any(key in code for key in PYTHON_SLOW)):
            continue
        printed = run_python_block(code if index == 0 and not quick else substitute(code, PYTHON_FEWER_STEPS), line)
        first = first or printed
    assert (folder / "policy.onnx").stat().st_size > 0  # the deploy block ran on the first block's checkpoint
    return first


def test_python_blocks_run_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python blocks with ``PYTHON_FEWER_STEPS``, the ``PYTHON_SLOW`` ones left to the next test."""
    monkeypatch.chdir(tmp_path)
    assert "normalized" in run_python_blocks(tmp_path, quick=True)


def first_block_claim() -> tuple[float, float]:
    """The return and normalized score the README's first block says it prints."""
    _, code = readme_blocks("python")[0]
    found = re.search(r"# prints: return (-?\d+\.\d), normalized (-?\d+\.\d)", code)
    assert found, "README.md: the first block ends with '# prints: return R, normalized S'"
    return float(found.group(1)), float(found.group(2))


@pytest.mark.slow
def test_python_blocks_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Every Python block, the first exactly as written (TD3+BC, 5000 gradient steps on the shipped imperfect Pendulum
    data, seed 0): it prints the return and normalized score its comment states (to 1.0 of either: another CPU's
    float rounding), and the algorithm beats the data (the behaviour policy's normalized 68.9).
    """
    monkeypatch.chdir(tmp_path)
    printed = run_python_blocks(tmp_path, quick=False)
    found = re.search(r"return (-?\d+\.\d), normalized (-?\d+\.\d)", printed)
    assert found, f"the first block printed {printed!r}"
    claimed_return, claimed_score = first_block_claim()
    assert float(found.group(1)) == pytest.approx(claimed_return, abs=1.0)
    assert float(found.group(2)) == pytest.approx(claimed_score, abs=1.0)
    assert float(found.group(2)) > 68.9


def commands_run(code: str) -> list[str]:
    """A bash block's ``sb3-offline`` commands that run here (``CLI_NOT_RUN`` left out)."""
    return [command for command in cli_commands(code) if not any(key in command for key in CLI_NOT_RUN)]


@pytest.mark.parametrize("line", [line for line, code in readme_blocks("bash") if commands_run(code)])
def test_bash_block_commands_run(line: int, tmp_path: Path) -> None:
    """Each block's ``sb3-offline`` commands in order, in one fresh folder (``CLI_FEWER_STEPS``, ``CLI_NOT_RUN``)."""
    (tmp_path / "sb3_offline").symlink_to(ROOT / "sb3_offline")  # commands that name a file of the clone
    code = dict(readme_blocks("bash"))[line]
    for command in commands_run(code):
        done = run_cli(CLI_FEWER_STEPS.get(command, command), tmp_path)
        assert done.returncode == 0, f"README.md:{line}: {command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_install_lines_work_from_a_clone() -> None:
    """
    sb3-offline is not on PyPI: every ``pip install`` of it, extras included, installs the clone (``-e .``,
    ``-e '.[extra]'``), and the clone is named; a CPU-only torch comes from PyTorch's own CPU index.
    """
    text = README.read_text()
    assert "sb3-offline[" not in text, "README.md: 'sb3-offline[extra]' is not on PyPI; say pip install -e '.[extra]'"
    assert "git clone " in text
    for extra in re.findall(r"\.\[(\w+)\]", text):
        assert re.search(rf"^\s*{extra}\s*=", (ROOT / "pyproject.toml").read_text(), flags=re.M), extra
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in text


def test_readme_states_how_long_the_suite_takes() -> None:
    """The README gives the time of the whole suite and of the quick subset, each with its command."""
    text = " ".join(README.read_text().split())
    assert re.search(r"The whole suite, `python -m pytest -q -n 2 -p no:cacheprovider`, took [\d-]+ minutes", text)
    assert re.search(r'`python -m pytest -q -n 2 -m "not slow"` \(\d+ of \d+ tests; \d+ minutes', text)
