"""FQE: Fitted Q Evaluation of a fixed policy from a dataset (Le, Voloshin & Yue, ICML 2019)."""

from __future__ import annotations

import os
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import is_vectorized_observation

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.critics import critic_loss, soft_clipped_values
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.observations import obs_index
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.ope.estimate import PolicyValueEstimate
from sb3_offline.ope.evaluation_policy import (
    DEFAULT_ACTION_BATCH_SIZE,
    EvaluationPolicy,
    TensorObs,
    as_evaluation_policy,
    describe_policy,
)
from sb3_offline.ope.fqe_estimate import Episodes, initial_state_estimate
from sb3_offline.ope.fqe_inputs import dataset_policy_actions, resolve_env
from sb3_offline.ope.loading import load_model
from sb3_offline.ope.policies import FQEPolicy, MlpPolicy, MultiInputPolicy, fqe_critic_values

SelfFQE = TypeVar("SelfFQE", bound="FQE")


class FQE(OfflineAlgorithm):
    """
    Fitted Q Evaluation: Le, Voloshin & Yue, "Batch Policy Learning under Constraints", ICML 2019
    (https://arxiv.org/abs/1903.08738), Algorithm 3; in its deep form as d3rlpy 2.8.1's ``d3rlpy.ope.FQE``
    (``d3rlpy/ope/fqe.py``, ``d3rlpy/ope/torch/fqe_impl.py``), whose defaults it takes.

    FQE estimates the value of a *fixed* policy ``pi`` from a dataset it did not collect: a Q-function is fitted
    by regression on ``y = r + gamma * (1 - termination) * Q'(s', pi(s'))`` over the dataset's transitions, with a
    target network ``Q'`` copied from ``Q`` every ``target_update_interval`` gradient steps (the paper's
    iterations; d3rlpy's hard copy, after the 1st, ``(interval + 1)``-th, ... update as d3rlpy counts). A
    time-limit cut (a truncation) is not a termination: its target bootstraps from ``s'``, as in every algorithm
    here. With several Q-functions (``n_critics``) the loss is the sum of their MSEs and the target takes their
    minimum (d3rlpy's ensemble rule); values (:meth:`estimate`, :meth:`predict_value`) are their mean.

    The policy is fixed, so its actions at every dataset state and next state are computed once, before fitting,
    and kept on the device: each gradient update only samples rows and gathers their precomputed actions
    (``sample_indices`` + ``gather``), device work only, replayed as a CUDA graph on CUDA, whatever the policy is
    (one of ours, any SB3 model, a numpy function). A deterministic policy is asked once per state. A stochastic
    one (``deterministic=False``) is evaluated as it acts, with an action drawn anew at every update: a pool of
    ``policy_draws`` of its actions is kept per state, and each update picks ``n_action_samples`` of them per row
    at random (``th.randint`` on the device), the target averaging ``Q'`` over them (``E_{a' ~ pi} Q'(s', a')``);
    the estimate averages ``Q`` over the whole pool at the initial states. One draw kept per state and used at
    every update (``policy_draws=1``) fits the value of that draw (a deterministic policy): ``pi``'s on average
    over draws, with an error that depends on the draw.
    Why a pool and not the policy's own sampling inside the update: a function or a ``predict`` cannot run on
    the device, and an SB3 model's stochastic ``_predict`` is not graph-safe (``torch.distributions`` validates
    its arguments with a host sync); the pool is the same for every kind of policy.

    :meth:`estimate` returns the policy's value, ``mean over the dataset's initial states of Q(s0, pi(s0))``, with a
    bootstrap interval over episodes and, where the horizon allows, the same in undiscounted-return units.
    ``learn(n)`` runs ``n`` gradient steps with SB3's callbacks, logger (``train/critic_loss``,
    ``train/q_value``) and progress bar; ``save``/``load`` write and read an SB3 checkpoint (a reference to the
    evaluated policy's checkpoint is kept when it was given as a path; otherwise pass it again:
    ``FQE.load(path, evaluation_policy=model)``).

    On a ``Discrete`` action space (d3rlpy's ``DiscreteFQE``) each Q-function gives ``Q(s, .)`` over the actions,
    read at the action's index (:class:`~sb3_offline.ope.policies.DiscreteCritic`); ``pi(s')`` is the index.

    Defaults (d3rlpy's ``FQEConfig``): Adam with learning rate 1e-4, batch 100, ``target_update_interval`` 100,
    one Q-function of 256-256 ReLU units, gamma 0.99, no observation normalisation.

    :param evaluation_policy: the policy to evaluate: one of our models, any SB3 model or ``BasePolicy``
        (``predict(deterministic=True)``'s actions unless ``deterministic=False``), an object with ``predict``,
        a function ``obs -> action`` in the env's units, or the path of an SB3 checkpoint (loaded with
        :func:`~sb3_offline.ope.load_model`)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param gamma: discount factor, in [0, 1)
    :param learning_rate: learning rate of the Q-functions (constant or schedule)
    :param batch_size: minibatch size
    :param target_update_interval: gradient steps between two updates of the target network
    :param tau: the target update ``Q' <- tau * Q + (1 - tau) * Q'`` (1: d3rlpy's hard copy)
    :param n_action_samples: actions of a stochastic policy (``deterministic=False``) the target averages per row
        and update, picked from the pool
    :param policy_draws: actions of a stochastic policy kept per dataset state and next state (at least
        ``n_action_samples``; memory: ``2 * rows * policy_draws * action_dim`` floats on the device, computed
        with ``policy_draws`` passes of the policy over the dataset)
    :param deterministic: evaluate the policy's deterministic actions
    :param vectorized: a function policy takes (and returns) whole batches
    :param normalize_observations: normalise the Q-functions' inputs with the dataset's statistics
        (``(s - mean) / (std + 1e-3)``, fitted when the dataset is read)
    :param action_batch_size: rows per call of the policy when its actions are precomputed
    :param policy: the Q-functions' policy class (``"MlpPolicy"``, ``"MultiInputPolicy"``); default: from the
        observation space
    :param env: the environment (for its spaces; never stepped); default: recovered from the dataset, else the
        evaluated model's env
    :param replay_buffer_class: defaults to ``OfflineReplayBuffer``
    :param replay_buffer_kwargs: keyword arguments of the replay buffer (``reward_transform``: the estimate is
        then in transformed units; ``undiscounted`` undoes the transform)
    :param policy_kwargs: keyword arguments of :class:`~sb3_offline.ope.policies.FQEPolicy` (``net_arch``,
        ``n_critics``, ...)
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param verbose: 0 no output, 1 info, 2 debug
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``
    :param seed: seed for the pseudo random generators
    :param cuda_graphs: on CUDA, replay each update as one captured CUDA graph (``False``: eager)
    :param _init_setup_model: whether to build the networks (and read the dataset) on creation
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("critic", "critic_target")
    target_networks = {"critic_target": "critic"}
    policy: FQEPolicy
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        evaluation_policy: Any = None,
        dataset: DatasetSource | None = None,
        gamma: float = 0.99,
        learning_rate: float | Schedule = 1e-4,
        batch_size: int = 100,
        target_update_interval: int = 100,
        tau: float = 1.0,
        n_action_samples: int = 1,
        policy_draws: int = 8,
        deterministic: bool = True,
        vectorized: bool = False,
        normalize_observations: bool = False,
        action_batch_size: int = DEFAULT_ACTION_BATCH_SIZE,
        policy: str | type[FQEPolicy] | None = None,
        env: GymEnv | str | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        device: th.device | str = "auto",
        seed: int | None = None,
        cuda_graphs: bool = True,
        _init_setup_model: bool = True,
    ) -> None:
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma: expected a discount in [0, 1) (timeouts bootstrap), found {gamma}")
        if int(target_update_interval) != target_update_interval or target_update_interval < 1:
            raise ValueError(f"target_update_interval: expected an integer >= 1, found {target_update_interval}")
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau: expected a target update weight in (0, 1], found {tau}")
        for name, value in (("n_action_samples", n_action_samples), ("policy_draws", policy_draws)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, found {value}")
        self.target_update_interval = int(target_update_interval)
        self.n_action_samples = int(n_action_samples)
        self.policy_draws = int(policy_draws)
        self.deterministic = bool(deterministic)
        self.vectorized = bool(vectorized)
        self.normalize_observations = normalize_observations
        self.action_batch_size = int(action_batch_size)
        #: the evaluated policy's checkpoint when it was given as a path (saved: ``load`` reads it again)
        self.evaluation_policy_path: str | None = None
        #: what the evaluated policy was (saved, for reports)
        self.evaluation_policy_name: str | None = None
        if isinstance(evaluation_policy, str | os.PathLike):
            self.evaluation_policy_path = os.fspath(evaluation_policy)
            evaluation_policy = load_model(evaluation_policy, device=device)
        self.evaluation_policy = evaluation_policy
        if evaluation_policy is not None:
            self.evaluation_policy_name = describe_policy(evaluation_policy)
        self._evaluation: EvaluationPolicy | None = None
        self._policy_actions: th.Tensor | None = None
        self._next_policy_actions: th.Tensor | None = None
        if _init_setup_model:
            env = resolve_env(env, dataset, replay_buffer_kwargs, evaluation_policy)
            if policy is None:
                policy = "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy"
        policy = policy if policy is not None else "MlpPolicy"
        # FQE never steps an env: no rows for online transitions
        super().__init__(
            policy,
            env,
            learning_rate,
            dataset=dataset,
            buffer_size=0,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            cuda_graphs=cuda_graphs,
            supported_action_spaces=(spaces.Box, spaces.Discrete),
            _init_setup_model=_init_setup_model,
        )

    # ------------------------------------------------------------------------------------ set-up
    def _setup_model(self) -> None:
        super()._setup_model()
        self._evaluation = None
        self._policy_actions = None
        self._next_policy_actions = None

    def _setup_replay_buffer(self) -> None:
        """Read the dataset, then precompute the evaluated policy's actions at its states (when the policy is known)."""
        super()._setup_replay_buffer()
        self._policy_actions = None
        self._next_policy_actions = None
        if self.evaluation_policy is not None or self.evaluation_policy_path is not None:
            self._compute_policy_actions()

    def _excluded_save_params(self) -> list[str]:
        return [
            *super()._excluded_save_params(),
            "evaluation_policy",
            "_evaluation",
            "_policy_actions",
            "_next_policy_actions",
        ]

    # ------------------------------------------------------------------------------------ the evaluated policy
    def evaluator(self) -> EvaluationPolicy:
        """
        The evaluated policy as an :class:`~sb3_offline.ope.EvaluationPolicy` (loaded from
        ``evaluation_policy_path`` when only that is known).
        """
        if self.evaluation_policy is None:
            if self.evaluation_policy_path is None:
                raise ValueError(
                    "evaluation_policy: expected the policy FQE evaluates (FQE.load(path, evaluation_policy=...)), "
                    "found none"
                )
            self.evaluation_policy = load_model(self.evaluation_policy_path, device=self.device)
        if self._evaluation is None or self._evaluation.policy is not self.evaluation_policy:
            self._evaluation = as_evaluation_policy(
                self.evaluation_policy,
                self.observation_space,
                self.action_space,
                deterministic=self.deterministic,
                vectorized=self.vectorized,
                batch_size=self.action_batch_size,
            )
            self.evaluation_policy_name = self._evaluation.description
        return self._evaluation

    @property
    def pool_size(self) -> int:
        """Actions kept per state: ``n_action_samples`` (a deterministic policy's, repeated), else the pool's."""
        return self.n_action_samples if self.deterministic else max(self.policy_draws, self.n_action_samples)

    def _compute_policy_actions(self) -> None:
        """The policy's actions at every dataset state and next state, ``(rows, pool_size, action_dim)``."""
        buffer = self.replay_buffer
        assert isinstance(buffer, OfflineReplayBuffer)
        self._policy_actions, self._next_policy_actions = dataset_policy_actions(
            self.evaluator(), buffer, self.pool_size
        )
        self._runner.reset()  # graphs captured before read the old tensors

    def _ensure_ready(self) -> OfflineReplayBuffer:
        """The dataset's buffer, read if needed, with the policy's actions at all its rows computed."""
        if self.replay_buffer is None:
            self._setup_replay_buffer()
        buffer = self.replay_buffer
        if not isinstance(buffer, OfflineReplayBuffer):
            raise ValueError(
                "replay_buffer_class: expected an OfflineReplayBuffer holding the dataset, found "
                f"{type(buffer).__name__}"
            )
        if (
            self._policy_actions is None
            or self._next_policy_actions is None
            or len(self._policy_actions) != buffer.size()
        ):
            self._compute_policy_actions()
        return buffer

    # ------------------------------------------------------------------------------------ training
    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> Any:
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        self._ensure_ready()
        return result

    def learn_online(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("learn_online: FQE evaluates a fixed policy from a dataset; it never steps an env")

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"critic": None}

    def _prepare_updates(self) -> None:
        self._ensure_ready()

    def _next_update(self) -> tuple[str, Update]:
        """The regression step; the 1st, ``(interval + 1)``-th, ... also update the target (as d3rlpy counts)."""
        if (self._n_updates - 1) % self.target_update_interval == 0:
            return "fqe/target", self._update_and_copy
        return "fqe", self._update

    def _q_values(self, critic: Any, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        """``(rows * k, n_critics)`` for ``actions`` ``(rows, k, action_dim)`` (state-major), features computed once."""
        rows, k = actions.shape[0], actions.shape[1]
        features = self.policy.features(observations)
        if k > 1:
            features = features.repeat_interleave(k, dim=0)
        return fqe_critic_values(critic, features, actions.reshape(rows * k, -1))

    def _next_actions(self, idx: th.Tensor) -> th.Tensor:
        """
        The actions at the sampled rows' next states, ``(batch, n_action_samples, action_dim)``: all that is kept
        when the pool holds ``n_action_samples`` (a deterministic policy), else ``n_action_samples`` picked at random.
        """
        pool = self._next_policy_actions
        assert pool is not None
        if pool.shape[1] == self.n_action_samples:
            return pool[idx]
        picks = th.randint(pool.shape[1], (idx.shape[0], self.n_action_samples), device=pool.device)
        return pool[idx.unsqueeze(1), picks]

    def _update(self, batch_size: int) -> None:
        """One regression step on ``r + gamma * (1 - termination) * Q'(s', pi(s'))`` (device work only)."""
        buffer = self.replay_buffer
        assert isinstance(buffer, OfflineReplayBuffer)
        idx = buffer.sample_indices(batch_size)
        data = buffer.gather(idx)
        next_actions = self._next_actions(idx)
        with th.no_grad():
            next_q = self._q_values(self.critic_target, data.next_observations, next_actions)
            next_values = soft_clipped_values(next_q, 1.0).view(batch_size, -1).mean(dim=1, keepdim=True)
            target_q = data.rewards + (1.0 - data.dones) * self.gamma * next_values
        current_q = fqe_critic_values(self.critic, self.policy.features(data.observations), data.actions)
        loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, loss)
        self._losses.add("critic_loss", loss)
        self._losses.add("q_value", current_q.mean())

    def _update_and_copy(self, batch_size: int) -> None:
        """:meth:`_update`, then the target network follows (a hard copy with ``tau=1``)."""
        self._update(batch_size)
        self._update_targets()

    # ------------------------------------------------------------------------------------ values
    @th.no_grad()
    def _values(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        """``Q(s, a)`` averaged over the Q-functions and over the ``k`` actions per state: ``(rows,)``."""
        was_training = self.policy.training
        self.policy.set_training_mode(False)
        try:
            q = self._q_values(self.critic, observations, actions).mean(dim=1)
        finally:
            self.policy.set_training_mode(was_training)
        return q.view(actions.shape[0], actions.shape[1]).mean(dim=1)

    def predict_value(self, observations: Any, actions: np.ndarray | None = None) -> np.ndarray:
        """
        ``Q(s, a)`` of the fitted Q-functions (their mean) for a batch of observations, at the given actions (the
        env's units) or, by default, at the evaluated policy's (``pool_size`` draws, averaged).

        :param observations: a batch (``(rows, *obs_shape)``, or a dict of such arrays)
        :param actions: ``(rows, *action_shape)`` in the env's units, or ``None``
        :return: ``(rows,)``
        """
        obs_tensor, _ = self.policy.obs_to_tensor(observations)
        evaluator = self.evaluator()
        if actions is None:
            action_tensor = evaluator.actions(obs_tensor, self.pool_size)
        else:
            action_tensor = th.as_tensor(evaluator.scale(actions), device=self.device).unsqueeze(1)
        return self._values(obs_tensor, action_tensor).cpu().numpy()

    def predict(  # type: ignore[override]
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """The evaluated policy's action(s) (FQE has no policy of its own), as SB3's ``predict``."""
        evaluator = self.evaluator()
        if isinstance(self.evaluation_policy, BaseAlgorithm | BasePolicy):
            return self.evaluation_policy.predict(observation, state, episode_start, deterministic)
        if is_vectorized_observation(observation, self.observation_space):
            return evaluator.unscale(evaluator._numpy_batch(observation)), state
        return evaluator.act(observation), state

    # ------------------------------------------------------------------------------------ estimate
    def estimate(
        self,
        dataset: DatasetSource | None = None,
        confidence: float = 0.95,
        n_bootstrap: int = 1000,
        seed: int | None = 0,
        horizon: int | None = None,
    ) -> PolicyValueEstimate:
        """
        The evaluated policy's value: the mean over initial states ``s0`` of ``Q(s0, pi(s0))``, with a percentile
        bootstrap interval over the episodes (their initial states), and the same in undiscounted-return units.

        The initial states are the first row of every episode of the dataset FQE was fitted on (or of
        ``dataset``, e.g. held-out episodes); the estimate assumes they were drawn from the env's start
        distribution (a replay buffer that wrapped mid-episode breaks that). ``undiscounted`` is
        :func:`~sb3_offline.ope.estimate.undiscounted_from_discounted` with ``horizon``: given, or (for a dataset
        without terminations, whose episodes all last until the time limit) the env's time limit, or the common
        length of the dataset's time-limit-cut episodes; ``None`` when the data has terminations and no horizon
        is given (the episode's length then depends on the policy).

        :param dataset: the initial states' source (default: the dataset FQE was fitted on)
        :param confidence: coverage of the interval
        :param n_bootstrap: bootstrap resamples
        :param seed: seed of the resampling
        :param horizon: steps per episode for the undiscounted conversion (default: as above)
        """
        buffer = self._ensure_ready()
        if dataset is None:
            episodes = Episodes.of_buffer(buffer)
            observations = obs_index(buffer.observations, episodes.starts)
            assert self._policy_actions is not None
            actions = self._policy_actions[episodes.starts]
        else:
            episodes, first = Episodes.read(dataset, self.observation_space, self.action_space)
            observations, _ = self.policy.obs_to_tensor(first)
            actions = self.evaluator().actions(observations, self.pool_size)
        values = self._values(observations, actions).cpu().numpy().astype(np.float64)
        if horizon is None:
            horizon = episodes.horizon(self.get_env())
        return initial_state_estimate(
            values, self.gamma, horizon, buffer.reward_transform, confidence, n_bootstrap, seed
        )


__all__ = ["FQE"]
