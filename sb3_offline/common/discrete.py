"""
The base of the offline algorithms on a ``Discrete`` action space: SB3's ``DQN`` shape (a Q-network ``q_net`` and its
target ``q_net_target`` in a ``DQNPolicy``, ``predict`` as ``DQN.predict``) on the offline spine.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.dqn import DQN
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.offline_algorithm import OfflineAlgorithm
from sb3_offline.common.schedules import LearningRate
from sb3_offline.datasets.loaders import DatasetSource


class DiscreteQPolicy(DQNPolicy):
    """
    SB3's ``DQNPolicy`` (``q_net``, ``q_net_target``, greedy ``_predict``) whose optimizer is also
    ``q_net.optimizer``: the offline base finds, sets and saves an optimizer by the network that holds it.
    """

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        self.q_net.optimizer = self.optimizer


MlpPolicy = DiscreteQPolicy
MultiInputPolicy = multi_input_policy(DiscreteQPolicy, __name__)


class DiscreteOfflineAlgorithm(OfflineAlgorithm):
    """
    Base of the offline algorithms on a ``Discrete`` action space, shaped as SB3's ``DQN`` (or sb3-contrib's
    ``QRDQN``): the dataset's actions are int64 indices ``(batch, 1)`` in the samples (``.long()`` for ``gather``, as
    DQN's ``train``), and :meth:`predict` is ``DQN.predict``: the policy's greedy action, or with probability
    ``exploration_rate`` (when ``deterministic=False``) a uniformly random one. ``learn_online`` is SB3's
    ``OffPolicyAlgorithm.learn``, whose rollouts call ``predict(deterministic=False)``: epsilon-greedy with
    ``exploration_rate`` (constant; DQN anneals it, an offline model starts from a trained one).

    By default the layout is ``DQNPolicy``'s: ``networks = ("q_net", "q_net_target")``, the target Polyak-averaged
    with ``tau`` (a subclass with hard target copies sets ``target_networks = {}`` and copies them itself), and one
    optimizer, ``q_net.optimizer`` (:class:`DiscreteQPolicy`). A subclass on sb3-contrib's ``QRDQNPolicy`` declares
    ``quantile_net`` instead.

    :param policy: the policy model to use (``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class)
    :param env: the environment (or its id); ``None`` to recover it from the dataset
    :param learning_rate: learning rate of ``q_net.optimizer`` (constant or schedule)
    :param dataset: the data (see :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`)
    :param exploration_rate: epsilon of ``predict(deterministic=False)`` and of ``learn_online``'s rollouts
    :param supported_action_spaces: the action spaces the algorithm supports (``Discrete``)
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    networks: ClassVar[tuple[str, ...]] = ("q_net", "q_net_target")
    target_networks: ClassVar[dict[str, str]] = {"q_net_target": "q_net"}

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: GymEnv | str | None,
        learning_rate: float | Schedule,
        dataset: DatasetSource | None = None,
        exploration_rate: float = 0.0,
        supported_action_spaces: tuple[type[spaces.Space], ...] | None = (spaces.Discrete,),
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= exploration_rate <= 1.0:
            raise ValueError(f"exploration_rate: expected a probability in [0, 1], found {exploration_rate}")
        self.exploration_rate = exploration_rate
        super().__init__(
            policy, env, learning_rate, dataset=dataset, supported_action_spaces=supported_action_spaces, **kwargs
        )

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"q_net": None}

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """``DQN.predict``: the greedy action, or a random one with probability ``exploration_rate`` (not
        ``deterministic``)."""
        return DQN.predict(self, observation, state, episode_start, deterministic)  # type: ignore[arg-type]


__all__ = ["DiscreteOfflineAlgorithm", "DiscreteQPolicy", "MlpPolicy", "MultiInputPolicy"]
