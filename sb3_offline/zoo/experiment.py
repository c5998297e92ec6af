"""rl-zoo3's ``ExperimentManager``, taught the difference between offline and online runs of our algorithms."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS as ZOO_ALGOS
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from sb3_offline.algorithms import ALGOS
from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.offline_algorithm import OfflineAlgorithm

#: The key of a config entry that trains by stepping the env (``learn_online``) instead of offline.
ONLINE_KEY = "learn_online"


@functools.cache
def online_variant(algo_class: type[OfflineAlgorithm]) -> type[OfflineAlgorithm]:
    """
    ``algo_class`` whose ``learn`` is ``learn_online``: rl-zoo3 trains (and tunes) by calling
    ``model.learn(n_timesteps, callback=..., log_interval=...)``. Only the class of the object in
    memory changes; a checkpoint holds no class, and loads with ``algo_class.load``.

    :param algo_class: one of our algorithms
    """

    def learn(self: OfflineAlgorithm, *args: Any, **kwargs: Any) -> OfflineAlgorithm:
        return self.learn_online(*args, **kwargs)

    learn.__doc__ = algo_class.learn_online.__doc__
    return type(algo_class.__name__, (algo_class,), {"learn": learn, "__module__": algo_class.__module__})


@contextmanager
def _swapped(mapping: dict[str, Any], key: str, value: Any) -> Iterator[None]:
    saved = mapping[key]
    mapping[key] = value
    try:
        yield
    finally:
        mapping[key] = saved


class OfflineExperimentManager(ExperimentManager):
    """
    rl-zoo3's ``ExperimentManager`` for our algorithms (every other algorithm: unchanged).

    - ``config`` defaults to our packaged ``configs/<algo>.yml`` instead of rl-zoo3's hyperparams folder.
    - An entry trains **offline** (``model.learn``: ``n_timesteps`` gradient steps on its ``dataset``;
      the training env is built, for the spaces and callbacks, and never stepped) unless it sets
      ``learn_online: True`` (``model.learn_online``: ``n_timesteps`` env steps, as rl-zoo3 runs SB3's
      algorithms; e.g. ``her.yml``'s ``HerReplayBuffer`` entries, or ``-i checkpoint.zip
      -params learn_online:True`` to fine-tune an offline run). The key is kept in the run's ``config.yml``.
    - Offline entries are checked before anything is built: a dataset is required, and ``normalize``
      (``VecNormalize``, whose statistics come from env steps) is refused.
    - ``--optimize`` builds one model with the entry's hyper-parameters before the study starts, so
      that a bad dataset or config fails once, with its own error, instead of pruning every trial
      (rl-zoo3 prunes a trial on any ``ValueError``).

    :param args: rl-zoo3 ``train``'s parsed arguments
    :param algo: the algorithm's name
    :param env_id: the gymnasium id
    :param log_folder: the ``-f`` folder
    :param positional: the rest of ``ExperimentManager``'s positional arguments
    :param config: the ``-conf`` file (``None``: ours for our algorithms, rl-zoo3's for the others)
    :param kwargs: the rest of ``ExperimentManager``'s keyword arguments
    """

    def __init__(
        self,
        args: Any,
        algo: str,
        env_id: str,
        log_folder: str,
        *positional: Any,
        config: str | None = None,
        **kwargs: Any,
    ) -> None:
        from sb3_offline.zoo import config_path

        self.ours = algo in ALGOS
        self.online = False
        kwargs["config"] = str(config_path(algo)) if config is None and self.ours else config
        super().__init__(args, algo, env_id, log_folder, *positional, **kwargs)

    def _preprocess_hyperparams(
        self, hyperparams: dict[str, Any]
    ) -> tuple[dict[str, Any], Callable | None, list[BaseCallback], Callable | None]:
        if not self.ours:
            return super()._preprocess_hyperparams(hyperparams)
        online = hyperparams.pop(ONLINE_KEY, False)
        if not isinstance(online, bool):
            raise ValueError(f"{ONLINE_KEY}: expected True or False, found {online!r} (in {self.config})")
        self.online = online
        processed = super()._preprocess_hyperparams(hyperparams)
        if not self.online:
            self._check_offline_entry(processed[0])
        return processed

    def _check_offline_entry(self, hyperparams: dict[str, Any]) -> None:
        where = f"the {self.algo} entry for {self.env_name.gym_id} in {self.config}"
        if self.normalize:
            raise ValueError(
                f"normalize: expected no VecNormalize for offline training ({where}), found normalize="
                f"{self.normalize_kwargs or True}: its statistics come from env steps, which offline training "
                f"never takes; normalize the dataset instead, or set {ONLINE_KEY}: True"
            )
        buffer_class = hyperparams.get("replay_buffer_class") or OfflineReplayBuffer
        buffer_kwargs = hyperparams.get("replay_buffer_kwargs") or {}
        if (
            isinstance(buffer_class, type)
            and issubclass(buffer_class, OfflineReplayBuffer)
            and hyperparams.get("dataset") is None
            and buffer_kwargs.get("dataset") is None
            and not self.continue_training
        ):
            raise ValueError(
                f"dataset: expected a dataset (dataset: <Minari id or .hdf5/.npz/.pkl path>) for offline training "
                f"({where}), found none; set {ONLINE_KEY}: True to train by stepping the env instead"
            )

    def learn(self, model: BaseAlgorithm) -> None:
        """rl-zoo3's ``learn``: offline gradient steps, or ``learn_online`` for a ``learn_online: True`` entry."""
        if not (self.online and isinstance(model, OfflineAlgorithm)):
            super().learn(model)
            return
        algo_class = type(model)
        model.__class__ = online_variant(algo_class)
        try:
            super().learn(model)
        finally:
            model.__class__ = algo_class

    def objective(self, trial: optuna.Trial) -> float:
        """rl-zoo3's trial (model built, trained, evaluated by its ``TrialEvalCallback``), online if the entry is."""
        if not (self.online and self.ours):
            return super().objective(trial)
        with _swapped(ZOO_ALGOS, self.algo, online_variant(ALGOS[self.algo])):
            return super().objective(trial)

    def hyperparameters_optimization(self) -> None:
        """rl-zoo3's Optuna study, after checking once that the entry builds its model."""
        if self.ours:
            env = self.create_envs(1, no_log=True)
            try:
                ALGOS[self.algo](env=env, device=self.device, **self._hyperparams)  # type: ignore[arg-type]
            finally:
                env.close()
        super().hyperparameters_optimization()
