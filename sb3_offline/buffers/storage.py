"""The transitions' tensors on the training device: one row per transition, the dataset's first, online rows after."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples

from sb3_offline.common.observations import map_obs, map_obs_pair, obs_index
from sb3_offline.datasets.transitions import Observations, Transitions
from sb3_offline.datasets.validation import row_chunks

TensorObs = th.Tensor | dict[str, th.Tensor]


def _obs_dtype(space: spaces.Space) -> th.dtype:
    # images stay uint8 (SB3's preprocessing divides by 255); everything else is float32
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return th.uint8
    return th.float32


def _rows_storage(shape: tuple[int, ...], dtype: th.dtype, device: th.device, filled: int) -> th.Tensor:
    """
    Storage of ``shape[0]`` rows whose first ``filled`` rows the dataset is about to write: those are left
    uninitialised (``th.empty``: on the host, a page takes memory only when written, so the storage never costs
    more than what is written into it), the rows after them are zeroed.
    """
    tensor = th.empty(shape, dtype=dtype, device=device)
    tensor[filled:].zero_()
    return tensor


def _obs_storage(space: spaces.Space, capacity: int, device: th.device, filled: int = 0) -> TensorObs:
    if isinstance(space, spaces.Dict):
        subspaces = space.spaces.items()
        return {key: _obs_storage(sub, capacity, device, filled) for key, sub in subspaces}  # type: ignore[misc]
    if not isinstance(space, spaces.Box):
        raise ValueError(f"observation_space: expected a Box or a Dict of Box, found {type(space).__name__}")
    return _rows_storage((capacity, *space.shape), _obs_dtype(space), device, filled)


def _adoptable(array: np.ndarray) -> bool:
    """
    ``array`` can become a host tensor as it is: C-contiguous, writeable, and the whole of the memory it lives in
    (not a view of a larger array, e.g. the filled rows of an SB3 replay buffer: adopting it would keep the whole
    buffer alive).
    """
    owner = array
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    return bool(array.flags.c_contiguous and array.flags.writeable and owner.nbytes == array.nbytes)


def _store(storage: th.Tensor, values: np.ndarray, adopt: bool) -> th.Tensor:
    """
    ``values`` in the first rows of ``storage``; with ``adopt`` (arrays nothing else holds, on the host), an array
    already in the storage's dtype and layout *becomes* the storage (``th.from_numpy``, no copy) and ``storage``
    (never written, so never backed by memory) is dropped.
    """
    array = np.asarray(values)
    if (
        adopt
        and storage.device.type == "cpu"
        and len(array) == len(storage)
        and array.dtype == th.empty(0, dtype=storage.dtype).numpy().dtype
        and array.size == storage.numel()
        and _adoptable(array)
    ):
        return th.from_numpy(array).view(storage.shape)
    _write(storage, slice(0, len(array)), array)
    return storage


def _write(storage: th.Tensor, rows: slice | th.Tensor, values: np.ndarray) -> None:
    tensor = th.as_tensor(np.asarray(values), device=storage.device).to(storage.dtype)
    storage[rows] = tensor.reshape(storage[rows].shape)


def _released(values: Observations) -> Observations:
    """Zero-row arrays of ``values``' dtype and shape: what a field of ``Transitions`` becomes once stored."""
    return map_obs(lambda array: np.empty((0, *np.asarray(array).shape[1:]), dtype=np.asarray(array).dtype), values)


def _grown(tensor: th.Tensor, capacity: int, fill: float | bool = 0) -> th.Tensor:
    """``tensor``'s rows, then ``fill`` up to ``capacity`` rows (a new tensor)."""
    grown = th.full((capacity, *tensor.shape[1:]), fill, dtype=tensor.dtype, device=tensor.device)
    grown[: len(tensor)] = tensor
    return grown


