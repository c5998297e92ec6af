"""
Offline metrics of a trained model on held-out episodes (as d3rlpy 2.8.1's evaluators,
``d3rlpy/metrics/evaluators.py``).

Each metric reads the model's critic ``Q(s, a)`` (the mean over its Q-functions, as d3rlpy's ``predict_value``)
and its policy's deterministic action ``pi(s)`` at the held-out states; :class:`~sb3_offline.ope.OfflineEvalCallback`
logs them during ``learn``. Where d3rlpy's evaluators cut an episode into windows of 1024 rows (its initial-state
value then takes the first row of every window, its discounted sum of advantages restarts at every window), these
work on whole episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_offline.buffers import OfflineReplayBuffer, RewardTransform, resolve_reward_transform
from sb3_offline.common.episodes import discounted_returns_to_go
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.ope.evaluation_policy import EvaluationPolicy, TensorObs

#: rows per forward pass of the critic when a metric reads many rows
VALUE_BATCH_SIZE = 8192


# --------------------------------------------------------------------------------------------- the data
@dataclass
class HeldOutEpisodes:
    """
    Held-out episodes as tensors on a device: the rows of an :class:`~sb3_offline.buffers.OfflineReplayBuffer`
    built from them (validated against the spaces, actions in [-1, 1], raw rewards, terminations and timeouts
    apart, its episode index).

    :param buffer: the buffer holding the episodes (no reward transform)
    """

    buffer: OfflineReplayBuffer

    @classmethod
    def from_source(
        cls,
        source: DatasetSource | HeldOutEpisodes,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Any,
    ) -> HeldOutEpisodes:
        """Read (and validate) held-out episodes from any dataset source onto ``device``."""
        if isinstance(source, HeldOutEpisodes):
            return source
        buffer = OfflineReplayBuffer(0, observation_space, action_space, device=device, dataset=source)
        return cls(buffer)

    @property
    def n_rows(self) -> int:
        return self.buffer.dataset_size

    @property
    def n_episodes(self) -> int:
        return self.buffer.n_episodes

    @property
    def observations(self) -> TensorObs:
        return self.buffer.observations

    @property
    def next_observations(self) -> TensorObs:
        return self.buffer.next_observations

    @property
    def actions(self) -> th.Tensor:
        """``(rows, action_dim)`` in [-1, 1]."""
        return self.buffer.actions

    @property
    def rewards(self) -> th.Tensor:
        """``(rows,)`` raw rewards."""
        return self.buffer.rewards[:, 0]

    @property
    def terminations(self) -> th.Tensor:
        """``(rows,)`` 1.0 where the episode ended (no bootstrapping); a timeout is 0."""
        return self.buffer.dones[:, 0]

    @property
    def episode_ends(self) -> th.Tensor:
        """``(rows,)`` bool, the rows that close an episode (termination or timeout)."""
        return (self.buffer.dones[:, 0] > 0) | (self.buffer.timeouts[:, 0] > 0)

    @property
    def episode_starts(self) -> th.Tensor:
        return self.buffer.episode_starts

    @cached_property
    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode (raw rewards)."""
        rewards = self.rewards.cpu().numpy().astype(np.float64)
        starts = self.episode_starts.cpu().numpy()
        return np.add.reduceat(rewards, starts) if len(starts) else np.zeros(0)

    def episode_rewards(self, episode: int) -> np.ndarray:
        """Raw rewards of one episode, in order."""
        start = int(self.buffer.episode_starts[episode])
        length = int(self.buffer.episode_lengths[episode])
        return self.rewards[start : start + length].cpu().numpy()

    def env_actions(self, actions: th.Tensor) -> th.Tensor:
        """[-1, 1] -> the action Box's units, ``(rows, action_dim)``."""
        space = self.buffer.action_space
        assert isinstance(space, spaces.Box)
        low = th.as_tensor(space.low.reshape(-1), dtype=th.float32, device=actions.device)
        high = th.as_tensor(space.high.reshape(-1), dtype=th.float32, device=actions.device)
        return low + 0.5 * (actions + 1.0) * (high - low)


