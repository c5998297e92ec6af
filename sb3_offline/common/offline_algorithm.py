"""``OfflineAlgorithm``: an SB3 ``OffPolicyAlgorithm`` whose ``learn`` trains from a fixed dataset."""

from __future__ import annotations

import io
import json
import os
import pathlib
import random
import sys
import time
import warnings
import zipfile
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common import utils
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, get_parameters_by_name
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer
from torch import nn

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.actions import loss_action_scale
from sb3_offline.common.cuda_graphs import (
    CudaGraphBackend,
    UpdateGraphs,
    can_capture,
    make_capturable,
    portable_optimizer_state,
)
from sb3_offline.common.normalization import fit_normalizers
from sb3_offline.common.schedules import StepSchedule, as_schedule, initial_value, schedule_value
from sb3_offline.common.training import DeviceLossAccumulator, copy_buffers, set_learning_rate, soft_update
from sb3_offline.datasets.loaders import DatasetSource, is_minari_dataset, recover_env

SelfOfflineAlgorithm = TypeVar("SelfOfflineAlgorithm", bound="OfflineAlgorithm")

#: The checkpoint's entry naming the class that saved it (``{"class": ..., "algorithm": ...}``, see
#: :func:`algorithm_name`); a checkpoint without it (saved before it existed) loads with any class.
CHECKPOINT_CLASS_KEY = "_checkpoint_class"
#: The checkpoint's entry holding the random generators' states at the time of saving (see
#: :func:`capture_random_states`), restored by ``load`` so that training resumes exactly.
RANDOM_STATES_KEY = "_random_states"


def algorithm_name(cls: type) -> str:
    """
    The algorithm a class of models implements, for the check of a checkpoint's class at load: the nearest class
    in its MRO that sb3-offline defines (``BCQ`` for a user's ``class MyBCQ(BCQ)``), or, for an algorithm built
    directly on :class:`OfflineAlgorithm` outside sb3-offline, the class of the MRO just below it. Compared by
    name, so checkpoints survive a module being moved.
    """
    below = cls
    for base in cls.__mro__:
        if base is OfflineAlgorithm:
            return below.__name__
        if base.__module__.split(".")[0] == "sb3_offline":
            return base.__name__
        below = base
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


def _saved_entry(path: str | pathlib.Path | io.BufferedIOBase, key: str) -> Any:
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


def _same_source(a: Any, b: Any) -> bool:
    """Paths and ids compare by value, objects (Transitions, MinariDataset) by identity."""
    if isinstance(a, str | os.PathLike) and isinstance(b, str | os.PathLike):
        return os.fspath(a) == os.fspath(b)
    return a is b


