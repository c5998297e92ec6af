"""A static dataset as an SB3 replay buffer, held once as torch tensors on the training device."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_offline.datasets.loaders import DatasetSource, describe_source, load_transitions
from sb3_offline.datasets.transitions import Observations, Transitions
from sb3_offline.datasets.validation import DEFAULT_ACTION_BOUND_TOLERANCE, validate_transitions

TensorObs = th.Tensor | dict[str, th.Tensor]


def _obs_dtype(space: spaces.Space) -> th.dtype:
    # images stay uint8 (SB3's preprocessing divides by 255); everything else is float32
    if isinstance(space, spaces.Box) and space.dtype == np.uint8:
        return th.uint8
    return th.float32


def _obs_storage(space: spaces.Space, capacity: int, device: th.device) -> TensorObs:
    if isinstance(space, spaces.Dict):
        return {key: _obs_storage(sub, capacity, device) for key, sub in space.spaces.items()}  # type: ignore[misc]
    if not isinstance(space, spaces.Box):
        raise ValueError(f"observation_space: expected a Box or a Dict of Box, found {type(space).__name__}")
    return th.zeros((capacity, *space.shape), dtype=_obs_dtype(space), device=device)


def _write_obs(storage: TensorObs, rows: slice | th.Tensor, values: Observations) -> None:
    if isinstance(storage, dict):
        assert isinstance(values, dict)
        for key, tensor in storage.items():
            tensor[rows] = (
                th.as_tensor(np.asarray(values[key]), device=tensor.device).to(tensor.dtype).reshape(tensor[rows].shape)
            )
        return
    assert not isinstance(values, dict)
    storage[rows] = (
        th.as_tensor(np.asarray(values), device=storage.device).to(storage.dtype).reshape(storage[rows].shape)
    )


def _gather_obs(storage: TensorObs, idx: th.Tensor) -> TensorObs:
    if isinstance(storage, dict):
        return {key: tensor[idx] for key, tensor in storage.items()}
    return storage[idx]


class OfflineReplayBuffer(ReplayBuffer):
    """
    A whole dataset held once as torch tensors on the training device; an SB3 ``ReplayBuffer``.

    The dataset (any source :func:`~sb3_offline.datasets.load_transitions` reads) is validated
    against the spaces, actions are rescaled from the env's Box to [-1, 1] (SB3's convention for
    the actions in a replay buffer), and everything is moved to ``device`` once. ``sample`` draws
    indices with ``torch.randint`` on that device and gathers there: no numpy->torch copy per batch.

    ``dones`` in the samples are *terminations* only: a transition cut by a time limit (a truncation)
    bootstraps from its next observation. Both flags are kept (``terminations``, ``timeouts``).

    Online transitions (fine-tuning through SB3's normal ``collect_rollouts`` path) are appended
    after the dataset, in a region of ``online_capacity`` rows allocated with it; that region is a
    ring buffer, the dataset rows are never overwritten and never copied again.

    :param buffer_size: SB3's buffer size; ignored when a dataset is given (its length sets the size)
    :param observation_space: the env's observation space (``Box`` or ``Dict`` of ``Box``)
    :param action_space: the env's action space (a bounded ``Box``)
    :param device: where the tensors live (``"auto"``: CUDA when available)
    :param n_envs: number of envs adding online transitions at once
    :param optimize_memory_usage: not supported (the dataset is stored with its next observations)
    :param handle_timeout_termination: always on: timeouts never count as terminations
    :param dataset: the data: a Minari id or ``MinariDataset``, a path (``.hdf5``, ``.npz``, SB3 ``.pkl``,
        Minari folder) or ``Transitions``; ``None`` gives an empty buffer for online data only
    :param online_capacity: rows reserved after the dataset for online transitions
    :param action_bound_tolerance: accepted overshoot of the action bounds, as a fraction of the range
    :param download: allow Minari to fetch a dataset id that is not on local disk
    """

    #: ``sample`` is device work only (no host round trip), so an update that samples from this
    #: buffer can be captured in a CUDA graph (``OfflineAlgorithm(cuda_graphs=True)``).
    graph_safe: ClassVar[bool] = True

    observations: TensorObs  # type: ignore[assignment]
    next_observations: TensorObs  # type: ignore[assignment]
    actions: th.Tensor  # type: ignore[assignment]
    rewards: th.Tensor  # type: ignore[assignment]
    dones: th.Tensor  # type: ignore[assignment]
    timeouts: th.Tensor  # type: ignore[assignment]

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        dataset: DatasetSource | None = None,
        online_capacity: int = 0,
        action_bound_tolerance: float = DEFAULT_ACTION_BOUND_TOLERANCE,
        download: bool = False,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage: expected False (OfflineReplayBuffer stores next observations)")
        if not handle_timeout_termination:
            raise ValueError("handle_timeout_termination: expected True (timeouts are never terminations here)")
        if not isinstance(action_space, spaces.Box):
            raise ValueError(f"action_space: expected a Box, found {type(action_space).__name__}")
        if online_capacity < 0:
            raise ValueError(f"online_capacity: expected >= 0, found {online_capacity}")
        # BaseBuffer, not ReplayBuffer.__init__: that one would allocate numpy arrays we never use.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device=device, n_envs=n_envs)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = True
        self.dataset_name = describe_source(dataset) if dataset is not None else None
        self.online_capacity = int(online_capacity)
        self.action_bound_tolerance = action_bound_tolerance

        transitions = None
        if dataset is not None:
            raw = load_transitions(dataset, action_space=action_space, download=download)
            transitions = validate_transitions(raw, observation_space, action_space, action_bound_tolerance)
        self.dataset_size = len(transitions) if transitions is not None else 0
        self.metadata: dict[str, Any] = dict(transitions.metadata) if transitions is not None else {}
        self.env_id = transitions.env_id if transitions is not None else None
        self.buffer_size = self.dataset_size + self.online_capacity
        if self.buffer_size == 0:
            raise ValueError("dataset: expected a dataset or online_capacity > 0, found neither")
        self._allocate(self.buffer_size)
        if transitions is not None:
            self._write_dataset(transitions)
        self._online_pos = 0
        self._online_full = False

    # ------------------------------------------------------------------------------------ storage
    def _allocate(self, capacity: int) -> None:
        device = self.device
        self.observations = _obs_storage(self.observation_space, capacity, device)
        self.next_observations = _obs_storage(self.observation_space, capacity, device)
        self.actions = th.zeros((capacity, self.action_dim), dtype=th.float32, device=device)
        self.rewards = th.zeros((capacity, 1), dtype=th.float32, device=device)
        self.dones = th.zeros((capacity, 1), dtype=th.float32, device=device)
        self.timeouts = th.zeros((capacity, 1), dtype=th.float32, device=device)

    def scale_action(self, action: np.ndarray) -> np.ndarray:
        """Env units -> [-1, 1], as SB3's ``BasePolicy.scale_action``."""
        assert isinstance(self.action_space, spaces.Box)
        low, high = self.action_space.low, self.action_space.high
        return 2.0 * ((action - low) / (high - low)) - 1.0

    def _write_dataset(self, transitions: Transitions) -> None:
        n = len(transitions)
        rows = slice(0, n)
        _write_obs(self.observations, rows, transitions.observations)
        _write_obs(self.next_observations, rows, transitions.next_observations)
        scaled = self.scale_action(transitions.actions.astype(np.float64)).astype(np.float32)
        self.actions[rows] = th.as_tensor(scaled.reshape(n, self.action_dim), device=self.device)
        self.rewards[rows, 0] = th.as_tensor(transitions.rewards, dtype=th.float32, device=self.device)
        self.dones[rows, 0] = th.as_tensor(transitions.terminations, dtype=th.float32, device=self.device)
        self.timeouts[rows, 0] = th.as_tensor(transitions.truncations, dtype=th.float32, device=self.device)

    def size(self) -> int:
        """Number of transitions that can be sampled: the dataset plus the online ones."""
        online = (self.online_capacity // self.n_envs) * self.n_envs if self._online_full else self._online_pos
        return self.dataset_size + online

    @property
    def online_size(self) -> int:
        return self.size() - self.dataset_size

    def reset(self) -> None:
        """Forget the online transitions; the dataset stays."""
        self._online_pos = 0
        self._online_full = False

    # -------------------------------------------------------------------------------------- online
    def add(  # type: ignore[override]
        self,
        obs: Observations,
        next_obs: Observations,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        Append ``n_envs`` online transitions after the dataset (SB3's ``ReplayBuffer.add`` arguments;
        ``action`` is the buffer action, already in [-1, 1]). A done whose info says
        ``TimeLimit.truncated`` is stored as a timeout, not a termination.
        """
        if self.online_capacity < self.n_envs:
            raise ValueError(
                f"online_capacity: expected at least n_envs={self.n_envs} rows for online transitions, found "
                f"{self.online_capacity}; pass replay_buffer_kwargs=dict(online_capacity=...)"
            )
        start = self.dataset_size + self._online_pos
        rows = th.arange(start, start + self.n_envs, device=self.device)
        _write_obs(self.observations, rows, obs)
        _write_obs(self.next_observations, rows, next_obs)
        self.actions[rows] = th.as_tensor(np.asarray(action), dtype=th.float32, device=self.device).reshape(
            self.n_envs, self.action_dim
        )
        self.rewards[rows, 0] = th.as_tensor(np.asarray(reward), dtype=th.float32, device=self.device).reshape(-1)
        timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=np.float32)
        dones = np.asarray(done, dtype=np.float32).reshape(-1)
        self.dones[rows, 0] = th.as_tensor(dones * (1.0 - timeouts), device=self.device)
        self.timeouts[rows, 0] = th.as_tensor(timeouts, device=self.device)
        self._online_pos += self.n_envs
        if self._online_pos + self.n_envs > self.online_capacity:
            self._online_full = True
            self._online_pos = 0
        self.pos = self.size() % self.buffer_size
        self.full = self.size() == self.buffer_size

    # ------------------------------------------------------------------------------------ sampling
    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None
    ) -> ReplayBufferSamples | DictReplayBufferSamples:
        """A uniform batch, gathered on the device. ``dones`` are terminations (timeouts bootstrap)."""
        if env is not None:
            raise ValueError(
                "env: expected None; OfflineReplayBuffer does not normalise with VecNormalize "
                "(normalise the dataset itself, or train without VecNormalize)"
            )
        upper = self.size()
        if upper == 0:
            raise ValueError("OfflineReplayBuffer.sample: the buffer holds no transitions")
        idx = th.randint(0, upper, (batch_size,), device=self.device)
        return self.gather(idx)

    def gather(self, idx: th.Tensor) -> ReplayBufferSamples | DictReplayBufferSamples:
        """The transitions at rows ``idx`` (a tensor on the buffer's device)."""
        observations = _gather_obs(self.observations, idx)
        next_observations = _gather_obs(self.next_observations, idx)
        if isinstance(observations, dict):
            assert isinstance(next_observations, dict)
            return DictReplayBufferSamples(
                observations=observations,
                actions=self.actions[idx],
                next_observations=next_observations,
                dones=self.dones[idx],
                rewards=self.rewards[idx],
            )
        assert isinstance(next_observations, th.Tensor)
        return ReplayBufferSamples(
            observations=observations,
            actions=self.actions[idx],
            next_observations=next_observations,
            dones=self.dones[idx],
            rewards=self.rewards[idx],
        )

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples | DictReplayBufferSamples:
        return self.gather(th.as_tensor(batch_inds, device=self.device))

    def to(self, device: th.device | str) -> OfflineReplayBuffer:
        """Move every tensor to ``device`` (e.g. after loading a pickled buffer on another machine)."""
        device = th.device(device)

        def move(value: TensorObs) -> TensorObs:
            if isinstance(value, dict):
                return {k: v.to(device) for k, v in value.items()}
            return value.to(device)

        self.observations = move(self.observations)
        self.next_observations = move(self.next_observations)
        self.actions, self.rewards = self.actions.to(device), self.rewards.to(device)
        self.dones, self.timeouts = self.dones.to(device), self.timeouts.to(device)
        self.device = device
        return self
