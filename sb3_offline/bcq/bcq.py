"""BCQ: Batch-Constrained deep Q-learning (Fujimoto, Meger, Precup, ICML 2019)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, Schedule

from sb3_offline.bcq.policies import BCQPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.common.critics import critic_loss, critic_values, q1_values, soft_clipped_target
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.perturbation import PerturbationActor
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.common.vae import ConditionalVAE, fit_vae
from sb3_offline.datasets.loaders import DatasetSource

SelfBCQ = TypeVar("SelfBCQ", bound="BCQ")


class BCQ(OfflineAlgorithm):
    """
    Batch-Constrained deep Q-learning (BCQ), continuous actions: Algorithm 1 of
    Fujimoto, Meger, Precup, "Off-Policy Deep Reinforcement Learning without Exploration", ICML 2019
    (https://arxiv.org/abs/1812.02900). Follows the paper; where it is silent, the authors' code
    (``sfujim/BCQ``, ``continuous_BCQ/BCQ.py``).

    Each gradient step: the VAE ``G`` is fit to the batch's actions (MSE reconstruction + 0.5 * KL, the
    authors' weight; the reconstruction on [-1, 1] actions, ``action_units``: see ``kl_weight``);
    ``n = target_action_samples`` (10) actions are sampled from ``G(s')``, perturbed by the target
    perturbation model, and scored with Eq. 13 (``lmbda``-weighted min/max over the two
    target critics, max over the samples, ``r + gamma * (1 - termination) * that``); both critics
    regress on it; the perturbation model maximises ``Q_theta1(s, a + xi(s, a))`` for ``a ~ G(s)``
    (Eq. 12); the targets of critics and perturbation model are Polyak-averaged with ``tau``.
    Acting (Eq. 11) samples ``action_samples`` (100) candidates and takes the argmax of ``Q_theta1``.

    Defaults (paper appendix and authors' code): perturbation model and critics 400-300, VAE 750-750,
    latent ``2 * action_dim``, Adam with lr 1e-3 for all networks, batch 100, tau 0.005, gamma 0.99,
    lambda 0.75, Phi 0.05. Actions live in SB3's [-1, 1] scale, so Phi bounds the perturbation to
    ``Phi * (high - low) / 2`` in the env's units, the authors' ``Phi * max_action`` on a symmetric Box.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the critics (constant or schedule)
    :param actor_learning_rate: learning rate of the perturbation model (default: ``learning_rate``)
    :param vae_learning_rate: learning rate of the VAE, constant or schedule (default: ``learning_rate``)
    :param batch_size: minibatch size (N)
    :param tau: target update rate
    :param gamma: discount factor
    :param lmbda: weight of the minimum in the soft clipped double-Q target (lambda)
    :param phi: perturbation bound (Phi), as a fraction of the action range
    :param target_action_samples: actions sampled from ``G(s')`` for each target (n)
    :param action_samples: candidate actions per state when acting
    :param kl_weight: weight of the KL term of the VAE loss. Its reconstruction error is on [-1, 1] actions
        (``action_units="normalized"``, d3rlpy's): the authors' loss on their benchmarks (bound 1), and the weight
        keeps its meaning on any Box. ``action_units="env"`` takes it in the env's units, as the authors'
        ``max_action * tanh`` decoder literally does: on a Box with bound ``b`` the KL then weighs ``b^2`` times less
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("vae", "actor", "actor_target", "critic", "critic_target")
    target_networks = {"actor_target": "actor", "critic_target": "critic"}
    policy: BCQPolicy
    vae: ConditionalVAE
    actor: PerturbationActor
    actor_target: PerturbationActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        policy: str | type[BCQPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        actor_learning_rate: float | Schedule | None = None,
        vae_learning_rate: float | Schedule | None = None,
        batch_size: int = 100,
        tau: float = 0.005,
        gamma: float = 0.99,
        lmbda: float = 0.75,
        phi: float = 0.05,
        target_action_samples: int = 10,
        action_samples: int = 100,
        kl_weight: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= lmbda <= 1.0:
            raise ValueError(f"lmbda: expected a weight in [0, 1], found {lmbda}")
        if target_action_samples < 1 or action_samples < 1:
            raise ValueError(
                f"target_action_samples, action_samples: expected >= 1, found {target_action_samples}, {action_samples}"
            )
        self.actor_learning_rate = actor_learning_rate
        self.vae_learning_rate = vae_learning_rate
        self.lmbda = lmbda
        self.phi = phi
        self.target_action_samples = target_action_samples
        self.action_samples = action_samples
        self.kl_weight = kl_weight
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"vae": self.vae_learning_rate, "actor": self.actor_learning_rate, "critic": None}

    def _policy_arguments(self) -> dict[str, Any]:
        return {"phi": self.phi, "n_action_samples": self.action_samples}

    def _next_update(self) -> tuple[str, Update]:
        return "bcq", self._update

    def _update(self, batch_size: int) -> None:
        """One gradient step of Algorithm 1 (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        policy = self.policy
        n = self.target_action_samples
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = policy.features(data.observations)

        # Generative model: reconstruct the dataset's actions.
        vae_total, reconstruction_loss, kl = fit_vae(
            self.vae, features.detach(), data.actions, self.kl_weight, self._action_scale
        )

        # Critics: the soft clipped double-Q target of Eq. 13 over n perturbed samples of G(s').
        with th.no_grad():
            next_features = policy.features(data.next_observations)
            repeated, next_actions = policy.sample_perturbed(next_features, n, actor=self.actor_target)
            next_q = critic_values(self.critic_target, repeated, next_actions)
            target_q = soft_clipped_target(next_q, data.rewards, data.dones, self.gamma, self.lmbda, n)
        current_q = critic_values(self.critic, features, data.actions)
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)

        # Perturbation model (Eq. 12): maximise Q_theta1(s, a + xi(s, a)), a ~ G(s).
        state_features = features.detach()
        with th.no_grad():
            sampled = self.vae.decode(state_features)
        perturbed = self.actor(state_features, sampled)
        actor_loss = -q1_values(self.critic, state_features, perturbed).mean()
        minimize(self.actor.optimizer, actor_loss)

        self._update_targets()

        self._losses.add("vae_loss", vae_total)
        self._losses.add("reconstruction_loss", reconstruction_loss)
        self._losses.add("kl_loss", kl)
        self._losses.add("critic_loss", q_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("q_value", current_q[:, 0].mean())
