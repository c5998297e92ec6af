"""
rl-zoo3 integration: our algorithms trained, watched and tuned with rl-zoo3's own ``train`` and
``enjoy``, without a fork of it.

    sb3-offline zoo train --algo bcq --env Pendulum-v1 -f logs/
    sb3-offline zoo enjoy --algo bcq --env Pendulum-v1 -f logs/ --no-render
    sb3-offline zoo train --algo bcq --env Pendulum-v1 -optimize --storage sqlite:///study.db

(``python -m sb3_offline.zoo train|enjoy`` is the same without the ``sb3-offline`` command.)

:func:`register` adds ``bcq``, ``awac``, ``plas``, ``lapo``, ``iql``, ``td3bc``, ``cql``, ``calql``, ``bc`` and
``batch_ddpg`` to
``rl_zoo3.ALGOS`` (read by rl-zoo3's ``--algo`` choices), their Optuna samplers to rl-zoo3's ``HYPERPARAMS_SAMPLER`` and
``HYPERPARAMS_CONVERTER``, and makes rl-zoo3's ``train`` build an
:class:`~sb3_offline.zoo.experiment.OfflineExperimentManager` (our packaged ``configs/<algo>.yml``
as the default ``-conf``; offline learning versus ``learn_online: True`` entries). Every other
rl-zoo3 option and algorithm behaves as in rl-zoo3. The YAML files ship inside the package
(``sb3_offline/zoo/configs``; the repository's ``zoo_configs`` is a link to that folder).

Nothing here imports rl-zoo3 until a command runs, so the ``sb3-offline`` command can name rl-zoo3's
options in its errors (:func:`zoo_only_options`) without it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

#: The packaged rl-zoo3 configs: ``<algo>.yml`` per algorithm and ``her.yml`` (online HER entries).
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: The options of rl-zoo3's ``train`` that ``sb3-offline train`` does not have (checked against
#: both parsers by the tests). ``sb3-offline train`` refuses them, naming ``sb3-offline zoo train``.
ZOO_ONLY_TRAIN_OPTIONS = frozenset(
    {
        "-tb",
        "-i",
        "--trained-agent",
        "--truncate-last-trajectory",
        "-n",
        "--n-timesteps",
        "--num-threads",
        "--optimization-log-path",
        "--n-eval-envs",
        "--save-freq",
        "--save-replay-buffer",
        "-f",
        "--log-folder",
        "--vec-env",
        "--n-trials",
        "--max-total-trials",
        "-optimize",
        "--optimize-hyperparameters",
        "--no-optim-plots",
        "--n-jobs",
        "--sampler",
        "--pruner",
        "--n-startup-trials",
        "--n-evaluations",
        "--storage",
        "--study-name",
        "--trial-id",
        "--gym-packages",
        "--env-kwargs",
        "--eval-env-kwargs",
        "-uuid",
        "--uuid",
        "--track",
        "--wandb-project-name",
        "--wandb-entity",
        "--wandb-group",
        "-P",
        "--progress",
        "-tags",
        "--wandb-tags",
    }
)
#: The options both ``train`` commands have (with rl-zoo3's meaning under ``sb3-offline zoo train``).
SHARED_TRAIN_OPTIONS = frozenset(
    {
        "--algo",
        "--env",
        "--tensorboard-log",
        "--log-interval",
        "--eval-episodes",
        "--eval-freq",
        "--seed",
        "--device",
        "--verbose",
        "-params",
        "--hyperparams",
        "-conf",
        "--conf-file",
    }
)

COMMANDS = ("train", "enjoy")


def config_path(algo: str) -> Path:
    """
    The packaged rl-zoo3 config of an algorithm: the default ``-conf`` of our ``train``.

    :param algo: ``"bcq"``, ``"awac"``, ``"plas"``, ``"lapo"``, ``"iql"``, ``"td3bc"``, ``"cql"``, ``"calql"``,
        ``"bc"``, ``"batch_ddpg"`` (or ``"her"`` for the online HER entries)
    """
    path = CONFIG_DIR / f"{algo}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yml"))
        raise ValueError(f"algo: expected one of {known}, found '{algo}' (no {path})")
    return path


def _is_zoo_only_option(token: str) -> bool:
    """``token`` names a zoo-only option, exactly or as an unambiguous ``--`` prefix (argparse's abbreviations)."""
    if not token.startswith("-") or token == "-" or token[1:2].isdigit():
        return False
    name = token.split("=", 1)[0]
    if name in ZOO_ONLY_TRAIN_OPTIONS:
        return True
    if not name.startswith("--") or any(option.startswith(name) for option in SHARED_TRAIN_OPTIONS):
        return False
    return any(option.startswith(name) for option in ZOO_ONLY_TRAIN_OPTIONS)


def zoo_only_options(tokens: Sequence[str]) -> list[str]:
    """
    The tokens of a command line that name an option only rl-zoo3's ``train`` has (``-f``, ``-n``,
    ``-optimize``, ``-tb``, ``--storage``, ..., or an unambiguous ``--`` abbreviation of one): what
    ``sb3-offline train`` refuses with an error that names ``sb3-offline zoo train``.

    :param tokens: arguments of a command line
    """
    return [token.split("=", 1)[0] for token in tokens if _is_zoo_only_option(token)]


def progress_options(argv: Sequence[str], isatty: bool | None = None) -> list[str]:
    """
    ``sb3-offline zoo train``'s progress-bar options: ``--progress-bar`` becomes rl-zoo3's ``-P``,
    ``--no-progress-bar`` is dropped, and without either (nor ``-P``/``--progress``) ``-P`` is added when stdout
    is a terminal, so that ``sb3-offline zoo train`` shows a progress bar by default on a terminal as
    ``sb3-offline train`` does. ``python -m sb3_offline.zoo train`` keeps rl-zoo3's own default (no bar).

    :param argv: the arguments after ``sb3-offline`` (``["train", ...]``)
    :param isatty: whether stdout is a terminal (default: ``sys.stdout.isatty()``)
    """
    args = list(argv)
    if args[:1] != ["train"]:
        return args
    wanted: bool | None = None
    kept = [args[0]]
    for token in args[1:]:
        if token in ("--progress-bar", "--no-progress-bar"):
            wanted = token == "--progress-bar"
        else:
            kept.append(token)
    if any(token in ("-P", "--progress") for token in kept):
        return kept
    if wanted is None:
        wanted = sys.stdout.isatty() if isatty is None else isatty
    return [*kept, "-P"] if wanted else kept


def register() -> None:
    """
    Register our algorithms with rl-zoo3 (idempotent): ``rl_zoo3.ALGOS``, the Optuna samplers and
    converters, the gymnasium-robotics envs, and :class:`~sb3_offline.zoo.experiment.OfflineExperimentManager`
    as the experiment manager of ``rl_zoo3.train``.
    """
    try:
        import rl_zoo3
        import rl_zoo3.hyperparams_opt
        import rl_zoo3.train
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            f"rl-zoo3 is needed for sb3_offline.zoo ({error}); install it with: pip install -e '.[zoo]' in "
            "sb3-offline's clone"
        ) from error
    from sb3_offline.algorithms import ALGOS
    from sb3_offline.common.robotics import register_gymnasium_robotics
    from sb3_offline.zoo.experiment import OfflineExperimentManager
    from sb3_offline.zoo.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    register_gymnasium_robotics()  # the Fetch tasks; rl-zoo3 does not import gymnasium-robotics
    rl_zoo3.ALGOS.update(ALGOS)  # the dict rl_zoo3.train, .enjoy and .exp_manager all read
    rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER.update(HYPERPARAMS_SAMPLER)
    rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER.update(HYPERPARAMS_CONVERTER)
    rl_zoo3.train.ExperimentManager = OfflineExperimentManager  # type: ignore[misc]


