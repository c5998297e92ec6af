"""A policy-value estimate with a bootstrap confidence interval over episodes, and its undiscounted form."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def bootstrap_interval(
    values: np.ndarray, confidence: float = 0.95, n_bootstrap: int = 1000, seed: int | None = 0
) -> tuple[float, float]:
    """
    Percentile bootstrap interval of the mean of ``values`` (one value per episode): ``n_bootstrap``
    resamples of the episodes with replacement, the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of their means. One value gives a zero-width interval.

    :param values: ``(n,)`` per-episode values
    :param confidence: coverage of the interval, in (0, 1)
    :param n_bootstrap: resamples
    :param seed: seed of the resampling
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a level in (0, 1), found {confidence}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap: expected >= 1, found {n_bootstrap}")
    if len(values) == 0:
        raise ValueError("values: expected at least one episode, found none")
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_bootstrap, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(low), float(high)


@dataclass
class PolicyValueEstimate:
    """
    The estimated value of a policy: ``mean over initial states s0 of Q(s0, pi(s0))``.

    ``value`` is the *discounted* value, ``E[sum_t gamma^t r_t]``, in the units of the rewards the estimator was
    fitted on. ``undiscounted`` is the same estimate in the units of the dataset's undiscounted episode return
    (raw rewards, summed over ``horizon`` steps), where the horizon allows it (see
    :func:`undiscounted_from_discounted`); otherwise ``None``.

    :param value: the estimate (mean over the initial states)
    :param ci_low: lower end of the bootstrap interval over episodes (the spread of the initial states; it does
        not include the estimator's own fitting error)
    :param ci_high: upper end
    :param confidence: coverage of the interval
    :param initial_values: ``Q(s0, pi(s0))`` per episode
    :param gamma: discount factor
    :param horizon: steps per episode used for ``undiscounted`` (``None``: not converted)
    :param undiscounted: the estimate in undiscounted-return units, or ``None``
    :param undiscounted_ci: its interval, or ``None``
    """

    value: float
    ci_low: float
    ci_high: float
    confidence: float
    initial_values: np.ndarray = field(repr=False)
    gamma: float
    horizon: int | None = None
    undiscounted: float | None = None
    undiscounted_ci: tuple[float, float] | None = None

    @property
    def n_episodes(self) -> int:
        return len(self.initial_values)


def undiscounted_from_discounted(
    value: float, gamma: float, horizon: int, reward_scale: float = 1.0, reward_shift: float = 0.0
) -> float:
    """
    A discounted value in the units of an undiscounted ``horizon``-step return:
    ``horizon * ((1 - gamma) * value - shift) / scale``.

    FQE's target bootstraps at time-limit cuts, so ``value`` estimates the discounted sum over an unending
    episode, ``sum_t gamma^t r'_t`` with ``r' = scale * r + shift`` (the buffer's ``reward_transform``, the
    identity by default). ``(1 - gamma) * value`` is the reward per step averaged with the discount's weights
    ``(1 - gamma) gamma^t`` (they sum to 1); undoing the reward transform and multiplying by the horizon gives
    the return of a ``horizon``-step episode. It is exact when the expected reward is the same at every step
    (a constant reward ``r`` gives ``r / (1 - gamma)`` and ``horizon * r``); otherwise the early steps weigh
    more than they do in the undiscounted return (an effective horizon ``1 / (1 - gamma)`` shorter than the
    episode). It is monotone in ``value``, so rankings are unchanged.

    :param value: the discounted value
    :param gamma: discount factor, in [0, 1)
    :param horizon: steps per episode (the time limit)
    :param reward_scale: ``scale`` of the reward transform the value is in
    :param reward_shift: ``shift`` of that transform
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma: expected a discount in [0, 1) to convert, found {gamma}")
    return float(horizon * ((1.0 - gamma) * value - reward_shift) / reward_scale)


__all__ = ["PolicyValueEstimate", "bootstrap_interval", "undiscounted_from_discounted"]
