"""
An algorithm's dataset: the reference it saves (an id or a path, never the data), the object it keeps in memory
(a ``MinariDataset``, ``Transitions``), and the replay buffer read from it.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, cast

from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.normalization import fit_normalizers
from sb3_offline.common.observations import obs_index
from sb3_offline.datasets.loaders import DatasetSource, is_minari_dataset


def check_given_once(algorithm: str, name: str, ours: dict[str, Any], given: dict[str, Any] | None) -> None:
    """Refuse a hyper-parameter of ``algorithm`` (``ours``) repeated with another value in its ``name`` kwargs."""
    for key, value in ours.items():
        if key in (given or {}) and (given or {})[key] != value:
            raise ValueError(
                f"{name}['{key}']: expected none (it is {algorithm}'s argument), found {(given or {})[key]!r} beside "
                f"{value!r}; pass it to {algorithm} only"
            )


def buffer_kwargs(buffer_class: type, ours: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """
    The buffer's keyword arguments: the algorithm's (``ours``) that ``buffer_class`` takes, then ``given``
    (``replay_buffer_kwargs``); ``ValueError`` for one it does not take with a value other than ``None``.
    """
    accepted = inspect.signature(buffer_class).parameters
    for key, value in ours.items():
        if key not in accepted and value is not None:
            raise ValueError(f"{key}: expected None with {buffer_class.__name__} (it takes no {key}), found {value!r}")
    return {**{key: value for key, value in ours.items() if key in accepted}, **given}


def split_dataset(dataset: DatasetSource | None) -> tuple[Any, str | None]:
    """``(object kept in memory or None, reference saved in the checkpoint or None)`` of a ``dataset`` argument."""
    if dataset is None:
        return None, None
    if isinstance(dataset, str | os.PathLike):
        return None, os.fspath(dataset)
    return dataset, str(cast(Any, dataset).spec.dataset_id) if is_minari_dataset(dataset) else None


def dataset_source(model: Any, what: str) -> Any:
    """
    What ``model`` reads its data from: its in-memory dataset, its saved reference, or
    ``replay_buffer_kwargs["dataset"]``; ``ValueError`` naming ``what`` it was needed for when there is none.
    """
    if model.dataset is not None and not isinstance(model.dataset, str | os.PathLike):
        model._dataset_object, model.dataset = split_dataset(model.dataset)  # e.g. load(path, dataset=Transitions)
    source = model._dataset_object or model.dataset or (model.replay_buffer_kwargs or {}).get("dataset")
    if source is None:
        raise ValueError(f"env: expected {what}, or a dataset that records one, found neither")
    return source


def _same_source(a: Any, b: Any) -> bool:
    """Paths and ids compare by value, objects (Transitions, MinariDataset) by identity."""
    if isinstance(a, str | os.PathLike) and isinstance(b, str | os.PathLike):
        return os.fspath(a) == os.fspath(b)
    return a is b


def _offline_buffer_kwargs(model: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The dataset (given once) and the online capacity of an :class:`OfflineReplayBuffer`."""
    if model.dataset is not None and not isinstance(model.dataset, str | os.PathLike):
        model._dataset_object, model.dataset = split_dataset(model.dataset)  # e.g. load(path, dataset=Transitions)
    source = model._dataset_object if model._dataset_object is not None else model.dataset
    if source is not None:
        if kwargs.get("dataset") is not None and not _same_source(kwargs["dataset"], source):
            raise ValueError(
                f"dataset: given twice, as dataset={source!r} and replay_buffer_kwargs['dataset']="
                f"{kwargs['dataset']!r}; pass one"
            )
        kwargs["dataset"] = source
    kwargs.setdefault("online_capacity", model.buffer_size)
    if kwargs.get("dataset") is None and not kwargs["online_capacity"]:
        raise ValueError(
            "dataset: expected a dataset (dataset=... or replay_buffer_kwargs=dict(dataset=...); for a loaded "
            "model whose dataset was in memory, load(path, dataset=...)), found none"
        )
    return kwargs


def require_data(buffer: Any) -> None:
    """
    Offline ``learn`` needs rows to learn from: ``ValueError`` naming ``dataset`` for an :class:`OfflineReplayBuffer`
    with none (a model built without a dataset, whose online rows are for ``learn_online``).
    """
    if isinstance(buffer, OfflineReplayBuffer) and buffer.size() == 0:
        raise ValueError(
            "dataset: expected a dataset to learn from (dataset=... or replay_buffer_kwargs=dict(dataset=...); for a "
            "loaded model whose dataset was in memory, load(path, dataset=...)), found none"
        )


def build_replay_buffer(model: Any, kwargs: dict[str, Any]) -> tuple[ReplayBuffer, dict[str, float] | None]:
    """
    ``model``'s replay buffer (``model.replay_buffer_class`` with ``kwargs``), holding its dataset on its device,
    and the policy's normalisers fitted on the dataset's rows (those not fitted yet).

    :return: the buffer, and the reward transform it resolved (``dict(scale=..., shift=...)``) when ``kwargs``
        asked for one (``None`` otherwise)
    """
    buffer_class = model.replay_buffer_class
    kwargs = dict(kwargs)
    if issubclass(buffer_class, OfflineReplayBuffer):
        kwargs = _offline_buffer_kwargs(model, kwargs)
    elif model._dataset_object is not None or model.dataset is not None:
        raise ValueError(
            f"replay_buffer_class: expected an OfflineReplayBuffer subclass to hold the dataset, found "
            f"{buffer_class.__name__}, which would ignore it (for hindsight relabelling of a "
            "dataset: sb3_offline.her.OfflineHerReplayBuffer)"
        )
    if issubclass(buffer_class, HerReplayBuffer):
        # SB3's HerReplayBuffer (online) and sb3_offline.her.OfflineHerReplayBuffer (a dataset) both
        # relabel rewards with the env's compute_reward.
        if model.env is None:
            raise ValueError(
                f"env: expected an environment (its compute_reward relabels the rewards of "
                f"{buffer_class.__name__}), found None"
            )
        kwargs["env"] = model.env
    buffer = buffer_class(
        model.buffer_size,
        model.observation_space,
        model.action_space,
        device=model.device,
        n_envs=model.n_envs,
        optimize_memory_usage=model.optimize_memory_usage,
        **kwargs,
    )
    if isinstance(buffer, OfflineReplayBuffer) and buffer.dataset_size > 0:
        rows = slice(0, buffer.dataset_size)
        fit_normalizers(model.policy, obs_index(buffer.observations, rows), buffer.actions[rows])
    transform = getattr(buffer, "reward_transform", None)
    resolved = transform.to_dict() if kwargs.get("reward_transform") is not None and transform is not None else None
    return buffer, resolved
