"""
What :class:`~sb3_offline.ope.FQE` is given, made ready: the evaluated policy (a model, a function or a checkpoint
path), the env its spaces come from, and the policy's actions at every state and next state of the dataset, computed
once before fitting (once per distinct state).
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import GymEnv

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.observations import obs_index, obs_values
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


def following_states(observations: Any, next_observations: Any) -> th.Tensor:
    """
    Per row, whether its next state is the next row's state, bit for bit (every key of a ``Dict``): ``(rows,)``
    bool, the last row ``False``. Inside an episode it is; at an episode's end (and in data whose next states
    were stored apart from the states, e.g. rounded) it is not.
    """
    values = obs_values(observations)
    rows = values[0].shape[0]
    same = th.zeros(rows, dtype=th.bool, device=values[0].device)
    if rows > 1:
        following = th.ones(rows - 1, dtype=th.bool, device=values[0].device)
        for value, next_value in zip(values, obs_values(next_observations), strict=True):
            following &= (next_value[:-1] == value[1:]).reshape(rows - 1, -1).all(dim=1)
        same[:-1] = following
    return same


def dataset_policy_actions(
    evaluator: EvaluationPolicy, buffer: OfflineReplayBuffer, n_samples: int
) -> tuple[th.Tensor, th.Tensor]:
    """
    The evaluated policy's actions at every row's state and next state of ``buffer``, each
    ``(rows, n_samples, action_dim)`` in [-1, 1], on the buffer's device.

    The policy is asked once per distinct state: at every state, then only at the next states that are not the next
    row's state (:func:`following_states`: the episodes' last next states); a next state that is the next row's
    state gets that row's actions (the same draws for a policy that samples, e.g. BCQ's candidates). Inside an
    episode the next state is the next row's state, so this is about half the policy's work of asking at every
    state and next state: for BCQ (100 candidates per state) the bulk of FQE's set-up.
    """
    rows = slice(0, buffer.size())
    observations = obs_index(buffer.observations, rows)
    next_observations = obs_index(buffer.next_observations, rows)
    actions = evaluator.actions(observations, n_samples)
    following = following_states(observations, next_observations)
    next_actions = th.empty_like(actions)
    shared = following.nonzero().squeeze(1)
    next_actions[shared] = actions[shared + 1]
    fresh = (~following).nonzero().squeeze(1)
    if len(fresh):
        next_actions[fresh] = evaluator.actions(obs_index(next_observations, fresh), n_samples).to(actions.device)
    return actions, next_actions


__all__ = ["dataset_policy_actions", "following_states", "resolve_env"]
