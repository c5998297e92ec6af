"""
Hindsight Experience Replay on a static dataset: SB3's ``HerReplayBuffer`` semantics, sampled on the device.

Andrychowicz et al., "Hindsight Experience Replay", NeurIPS 2017 (https://arxiv.org/abs/1707.01495).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.her.goal_selection_strategy import KEY_TO_GOAL_STRATEGY, GoalSelectionStrategy
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.datasets.validation import DEFAULT_ACTION_BOUND_TOLERANCE
from sb3_offline.her.goals import GOAL_KEYS, _check_goal_continuity, _episode_index


class OfflineHerReplayBuffer(OfflineReplayBuffer, HerReplayBuffer):  # type: ignore[misc]
    """
    Hindsight Experience Replay (Andrychowicz et al., "Hindsight Experience Replay", NeurIPS 2017,
    https://arxiv.org/abs/1707.01495) on a static goal-conditioned dataset: an
    :class:`~sb3_offline.buffers.OfflineReplayBuffer` (the dataset held once as tensors on the device)
    that samples like SB3's ``HerReplayBuffer``, of which it is a subclass.

    Observations are dicts with ``observation``, ``achieved_goal`` and ``desired_goal`` (a
    gymnasium-robotics ``GoalEnv``). The dataset's episodes are found once, from its terminations and
    truncations (a Fetch episode is 50 steps closed by a truncation), and kept as per-row tensors
    (episode start, length, step). Each ``sample(batch_size)``, exactly as SB3's ``HerReplayBuffer``:

    - draws ``batch_size`` transitions uniformly from complete episodes;
    - keeps ``batch_size - int(her_ratio * batch_size)`` of them as recorded ("real"), with
      ``her_ratio = 1 - 1 / (n_sampled_goal + 1)``, and relabels the other ``int(her_ratio * batch_size)``
      ("virtual"): ``desired_goal`` of ``s`` and ``s'`` becomes the ``achieved_goal`` of the *next*
      observation at a step ``t'`` of the same episode, with ``t'`` drawn by
      ``goal_selection_strategy``: ``"future"``: uniform in ``[t, T - 1]`` (SB3's inclusive ``future``:
      the transition's own next achieved goal can be drawn), ``"final"``: ``T - 1``, ``"episode"``:
      uniform in ``[0, T - 1]``;
    - recomputes the virtual rewards as ``compute_reward(next achieved_goal, new desired_goal, {})``.
      ``dones`` stay the recorded terminations (timeouts bootstrap).

    The batch is returned with the real transitions first, then the virtual ones (SB3's order).
    Goals and indices are drawn with torch on the buffer's device and gathered there: the dataset is
    never copied. Rewards: by default the env's own ``compute_reward`` (numpy), called once per batch
    on the virtual rows only, so their two goal arrays go to the host and the rewards come back
    (a host sync per batch on a GPU). ``compute_reward=FetchReward(...)`` (or any function of two goal
    tensors) computes them on the device instead, with no host round trip.

    Online transitions (``learn_online``) are appended after the dataset as in ``OfflineReplayBuffer``;
    their episodes are tracked as SB3's ``HerReplayBuffer`` tracks them (sampled once complete,
    dropped when the ring overwrites them), so fine-tuning keeps relabelling.

    :param buffer_size: SB3's buffer size; ignored when a dataset is given (its length sets the size)
    :param observation_space: the env's ``Dict`` observation space, with ``achieved_goal`` and ``desired_goal``
    :param action_space: the env's action space (a bounded ``Box``)
    :param env: the env (a ``VecEnv``, as SB3 passes it, or a gymnasium env) whose ``compute_reward``
        gives the relabelled rewards
    :param device: where the tensors live (``"auto"``: CUDA when available)
    :param n_envs: number of envs adding online transitions at once
    :param optimize_memory_usage: not supported (the dataset is stored with its next observations)
    :param handle_timeout_termination: always on: timeouts never count as terminations
    :param n_sampled_goal: number of virtual transitions per real one (SB3's meaning: the fraction of
        relabelled transitions in a batch is ``1 - 1 / (n_sampled_goal + 1)``)
    :param goal_selection_strategy: ``"future"``, ``"final"`` or ``"episode"`` (or a ``GoalSelectionStrategy``)
    :param copy_info_dict: must be ``False``: a dataset stores no info dicts (``{}`` is passed, as SB3 does)
    :param dataset: the data, as for ``OfflineReplayBuffer`` (Minari id or ``MinariDataset``, a path, ``Transitions``)
    :param online_capacity: rows reserved after the dataset for online transitions
    :param action_bound_tolerance: accepted overshoot of the action bounds, as a fraction of the range
    :param download: allow Minari to fetch a dataset id that is not on local disk
    :param compute_reward: ``None`` to call ``env.compute_reward``; or a function
        ``(achieved_goal, desired_goal) -> rewards`` on ``(n, goal_dim)`` tensors, run on the device
        (e.g. :class:`FetchReward`); it is pickled with the model's ``replay_buffer_kwargs``
    """

    #: relabelled rewards may come from ``env.compute_reward`` on the host: never inside a CUDA graph
    graph_safe: ClassVar[bool] = False

    env: VecEnv | gym.Env | None  # type: ignore[assignment]
    ep_start: th.Tensor  # type: ignore[assignment]
    ep_length: th.Tensor  # type: ignore[assignment]
    ep_step: th.Tensor

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        env: VecEnv | gym.Env | None = None,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_sampled_goal: int = 4,
        goal_selection_strategy: GoalSelectionStrategy | str = "future",
        copy_info_dict: bool = False,
        dataset: DatasetSource | None = None,
        online_capacity: int = 0,
        action_bound_tolerance: float = DEFAULT_ACTION_BOUND_TOLERANCE,
        download: bool = False,
        compute_reward: Any = None,
    ) -> None:
        if not isinstance(observation_space, spaces.Dict) or not set(GOAL_KEYS) <= set(observation_space.spaces):
            found = (
                sorted(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else observation_space
            )
            raise ValueError(
                f"observation_space: expected a Dict with keys 'observation', 'achieved_goal', 'desired_goal' "
                f"(a goal-conditioned env), found {found}"
            )
        achieved, desired = (observation_space.spaces[key].shape for key in GOAL_KEYS)
        if achieved != desired:
            raise ValueError(
                f"observation_space: expected 'achieved_goal' and 'desired_goal' of the same shape, "
                f"found {achieved} and {desired}"
            )
        if isinstance(goal_selection_strategy, str):
            if goal_selection_strategy.lower() not in KEY_TO_GOAL_STRATEGY:
                raise ValueError(
                    f"goal_selection_strategy: expected one of {sorted(KEY_TO_GOAL_STRATEGY)}, "
                    f"found {goal_selection_strategy!r}"
                )
            goal_selection_strategy = KEY_TO_GOAL_STRATEGY[goal_selection_strategy.lower()]
        if not isinstance(goal_selection_strategy, GoalSelectionStrategy):
            raise ValueError(
                f"goal_selection_strategy: expected a GoalSelectionStrategy or one of {sorted(KEY_TO_GOAL_STRATEGY)}, "
                f"found {goal_selection_strategy!r}"
            )
        if int(n_sampled_goal) != n_sampled_goal or n_sampled_goal < 0:
            raise ValueError(f"n_sampled_goal: expected an integer >= 0, found {n_sampled_goal}")
        if copy_info_dict:
            raise ValueError("copy_info_dict: expected False (a dataset stores no info dicts), found True")
        if compute_reward is not None and not callable(compute_reward):
            raise ValueError(
                f"compute_reward: expected None or a function of two goal tensors, found {compute_reward!r}"
            )
        # HerReplayBuffer.__init__ is not called: it would allocate SB3's numpy storage. Its settings:
        self.goal_selection_strategy = goal_selection_strategy
        self.n_sampled_goal = int(n_sampled_goal)
        self.her_ratio = 1 - (1.0 / (self.n_sampled_goal + 1))
        self.copy_info_dict = False
        self.compute_reward = compute_reward
        self.env = None
        if env is not None:
            self.set_env(env)  # type: ignore[arg-type]
        self._current_ep_start = np.full(n_envs, -1, dtype=np.int64)  # online episodes in progress
        self._current_ep_steps = np.zeros(n_envs, dtype=np.int64)
        self._valid_rows: th.Tensor | None = None
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
            dataset=dataset,
            online_capacity=online_capacity,
            action_bound_tolerance=action_bound_tolerance,
            download=download,
        )
        if self.dataset_size == 0:
            self._set_episode_rows(*(th.zeros(self.buffer_size, dtype=th.int64, device=self.device) for _ in range(3)))

    # ------------------------------------------------------------------------------------- storage
    def set_env(self, env: VecEnv | gym.Env) -> None:  # type: ignore[override]
        """Set the env whose ``compute_reward`` relabels rewards (after unpickling, as SB3's ``set_env``)."""
        if self.env is not None:
            raise ValueError("env: already set; set_env is for a buffer without one (e.g. after unpickling)")
        has_method = (
            env.has_attr("compute_reward") if isinstance(env, VecEnv) else env.has_wrapper_attr("compute_reward")
        )
        if not has_method and self.compute_reward is None:
            raise ValueError(
                f"env: expected a goal-conditioned env with a compute_reward(achieved_goal, desired_goal, info) "
                f"method, found {env!r} without one; or pass compute_reward=..."
            )
        self.env = env

    def _store_dataset(self, transitions: Transitions, owned: bool) -> None:
        _check_goal_continuity(transitions)
        super()._store_dataset(transitions, owned)
        self._set_episode_rows(*(th.as_tensor(values, device=self.device) for values in _episode_index(transitions)))

    def _set_episode_rows(self, start: th.Tensor, length: th.Tensor, step: th.Tensor) -> None:
        """
        Per row: the row of its episode's first transition, the episode's length (0: not sampleable: an online
        episode still running, or overwritten) and the row's step in the episode.
        """
        self.ep_start, self.ep_length, self.ep_step = start, length, step

    def _make_online_rows(self) -> None:
        extra = self.buffer_size - len(self.ep_start)
        if extra > 0:
            zeros = th.zeros(extra, dtype=th.int64, device=self.device)
            self._set_episode_rows(*(th.cat([rows, zeros]) for rows in (self.ep_start, self.ep_length, self.ep_step)))
        super()._make_online_rows()

    @property
    def _ring_rows(self) -> int:
        """Rows of the online ring actually used (whole steps of ``n_envs`` rows)."""
        return self.ring.rows_per_env * self.n_envs

    def _episode_rows(self, start: th.Tensor, steps: th.Tensor) -> th.Tensor:
        """
        The rows of steps ``steps`` of the episodes starting at rows ``start``. Dataset episodes are
        contiguous; an online episode of env ``e`` takes every ``n_envs``-th row of the ring, from its
        start, wrapping around.
        """
        online = start >= self.dataset_size
        offset = start - self.dataset_size
        ring = max(self._ring_rows, 1)
        online_rows = self.dataset_size + (offset + steps * self.n_envs) % ring
        return th.where(online, online_rows, start + steps)

    # -------------------------------------------------------------------------------------- online
    def add(  # type: ignore[override]
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        Append ``n_envs`` online transitions after the dataset (``OfflineReplayBuffer.add``) and track
        their episodes as SB3's ``HerReplayBuffer.add`` does: an episode can be sampled once it is done;
        an old episode the ring starts to overwrite can no longer be.
        """
        first = self.ring.next_start()
        super().add(obs, next_obs, action, reward, done, infos)  # type: ignore[arg-type]
        rows = th.arange(first, first + self.n_envs, device=self.device)
        # an old complete episode being overwritten: drop all of it
        old_length = self.ep_length[rows]
        if bool((old_length > 0).any()):
            for row in th.nonzero(old_length > 0).flatten().tolist():
                row_id = first + row
                length = int(self.ep_length[row_id])
                steps = th.arange(length, device=self.device)
                start = self.ep_start[row_id].expand(length)
                self.ep_length[self._episode_rows(start, steps)] = 0
            self._valid_rows = None
        started = self._current_ep_start < 0
        self._current_ep_start[started] = (first + np.arange(self.n_envs))[started]
        self._current_ep_steps[started] = 0
        self.ep_start[rows] = th.as_tensor(self._current_ep_start, device=self.device)
        self.ep_step[rows] = th.as_tensor(self._current_ep_steps, device=self.device)
        self.ep_length[rows] = 0
        self._current_ep_steps += 1
        for env_idx in np.flatnonzero(np.asarray(done).reshape(-1)):
            self._close_online_episode(int(env_idx))

    def _close_online_episode(self, env_idx: int) -> None:
        """The episode of env ``env_idx`` ended: its rows can be sampled (unless the ring overwrote its start)."""
        length = int(self._current_ep_steps[env_idx])
        start = int(self._current_ep_start[env_idx])
        self._current_ep_start[env_idx] = -1
        self._current_ep_steps[env_idx] = 0
        if length == 0 or length > self._ring_rows // self.n_envs:
            return  # longer than the ring: its first steps are gone, as in SB3 it cannot be replayed whole
        steps = th.arange(length, device=self.device)
        rows = self._episode_rows(th.full((length,), start, device=self.device), steps)
        self.ep_length[rows] = length
        self._valid_rows = None

    def truncate_last_trajectory(self) -> None:
        """Close the online episodes still running as time-limit truncations (as SB3's ``HerReplayBuffer``)."""
        super().truncate_last_trajectory()  # the episode index and returns-to-go of OfflineReplayBuffer
        for env_idx in np.flatnonzero(self._current_ep_start >= 0):
            steps = int(self._current_ep_steps[env_idx])
            last = self._episode_rows(
                th.tensor([int(self._current_ep_start[env_idx])], device=self.device),
                th.tensor([steps - 1], device=self.device),
            )
            self.timeouts[last] = 1.0  # not a termination: the last transition bootstraps
            self._close_online_episode(int(env_idx))

    def reset(self) -> None:
        """Forget the online transitions and their episodes; the dataset stays."""
        super().reset()
        self.ep_length[self.dataset_size :] = 0
        self._current_ep_start[:] = -1
        self._current_ep_steps[:] = 0
        self._valid_rows = None

    # ------------------------------------------------------------------------------------ sampling
    def sample_indices(self, batch_size: int, finished_episodes_only: bool = False) -> th.Tensor:
        """
        The rows a batch is drawn from: those of complete episodes (see :meth:`_sample_rows`), whatever
        ``finished_episodes_only`` says; ``offline_fraction`` does not apply here.
        """
        return self._sample_rows(batch_size)

    def _sample_rows(self, batch_size: int) -> th.Tensor:
        """Rows drawn uniformly among the transitions of complete episodes (SB3's ``is_valid``)."""
        if self.online_size == 0:
            if self.dataset_size == 0:
                raise ValueError("OfflineHerReplayBuffer.sample: the buffer holds no transitions")
            return th.randint(0, self.dataset_size, (batch_size,), device=self.device)
        if self._valid_rows is None:
            self._valid_rows = th.nonzero(self.ep_length[: self.size()] > 0).flatten()
        if len(self._valid_rows) == 0:
            raise RuntimeError(
                "Unable to sample before the end of the first episode. We recommend choosing a value "
                "for learning_starts that is greater than the maximum number of timesteps in the environment."
            )
        return self._valid_rows[th.randint(0, len(self._valid_rows), (batch_size,), device=self.device)]

    def sample_goal_rows(self, rows: th.Tensor) -> th.Tensor:
        """
        For each transition row, the row whose *next* ``achieved_goal`` becomes its new desired goal,
        drawn by ``goal_selection_strategy`` within the same episode (SB3's ``_sample_goals``, in torch).
        """
        start, length = self.ep_start[rows], self.ep_length[rows]
        if self.goal_selection_strategy == GoalSelectionStrategy.FINAL:
            steps = length - 1
        elif self.goal_selection_strategy == GoalSelectionStrategy.FUTURE:
            # SB3's future is inclusive: uniform over [t, T - 1]
            current = self.ep_step[rows]
            steps = current + (th.rand(rows.shape, device=self.device) * (length - current)).long()
            steps = th.minimum(steps, length - 1)
        elif self.goal_selection_strategy == GoalSelectionStrategy.EPISODE:
            steps = (th.rand(rows.shape, device=self.device) * length).long()
            steps = th.minimum(steps, length - 1)
        else:  # pragma: no cover - the constructor accepts only the three strategies
            raise ValueError(f"goal_selection_strategy: {self.goal_selection_strategy} is not supported")
        if self.online_size == 0:
            return start + steps  # dataset episodes are contiguous
        return self._episode_rows(start, steps)

    def relabel_rewards(self, achieved_goal: th.Tensor, desired_goal: th.Tensor) -> th.Tensor:
        """Rewards ``(n, 1)`` of reaching ``achieved_goal`` when ``desired_goal`` is wanted."""
        if self.compute_reward is not None:
            computed = self.compute_reward(achieved_goal, desired_goal)
            if not isinstance(computed, th.Tensor):
                computed = th.as_tensor(np.asarray(computed), device=self.device)
            return computed.to(device=self.device, dtype=th.float32).reshape(-1, 1)
        if self.env is None:
            raise ValueError(
                "env: expected an env to compute the relabelled rewards (set_env(env) after unpickling), found None"
            )
        achieved, desired = achieved_goal.cpu().numpy(), desired_goal.cpu().numpy()
        infos: list[dict[str, Any]] = [{} for _ in range(len(achieved))]
        if isinstance(self.env, VecEnv):
            # as SB3: the method of the first env, assuming all envs are identical
            rewards = self.env.env_method("compute_reward", achieved, desired, infos, indices=[0])[0]
        else:
            rewards = self.env.get_wrapper_attr("compute_reward")(achieved, desired, infos)
        return th.as_tensor(np.asarray(rewards, dtype=np.float32), device=self.device).reshape(-1, 1)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> DictReplayBufferSamples:  # type: ignore[override]
        """
        ``batch_size`` transitions: ``batch_size - int(her_ratio * batch_size)`` as recorded, then
        ``int(her_ratio * batch_size)`` relabelled with hindsight goals and recomputed rewards.
        """
        if env is not None:
            raise ValueError(
                "env: expected None; OfflineHerReplayBuffer does not normalise with VecNormalize "
                "(normalise the dataset itself, or train without VecNormalize)"
            )
        rows = self._sample_rows(batch_size)
        samples = self.gather(rows)
        assert isinstance(samples, DictReplayBufferSamples)
        n_virtual = int(self.her_ratio * batch_size)
        if n_virtual == 0:
            return samples
        virtual = slice(batch_size - n_virtual, batch_size)
        goal_rows = self.sample_goal_rows(rows[virtual])
        assert isinstance(self.next_observations, dict)
        new_goals = self.next_observations["achieved_goal"][goal_rows]
        # the gathered tensors are fresh copies: writing into them never touches the dataset
        samples.observations["desired_goal"][virtual] = new_goals
        samples.next_observations["desired_goal"][virtual] = new_goals
        # r_t = r(s_{t+1}, g'): the next achieved goal against the new goal (as SB3)
        samples.rewards[virtual] = self.relabel_rewards(samples.next_observations["achieved_goal"][virtual], new_goals)
        return samples

    def to(self, device: th.device | str) -> OfflineHerReplayBuffer:
        """Move every tensor (episode indices included) to ``device``."""
        super().to(device)
        self.ep_start, self.ep_length, self.ep_step = (
            t.to(self.device) for t in (self.ep_start, self.ep_length, self.ep_step)
        )
        self._valid_rows = None
        return self
