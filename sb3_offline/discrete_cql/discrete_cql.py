"""DiscreteCQL: Conservative Q-Learning for discrete actions (Kumar, Zhou, Tucker, Levine 2020), on DQN or QR-DQN."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, TypeVar

import torch as th
import torch.nn.functional as F
from sb3_contrib.common.utils import quantile_huber_loss
from sb3_contrib.qrdqn.policies import QuantileNetwork
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.dqn.policies import QNetwork

from sb3_offline.common.discrete import DiscreteOfflineAlgorithm
from sb3_offline.common.offline_algorithm import Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.discrete_cql import policies

SelfDiscreteCQL = TypeVar("SelfDiscreteCQL", bound="DiscreteCQL")


class Base(NamedTuple):
    """A Q-learning base of DiscreteCQL: its policies, its network (and target) and the reference's settings."""

    aliases: dict[str, type[BasePolicy]]
    network: str
    learning_rate: float
    target_update_interval: int


#: ``base`` -> its policies and its reference's settings
BASES: dict[str, Base] = {
    # d3rlpy 2.8.1's DiscreteCQLConfig: learning_rate 6.25e-5, target_update_interval 8000 (gradient steps)
    "dqn": Base(
        {
            "MlpPolicy": policies.MlpPolicy,
            "CnnPolicy": policies.CnnPolicy,
            "MultiInputPolicy": policies.MultiInputPolicy,
        },
        "q_net",
        6.25e-5,
        8000,
    ),
    # the CQL authors' Atari runs (atari/batch_rl/fixed_replay/configs/quantile*.gin): Adam lr 5e-5, the target
    # copied every 8000 agent steps with an update every 4 (update_period), i.e. every 2000 gradient steps
    "qrdqn": Base(
        {
            "MlpPolicy": policies.QuantileMlpPolicy,
            "CnnPolicy": policies.QuantileCnnPolicy,
            "MultiInputPolicy": policies.QuantileMultiInputPolicy,
        },
        "quantile_net",
        5e-5,
        2000,
    ),
}


