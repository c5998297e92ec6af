"""
``sb3-offline train``'s hyper-parameters and run folders, in rl-zoo3's own formats.

- ``-params key:value ...``: rl-zoo3's syntax (its ``StoreDict``: the text after the first ``:`` is Python,
  ``policy_kwargs:"dict(net_arch=[64, 64])"``), each key checked against the algorithm's constructor and each
  value typed from the constructor's annotation (:func:`parse_params`). rl-zoo3's ``StoreDict`` itself is not
  reused: rl-zoo3 is an optional dependency, and it evaluates ``reward_transform:max`` to Python's ``max``, where
  the annotation says a rule's name is meant.
- ``--config file.yml``: rl-zoo3's hyper-parameter file (``ExperimentManager.read_hyperparameters``): a top-level
  env-id key (or ``default``) holding the settings, or the settings themselves; ``n_timesteps`` and ``policy`` as
  rl-zoo3 reads them, ``policy_kwargs`` / ``replay_buffer_kwargs`` given as a string evaluated as rl-zoo3 does.
- Run folders numbered as rl-zoo3 numbers them (``get_latest_run_id``): ``<output>/<algo>/<env>_<n>``, the
  checkpoint ``<env>.zip`` in it and the run's ``args.yml`` and ``config.yml`` in ``<env>/`` beside it.
"""

from __future__ import annotations

import inspect
import os
import re
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Constructor arguments that ``train``'s own flags set: refused in ``-params`` / ``--config``, naming the flag.
FLAG_ARGUMENTS = {
    "env": "--env",
    "device": "--device",
    "seed": "--seed",
    "verbose": "--verbose",
    "tensorboard_log": "--tensorboard-log",
}
#: Constructor arguments that are not hyper-parameters (SB3's internals).
INTERNAL_ARGUMENTS = ("_init_setup_model", "supported_action_spaces")
#: rl-zoo3 keys that are not constructor arguments but that ``train`` reads: the gradient steps and the policy.
ZOO_KEYS = ("n_timesteps", "policy")
#: rl-zoo3 settings of its own runs (env wrappers, vectorized envs, online training): ``sb3-offline zoo train``'s.
ZOO_ONLY_KEYS = (
    "learn_online",
    "n_envs",
    "normalize",
    "normalize_kwargs",
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "monitor_kwargs",
    "env_kwargs",
)
#: rl-zoo3 settings whose string value is Python to evaluate (``ExperimentManager._preprocess_hyperparams``).
EVALUATED_KEYS = ("policy_kwargs", "replay_buffer_class", "replay_buffer_kwargs")


class SettingsError(ValueError):
    """A wrong ``-params`` key or value, or a ``--config`` file ``train`` cannot use: what to fix, in one line."""


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def constructor_parameters(algo_class: type) -> dict[str, inspect.Parameter]:
    """
    Every keyword the constructor of ``algo_class`` takes: its own parameters and, while a constructor passes
    ``**kwargs`` on, those of the next constructor in the MRO (annotations resolved where they can be).
    """
    parameters: dict[str, inspect.Parameter] = {}
    for klass in algo_class.__mro__:
        init = vars(klass).get("__init__")
        if init is None:
            continue
        try:
            signature = inspect.signature(init, eval_str=True)
        except (NameError, TypeError, SyntaxError):  # an annotation only a type checker resolves
            signature = inspect.signature(init)
        forwards = False
        for name, parameter in list(signature.parameters.items())[1:]:
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                forwards = True
            elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
                parameters.setdefault(name, parameter)
        if not forwards:
            break
    return parameters


def valid_keys(algo_class: type) -> list[str]:
    """The keys ``-params`` and ``--config`` accept for ``algo_class``: its hyper-parameters and rl-zoo3's."""
    names = [name for name in constructor_parameters(algo_class) if name not in (*FLAG_ARGUMENTS, *INTERNAL_ARGUMENTS)]
    return sorted({*names, *ZOO_KEYS})


