"""A static dataset as an SB3 replay buffer, held once as torch tensors on the training device."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_offline.buffers.episode_index import EpisodeIndex
from sb3_offline.buffers.online import OnlineRing
from sb3_offline.buffers.rewards import RewardTransformSpec, resolve_reward_transform
from sb3_offline.buffers.sampling import checked_offline_fraction, sample_rows
from sb3_offline.buffers.storage import TransitionTensors
from sb3_offline.datasets.loaders import DatasetSource, describe_source, load_transitions
from sb3_offline.datasets.transitions import Observations, Transitions
from sb3_offline.datasets.validation import DEFAULT_ACTION_BOUND_TOLERANCE, validate_transitions


def _delegated(piece: str, name: str) -> Any:
    """A read-only attribute of the buffer that is ``name`` of its piece ``piece`` (the pieces own the tensors)."""
    return property(lambda self: getattr(getattr(self, piece), name), doc=f"``{piece}.{name}``")


def read_dataset(
    dataset: DatasetSource,
    observation_space: spaces.Space,
    action_space: spaces.Box | spaces.Discrete,
    action_bound_tolerance: float,
    dataset_format: str | None,
    download: bool,
) -> Transitions:
    """
    The validated dataset. Data read here (from a path or a Minari id) is held by nothing else: it is validated in
    place and each field is freed once stored (host peak about the data's size); other data is copied.
    """
    return validate_transitions(
        load_transitions(dataset, action_space=action_space, download=download, format=dataset_format),
        observation_space,
        action_space,
        action_bound_tolerance,
        copy=not isinstance(dataset, str | os.PathLike),
    )


class OfflineReplayBuffer(ReplayBuffer):
    """
    A whole dataset held once as torch tensors on the training device; an SB3 ``ReplayBuffer``.

    The dataset (any source :func:`~sb3_offline.datasets.load_transitions` reads) is validated against the spaces,
    Box actions are rescaled to [-1, 1] (SB3's convention in a replay buffer; Discrete actions are int64 indices
    ``(rows, 1)``, sampled as ``long`` as SB3's ``ReplayBuffer`` gives them to DQN), and everything is moved to
    ``device`` once: ``sample`` draws indices with ``torch.randint`` and gathers there. ``dones`` in the samples are
    *terminations*: a transition cut by a time limit (a truncation) bootstraps (both flags are kept: ``dones``,
    ``timeouts``).

    One job per piece:

    - ``data`` (:class:`~sb3_offline.buffers.storage.TransitionTensors`): the tensors, the dataset's rows first;
    - ``episodes`` (:class:`~sb3_offline.buffers.episode_index.EpisodeIndex`): episode ids, the dataset's episode
      starts and lengths, returns-to-go (:meth:`returns_to_go`, ``rtg_valid``);
    - ``ring`` (:class:`~sb3_offline.buffers.online.OnlineRing`): the ``online_capacity`` rows after the dataset
      that fine-tuning (SB3's ``collect_rollouts``, :meth:`add`) fills, allocated when the first online transition
      arrives; the dataset's rows are never overwritten;
    - :meth:`sample_indices` (:func:`~sb3_offline.buffers.sampling.sample_rows`): uniform, or mixed.

    **Rewards** are stored transformed by ``reward_transform``, resolved once from the dataset into a
    :class:`~sb3_offline.buffers.rewards.RewardTransform` (``self.reward_transform``), for the dataset and every online
    reward. Named rules belong to the algorithms whose authors define them (``REWARD_RULES``).

    :param buffer_size: SB3's buffer size; ignored (the dataset's length and ``online_capacity`` set the size)
    :param observation_space: the env's observation space (``Box`` or ``Dict`` of ``Box``)
    :param action_space: the env's action space (a bounded ``Box``, or a ``Discrete``)
    :param device: where the tensors live (``"auto"``: CUDA when available)
    :param n_envs: number of envs adding online transitions at once
    :param optimize_memory_usage: must be ``False`` (the dataset is stored with its next observations)
    :param handle_timeout_termination: must be ``True`` (timeouts never count as terminations)
    :param dataset: the data: a Minari id or ``MinariDataset``, a path (``.hdf5``, ``.npz``, SB3 ``.pkl``, Minari
        folder) or ``Transitions``; ``None`` gives an empty buffer for online data only
    :param online_capacity: rows reserved after the dataset for online transitions
    :param action_bound_tolerance: accepted overshoot of the action bounds, as a fraction of the range
    :param download: allow Minari to fetch a dataset id that is not on local disk
    :param reward_transform: ``None`` (identity), ``dict(scale=a, shift=b)``, a ``RewardTransform``, or a registered
        rule's name (``REWARD_RULES``: ``"iql_locomotion"``, ``"max"``, ...), resolved from the dataset
    :param offline_fraction: ``None``: a batch is drawn uniformly from every row held; a value in [0, 1]: once online
        rows exist, ``int(batch_size * offline_fraction)`` rows of each batch come from the dataset and the rest from
        the online rows (Cal-QL's ``mixing_ratio``, the offline share; see :meth:`sample_indices`)
    :param dataset_format: the reader of ``dataset`` (a format name of :func:`~sb3_offline.datasets.load_transitions`);
        ``None``: by its type or file extension
    """

    #: ``sample`` is device work only (no host round trip): an update that samples from this buffer can be
    #: captured in a CUDA graph (``OfflineAlgorithm(cuda_graphs=True)``)
    graph_safe: ClassVar[bool] = True

    observations = _delegated("data", "observations")
    next_observations = _delegated("data", "next_observations")
    actions = _delegated("data", "actions")
    rewards = _delegated("data", "rewards")
    dones = _delegated("data", "dones")
    timeouts = _delegated("data", "timeouts")
    episode_ids = _delegated("episodes", "episode_ids")
    rtg_valid = _delegated("episodes", "rtg_valid")
    episode_starts = _delegated("episodes", "episode_starts")
    episode_lengths = _delegated("episodes", "episode_lengths")
    n_episodes = _delegated("episodes", "n_episodes")
    n_online_episodes = _delegated("episodes", "n_online_episodes")
    online_capacity = _delegated("ring", "capacity")

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
        dataset_format: str | None = None,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage: expected False (OfflineReplayBuffer stores next observations)")
        if not handle_timeout_termination:
            raise ValueError("handle_timeout_termination: expected True (timeouts are never terminations here)")
        if not isinstance(action_space, spaces.Box | spaces.Discrete):
            raise ValueError(f"action_space: expected a Box or a Discrete, found {type(action_space).__name__}")
        # BaseBuffer, not ReplayBuffer.__init__: that one would allocate numpy arrays we never use.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device=device, n_envs=n_envs)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = True
        self.dataset_name = describe_source(dataset) if dataset is not None else None
        self.action_bound_tolerance = action_bound_tolerance
        self.offline_fraction = checked_offline_fraction(offline_fraction)
        transitions = None
        if dataset is not None:
            transitions = read_dataset(
                dataset, self.observation_space, action_space, action_bound_tolerance, dataset_format, download
            )
        self.dataset_size = len(transitions) if transitions is not None else 0
        self.metadata: dict[str, Any] = dict(transitions.metadata) if transitions is not None else {}
        self.env_id = transitions.env_id if transitions is not None else None
        self.reward_transform = resolve_reward_transform(
            reward_transform,
            transitions.rewards if transitions is not None else None,
            transitions.episode_ends if transitions is not None else None,
        )
        self.ring = OnlineRing(online_capacity, n_envs, self.dataset_size)
        self.buffer_size = self.dataset_size + self.ring.capacity
        if self.buffer_size == 0:
            raise ValueError("dataset: expected a dataset or online_capacity > 0, found neither")
        # the online rows are allocated when the first online transition arrives (_make_online_rows)
        capacity = self.dataset_size or self.buffer_size
        action_dtype = th.int64 if isinstance(action_space, spaces.Discrete) else th.float32
        self.data = TransitionTensors(
            self.observation_space, self.action_dim, capacity, self.device, self.dataset_size, action_dtype
        )
        self.episodes = EpisodeIndex(capacity, n_envs, self.device)
        if transitions is not None:
            self._store_dataset(transitions, owned=isinstance(dataset, str | os.PathLike))
        self.episodes.reset_online(self.ring.rows_per_env)

    def _store_dataset(self, transitions: Transitions, owned: bool) -> None:
        """The dataset's rows and episodes (subclasses add their own per-row index)."""
        rewards = self.reward_transform(np.asarray(transitions.rewards, dtype=np.float32))
        self.data.store_dataset(transitions, rewards, self.scale_action, owned)
        self.episodes.index_dataset(transitions.episode_ends)

    def _make_online_rows(self) -> None:
        """The ring's rows after the dataset, allocated once (the dataset's tensors are copied into larger ones)."""
        if self.data.capacity < self.buffer_size:
            self.data.grow(self.buffer_size)
            self.episodes.grow(self.buffer_size)

    def scale_action(self, action: np.ndarray) -> np.ndarray:
        """Env units -> [-1, 1], as SB3's ``BasePolicy.scale_action`` (a Discrete action index is kept as it is)."""
        if isinstance(self.action_space, spaces.Discrete):
            return action
        assert isinstance(self.action_space, spaces.Box)
        low, high = self.action_space.low, self.action_space.high
        return 2.0 * ((action - low) / (high - low)) - 1.0

    def size(self) -> int:
        """Number of transitions that can be sampled: the dataset plus the online ones."""
        return self.dataset_size + self.ring.size

    @property
    def online_size(self) -> int:
        return self.ring.size

    def reset(self) -> None:
        """Forget the online transitions and their episodes (online ids restart after the dataset's)."""
        self.ring.reset()
        self.episodes.reset_online(self.ring.rows_per_env)

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
        Append ``n_envs`` online transitions after the dataset (SB3's ``ReplayBuffer.add`` arguments; ``action`` is
        the buffer action, already in [-1, 1]). A done whose info says ``TimeLimit.truncated`` is stored as a timeout,
        not a termination; ``reward`` is stored transformed. An env with no running episode starts one; a done
        (termination or timeout) ends it, and its returns-to-go are then written (until then they are invalid, 0).
        """
        start = self.ring.next_start()
        self._make_online_rows()
        rows = th.arange(start, start + self.n_envs, device=self.device)
        rewards = self.reward_transform(np.asarray(reward, dtype=np.float32).reshape(-1))
        timeouts = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=np.float32)
        dones = np.asarray(done, dtype=np.float32).reshape(-1)
        actions = np.asarray(action).reshape(self.n_envs, self.action_dim)
        self.data.write(rows, obs, next_obs, actions, rewards, dones * (1.0 - timeouts), timeouts)
        self.episodes.track(start, rewards, (dones > 0) | (timeouts > 0))
        self.ring.advance()
        self.pos = self.size() % self.buffer_size
        self.full = self.size() == self.buffer_size

    def truncate_last_trajectory(self) -> None:
        """
        End the online episodes still running as time-limit truncations (their last transition gets a timeout, so
        it still bootstraps) and fill their returns-to-go (SB3's ``HerReplayBuffer.truncate_last_trajectory``).
        """
        self.episodes.truncate_running(self.timeouts)

    def returns_to_go(self, gamma: float, failure_reward: float | None = None) -> th.Tensor:
        """
        Discounted returns-to-go of every row, ``(rows, 1)`` float32 on the device, from the stored (transformed)
        rewards within each episode (:func:`~sb3_offline.common.episodes.discounted_returns_to_go`, as Cal-QL's
        ``calc_return_to_go``). Rows of online episodes still running hold 0 and are False in ``rtg_valid``. Cached
        per ``gamma`` (:meth:`~sb3_offline.buffers.episode_index.EpisodeIndex.returns_to_go`): call it before
        capturing a CUDA graph; ``add()`` keeps the returned tensor up to date in place.

        :param gamma: discount factor, in [0, 1]
        :param failure_reward: Cal-QL's sparse-reward rule: an episode whose every reward equals it gets
            ``failure_reward / (1 - gamma)`` at every step
            (:func:`~sb3_offline.buffers.episode_index.reference_returns`)
        """
        gamma = float(gamma)
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma: expected a discount factor in [0, 1], found {gamma}")
        ends = (self.dones[:, 0] > 0) | (self.timeouts[:, 0] > 0)
        if failure_reward is not None and not gamma < 1.0:
            raise ValueError(f"gamma: expected < 1 with a failure_reward (its value is r / (1 - gamma)), found {gamma}")
        return self.episodes.returns_to_go(gamma, self.rewards, ends, self.ring.stream_rows, failure_reward)

    def sample(  # type: ignore[override]
        self, batch_size: int, env: VecNormalize | None = None
    ) -> ReplayBufferSamples | DictReplayBufferSamples:
        """A uniform batch (or mixed by ``offline_fraction``), gathered on the device."""
        if env is not None:
            raise ValueError(
                f"env: expected None; {type(self).__name__} does not normalise with VecNormalize "
                "(normalise the dataset itself, or train without VecNormalize)"
            )
        return self.gather(self.sample_indices(batch_size))

    def sample_indices(self, batch_size: int, finished_episodes_only: bool = False) -> th.Tensor:
        """
        ``batch_size`` row indices drawn on the device (:func:`~sb3_offline.buffers.sampling.sample_rows`: uniform,
        or mixed by ``offline_fraction``): gather them with :meth:`gather`, and anything else per row
        (``returns_to_go(gamma)[idx]``, ``rtg_valid[idx]``, ``episode_ids[idx]``) with the same indices.
        ``finished_episodes_only`` leaves out the rows of online episodes still running (their returns-to-go do not
        exist yet; Cal-QL's authors add an online episode to their buffer only once it has ended).
        """
        if self.size() == 0:
            raise ValueError(f"{type(self).__name__}.sample: the buffer holds no transitions")
        running = [len(steps) for steps in self.episodes.open_steps] if finished_episodes_only else None
        return sample_rows(self.ring, self.dataset_size, running, batch_size, self.offline_fraction, self.device)

    def graph_key(self) -> tuple[Any, ...]:
        """
        The host-side state a batch from :meth:`sample_indices` depends on (row counts, the ring's position, the
        running episodes' lengths): an update captured in a CUDA graph with one key is valid for exactly that key.
        """
        return (self.size(), self.ring.pos, tuple(len(steps) for steps in self.episodes.open_steps))

    def gather(self, idx: th.Tensor) -> ReplayBufferSamples | DictReplayBufferSamples:
        """The transitions at rows ``idx`` (a tensor on the buffer's device)."""
        return self.data.gather(idx)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> ReplayBufferSamples | DictReplayBufferSamples:
        return self.gather(th.as_tensor(batch_inds, device=self.device))

    def to(self, device: th.device | str) -> OfflineReplayBuffer:
        """Move every tensor to ``device`` (e.g. after loading a pickled buffer on another machine)."""
        self.device = th.device(device)
        self.data.to(self.device)
        self.episodes.to(self.device)
        return self
