"""
Whether an FQE fit has settled: its estimate traced during ``learn`` (:class:`EstimateTrace`) and judged by
:func:`settling` (the estimate's relative change over the last checks), for ``sb3-offline ope``'s warning.

FQE propagates the reward one step per target update: with ``gamma`` 0.99 and d3rlpy's 100 gradient steps between
target updates, the estimate keeps moving for thousands of gradient steps. Measured on the shipped
``pendulum/imperfect-v0`` (d3rlpy's defaults, the estimate every 1,000 steps): for a policy near the data's (TD3+BC
after 3,000 steps) it reaches -198 at 6,000 steps and then stays within 5%, so a fit of 10,000 steps
(:data:`PENDULUM_SETTLING_STEPS`, ``sb3-offline ope``'s default) passes the rule below and one of 1,000 does not;
for a policy far from the data (a hand-written controller) it never settles (-398 at 12,000 steps, +66 at 35,000,
a value no Pendulum return has). A ranking made from estimates that are still moving can be upside down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

#: checks of the estimate over one fit, evenly spaced
N_CHECKS = 10
#: the last that many checks are compared
WINDOW = 4
#: the largest relative change over the window that counts as settled
TOLERANCE = 0.05
#: FQE gradient steps (d3rlpy's defaults: batch 100, target update every 100 steps, gamma 0.99) after which the
#: estimate of a policy near the data's on the shipped ``pendulum/imperfect-v0`` passes :func:`settling`
PENDULUM_SETTLING_STEPS = 10_000


@dataclass
class Settling:
    """
    How much an FQE estimate still moved at the end of its fit.

    :param steps: the gradient steps of each check
    :param values: the estimate (discounted, mean ``Q(s0, pi(s0))``) at each check
    :param change: the largest relative change over the last :data:`WINDOW` checks
        (``(max - min) / |last|``; ``inf`` with fewer checks than that)
    :param settled: ``change <= tolerance``
    """

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    change: float = float("inf")
    settled: bool = False

    def describe(self) -> str:
        """One line: settled or not, and by which measure."""
        if not np.isfinite(self.change):
            return f"not settled: fewer than {WINDOW} checks of the estimate"
        verdict = "settled" if self.settled else "not settled"
        return (
            f"{verdict}: the estimate moved {100 * self.change:.1f}% over the last {WINDOW} checks "
            f"(steps {self.steps[-WINDOW]}..{self.steps[-1]}; settled: <= {100 * TOLERANCE:.0f}%)"
        )


def settling(steps: list[int], values: list[float], window: int = WINDOW, tolerance: float = TOLERANCE) -> Settling:
    """
    An estimate has settled when, over its last ``window`` checks, it moved by at most ``tolerance`` of its last
    value: ``(max - min) / |last| <= tolerance``.

    :param steps: the gradient steps of the checks
    :param values: the estimate at each check
    :param window: checks compared
    :param tolerance: the largest relative change that counts as settled
    """
    if len(values) < window:
        return Settling(list(steps), list(values))
    last = np.asarray(values[-window:], dtype=np.float64)
    scale = max(abs(float(last[-1])), 1e-8)
    change = float((last.max() - last.min()) / scale)
    return Settling(list(steps), list(values), change, change <= tolerance)


class EstimateTrace(BaseCallback):
    """
    FQE's estimate (:meth:`~sb3_offline.ope.FQE.estimate`'s discounted value) every ``check_freq`` gradient steps of
    ``learn``; :attr:`result` judges it with :func:`settling`. It reads the Q-functions only: the fit's numbers are
    the same with or without it.

    :param check_freq: gradient steps between two checks (``total_steps // N_CHECKS`` fits :data:`N_CHECKS` checks)
    """

    def __init__(self, check_freq: int) -> None:
        super().__init__(verbose=0)
        if check_freq < 1:
            raise ValueError(f"check_freq: expected >= 1, found {check_freq}")
        self.check_freq = int(check_freq)
        self.steps: list[int] = []
        self.values: list[float] = []

    @classmethod
    def for_steps(cls, total_steps: int) -> EstimateTrace:
        """:data:`N_CHECKS` checks evenly over ``total_steps``."""
        return cls(max(1, total_steps // N_CHECKS))

    def _on_step(self) -> bool:
        if self.n_calls % self.check_freq == 0:
            model: Any = self.model
            self.steps.append(int(model.num_timesteps))
            self.values.append(float(model.estimate(n_bootstrap=1).value))
        return True

    @property
    def result(self) -> Settling:
        """:func:`settling` of the checks so far."""
        return settling(self.steps, self.values)


__all__ = ["N_CHECKS", "PENDULUM_SETTLING_STEPS", "TOLERANCE", "WINDOW", "EstimateTrace", "Settling", "settling"]
