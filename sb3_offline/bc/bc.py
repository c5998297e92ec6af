"""BC: behaviour cloning, the BCQ paper's imitation baseline."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.td3.policies import Actor

from sb3_offline.bc.policies import BCPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.common.actions import action_squared_error
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource

SelfBC = TypeVar("SelfBC", bound="BC")


class BC(OfflineAlgorithm):
    """
    Behaviour cloning: a deterministic policy regressed on the dataset's actions,
    ``min E_(s,a)~B ||mu(s) - a||^2`` with the squared error on [-1, 1] actions (``action_units="env"``: in the
    env's units, where a DDPG actor's ``max_action * tanh`` output is regressed; the same minimiser, another
    scale of the gradient); no critic, no reward used.
    The imitation baseline of Fujimoto, Meger, Precup, "Off-Policy Deep Reinforcement Learning
    without Exploration", ICML 2019 (section 5, "Behavioral Cloning"): good when the data comes from
    one good policy (``imitation``), weaker on mixed or noisy data (``final``, ``imperfect``).

    Defaults follow the BCQ paper's baselines: the DDPG actor's 400-300 layers, Adam with lr 1e-3,
    batch 100.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate (constant or schedule)
    :param batch_size: minibatch size
    :param gamma: unused by the loss; kept for SB3's interface
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor",)
    policy: BCPolicy
    actor: Actor

    def __init__(
        self,
        policy: str | type[BCPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        batch_size: int = 100,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(policy, env, learning_rate, dataset=dataset, batch_size=batch_size, gamma=gamma, **kwargs)

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"actor": None}

    def _next_update(self) -> tuple[str, Update]:
        return "bc", self._update

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        loss = action_squared_error(self.actor(data.observations), data.actions, self._action_scale)
        minimize(self.actor.optimizer, loss)
        self._losses.add("actor_loss", loss)
