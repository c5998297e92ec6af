"""
``sb3-offline zoo train|enjoy [rl-zoo3 options]``: rl-zoo3's own scripts with our algorithms registered
(:mod:`sb3_offline.zoo`), the options passed on as they are. ``sb3-offline zoo train`` also takes
``--progress-bar``/``--no-progress-bar`` (rl-zoo3's ``-P`` or none; default: ``-P`` when stdout is a terminal,
as ``sb3-offline train`` shows its bar).
"""

from __future__ import annotations

import argparse
from typing import Any

#: What ``sb3-offline zoo --help`` says.
DESCRIPTION = (
    "rl-zoo3's own train and enjoy with our algorithms, configs and Optuna samplers registered; every argument "
    "after train/enjoy goes to rl-zoo3 as it is. `sb3-offline zoo train` also takes --progress-bar/"
    "--no-progress-bar (rl-zoo3's -P or none; default: -P when stdout is a terminal)."
)
#: ``sb3-offline zoo`` subcommands: rl-zoo3's scripts, and what each does.
ZOO_COMMANDS = {
    "train": "rl-zoo3's train: -f, -conf, -n, -params, -optimize, --storage, --track, ... (train -h: all of them)",
    "enjoy": "rl-zoo3's enjoy: load <folder>/<algo>/<env>_<id>/<env>.zip and run it (enjoy -h: its options)",
}


def add_zoo_parser(sub: Any) -> None:
    """
    The ``zoo`` subcommand and its ``train``/``enjoy`` subcommands. These declare no options of their own
    (``-h`` included): :func:`sb3_offline.cli.main` hands every argument after them to rl-zoo3, which parses them.
    """
    zoo = sub.add_parser(
        "zoo",
        help="rl-zoo3's train and enjoy with our algorithms and configs (pip install -e '.[zoo]' in the clone)",
        description=DESCRIPTION,
    )
    commands = zoo.add_subparsers(dest="zoo_command", required=True, metavar="{" + ",".join(ZOO_COMMANDS) + "}")
    for name, help in ZOO_COMMANDS.items():
        command = commands.add_parser(name, help=help, add_help=False)
        command.set_defaults(func=cmd_zoo, zoo_options=[])


def cmd_zoo(args: argparse.Namespace) -> int:
    """Run rl-zoo3's ``args.zoo_command`` with ``args.zoo_options`` (the arguments after it)."""
    from sb3_offline.zoo import main as zoo_main
    from sb3_offline.zoo import progress_options

    return zoo_main(progress_options([args.zoo_command, *args.zoo_options]), prog=f"sb3-offline zoo {args.zoo_command}")
