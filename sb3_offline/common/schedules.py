"""
Learning-rate schedules: SB3's (a function of the progress remaining through the current ``learn``
call, 1 -> 0) and schedules over a fixed number of gradient steps, which do not restart when
``learn`` is called again.

An :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm` declares one learning rate per optimizer
(:meth:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm.learning_rates`) and asks each
for its value before every update: a :class:`StepSchedule` with the number of gradient updates done so
far (``_n_updates``, saved in checkpoints), any other callable with SB3's progress remaining.
"""

from __future__ import annotations

import math
from typing import Any

from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import FloatSchedule


class StepSchedule:
    """
    Base of the schedules over gradient steps: ``schedule(step)`` for ``step`` updates done so far.
    ``by_step`` tells the algorithm to pass the step count instead of the progress remaining.
    """

    by_step = True

    def __call__(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


#: a learning rate as the algorithms take it: a constant, an SB3 schedule or a :class:`StepSchedule`
LearningRate = float | Schedule | StepSchedule


class CosineDecaySchedule(StepSchedule):
    """
    ``initial * (alpha + (1 - alpha) * (1 + cos(pi * min(step, horizon) / horizon)) / 2)``: optax's
    ``cosine_decay_schedule`` (what IQL's authors decay the actor's learning rate with, over 1M steps).

    :param initial: the learning rate at step 0
    :param horizon: steps over which it decays (it stays at ``alpha * initial`` after)
    :param alpha: final value as a fraction of ``initial``
    """

    def __init__(self, initial: float, horizon: int, alpha: float = 0.0) -> None:
        if horizon < 1:
            raise ValueError(f"horizon: expected >= 1 gradient step, found {horizon}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha: expected a fraction in [0, 1], found {alpha}")
        self.initial, self.horizon, self.alpha = float(initial), int(horizon), float(alpha)

    def __call__(self, step: int) -> float:
        fraction = min(max(step, 0), self.horizon) / self.horizon
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return self.initial * (self.alpha + (1.0 - self.alpha) * cosine)

    def __repr__(self) -> str:
        return f"CosineDecaySchedule(initial={self.initial}, horizon={self.horizon}, alpha={self.alpha})"


class LinearStepSchedule(StepSchedule):
    """
    ``initial`` -> ``final`` linearly over ``horizon`` gradient steps, then ``final``.

    :param initial: the learning rate at step 0
    :param final: the learning rate from step ``horizon`` on
    :param horizon: steps of the ramp
    """

    def __init__(self, initial: float, final: float, horizon: int) -> None:
        if horizon < 1:
            raise ValueError(f"horizon: expected >= 1 gradient step, found {horizon}")
        self.initial, self.final, self.horizon = float(initial), float(final), int(horizon)

    def __call__(self, step: int) -> float:
        fraction = min(max(step, 0), self.horizon) / self.horizon
        return self.initial + fraction * (self.final - self.initial)

    def __repr__(self) -> str:
        return f"LinearStepSchedule(initial={self.initial}, final={self.final}, horizon={self.horizon})"


def as_schedule(value: float | Schedule | StepSchedule) -> Schedule | StepSchedule:
    """A constant as SB3's ``FloatSchedule``; schedules (SB3's or :class:`StepSchedule`) as they are."""
    if isinstance(value, StepSchedule):
        return value
    return FloatSchedule(value)


def schedule_value(schedule: Any, progress_remaining: float, step: int) -> float:
    """The value of ``schedule`` now: at ``step`` for a :class:`StepSchedule`, else at ``progress_remaining``."""
    if getattr(schedule, "by_step", False):
        return float(schedule(step))
    return float(schedule(progress_remaining))


def initial_value(value: float | Schedule | StepSchedule) -> float:
    """The value an optimizer is built with (step 0, progress remaining 1)."""
    return schedule_value(as_schedule(value), 1.0, 0)
