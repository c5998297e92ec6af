"""
The ``sb3-offline`` command.

- ``sb3-offline train``: train an algorithm on a dataset for a number of gradient steps, evaluating
  it as it learns; save the SB3 checkpoint, the evaluations and a learning-curve PNG, and compare the
  final policy with the behaviour policy (the dataset's own episode returns) and a random policy.
  The default (BCQ on the shipped ``pendulum/imperfect-v0``) needs no collection and no download.
  Every constructor argument with rl-zoo3's ``-params key:value`` and ``-conf``/``--config file.yml``; each run
  in a new ``<output>/<algo>/<env>_<n>`` with its ``args.yml`` and ``config.yml``, as rl-zoo3 lays them out.
  ``--validation-fraction 0.1`` holds out whole episodes (written beside the checkpoint), logs offline
  metrics on them and keeps the best model by one of them.
- ``sb3-offline evaluate``: the true return (and normalized score) of a saved model in its env.
- ``sb3-offline ope``: model selection without the env: FQE for each checkpoint, a ranked table, a PNG.
- ``sb3-offline collect``: make a dataset under a named protocol (BCQ paper, D4RL) as a local Minari dataset.
- ``sb3-offline record``: record transitions of a random policy into ``.hdf5``, ``.npz`` or a Minari id.
- ``sb3-offline plot``: the extrapolation-error picture (Q estimate vs true return) from ``value_estimates.csv`` files.
- ``sb3-offline datasets``: list the Minari datasets on local disk and the ones shipped with the package.
- ``sb3-offline convert SRC DST``: a dataset from any format we read (Minari, HDF5, npz, SB3 ``.pkl``, d3rlpy ``.h5``,
  imitation's trajectories) to HDF5, npz, a local Minari dataset or a d3rlpy ``.h5``.
- ``sb3-offline export``: a saved model's ``predict(deterministic=True)`` as a TorchScript or ONNX file (no
  sb3_offline needed to run it).
- ``sb3-offline zoo train|enjoy``: rl-zoo3's own ``train`` and ``enjoy`` with our algorithms, configs and Optuna
  samplers; every rl-zoo3 option (``-f``, ``-n``, ``-optimize``, ``--storage``, ...) goes there, and
  ``sb3-offline train`` refuses those it lacks with an error that names ``sb3-offline zoo train``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sb3_offline.cli.data import (
    add_collect_parser,
    add_convert_parser,
    add_datasets_parser,
    add_plot_parser,
    add_record_parser,
    cmd_collect,
    cmd_convert,
    cmd_datasets,
    cmd_plot,
    cmd_record,
)
from sb3_offline.cli.models import (
    add_evaluate_parser,
    add_export_parser,
    add_ope_parser,
    cmd_evaluate,
    cmd_export,
    cmd_ope,
)
from sb3_offline.cli.train import DEFAULT_ALGO, DEFAULT_DATASET, DEFAULT_STEPS, INTERRUPTED, add_train_parser, cmd_train
from sb3_offline.cli.zoo import ZOO_COMMANDS, add_zoo_parser, cmd_zoo

#: The subcommands, in the order ``sb3-offline --help`` lists them: each adds its parser to the subparsers.
SUBCOMMANDS = (
    add_train_parser,
    add_evaluate_parser,
    add_ope_parser,
    add_collect_parser,
    add_record_parser,
    add_plot_parser,
    add_datasets_parser,
    add_convert_parser,
    add_export_parser,
    add_zoo_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``sb3-offline`` parser: one subparser per subcommand (see :data:`SUBCOMMANDS`)."""
    parser = argparse.ArgumentParser(prog="sb3-offline", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of the subcommand ``command``."""
    sub = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return sub.choices[command]


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """
    Parse ``argv``. ``zoo train|enjoy`` keeps every argument after it for rl-zoo3; any other subcommand fails on
    an argument it does not know (argparse's error and exit status 2), naming ``sb3-offline zoo train`` for an
    rl-zoo3 ``train`` option given to ``train`` and ``sb3-offline zoo enjoy`` for ``enjoy``.
    """
    from sb3_offline.zoo import zoo_only_options

    if argv[:1] == ["enjoy"]:
        parser.error("argument command: invalid choice: 'enjoy' (rl-zoo3's enjoy is `sb3-offline zoo enjoy`)")
    args, unknown = parser.parse_known_args(argv)
    if args.command == "zoo":
        args.zoo_options = unknown
    elif unknown:
        message = f"unrecognized arguments: {' '.join(unknown)}"
        zoo_only = zoo_only_options(unknown) if args.command == "train" else []
        if zoo_only:
            message += (
                f" ({', '.join(zoo_only)}: rl-zoo3's train options; an rl-zoo3 run is `sb3-offline zoo train ...`, "
                "see `sb3-offline zoo train -h`)"
            )
        _subparser(parser, args.command).error(message)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """
    ``sb3-offline SUBCOMMAND [options]``.

    :param argv: the arguments after ``sb3-offline`` (default: ``sys.argv[1:]``)
    :return: the exit status (130 when Ctrl-C stopped the command)
    """
    args = _parse(build_parser(), list(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # train saves its checkpoint itself; collect and record write all or nothing
        print(f"\nsb3-offline {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED


__all__ = [
    "DEFAULT_ALGO",
    "DEFAULT_DATASET",
    "DEFAULT_STEPS",
    "INTERRUPTED",
    "SUBCOMMANDS",
    "ZOO_COMMANDS",
    "build_parser",
    "cmd_collect",
    "cmd_convert",
    "cmd_datasets",
    "cmd_evaluate",
    "cmd_export",
    "cmd_ope",
    "cmd_plot",
    "cmd_record",
    "cmd_train",
    "cmd_zoo",
    "main",
]
