"""Cal-QL: Calibrated Offline RL Pre-Training for Efficient Online Fine-Tuning (Nakamoto et al. 2023)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.calql.policies import CalQLPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import arguments_of
from sb3_offline.common.schedules import StepSchedule
from sb3_offline.cql.cql import CQL, Samples
from sb3_offline.datasets.loaders import DatasetSource

#: Cal-QL's authors start ``log alpha'`` at 1 (``JaxCQL/conservative_sac.py``: ``Scalar(1.0)``), the CQL authors at 0
CALQL_INITIAL_ALPHA_PRIME = math.e


class CalQL(CQL):
    """
    Cal-QL: Nakamoto, Zhai, Singh, Sobol Mark, Ma, Finn, Kumar, Levine, "Cal-QL: Calibrated Offline RL
    Pre-Training for Efficient Online Fine-Tuning", NeurIPS 2023 (https://arxiv.org/abs/2303.05479). Following
    the authors' code, ``nakamotoo/Cal-QL`` commit ac6eafe (``JaxCQL/conservative_sac.py``,
    ``conservative_sac_main.py``, ``replay_buffer.py``, ``sampler.py``, ``scripts/run_antmaze.sh``).

    :class:`~sb3_offline.cql.CQL`, with the Q-values of the policy's actions in the CQL regulariser bounded
    below by a reference value, ``max(Q_j(s, a~), V_ref(s))`` for the ``n_actions`` actions drawn at ``s`` and
    the ``n_actions`` drawn at ``s'`` (both scored at ``s``; the uniform actions and the dataset's action are
    not bounded), before the importance-sampled log-sum-exp (``enable_calql``: ``jnp.maximum(cql_q1_current_actions,
    lower_bounds)``). ``V_ref(s)`` is the Monte-Carlo discounted return-to-go of the transition's episode
    (``calc_return_to_go``), the buffer's :meth:`~sb3_offline.buffers.OfflineReplayBuffer.returns_to_go`
    of the same rows (``G_t = r_t + gamma * G_{t+1}``, the sum stopped by a termination or a time-limit cut,
    from the rewards as the buffer holds them, i.e. after ``reward_transform``), fetched on the device with the
    batch. On sparse-reward tasks, the authors' rule for a trajectory that never succeeds: every step of an episode
    whose every reward is the failure reward ``r_neg`` gets ``r_neg / (1 - gamma)`` (``calc_return_to_go`` with
    ``is_sparse_reward``, their setting on AntMaze and Adroit; ``failure_reward``, by default on when the dataset's
    rewards take exactly two values, ``r_neg`` the smaller), online episodes too.

    Offline-to-online (``learn_online``), as the authors' ``conservative_sac_main.py``:

    - each batch takes ``int(batch_size * offline_fraction)`` rows from the dataset and the rest from the
      online rows (``offline_fraction``, the authors' ``mixing_ratio``, 0.5 in their scripts; a replay-buffer
      option, :class:`~sb3_offline.buffers.OfflineReplayBuffer`, ``sample_indices``), online rows drawn
      with replacement however few they are; while none can be drawn, the whole batch comes from the dataset;
    - rows of an online episode that has not ended are never drawn (their returns-to-go do not exist yet):
      the authors add an episode to their buffer once it has ended;
    - training after each episode, as many updates as it had steps (``train_freq=(1, "episode")``,
      ``gradient_steps=-1``: their ``n_online_traj_per_epoch=1``, ``online_utd_ratio=1``); the regulariser
      stays on, with the same weight (their ``online_use_cql=True``, ``cql_min_q_weight_online=-1``).

    Defaults: the authors' AntMaze script (``run_antmaze.sh``) over ``ConservativeSAC.get_default_config``:
    ``cql_min_q_weight`` 5, Lagrange tuning towards ``cql_target_action_gap`` 0.8 (the multiplier starting at
    ``e``), max backup, policy 2 x 256 and critics 4 x 256, policy lr 1e-4 and critic lr 3e-4, tau 5e-3,
    batch 256, gamma 0.99, 10 sampled actions, no behaviour-cloning warm-up, no backup entropy. Their AntMaze
    rewards ``10 r - 5`` are ``replay_buffer_kwargs=dict(reward_transform=dict(scale=10, shift=-5))``.
    Networks (:class:`~sb3_offline.calql.policies.CalQLPolicy`): the authors' orthogonal initialisation (gain
    ``sqrt(2)`` hidden, ``1e-2`` output, biases 0) and ``log sigma = m * head + c`` (``m`` from 1, ``c`` from -1,
    learned; clipped to [-20, 2]). Their step computes every loss from the networks of the start of the step (JAX's
    simultaneous gradients: the actor on the critics and the entropy coefficient before their steps,
    ``sequential_updates=False``) and backs up ``max_i min_j Q'_j(s', a'_i)``; the Lagrange form is theirs (CQL's
    here). The tanh correction of ``log pi`` is SB3's ``log(1 - a^2 + 1e-6)`` (distrax's ``Tanh``: the exact
    ``2 (log 2 - u - softplus(-2 u))``, a difference of about ``1e-6 / (1 - a^2)`` per dimension).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the critics and of the Lagrange multiplier (constant or schedule)
    :param actor_learning_rate: learning rate of the actor
    :param ent_coef_learning_rate: learning rate of the entropy coefficient (``None``: the actor's, as the authors'
        ``alpha_optimizer`` takes ``policy_lr``)
    :param alpha_cql: weight of the CQL regulariser (the authors' ``cql_min_q_weight``)
    :param n_actions: actions of each kind in the log-sum-exp estimate, and of the max backup
    :param cql_temperature: temperature of the log-sum-exp
    :param target_action_gap: ``None``: a fixed ``alpha_cql``; a value: Lagrange tuning towards this gap
    :param max_q_backup: the target takes the best of ``n_actions`` actions at ``s'``
    :param bc_steps: the first ``bc_steps`` updates train the actor by behaviour cloning
    :param ent_coef: ``"auto"``, ``"auto_<x>"`` or a fixed value
    :param target_entropy: ``"auto"`` (``-|A|``) or a value
    :param initial_alpha_prime: initial Lagrange multiplier ``alpha'`` (> 0; trained with ``target_action_gap``)
    :param normalize_observations: standardise observations with the dataset's statistics
    :param authors_networks: the authors' actor head and initialisation (else SB3's SAC networks as they are)
    :param failure_reward: the reward of a step that does not succeed on a sparse-reward task (after
        ``reward_transform``): an episode whose every reward equals it has ``failure_reward / (1 - gamma)`` as its
        reference at every step; ``"auto"``: the smaller of the dataset's rewards when they take exactly two values,
        else none; ``None``: the discounted returns-to-go everywhere
    :param offline_fraction: the dataset's share of each batch once online rows exist (``None``: uniform over
        all rows); set in ``replay_buffer_kwargs`` unless that has one
    :param batch_size: minibatch size
    :param tau: target update rate
    :param gamma: discount factor (also of the returns-to-go)
    :param train_freq: for ``learn_online``: after each episode, by default
    :param gradient_steps: for ``learn_online``: -1, as many as the episode's steps
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    update_kind: ClassVar[str] = "calql"
    #: the JAX code's step: every loss from the networks of the start of the step (simultaneous gradients)
    sequential_updates: ClassVar[bool] = False
    #: the exact tanh correction of the authors' distrax ``Tanh`` (``JaxCQL/model.py``'s ``TanhGaussianPolicy``)
    exact_tanh_correction: ClassVar[bool] = True
    policy: CalQLPolicy

    def __init__(
        self,
        policy: str | type[CalQLPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float | Schedule | StepSchedule = 1e-4,
        ent_coef_learning_rate: float | Schedule | StepSchedule | None = None,
        alpha_cql: float = 5.0,
        n_actions: int = 10,
        cql_temperature: float = 1.0,
        target_action_gap: float | None = 0.8,
        max_q_backup: bool = True,
        bc_steps: int = 0,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        initial_alpha_prime: float = CALQL_INITIAL_ALPHA_PRIME,
        normalize_observations: bool = False,
        authors_networks: bool = True,
        failure_reward: float | str | None = "auto",
        offline_fraction: float | None = 0.5,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = (1, "episode"),
        gradient_steps: int = -1,
        **kwargs: Any,
    ) -> None:
        replay_buffer_class = kwargs.get("replay_buffer_class")
        if replay_buffer_class is not None and (
            not issubclass(replay_buffer_class, OfflineReplayBuffer) or issubclass(replay_buffer_class, HerReplayBuffer)
        ):
            raise ValueError(
                f"replay_buffer_class: expected OfflineReplayBuffer (or a subclass keeping the recorded rewards: "
                f"Cal-QL's bound is their returns-to-go), found {replay_buffer_class.__name__}"
            )
        if not (failure_reward is None or failure_reward == "auto" or _finite_number(failure_reward)):
            raise ValueError(f"failure_reward: expected 'auto', None or a finite number, found {failure_reward!r}")
        self.offline_fraction = offline_fraction
        self.failure_reward = failure_reward
        super().__init__(**arguments_of(CQL, locals()), train_freq=train_freq, gradient_steps=gradient_steps, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_returns_to_go", "_failure_rule"]

    def _setup_model(self) -> None:
        super()._setup_model()
        self._failure_rule: tuple[float | None] | None = None  # failure_reward resolved on the dataset, once

    def _buffer_arguments(self) -> dict[str, Any]:
        return {"offline_fraction": self.offline_fraction}

    def _prepare_updates(self) -> None:
        """The buffer's returns-to-go at ``gamma`` (computed once, then kept up to date by the buffer in place)."""
        buffer = self.replay_buffer
        assert isinstance(buffer, OfflineReplayBuffer)
        if self._failure_rule is None:
            self._failure_rule = (self.resolved_failure_reward(),)
        self._returns_to_go = buffer.returns_to_go(self.gamma, self._failure_rule[0])

    def resolved_failure_reward(self) -> float | None:
        """``failure_reward`` on this model's dataset (``"auto"``: the smaller of two reward values, else ``None``)."""
        if self.failure_reward != "auto":
            return None if self.failure_reward is None else float(self.failure_reward)
        buffer = self.replay_buffer
        assert isinstance(buffer, OfflineReplayBuffer)
        values = th.unique(buffer.rewards[: buffer.dataset_size])
        return float(values[0]) if len(values) == 2 else None

    def _sample(self, batch_size: int) -> tuple[Samples, th.Tensor | None]:
        """A batch with no row of a running online episode, and the returns-to-go of its rows, ``(batch, 1)``."""
        buffer = self.replay_buffer
        assert isinstance(buffer, OfflineReplayBuffer)
        idx = buffer.sample_indices(batch_size, finished_episodes_only=True)
        return buffer.gather(idx), self._returns_to_go[idx]

    def _bound_policy_values(self, q_values: th.Tensor, reference: th.Tensor | None) -> th.Tensor:
        """``max(Q, V_ref)``: ``q_values`` ``(batch, n, n_critics)``, ``reference`` ``(batch, 1)`` (``None``: as is)."""
        if reference is None:
            return q_values
        return th.maximum(q_values, reference.view(-1, 1, 1))

    def max_backup(self, next_q: th.Tensor, n: int) -> th.Tensor:
        """
        The JAX code's max backup, ``max_i min_j Q'_j(s', a'_i)`` (``conservative_sac.py``: ``jnp.minimum`` of the two
        target networks, then the ``argmax`` over the sampled actions), ``(batch, 1)``.
        """
        return next_q.min(dim=1).values.view(-1, n).max(dim=1, keepdim=True).values


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
