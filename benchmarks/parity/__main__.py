"""
``python -m benchmarks.parity ALGO --reference PATH [--updates K] [--seed S]``: the parity rows of ``ALGO`` (a module
of this package with ``run(reference, updates, seed)``), printed as a markdown table.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmarks.parity.iql import main as print_rows

ALGOS = ("iql", "awac")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parity", description=(__doc__ or "").strip())
    parser.add_argument("algo", choices=ALGOS)
    known, rest = parser.parse_known_args(argv)
    print_rows(rest, runner=importlib.import_module(f"benchmarks.parity.{known.algo}").run)


if __name__ == "__main__":
    main()
