"""A static dataset as an SB3 replay buffer, held once as torch tensors on the training device."""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar, overload

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_offline.common.episodes import discounted_returns_to_go, episode_bounds, episode_returns
from sb3_offline.datasets.loaders import DatasetSource, describe_source, load_transitions
from sb3_offline.datasets.transitions import Observations, Transitions
from sb3_offline.datasets.validation import DEFAULT_ACTION_BOUND_TOLERANCE, row_chunks, validate_transitions

TensorObs = th.Tensor | dict[str, th.Tensor]

#: The named reward rules ``OfflineReplayBuffer(reward_transform=...)`` resolves from the dataset.
REWARD_TRANSFORM_RULES = ("iql_locomotion", "antmaze", "max", "max_abs")


@dataclass(frozen=True)
class RewardTransform:
    """
    An affine reward transform ``r' = scale * r + shift``, the resolved form of every
    ``reward_transform`` an :class:`OfflineReplayBuffer` accepts. Applies to numpy arrays and torch
    tensors alike (their dtype and device are kept).

    :param scale: multiplies the reward (finite, not 0)
    :param shift: added after scaling (finite)
    """

    scale: float = 1.0
    shift: float = 0.0

    def __post_init__(self) -> None:
        for name, value, nonzero in (("scale", self.scale, True), ("shift", self.shift, False)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise ValueError(f"reward_transform: expected a real number as {name}, found {value!r}")
            if not math.isfinite(float(value)) or (nonzero and float(value) == 0.0):
                expected = "a finite, non-zero scale" if nonzero else "a finite shift"
                raise ValueError(f"reward_transform: expected {expected}, found {name}={value!r}")
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "shift", float(self.shift))

    @overload
    def __call__(self, rewards: th.Tensor) -> th.Tensor: ...

    @overload
    def __call__(self, rewards: np.ndarray) -> np.ndarray: ...

    def __call__(self, rewards: np.ndarray | th.Tensor) -> np.ndarray | th.Tensor:
        """``scale * rewards + shift`` (same type and device as ``rewards``; same dtype if floating)."""
        if isinstance(rewards, th.Tensor):
            return rewards * self.scale + self.shift
        rewards = np.asarray(rewards)
        if not np.issubdtype(rewards.dtype, np.floating):
            rewards = rewards.astype(np.float64)
        return (rewards * self.scale + self.shift).astype(rewards.dtype, copy=False)

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.shift == 0.0

    def to_dict(self) -> dict[str, float]:
        """``dict(scale=..., shift=...)``: what ``reward_transform=`` accepts to rebuild exactly this transform."""
        return {"scale": self.scale, "shift": self.shift}


RewardTransformSpec = RewardTransform | dict[str, float] | str | None


