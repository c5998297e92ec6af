"""
``python -m benchmarks.parity ALGO --reference PATH [--updates K] [--seed S] [--set KEY=VALUE ...]``: run ALGO's
parity with the reference implementation in the local checkout PATH and print the rows as a markdown table.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import logging
import pkgutil
from pathlib import Path
from typing import Any

import benchmarks.parity
from benchmarks.parity.core import markdown_table

#: the package's modules that are not an algorithm's parity
NOT_ALGORITHMS = {"core", "draws", "__main__"}


def algorithms() -> dict[str, str]:
    """Each algorithm module of the package and the first sentence of its docstring (read without importing it)."""
    found = {}
    for info in pkgutil.iter_modules(benchmarks.parity.__path__):
        if info.name not in NOT_ALGORITHMS:
            source = Path(benchmarks.parity.__path__[0], f"{info.name}.py").read_text()
            paragraph = " ".join((ast.get_docstring(ast.parse(source)) or "").strip().split("\n\n")[0].split())
            found[info.name] = paragraph.split(". ")[0].rstrip(".") + "."
    return dict(sorted(found.items()))


def option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as a Python literal when it is one (``rows=500``), else as a string."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"--set: expected KEY=VALUE, found {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv: list[str] | None = None) -> None:
    found = algorithms()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.parity",
        description=(__doc__ or "").strip().split("\n\n")[0],
        epilog="algorithms:\n" + "\n".join(f"  {name}: {line}" for name, line in found.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("algorithm", choices=list(found), help="the algorithm (a module of benchmarks/parity/)")
    parser.add_argument("--reference", type=Path, required=True, help="the local checkout of the reference code")
    parser.add_argument("--updates", type=int, default=10, help="updates on each side (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, our weights and the shared draws")
    parser.add_argument(
        "--set",
        type=option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the algorithm's run() (e.g. data='synthetic', rows=500, batch_size=64)",
    )
    args = parser.parse_args(argv)
    logging.getLogger("gymnasium").setLevel(logging.ERROR)
    module = importlib.import_module(f"benchmarks.parity.{args.algorithm}")
    rows = module.run(args.reference, updates=args.updates, seed=args.seed, **dict(args.set))
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