class TransitionTensors:
    """
    ``observations``, ``next_observations`` (a tensor, or a dict of tensors for a ``Dict`` space), ``actions``
    (Box: float32 in [-1, 1]; Discrete: int64 indices, ``(rows, 1)`` as SB3's ``ReplayBuffer``), ``rewards``,
    ``dones`` (terminations) and ``timeouts``, ``capacity`` rows each, on ``device``.

    :param observation_space: ``Box`` or ``Dict`` of ``Box``
    :param action_dim: size of an action
    :param capacity: rows
    :param device: where the tensors live
    :param filled: the first rows, about to be written by :meth:`store_dataset` (left uninitialised)
    :param action_dtype: ``th.float32`` (Box actions in [-1, 1]) or ``th.int64`` (Discrete action indices)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_dim: int,
        capacity: int,
        device: th.device,
        filled: int = 0,
        action_dtype: th.dtype = th.float32,
    ) -> None:
        self.observation_space = observation_space
        self.device = device
        self.observations = _obs_storage(observation_space, capacity, device, filled)
        self.next_observations = _obs_storage(observation_space, capacity, device, filled)
        self.actions = _rows_storage((capacity, action_dim), action_dtype, device, filled)
        self.rewards = _rows_storage((capacity, 1), th.float32, device, filled)
        self.dones = _rows_storage((capacity, 1), th.float32, device, filled)
        self.timeouts = _rows_storage((capacity, 1), th.float32, device, filled)

    @property
    def capacity(self) -> int:
        return len(self.actions)

    def store_dataset(
        self,
        transitions: Transitions,
        rewards: np.ndarray,
        scale_action: Callable[[np.ndarray], np.ndarray],
        owned: bool,
    ) -> None:
        """
        The validated dataset in the first ``len(transitions)`` rows: actions rescaled by ``scale_action`` (env units
        -> [-1, 1], in float64 a block at a time: no temporary of the data's size), ``rewards`` (transformed) in
        place of its rewards. With ``owned`` (nothing else holds ``transitions``), each observation field is released
        from ``transitions`` once stored, and where the storage has the dataset's rows only, on the host, the arrays
        in the storage's dtype *become* the storage (no copy; the actions rescaled in place).
        """
        n = len(transitions)
        adopt = owned and self.capacity == n
        self.observations = map_obs_pair(lambda s, v: _store(s, v, adopt), self.observations, transitions.observations)
        if owned:
            transitions.observations = _released(transitions.observations)
        self.next_observations = map_obs_pair(
            lambda s, v: _store(s, v, adopt), self.next_observations, transitions.next_observations
        )
        if owned:
            transitions.next_observations = _released(transitions.next_observations)
        actions = transitions.actions.reshape(n, self.actions.shape[1])
        if self.actions.dtype == th.int64:  # Discrete: the indices as they are
            self.actions = _store(self.actions, actions.astype(np.int64, copy=False), adopt)
        else:
            self._store_box_actions(actions, scale_action, adopt)
        rows = slice(0, n)
        self.rewards[rows, 0] = th.as_tensor(rewards, dtype=th.float32, device=self.device)
        self.dones[rows, 0] = th.as_tensor(transitions.terminations, dtype=th.float32, device=self.device)
        self.timeouts[rows, 0] = th.as_tensor(transitions.truncations, dtype=th.float32, device=self.device)

    def _store_box_actions(
        self, actions: np.ndarray, scale_action: Callable[[np.ndarray], np.ndarray], adopt: bool
    ) -> None:
        """Box actions rescaled to [-1, 1] a block at a time; adopted as the storage (rescaled in place) when owned."""
        adopt_actions = adopt and self.device.type == "cpu" and actions.dtype == np.float32 and _adoptable(actions)
        target = th.from_numpy(actions) if adopt_actions else self.actions
        for chunk in row_chunks(actions):
            scaled = scale_action(actions[chunk].astype(np.float64)).astype(np.float32)
            target[chunk] = th.as_tensor(scaled, device=self.device)
        self.actions = target

    def write(
        self,
        rows: th.Tensor,
        obs: Observations,
        next_obs: Observations,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
        timeouts: np.ndarray,
    ) -> None:
        """Write transitions (online ones: Box ``actions`` in [-1, 1], ``rewards`` transformed) at ``rows``."""
        map_obs_pair(lambda storage, values: _write(storage, rows, values), self.observations, obs)
        map_obs_pair(lambda storage, values: _write(storage, rows, values), self.next_observations, next_obs)
        self.actions[rows] = th.as_tensor(np.asarray(actions), dtype=self.actions.dtype, device=self.device).reshape(
            len(rows), -1
        )
        for storage, values in ((self.rewards, rewards), (self.dones, dones), (self.timeouts, timeouts)):
            storage[rows, 0] = th.as_tensor(np.asarray(values, dtype=np.float32), device=self.device)

    def gather(self, idx: th.Tensor) -> ReplayBufferSamples | DictReplayBufferSamples:
        """The transitions at rows ``idx`` (a tensor on the device). ``dones`` are terminations (timeouts bootstrap)."""
        samples = (
            obs_index(self.observations, idx),
            self.actions[idx],
            obs_index(self.next_observations, idx),
            self.dones[idx],
            self.rewards[idx],
        )
        if isinstance(self.observations, dict):
            return DictReplayBufferSamples(*samples)
        return ReplayBufferSamples(*samples)

    def grow(self, capacity: int) -> None:
        """Extend every tensor to ``capacity`` rows (the new ones zero): the online rows, made when first needed."""
        self.observations = map_obs(lambda tensor: _grown(tensor, capacity), self.observations)
        self.next_observations = map_obs(lambda tensor: _grown(tensor, capacity), self.next_observations)
        self.actions, self.rewards = _grown(self.actions, capacity), _grown(self.rewards, capacity)
        self.dones, self.timeouts = _grown(self.dones, capacity), _grown(self.timeouts, capacity)

    def to(self, device: th.device) -> None:
        """Move every tensor to ``device``."""
        self.observations = map_obs(lambda tensor: tensor.to(device), self.observations)
        self.next_observations = map_obs(lambda tensor: tensor.to(device), self.next_observations)
        self.actions, self.rewards = self.actions.to(device), self.rewards.to(device)
        self.dones, self.timeouts = self.dones.to(device), self.timeouts.to(device)
        self.device = device
