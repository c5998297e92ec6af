"""DiscreteIQL: Implicit Q-Learning (Kostrikov, Nair, Levine 2022) with a softmax policy over discrete actions."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from sb3_offline.common.critics import ValueNetwork, critic_loss
from sb3_offline.common.discrete import DiscreteOfflineAlgorithm
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import Update
from sb3_offline.common.training import minimize
from sb3_offline.common.weights import exp_weights, expectile_loss
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.discrete_iql.policies import (
    CategoricalActor,
    DiscreteCritic,
    DiscreteIQLPolicy,
    MlpPolicy,
    MultiInputPolicy,
)
from sb3_offline.iql import IQL
from sb3_offline.iql.iql import check_iql_arguments

SelfDiscreteIQL = TypeVar("SelfDiscreteIQL", bound="DiscreteIQL")


def weighted_log_likelihood(log_probs: th.Tensor, weights: th.Tensor) -> th.Tensor:
    """IQL's actor loss on the dataset's actions, ``-mean(w * log pi(a | s))``."""
    return -(weights * log_probs).mean()


class DiscreteIQL(DiscreteOfflineAlgorithm):
    """
    Implicit Q-Learning for discrete actions: the update of Kostrikov, Nair, Levine, "Offline Reinforcement Learning
    with Implicit Q-Learning", ICLR 2022 (https://arxiv.org/abs/2110.06169), with a softmax (categorical) policy and
    Q-networks ``Q(s, .)`` over the actions. The update is the authors' (``ikostrikov/implicit_q_learning``,
    ``learner.py``, as our :class:`~sb3_offline.iql.IQL`), each network's head made discrete as the public
    implementation ``BY571/Implicit-Q-Learning`` does (``discrete_iql/agent.py``, commit 03b8b8f: the authors' order,
    ``Q(s, .)`` gathered at the dataset's action, a categorical ``log pi(a | s)``); its settings are its own
    (temperature 100, expectile 0.8, targets copied every 10 steps, the critics' gradients clipped at 100) and are not
    kept. The defaults are those of the discrete IQL proposed to d3rlpy (pull request #404, open, for issue #464:
    its ``DiscreteIQLConfig``), which are IQL's authors'. One gradient step on one batch:

    1. ``V`` by expectile regression on the target critics: ``L_V = mean(|expectile - 1(u < 0)| u^2)``,
       ``u = min_j Q'_j(s, a) - V(s)``, ``a`` the dataset's action;
    2. the actor, with the new ``V``: ``L_pi = -mean(min(exp(temperature * (min_j Q'_j(s, a) - V(s))), 100)
       * log pi(a | s))``, ``pi`` the softmax of the actor's logits;
    3. the critics on ``r + gamma * (1 - termination) * V(s')`` with the new ``V``: the sum over critics of the
       mean squared error of ``Q_j(s, a)``;
    4. Polyak averaging of the target critics (``tau``).

    No step evaluates an action that is not in the dataset (the policy is never asked for its own actions), as
    IQL. Defaults (IQL's authors', ``configs/mujoco_config.py``; the pull request's): every network 256-256, Adam
    lr 3e-4 for all three, batch 256, tau 0.005, gamma 0.99, ``expectile`` 0.7, ``temperature`` 3, weight clip 100,
    two critics; the actor's learning rate decays along a cosine over the run as the authors' (``actor_lr_decay_steps``,
    as IQL's). Every linear layer starts as the authors' (orthogonal, gain ``sqrt(2)``, zero bias).

    Acting (``predict``): the most likely action (``deterministic=True``) or a sample of the softmax; offline
    training is ``learn(total_timesteps)`` (gradient steps), fine-tuning ``learn_online`` (acting with samples).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the critics (constant or schedule)
    :param actor_learning_rate: the actor's (initial) learning rate
    :param value_learning_rate: the value network's learning rate (``None``: ``learning_rate``)
    :param actor_lr_decay_steps: over how many gradient updates the actor's learning rate decays to 0 along a
        cosine (offline): ``"auto"``, the run's (``learn``'s ``total_timesteps``), an int, or ``None``: constant
    :param expectile: the expectile of the value regression, in (0, 1) (the paper's tau)
    :param temperature: inverse temperature of the advantage weights (the paper's beta; it multiplies ``A``)
    :param max_weight: clip of the advantage weights
    :param batch_size: minibatch size
    :param tau: target update rate
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.discrete.DiscreteOfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "critic", "critic_target", "value")
    target_networks = {"critic_target": "critic"}
    policy: DiscreteIQLPolicy
    actor: CategoricalActor
    critic: DiscreteCritic
    critic_target: DiscreteCritic
    value: ValueNetwork

    def __init__(
        self,
        policy: str | type[DiscreteIQLPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float = 3e-4,
        value_learning_rate: float | Schedule | None = None,
        actor_lr_decay_steps: int | str | None = "auto",
        expectile: float = 0.7,
        temperature: float = 3.0,
        max_weight: float = 100.0,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        check_iql_arguments(expectile, temperature, max_weight, actor_lr_decay_steps)
        self.expectile, self.temperature, self.max_weight = expectile, temperature, max_weight
        self.actor_learning_rate, self.value_learning_rate = actor_learning_rate, value_learning_rate
        self.actor_lr_decay_steps = actor_lr_decay_steps
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    #: IQL's: the critics', the value's, and the actor's, which decays along a cosine offline
    #: (``actor_lr_decay_steps``) and is constant in ``learn_online``
    learning_rates = IQL.learning_rates

    def _next_update(self) -> tuple[str, Update]:
        return "discrete_iql", self._update

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = self.policy.features(data.observations)  # no trainable parameters in the extractor
        actions = data.actions.long().view(-1, 1)
        with th.no_grad():
            target_q = self.critic_target.action_values(features, actions).min(dim=1, keepdim=True).values

        # 1. V: expectile regression on the target critics' minimum
        value = self.value(features)
        value_loss = expectile_loss(target_q - value, self.expectile)
        minimize(self.value.optimizer, value_loss)

        # 2. the actor: advantage-weighted log-likelihood of the dataset's actions, with the new V
        with th.no_grad():
            advantages = target_q - self.value(features)
            weights = exp_weights(advantages, self.temperature, self.max_weight)
        actor_loss = weighted_log_likelihood(self.actor.log_prob(features, actions), weights)
        minimize(self.actor.optimizer, actor_loss)

        # 3. the critics on r + gamma * (1 - d) * V(s'), the new V
        with th.no_grad():
            next_value = self.value(self.policy.features(data.next_observations))
            q_target = data.rewards + (1.0 - data.dones) * self.gamma * next_value
        current_q = self.critic.action_values(features, actions)
        q_loss = critic_loss(current_q, q_target)
        minimize(self.critic.optimizer, q_loss)

        self._update_targets()

        self._losses.add("value_loss", value_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("critic_loss", q_loss)
        self._losses.add("value", value.detach().mean())
        self._losses.add("q_value", current_q.detach().mean())
        self._losses.add("advantage", advantages.mean())
        self._losses.add("max_weight", weights.max())