def resolve_reward_transform(
    spec: RewardTransformSpec,
    rewards: np.ndarray | None = None,
    episode_ends: np.ndarray | None = None,
) -> RewardTransform:
    """
    Turn what ``OfflineReplayBuffer(reward_transform=...)`` accepts into a :class:`RewardTransform`.

    - ``None``: the identity;
    - a ``RewardTransform``, or a dict ``dict(scale=a, shift=b)`` (either key may be left out; ``to_dict()``'s
      output): ``r' = a * r + b``, exactly, whatever the dataset;
    - ``"iql_locomotion"``: ``r' = r / (max episode return - min episode return) * 1000``, the rule of IQL's
      authors for the locomotion tasks (``normalize`` in ikostrikov/implicit_q_learning, ``train_offline.py``:
      the dataset is split into trajectories at its ``dones_float`` (a termination, a time-limit cut or
      the end of the data: these are the buffer's episodes), each trajectory's return is the plain sum of
      its rewards, and the rewards are divided by the spread between the best and the worst trajectory,
      then multiplied by 1000). Needs the dataset's ``rewards`` and ``episode_ends``;
    - ``"antmaze"``: ``r' = r - 1`` (the same file's AntMaze rule);
    - ``"max"``: ``r' = r / max r``, the rule of LAPO's authors for every D4RL task but AntMaze
      (pcchenxi/LAPO-offlienRL, ``main_d4rl.py``: ``dataset['rewards'] / dataset['rewards'].max()``); it needs
      a dataset whose largest reward is > 0 (otherwise it would flip the rewards' signs or divide by 0);
    - ``"max_abs"``: ``r' = r / max |r|``: the same as ``"max"`` whenever ``max r >= |min r|`` (rewards >= 0,
      or a largest reward that dominates), and defined for any data with a reward != 0 (Pendulum's are all <= 0).

    :param spec: the ``reward_transform`` argument
    :param rewards: the dataset's raw rewards ``(N,)`` (for the rules computed from the dataset)
    :param episode_ends: ``(N,)`` bool, True on the rows that end an episode (termination or truncation)
    :raises ValueError: naming ``reward_transform``: an unknown rule or type, a bad scale/shift, a rule that
        needs a dataset without one, a zero spread of episode returns
    """
    if spec is None:
        return RewardTransform()
    if isinstance(spec, RewardTransform):
        return spec
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"scale", "shift"})
        if unknown:
            raise ValueError(f"reward_transform: expected a dict with keys 'scale' and 'shift', found keys {unknown}")
        return RewardTransform(scale=spec.get("scale", 1.0), shift=spec.get("shift", 0.0))
    if isinstance(spec, str):
        if spec == "antmaze":
            return RewardTransform(scale=1.0, shift=-1.0)
        if spec == "iql_locomotion":
            if rewards is None or episode_ends is None or len(rewards) == 0:
                raise ValueError(
                    "reward_transform: expected a dataset to compute 'iql_locomotion' from (its episode returns), "
                    "found none; pass the resolved transform instead (dict(scale=..., shift=...))"
                )
            returns = episode_returns(rewards, episode_ends)
            spread = float(returns.max() - returns.min())
            if not spread > 0.0:
                raise ValueError(
                    f"reward_transform: 'iql_locomotion' expected episode returns with max > min, found "
                    f"max = min = {float(returns.max())} over {len(returns)} episode(s)"
                )
            return RewardTransform(scale=1000.0 / spread, shift=0.0)
        if spec in ("max", "max_abs"):
            if rewards is None or len(rewards) == 0:
                raise ValueError(
                    f"reward_transform: expected a dataset to compute {spec!r} from (its rewards), found none; pass "
                    "the resolved transform instead (dict(scale=..., shift=...))"
                )
            values = np.asarray(rewards, dtype=np.float64)
            largest = float(values.max()) if spec == "max" else float(np.abs(values).max())
            if not largest > 0.0:
                expected = "a largest reward > 0" if spec == "max" else "a reward != 0"
                raise ValueError(
                    f"reward_transform: {spec!r} expected {expected}, found rewards in "
                    f"[{float(values.min())}, {float(values.max())}]"
                    + ("; 'max_abs' divides by max |r|" if spec == "max" else "")
                )
            return RewardTransform(scale=1.0 / largest, shift=0.0)
        raise ValueError(f"reward_transform: expected one of {list(REWARD_TRANSFORM_RULES)}, found {spec!r}")
    raise ValueError(
        f"reward_transform: expected None, a RewardTransform, dict(scale=..., shift=...) or one of "
        f"{list(REWARD_TRANSFORM_RULES)}, found {spec!r}"
    )


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


def _store_obs(storage: TensorObs, values: Observations, adopt: bool) -> TensorObs:
    """
    The dataset's observations in the first rows of ``storage``; with ``adopt`` (a host buffer that owns the
    arrays and has no rows after them), an array already in the storage's dtype and layout *becomes* the storage
    (``th.from_numpy``, no copy) and ``storage`` (never written, so never backed by memory) is dropped.
    """
    if isinstance(storage, dict):
        assert isinstance(values, dict)
        return {key: _store_obs(tensor, values[key], adopt) for key, tensor in storage.items()}  # type: ignore[misc]
    assert not isinstance(values, dict)
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
    _write_obs(storage, slice(0, len(array)), array)
    return storage


