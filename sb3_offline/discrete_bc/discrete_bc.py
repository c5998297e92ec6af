"""DiscreteBC: behaviour cloning of a categorical policy (cross-entropy), as d3rlpy's ``DiscreteBC``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.dqn.policies import QNetwork

from sb3_offline.common.discrete import DiscreteOfflineAlgorithm
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.discrete_bc.policies import DiscreteBCPolicy, MlpPolicy, MultiInputPolicy


class DiscreteBC(DiscreteOfflineAlgorithm):
    """
    Behaviour cloning on a ``Discrete`` action space: a categorical policy ``pi(a|s) = softmax(logits(s))`` fit to
    the dataset's actions by cross-entropy, with a penalty on the logits' size,
    ``min E_(s,a)~B [-log pi(a|s)] + beta * mean(logits(s)^2)``; no critic, no reward used. ``predict`` takes the
    most likely action. The loss, the penalty and the defaults are d3rlpy's ``DiscreteBC``
    (Seno, Imai, "d3rlpy: An Offline Deep Reinforcement Learning Library", JMLR 2022; ``d3rlpy`` 2.8.1,
    ``algos/qlearning/bc.py`` and ``models/torch/imitators.py``, ``compute_discrete_imitation_loss``): Adam with lr
    1e-3, batch 100, ``beta`` 0.5, 256-256 ReLU layers. The imitation baseline of Fujimoto, Conti, Ghavamzadeh,
    Pineau, "Benchmarking Batch Deep Reinforcement Learning Algorithms" (2019): good on data from one good policy,
    weaker on noisy data.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate (constant or schedule)
    :param batch_size: minibatch size
    :param beta: weight of the penalty on the squared logits
    :param gamma: unused by the loss; kept for SB3's interface
    :param kwargs: :class:`~sb3_offline.common.discrete.DiscreteOfflineAlgorithm`'s other arguments and defaults
        (``exploration_rate``: epsilon of ``predict(deterministic=False)``)
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor",)
    target_networks: ClassVar[dict[str, str]] = {}
    policy: DiscreteBCPolicy
    actor: QNetwork

    def __init__(
        self,
        policy: str | type[DiscreteBCPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        batch_size: int = 100,
        beta: float = 0.5,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if beta < 0:
            raise ValueError(f"beta: expected a weight >= 0, found {beta}")
        self.beta = beta
        super().__init__(policy, env, learning_rate, dataset=dataset, batch_size=batch_size, gamma=gamma, **kwargs)

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"actor": None}

    def _next_update(self) -> tuple[str, Update]:
        return "discrete_bc", self._update

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        logits = self.actor(data.observations)
        imitation_loss = F.nll_loss(F.log_softmax(logits, dim=1), data.actions.long().view(-1))
        penalty = logits.pow(2).mean()
        loss = imitation_loss + self.beta * penalty
        minimize(self.actor.optimizer, loss)
        self._losses.add("loss", loss)
        self._losses.add("imitation_loss", imitation_loss)
        self._losses.add("logit_penalty", penalty)