def check_keys(algo: str, algo_class: type, settings: Mapping[str, Any], where: str) -> None:
    """Refuse a key that is not one of :func:`valid_keys` (or that a flag of ``train`` sets), naming them."""
    for key in settings:
        if key in FLAG_ARGUMENTS:
            raise SettingsError(f"{where}: {key} is set by train's {FLAG_ARGUMENTS[key]} flag, not here")
        if key in ZOO_ONLY_KEYS:
            raise SettingsError(f"{where}: {key} is rl-zoo3's setting of its own runs: run `sb3-offline zoo train`")
        if key not in valid_keys(algo_class):
            raise SettingsError(
                f"{where}: {key!r} is not a hyper-parameter of {algo} ({algo_class.__name__}); "
                f"expected one of {valid_keys(algo_class)}"
            )


def _members(annotation: Any) -> list[Any]:
    """The types of a union (``int | None`` -> ``[int, NoneType]``), the literal values' types of a ``Literal``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [member for argument in typing.get_args(annotation) for member in _members(argument)]
    if origin is typing.Literal:
        return [type(value) for value in typing.get_args(annotation)]
    return [annotation]


def _admits_str(annotation: Any) -> bool:
    """Whether the annotation admits a string (a rule's name, a policy's name, ...)."""
    if isinstance(annotation, str):
        return re.search(r"\bstr\b", annotation) is not None
    return any(member is str for member in _members(annotation))


def type_value(key: str, text: str, annotation: Any) -> Any:
    """
    The value of ``key:text``: ``text`` evaluated as Python (as rl-zoo3's ``StoreDict`` does), then typed by the
    constructor's annotation: a bare name where a string is admitted stays that string (``reward_transform:max``),
    an integer where only a float is admitted becomes a float, a whole float where only an int is, an int
    (``vae_steps:5e3``). A value of the wrong plain type is refused, naming the key and the expected type.
    """
    import numpy as np
    import torch

    if _admits_str(annotation) and _IDENTIFIER.match(text) and text not in ("None", "True", "False"):
        return text
    try:
        value = eval(text, {"th": torch, "torch": torch, "nn": torch.nn, "np": np})  # rl-zoo3 evaluates the text too
    except Exception as error:  # any error of the Python text, reported as such
        raise SettingsError(
            f"-params {key}: could not evaluate {text!r} as Python ({type(error).__name__}: {error})"
        ) from error
    members = _members(annotation)
    if isinstance(annotation, str) or not all(m in (int, float, bool, str, type(None)) for m in members):
        return value  # a richer annotation: the constructor checks it
    if isinstance(value, int) and not isinstance(value, bool) and int not in members and float in members:
        return float(value)
    if isinstance(value, float) and value.is_integer() and int in members and float not in members:
        return int(value)
    if not isinstance(value, tuple(members)) or (isinstance(value, bool) and bool not in members):
        expected = " | ".join("None" if m is type(None) else m.__name__ for m in members)
        raise SettingsError(f"-params {key}: expected {expected}, found {value!r} ({type(value).__name__})")
    return value


def parse_params(algo: str, algo_class: type, tokens: Sequence[str]) -> dict[str, Any]:
    """
    ``-params key:value ...`` -> ``{key: typed value}`` (see :func:`type_value`), keys checked; the text of
    ``policy_kwargs`` / ``replay_buffer_*`` kept (for ``config.yml``) until :func:`evaluate_settings`.
    """
    parameters = constructor_parameters(algo_class)
    settings: dict[str, Any] = {}
    for token in tokens:
        key, separator, text = token.partition(":")
        if not separator:
            raise SettingsError(f"-params: expected key:value (rl-zoo3's syntax, e.g. batch_size:64), found {token!r}")
        check_keys(algo, algo_class, {key: None}, "-params")
        if key in EVALUATED_KEYS:  # kept as written, as in rl-zoo3's files: evaluate_settings evaluates it
            settings[key] = text
            continue
        annotation = parameters[key].annotation if key in parameters else (float if key == "n_timesteps" else str)
        settings[key] = type_value(key, text, annotation)
    return settings


def read_config(path: str | Path, env_id: str | None, algo: str, algo_class: type) -> tuple[dict[str, Any], str | None]:
    """
    The settings of an rl-zoo3 hyper-parameter file (YAML): the entry of ``env_id`` (else ``default``, else the
    only entry) when its top-level keys are env ids, else the file itself. Keys checked as ``-params``'.

    :return: the settings and the env id of the entry (``None`` for a file of settings)
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"--config: no file {path}")
    with open(path) as file:
        content = yaml.safe_load(file)
    if not isinstance(content, dict):
        raise SettingsError(
            f"--config: expected rl-zoo3's format (a mapping) in {path}, found {type(content).__name__}"
        )
    keys = set(valid_keys(algo_class)) | set(FLAG_ARGUMENTS) | set(ZOO_ONLY_KEYS)
    entries = [key for key, value in content.items() if isinstance(value, dict) and key not in keys]
    entry: str | None = None
    if entries:
        if env_id in content:
            entry = env_id
        elif "default" in content:
            entry = "default"
        elif env_id is None and len(entries) == 1:
            entry = entries[0]
        elif env_id is None:
            raise SettingsError(f"--config {path}: an entry per env ({entries}): pass --env (or --dataset)")
        else:
            raise SettingsError(f"--config {path}: no entry for --env {env_id} (nor 'default'); found {entries}")
        settings = dict(content[entry])
    else:
        settings = dict(content)
    check_keys(algo, algo_class, settings, f"--config {path}")
    return settings, None if entry == "default" else entry