def _released(values: Observations) -> Observations:
    """Zero-row arrays of ``values``' dtype and shape: what a field of ``Transitions`` becomes once stored."""
    if isinstance(values, dict):
        return {key: _released(value) for key, value in values.items()}  # type: ignore[misc]
    array = np.asarray(values)
    return np.empty((0, *array.shape[1:]), dtype=array.dtype)


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

    **Rewards** are stored transformed by ``reward_transform`` (resolved once, from the dataset, into
    ``self.reward_transform``, a :class:`RewardTransform`), for the dataset and for every online reward
    ``add()`` receives; the raw rewards are not kept.

    **Episodes.** The dataset's episodes are its contiguous runs of rows closed by a termination or a
    truncation (a last run no flag closes ends with the data): ``episode_ids`` (``(buffer_size,)`` int64,
    one per row), ``episode_starts`` / ``episode_lengths`` (``(n_episodes,)`` int64, dataset episodes
    only) and ``n_episodes`` (the dataset's episode count). Online rows continue the numbering: each
    env's stream of rows is its own sequence of episodes (a new id when an env starts an episode; with
    ``n_envs > 1`` the envs' rows interleave in the ring, so an online episode is every ``n_envs``-th
    row, not a contiguous run). Online rows not yet written have id ``-1``. When the ring wraps, a
    row's new transition overwrites the old one *and its episode id*: an old episode keeps only the
    rows not yet overwritten (its id then covers fewer rows; nothing else is renumbered).

    **Returns-to-go** (:meth:`returns_to_go`, ``(buffer_size, 1)`` float32, cached per ``gamma``) are
    computed from the transformed rewards. Those of an online episode exist once it has ended:
    ``rtg_valid`` (``(buffer_size, 1)`` bool) is True on the dataset rows and on the rows of finished
    online episodes; ``add()`` fills a finished episode's returns-to-go in every cached tensor in place
    (the tensors are never replaced, except by :meth:`to`, so a captured CUDA graph reading them sees
    new episodes).

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
    :param reward_transform: applied to the dataset's rewards and to every online reward, before
        returns-to-go: ``None`` (identity), ``dict(scale=a, shift=b)`` (``r' = a * r + b``), a
        :class:`RewardTransform` (e.g. a trained model's ``buffer.reward_transform``, to rebuild exactly
        the same transform from any dataset), or a rule resolved from the dataset: ``"iql_locomotion"``
        (``r / (max - min episode return) * 1000``), ``"antmaze"`` (``r - 1``), ``"max"`` (``r / max r``) or
        ``"max_abs"`` (``r / max |r|``); see :func:`resolve_reward_transform`
    :param offline_fraction: ``None``: a batch is drawn uniformly from every row held (the dataset's and the
        online ones alike); a value in [0, 1]: once online rows exist, ``int(batch_size * offline_fraction)``
        rows of each batch come from the dataset and the rest from the online rows (Cal-QL's ``mixing_ratio``,
        the offline share; see :meth:`sample_indices`)
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
    episode_ids: th.Tensor
    episode_starts: th.Tensor
    episode_lengths: th.Tensor
    rtg_valid: th.Tensor

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
        reward_transform: RewardTransformSpec = None,
        offline_fraction: float | None = None,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage: expected False (OfflineReplayBuffer stores next observations)")
        if not handle_timeout_termination:
            raise ValueError("handle_timeout_termination: expected True (timeouts are never terminations here)")
        if not isinstance(action_space, spaces.Box):
            raise ValueError(f"action_space: expected a Box, found {type(action_space).__name__}")
        if online_capacity < 0:
            raise ValueError(f"online_capacity: expected >= 0, found {online_capacity}")
        if offline_fraction is not None and (
            isinstance(offline_fraction, bool)
            or not isinstance(offline_fraction, int | float)
            or not 0.0 <= offline_fraction <= 1.0
        ):
            raise ValueError(f"offline_fraction: expected None or a number in [0, 1], found {offline_fraction!r}")
        # BaseBuffer, not ReplayBuffer.__init__: that one would allocate numpy arrays we never use.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device=device, n_envs=n_envs)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = True
        self.dataset_name = describe_source(dataset) if dataset is not None else None
        self.online_capacity = int(online_capacity)
        self.action_bound_tolerance = action_bound_tolerance
        self.offline_fraction = None if offline_fraction is None else float(offline_fraction)

        transitions = None
        # Data this buffer read itself (from a path or a Minari id) is held by nothing else: it is validated in
        # place and each field is freed once stored (host peak about the data's size, not three times it).
        owned = isinstance(dataset, str | os.PathLike)
        if dataset is not None:
            transitions = validate_transitions(
                load_transitions(dataset, action_space=action_space, download=download),
                observation_space,
                action_space,
                action_bound_tolerance,
                copy=not owned,
            )
        self.dataset_size = len(transitions) if transitions is not None else 0
        self.metadata: dict[str, Any] = dict(transitions.metadata) if transitions is not None else {}
        self.env_id = transitions.env_id if transitions is not None else None
        self.reward_transform = resolve_reward_transform(
            reward_transform,
            transitions.rewards if transitions is not None else None,
            transitions.episode_ends if transitions is not None else None,
        )
        self.buffer_size = self.dataset_size + self.online_capacity
        if self.buffer_size == 0:
            raise ValueError("dataset: expected a dataset or online_capacity > 0, found neither")
        self._allocate(self.buffer_size)
        self.n_episodes = 0
        self.episode_starts = th.zeros(0, dtype=th.int64, device=self.device)
        self.episode_lengths = th.zeros(0, dtype=th.int64, device=self.device)
        if transitions is not None:
            self._write_dataset(transitions, owned)
            self._index_dataset_episodes(transitions)
        self._online_pos = 0
        self._online_full = False
        self._rtg_cache: dict[float, th.Tensor] = {}
        self._reset_online_episodes()

    # ------------------------------------------------------------------------------------ storage
    def _allocate(self, capacity: int) -> None:
        """The storage of ``capacity`` rows; the first ``dataset_size`` are left for :meth:`_write_dataset`."""
        device, filled = self.device, self.dataset_size
        self.observations = _obs_storage(self.observation_space, capacity, device, filled)
        self.next_observations = _obs_storage(self.observation_space, capacity, device, filled)
        self.actions = _rows_storage((capacity, self.action_dim), th.float32, device, filled)
        self.rewards = _rows_storage((capacity, 1), th.float32, device, filled)
        self.dones = _rows_storage((capacity, 1), th.float32, device, filled)
        self.timeouts = _rows_storage((capacity, 1), th.float32, device, filled)
        self.episode_ids = th.full((capacity,), -1, dtype=th.int64, device=device)
        self.rtg_valid = th.zeros((capacity, 1), dtype=th.bool, device=device)

    def scale_action(self, action: np.ndarray) -> np.ndarray:
        """Env units -> [-1, 1], as SB3's ``BasePolicy.scale_action``."""
        assert isinstance(self.action_space, spaces.Box)
        low, high = self.action_space.low, self.action_space.high
        return 2.0 * ((action - low) / (high - low)) - 1.0

    def _write_dataset(self, transitions: Transitions, owned: bool = False) -> None:
        """
        Store the validated dataset in the first ``len(transitions)`` rows. With ``owned`` (nothing else holds
        ``transitions``), each observation field is released from ``transitions`` once stored, and on the host
        with no online rows the observation arrays become the storage without a copy.
        """
        n = len(transitions)
        rows = slice(0, n)
        adopt = owned and self.online_capacity == 0
        self.observations = _store_obs(self.observations, transitions.observations, adopt)
        if owned:
            transitions.observations = _released(transitions.observations)
        self.next_observations = _store_obs(self.next_observations, transitions.next_observations, adopt)
        if owned:
            transitions.next_observations = _released(transitions.next_observations)
        actions = transitions.actions.reshape(n, self.action_dim)
        # rescaled in float64 a block at a time (no temporary of the data's size); an adoptable array is rescaled
        # in place and becomes the storage
        adopt_actions = adopt and self.device.type == "cpu" and actions.dtype == np.float32 and _adoptable(actions)
        target = th.from_numpy(actions) if adopt_actions else self.actions
        for chunk in row_chunks(actions):
            scaled = self.scale_action(actions[chunk].astype(np.float64)).astype(np.float32)
            target[chunk] = th.as_tensor(scaled, device=self.device)
        self.actions = target
        rewards = self.reward_transform(np.asarray(transitions.rewards, dtype=np.float32))
        self.rewards[rows, 0] = th.as_tensor(rewards, dtype=th.float32, device=self.device)
        self.dones[rows, 0] = th.as_tensor(transitions.terminations, dtype=th.float32, device=self.device)
        self.timeouts[rows, 0] = th.as_tensor(transitions.truncations, dtype=th.float32, device=self.device)

    def _index_dataset_episodes(self, transitions: Transitions) -> None:
        """``episode_ids`` of the dataset rows, ``episode_starts``, ``episode_lengths``, ``n_episodes``."""
        starts, lengths = episode_bounds(np.asarray(transitions.episode_ends, dtype=bool))
        ids = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
        self.n_episodes = len(starts)
        self.episode_starts = th.as_tensor(starts, device=self.device)
        self.episode_lengths = th.as_tensor(lengths, device=self.device)
        self.episode_ids[: self.dataset_size] = th.as_tensor(ids, device=self.device)
        self.rtg_valid[: self.dataset_size] = True

    def _reset_online_episodes(self) -> None:
        """No online episode: ids restart after the dataset's, every online row is unwritten (id -1)."""
        self._next_episode_id = self.n_episodes
        self._open_episode = np.full(self.n_envs, -1, dtype=np.int64)  # per env: its running episode, -1: none
        # per env: (row, transformed reward) of its running episode's steps still in the ring (the
        # older ones were overwritten by its own later steps; a return-to-go needs only later rewards)
        self._open_steps: list[deque[tuple[int, float]]] = [
            deque(maxlen=max(self._ring_rows_per_env, 1)) for _ in range(self.n_envs)
        ]
        self.episode_ids[self.dataset_size :] = -1
        self.rtg_valid[self.dataset_size :] = False
        for cached in self._rtg_cache.values():
            cached[self.dataset_size :] = 0.0

    @property
    def _ring_rows_per_env(self) -> int:
        """Rows of the online ring each env cycles through (env ``e`` has rows ``dataset_size + e + k * n_envs``)."""
        return self.online_capacity // self.n_envs

    @property
    def n_online_episodes(self) -> int:
        """Online episodes begun since the buffer was made (or reset); their ids follow the dataset's."""
        return self._next_episode_id - self.n_episodes

    def size(self) -> int:
        """Number of transitions that can be sampled: the dataset plus the online ones."""
        online = (self.online_capacity // self.n_envs) * self.n_envs if self._online_full else self._online_pos
        return self.dataset_size + online

    @property
    def online_size(self) -> int:
        return self.size() - self.dataset_size

    def reset(self) -> None:
        """Forget the online transitions and their episodes (online ids restart after the dataset's)."""
        self._online_pos = 0
        self._online_full = False
        self._reset_online_episodes()

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
        ``TimeLimit.truncated`` is stored as a timeout, not a termination. ``reward`` is stored
        transformed by ``self.reward_transform``.

        Episodes: an env with no running episode starts one (the next id); a done (termination or
        timeout) ends it, and its returns-to-go are then written to every cached :meth:`returns_to_go`
        tensor and its rows marked in ``rtg_valid`` (until then they are invalid, and 0).
        """
        if self.online_capacity < self.n_envs:
            raise ValueError(
                f"online_capacity: expected at least n_envs={self.n_envs} rows for online transitions, found "
                f"{self.online_capacity}; give the algorithm buffer_size=... (the rows after the dataset for "
                f"learn_online; 0 by default for the offline-only algorithms), or replay_buffer_kwargs=dict("
                f"online_capacity=...) to a buffer made by hand"
            )
        start = self.dataset_size + self._online_pos
        rows = th.arange(start, start + self.n_envs, device=self.device)
        _write_obs(self.observations, rows, obs)
        _write_obs(self.next_observations, rows, next_obs)
        self.actions[rows] = th.as_tensor(np.asarray(action), dtype=th.float32, device=self.device).reshape(
            self.n_envs, self.action_dim
        )
        rewards = self.reward_transform(np.asarray(reward, dtype=np.float32).reshape(-1))
        self.rewards[rows, 0] = th.as_tensor(rewards, device=self.device)
        timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=np.float32)
        dones = np.asarray(done, dtype=np.float32).reshape(-1)
        self.dones[rows, 0] = th.as_tensor(dones * (1.0 - timeouts), device=self.device)
        self.timeouts[rows, 0] = th.as_tensor(timeouts, device=self.device)
        self._track_online_episodes(start, rewards, (dones > 0) | (timeouts > 0))
        self._online_pos += self.n_envs
        if self._online_pos + self.n_envs > self.online_capacity:
            self._online_full = True
            self._online_pos = 0
        self.pos = self.size() % self.buffer_size
        self.full = self.size() == self.buffer_size

    def _track_online_episodes(self, start: int, rewards: np.ndarray, ends: np.ndarray) -> None:
        """Episode ids of the ``n_envs`` rows just written from ``start``; close the episodes that ended."""
        starting = self._open_episode < 0
        self._open_episode[starting] = self._next_episode_id + np.arange(int(starting.sum()))
        self._next_episode_id += int(starting.sum())
        rows = slice(start, start + self.n_envs)
        self.episode_ids[rows] = th.as_tensor(self._open_episode, device=self.device)
        self.rtg_valid[rows] = False
        for cached in self._rtg_cache.values():
            cached[rows] = 0.0
        for env_idx in range(self.n_envs):
            self._open_steps[env_idx].append((start + env_idx, float(rewards[env_idx])))
        for ended in np.flatnonzero(ends):
            self._finish_online_episode(int(ended))

    def _finish_online_episode(self, env_idx: int) -> None:
        """Env ``env_idx``'s episode ended: write its returns-to-go (every cached gamma), mark them valid."""
        steps = self._open_steps[env_idx]
        self._open_episode[env_idx] = -1
        if not steps:
            return
        rows = th.as_tensor([row for row, _ in steps], dtype=th.int64, device=self.device)
        rewards = np.array([reward for _, reward in steps], dtype=np.float64)
        ends = np.zeros(len(rewards), dtype=bool)
        for gamma, cached in self._rtg_cache.items():
            values = discounted_returns_to_go(rewards, ends, gamma).astype(np.float32)
            cached[rows, 0] = th.as_tensor(values, device=self.device)
        self.rtg_valid[rows] = True
        steps.clear()

    def truncate_last_trajectory(self) -> None:
        """
        End the online episodes still running as time-limit truncations (their last transition gets a
        timeout, so it still bootstraps) and fill their returns-to-go; e.g. after loading a saved buffer
        whose envs will start new episodes (SB3's ``HerReplayBuffer.truncate_last_trajectory``).
        """
        for env_idx in range(self.n_envs):
            if self._open_steps[env_idx]:
                last_row = self._open_steps[env_idx][-1][0]
                self.timeouts[last_row] = 1.0
                self._finish_online_episode(env_idx)

    # ------------------------------------------------------------------------------ returns-to-go
    def returns_to_go(self, gamma: float) -> th.Tensor:
        """
        Discounted returns-to-go of every row, ``(buffer_size, 1)`` float32 on the device, computed
        from the stored (transformed) rewards within each episode: ``G_t = r_t + gamma * G_{t+1}``,
        backwards; a termination ends the sum (``G_T = r_T``), and so does a time-limit cut or the end of
        the data, with nothing added for the unseen steps (as Cal-QL's ``calc_return_to_go``,
        nakamotoo/Cal-QL ``JaxCQL/replay_buffer.py``; its special case for all-failure sparse-reward
        trajectories, ``r / (1 - gamma)``, is not applied). See :func:`discounted_returns_to_go`.

        Rows of online episodes still running (and online rows never written) hold 0 and are False in
        ``rtg_valid``: mask with it (``rtg[idx]``, ``rtg_valid[idx]``). An online episode that lost its
        first rows to the ring keeps exact returns-to-go on its remaining rows (they need only later
        rewards).

        Cached per ``gamma``: the first call for a gamma reads the rewards back from the device (a host
        sync: call it before capturing a CUDA graph); later calls return the same tensor, which ``add()``
        keeps up to date in place when online episodes end.

        :param gamma: discount factor, in [0, 1]
        """
        gamma = float(gamma)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma: expected a discount factor in [0, 1], found {gamma}")
        cached = self._rtg_cache.get(gamma)
        if cached is not None:
            return cached
        values = np.zeros(self.buffer_size, dtype=np.float64)
        rewards = self.rewards[:, 0].cpu().numpy()
        ends = ((self.dones[:, 0] > 0) | (self.timeouts[:, 0] > 0)).cpu().numpy()
        n = self.dataset_size
        values[:n] = discounted_returns_to_go(rewards[:n], ends[:n], gamma)
        for env_idx in range(self.n_envs):
            rows = self._online_stream_rows(env_idx)
            values[rows] = discounted_returns_to_go(rewards[rows], ends[rows], gamma)
        valid = self.rtg_valid[:, 0].cpu().numpy()
        values[~valid] = 0.0  # running online episodes (their tails were closed by the stream's end above)
        cached = th.as_tensor(values.astype(np.float32).reshape(-1, 1), device=self.device)
        self._rtg_cache[gamma] = cached
        return cached

    def _online_stream_rows(self, env_idx: int) -> np.ndarray:
        """The rows env ``env_idx`` has written and the ring still holds, oldest first."""
        n_written = self._ring_rows_per_env if self._online_full else self._online_pos // self.n_envs
        slots = np.arange(n_written, dtype=np.int64)
        if self._online_full:
            slots = np.roll(slots, -(self._online_pos // self.n_envs))  # the next slot written is the oldest
        return self.dataset_size + slots * self.n_envs + env_idx

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
        return self.gather(self.sample_indices(batch_size))

    def sample_indices(self, batch_size: int, finished_episodes_only: bool = False) -> th.Tensor:
        """
        ``batch_size`` row indices, drawn with ``th.randint`` on the device: gather them with :meth:`gather`,
        and anything else per row (``returns_to_go(gamma)[idx]``, ``rtg_valid[idx]``, ``episode_ids[idx]``)
        with the same indices, all on the device (no host sync: safe inside a CUDA graph; what the draw
        depends on on the host is :meth:`graph_key`).

        - ``offline_fraction`` ``None`` (default): uniformly among the rows held (one draw, as ``sample``
          always made);
        - ``offline_fraction`` ``f``: ``int(batch_size * f)`` rows uniformly among the dataset's, the others
          uniformly among the online rows, with replacement however few these are (a single online row fills
          the whole online share, as the online buffer of Cal-QL's authors, ``ReplayBuffer.sample``, is
          sampled with ``np.random.randint``). While no online row can be drawn (before the first online step,
          or, with ``finished_episodes_only``, before the first online episode ends), or without a dataset,
          the batch is drawn as with ``None``;
        - ``finished_episodes_only``: rows of online episodes still running (``rtg_valid`` False: their
          returns-to-go do not exist yet) are never drawn; Cal-QL's authors add an online episode to their
          buffer only once it has ended.

        :param batch_size: number of rows
        :param finished_episodes_only: leave out the rows of the online episodes still running
        :return: ``(batch_size,)`` int64 row indices on the buffer's device
        """
        upper = self.size()
        if upper == 0:
            raise ValueError(f"{type(self).__name__}.sample: the buffer holds no transitions")
        counts = self._online_counts(finished_episodes_only)
        n_online, n_data = sum(counts), self.dataset_size
        if n_data + n_online == 0:
            raise ValueError(
                f"{type(self).__name__}.sample: expected transitions of finished episodes, found only the "
                f"{self.online_size} rows of online episodes still running"
            )
        fraction = getattr(self, "offline_fraction", None)
        if fraction is None or n_online == 0 or n_data == 0:
            draws = th.randint(0, n_data + n_online, (batch_size,), device=self.device)
            if not finished_episodes_only or n_online == 0:
                return draws  # the dataset's rows, then the online ones: row = draw
            online = self._online_rows((draws - n_data).clamp(min=0), counts)
            return th.where(draws < n_data, draws, online)
        n_offline = int(batch_size * fraction)
        offline = th.randint(0, n_data, (n_offline,), device=self.device)
        draws = th.randint(0, n_online, (batch_size - n_offline,), device=self.device)
        online = self._online_rows(draws, counts) if finished_episodes_only else draws + n_data
        return th.cat([offline, online])

    def _online_counts(self, finished_episodes_only: bool) -> list[int]:
        """Per env, how many of its online rows may be drawn (all it has written, or those of ended episodes)."""
        if self.online_capacity < self.n_envs:
            return [0] * self.n_envs
        written = self._ring_rows_per_env if self._online_full else self._online_pos // self.n_envs
        if not finished_episodes_only:
            return [written] * self.n_envs
        # an env's running episode is its newest len(open steps) rows: the others belong to ended episodes
        return [written - len(steps) for steps in self._open_steps]

    def _online_rows(self, draws: th.Tensor, counts: list[int]) -> th.Tensor:
        """
        Draws in ``[0, sum(counts))`` -> rows of finished online episodes: env by env (``counts[e]`` each), and
        within an env its ``counts[e]`` oldest rows in the ring, oldest first (device arithmetic only).
        """
        env = th.zeros_like(draws)
        start = th.zeros_like(draws)
        boundary = 0
        for count in counts[:-1]:
            boundary += count
            later = (draws >= boundary).long()
            env = env + later
            start = start + later * count
        oldest = self._online_pos // self.n_envs if self._online_full else 0
        slot = (oldest + draws - start) % self._ring_rows_per_env
        return self.dataset_size + slot * self.n_envs + env

    def graph_key(self) -> tuple[Any, ...]:
        """
        The host-side state a batch from :meth:`sample_indices` depends on (row counts, the ring's position,
        the running episodes' lengths): an update captured in a CUDA graph with one key is valid for exactly
        that key (``OfflineAlgorithm._gradient_step`` captures anew when it changes).
        """
        return (self.size(), self._online_pos, tuple(len(steps) for steps in self._open_steps))

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
        self.episode_ids, self.rtg_valid = self.episode_ids.to(device), self.rtg_valid.to(device)
        self.episode_starts, self.episode_lengths = self.episode_starts.to(device), self.episode_lengths.to(device)
        self._rtg_cache = {gamma: cached.to(device) for gamma, cached in self._rtg_cache.items()}
        self.device = device
        return self
