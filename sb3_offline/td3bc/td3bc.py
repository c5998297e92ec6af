"""TD3+BC: TD3 with a behaviour-cloning term in the actor's loss (Fujimoto & Gu, NeurIPS 2021)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.td3.policies import Actor

from sb3_offline.common.actions import action_squared_error
from sb3_offline.common.critics import critic_loss, soft_clipped_target
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate, StepSchedule
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.td3bc.policies import MlpPolicy, MultiInputPolicy, TD3BCPolicy

SelfTD3BC = TypeVar("SelfTD3BC", bound="TD3BC")


class TD3BC(OfflineAlgorithm):
    """
    TD3+BC: Fujimoto & Gu, "A Minimalist Approach to Offline Reinforcement Learning", NeurIPS 2021
    (https://arxiv.org/abs/2106.06860). TD3 trained from a fixed dataset, with two changes: a
    behaviour-cloning term in the actor's loss and states normalised with the dataset's statistics.
    We follow the authors' code (``sfujim/TD3_BC`` commit 8791ad7d7656cb8396f1b3ac8c37f170b2a2dd5f,
    ``TD3_BC.py`` and ``main.py``).

    Each gradient step trains the twin critics on the clipped double-Q target of TD3 with target policy
    smoothing, ``y = r + gamma * (1 - termination) * min_j Q'_j(s', clip(pi'(s') + clip(eps, -c, c), -1, 1))``,
    ``eps ~ N(0, sigma^2)``, and the critic loss ``sum_j mean (Q_j(s, a) - y)^2``. Every ``policy_delay``-th
    step (the 2nd, 4th, ... as the authors' counter) then trains the actor on
    ``-lambda * mean Q_1(s, pi(s)) + mean (pi(s) - a)^2`` with ``lambda = alpha / mean |Q_1(s, pi(s))|``
    (no gradient through ``lambda``) and Polyak-averages both targets; the other steps leave actor and
    targets untouched. The code's ``lambda`` averages ``|Q_1|`` at the policy's actions where the paper's
    Eq. 3 writes ``Q(s_i, a_i)``: we follow the code. The BC term is on [-1, 1] actions (``action_units``, default
    ``"normalized"``, as d3rlpy's ``TD3PlusBC``), smoothing noise and its clip in units of ``max_action`` (the
    authors scale 0.2 and 0.5 by it), i.e. [-1, 1] units here: on a Box with bound 1 (MuJoCo) both are the
    authors' numbers as they are, and ``alpha`` keeps its meaning on any other Box. ``action_units="env"`` takes
    the BC term in the env's units, as the authors' actor literally does (it outputs ``max_action * tanh`` and is
    compared with the dataset's actions): on a Box whose half-range is ``b`` in every dimension that term is
    ``b^2`` times the [-1, 1] one, the objective of ``alpha / b^2`` here times ``b^2`` (Pendulum, ``b = 2``:
    ``alpha=10`` in the env's units is ``alpha=2.5`` here, up to Adam's ``eps``).

    States are normalised as ``(s - mean) / (std + 1e-3)`` with the dataset's mean and (population)
    standard deviation (``normalize_observations=True``, the authors' default): the policy's features
    extractors (:mod:`sb3_offline.common.normalization`) are fitted when the dataset is read and saved
    with the policy, so ``predict`` takes raw observations.

    Defaults (``main.py`` and ``TD3_BC.py``): actor and critics 256-256, Adam lr 3e-4 for both, batch 256,
    tau 0.005, gamma 0.99, policy noise 0.2, noise clip 0.5, policy delay 2, alpha 2.5; the authors train
    for 1M gradient steps. ``learn_online`` continues the same training with env steps (exploration noise:
    ``action_noise``, as SB3's TD3).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: critic learning rate (constant or schedule)
    :param actor_learning_rate: actor learning rate (constant or schedule)
    :param alpha: weight of the Q term relative to the BC term (``lambda = alpha / mean |Q|``)
    :param policy_delay: the actor and the targets are updated every ``policy_delay`` gradient steps
        (the authors' ``policy_freq``)
    :param target_policy_noise: standard deviation of the target policy smoothing noise, in units of
        ``max_action`` (the authors' ``policy_noise``)
    :param target_noise_clip: bound of that noise, in units of ``max_action`` (the authors' ``noise_clip``)
    :param normalize_observations: normalise states with the dataset's statistics (``(s - mean) / (std + 1e-3)``)
    :param batch_size: minibatch size
    :param tau: soft update coefficient
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "actor_target", "critic", "critic_target")
    target_networks = {"actor_target": "actor", "critic_target": "critic"}
    #: the authors' state normalisation (``main.py``): ``(s - mean) / (std + 1e-3)``
    observation_normalizer = (1e-3, "add")
    policy: TD3BCPolicy
    actor: Actor
    actor_target: Actor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        policy: str | type[TD3BCPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float | Schedule | StepSchedule = 3e-4,
        alpha: float = 2.5,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        normalize_observations: bool = True,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"alpha: expected >= 0, found {alpha}")
        if int(policy_delay) != policy_delay or policy_delay < 1:
            raise ValueError(f"policy_delay: expected an integer >= 1, found {policy_delay}")
        if target_policy_noise < 0:
            raise ValueError(f"target_policy_noise: expected >= 0, found {target_policy_noise}")
        if target_noise_clip < 0:
            raise ValueError(f"target_noise_clip: expected >= 0, found {target_noise_clip}")
        self.alpha = alpha
        self.policy_delay = int(policy_delay)
        self.target_policy_noise = target_policy_noise
        self.target_noise_clip = target_noise_clip
        self.normalize_observations = normalize_observations
        self.actor_learning_rate = actor_learning_rate
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"actor": self.actor_learning_rate, "critic": None}

    def _next_update(self) -> tuple[str, Update]:
        """The critics every step; the actor and the targets every ``policy_delay`` steps (``_n_updates``)."""
        if self._n_updates % self.policy_delay == 0:
            return "td3bc", self._update
        return "td3bc/critic", self._critic_update

    @th.no_grad()
    def compute_critic_target(self, data: ReplayBufferSamples) -> th.Tensor:
        """
        TD3's target with target policy smoothing: ``r + gamma * (1 - termination) * min_j Q'_j(s', a')``,
        ``a' = clip(pi'(s') + clip(N(0, sigma^2), -c, c), -1, 1)`` (``(batch, 1)``, no gradient).
        """
        next_actions = self.actor_target(data.next_observations)
        noise = (th.randn_like(next_actions) * self.target_policy_noise).clamp(
            -self.target_noise_clip, self.target_noise_clip
        )
        next_actions = (next_actions + noise).clamp(-1.0, 1.0)
        next_q = th.cat(self.critic_target(data.next_observations, next_actions), dim=1)
        return soft_clipped_target(next_q, data.rewards, data.dones, self.gamma, lmbda=1.0)

    def compute_actor_loss(self, data: ReplayBufferSamples) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        ``-lambda * mean Q_1(s, pi(s)) + mean (pi(s) - a)^2`` (the BC term in the units ``action_units`` says),
        with ``lambda = alpha / mean |Q_1(s, pi(s))|`` detached.

        :return: the actor loss, the BC term and ``lambda``
        """
        actions = self.actor(data.observations)
        q_values = self.critic.q1_forward(data.observations, actions)
        lmbda = self.alpha / q_values.abs().mean().detach()
        bc_loss = action_squared_error(actions, data.actions, self._action_scale)
        return -lmbda * q_values.mean() + bc_loss, bc_loss, lmbda

    def _critic_step(self, data: ReplayBufferSamples) -> None:
        target_q = self.compute_critic_target(data)
        current_q = th.cat(self.critic(data.observations, data.actions), dim=1)
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)
        self._losses.add("critic_loss", q_loss)
        self._losses.add("q_value", current_q[:, 0].mean())

    def _critic_update(self, batch_size: int) -> None:
        """A step that trains the critics only (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        self._critic_step(self.replay_buffer.sample(batch_size, env=self._vec_normalize_env))

    def _update(self, batch_size: int) -> None:
        """A step that trains the critics, then the actor, then moves the targets (device work only)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        self._critic_step(data)
        actor_loss, bc_loss, lmbda = self.compute_actor_loss(data)
        minimize(self.actor.optimizer, actor_loss)
        self._update_targets()
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("bc_loss", bc_loss)
        self._losses.add("lambda", lmbda)