# --------------------------------------------------------------------------------------------- the model
class ValueModel:
    """
    What the metrics read from a model: ``q(s, a)`` (``(rows,)``, actions in [-1, 1]), the policy's actions
    ``act(s)`` (``(rows, action_dim)`` in [-1, 1]), its discount ``gamma`` and the reward transform its critic
    was trained with. :meth:`from_model` builds it for any SB3 model with a ``policy.critic`` (ours, SB3's
    TD3/SAC/DDPG, FQE); a subclass may give any other Q and policy (tests use analytic ones).

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


def _reward_transform(model: Any) -> RewardTransform:
    transform = getattr(getattr(model, "replay_buffer", None), "reward_transform", None)
    if isinstance(transform, RewardTransform):
        return transform
    spec = (getattr(model, "replay_buffer_kwargs", None) or {}).get("reward_transform")
    if spec is None or isinstance(spec, str):  # a rule never resolved against a dataset
        return RewardTransform()
    return resolve_reward_transform(spec)


#: how the Q-functions of an ensemble are combined into one value
CRITIC_REDUCTIONS = ("mean", "min", "q1")


class _SB3ValueModel(ValueModel):
    def __init__(self, model: Any, deterministic: bool, reduction: str) -> None:
        super().__init__(float(getattr(model, "gamma", 0.99)), _reward_transform(model))
        if reduction not in CRITIC_REDUCTIONS:
            raise ValueError(f"critic_reduction: expected one of {CRITIC_REDUCTIONS}, found {reduction!r}")
        from sb3_offline.ope.fqe import FQE

        self.model = model
        self.reduction = reduction
        self.policy = model.policy
        self.critic = getattr(self.policy, "critic", None)
        self.to_critic_units = getattr(self.policy, "critic_action_input", None)
        self.evaluator = (
            model.evaluator()
            if isinstance(model, FQE)
            else EvaluationPolicy(model, model.observation_space, model.action_space, deterministic=deterministic)
        )

    @property
    def has_critic(self) -> bool:
        return self.critic is not None

    def q(self, observations: TensorObs, actions: th.Tensor) -> th.Tensor:
        if self.critic is None:
            raise ValueError(f"model: expected a critic (policy.critic), found {type(self.model).__name__} without one")
        was_training = self.policy.training
        self.policy.set_training_mode(False)
        try:
            with th.no_grad():
                device = self.policy.device
                obs = (
                    {k: v.to(device) for k, v in observations.items()}
                    if isinstance(observations, dict)
                    else observations.to(device)
                )
                inputs = actions.to(device)
                if self.to_critic_units is not None:
                    inputs = self.to_critic_units(inputs)
                values = th.cat(self.critic(obs, inputs), dim=1)
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


# --------------------------------------------------------------------------------------------- values
class _Values:
    """The quantities the metrics share, computed once per evaluation, on demand."""

    def __init__(self, model: ValueModel, data: HeldOutEpisodes, batch_size: int = VALUE_BATCH_SIZE) -> None:
        self.model, self.data, self.batch_size = model, data, batch_size

    def _batched(
        self, fn: Callable[[TensorObs, th.Tensor | None], th.Tensor], observations: TensorObs, actions: th.Tensor | None
    ) -> th.Tensor:
        n = self.data.n_rows
        parts = []
        for start in range(0, n, self.batch_size):
            rows = slice(start, start + self.batch_size)
            obs = (
                {k: v[rows] for k, v in observations.items()} if isinstance(observations, dict) else observations[rows]
            )
            parts.append(fn(obs, actions[rows] if actions is not None else None))
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


# --------------------------------------------------------------------------------------------- metrics
class OfflineMetric:
    """
    A number computed from a model and held-out episodes. ``higher_is_better`` is the direction a better
    model moves it in (``None``: a diagnostic with no direction, which cannot pick a best model).
    """

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool | None] = None
    needs_critic: ClassVar[bool] = True

    def compute(self, values: _Values) -> float:
        raise NotImplementedError

    def __call__(self, model: ValueModel | Any, data: HeldOutEpisodes) -> float:
        """The metric of ``model`` (a :class:`ValueModel` or an SB3 model) on ``data``."""
        value_model = model if isinstance(model, ValueModel) else ValueModel.from_model(model)
        return self.compute(_Values(value_model, data))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class TDError(OfflineMetric):
    """
    Mean squared TD error on the held-out transitions,
    ``mean_t (Q(s_t, a_t) - r'_t - gamma * (1 - termination_t) * Q(s_{t+1}, pi(s_{t+1})))^2``, with ``r'`` the
    rewards as the critic learnt them (its reward transform) and timeouts bootstrapping. Lower is better: a
    large error on held-out data is a critic that does not generalise (d3rlpy's ``TDErrorEvaluator``).
    """

    name = "td_error"
    higher_is_better = False

    def compute(self, values: _Values) -> float:
        data, model = values.data, values.model
        rewards = model.reward_transform(data.rewards)
        target = rewards + model.gamma * (1.0 - data.terminations) * values.q_next
        return float((values.q_data - target).pow(2).mean())


class InitialStateValue(OfflineMetric):
    """
    ``mean over held-out episodes of Q(s_0, pi(s_0))``: the return the critic promises from the start states
    (d3rlpy's ``InitialStateValueEstimationEvaluator``; Paine et al. 2020). Higher is better (it is also where
    an overestimating critic shows).
    """

    name = "initial_state_value"
    higher_is_better = True

    def compute(self, values: _Values) -> float:
        return float(values.q_policy[values.data.episode_starts].mean())


class AverageValue(OfflineMetric):
    """
    ``mean_t Q(s_t, pi(s_t))`` over the held-out states: the scale of the critic's values (d3rlpy's
    ``AverageValueEstimationEvaluator``). A diagnostic with no direction: a growing value may be overestimation.
    """

    name = "average_value"
    higher_is_better = None

    def compute(self, values: _Values) -> float:
        return float(values.q_policy.mean())


class DiscountedAdvantageSum(OfflineMetric):
    """
    ``mean_t sum_{t' >= t} gamma^{t' - t} A(s_{t'}, a_{t'})`` with ``A(s, a) = Q(s, a) - Q(s, pi(s))``, summed within
    each held-out episode (Murphy 2005; d3rlpy's ``DiscountedSumOfAdvantageEvaluator``). Lower is better: the
    policy's actions have higher values than the data's.
    """

    name = "discounted_advantage_sum"
    higher_is_better = False

    def compute(self, values: _Values) -> float:
        advantages = (values.q_data - values.q_policy).cpu().numpy()
        ends = values.data.episode_ends.cpu().numpy()
        return float(discounted_returns_to_go(advantages, ends, values.model.gamma).mean())


class ActionDifference(OfflineMetric):
    """
    ``mean_t ||a_t - pi(s_t)||^2`` (summed over action dimensions) in the env's units, the dataset's own (d3rlpy's
    ``ContinuousActionDiffEvaluator``). Lower is better when the held-out data are near-optimal. Needs no critic.
    """

    name = "action_difference"
    higher_is_better = False
    needs_critic = False

    def compute(self, values: _Values) -> float:
        data = values.data
        difference = data.env_actions(data.actions) - data.env_actions(values.policy_actions)
        return float(difference.pow(2).sum(dim=1).mean())


def fetch_success(rewards: np.ndarray) -> bool:
    """
    The success signal of the Fetch tasks (gymnasium-robotics) from an episode's rewards: the env's
    ``info["is_success"]`` is ``distance(achieved, desired) < distance_threshold`` and its sparse reward is
    ``-(distance > distance_threshold)``, so the episode succeeded (HER's success at the final step) when its
    last reward is 0. Datasets keep no infos; the rewards carry it.
    """
    rewards = np.asarray(rewards).reshape(-1)
    return bool(len(rewards) and rewards[-1] == 0.0)


class SoftOPC(OfflineMetric):
    """
    Soft off-policy classification (Irpan et al., NeurIPS 2019; d3rlpy's ``SoftOPCEvaluator``):
    ``mean Q(s, a) over the rows of successful episodes - mean Q(s, a) over all rows``, at the dataset's actions.
    Higher is better: the critic values what succeeded. NaN when no held-out episode succeeded.

    Datasets keep no infos, so success is read from the rewards: an undiscounted episode return of at least
    ``return_threshold`` (d3rlpy's rule), or ``success_fn(episode_rewards) -> bool`` (e.g. :func:`fetch_success`).

    :param return_threshold: the return at or above which an episode succeeded
    :param success_fn: a function of an episode's raw rewards that says whether it succeeded
    """

    name = "soft_opc"
    higher_is_better = True

    def __init__(
        self, return_threshold: float | None = None, success_fn: Callable[[np.ndarray], bool] | None = None
    ) -> None:
        if (return_threshold is None) == (success_fn is None):
            raise ValueError(
                "soft_opc: expected exactly one success signal, return_threshold=... or success_fn=..., found "
                + ("both" if return_threshold is not None else "neither")
            )
        self.return_threshold = return_threshold
        self.success_fn = success_fn

    def successes(self, data: HeldOutEpisodes) -> np.ndarray:
        """Per held-out episode, whether it succeeded."""
        if self.success_fn is not None:
            return np.array([bool(self.success_fn(data.episode_rewards(e))) for e in range(data.n_episodes)])
        assert self.return_threshold is not None
        return data.episode_returns >= self.return_threshold

    def compute(self, values: _Values) -> float:
        data = values.data
        success = th.as_tensor(self.successes(data), device=values.q_data.device)
        episode_of_row = data.buffer.episode_ids[: data.n_rows]
        rows = success[episode_of_row]
        if not bool(rows.any()):
            return float("nan")
        q = values.q_data
        return float(q[rows].mean() - q.mean())

    def __repr__(self) -> str:
        signal = (
            f"return_threshold={self.return_threshold}" if self.success_fn is None else f"success_fn={self.success_fn}"
        )
        return f"SoftOPC({signal})"


#: the metrics by name (SoftOPC needs its success signal: pass an instance)
METRICS: dict[str, type[OfflineMetric]] = {
    cls.name: cls for cls in (TDError, InitialStateValue, AverageValue, DiscountedAdvantageSum, ActionDifference)
}
#: the metrics :class:`~sb3_offline.ope.OfflineEvalCallback` computes when none are named (those that need a critic
#: are left out for a model without one)
DEFAULT_METRICS = ("td_error", "initial_state_value", "average_value", "discounted_advantage_sum", "action_difference")


def resolve_metrics(metrics: Sequence[str | OfflineMetric] | None) -> list[OfflineMetric]:
    """Metric names (:data:`METRICS`) or instances -> instances; ``None``: :data:`DEFAULT_METRICS`."""
    resolved = []
    for metric in DEFAULT_METRICS if metrics is None else metrics:
        if isinstance(metric, OfflineMetric):
            resolved.append(metric)
        elif metric == SoftOPC.name:
            raise ValueError("metrics: 'soft_opc' needs its success signal; pass SoftOPC(return_threshold=...) instead")
        elif metric in METRICS:
            resolved.append(METRICS[metric]())
        else:
            raise ValueError(
                f"metrics: expected names among {sorted(METRICS)} or OfflineMetric instances, found {metric!r}"
            )
    names = [m.name for m in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics: expected each metric once, found {names}")
    return resolved


def evaluate_offline(
    model: Any,
    dataset: DatasetSource | HeldOutEpisodes,
    metrics: Sequence[str | OfflineMetric] | None = None,
    deterministic: bool = True,
    critic_reduction: str = "mean",
) -> dict[str, float]:
    """
    The offline metrics of ``model`` on held-out episodes, by name. A model without a critic (BC) gets the
    metrics that need none; naming one that needs a critic for it is an error.

    :param model: an SB3 model (ours, SB3's, FQE) or a :class:`ValueModel`
    :param dataset: the held-out episodes (any dataset source, or :class:`HeldOutEpisodes`)
    :param metrics: names or instances (default :data:`DEFAULT_METRICS`)
    :param deterministic: the policy's deterministic actions
    :param critic_reduction: ``"mean"`` (d3rlpy's), ``"min"`` or ``"q1"`` over the model's Q-functions
    """
    value_model = (
        model if isinstance(model, ValueModel) else ValueModel.from_model(model, deterministic, critic_reduction)
    )
    chosen = resolve_metrics(metrics)
    if not value_model.has_critic:
        needing = [m.name for m in chosen if m.needs_critic]
        if metrics is None:
            chosen = [m for m in chosen if not m.needs_critic]
        elif needing:
            raise ValueError(f"metrics: {needing} need a critic, and {type(model).__name__} has none")
    if isinstance(model, ValueModel):
        data = HeldOutEpisodes.from_source(dataset, _space(dataset, "observation"), _space(dataset, "action"), "cpu")
    else:
        data = HeldOutEpisodes.from_source(dataset, model.observation_space, model.action_space, model.device)
    values = _Values(value_model, data)
    return {metric.name: metric.compute(values) for metric in chosen}


def _space(dataset: Any, kind: str) -> spaces.Space:
    if isinstance(dataset, HeldOutEpisodes):
        return getattr(dataset.buffer, f"{kind}_space")
    raise ValueError(
        "dataset: expected HeldOutEpisodes with a ValueModel (the spaces come from them), found "
        f"{type(dataset).__name__}"
    )


__all__ = [
    "CRITIC_REDUCTIONS",
    "DEFAULT_METRICS",
    "METRICS",
    "ActionDifference",
    "AverageValue",
    "DiscountedAdvantageSum",
    "HeldOutEpisodes",
    "InitialStateValue",
    "OfflineMetric",
    "SoftOPC",
    "TDError",
    "ValueModel",
    "evaluate_offline",
    "fetch_success",
    "resolve_metrics",
]
