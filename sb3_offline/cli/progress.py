"""
``sb3-offline train``'s progress where no progress bar is drawn (output to a file: CI, ``nohup``, a notebook): a
time estimate after the first timed gradient steps, then a line per evaluation.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_offline.common.episodes import normalized_return
from sb3_offline.common.text import duration

#: gradient steps left out of the time estimate (the first ones build the graphs, warm the caches)
WARMUP_STEPS = 10
#: gradient steps timed for the estimate printed before the long phase
TIMED_STEPS = 100


class ProgressLines(BaseCallback):
    """
    Prints, after ``WARMUP_STEPS + TIMED_STEPS`` gradient steps, ``about <time> for <n> gradient steps`` (the
    updates' rate, evaluations not counted), then after each evaluation of ``eval_callback`` (SB3's
    ``EvalCallback``; placed after it in the callback list) one line: the step, the mean return and its std, the
    normalized score, the time elapsed and the time left (at the rate so far, evaluations included).

    :param total_steps: the gradient steps of the run
    :param eval_callback: the evaluations to report (``None``: the time estimate only)
    :param reference_scores: ``(random, expert)`` returns of the normalized score, or ``None``
    """

    def __init__(
        self, total_steps: int, eval_callback: Any = None, reference_scores: tuple[float, float] | None = None
    ) -> None:
        super().__init__(verbose=0)
        self.total_steps = int(total_steps)
        self.eval_callback = eval_callback
        self.reference_scores = reference_scores
        self._start = self._timed_from = 0.0
        self._reported = 0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._reported = 0

    def _on_step(self) -> bool:
        if self.n_calls == WARMUP_STEPS:
            self._timed_from = time.perf_counter()
        elif self.n_calls == WARMUP_STEPS + TIMED_STEPS and self.total_steps > self.n_calls:
            rate = TIMED_STEPS / max(time.perf_counter() - self._timed_from, 1e-9)
            print(
                f"about {duration(self.total_steps / rate)} for {self.total_steps} gradient steps "
                f"({rate:.0f}/s over steps {WARMUP_STEPS}-{WARMUP_STEPS + TIMED_STEPS}; evaluations not counted)",
                flush=True,
            )
        callback = self.eval_callback
        if callback is not None and len(callback.evaluations_timesteps) > self._reported:
            self._reported = len(callback.evaluations_timesteps)
            print(self._evaluation_line(callback), flush=True)
        return True

    def _evaluation_line(self, callback: Any) -> str:
        step = int(callback.evaluations_timesteps[-1])
        returns = np.asarray(callback.evaluations_results[-1], dtype=np.float64)
        mean = float(returns.mean())
        score = ""
        if self.reference_scores is not None and self.reference_scores[0] != self.reference_scores[1]:
            score = f", normalized {float(normalized_return(mean, *self.reference_scores)):.1f}"  # type: ignore[arg-type]
        elapsed = time.perf_counter() - self._start
        left = elapsed / max(self.n_calls, 1) * max(self.total_steps - self.n_calls, 0)
        return (
            f"step {step}/{self.total_steps}: return {mean:.1f} ± {float(returns.std()):.1f} over "
            f"{len(returns)} episodes{score}; elapsed {duration(elapsed)}, left ~{duration(left)}"
        )


__all__ = ["ProgressLines"]
