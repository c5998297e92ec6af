"""
HER's input normaliser with statistics fixed from a dataset, as an SB3 features extractor.

Andrychowicz et al., "Hindsight Experience Replay", 2017 (appendix: observations and goals are
normalised to zero mean and unit variance, then clipped to [-5, 5]). Online, SB3 does this with
``VecNormalize``; offline, the data do not change, so the statistics are computed once from the
dataset and kept in the policy (its buffers are saved and loaded with it), and ``predict`` takes
raw observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import CombinedExtractor

from sb3_offline.datasets.loaders import DatasetSource, load_transitions
from sb3_offline.datasets.transitions import Transitions
from sb3_offline.her.her_replay_buffer import GOAL_KEYS


class NormalizedCombinedExtractor(CombinedExtractor):
    """
    SB3's ``CombinedExtractor`` (each key flattened, then concatenated) on inputs normalised with
    fixed statistics: ``clip((x - mean) / std, -clip, clip)`` per key (HER's normaliser, clip 5).

    :param observation_space: the env's ``Dict`` observation space
    :param mean: per key, the mean of that key's observations (a sequence of its flattened size)
    :param std: per key, the standard deviation (same layout; every entry > 0)
    :param clip: the normalised inputs are clipped to ``[-clip, clip]``
    :param cnn_output_dim: as ``CombinedExtractor`` (image keys are not normalised here)
    :param normalized_image: as ``CombinedExtractor``
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        mean: dict[str, Sequence[float]],
        std: dict[str, Sequence[float]],
        clip: float = 5.0,
        cnn_output_dim: int = 256,
        normalized_image: bool = False,
    ) -> None:
        super().__init__(observation_space, cnn_output_dim=cnn_output_dim, normalized_image=normalized_image)
        if clip <= 0:
            raise ValueError(f"clip: expected > 0, found {clip}")
        self.clip = float(clip)
        self.normalized_keys: list[str] = []
        for name, stats in (("mean", mean), ("std", std)):
            if set(stats) != set(observation_space.spaces):
                raise ValueError(
                    f"{name}: expected the keys of the observation space {sorted(observation_space.spaces)}, "
                    f"found {sorted(stats)}"
                )
        for key, subspace in observation_space.spaces.items():
            size = int(np.prod(subspace.shape)) if subspace.shape else 1
            key_mean = np.asarray(mean[key], dtype=np.float32).reshape(-1)
            key_std = np.asarray(std[key], dtype=np.float32).reshape(-1)
            for name, values in (("mean", key_mean), ("std", key_std)):
                if values.shape != (size,):
                    raise ValueError(f"{name}['{key}']: expected {size} values, found {values.shape[0]}")
            if not np.all(key_std > 0):
                raise ValueError(f"std['{key}']: expected values > 0, found {key_std}")
            shape = subspace.shape or (1,)
            self.register_buffer(f"mean_{key}", th.as_tensor(key_mean.reshape(shape)))
            self.register_buffer(f"std_{key}", th.as_tensor(key_std.reshape(shape)))
            self.normalized_keys.append(key)

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:  # type: ignore[override]
        normalized = {}
        for key, value in observations.items():
            mean, std = getattr(self, f"mean_{key}"), getattr(self, f"std_{key}")
            normalized[key] = ((value - mean) / std).clamp(-self.clip, self.clip)
        return super().forward(normalized)


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
    goal (an achieved goal) is normalised exactly as the achieved goal it came from.

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
        features_extractor_kwargs=dict(mean=mean, std=std, clip=clip),
    )
