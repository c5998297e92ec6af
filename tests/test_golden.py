"""
The golden test: every algorithm's (and FQE's) first updates, actions and parameters, pinned on CPU.

Each case of ``tests/golden/cases.py`` is run again and compared with its file: bit for bit (every logged value,
every action, the SHA-256 of every parameter) on a CPU of the kind that wrote the file (torch's
``get_cpu_capability``: the kernels it picks decide the rounding) or of a kind with its own record of the same case
(``tests/golden/by_cpu``, ``cases.py --other-cpu``); on another kind, within float tolerance.
A change that moves a case on purpose regenerates its file in the same commit and says why
(``python tests/golden/cases.py CASE``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch as th
from golden.cases import case_names, golden_path, other_cpu_path, run_case

REL, ABS = 1e-4, 1e-6


def _close(found: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(found)
    return math.isclose(found, expected, rel_tol=REL, abs_tol=ABS)


def _compare(found: Any, expected: Any, where: str, exact: bool, errors: list[str]) -> None:
    if isinstance(expected, dict):
        if set(found) != set(expected):
            errors.append(f"{where}: expected keys {sorted(expected)}, found {sorted(found)}")
            return
        for key in expected:
            _compare(found[key], expected[key], f"{where}/{key}", exact, errors)
    elif isinstance(expected, list) and len(expected) == 2 and isinstance(expected[0], str):
        # a parameter: [sha256, float64 sum]
        if exact and found[0] != expected[0]:
            errors.append(f"{where}: parameters differ (sum {found[1]!r}, expected {expected[1]!r})")
        elif not exact and not _close(found[1], expected[1]):
            errors.append(f"{where}: sum {found[1]!r}, expected {expected[1]!r}")
    elif isinstance(expected, list):
        if len(found) != len(expected):
            errors.append(f"{where}: expected {len(expected)} entries, found {len(found)}")
            return
        for i, (f, e) in enumerate(zip(found, expected, strict=True)):
            _compare(f, e, f"{where}[{i}]", exact, errors)
    elif isinstance(expected, float):
        same = found == expected or (math.isnan(found) and math.isnan(expected))
        if (exact and not same) or (not exact and not _close(found, expected)):
            errors.append(f"{where}: {found!r}, expected {expected!r}")
    elif found != expected:
        errors.append(f"{where}: {found!r}, expected {expected!r}")


@pytest.mark.parametrize("case", case_names())
def test_golden(case: str) -> None:
    capability = th.backends.cpu.get_cpu_capability()
    here = other_cpu_path(case, capability)  # the unchanged case recorded on this kind of CPU, where there is one
    expected = json.loads((here if here.is_file() else golden_path(case)).read_text())
    exact = expected.pop("cpu_capability") == capability
    expected.pop("torch")
    errors: list[str] = []
    _compare(run_case(case), expected, case, exact, errors)
    assert not errors, f"{len(errors)} difference(s) from the golden file ({'exact' if exact else 'tolerance'}):\n" + (
        "\n".join(errors[:20])
    )


def test_records_of_another_cpu_are_written_beside_and_removed_on_regeneration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--other-cpu`` writes only where the golden file is of another kind; regenerating a case removes them."""
    from golden import cases

    monkeypatch.setattr(cases, "GOLDEN_DIR", tmp_path)
    monkeypatch.setattr(cases, "run_case", lambda case: {"value": 1.0})
    here = th.backends.cpu.get_cpu_capability()
    cases.golden_path("x-box").write_text(json.dumps({"cpu_capability": here}))
    assert cases.write_other_cpu("x-box") is None  # the golden file is of this kind
    cases.golden_path("x-box").write_text(json.dumps({"cpu_capability": "ANOTHER"}))
    record = cases.write_other_cpu("x-box")
    assert record == tmp_path / "by_cpu" / f"x-box.{here}.json"
    assert json.loads(record.read_text())["cpu_capability"] == here
    other = tmp_path / "by_cpu" / "xx-box.AVX2.json"
    other.write_text("{}")
    cases.write_case("x-box")  # regenerated on purpose: the record of the old code goes, another case's stays
    assert not record.exists() and other.exists()
    assert json.loads(cases.golden_path("x-box").read_text())["cpu_capability"] == here
