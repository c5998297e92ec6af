"""The buffer's sampler: rows drawn on the device, uniformly or with a fixed offline share (Cal-QL's mixing)."""

from __future__ import annotations

import torch as th

from sb3_offline.buffers.online import OnlineRing


def checked_offline_fraction(offline_fraction: float | None) -> float | None:
    """``offline_fraction`` as a float in [0, 1] (or ``None``); ``ValueError`` naming it otherwise."""
    if offline_fraction is not None and (
        isinstance(offline_fraction, bool)
        or not isinstance(offline_fraction, int | float)
        or not 0.0 <= offline_fraction <= 1.0
    ):
        raise ValueError(f"offline_fraction: expected None or a number in [0, 1], found {offline_fraction!r}")
    return None if offline_fraction is None else float(offline_fraction)


def sample_rows(
    ring: OnlineRing,
    dataset_size: int,
    running_lengths: list[int] | None,
    batch_size: int,
    offline_fraction: float | None,
    device: th.device,
) -> th.Tensor:
    """
    ``batch_size`` row indices, drawn with ``th.randint`` on ``device`` (no host sync: safe inside a CUDA graph; what
    the draw depends on on the host is the buffer's ``graph_key``).

    - ``offline_fraction`` ``None``: uniformly among the rows held (one draw: the dataset's rows, then the online ones);
    - ``offline_fraction`` ``f``: ``int(batch_size * f)`` rows uniformly among the dataset's, the others uniformly
      among the online rows, with replacement however few these are (as the online buffer of Cal-QL's authors,
      ``ReplayBuffer.sample``, is sampled with ``np.random.randint``). While no online row can be drawn, or without
      a dataset, the batch is drawn as with ``None``;
    - ``running_lengths`` (per env, the length of its running online episode): those rows are never drawn.

    :return: ``(batch_size,)`` int64 row indices on ``device``
    """
    counts = ring.counts(running_lengths)
    n_online = sum(counts)
    if dataset_size + n_online == 0:
        raise ValueError(
            f"OfflineReplayBuffer.sample: expected transitions of finished episodes, found only the {ring.size} rows "
            "of online episodes still running"
        )
    if offline_fraction is None or n_online == 0 or dataset_size == 0:
        draws = th.randint(0, dataset_size + n_online, (batch_size,), device=device)
        if running_lengths is None or n_online == 0:
            return draws  # the dataset's rows, then the online ones: row = draw
        return th.where(draws < dataset_size, draws, ring.rows((draws - dataset_size).clamp(min=0), counts))
    n_offline = int(batch_size * offline_fraction)
    offline = th.randint(0, dataset_size, (n_offline,), device=device)
    draws = th.randint(0, n_online, (batch_size - n_offline,), device=device)
    online = ring.rows(draws, counts) if running_lengths is not None else draws + dataset_size
    return th.cat([offline, online])