class OfflineAlgorithm(OffPolicyAlgorithm):
    """
    Base class of the offline algorithms: SB3's ``OffPolicyAlgorithm`` with a dataset.

    ``learn(total_timesteps)`` runs ``total_timesteps`` *gradient steps* on the dataset and never
    steps or resets the env. Per gradient step: one ``train(gradient_steps=1)``, ``num_timesteps += 1``
    and one ``callback.on_step()``, so SB3's callbacks (``EvalCallback``, ``CheckpointCallback``,
    ``CallbackList``, the progress bar) count gradient steps. The logger dumps every ``log_interval``
    gradient steps. ``learn_online`` is SB3's ordinary ``OffPolicyAlgorithm.learn`` (env interaction,
    new transitions appended to the buffer that holds the dataset), for fine-tuning.

    The env is needed for the spaces, for callbacks and for the progress bar; it is never stepped
    offline. With ``env=None`` it is recovered from the dataset (a Minari dataset's env spec, or
    the env id recorded in an HDF5/npz file).

    ``save`` writes an ordinary SB3 ``.zip`` holding a *reference* to the dataset (its id or path),
    never the data; ``load`` gives a model that predicts without the dataset, which is read again
    only when ``learn`` needs it (or pass ``dataset=...`` to ``load``). The checkpoint records the class
    that saved it (``load`` refuses another algorithm's, naming both classes) and the random generators'
    states (Python's, numpy's and torch's global generators, which sampling and exploration draw from),
    restored by ``load``: ``learn(n)``, ``save``, ``load``, ``learn(m, reset_num_timesteps=False)`` gives
    the same parameters on CPU as ``learn(n + m)`` with the same seed, counters such as ``_n_updates``
    (and the phases that depend on them) included. Learning rates resume exactly when constant or a
    :class:`~sb3_offline.common.schedules.StepSchedule` (a fixed horizon in gradient steps); an SB3 schedule
    of the progress remaining is relative to each ``learn`` call's total, as in SB3, so ``learn(n)``
    followed by ``learn(m)`` runs it over another horizon than ``learn(n + m)``.

    The plumbing every algorithm shares, whatever its policy class (ours or SB3's ``TD3Policy``):
    the policy's networks named in ``policy_networks`` are aliased on the algorithm (``self.actor``,
    ``self.critic`` ...); the targets named in ``target_networks`` are Polyak-averaged by
    :meth:`_update_targets` (batch-norm statistics copied); each network's ``optimizer`` (built in
    the policy) goes into the checkpoint; and each optimizer has its own learning-rate schedule
    (:meth:`learning_rate_schedules`), applied by :meth:`_update_learning_rates` before every update,
    CUDA graphs included (a captured learning rate is a device tensor filled in place).

    :param policy: the policy model to use (``MlpPolicy``, ``MultiInputPolicy``, ...)
    :param env: the environment (or its id); ``None`` to recover it from the dataset
    :param learning_rate: learning rate, constant, a function of the remaining progress (SB3's schedules)
        or a :class:`~sb3_offline.common.schedules.StepSchedule` over gradient steps; the main
        network's (the critics', or the only network's); others may have their own
    :param dataset: the data: Minari id or ``MinariDataset``, a path (``.hdf5``/``.h5``, ``.npz``,
        SB3 replay buffer ``.pkl``, Minari folder) or :class:`~sb3_offline.datasets.Transitions`;
        alternatively ``replay_buffer_kwargs=dict(dataset=...)``
    :param buffer_size: rows reserved for online transitions after the dataset (``learn_online``);
        0 for purely offline training. ``replay_buffer_kwargs["online_capacity"]`` overrides it.
    :param learning_starts: env steps collected before training in ``learn_online``
    :param batch_size: minibatch size of each gradient step
    :param tau: soft update coefficient of the target networks
    :param gamma: discount factor
    :param train_freq: for ``learn_online``: update the model every ``train_freq`` steps
    :param gradient_steps: for ``learn_online``: gradient steps after each rollout
    :param action_noise: for ``learn_online``: exploration noise
    :param replay_buffer_class: defaults to :class:`~sb3_offline.buffers.OfflineReplayBuffer`
    :param replay_buffer_kwargs: keyword arguments of the replay buffer
    :param policy_kwargs: keyword arguments of the policy
    :param stats_window_size: window for the rollout logging (``learn_online``)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param verbose: 0 no output, 1 info, 2 debug
    :param device: ``"auto"``, ``"cpu"``, ``"cuda"``...; the dataset is moved there once
    :param seed: seed for the pseudo random generators
    :param supported_action_spaces: the action spaces the algorithm supports
    :param cuda_graphs: on a CUDA device, capture each kind of offline gradient update in a CUDA graph
        after a few eager steps and replay it (:mod:`sb3_offline.common.cuda_graphs`); ``False`` keeps
        every update eager. Ignored on other devices, in ``learn_online``, and with a buffer that cannot
        be sampled inside a graph (HER's relabelling reads the env)
    :param _init_setup_model: whether to build the networks (and read the dataset) on creation
    """

    #: the policy's networks aliased on the algorithm, those the policy has (``self.actor`` is ``policy.actor``)
    policy_networks: ClassVar[tuple[str, ...]] = ("vae", "actor", "actor_target", "critic", "critic_target")
    #: target network -> the network it follows (Polyak averaging with ``tau``), those the policy has
    target_networks: ClassVar[dict[str, str]] = {"actor_target": "actor", "critic_target": "critic"}
    #: the units of the action losses, the authors' (:mod:`sb3_offline.common.actions`): ``"env"`` or ``"normalized"``
    action_units: ClassVar[str] = "normalized"

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule,
        dataset: DatasetSource | None = None,
        buffer_size: int = 0,
        learning_starts: int = 0,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = (1, "step"),
        gradient_steps: int = 1,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        device: Any = "auto",
        seed: int | None = None,
        supported_action_spaces: tuple[type[spaces.Space], ...] | None = (spaces.Box,),
        cuda_graphs: bool = True,
        _init_setup_model: bool = True,
    ) -> None:
        self.cuda_graphs = cuda_graphs
        # Objects (a MinariDataset, in-memory Transitions) are kept out of the checkpoint; what is
        # saved is a reference that can be read again: the Minari id, or the path.
        self._dataset_object: Any = None
        self.dataset: str | None = None
        self._set_dataset(dataset)
        if env is None and _init_setup_model:
            source = self._dataset_object or self.dataset or (replay_buffer_kwargs or {}).get("dataset")
            if source is None:
                raise ValueError("env: expected an environment, or a dataset that records one, found neither")
            env = recover_env(source)
        self._online_mode = False
        super().__init__(
            policy=policy,
            env=env,  # type: ignore[arg-type]
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=False,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            sde_support=False,
            supported_action_spaces=supported_action_spaces,
        )
        if _init_setup_model:
            self._setup_model()
            self._setup_replay_buffer()

    # ------------------------------------------------------------------------------------ set-up
    def _set_dataset(self, dataset: DatasetSource | None) -> None:
        """Keep a reference that can be saved (id or path) apart from an object that cannot."""
        self._dataset_object = None
        self.dataset = None
        if dataset is None:
            return
        if isinstance(dataset, str | os.PathLike):
            self.dataset = os.fspath(dataset)
        else:
            self._dataset_object = dataset
            self.dataset = str(cast(Any, dataset).spec.dataset_id) if is_minari_dataset(dataset) else None

    def _setup_lr_schedule(self) -> None:
        """SB3's, keeping a :class:`~sb3_offline.common.schedules.StepSchedule` a schedule over steps."""
        self.lr_schedule = as_schedule(self.learning_rate)  # type: ignore[assignment]

    def _setup_model(self) -> None:
        """Build the policy; unlike SB3, the replay buffer (the dataset) is read later, on demand."""
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.replay_buffer_class is None:
            self.replay_buffer_class = OfflineReplayBuffer
        self.policy = self.policy_class(
            self.observation_space,
            self.action_space,
            FloatSchedule(initial_value(self.lr_schedule)),  # what the policy builds its optimizers with
            **self.policy_kwargs,
        )
        self.policy = self.policy.to(self.device)
        self._convert_train_freq()
        self._losses = DeviceLossAccumulator()
        self._update_graphs: UpdateGraphs | None = None
        self._graphs_unavailable = False
        #: per action dimension, [-1, 1] -> the units of the action losses (``action_units``)
        self._action_scale = loss_action_scale(self.action_space, self.action_units, self.device)
        self._setup_networks()

    def _setup_networks(self) -> None:
        """Alias the policy's networks, pair the targets with what they follow, and give each optimizer its schedule."""
        self._networks: dict[str, nn.Module] = {}
        for name in self.policy_networks:
            module = getattr(self.policy, name, None)
            if isinstance(module, nn.Module):
                self._networks[name] = module
                setattr(self, name, module)
        self._target_pairs: dict[str, tuple[list[Any], list[Any], list[th.Tensor], list[th.Tensor]]] = {}
        for target, online in self.target_networks.items():
            if target in self._networks and online in self._networks:
                params = list(self._networks[online].parameters())
                target_params = list(self._networks[target].parameters())
                if len(params) != len(target_params):
                    raise ValueError(
                        f"{target}: expected a copy of {online} ({len(params)} parameter tensors), found "
                        f"{len(target_params)} parameter tensors"
                    )
                self._target_pairs[target] = (
                    params,
                    target_params,
                    get_parameters_by_name(self._networks[online], ["running_"]),
                    get_parameters_by_name(self._networks[target], ["running_"]),
                )
        schedules = self.learning_rate_schedules()
        self._optimizer_schedules: list[tuple[str, th.optim.Optimizer, Schedule | StepSchedule]] = []
        for name, module in self._networks.items():
            optimizer = getattr(module, "optimizer", None)
            if isinstance(optimizer, th.optim.Optimizer):
                self._optimizer_schedules.append((name, optimizer, schedules.get(name, self.lr_schedule)))

    def learning_rate_schedules(self) -> dict[str, Schedule | StepSchedule]:
        """
        The learning-rate schedule of each network's optimizer, by network name. A network whose policy
        sets ``<name>_lr`` (``actor_lr``, ``vae_lr``, a constant or a schedule) follows it; every other
        one follows ``learning_rate``. Subclasses may override.
        """
        schedules: dict[str, Schedule | StepSchedule] = {}
        for name in self._networks:
            value = getattr(self.policy, f"{name}_lr", None)
            schedules[name] = self.lr_schedule if value is None else as_schedule(value)
        return schedules

    def _update_learning_rates(self) -> None:
        """
        Set every optimizer's learning rate from its schedule: a :class:`StepSchedule` at the number of
        gradient updates done (``_n_updates``), others at SB3's progress remaining. Logs
        ``train/learning_rate`` (``learning_rate``'s) and ``train/<network>_learning_rate`` for a network
        with a schedule of its own.
        """
        progress, step = self._current_progress_remaining, self._n_updates
        self.logger.record("train/learning_rate", schedule_value(self.lr_schedule, progress, step))
        for name, optimizer, schedule in self._optimizer_schedules:
            value = schedule_value(schedule, progress, step)
            set_learning_rate(optimizer, value)
            if schedule is not self.lr_schedule:
                self.logger.record(f"train/{name}_learning_rate", value)

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        """SB3's entry point, routed to :meth:`_update_learning_rates` (each optimizer keeps its own schedule)."""
        self._update_learning_rates()

    def _update_targets(self, *names: str) -> None:
        """Polyak-average the named targets (default: all) with ``tau``; copy their batch-norm statistics."""
        for name in names or tuple(self._target_pairs):
            params, target_params, stats, target_stats = self._target_pairs[name]
            soft_update(params, target_params, self.tau)
            copy_buffers(stats, target_stats)

    def _setup_replay_buffer(self) -> None:
        """Read the dataset into the replay buffer (on ``self.device``)."""
        assert self.replay_buffer_class is not None
        kwargs = dict(self.replay_buffer_kwargs)
        if self.dataset is not None and not isinstance(self.dataset, str | os.PathLike):
            self._set_dataset(self.dataset)  # e.g. load(path, dataset=Transitions(...))
        if issubclass(self.replay_buffer_class, OfflineReplayBuffer):
            source = self._dataset_object if self._dataset_object is not None else self.dataset
            if source is not None:
                if kwargs.get("dataset") is not None and not _same_source(kwargs["dataset"], source):
                    raise ValueError(
                        f"dataset: given twice, as dataset={source!r} and replay_buffer_kwargs['dataset']="
                        f"{kwargs['dataset']!r}; pass one"
                    )
                kwargs["dataset"] = source
            kwargs.setdefault("online_capacity", self.buffer_size)
            if kwargs.get("dataset") is None and not kwargs["online_capacity"]:
                raise ValueError(
                    "dataset: expected a dataset (dataset=... or replay_buffer_kwargs=dict(dataset=...); for a loaded "
                    "model whose dataset was in memory, load(path, dataset=...)), found none"
                )
        elif self._dataset_object is not None or self.dataset is not None:
            raise ValueError(
                f"replay_buffer_class: expected an OfflineReplayBuffer subclass to hold the dataset, found "
                f"{self.replay_buffer_class.__name__}, which would ignore it (for hindsight relabelling of a "
                "dataset: sb3_offline.her.OfflineHerReplayBuffer)"
            )
        if issubclass(self.replay_buffer_class, HerReplayBuffer):
            # SB3's HerReplayBuffer (online) and sb3_offline.her.OfflineHerReplayBuffer (a dataset) both
            # relabel rewards with the env's compute_reward.
            if self.env is None:
                raise ValueError(
                    f"env: expected an environment (its compute_reward relabels the rewards of "
                    f"{self.replay_buffer_class.__name__}), found None"
                )
            kwargs["env"] = self.env
        self.replay_buffer = self.replay_buffer_class(
            self.buffer_size,
            self.observation_space,
            self.action_space,
            device=self.device,
            n_envs=self.n_envs,
            optimize_memory_usage=self.optimize_memory_usage,
            **kwargs,
        )
        transform = getattr(self.replay_buffer, "reward_transform", None)
        if kwargs.get("reward_transform") is not None and transform is not None:
            # the resolved transform (a rule such as "iql_locomotion" read from this dataset) is what the model
            # was trained with: saved with it, and applied as is when the buffer is rebuilt, whatever the dataset
            self.replay_buffer_kwargs["reward_transform"] = transform.to_dict()
        self._fit_normalizers()

    def _fit_normalizers(self) -> None:
        """Fit the policy's normalisers (observations, actions) that have no statistics yet on the dataset's rows."""
        buffer = self.replay_buffer
        if isinstance(buffer, OfflineReplayBuffer) and buffer.dataset_size > 0:
            rows = slice(0, buffer.dataset_size)
            observations = buffer.observations
            dataset_rows = (
                {key: value[rows] for key, value in observations.items()}
                if isinstance(observations, dict)
                else observations[rows]
            )
            fit_normalizers(self.policy, dataset_rows, buffer.actions[rows])

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        """SB3's ``load_replay_buffer``; an ``OfflineReplayBuffer``'s tensors are moved to ``self.device``."""
        self._reset_update_graphs()
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
            CHECKPOINT_CLASS_KEY: {"class": type(self).__name__, "algorithm": algorithm_name(type(self))},
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
        cls: type[SelfOfflineAlgorithm],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfOfflineAlgorithm:
        """
        SB3's ``load`` (arguments as there), which first checks that the checkpoint was saved by this algorithm:
        by this class, a subclass of it, or a class of the same sb3-offline algorithm (:func:`algorithm_name`: a
        user's ``MyBCQ(BCQ)`` and ``BCQ`` load each other's checkpoints; ``CalQL``, though a subclass of ``CQL``,
        is another algorithm). Another algorithm's checkpoint raises ``ValueError`` naming both classes; one saved
        before the class was recorded loads as before. The random generators are then set to their state at
        saving (Python's ``random``, numpy's, torch's), after SB3's re-seeding with ``seed``.
        """
        saved = _saved_entry(path, CHECKPOINT_CLASS_KEY)
        if isinstance(saved, dict) and saved.get("algorithm") not in (None, algorithm_name(cls)):
            where = os.fspath(path) if isinstance(path, str | os.PathLike) else "checkpoint"
            raise ValueError(
                f"{where}: expected a {cls.__name__} checkpoint, found a {saved.get('class')} checkpoint "
                f"(load it with {saved.get('class')}.load)"
            )
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
        return [
            *super()._excluded_save_params(),
            "_dataset_object",
            "_losses",
            "_update_graphs",
            "_graphs_unavailable",
            "_networks",
            "_target_pairs",
            "_optimizer_schedules",
            "_action_scale",
            *self.policy_networks,
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        """The policy and every network's optimizer."""
        optimizers = [f"{name}.optimizer" for name, _, _ in self._optimizer_schedules]
        return ["policy", *optimizers], []

    def _optimizers(self) -> list[th.optim.Optimizer]:
        """Every optimizer the checkpoint holds (``_get_torch_save_params``)."""
        return [optimizer for _, optimizer, _ in self._optimizer_schedules]

    def get_parameters(self) -> dict[str, dict]:
        """SB3's ``get_parameters``; optimizers switched for CUDA graphs are saved with their original settings."""
        params = super().get_parameters()
        return {name: portable_optimizer_state(p) if "param_groups" in p else p for name, p in params.items()}

    def set_parameters(
        self, load_path_or_dict: str | dict[str, th.Tensor], exact_match: bool = True, device: Any = "auto"
    ) -> None:
        """SB3's ``set_parameters``; captured CUDA graphs are dropped (they hold the old optimizer state)."""
        self._reset_update_graphs()
        super().set_parameters(load_path_or_dict, exact_match=exact_match, device=device)

    def _reset_update_graphs(self) -> None:
        if self._update_graphs is not None:
            self._update_graphs.clear()
        self._update_graphs = None
        self._graphs_unavailable = False

    # ------------------------------------------------------------------------------ gradient steps
    def _graphs_apply(self) -> bool:
        """Whether this offline update is run through CUDA graphs (switching the optimizers the first time)."""
        if not getattr(self, "cuda_graphs", True) or self._graphs_unavailable or self._online_mode:
            return False
        if self.device.type != "cuda" or self._vec_normalize_env is not None:
            return False
        if not getattr(self.replay_buffer, "graph_safe", False):
            return False
        if self._update_graphs is None:
            optimizers = self._optimizers()
            if not all(can_capture(optimizer) for optimizer in optimizers):
                warnings.warn(
                    "cuda_graphs: an optimizer cannot be captured in a CUDA graph (it needs a capturable option "
                    "and its parameters on CUDA); training eagerly",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self._graphs_unavailable = True
                return False
            for optimizer in optimizers:
                make_capturable(optimizer)
            self._update_graphs = UpdateGraphs(self._losses, CudaGraphBackend(self.device))
        return True

    def _gradient_step(self, name: str, update: Callable[[int], None], batch_size: int) -> None:
        """
        One gradient update, ``update(batch_size)``: called directly (the eager reference path), or
        captured in a CUDA graph after a few eager steps and replayed (``cuda_graphs``). ``update`` must
        only do device work: sample, compute losses, step optimizers, update targets, add losses to
        ``self._losses``; Python-side counters stay outside it.

        :param name: the kind of update (one graph per kind, e.g. PLAS's ``"vae"`` and ``"policy"``)
        :param update: the update
        :param batch_size: minibatch size
        """
        if not self._graphs_apply():
            update(batch_size)
            return
        assert self._update_graphs is not None and self.replay_buffer is not None
        # A graph bakes in the batch size and the buffer's host-side sampling state (its row count, ...): a
        # change captures a new one.
        buffer_state = (
            self.replay_buffer.graph_key()
            if isinstance(self.replay_buffer, OfflineReplayBuffer)
            else self.replay_buffer.size()
        )
        key = (name, batch_size, id(self.replay_buffer), buffer_state)
        if key not in self._update_graphs:
            self._update_graphs.discard(lambda other: other[0] == name and other != key)  # stale: free it
        self._update_graphs.run(key, lambda: update(batch_size))

    # ------------------------------------------------------------------------------ offline learn
    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.env is None:
            source = self._dataset_object or self.dataset or self.replay_buffer_kwargs.get("dataset")
            if source is None:
                raise ValueError("env: expected an environment (model.set_env(env)) to learn, found None")
            self.set_env(recover_env(source))
        if self.replay_buffer is None:
            self._setup_replay_buffer()
        if self._online_mode:
            return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

        # BaseAlgorithm._setup_learn without the env.reset(): offline learning never touches the env.
        self.start_time = time.time_ns()
        if self.ep_info_buffer is None or reset_num_timesteps:
            self.ep_info_buffer = deque(maxlen=self._stats_window_size)
            self.ep_success_buffer = deque(maxlen=self._stats_window_size)
        if reset_num_timesteps:
            self.num_timesteps = 0
            self._episode_num = 0
        else:
            total_timesteps += self.num_timesteps
        self._total_timesteps = total_timesteps
        self._num_timesteps_at_start = self.num_timesteps
        if not self._custom_logger:
            self._logger = utils.configure_logger(self.verbose, self.tensorboard_log, tb_log_name, reset_num_timesteps)
        callback = self._init_callback(callback, progress_bar)
        return total_timesteps, callback

    def learn(  # type: ignore[override]
        self: SelfOfflineAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 1000,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOfflineAlgorithm:
        """
        Train on the dataset for ``total_timesteps`` gradient steps; the env is never stepped.

        :param total_timesteps: number of gradient steps
        :param callback: callback(s) called after every gradient step
        :param log_interval: dump the logger every that many gradient steps (``None``: only at the end)
        :param tb_log_name: the name of the run for TensorBoard logging (default: the class name)
        :param reset_num_timesteps: whether to reset the current step count (``False`` continues)
        :param progress_bar: display a progress bar using tqdm and rich
        :return: the trained model
        """
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name or type(self).__name__, progress_bar
        )
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            self.train(gradient_steps=1, batch_size=self.batch_size)
            self.num_timesteps += 1
            callback.update_locals(locals())
            if not callback.on_step():
                break
            if log_interval and (self.num_timesteps - self._num_timesteps_at_start) % log_interval == 0:
                self._dump_offline_logs()
        if self._losses:
            self._dump_offline_logs()
        callback.on_training_end()
        return self

    def _dump_offline_logs(self) -> None:
        """Write the time keys and the device-accumulated losses (the only host sync), then dump."""
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        steps = self.num_timesteps - self._num_timesteps_at_start
        self.logger.record("time/gradient_steps_per_second", int(steps / time_elapsed))
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self._losses.flush(self.logger)
        self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------------------- online learn
    def learn_online(
        self: SelfOfflineAlgorithm,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfOfflineAlgorithm:
        """
        SB3's ordinary off-policy ``learn``: step the env for ``total_timesteps`` env steps, append each
        transition to the buffer that holds the dataset (its online region, ``buffer_size`` rows) and
        train on both. Arguments as ``OffPolicyAlgorithm.learn`` (``log_interval`` counts episodes).
        An algorithm with an ``online_batch_size`` (AWAC) trains with it here, with ``batch_size`` offline.
        """
        self._online_mode = True
        offline_batch_size = self.batch_size
        self.batch_size = getattr(self, "online_batch_size", None) or offline_batch_size
        try:
            OffPolicyAlgorithm.learn(
                self,
                total_timesteps=total_timesteps,
                callback=callback,
                log_interval=log_interval,
                tb_log_name=tb_log_name or f"{type(self).__name__}_online",
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=progress_bar,
            )
        finally:
            self._online_mode = False
            self.batch_size = offline_batch_size
        return self

    def _dump_logs(self) -> None:
        self._losses.flush(self.logger)
        super()._dump_logs()
