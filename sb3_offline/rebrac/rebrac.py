"""ReBRAC: TD3+BC revisited (Tarasov, Kurenkov, Nikulin, Kolesnikov, NeurIPS 2023)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.common.critics import critic_loss
from sb3_offline.common.ensemble import EnsembleCritic
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import Update
from sb3_offline.common.schedules import StepSchedule
from sb3_offline.common.training import minimize
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.rebrac.policies import MlpPolicy, MultiInputPolicy, ReBRACActor, ReBRACPolicy
from sb3_offline.td3bc.td3bc import TD3BC


def dataset_next_actions(buffer: OfflineReplayBuffer, idx: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """
    The action the data took at each sampled row's next state, ``(batch, action_dim)`` in [-1, 1], and whether it
    exists, ``(batch, 1)`` float: the next row of the same episode (a dataset row's ``idx + 1``; an online row's next
    step of its env in the ring, ``n_envs`` rows on, wrapping). It does not exist at an episode's last row (a
    termination or a time-limit truncation), at an online episode's newest row, and after the data's last row
    (device work only: the row's and its successor's episode ids are compared).
    """
    ids = buffer.episode_ids
    rows, start = ids.shape[0], buffer.dataset_size
    ring_rows = buffer.ring.rows_per_env * buffer.n_envs
    following = idx + 1
    if ring_rows > 0 and rows > start:
        online = start + th.remainder(idx - start + buffer.n_envs, ring_rows)
        following = th.where(idx < start, following, online)
    inside = following < rows
    following = following.clamp(max=rows - 1)
    exists = inside & (ids[following] == ids[idx])
    return buffer.actions[following], exists.unsqueeze(1).float()


class ReBRAC(TD3BC):
    """
    ReBRAC: Tarasov, Kurenkov, Nikulin, Kolesnikov, "Revisiting the Minimalist Approach to Offline Reinforcement
    Learning", NeurIPS 2023 (https://arxiv.org/abs/2305.09836). TD3+BC with decoupled behaviour-cloning penalties
    on the actor and on the critic's target, LayerNorm in the critics, deeper networks and larger batches. We follow
    the authors' code (``tinkoff-ai/ReBRAC`` commit 694385b, ``src/algorithms/rebrac.py``; CORL's
    ``algorithms/offline/rebrac.py`` is the same update).

    Each gradient step trains the two critics (one ensemble) on
    ``y = r + gamma * (1 - termination) * (min_j Q'_j(s', a') - beta_critic * ||a' - a'_D||^2)``, with
    ``a' = clip(pi'(s') + clip(eps, -c, c), -1, 1)``, ``eps ~ N(0, sigma^2)`` and ``a'_D`` the action the data took
    at ``s'`` (the next row of the episode; the loss ``sum_j mean (Q_j(s, a) - y)^2``). Every ``policy_delay``-th
    step, the 1st, 3rd, ... as the authors' ``delayed_updates`` (``i % policy_freq == 0`` from ``i = 0``), then
    trains the actor on ``mean(beta_actor * ||pi(s) - a||^2 - lambda * min_j Q_j(s, pi(s)))`` with
    ``lambda = 1 / mean |min_j Q_j(s, pi(s))|`` (no gradient; ``normalize_q=False``: 1) and the squared norms summed
    over action dimensions, and moves the targets: the actor's target towards the actor *before* this step's
    update (the authors' ``optax.incremental_update(actor.params, ...)`` reads the old parameters), the critics'
    towards the critics just updated. Actions and penalties are in [-1, 1] (``action_units``, default
    ``"normalized"``; the authors' MuJoCo bounds are 1), target noise and its clip in those units too.

    Where ``a'_D`` does not exist (the last row of an episode cut by a time limit, which the authors' D4RL loader
    drops and we keep as a bootstrapping transition, or an online episode's newest row) the critic's penalty is 0
    for that row; at a termination it is multiplied by 0 anyway. ``learn_online`` continues the same training with
    env steps (exploration noise: ``action_noise``); the online rows' next actions are their env's next step.

    Defaults (the authors' ``Config`` and ``configs/rebrac/``): actor and critics 3 x 256 (LayerNorm in the critics
    only), Adam lr 1e-3 for both, batch 1024, tau 5e-3, gamma 0.99, policy noise 0.2, noise clip 0.5, policy delay 2,
    Q normalised, states not normalised, ``actor_bc_coef=critic_bc_coef=1`` (their ``Config``'s; every published run
    sets its dataset's values, 0 to 0.5: the paper's per-dataset values, the authors' ``configs/rebrac``, are in the
    zoo config ``rebrac.yml``; d3rlpy's defaults are halfcheetah-medium-v2's, 0.001 and 0.01). The authors train for
    1M gradient steps. ``HerReplayBuffer`` is refused: its relabelled batches do not say which rows they come from,
    and the critic's penalty needs the next row's action.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: critic learning rate (constant or schedule; the authors' ``critic_learning_rate``)
    :param actor_learning_rate: actor learning rate (constant or schedule)
    :param actor_bc_coef: ``beta_actor``, weight of the actor's BC penalty (the paper's beta_1)
    :param critic_bc_coef: ``beta_critic``, weight of the penalty on the next action in the target (beta_2)
    :param normalize_q: scale the actor's Q term by ``1 / mean |Q|`` (the authors' ``normalize_q``)
    :param actor_layer_norm: LayerNorm in the actor (the authors' ``actor_ln``)
    :param critic_layer_norm: LayerNorm in the critics (the authors' ``critic_ln``)
    :param policy_delay: the actor and the targets are updated every ``policy_delay`` gradient steps (``policy_freq``)
    :param target_policy_noise: standard deviation of the target policy smoothing noise (``policy_noise``)
    :param target_noise_clip: bound of that noise (``noise_clip``)
    :param normalize_observations: normalise states with the dataset's statistics, ``(s - mean) / (std + 1e-3)``
        (the authors' ``normalize_states``)
    :param batch_size: minibatch size
    :param tau: soft update coefficient
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    policy: ReBRACPolicy
    actor: ReBRACActor
    actor_target: ReBRACActor
    critic: EnsembleCritic  # type: ignore[assignment]
    critic_target: EnsembleCritic  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[ReBRACPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        actor_learning_rate: float | Schedule | StepSchedule = 1e-3,
        actor_bc_coef: float = 1.0,
        critic_bc_coef: float = 1.0,
        normalize_q: bool = True,
        actor_layer_norm: bool = False,
        critic_layer_norm: bool = True,
        policy_delay: int = 2,
        target_policy_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        normalize_observations: bool = False,
        batch_size: int = 1024,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        for name, value in (("actor_bc_coef", actor_bc_coef), ("critic_bc_coef", critic_bc_coef)):
            if value < 0:
                raise ValueError(f"{name}: expected >= 0, found {value}")
        buffer_class = kwargs.get("replay_buffer_class")
        if buffer_class is not None and (
            not issubclass(buffer_class, OfflineReplayBuffer) or issubclass(buffer_class, HerReplayBuffer)
        ):
            raise ValueError(
                f"replay_buffer_class: expected OfflineReplayBuffer (or a subclass whose batches are the rows drawn: "
                f"the critic's penalty needs each row's next action), found {buffer_class.__name__}"
            )
        self.actor_bc_coef = actor_bc_coef
        self.critic_bc_coef = critic_bc_coef
        self.normalize_q = normalize_q
        self.actor_layer_norm = actor_layer_norm
        self.critic_layer_norm = critic_layer_norm
        super().__init__(
            policy,
            env,
            dataset=dataset,
            learning_rate=learning_rate,
            actor_learning_rate=actor_learning_rate,
            alpha=1.0,  # TD3+BC's weight of the Q term, not ReBRAC's: its lambda is 1 / mean |Q| (normalize_q)
            policy_delay=policy_delay,
            target_policy_noise=target_policy_noise,
            target_noise_clip=target_noise_clip,
            normalize_observations=normalize_observations,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            **kwargs,
        )

    def _policy_arguments(self) -> dict[str, Any]:
        return {"actor_layer_norm": self.actor_layer_norm, "critic_layer_norm": self.critic_layer_norm}

    def _next_update(self) -> tuple[str, Update]:
        """The critics every step; the actor and the targets at the 1st, ``(1 + policy_delay)``-th, ... step."""
        if (self._n_updates - 1) % self.policy_delay == 0:
            return "rebrac", self._update
        return "rebrac/critic", self._critic_update

    def _penalty(self, actions: th.Tensor, reference: th.Tensor) -> th.Tensor:
        """``||actions - reference||^2`` per row, ``(batch, 1)``, in the units ``action_units`` says."""
        return ((actions - reference) * self._action_scale).pow(2).sum(dim=1, keepdim=True)

    @th.no_grad()
    def compute_critic_target(self, data: ReplayBufferSamples, next_actions: th.Tensor, exists: th.Tensor) -> th.Tensor:  # type: ignore[override]
        """
        ``r + gamma * (1 - termination) * (min_j Q'_j(s', a') - beta_critic * exists * ||a' - a'_D||^2)``, ``a'`` the
        target actor's smoothed action (``(batch, 1)``, no gradient).

        :param data: the batch
        :param next_actions: ``a'_D``, the data's actions at the next states (:func:`dataset_next_actions`)
        :param exists: ``(batch, 1)``, 1 where ``a'_D`` exists
        """
        policy_actions = self.actor_target(data.next_observations)
        noise = (th.randn_like(policy_actions) * self.target_policy_noise).clamp(
            -self.target_noise_clip, self.target_noise_clip
        )
        policy_actions = (policy_actions + noise).clamp(-1.0, 1.0)
        next_q = self.critic_target(data.next_observations, policy_actions).min(dim=0).values
        next_q = next_q - self.critic_bc_coef * exists * self._penalty(policy_actions, next_actions)
        return data.rewards + (1.0 - data.dones) * self.gamma * next_q

    def compute_actor_loss(self, data: ReplayBufferSamples) -> tuple[th.Tensor, th.Tensor, th.Tensor]:  # type: ignore[override]
        """
        ``mean(beta_actor * ||pi(s) - a||^2 - lambda * min_j Q_j(s, pi(s)))``, ``lambda = 1 / mean |min_j Q_j|``
        detached (1 without ``normalize_q``).

        :return: the actor loss, the BC penalty's mean and ``lambda``
        """
        actions = self.actor(data.observations)
        q_values = self.critic(data.observations, actions).min(dim=0).values
        lmbda = 1.0 / q_values.abs().mean().detach() if self.normalize_q else th.ones((), device=q_values.device)
        bc_penalty = self._penalty(actions, data.actions)
        return (self.actor_bc_coef * bc_penalty - lmbda * q_values).mean(), bc_penalty.mean(), lmbda

    def _sample(self, batch_size: int) -> tuple[ReplayBufferSamples, th.Tensor, th.Tensor]:
        """A batch, the data's actions at its next states and whether they exist (device work only)."""
        buffer = self.replay_buffer
        assert isinstance(buffer, OfflineReplayBuffer)
        idx = buffer.sample_indices(batch_size)
        next_actions, exists = dataset_next_actions(buffer, idx)
        return buffer.gather(idx), next_actions, exists  # type: ignore[return-value]

    def _rebrac_critic_step(self, data: ReplayBufferSamples, next_actions: th.Tensor, exists: th.Tensor) -> None:
        target_q = self.compute_critic_target(data, next_actions, exists)
        current_q = self.critic(data.observations, data.actions)[..., 0].T  # (batch, n_critics)
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)
        self._losses.add("critic_loss", q_loss)
        self._losses.add("q_value", current_q.min(dim=1).values.mean())

    def _critic_update(self, batch_size: int) -> None:
        """A step that trains the critics only (device work only: it may be replayed as a CUDA graph)."""
        self._rebrac_critic_step(*self._sample(batch_size))

    def _update(self, batch_size: int) -> None:
        """The critics, then the actor; the actor's target follows the actor before its step (device work only)."""
        data, next_actions, exists = self._sample(batch_size)
        self._rebrac_critic_step(data, next_actions, exists)
        self.critic.requires_grad_(False)  # the actor's loss needs no gradient of the critics' weights
        actor_loss, bc_penalty, lmbda = self.compute_actor_loss(data)
        self._update_targets("actor_target")
        minimize(self.actor.optimizer, actor_loss)
        self.critic.requires_grad_(True)
        self._update_targets("critic_target")
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("bc_loss", bc_penalty)
        self._losses.add("lambda", lmbda)


__all__ = ["ReBRAC", "dataset_next_actions"]
