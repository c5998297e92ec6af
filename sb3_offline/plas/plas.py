"""PLAS: Policy in the Latent Action Space (Zhou, Bajracharya, Held, CoRL 2020)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_offline.common.critics import critic_loss, critic_values, q1_values, soft_clipped_target
from sb3_offline.common.latent_actor import LatentActor
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.common.vae import ConditionalVAE, fit_vae
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.plas.policies import MlpPolicy, MultiInputPolicy, PLASPolicy

SelfPLAS = TypeVar("SelfPLAS", bound="PLAS")


class PLAS(OfflineAlgorithm):
    """
    Policy in the Latent Action Space (PLAS): Zhou, Bajracharya, Held, "PLAS: Latent Action Space for
    Offline Reinforcement Learning", CoRL 2020 (https://arxiv.org/abs/2011.07213). Where the paper is
    silent we follow the authors' code (``Wenxuan-Zhou/PLAS``: ``algos.py``, ``main.py``).

    Two phases, both counted by ``learn``'s ``total_timesteps`` (one gradient step each):

    1. the first ``vae_steps`` gradient steps pre-train the conditional VAE on the dataset
       (reconstruction on [-1, 1] actions, ``action_units="env"``: in the env's units, where the authors'
       ``max_action * tanh`` decoder takes it; + 0.5 * KL, its own Adam with ``vae_learning_rate``; logged under
       ``vae/``);
    2. then the VAE is frozen and each step trains the two critics on the soft clipped double-Q
       target ``r + gamma * (1 - termination) * [lmbda * min_j Q'_j + (1 - lmbda) * max_j Q'_j](s', a')``
       with ``a' = D(s', pi'(s'))`` (lambda-weighted min/max as in the authors' ``Latent.train``; one
       action, no sampling), and the latent policy on ``-Q_1(s, D(s, pi(s)))``: its gradient flows
       *through* the frozen decoder, which receives none itself. Logged under ``train/``.

    So ``learn(vae_steps + n)`` pre-trains the VAE and then trains the policy for ``n`` steps; the
    authors run 500k + 500k. Calling ``learn`` again continues where the phases stand.
    ``perturbation=True`` is PLAS-P (the paper's "PLAS with perturbation"): a layer adds
    ``xi(s, a)`` in ``[-phi, phi]`` (in the env's units, as the authors' ``ActorPerturbation``) to the
    decoded action, so the policy may leave the data's support by a small amount.

    Defaults (authors' ``main.py``): VAE 750-750, latent ``2 * action_dim``, VAE lr 1e-4 for 500k
    steps; latent policy and critics 400-300, actor lr 1e-4, critic lr 1e-3, batch 100, tau 0.005,
    gamma 0.99, lambda 0.75, max latent action 2; PLAS-P phi 0.05 (their class default).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: critic learning rate (constant or schedule)
    :param actor_learning_rate: latent policy learning rate
    :param vae_learning_rate: VAE learning rate (pre-training)
    :param vae_steps: gradient steps of VAE pre-training before the policy phase
    :param max_latent_action: bound of the latent action
    :param perturbation: add PLAS-P's perturbation layer
    :param phi: bound of the perturbation in the env's units (with ``perturbation=True``)
    :param lmbda: weight of the minimum in the soft clipped double-Q target
    :param kl_weight: weight of the KL term of the VAE loss (as BCQ's: it keeps its meaning on any Box with the
        default ``action_units``, and weighs ``b^2`` times less with ``"env"`` on a Box with bound ``b``)
    :param batch_size: minibatch size (both phases)
    :param tau: target update rate
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("vae", "actor", "actor_target", "critic", "critic_target")
    target_networks = {"actor_target": "actor", "critic_target": "critic"}
    policy: PLASPolicy
    vae: ConditionalVAE
    actor: LatentActor
    actor_target: LatentActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        policy: str | type[PLASPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        actor_learning_rate: float = 1e-4,
        vae_learning_rate: float = 1e-4,
        vae_steps: int = 500_000,
        max_latent_action: float = 2.0,
        perturbation: bool = False,
        phi: float = 0.05,
        lmbda: float = 0.75,
        kl_weight: float = 0.5,
        batch_size: int = 100,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if vae_steps < 0:
            raise ValueError(f"vae_steps: expected >= 0, found {vae_steps}")
        if not 0.0 <= lmbda <= 1.0:
            raise ValueError(f"lmbda: expected a weight in [0, 1], found {lmbda}")
        if max_latent_action <= 0:
            raise ValueError(f"max_latent_action: expected > 0, found {max_latent_action}")
        self.vae_steps = vae_steps
        self.perturbation = perturbation
        self.lmbda = lmbda
        self.kl_weight = kl_weight
        self.max_latent_action = max_latent_action
        self.phi = phi
        self.actor_learning_rate = actor_learning_rate
        self.vae_learning_rate = vae_learning_rate
        self._vae_updates = 0
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.vae_pretrained:
            self._freeze_vae()

    def _freeze_vae(self) -> None:
        """Phase 2: the VAE gets no gradient (its last pre-training gradients are dropped too)."""
        self.vae.requires_grad_(False)
        self.vae.zero_grad(set_to_none=True)
        self._runner.discard("plas/vae")

    def learn(  # type: ignore[override]
        self: SelfPLAS,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int | None = 1000,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfPLAS:
        """
        ``OfflineAlgorithm.learn``; the first ``vae_steps`` gradient steps (over all calls) pre-train the
        VAE, the rest train the latent policy. Warns when this call never reaches the policy phase.
        """
        if self._vae_updates + total_timesteps <= self.vae_steps:
            warnings.warn(
                f"PLAS.learn: all {total_timesteps} gradient steps go to VAE pre-training "
                f"({self._vae_updates}/{self.vae_steps} done), so the policy is not trained by this call; "
                f"learn(vae_steps + n) trains it for n steps (or pass a smaller vae_steps)",
                stacklevel=2,
            )
        return super().learn(total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar)

    @property
    def vae_pretrained(self) -> bool:
        """Whether phase 1 (VAE pre-training) is over and the decoder is frozen."""
        return self._vae_updates >= self.vae_steps

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"vae": self.vae_learning_rate, "actor": self.actor_learning_rate, "critic": None}

    def _policy_arguments(self) -> dict[str, Any]:
        return {"max_latent_action": self.max_latent_action, "phi": self.phi if self.perturbation else None}

    def _next_update(self) -> tuple[str, Update]:
        """Phase 1 (VAE pre-training) for the first ``vae_steps`` updates over all calls, then phase 2."""
        if not self.vae_pretrained:
            return "plas/vae", self._vae_update
        return "plas", self._policy_update

    def _after_update(self, kind: str) -> None:
        if kind == "plas/vae":
            self._vae_updates += 1
            if self.vae_pretrained:
                self._freeze_vae()

    def _policy_update(self, batch_size: int) -> None:
        """One step of phase 2 (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        policy = self.policy
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = policy.features(data.observations)

        with th.no_grad():
            next_features = policy.features(data.next_observations)
            next_actions = self.actor_target(next_features, self.vae.decode)[2]
            next_q = critic_values(self.critic_target, next_features, next_actions)
            target_q = soft_clipped_target(next_q, data.rewards, data.dones, self.gamma, self.lmbda)
        current_q = critic_values(self.critic, features, data.actions)
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)

        # The latent policy's gradient flows through the frozen decoder into z.
        state_features = features.detach()
        latent, _, actions = self.actor(state_features, self.vae.decode)
        actor_loss = -q1_values(self.critic, state_features, actions).mean()
        minimize(self.actor.optimizer, actor_loss)

        self._update_targets()

        self._losses.add("critic_loss", q_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("q_value", current_q[:, 0].mean())
        self._losses.add("latent_action_norm", latent.detach().norm(dim=1).mean())

    def _vae_update(self, batch_size: int) -> None:
        """One step of phase 1, VAE pre-training (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = self.policy.features(data.observations).detach()
        total, reconstruction_loss, kl = fit_vae(self.vae, features, data.actions, self.kl_weight, self._action_scale)
        self._losses.add("vae/loss", total)
        self._losses.add("vae/reconstruction_loss", reconstruction_loss)
        self._losses.add("vae/kl_loss", kl)

    def _dump_offline_logs(self) -> None:
        self.logger.record("vae/n_updates", self._vae_updates, exclude="tensorboard")
        super()._dump_offline_logs()
