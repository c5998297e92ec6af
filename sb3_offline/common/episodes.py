"""
Episodes of a flat dataset, computed once for the whole package: where they start, their returns, returns-to-go.

The rule everywhere: an episode is a contiguous run of rows closed by a termination or a truncation; the end of
the data closes the last run (a tail no flag closes is an episode that was cut by the end of the data).
:func:`episode_returns` can leave such a tail out (``complete_only=True``: the mean return of the episodes that
really ended, as a behaviour policy's return is reported).
"""

from __future__ import annotations

import numpy as np


def episode_bounds(episode_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    ``(starts, lengths)`` (int64) of the episodes closed by ``episode_ends`` and by the end of the data.

    :param episode_ends: ``(N,)`` bool, True on the row that closes an episode (termination or truncation)
    """
    closes = np.asarray(episode_ends, dtype=bool).reshape(-1).copy()
    if len(closes):
        closes[-1] = True
    last_rows = np.flatnonzero(closes).astype(np.int64)
    starts = np.concatenate([np.zeros(min(len(last_rows), 1), dtype=np.int64), last_rows[:-1] + 1])
    return starts, last_rows - starts + 1


def episode_returns(rewards: np.ndarray, episode_ends: np.ndarray, complete_only: bool = False) -> np.ndarray:
    """
    Undiscounted return (float64 sum) of each episode (see the module's rule).

    :param rewards: ``(N,)`` rewards
    :param episode_ends: ``(N,)`` bool, True on the row that closes an episode
    :param complete_only: leave out a last run that no flag closes (cut by the end of the data)
    """
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    if len(rewards) == 0:
        return np.zeros(0, dtype=np.float64)
    ends = np.asarray(episode_ends, dtype=bool).reshape(-1)
    starts, _ = episode_bounds(ends)
    returns = np.add.reduceat(rewards, starts)
    return returns[:-1] if complete_only and not ends[-1] else returns


def discounted_returns_to_go(rewards: np.ndarray, episode_ends: np.ndarray, gamma: float) -> np.ndarray:
    """
    Returns-to-go of consecutive transitions: ``G_t = r_t + gamma * G_{t+1} * (1 - end_t)``, with
    ``G = 0`` after the last row. An episode end (termination *or* truncation) and the end of the data
    stop the sum: nothing is added for the unseen steps after a time-limit cut, as Cal-QL's
    ``calc_return_to_go`` does (nakamotoo/Cal-QL, ``JaxCQL/replay_buffer.py``:
    ``return_to_go[-i-1] = rewards[-i-1] + gamma * prev_return * (1 - terminals[-i-1])`` from
    ``prev_return = 0`` at each trajectory's last step).

    Computed without a loop over rows: the linear recurrence ``G_t = a_t G_{t+1} + r_t`` is solved by a
    log-depth parallel suffix scan (``ceil(log2 N)`` vectorised passes), in float64.

    :param rewards: ``(N,)`` rewards (already transformed)
    :param episode_ends: ``(N,)`` bool, True on the rows that end an episode
    :param gamma: discount factor
    :return: ``(N,)`` float64 returns-to-go
    """
    returns = np.asarray(rewards, dtype=np.float64).reshape(-1).copy()
    coef = np.where(np.asarray(episode_ends, dtype=bool).reshape(-1), 0.0, float(gamma))
    n = len(returns)
    offset = 1
    # invariant: G_t = returns_t + coef_t * G_{t + offset} (G = 0 past the data's end)
    while offset < n:
        returns[:-offset] = returns[:-offset] + coef[:-offset] * returns[offset:]
        coef[:-offset] = coef[:-offset] * coef[offset:]
        offset *= 2
    return returns


def normalized_return(returns: object, ref_min: float, ref_max: float) -> object:
    """
    D4RL's normalized score: ``100 * (returns - ref_min) / (ref_max - ref_min)`` (0: a random policy, 100: the
    expert), for a float (a float back) or an array.

    :raises ValueError: ``ref_max == ref_min``
    """
    if ref_max == ref_min:
        raise ValueError(f"ref_max_score: expected a value != ref_min_score, found both {ref_min}")
    normalized = 100.0 * (np.asarray(returns, dtype=np.float64) - ref_min) / (ref_max - ref_min)
    return float(normalized) if normalized.ndim == 0 else normalized