@contextmanager
def _argv(prog: str, argv: Sequence[str] | None) -> Iterator[None]:
    """rl-zoo3's scripts parse ``sys.argv``: set it (``prog`` first, for their usage lines) for one command."""
    saved = sys.argv
    sys.argv = [prog, *(sys.argv[1:] if argv is None else argv)]
    try:
        yield
    finally:
        sys.argv = saved


def _run(script: str, argv: Sequence[str] | None, prog: str | None) -> int:
    """Run rl-zoo3's ``rl_zoo3.<script>.<script>()`` with our algorithms registered and ``argv`` as its options."""
    register()
    module = importlib.import_module(f"rl_zoo3.{script}")
    with _argv(prog or f"{sys.argv[0] if sys.argv else 'sb3_offline.zoo'} {script}", argv):
        getattr(module, script)()
    return 0


def train(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """
    rl-zoo3's ``train`` with our algorithms registered; takes every rl-zoo3 ``train`` option.

    :param argv: the options (default: ``sys.argv[1:]``)
    :param prog: the command's name in rl-zoo3's usage and errors (default: ``sys.argv[0]`` and ``train``)
    :return: 0
    """
    return _run("train", argv, prog)


def enjoy(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """
    rl-zoo3's ``enjoy`` with our algorithms registered: loads ``<folder>/<algo>/<env>_<id>/<env>.zip``.

    :param argv: the options (default: ``sys.argv[1:]``)
    :param prog: the command's name in rl-zoo3's usage and errors (default: ``sys.argv[0]`` and ``enjoy``)
    :return: 0
    """
    return _run("enjoy", argv, prog)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """
    ``python -m sb3_offline.zoo train|enjoy [rl-zoo3 options]`` (and ``sb3-offline zoo train|enjoy``).

    :param argv: the command and its options (default: ``sys.argv[1:]``)
    :param prog: the command's name in rl-zoo3's usage and errors (default: ``sys.argv[0]`` and the command)
    :return: the exit status
    """
    args = list(sys.argv[1:] if argv is None else argv)
    usage = f"usage: python -m sb3_offline.zoo {{{','.join(COMMANDS)}}} [rl-zoo3 options] (COMMAND --help: its options)"
    if args[:1] in (["-h"], ["--help"]):
        print(usage)
        return 0
    if not args or args[0] not in COMMANDS:
        print(usage, file=sys.stderr)
        print(f"command: expected one of {list(COMMANDS)}, found {args[0] if args else 'nothing'!r}", file=sys.stderr)
        return 2
    return train(args[1:], prog) if args[0] == "train" else enjoy(args[1:], prog)


__all__ = [
    "CONFIG_DIR",
    "SHARED_TRAIN_OPTIONS",
    "ZOO_ONLY_TRAIN_OPTIONS",
    "config_path",
    "enjoy",
    "main",
    "progress_options",
    "register",
    "train",
    "zoo_only_options",
]