def conservative_penalty(q_values: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """
    CQL(H)'s regulariser for discrete actions: ``mean_i [logsumexp_a Q(s_i, a) - Q(s_i, a_i)]``, ``a_i`` the dataset's
    action (the authors' ``min_q_loss = negative_sampling - dataset_expec``; d3rlpy's ``_compute_conservative_loss``).

    :param q_values: ``(batch, n_actions)``; on QR-DQN the mean of the quantiles (the authors' ``q_values``)
    :param actions: ``(batch, 1)`` action indices (long)
    :return: a scalar
    """
    data_values = q_values.gather(1, actions)
    return (th.logsumexp(q_values, dim=1, keepdim=True) - data_values).mean()


def action_quantiles(quantiles: th.Tensor, actions: th.Tensor) -> th.Tensor:
    """The given actions' quantiles: ``(batch, n_quantiles, n_actions)``, ``(batch, 1)`` -> ``(batch, n_quantiles)``."""
    index = actions.view(-1, 1, 1).expand(quantiles.shape[0], quantiles.shape[1], 1)
    return quantiles.gather(2, index).squeeze(2)


class DiscreteCQL(DiscreteOfflineAlgorithm):
    """
    Conservative Q-Learning for discrete actions: Kumar, Zhou, Tucker, Levine, "Conservative Q-Learning for Offline
    Reinforcement Learning", NeurIPS 2020 (https://arxiv.org/abs/2006.04779), the CQL(H) variant of its Atari
    experiments. One gradient step minimises the Q-learning loss of the base plus
    ``alpha * mean[logsumexp_a Q(s, a) - Q(s, a_data)]`` (:func:`conservative_penalty`), which pushes down the
    values of every action and up those of the dataset's.

    Two bases, chosen by ``base``:

    - ``"qrdqn"``: the paper's (its Atari runs), as the authors' code ``aviralkumar2907/CQL`` (commit d67dbe9),
      ``atari/batch_rl/multi_head/quantile_agent.py`` (``_build_train_op``): sb3-contrib's QR-DQN (its
      ``QRDQNPolicy``, its quantile Huber loss, summed over the current quantiles and averaged over the target's,
      kappa 1), the target's greedy action by the *target* network's quantile mean (no double Q), and the
      logsumexp taken over the quantiles' mean per action (the authors' ``q_values``). Settings of
      ``atari/batch_rl/fixed_replay/configs/quantile.gin``: 200 quantiles, Adam lr 5e-5 with ``eps=0.0003125``,
      batch 32, gamma 0.99, the target copied every 2000 gradient steps (8000 agent steps, one update every 4),
      ``minq_weight`` (``alpha``) 1.0 (their README: 1.0 for the 10% datasets, 4.0 for the 1% ones).
    - ``"dqn"`` (default): as d3rlpy 2.8.1's ``DiscreteCQL`` (``algos/qlearning/torch/cql_impl.py``,
      ``DiscreteCQLImpl`` on ``DoubleDQNImpl``): SB3's ``DQNPolicy``, the double-DQN target (the greedy action by the
      online network, its value by the target network), the Huber loss (``beta`` 1) on ``Q(s, a_data)``. Settings of
      its ``DiscreteCQLConfig``: Adam lr 6.25e-5 (``eps`` 1e-8), batch 32, gamma 0.99, ``alpha`` 1.0, the target
      copied every 8000 gradient steps, 256-256 ReLU layers (its default vector encoder).

    The default is ``"dqn"`` because the common case of offline discrete data is a log of vector states (the systems
    that choose among a few actions: recommenders, routing, admission control), for which d3rlpy's settings are made
    (and against which such data is usually compared); the authors' only discrete settings are Atari's (frames, a
    convolutional network, 1% or 10% of a DQN replay). Each base keeps its reference's learning rate and target
    interval unless given (``None``: the base's). On vector observations both bases use 256-256 ReLU layers (the
    authors have no vector setting); ``"CnnPolicy"`` is SB3's ``NatureCNN``, the network of the authors' Atari runs.

    Targets are copied (``tau=1``) after the first update and then every ``target_update_interval`` updates, as
    d3rlpy (``grad_step % target_update_interval == 0``) and dopamine (``training_steps % target_update_period``).
    Acting: the greedy action of ``Q`` (of the quantiles' mean on QR-DQN), SB3's ``DQN``/``QRDQN`` ``predict``;
    ``learn_online`` acts epsilon-greedily with ``exploration_rate`` (default 0: greedily).

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` (the base's) or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param base: ``"dqn"`` (d3rlpy's DiscreteCQL) or ``"qrdqn"`` (the paper's Atari runs)
    :param learning_rate: Adam's learning rate (``None``: the base's, 6.25e-5 or 5e-5)
    :param alpha: weight of the conservative penalty (the authors' ``minq_weight``, d3rlpy's ``alpha``)
    :param target_update_interval: gradient steps between copies of the target (``None``: the base's, 8000 or 2000)
    :param batch_size: minibatch size
    :param tau: the target's update coefficient at each copy (1: a copy)
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.discrete.DiscreteOfflineAlgorithm`'s other arguments and defaults
        (``exploration_rate``: epsilon of ``predict(deterministic=False)`` and of ``learn_online``)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = BASES["dqn"].aliases
    q_net: QNetwork
    q_net_target: QNetwork
    quantile_net: QuantileNetwork
    quantile_net_target: QuantileNetwork

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        base: str = "dqn",
        learning_rate: float | Schedule | None = None,
        alpha: float = 1.0,
        target_update_interval: int | None = None,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if base not in BASES:
            raise ValueError(f"base: expected one of {sorted(BASES)}, found {base!r}")
        if alpha < 0:
            raise ValueError(f"alpha: expected >= 0, found {alpha}")
        interval = BASES[base].target_update_interval if target_update_interval is None else target_update_interval
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"target_update_interval: expected an int >= 1 gradient step, found {interval!r}")
        self.base, self.alpha, self.target_update_interval = base, alpha, interval
        rate = BASES[base].learning_rate if learning_rate is None else learning_rate
        super().__init__(policy, env, rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs)

    @property
    def networks(self) -> tuple[str, ...]:  # type: ignore[override]
        """The base's network and its target (``q_net``/``q_net_target`` or ``quantile_net``/...)."""
        name = BASES[self.base].network
        return (name, f"{name}_target")

    @property
    def target_networks(self) -> dict[str, str]:  # type: ignore[override]
        name = BASES[self.base].network
        return {f"{name}_target": name}

    def _get_policy_from_name(self, policy_name: str) -> type[BasePolicy]:
        """The base's policy of that name (``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy``)."""
        aliases = BASES[self.base].aliases
        if policy_name not in aliases:
            raise ValueError(f"policy: expected one of {sorted(aliases)}, found {policy_name!r}")
        return aliases[policy_name]

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {BASES[self.base].network: None}

    def _next_update(self) -> tuple[str, Update]:
        if (self._n_updates - 1) % self.target_update_interval == 0:
            return "discrete_cql_and_target", self._update_and_copy_target
        return "discrete_cql", self._update

    def _update_and_copy_target(self, batch_size: int) -> None:
        """One gradient step, then the target's copy (``tau``)."""
        self._update(batch_size)
        self._update_targets()

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        actions = data.actions.long().view(-1, 1)
        if self.base == "qrdqn":
            td_loss, q_values = self._quantile_td_loss(data, actions)
        else:
            td_loss, q_values = self._double_dqn_td_loss(data, actions)
        penalty = conservative_penalty(q_values, actions)
        loss = td_loss + self.alpha * penalty
        network = getattr(self, BASES[self.base].network)
        minimize(network.optimizer, loss)
        self._losses.add("td_loss", td_loss)
        self._losses.add("conservative_loss", penalty)
        self._losses.add("loss", loss)
        self._losses.add("q_value", q_values.detach().gather(1, actions).mean())

    def _double_dqn_td_loss(self, data: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        d3rlpy's ``DoubleDQNImpl``: the Huber loss of ``Q(s, a)`` against
        ``r + gamma * (1 - termination) * Q'(s', argmax_a Q(s', a))``; returns it and ``Q(s, .)``.
        """
        with th.no_grad():
            next_actions = self.q_net(data.next_observations).argmax(dim=1, keepdim=True)
            next_values = self.q_net_target(data.next_observations).gather(1, next_actions)
            targets = data.rewards + (1.0 - data.dones) * self.gamma * next_values
        q_values = self.q_net(data.observations)
        return F.smooth_l1_loss(q_values.gather(1, actions), targets), q_values

    def _quantile_td_loss(self, data: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The authors' QR-DQN loss: quantile Huber loss of the data action's quantiles against
        ``r + gamma * (1 - termination) * theta'(s', argmax_a mean theta'(s', a))``; returns it and the quantiles'
        mean per action, ``(batch, n_actions)``.
        """
        with th.no_grad():
            next_quantiles = self.quantile_net_target(data.next_observations)
            next_actions = next_quantiles.mean(dim=1).argmax(dim=1, keepdim=True)
            targets = data.rewards + (1.0 - data.dones) * self.gamma * action_quantiles(next_quantiles, next_actions)
        quantiles = self.quantile_net(data.observations)
        td_loss = quantile_huber_loss(action_quantiles(quantiles, actions), targets, sum_over_quantiles=True)
        return td_loss, quantiles.mean(dim=1)
