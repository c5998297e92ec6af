"""
What an offline algorithm adds to SB3's checkpoint: the class that saved it, the random generators' states, and
the compatibility of checkpoints saved by earlier versions of sb3-offline.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import random
import zipfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.type_aliases import GymEnv

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.cuda_graphs import UpdateRunner, portable_optimizer_state
from sb3_offline.common.text import article

if TYPE_CHECKING:
    _Base = OffPolicyAlgorithm
else:
    _Base = object
SelfCheckpointed = TypeVar("SelfCheckpointed", bound="CheckpointedAlgorithm")

#: The checkpoint's entry naming the class that saved it (``{"class": ..., "algorithm": ...}``, see
#: :func:`algorithm_name`); a checkpoint without it (saved before it existed) loads with any class.
CHECKPOINT_CLASS_KEY = "_checkpoint_class"
#: The checkpoint's entry holding the random generators' states at the time of saving (see
#: :func:`capture_random_states`), restored by ``load`` so that training resumes exactly.
RANDOM_STATES_KEY = "_random_states"

#: ``policy_kwargs`` entries that checkpoints of sb3-offline 0.1.0 hold and policies no longer take: each network's
#: learning rate is the algorithm's (``<name>_learning_rate``). On load such an entry is dropped, and it gives the
#: algorithm's attribute its value where the checkpoint has none (e.g. BCQ's actor learning rate, which 0.1.0 took
#: only through ``policy_kwargs["actor_lr"]``).
LEGACY_LEARNING_RATES = {
    "actor_lr": "actor_learning_rate",
    "vae_lr": "vae_learning_rate",
    "value_lr": "value_learning_rate",
    "ent_coef_lr": "ent_coef_learning_rate",
}


def algorithm_name(cls: type) -> str:
    """
    The algorithm a class of models implements, for the check of a checkpoint's class at load: the nearest class
    in its MRO that sb3-offline defines (``BCQ`` for a user's ``class MyBCQ(BCQ)``), or, for an algorithm built
    directly on :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm` outside sb3-offline, the class of the
    MRO just below it. Compared by name, so checkpoints survive a module being moved.
    """
    below = cls
    for klass in cls.__mro__:
        if "offline_base" in vars(klass):
            return below.__name__
        if klass.__module__.split(".")[0] == "sb3_offline":
            return klass.__name__
        below = klass
    return cls.__name__


def capture_random_states(device: th.device) -> dict[str, Any]:
    """
    The states of the generators sampling and exploration draw from: Python's ``random``, numpy's global
    generator, torch's CPU generator and, for a model on CUDA, that device's generator (the replay buffer draws
    its batches with ``torch.randint`` from these; it has no generator of its own).
    """
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
    }
    if device.type == "cuda" and th.cuda.is_available():
        states["torch_cuda"] = th.cuda.get_rng_state(device)
    return states


def restore_random_states(states: dict[str, Any], device: th.device) -> None:
    """Set the generators to ``states`` (from :func:`capture_random_states`); a CUDA state only on a CUDA device."""
    if "python" in states:
        python_state = states["python"]
        # JSON round trips may turn the tuple's inner tuple into a list
        random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    if "numpy" in states:
        np.random.set_state(states["numpy"])
    if "torch" in states:
        th.set_rng_state(th.as_tensor(states["torch"], dtype=th.uint8).cpu())
    if "torch_cuda" in states and device.type == "cuda" and th.cuda.is_available():
        th.cuda.set_rng_state(th.as_tensor(states["torch_cuda"], dtype=th.uint8).cpu(), device)


def saved_entry(path: str | pathlib.Path | io.BufferedIOBase, key: str) -> Any:
    """
    One JSON-serialisable entry of a checkpoint's ``data``, read without the networks (``None`` when absent or
    when the file cannot be read: ``load`` then reports that itself). A file object is left where it was.
    """
    is_file_object = isinstance(path, io.BufferedIOBase)
    try:
        file = open_path(path, "r", verbose=0, suffix="zip")
    except (OSError, ValueError):
        return None
    position = file.tell() if is_file_object else 0
    try:
        with zipfile.ZipFile(file) as archive:
            if "data" not in archive.namelist():
                return None
            data = json.loads(archive.read("data").decode())
        return data.get(key) if isinstance(data, dict) else None
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    finally:
        if is_file_object:
            file.seek(position)
        else:
            file.close()


def check_checkpoint_class(path: str | pathlib.Path | io.BufferedIOBase, cls: type, expected: str) -> None:
    """
    Refuse another algorithm's checkpoint: ``ValueError`` naming both classes when the checkpoint records an
    algorithm other than ``expected`` (a checkpoint that records none loads as before).
    """
    saved = saved_entry(path, CHECKPOINT_CLASS_KEY)
    if isinstance(saved, dict) and saved.get("algorithm") not in (None, expected):
        where = os.fspath(path) if isinstance(path, str | os.PathLike) else "checkpoint"
        raise ValueError(
            f"{where}: expected {article(cls.__name__)} checkpoint, found {article(saved.get('class'))} checkpoint "
            f"(load it with {saved.get('class')}.load)"
        )


#: attributes that checkpoints of 0.1.0 hold under another name (LAPO's switch is every algorithm's now)
LEGACY_ATTRIBUTES = {"normalize_states": "normalize_observations"}


def upgrade_legacy_policy_kwargs(model: Any) -> None:
    """
    A model loaded from a checkpoint of 0.1.0 (its ``__dict__`` restored, its networks not built yet): the
    learning-rate entries of its ``policy_kwargs`` (:data:`LEGACY_LEARNING_RATES`) become the algorithm's. Every
    other attribute a checkpoint lacks has its constructor default already (SB3's ``load`` runs the constructor).
    """
    for old, new in LEGACY_ATTRIBUTES.items():
        if old in vars(model):
            setattr(model, new, vars(model).pop(old))
    policy_kwargs = dict(model.policy_kwargs)
    for key, attribute in LEGACY_LEARNING_RATES.items():
        if key in policy_kwargs:
            value = policy_kwargs.pop(key)
            if getattr(model, attribute, None) is None and value is not None:
                setattr(model, attribute, value)
    model.policy_kwargs = policy_kwargs


def refuse_legacy_policy_kwargs(policy_kwargs: dict[str, Any] | None, algorithm: str) -> None:
    """A new model given a learning rate in ``policy_kwargs`` is told the argument that takes it now."""
    for key, attribute in LEGACY_LEARNING_RATES.items():
        if key in (policy_kwargs or {}):
            raise ValueError(
                f"policy_kwargs['{key}']: expected the learning rate as {algorithm}({attribute}=...), found it in "
                "policy_kwargs (each network's learning rate is an argument of the algorithm)"
            )


class CheckpointedAlgorithm(_Base):
    """
    What :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm` adds to SB3's save and load: the class that
    saved a checkpoint (checked at load), the random generators' states (restored at load), the policy and every
    optimizer of ``learning_rates()`` as its torch variables, the aliases of the networks and the objects that live
    only in memory (the CUDA graphs, the loss sums, an in-memory dataset) left out.

    ``save`` writes an ordinary SB3 ``.zip`` holding a *reference* to the dataset (its id or path), never the data;
    ``load`` gives a model that predicts without the dataset, which is read again only when ``learn`` needs it (or
    pass ``dataset=...`` to ``load``): ``learn(n)``, ``save``, ``load``, ``learn(m, reset_num_timesteps=False)`` gives
    the same parameters on CPU as ``learn(n + m)`` with the same seed. Learning rates resume exactly when constant or
    a :class:`~sb3_offline.common.schedules.StepSchedule` (a fixed horizon in gradient steps); an SB3 schedule of the
    progress remaining is relative to each ``learn`` call's total, as in SB3.
    """

    networks: ClassVar[tuple[str, ...]] = ()
    _runner: UpdateRunner

    def learning_rates(self) -> dict[str, Any]:
        """The optimizers to save, by network (the algorithm declares them)."""
        raise NotImplementedError

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        """SB3's ``load_replay_buffer``; an ``OfflineReplayBuffer``'s tensors are moved to ``self.device``."""
        self._runner.reset()
        super().load_replay_buffer(path, truncate_last_traj)
        if isinstance(self.replay_buffer, OfflineReplayBuffer):
            self.replay_buffer.to(self.device)

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """
        SB3's ``save``, and in the checkpoint: the class that saved it (``load`` refuses a checkpoint of another
        algorithm) and the states of the random generators (``load`` restores them: ``learn``, ``save``,
        ``load``, ``learn(reset_num_timesteps=False)`` trains as one uninterrupted ``learn``).
        """
        entries = {
            CHECKPOINT_CLASS_KEY: {
                "class": type(self).__name__,
                "algorithm": algorithm_name(type(self)),
            },
            RANDOM_STATES_KEY: capture_random_states(self.device),
        }
        self.__dict__.update(entries)
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            for key in entries:
                self.__dict__.pop(key, None)

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfCheckpointed],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfCheckpointed:
        """
        SB3's ``load`` (arguments as there), which first checks that the checkpoint was saved by this algorithm:
        by this class, a subclass of it, or a class of the same sb3-offline algorithm (a user's ``MyBCQ(BCQ)``
        and ``BCQ`` load each other's checkpoints; ``CalQL``, though a subclass of ``CQL``, is another algorithm).
        Another algorithm's checkpoint raises ``ValueError`` naming both classes. The random generators are then
        set to their state at saving, after SB3's re-seeding with ``seed``.
        """
        check_checkpoint_class(path, cls, algorithm_name(cls))
        model = super().load(
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        model.__dict__.pop(CHECKPOINT_CLASS_KEY, None)
        states = model.__dict__.pop(RANDOM_STATES_KEY, None)
        if isinstance(states, dict):
            restore_random_states(states, model.device)
        return model

    def _excluded_save_params(self) -> list[str]:
        excluded = ["_dataset_object", "_losses", "_runner", "_target_pairs", "_action_scale", *self.networks]
        return [*super()._excluded_save_params(), *excluded]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        """The policy and every optimizer of :meth:`learning_rates`."""
        return ["policy", *(f"{name}.optimizer" for name in self.learning_rates())], []

    def get_parameters(self) -> dict[str, dict]:
        """SB3's ``get_parameters``; optimizers switched for CUDA graphs are saved with their original settings."""
        params = super().get_parameters()
        return {name: portable_optimizer_state(p) if "param_groups" in p else p for name, p in params.items()}

    def set_parameters(
        self, load_path_or_dict: str | dict[str, th.Tensor], exact_match: bool = True, device: Any = "auto"
    ) -> None:
        """SB3's ``set_parameters``; captured CUDA graphs are dropped (they hold the old optimizer state)."""
        self._runner.reset()
        super().set_parameters(load_path_or_dict, exact_match=exact_match, device=device)