def evaluate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """
    rl-zoo3's pre-processing: ``policy_kwargs`` / ``replay_buffer_*`` given as a string are evaluated, a
    ``train_freq`` list (YAML has no tuple) becomes a tuple.
    """
    import torch

    evaluated = dict(settings)
    for key in EVALUATED_KEYS:
        if isinstance(evaluated.get(key), str):
            try:
                evaluated[key] = eval(evaluated[key], {"th": torch, "torch": torch, "nn": torch.nn})
            except Exception as error:  # any error of the Python text, reported as such
                text = evaluated[key]
                raise SettingsError(f"{key}: could not evaluate {text!r} ({type(error).__name__}: {error})") from error
    if isinstance(evaluated.get("train_freq"), list):
        evaluated["train_freq"] = tuple(evaluated["train_freq"])
    return evaluated


def latest_run_id(log_path: Path, env_id: str) -> int:
    """The highest ``n`` of the ``<env_id>_<n>`` folders in ``log_path`` (0 without one): rl-zoo3's rule."""
    numbers = [
        int(path.name[len(env_id) + 1 :])
        for path in log_path.glob(f"{env_id}_[0-9]*")
        if path.name[len(env_id) + 1 :].isdigit()
    ]
    return max(numbers, default=0)


def new_run_folder(output: str | Path, algo: str, env_id: str) -> Path:
    """
    ``<output>/<algo>/<env_id>_<n>``, created, ``n`` one above the latest (rl-zoo3's numbering); a folder another
    run created meanwhile is never reused.
    """
    log_path = Path(output) / algo
    log_path.mkdir(parents=True, exist_ok=True)
    number = latest_run_id(log_path, env_id) + 1
    while True:
        run = log_path / f"{env_id}_{number}"
        try:
            run.mkdir()
            return run
        except FileExistsError:
            number += 1


def _plain(value: Any) -> Any:
    """``value`` as YAML's safe types: containers kept, anything else (a class, a schedule) as its ``repr``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return repr(value)


def write_yaml_atomically(path: Path, content: Mapping[str, Any]) -> Path:
    """``content`` (sorted by key, as rl-zoo3 writes it) as YAML in a temporary file beside ``path``, then renamed."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        with open(temporary, "w") as file:
            yaml.safe_dump({key: _plain(content[key]) for key in sorted(content)}, file)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def resolved_hyperparams(algo_class: type, settings: Mapping[str, Any], **given: Any) -> dict[str, Any]:
    """
    What the run used, for ``config.yml`` (rl-zoo3's format, so ``--config <run>/<env>/config.yml`` repeats it):
    ``given`` (``n_timesteps``, ``policy``, ``dataset``, ...) and every hyper-parameter of the constructor, its
    default unless ``settings`` (the config file's, then ``-params``') gave it. A default of ``None`` is left out
    (rl-zoo3's ``enjoy`` reads ``replay_buffer_class`` from ``config.yml`` as a string when it is there).
    """
    resolved: dict[str, Any] = dict(given)
    for name, parameter in constructor_parameters(algo_class).items():
        if name in (*FLAG_ARGUMENTS, *INTERNAL_ARGUMENTS) or name in resolved:
            continue
        if name in settings:
            resolved[name] = settings[name]
        elif parameter.default is not inspect.Parameter.empty and parameter.default is not None:
            resolved[name] = parameter.default
    return resolved
