"""
What :class:`~sb3_offline.ope.FQE` is given, made ready: the evaluated policy (a model, a function or a checkpoint
path), the env its spaces come from, and the policy's actions at every state and next state of the dataset, computed
once before fitting.
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.observations import obs_index
from sb3_offline.datasets.loaders import DatasetSource, recover_env
from sb3_offline.ope.evaluation_policy import EvaluationPolicy


def resolve_env(
    env: GymEnv | str | None,
    dataset: DatasetSource | None,
    replay_buffer_kwargs: dict[str, Any] | None,
    evaluation_policy: Any,
) -> GymEnv:
    """The env given (an id is made), else the dataset's, else the evaluated model's (its spaces are all FQE needs)."""
    if isinstance(env, str):
        import gymnasium as gym

        return gym.make(env)
    if env is not None:
        return env
    source = dataset if dataset is not None else (replay_buffer_kwargs or {}).get("dataset")
    if source is not None:
        try:
            return recover_env(source)
        except ValueError:
            pass
    model_env = evaluation_policy.get_env() if isinstance(evaluation_policy, BaseAlgorithm) else None
    if model_env is not None:
        return model_env
    raise ValueError(
        "env: expected an environment (env=...), a dataset that records one, or an evaluated model with an env, "
        "found none"
    )


def dataset_policy_actions(
    evaluator: EvaluationPolicy, buffer: OfflineReplayBuffer, n_samples: int
) -> tuple[th.Tensor, th.Tensor]:
    """
    The evaluated policy's actions at every row's state and next state of ``buffer``, each
    ``(rows, n_samples, action_dim)`` in [-1, 1], on the buffer's device (states first, then next states).
    """
    rows = slice(0, buffer.size())
    actions = evaluator.actions(obs_index(buffer.observations, rows), n_samples)
    next_actions = evaluator.actions(obs_index(buffer.next_observations, rows), n_samples)
    return actions, next_actions


__all__ = ["dataset_policy_actions", "resolve_env"]
