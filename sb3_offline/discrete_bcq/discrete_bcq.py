"""Discrete BCQ: batch-constrained deep Q-learning for discrete actions (Fujimoto, Conti, Ghavamzadeh, Pineau, 2019)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.dqn.policies import QNetwork

from sb3_offline.common.discrete import DiscreteOfflineAlgorithm
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import Update
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.discrete_bcq.policies import (
    DiscreteBCQPolicy,
    MlpPolicy,
    MultiInputPolicy,
    allowed_actions,
    masked_argmax,
)


class DiscreteBCQ(DiscreteOfflineAlgorithm):
    """
    Batch-Constrained deep Q-learning for ``Discrete`` actions: Fujimoto, Conti, Ghavamzadeh, Pineau,
    "Benchmarking Batch Deep Reinforcement Learning Algorithms", NeurIPS 2019 Deep RL Workshop
    (https://arxiv.org/abs/1910.01708), following the authors' code (``sfujim/BCQ``, ``discrete_BCQ/discrete_BCQ.py``
    and ``main.py``).

    A generative model ``G(a|s)`` (the imitation network, a softmax over actions) is fit to the dataset's actions;
    an action is allowed in ``s`` when ``G(a|s) / max_a' G(a'|s) > threshold``. Each gradient step: the next action
    is the argmax of the online ``Q(s', .)`` among the allowed actions, valued by the target network (a double-DQN
    target), ``y = r + gamma * (1 - termination) * Q_target(s', a')``; the loss is
    ``Huber(Q(s, a), y) + NLL(G(.|s), a) + logit_penalty * mean(logits(s)^2)``, one Adam step over both networks;
    then the target network is updated (every ``target_update_interval`` updates, Polyak with ``tau``). ``predict``
    takes the argmax of ``Q`` among the allowed actions, a random action with probability ``exploration_rate`` when
    not deterministic (the authors' ``eval_eps``).

    Defaults are the authors' non-Atari settings (``regular_parameters`` of ``main.py``; ``FC_Q``): separate Q and
    imitation networks of 256-256 ReLU layers, Adam with lr 3e-4, batch 64, gamma 0.99, Polyak ``tau`` 0.005 every
    update, threshold 0.3, ``eval_eps`` 0. Their Atari settings: lr 6.25e-5 with Adam eps 1.5e-4
    (``policy_kwargs=dict(optimizer_kwargs=dict(eps=1.5e-4))``), batch 32, ``tau=1.0`` with
    ``target_update_interval=8000`` (a copy), ``exploration_rate=1e-3``, and their convolutional ``Conv_Q``
    (not provided here: SB3's ``NatureCNN`` shares one extractor per network).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the one optimizer (constant or schedule)
    :param batch_size: minibatch size
    :param tau: Polyak coefficient of the target update (1.0: a copy)
    :param gamma: discount factor
    :param threshold: BCQ's threshold tau on ``G(a|s) / max_a' G(a'|s)``
    :param logit_penalty: weight of the penalty on the imitation logits' squares
    :param target_update_interval: update the target network every that many gradient updates
    :param exploration_rate: epsilon of ``predict(deterministic=False)`` (the authors' ``eval_eps``) and of
        ``learn_online``'s rollouts
    :param kwargs: :class:`~sb3_offline.common.discrete.DiscreteOfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("q_net", "q_net_target", "imitation")
    policy: DiscreteBCQPolicy
    q_net: QNetwork
    q_net_target: QNetwork
    imitation: QNetwork

    def __init__(
        self,
        policy: str | type[DiscreteBCQPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        batch_size: int = 64,
        tau: float = 0.005,
        gamma: float = 0.99,
        threshold: float = 0.3,
        logit_penalty: float = 1e-2,
        target_update_interval: int = 1,
        exploration_rate: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold: expected a ratio of probabilities in [0, 1], found {threshold}")
        if target_update_interval < 1:
            raise ValueError(f"target_update_interval: expected >= 1, found {target_update_interval}")
        self.threshold = threshold
        self.logit_penalty = logit_penalty
        self.target_update_interval = target_update_interval
        super().__init__(
            policy,
            env,
            learning_rate,
            dataset=dataset,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            exploration_rate=exploration_rate,
            **kwargs,
        )

    def _policy_arguments(self) -> dict[str, Any]:
        return {"threshold": self.threshold}

    def _next_update(self) -> tuple[str, Update]:
        if self._n_updates % self.target_update_interval == 0:
            return "bcq_target", self._update_with_target
        return "bcq", self._update

    def _update_with_target(self, batch_size: int) -> None:
        """A gradient step, then the target update."""
        self._update(batch_size)
        self._update_targets()

    def _update(self, batch_size: int) -> None:
        """One gradient step of the authors' ``train`` (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        actions = data.actions.long()
        with th.no_grad():
            allowed = allowed_actions(self.imitation(data.next_observations), self.threshold)
            next_actions = masked_argmax(self.q_net(data.next_observations), allowed, keepdim=True)
            next_q = self.q_net_target(data.next_observations).gather(1, next_actions)
            target_q = data.rewards + (1.0 - data.dones) * self.gamma * next_q
        current_q = self.q_net(data.observations).gather(1, actions)
        q_loss = F.smooth_l1_loss(current_q, target_q)
        logits = self.imitation(data.observations)
        imitation_loss = F.nll_loss(F.log_softmax(logits, dim=1), actions.view(-1))
        penalty = logits.pow(2).mean()
        loss = q_loss + imitation_loss + self.logit_penalty * penalty
        minimize(self.q_net.optimizer, loss)
        self._losses.add("q_loss", q_loss)
        self._losses.add("imitation_loss", imitation_loss)
        self._losses.add("logit_penalty", penalty)
        self._losses.add("q_value", current_q.mean())
