"""
What the offline metrics (:mod:`sb3_offline.ope.metrics`) read from a model: its critic ``Q(s, a)`` (the mean over
its Q-functions, as d3rlpy's ``predict_value``) and its policy's deterministic action ``pi(s)``, computed once per
evaluation over the held-out rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch as th

from sb3_offline.buffers import RewardTransform
from sb3_offline.common.observations import map_obs, obs_index
from sb3_offline.evaluation import reward_transform_of
from sb3_offline.ope.evaluation_policy import EvaluationPolicy, TensorObs
from sb3_offline.ope.held_out import HeldOutEpisodes

#: rows per forward pass of the critic when a metric reads many rows
VALUE_BATCH_SIZE = 8192

#: how the Q-functions of an ensemble are combined into one value
CRITIC_REDUCTIONS = ("mean", "min", "q1")


class ValueModel:
    """
    What the metrics read from a model: ``q(s, a)`` (``(rows,)``, actions in [-1, 1]), the policy's actions
    ``act(s)`` (``(rows, action_dim)`` in [-1, 1]), its discount ``gamma`` and the reward transform its critic
    was trained with. :meth:`from_model` builds it for any SB3 model with a ``policy.critic`` (ours, SB3's
    TD3/SAC/DDPG, FQE) or, on a ``Discrete`` action space, a ``policy.q_net`` (SB3's DQN, our discrete algorithms:
    ``Q(s, .)`` read at the action's index); a subclass may give any other Q and policy (tests use analytic ones).

    :param gamma: discount factor
    :param reward_transform: the transform of the rewards the critic learnt (identity by default)
    """

    def __init__(self, gamma: float, reward_transform: RewardTransform | None = None) -> None:
        self.gamma = float(gamma)
        self.reward_transform = reward_transform or RewardTransform()

    @property
    def has_critic(self) -> bool:
        return True

    def q(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        raise NotImplementedError

    def act(self, observations: TensorObs) -> th.Tensor:
        raise NotImplementedError

    @staticmethod
    def from_model(model: Any, deterministic: bool = True, reduction: str = "mean") -> ValueModel:
        """The :class:`ValueModel` of an SB3 model (FQE included: its Q-functions and the policy it evaluates)."""
        return _SB3ValueModel(model, deterministic, reduction)


class _SB3ValueModel(ValueModel):
    def __init__(self, model: Any, deterministic: bool, reduction: str) -> None:
        super().__init__(float(getattr(model, "gamma", 0.99)), reward_transform_of(model))
        if reduction not in CRITIC_REDUCTIONS:
            raise ValueError(f"critic_reduction: expected one of {CRITIC_REDUCTIONS}, found {reduction!r}")
        from sb3_offline.ope.fqe import FQE

        self.model = model
        self.reduction = reduction
        self.policy = model.policy
        self.critic = getattr(self.policy, "critic", None)
        #: a DQN-style ``Q(s, .)`` network (Discrete actions), read at the action's index
        self.q_net = getattr(self.policy, "q_net", None) if self.critic is None else None
        self.to_critic_units = getattr(self.policy, "critic_action_input", None)
        #: critics of ``Q(s, .)`` over Discrete actions on the policy's features (DiscreteIQL's), read at the index
        self.discrete_critic = self.critic is not None and hasattr(self.critic, "action_values")
        self.evaluator = (
            model.evaluator()
            if isinstance(model, FQE)
            else EvaluationPolicy(model, model.observation_space, model.action_space, deterministic=deterministic)
        )

    @property
    def has_critic(self) -> bool:
        return self.critic is not None or self.q_net is not None

    def q(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        if self.q_net is not None:
            with th.no_grad():
                obs = map_obs(lambda value: value.to(self.policy.device), observations)
                index = actions.to(self.policy.device).long().reshape(-1, 1)
                return self.q_net(obs).gather(1, index)[:, 0].to(actions.device)
        if self.critic is None:
            raise ValueError(f"model: expected a critic (policy.critic), found {type(self.model).__name__} without one")
        was_training = self.policy.training
        self.policy.set_training_mode(False)
        try:
            with th.no_grad():
                device = self.policy.device
                inputs = actions.to(device)
                if self.to_critic_units is not None:
                    inputs = self.to_critic_units(inputs)
                obs = map_obs(lambda value: value.to(device), observations)
                if self.discrete_critic:
                    features = self.policy.features(obs)
                    values = self.critic.action_values(features, inputs.long().reshape(-1, 1))
                else:
                    values = self.critic(obs, inputs)
                    # SB3's critics return one (rows, 1) tensor per Q-function; an EnsembleCritic (n_critics, rows, 1)
                    values = th.cat(values, dim=1) if isinstance(values, tuple) else values.squeeze(-1).T
        finally:
            self.policy.set_training_mode(was_training)
        if self.reduction == "q1":
            reduced = values[:, 0]
        elif self.reduction == "min":
            reduced = values.min(dim=1).values
        else:
            reduced = values.mean(dim=1)
        return reduced.to(actions.device)

    def act(self, observations: TensorObs) -> th.Tensor:
        return self.evaluator.actions(observations, 1)[:, 0]


class _Values:
    """The quantities the metrics share, computed once per evaluation, on demand."""

    def __init__(self, model: ValueModel, data: HeldOutEpisodes, batch_size: int = VALUE_BATCH_SIZE) -> None:
        self.model, self.data, self.batch_size = model, data, batch_size

    def _batched(
        self, fn: Callable[[TensorObs, th.Tensor | None], th.Tensor], observations: TensorObs, actions: th.Tensor | None
    ) -> th.Tensor:
        parts = []
        for start in range(0, self.data.n_rows, self.batch_size):
            rows = slice(start, start + self.batch_size)
            parts.append(fn(obs_index(observations, rows), actions[rows] if actions is not None else None))
        return th.cat(parts)

    @cached_property
    def policy_actions(self) -> th.Tensor:
        return self._batched(lambda obs, _: self.model.act(obs), self.data.observations, None)

    @cached_property
    def next_policy_actions(self) -> th.Tensor:
        return self._batched(lambda obs, _: self.model.act(obs), self.data.next_observations, None)

    def _q(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        return self._batched(lambda obs, act: self.model.q(obs, act), observations, actions).float()  # type: ignore[arg-type]

    @cached_property
    def q_data(self) -> th.Tensor:
        """``Q(s, a)`` at the dataset's actions."""
        return self._q(self.data.observations, self.data.actions)

    @cached_property
    def q_policy(self) -> th.Tensor:
        """``Q(s, pi(s))``."""
        return self._q(self.data.observations, self.policy_actions)

    @cached_property
    def q_next(self) -> th.Tensor:
        """``Q(s', pi(s'))``."""
        return self._q(self.data.next_observations, self.next_policy_actions)


__all__ = ["CRITIC_REDUCTIONS", "VALUE_BATCH_SIZE", "ValueModel"]
