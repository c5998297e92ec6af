"""BatchDDPG: DDPG trained only from a fixed dataset (the BCQ paper's "off-policy DDPG")."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.td3.policies import Actor

from sb3_offline.batch_ddpg.policies import BatchDDPGPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.common.critics import critic_loss
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate, StepSchedule
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource

SelfBatchDDPG = TypeVar("SelfBatchDDPG", bound="BatchDDPG")


class BatchDDPG(OfflineAlgorithm):
    """
    Batch DDPG: Deep Deterministic Policy Gradient trained only from a fixed dataset, never
    interacting with the env. It is the "off-policy DDPG" baseline of the BCQ paper, whose failure
    on data it did not collect (extrapolation error) is what BCQ fixes.

    Paper: Lillicrap et al., "Continuous control with deep reinforcement learning", ICLR 2016
    (https://arxiv.org/abs/1509.02971), used as a batch baseline in Fujimoto, Meger, Precup,
    "Off-Policy Deep Reinforcement Learning without Exploration", ICML 2019.
    Networks and defaults: the BCQ authors' 2018 DDPG, the baseline of the paper's experiments
    (``sfujim/BCQ``, commit 115f77d, ``DDPG.py``): actor 400-300, critic with the action entering at
    its second layer (400 + a -> 300, :class:`~sb3_offline.batch_ddpg.policies.BatchDDPGPolicy`), actor
    Adam lr 1e-4, critic Adam lr 1e-3 (Adam's default there) with L2 weight decay 1e-2, batch 100,
    tau 0.005, gamma 0.99.

    Update (Algorithm 1 of the DDPG paper): ``y = r + gamma * (1 - termination) * Q'(s', mu'(s'))``
    (:meth:`compute_critic_target`), critic on ``(Q(s, a) - y)^2``, actor on ``-Q(s, mu(s))``
    (:meth:`compute_actor_loss`), Polyak-averaged targets. Losses stay on the device; they are read only
    when the logger dumps. DDPG as Hindsight Experience Replay trains it (action at the critic's input, no
    weight decay, HER's sizes and losses) is :class:`~sb3_offline.her.HerDDPG`.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: critic learning rate (constant or schedule)
    :param actor_learning_rate: actor learning rate (constant or schedule)
    :param critic_weight_decay: L2 weight decay of the critic's optimizer (``optimizer_kwargs`` may not set
        ``weight_decay``: it would reach the actor too)
    :param batch_size: minibatch size
    :param tau: soft update coefficient
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "actor_target", "critic", "critic_target")
    target_networks = {"actor_target": "actor", "critic_target": "critic"}
    policy: BatchDDPGPolicy
    actor: Actor
    actor_target: Actor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        policy: str | type[BatchDDPGPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        actor_learning_rate: float | Schedule | StepSchedule = 1e-4,
        critic_weight_decay: float = 1e-2,
        batch_size: int = 100,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        self.actor_learning_rate = actor_learning_rate
        self.critic_weight_decay = critic_weight_decay
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"critic": None, "actor": self.actor_learning_rate}

    def _policy_arguments(self) -> dict[str, Any]:
        return {"critic_weight_decay": self.critic_weight_decay}

    def _next_update(self) -> tuple[str, Update]:
        return "batch_ddpg", self._update

    @th.no_grad()
    def compute_critic_target(self, data: ReplayBufferSamples) -> th.Tensor:
        """``y = r + gamma * (1 - termination) * Q'(s', mu'(s'))`` (``(batch, 1)``, no gradient)."""
        next_q = self.critic_target(data.next_observations, self.actor_target(data.next_observations))[0]
        return data.rewards + (1.0 - data.dones) * self.gamma * next_q

    def compute_actor_loss(self, data: ReplayBufferSamples) -> th.Tensor:
        """``-mean Q(s, mu(s))``."""
        return -self.critic.q1_forward(data.observations, self.actor(data.observations)).mean()

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        target_q = self.compute_critic_target(data)
        current_q = self.critic(data.observations, data.actions)[0]
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)

        actor_loss = self.compute_actor_loss(data)
        minimize(self.actor.optimizer, actor_loss)

        self._update_targets()

        self._losses.add("critic_loss", q_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("q_value", current_q.mean())
