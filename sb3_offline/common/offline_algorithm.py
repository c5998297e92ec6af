"""``OfflineAlgorithm``: an SB3 ``OffPolicyAlgorithm`` whose ``learn`` trains from a fixed dataset."""

from __future__ import annotations

import inspect
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common import checkpoints, training
from sb3_offline.common import dataset_source as sources
from sb3_offline.common.actions import checkpoint_action_units, loss_action_scale
from sb3_offline.common.cuda_graphs import UpdateRunner
from sb3_offline.common.devices import warn_unavailable_cuda
from sb3_offline.common.normalization import with_observation_normalizer
from sb3_offline.common.schedules import LearningRate, as_schedule, initial_value, schedule_value
from sb3_offline.common.training import DeviceLossAccumulator, copy_buffers, set_learning_rate, soft_update, target_pair
from sb3_offline.datasets.loaders import DatasetSource, recover_env

SelfOfflineAlgorithm = TypeVar("SelfOfflineAlgorithm", bound="OfflineAlgorithm")

#: one gradient update of an algorithm: ``update(batch_size)``, device work only (see ``OfflineAlgorithm.train``)
Update = Callable[[int], None]


def arguments_of(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The named arguments of ``cls``'s constructor among ``values`` (a subclass's ``locals()``), handed on."""
    parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    named = {name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return {name: value for name, value in values.items() if name in named and name != "self"}


class OfflineAlgorithm(checkpoints.CheckpointedAlgorithm, OffPolicyAlgorithm):
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

    ``save`` and ``load`` (:class:`~sb3_offline.common.checkpoints.CheckpointedAlgorithm`) keep a reference to the
    dataset, never the data, and the random generators' states: training resumes exactly.

    What an algorithm declares (as sb3-contrib's TQC declares what it saves):

    - ``networks``: the policy's networks it uses, aliased on the algorithm (``self.actor`` is ``policy.actor``);
    - ``target_networks``: target -> the network it follows, Polyak-averaged by :meth:`_update_targets`;
    - :meth:`learning_rates`: each optimizer (``<network>.optimizer``, built once by the policy, saved in the
      checkpoint) and its learning rate, set before every update by :meth:`_update_learning_rate`;
    - :meth:`_policy_arguments` / :meth:`_buffer_arguments`: the policy's and the buffer's arguments that are the
      algorithm's hyper-parameters (its constructor holds their defaults);
    - :meth:`_next_update`: the update to run now; :meth:`train` (here, for every algorithm) runs it, eagerly or
      replayed as a CUDA graph (:class:`~sb3_offline.common.cuda_graphs.UpdateRunner`).

    With ``normalize_observations`` (an algorithm that has the switch), the policy's features extractor
    standardises observations with the dataset's statistics, by the formula of the algorithm's authors
    (``observation_normalizer``: ``(eps, eps_mode)``).

    :param policy: the policy model to use (``MlpPolicy``, ``MultiInputPolicy``, ...)
    :param env: the environment (or its id); ``None`` to recover it from the dataset
    :param learning_rate: learning rate, constant, a function of the remaining progress (SB3's schedules)
        or a :class:`~sb3_offline.common.schedules.StepSchedule` over gradient steps; the main
        network's (the critics', or the only network's); others may have their own
    :param dataset: the data: Minari id or ``MinariDataset``, a path (``.hdf5``/``.h5``, ``.npz``,
        SB3 replay buffer ``.pkl``, Minari folder) or :class:`~sb3_offline.datasets.Transitions`;
        alternatively ``replay_buffer_kwargs=dict(dataset=...)``
    :param buffer_size: rows for online transitions after the dataset (``learn_online``), allocated when the first
        online transition arrives. ``replay_buffer_kwargs["online_capacity"]`` overrides it.
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
    :param action_units: the units of the losses on actions, saved with the model: ``"normalized"`` ([-1, 1]: the
        authors' weights keep their meaning on any Box) or ``"env"`` (:mod:`sb3_offline.common.actions`)
    :param _init_setup_model: whether to build the networks (and read the dataset) on creation
    """

    #: marks the base of the offline algorithms (``checkpoints.algorithm_name`` stops here)
    offline_base: ClassVar[bool] = True
    #: the policy's networks aliased on the algorithm (``self.actor`` is ``policy.actor``)
    networks: ClassVar[tuple[str, ...]] = ()
    #: target network -> the network it follows (Polyak averaging with ``tau``)
    target_networks: ClassVar[dict[str, str]] = {}
    #: the authors' observation normalisation: ``(eps, eps_mode)`` of a
    #: :class:`~sb3_offline.common.normalization.Standardizer`
    observation_normalizer: ClassVar[tuple[float, str]] = (1e-3, "add")
    #: whether observations are standardised with the dataset's statistics (an algorithm with the switch sets it)
    normalize_observations: bool = False

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule,
        dataset: DatasetSource | None = None,
        buffer_size: int = 1_000_000,
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
        action_units: str = "normalized",
        _init_setup_model: bool = True,
    ) -> None:
        self.cuda_graphs, self.action_units = cuda_graphs, action_units
        # Objects (a MinariDataset, in-memory Transitions) are kept out of the checkpoint; what is
        # saved is a reference that can be read again: the Minari id, or the path.
        self._dataset_object, self.dataset = sources.split_dataset(dataset)
        self.replay_buffer_class, self.replay_buffer_kwargs = replay_buffer_class, replay_buffer_kwargs or {}
        if _init_setup_model:
            name = type(self).__name__
            checkpoints.refuse_legacy_policy_kwargs(policy_kwargs, name)
            sources.check_given_once(name, "policy_kwargs", self._policy_arguments(), policy_kwargs)
            sources.check_given_once(name, "replay_buffer_kwargs", self._buffer_arguments(), replay_buffer_kwargs)
            if env is None:
                env = recover_env(sources.dataset_source(self, "an environment"), format=self._dataset_format)
        self._online_mode = False
        warn_unavailable_cuda(device)  # SB3's get_device falls back to the CPU silently
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

    @classmethod
    def load(cls: type[SelfOfflineAlgorithm], path: Any, *args: Any, **kwargs: Any) -> SelfOfflineAlgorithm:
        """``CheckpointedAlgorithm.load``, ``action_units`` given by :func:`.actions.checkpoint_action_units`."""
        kwargs.setdefault("action_units", checkpoint_action_units(path, checkpoints.algorithm_name(cls)))
        return super().load(path, *args, **kwargs)

    def learning_rates(self) -> dict[str, LearningRate | None]:
        """
        Each optimizer the algorithm steps, by the network that holds it (``policy.<network>.optimizer``), and its
        learning rate: a constant, an SB3 schedule or a :class:`~sb3_offline.common.schedules.StepSchedule`;
        ``None``: ``learning_rate``. Every optimizer named here is saved in the checkpoint.
        """
        return {}

    def _policy_arguments(self) -> dict[str, Any]:
        """The policy's arguments that are this algorithm's hyper-parameters (not to be repeated elsewhere)."""
        return {}

    def _buffer_arguments(self) -> dict[str, Any]:
        """The buffer's arguments that are this algorithm's hyper-parameters (not to be repeated elsewhere)."""
        return {}

    def _next_update(self) -> tuple[str, Update]:
        """The kind of the update to run now (one CUDA graph per kind) and the update, ``update(batch_size)``."""
        raise NotImplementedError(f"{type(self).__name__}: an algorithm names its update in _next_update")

    def _prepare_updates(self) -> None:
        """Host-side preparation before a series of updates (values a captured update reads from the device)."""

    def _after_update(self, kind: str) -> None:
        """Host-side bookkeeping after an update of ``kind`` (phases that end after a number of updates)."""

    @property
    def _dataset_format(self) -> str | None:
        """The reader of the dataset named in ``replay_buffer_kwargs["dataset_format"]`` (``None``: by its kind)."""
        return (self.replay_buffer_kwargs or {}).get("dataset_format")

    def _setup_lr_schedule(self) -> None:
        """SB3's, keeping a :class:`~sb3_offline.common.schedules.StepSchedule` a schedule over steps."""
        self.lr_schedule = as_schedule(self.learning_rate)  # type: ignore[assignment]

    def _setup_model(self) -> None:
        """Build the policy; unlike SB3, the replay buffer (the dataset) is read later, on demand."""
        checkpoints.upgrade_legacy_policy_kwargs(self)
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.replay_buffer_class is None:
            self.replay_buffer_class = OfflineReplayBuffer
        if self.normalize_observations:
            eps, eps_mode = self.observation_normalizer
            self.policy_kwargs = with_observation_normalizer(
                self.policy_kwargs, self.observation_space, eps=eps, eps_mode=eps_mode
            )
        self.policy = self.policy_class(
            self.observation_space,
            self.action_space,
            FloatSchedule(initial_value(self.lr_schedule)),  # what the policy builds its optimizers with
            **{**self._policy_arguments(), **self.policy_kwargs},
        )
        self.policy = self.policy.to(self.device)
        self._convert_train_freq()
        self._losses = DeviceLossAccumulator()
        self._runner = UpdateRunner(self._losses, self.cuda_graphs)
        #: per action dimension, [-1, 1] -> the units of the action losses (``action_units``)
        self._action_scale = loss_action_scale(self.action_space, self.action_units, self.device)
        for name in self.networks:
            setattr(self, name, getattr(self.policy, name))
        self._target_pairs = {
            target: target_pair(self.policy, target, source) for target, source in self.target_networks.items()
        }
        self._set_learning_rates(self._current_progress_remaining, self._n_updates)  # each optimizer's, from the start

    def _optimizers(self) -> dict[str, th.optim.Optimizer]:
        """Every optimizer of :meth:`learning_rates`, by network."""
        return {name: getattr(self.policy, name).optimizer for name in self.learning_rates()}

    def _update_learning_rate(self, optimizers: Any = None) -> None:
        """
        Set every optimizer's learning rate (:meth:`learning_rates`): a :class:`StepSchedule` at the number of
        gradient updates done (``_n_updates``), others at SB3's progress remaining. Logs ``train/learning_rate``
        (``learning_rate``'s) and ``train/<network>_learning_rate`` for a network with a learning rate of its own.
        """
        progress, step = self._current_progress_remaining, self._n_updates
        self.logger.record("train/learning_rate", schedule_value(self.lr_schedule, progress, step))
        for name, value in self._set_learning_rates(progress, step).items():
            self.logger.record(f"train/{name}_learning_rate", value)

    def _set_learning_rates(self, progress: float, step: int) -> dict[str, float]:
        """Every optimizer's learning rate at ``progress``/``step``; returns those of the networks with their own."""
        own = {}
        optimizers = self._optimizers()
        for name, rate in self.learning_rates().items():
            value = schedule_value(self.lr_schedule if rate is None else as_schedule(rate), progress, step)
            set_learning_rate(optimizers[name], value)
            if rate is not None:
                own[name] = value
        return own

    def _update_targets(self, *names: str) -> None:
        """Polyak-average the named targets (default: all) with ``tau``; copy their batch-norm statistics."""
        for name in names or tuple(self._target_pairs):
            params, target_params, stats, target_stats = self._target_pairs[name]
            soft_update(params, target_params, self.tau)
            copy_buffers(stats, target_stats)

    def _setup_replay_buffer(self) -> None:
        """Read the dataset into the replay buffer (on ``self.device``) and fit the policy's normalisers on it."""
        assert self.replay_buffer_class is not None
        ours = self._buffer_arguments()
        kwargs = sources.buffer_kwargs(self.replay_buffer_class, ours, self.replay_buffer_kwargs)
        self.replay_buffer, resolved = sources.build_replay_buffer(self, kwargs)
        if resolved is not None:
            # the resolved reward transform (a rule such as "iql_locomotion" read from this dataset) is what the model
            # was trained with: saved with it, and applied as is when the buffer is rebuilt, whatever the dataset
            self.replay_buffer_kwargs["reward_transform"] = resolved

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """
        ``gradient_steps`` updates, each the one :meth:`_next_update` names, after every learning rate is set.
        An update does device work only (sample, losses, optimizer steps, target updates, loss sums into
        ``self._losses``; no ``.item()``, no Python ``if`` on a tensor), so that on CUDA it can be captured once
        as a CUDA graph and replayed; Python-side counters (``_n_updates``) stay here, outside it.
        """
        self.policy.set_training_mode(True)
        self._prepare_updates()
        for _ in range(gradient_steps):
            self._update_learning_rate()
            self._n_updates += 1
            kind, update = self._next_update()
            self._run_update(kind, update, batch_size)
            self._after_update(kind)

    def _run_update(self, kind: str, update: Update, batch_size: int) -> None:
        """One update, eagerly or through the CUDA graph of its kind, batch size and buffer state."""
        buffer = self.replay_buffer
        graphed = self._runner.applies(
            self.device,
            buffer,
            list(self._optimizers().values()),
            offline=not self._online_mode and self._vec_normalize_env is None,
        )
        # a graph bakes in the batch size and the buffer's host-side sampling state: a change captures a new one
        state = buffer.graph_key() if isinstance(buffer, OfflineReplayBuffer) else getattr(buffer, "size", int)()
        self._runner.run((kind, batch_size, id(buffer), state), lambda: update(batch_size), graphed)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.env is None:
            source = sources.dataset_source(self, "an environment (model.set_env(env)) to learn")
            self.set_env(recover_env(source, format=self._dataset_format))
        if self.replay_buffer is None:
            self._setup_replay_buffer()
        if self._online_mode:  # our logger: no empty SB3-<date> folder in the temp dir (own_logger)
            with training.own_logger(self, tb_log_name, reset_num_timesteps):
                return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        sources.require_data(self.replay_buffer)

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
        with training.own_logger(self, tb_log_name, reset_num_timesteps):
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
        Train on the dataset for ``total_timesteps`` gradient steps; the env is never stepped. The arguments are
        SB3's ``learn``'s, counted in gradient steps (``log_interval``: dump the logger every that many, ``None``:
        at the end only; ``tb_log_name`` defaults to the class name).
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
        transition to the buffer that holds the dataset (its online rows, ``buffer_size`` of them) and
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
