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
from typing import Any, ClassVar

import numpy as np
import torch as th

from sb3_offline.common.episodes import discounted_returns_to_go
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.ope.held_out import HeldOutEpisodes
from sb3_offline.ope.value_model import CRITIC_REDUCTIONS, ValueModel, _Values


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
    On a ``Discrete`` action space: the share of rows where ``a_t != pi(s_t)`` (1 - d3rlpy's
    ``DiscreteActionMatchEvaluator``).
    """

    name = "action_difference"
    higher_is_better = False
    needs_critic = False

    def compute(self, values: _Values) -> float:
        data = values.data
        if data.discrete:
            return float((data.actions.reshape(-1).float() != values.policy_actions.reshape(-1)).float().mean())
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


def metrics_for_model(
    metrics: Sequence[str | OfflineMetric] | None, value_model: ValueModel, model: Any
) -> list[OfflineMetric]:
    """
    :func:`resolve_metrics` for one model: a model without a critic (BC) keeps the metrics that need none when
    none were named; naming one that needs a critic for it is an error.
    """
    chosen = resolve_metrics(metrics)
    needing = [m.name for m in chosen if m.needs_critic]
    if value_model.has_critic or not needing:
        return chosen
    if metrics is None:
        return [m for m in chosen if not m.needs_critic]
    raise ValueError(f"metrics: {needing} need a critic, and {type(model).__name__} has none")


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
    chosen = metrics_for_model(metrics, value_model, model)
    if not isinstance(model, ValueModel):
        data = HeldOutEpisodes.from_source(dataset, model.observation_space, model.action_space, model.device)
    elif isinstance(dataset, HeldOutEpisodes):
        data = dataset
    else:
        raise ValueError(
            "dataset: expected HeldOutEpisodes with a ValueModel (the spaces come from them), found "
            f"{type(dataset).__name__}"
        )
    values = _Values(value_model, data)
    return {metric.name: metric.compute(values) for metric in chosen}


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
    "metrics_for_model",
    "resolve_metrics",
]
