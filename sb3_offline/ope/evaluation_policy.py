"""The policy an off-policy estimate judges: any of our models, any SB3 model or policy, or a function obs -> action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space

from sb3_offline.common.observations import map_obs, obs_index, obs_len, obs_values

TensorObs = th.Tensor | dict[str, th.Tensor]

#: rows per call of the evaluated policy when its actions at many states are computed at once
DEFAULT_ACTION_BATCH_SIZE = 1024


def _has_images(space: spaces.Space) -> bool:
    if isinstance(space, spaces.Dict):
        return any(_has_images(sub) for sub in space.spaces.values())
    return is_image_space(space, check_channels=False)


def describe_policy(policy: Any) -> str:
    """A short name of an evaluated policy, for reports and checkpoints."""
    if isinstance(policy, BaseAlgorithm | BasePolicy):
        return type(policy).__name__
    return getattr(policy, "__qualname__", None) or getattr(policy, "__name__", None) or type(policy).__name__


class EvaluationPolicy:
    """
    The policy an off-policy estimate judges, made uniform: its actions at a batch of observations (tensors
    on any device), returned in SB3's [-1, 1] scale of the action Box (the scale the replay buffer holds the
    dataset's actions in), with ``n_samples`` draws per state.

    - An SB3 model (ours, or SB3's/sb3-contrib's ``BaseAlgorithm``) or an SB3 ``BasePolicy``: its policy's
      ``_predict(observations, deterministic)`` on the policy's device, in batches, no numpy round trip
      (what ``predict`` computes before it rescales the actions to the Box; a policy that does not squash its
      output has its actions clipped to the Box, as ``predict`` does). Image observations go through
      ``model.predict`` (it transposes channel-last images).
    - Any other object with a ``predict`` method (SB3's signature: ``predict(obs, deterministic=...)`` returning
      ``(actions, state)`` or just actions), called on numpy batches.
    - A plain function ``obs -> action`` (the env's units), called one observation at a time (``vectorized=False``,
      as a controller written for ``env.step`` expects) or on whole numpy batches (``vectorized=True``).

    Actions from a function or a ``predict`` are clipped to the action Box (the env would clip them) before they
    are rescaled. On a ``Discrete`` action space an action is its index, kept as it is (a float ``(rows, 1)`` in
    :meth:`actions`; an int64 index in :meth:`act`); an index outside ``0..n-1`` or not an integer is an error.

    :param policy: the model, SB3 policy, object with ``predict``, or function
    :param observation_space: the observation space of the data
    :param action_space: the action space (a bounded ``Box``, or a ``Discrete``)
    :param deterministic: ask for deterministic actions (``predict(deterministic=True)``); a plain function is
        called as it is
    :param vectorized: a plain function takes a batch of observations (and returns a batch of actions)
    :param batch_size: rows per call
    """

    def __init__(
        self,
        policy: Any,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        deterministic: bool = True,
        vectorized: bool = False,
        batch_size: int = DEFAULT_ACTION_BATCH_SIZE,
    ) -> None:
        if not isinstance(action_space, spaces.Box | spaces.Discrete):
            raise ValueError(f"action_space: expected a Box or a Discrete, found {type(action_space).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, found {batch_size}")
        self.policy = policy
        self.observation_space = observation_space
        self.action_space = action_space
        self.deterministic = bool(deterministic)
        self.vectorized = bool(vectorized)
        self.batch_size = int(batch_size)
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.action_shape = tuple(action_space.shape or ())
        self.action_dim = int(np.prod(self.action_shape))
        if isinstance(action_space, spaces.Discrete):
            self._low, self._high = np.zeros(1), np.full(1, float(action_space.n - 1))
        else:
            self._low = action_space.low.astype(np.float64).reshape(-1)
            self._high = action_space.high.astype(np.float64).reshape(-1)
        sb3_policy = policy.policy if isinstance(policy, BaseAlgorithm) else policy
        if isinstance(sb3_policy, BasePolicy):
            self._check_spaces(sb3_policy)
            self.kind = "predict" if _has_images(observation_space) else "sb3"
            self._sb3_policy: BasePolicy | None = sb3_policy
        elif hasattr(policy, "predict") and callable(policy.predict):
            self.kind, self._sb3_policy = "predict", None
        elif callable(policy):
            self.kind, self._sb3_policy = "function", None
        else:
            raise ValueError(
                f"policy: expected an SB3 model or policy, an object with predict(), or a function obs -> action, "
                f"found {type(policy).__name__}"
            )
        self.description = describe_policy(policy)

    def _check_spaces(self, policy: BasePolicy) -> None:
        action_space = policy.action_space
        if type(action_space) is not type(self.action_space) or action_space.shape != self.action_space.shape:
            raise ValueError(
                f"policy: expected a policy for the action space {self.action_space}, found one for {action_space}"
            )
        obs_space = policy.observation_space
        if isinstance(obs_space, spaces.Dict) != isinstance(self.observation_space, spaces.Dict) or (
            isinstance(obs_space, spaces.Box)
            and isinstance(self.observation_space, spaces.Box)
            and obs_space.shape != self.observation_space.shape
        ):
            raise ValueError(
                f"policy: expected a policy for the observation space {self.observation_space}, found one for "
                f"{obs_space}"
            )

    # ------------------------------------------------------------------------------------ units
    def scale(self, actions: np.ndarray) -> np.ndarray:
        """Env units -> [-1, 1] (after clipping to the Box), ``(rows, action_dim)`` float32; Discrete: the indices."""
        if self.discrete:
            indices = np.asarray(actions, dtype=np.float64).reshape(-1, 1)
            if not np.all((indices == np.round(indices)) & (indices >= 0) & (indices <= self._high)):
                raise ValueError(f"policy: expected action indices in 0..{int(self._high[0])}, found {indices.ravel()}")
            return indices.astype(np.float32)
        actions = np.clip(np.asarray(actions, dtype=np.float64).reshape(-1, self.action_dim), self._low, self._high)
        return (2.0 * (actions - self._low) / (self._high - self._low) - 1.0).astype(np.float32)

    def unscale(self, actions: np.ndarray) -> np.ndarray:
        """[-1, 1] -> env units (the action Box's shape per row); Discrete: int64 indices ``(rows,)``."""
        actions = np.asarray(actions, dtype=np.float64).reshape(-1, self.action_dim)
        if self.discrete:
            return np.rint(actions[:, 0]).astype(np.int64)
        env_actions = self._low + 0.5 * (actions + 1.0) * (self._high - self._low)
        return env_actions.astype(np.float32).reshape(-1, *self.action_shape)

    # ------------------------------------------------------------------------------------ acting
    def act(self, observation: Any) -> np.ndarray:
        """One action in the env's units for one observation (to step an env)."""
        if self.kind == "function" and not self.vectorized and not self.discrete:
            return (
                np.clip(np.asarray(self.policy(observation), dtype=np.float32), self._low, self._high)
                .astype(np.float32)
                .reshape(self.action_shape)
            )
        return self.unscale(self._numpy_batch(map_obs(lambda value: np.asarray(value)[None], observation)))[0]

    def _numpy_batch(self, observations: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """[-1, 1] actions ``(rows, action_dim)`` for a numpy batch, through ``predict`` or the function."""
        n = obs_len(observations)
        if self.kind in ("predict", "sb3"):
            predict = self.policy.predict
            result = predict(observations, deterministic=self.deterministic)
            actions = result[0] if isinstance(result, tuple) else result
        elif self.vectorized:
            actions = self.policy(observations)
        else:
            actions = np.stack([np.asarray(self.policy(obs_index(observations, row))) for row in range(n)])
        actions = np.asarray(actions, dtype=np.float64)
        if actions.size != n * self.action_dim:
            raise ValueError(
                f"policy: expected actions of shape {(n, *self.action_shape)} for {n} observations, found "
                f"{tuple(actions.shape)}"
            )
        if not np.all(np.isfinite(actions)):
            raise ValueError("policy: expected finite actions, found NaN or inf")
        return self.scale(actions)

    @th.no_grad()
    def _sb3_batch(self, observations: TensorObs) -> th.Tensor:
        policy = self._sb3_policy
        assert policy is not None
        obs = map_obs(lambda value: value.to(policy.device), observations)
        actions = policy._predict(obs, deterministic=self.deterministic).reshape(-1, self.action_dim).float()  # type: ignore[arg-type]
        if self.discrete:
            return actions
        if policy.squash_output:
            return actions.clamp(-1.0, 1.0)
        low = th.as_tensor(self._low, dtype=th.float32, device=actions.device)
        high = th.as_tensor(self._high, dtype=th.float32, device=actions.device)
        return 2.0 * (th.max(th.min(actions, high), low) - low) / (high - low) - 1.0

    def actions(self, observations: TensorObs, n_samples: int = 1) -> th.Tensor:
        """
        The policy's actions at every row of ``observations`` (tensors; a dict of tensors for ``Dict`` spaces),
        ``(rows, n_samples, action_dim)`` float32 in [-1, 1], on the observations' device. With
        ``deterministic=True`` the policy is asked once and its action repeated.

        :param observations: the states
        :param n_samples: draws per state
        """
        if n_samples < 1:
            raise ValueError(f"n_samples: expected >= 1, found {n_samples}")
        n = obs_len(observations)
        device = obs_values(observations)[0].device
        draws = 1 if self.deterministic else n_samples
        policy = self._sb3_policy
        was_training = bool(policy.training) if policy is not None else False
        if policy is not None:
            policy.set_training_mode(False)
        try:
            samples = []
            for _ in range(draws):
                parts = []
                for start in range(0, n, self.batch_size):
                    chunk = obs_index(observations, slice(start, start + self.batch_size))
                    if self.kind == "sb3":
                        parts.append(self._sb3_batch(chunk).to(device))
                    else:
                        numpy_chunk = map_obs(lambda value: value.detach().cpu().numpy(), chunk)
                        parts.append(th.as_tensor(self._numpy_batch(numpy_chunk), device=device))
                samples.append(th.cat(parts) if parts else th.zeros((0, self.action_dim), device=device))
        finally:
            if policy is not None:
                policy.set_training_mode(was_training)
        stacked = th.stack(samples, dim=1)
        return stacked.expand(n, n_samples, self.action_dim).contiguous() if draws == 1 else stacked


def as_evaluation_policy(policy: Any, *args: Any, **kwargs: Any) -> EvaluationPolicy:
    """
    ``policy`` as an :class:`EvaluationPolicy` (returned as is when it already is one; otherwise built with the
    other arguments, :class:`EvaluationPolicy`'s: ``observation_space``, ``action_space``, ``deterministic``, ...).
    """
    if isinstance(policy, EvaluationPolicy):
        return policy
    return EvaluationPolicy(policy, *args, **kwargs)


PolicyFunction = Callable[[Any], np.ndarray]

__all__ = ["DEFAULT_ACTION_BATCH_SIZE", "EvaluationPolicy", "PolicyFunction", "as_evaluation_policy", "describe_policy"]
