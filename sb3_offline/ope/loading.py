"""Load an SB3 checkpoint (``.zip``) whose algorithm class is not known in advance."""

from __future__ import annotations

import base64
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm


def _algorithm_classes() -> dict[str, type[BaseAlgorithm]]:
    """Name -> class of every algorithm a checkpoint may come from: ours (``ALGOS``, FQE), SB3's, sb3-contrib's."""
    import stable_baselines3 as sb3

    from sb3_offline.algorithms import ALGOS
    from sb3_offline.ope.fqe import FQE

    classes: dict[str, type[BaseAlgorithm]] = dict(ALGOS)
    classes["fqe"] = FQE
    for cls in (sb3.A2C, sb3.DDPG, sb3.DQN, sb3.PPO, sb3.SAC, sb3.TD3):
        classes.setdefault(cls.__name__.lower(), cls)
    try:
        import sb3_contrib
    except ImportError:  # pragma: no cover - a dependency
        return classes
    for name in ("ARS", "CrossQ", "MaskablePPO", "QRDQN", "RecurrentPPO", "TQC", "TRPO"):
        contrib = getattr(sb3_contrib, name, None)
        if isinstance(contrib, type) and issubclass(contrib, BaseAlgorithm):
            classes.setdefault(name.lower(), contrib)
    return classes


def checkpoint_policy_class(path: str | os.PathLike) -> tuple[Any, str]:
    """
    ``(policy class or None, its module)`` as recorded in an SB3 checkpoint: the ``policy_class`` entry of the
    zip's ``data`` (a cloudpickled class, with its ``__module__`` beside it in plain text). The class is
    ``None`` when it cannot be unpickled here (its package is not installed).
    """
    path = Path(path)
    if not path.is_file() and path.with_suffix(".zip").is_file():
        path = path.with_suffix(".zip")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no such file {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint {path}: expected an SB3 .zip with a 'data' entry, found {error}") from error
    entry = data.get("policy_class")
    if not isinstance(entry, dict):
        raise ValueError(f"checkpoint {path}: field 'policy_class': expected a serialized class, found {entry!r}")
    module = str(entry.get("__module__", ""))
    try:
        import cloudpickle

        return cloudpickle.loads(base64.b64decode(entry[":serialized:"])), module
    except Exception:  # the class's package is not importable here: fall back to its module's name
        return None, module


def _package(module: str) -> str:
    """The package of a module: ``sb3_offline.bcq.policies`` -> ``sb3_offline.bcq``."""
    return ".".join(module.split(".")[:2])


def find_algorithm_class(path: str | os.PathLike) -> type[BaseAlgorithm]:
    """
    The algorithm class that saved a checkpoint, read from the policy class it recorded: the algorithm whose
    ``policy_aliases`` hold that class (when several do, as DDPG and TD3 share ``TD3Policy``, the one from the
    policy's own package), else one whose policy aliases it subclasses, else the algorithm of the policy's
    package (``sb3_offline.bcq.policies`` -> BCQ). Covers our algorithms, FQE, SB3's and sb3-contrib's.

    :raises ValueError: naming the policy class when no known algorithm uses it (pass the class or its name)
    """
    policy_class, module = checkpoint_policy_class(path)
    package = _package(module)
    classes = list(_algorithm_classes().values())

    def same_package(cls: type[BaseAlgorithm]) -> bool:
        return _package(cls.__module__) == package

    if policy_class is not None:
        exact = [cls for cls in classes if any(alias is policy_class for alias in cls.policy_aliases.values())]
        if exact:
            return next((cls for cls in exact if same_package(cls)), exact[0])
        related = [
            cls
            for cls in classes
            if any(isinstance(alias, type) and issubclass(policy_class, alias) for alias in cls.policy_aliases.values())
        ]
        if related:
            return next((cls for cls in related if same_package(cls)), related[0])
    by_package = [cls for cls in classes if same_package(cls)]
    if by_package:
        return by_package[0]
    name = getattr(policy_class, "__qualname__", "?")
    raise ValueError(
        f"checkpoint {path}: field 'policy_class': expected a policy of a known algorithm (ours, SB3's, "
        "sb3-contrib's), "
        f"found {module}.{name}; pass the algorithm (its class or name) explicitly"
    )


def load_model(
    path: str | os.PathLike, algo: str | type[BaseAlgorithm] | None = None, device: Any = "auto", **kwargs: Any
) -> BaseAlgorithm:
    """
    Load an SB3 checkpoint without knowing its algorithm: ``algo`` (a class, or a name: ours as in ``ALGOS``,
    SB3's and sb3-contrib's in lower case, ``"fqe"``) or the class :func:`find_algorithm_class` reads from the
    file. Our models load without their dataset (it is read only to ``learn``).

    :param path: the ``.zip`` (the suffix may be left out, as SB3's ``load`` allows)
    :param algo: the algorithm, if known
    :param device: where to load it
    :param kwargs: passed to ``load`` (``env=...``, ``dataset=...``, ``custom_objects=...``)
    """
    if algo is None:
        cls = find_algorithm_class(path)
    elif isinstance(algo, str):
        classes = _algorithm_classes()
        if algo.lower() not in classes:
            raise ValueError(f"algo: expected one of {sorted(classes)}, found {algo!r}")
        cls = classes[algo.lower()]
    else:
        cls = algo
    return cls.load(os.fspath(path), device=device, **kwargs)


__all__ = ["checkpoint_policy_class", "find_algorithm_class", "load_model"]
