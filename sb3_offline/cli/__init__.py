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
- ``sb3-offline benchmark GRID.yaml --output DIR``: a grid of algorithms x datasets x seeds (a process pool here, or
  Ray Tune trials on a cluster), resumable; ``results.csv``, ``report.md`` (IQM with bootstrap CIs) and figures.
- ``sb3-offline zoo train|enjoy``: rl-zoo3's own ``train`` and ``enjoy`` with our algorithms, configs and Optuna
  samplers; every rl-zoo3 option (``-f``, ``-n``, ``-optimize``, ``--storage``, ...) goes there, and
  ``sb3-offline train`` refuses those it lacks with an error that names ``sb3-offline zoo train``.

An error of the input (a file that is not there or not what its name says, a value out of range, a missing
extra) is one line, ``sb3-offline <command>: error: <message>``, exit status 2 as argparse's own errors;
``--debug`` (anywhere before the arguments of ``zoo``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sb3_offline import __version__
from sb3_offline.cli.benchmark import add_benchmark_parser, cmd_benchmark
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
    add_benchmark_parser,
)


#: What ``sb3-offline --help`` says above and below the subcommands.
DESCRIPTION = (
    "Offline RL for stable-baselines3: train on a dataset, evaluate, rank checkpoints without the env, collect, "
    "record, convert and export. `sb3-offline COMMAND -h` shows a command's options and their defaults."
)
EPILOG = (
    "rl-zoo3's scripts, with our algorithms: `sb3-offline zoo train ...` (rl-zoo3's train: -f, -conf, -params, "
    "-optimize, ...) and `sb3-offline zoo enjoy ...` (rl-zoo3's enjoy: run a trained agent). Errors are one line "
    "(exit status 2); --debug shows the traceback."
)
#: The errors of the input (files, values, missing extras) that :func:`main` reports in one line, not a traceback.
USER_ERRORS = (ValueError, KeyError, OSError, ImportError)
#: The exit status of such an error (argparse's, for its own errors).
USAGE_ERROR = 2


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults in the help (``(default: 5000)``), unless the help names the default itself or it is
    ``None`` or a switch's ``False``."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        """Whether the help of ``action`` gets its default: one worth showing that the help does not name."""
        default = action.default
        hidden = default is None or default is False or default == argparse.SUPPRESS  # 0 is shown, False not
        return "default" not in (action.help or "") and not hidden

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return super()._get_help_string(action) if self._shows_default(action) else action.help


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The subparsers action of ``parser``."""
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))


def _describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """Every subcommand's parser, nested ones too, shows its defaults, and its one-line help as its description."""
    sub = _subcommands(parser)
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, subparser in sub.choices.items():
        subparser.formatter_class = HelpFormatter
        subparser.description = subparser.description or helps.get(name)
        for action in subparser._actions:  # argparse shows no help line, hence no default, for an option without help
            if action.help is None and action.option_strings and HelpFormatter._shows_default(action):
                action.help = "(default: %(default)s)"
        if any(isinstance(action, argparse._SubParsersAction) for action in subparser._actions):
            _describe_subcommands(subparser)


def build_parser() -> argparse.ArgumentParser:
    """The ``sb3-offline`` parser: one subparser per subcommand (see :data:`SUBCOMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="sb3-offline", description=DESCRIPTION, epilog=EPILOG, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(sub)
    _describe_subcommands(parser)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of the subcommand ``command``."""
    return _subcommands(parser).choices[command]


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
        return args
    if "--debug" in unknown:  # given after the subcommand
        unknown.remove("--debug")
        args.debug = True
    if unknown:
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
    :return: the exit status (130 when Ctrl-C stopped the command, 2 for an error of the input)
    """
    args = _parse(build_parser(), list(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # train saves its checkpoint itself; collect and record write all or nothing
        print(f"\nsb3-offline {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except USER_ERRORS as error:
        if args.debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"sb3-offline {args.command}: error: {message}", file=sys.stderr)
        return USAGE_ERROR


__all__ = [
    "DEFAULT_ALGO",
    "DEFAULT_DATASET",
    "DEFAULT_STEPS",
    "DESCRIPTION",
    "EPILOG",
    "INTERRUPTED",
    "SUBCOMMANDS",
    "USAGE_ERROR",
    "USER_ERRORS",
    "ZOO_COMMANDS",
    "HelpFormatter",
    "build_parser",
    "cmd_benchmark",
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
