"""
HER's input normaliser with statistics fixed from a dataset: a use of the shared normaliser
(:mod:`sb3_offline.common.normalization`).

Andrychowicz et al., "Hindsight Experience Replay", 2017 (appendix: observations and goals are
normalised to zero mean and unit variance, then clipped to [-5, 5]). Online, SB3 does this with
``VecNormalize``; offline, the data do not change, so the statistics are computed once from the
dataset and kept in the policy (its buffers are saved and loaded with it), and ``predict`` takes
raw observations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_offline.common.normalization import NormalizedCombinedExtractor
from sb3_offline.datasets.loaders import DatasetSource, load_transitions
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.her.goals import GOAL_KEYS


def normalizer_kwargs(
    dataset: DatasetSource | Transitions,
    eps: float = 0.01,
    clip: float = 5.0,
    action_space: spaces.Space | None = None,
) -> dict[str, Any]:
    """
    ``policy_kwargs`` entries that normalise a goal-conditioned policy's inputs with a dataset's
    statistics: ``policy_kwargs=dict(net_arch=[64, 64], **normalizer_kwargs(dataset))``.

    Each key gets the mean and standard deviation (at least ``eps``, HER's 0.01) of its observations;
    ``achieved_goal`` and ``desired_goal`` share one statistic, over both, so that a relabelled desired
    goal (an achieved goal) is normalised exactly as the achieved goal it came from. The extractor is
    the shared :class:`~sb3_offline.common.normalization.NormalizedCombinedExtractor` with
    ``eps_mode="max"`` and the statistics given (they are known before the buffer is built).

    :param dataset: the data (any source ``load_transitions`` reads) with ``Dict`` observations
    :param eps: lower bound of the standard deviations
    :param clip: the normalised inputs are clipped to ``[-clip, clip]``
    :param action_space: the env's action space, needed only to read an SB3 replay buffer
    :return: ``dict(features_extractor_class=NormalizedCombinedExtractor, features_extractor_kwargs=...)``
    """
    transitions = load_transitions(dataset, action_space=action_space)
    observations = transitions.observations
    if not isinstance(observations, dict):
        raise ValueError(f"{transitions.source}: field 'observations': expected a dict of arrays, found an array")
    arrays = {key: np.asarray(value, dtype=np.float64).reshape(len(value), -1) for key, value in observations.items()}
    pooled = dict(arrays)
    if set(GOAL_KEYS) <= set(arrays):
        goals = np.concatenate([arrays[key] for key in GOAL_KEYS])
        pooled.update({key: goals for key in GOAL_KEYS})
    mean = {key: [float(v) for v in values.mean(axis=0)] for key, values in pooled.items()}
    std = {key: [float(v) for v in np.maximum(values.std(axis=0), eps)] for key, values in pooled.items()}
    return dict(
        features_extractor_class=NormalizedCombinedExtractor,
        features_extractor_kwargs=dict(
            mean=mean,
            std=std,
            eps=eps,
            eps_mode="max",
            clip=clip,
            pooled_keys=[list(GOAL_KEYS)] if set(GOAL_KEYS) <= set(arrays) else [],
        ),
    )
