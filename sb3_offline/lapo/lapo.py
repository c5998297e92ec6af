"""LAPO: Latent-Variable Advantage-Weighted Policy Optimization (Chen et al., NeurIPS 2022)."""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_offline.buffers import OfflineReplayBuffer, RewardTransformSpec
from sb3_offline.common.critics import ValueNetwork, critic_loss, critic_values, q1_values, soft_clipped_values
from sb3_offline.common.latent_actor import LatentActor
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.common.vae import ConditionalVAE, vae_sample_terms
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.lapo.losses import (
    FINETUNE_ACTION_NOISE,
    FINETUNE_POLICY_NOISE,
    FINETUNE_TARGET_NOISE,
    WEIGHTINGS,
    advantage_weights,
    one_step_advantages,
    q_target,
    value_target,
    weighted_vae_loss,
)
from sb3_offline.lapo.policies import LAPOPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.lapo.rewards import widened_range
from sb3_offline.lapo.running_statistics import PolicyStatistics

SelfLAPO = TypeVar("SelfLAPO", bound="LAPO")

#: What ``learn_online`` trains with: the authors' fine-tuning update, or the offline one.
ONLINE_VARIANTS = ("finetune", "offline")


class LAPO(OfflineAlgorithm):
    """
    Latent-Variable Advantage-Weighted Policy Optimization (LAPO): Chen, Ghadirzadeh, Yu, Wang, Gao, Li,
    Liang, Finn, Zhang, "LAPO: Latent-Variable Advantage-Weighted Policy Optimization for Offline
    Reinforcement Learning", NeurIPS 2022 (https://arxiv.org/abs/2203.08949). Where the paper is silent,
    the authors' code: ``pcchenxi/LAPO-offlienRL`` (main ``d2493b1``; ``algos/algos_vae.py``, ``algos/utils.py``
    and ``main_d4rl.py`` from ``57a4974``), and for fine-tuning its branch ``finetune`` (``c47c28f``,
    ``algos/algos_vae_finetune.py``, ``main_d4rl_finetune.py``).

    A conditional VAE models the dataset's actions, each sample's reconstruction and KL terms weighted by
    its advantage (AWAC's advantage-weighted regression of the behaviour policy); a deterministic policy
    in the VAE's latent space (PLAS's) maximises Q through the decoder, so its actions stay among the
    well-weighted data's. Each gradient step (``Latent.train``, lines 187-247), on z-scored states and actions:

    1. the twin Q-networks regress on ``r + gamma * (1 - termination) * V(s')`` with the *online* V
       (line 194), and ``V`` on ``doubleq_min * min_j Q'_j + (1 - doubleq_min) * max_j Q'_j`` of the target
       Q-networks at ``D'(s, pi'(s) + clip(N(0, 0.1), -0.2, 0.2))`` (target latent policy and *target* VAE
       decoder ``D'``; lines 176-183, 196), clamped to ``[min_v, max_v]`` (line 201); MSE each;
    2. the advantage ``A = r + gamma * (1 - termination) * Q~'(s', D'(s', pi'(s'))) - V(s)`` (lines 211-215):
       the same mix of target Q-networks at the target policy's next action, no noise, and V *after* its
       update of step 1; not ``Q(s, a) - V(s)``;
    3. the CVAE minimises ``mean_i w_i * (||D(s_i, z_i) - a_i||^2 + kl_weight * KL_i)``, squared error summed
       over action dimensions and KL over latent ones (lines 219-226). ``weighting="expectile"`` (the
       default): ``w = expectile if A > 0 else 1 - expectile`` (line 216), the weights of the authors'
       released code (whose README shows its results); ``weighting="exp"``: ``w = min(exp(A / temperature),
       max_weight)``, the ``exp(A / lambda)`` of the paper's objective (the clip at ``max_weight`` is ours, IQL's 100);
    4. the latent policy ``pi(s) = max_latent_action * tanh(.)`` minimises ``-Q_1(s, D'(s, pi(s)))`` through
       the *target* decoder (lines 232-236);
    5. every target (Q, V, latent policy, VAE) is Polyak-averaged with ``tau`` (lines 242-247; the VAE's
       ``tau_vae = tau``).

    Rewards: the authors divide them by their maximum and clamp V's target to
    ``[min r / (1 - gamma), max r / (1 - gamma)]`` of the scaled rewards. The default here,
    ``reward_transform="max_else_max_abs"``, is their ``r / max r`` wherever the largest reward is > 0 and
    ``r / max |r|`` on data whose rewards are all <= 0 (Pendulum), where dividing by the maximum would flip
    their signs (``"max"`` is theirs on any data, ``"max_abs"`` always ``r / max |r|``); ``min_v`` and ``max_v``
    are computed from the dataset's rewards *as the buffer holds them* (transformed), unless ``value_bounds``
    gives them. AntMaze: ``LAPO(..., **sb3_offline.lapo.PRESETS["antmaze"])``, the authors' ``r * 100``,
    ``value_bounds=(0, 100)`` and ``doubleq_min=0.7`` (:data:`~sb3_offline.lapo.rewards.PRESETS`).

    Normalisation (``algos/utils.py``): states z-scored with ``std + 1e-6`` by the shared observation
    normaliser in the policy's features extractor (``normalize_observations``), actions likewise by the policy's
    ``action_normalizer``, both fitted from the dataset when it is read and saved with the policy.
    The authors z-score the env's actions, the buffer holds them in [-1, 1]; a z-score is the same in
    both units (up to the ``1e-6``), so the networks see what the authors' see. Acting:
    ``D'(s, pi(s))`` de-normalised and clipped to [-1, 1] (the env's bounds).

    ``learn_online`` (``online_variant="finetune"``, the default) trains with the authors' fine-tuning
    update instead: Q's target with the *target* V (line 210); V's target with latent noise
    ``clip(N(0, 0.2), -0.5, 0.5)`` (line 218); the CVAE on dataset actions jittered by
    ``clip(N(0, 0.1), -0.3, 0.3)``, weighted by the advantage ``min_j Q'_j(s, a~) - V'(s)`` of the *target*
    networks (lines 238-249); the latent policy through the *online* decoder plus
    ``clip(N(0, 0.02), -0.05, 0.05)`` (lines 266-268); and the policy then acts through the online decoder
    (``select_action``). As ``main_d4rl_finetune.py``: one env step, then one gradient step of batch 512
    (``train_freq=1``, ``gradient_steps=1``), the deterministic policy acting (no noise), ``min_v`` and
    ``max_v`` following the smallest and largest reward seen, and (``online_statistics``) the states' and
    actions' z-score statistics updated with every new transition (``algos/utils_finetune.py``:
    :class:`~sb3_offline.lapo.running_statistics.RunningStatistics`). ``online_variant="offline"`` keeps the
    offline update (and the dataset's statistics, unless ``online_statistics=True``).

    Defaults (``main_d4rl.py``'s arguments, which override the class defaults of ``algos_vae.py``): every
    network 3 x 256, latent size ``2 * action_dim``, Adam lr 2e-4 for the CVAE, the latent policy, Q and V,
    batch 512, tau 0.005, gamma 0.99, expectile 0.9 (class default 0.8), kl weight 1, max latent action 2
    (class default 1), ``doubleq_min`` 1 (class default 0.8; README: 0.7 on AntMaze), 1M steps.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the twin Q-networks
    :param actor_learning_rate: latent policy learning rate
    :param vae_learning_rate: CVAE learning rate
    :param value_learning_rate: learning rate of V (``None``: ``learning_rate``; the authors train Q and V with one
        optimizer)
    :param weighting: ``"expectile"`` (the authors' code) or ``"exp"`` (the paper's ``exp(A / lambda)``)
    :param expectile: the weight of a positive advantage (``weighting="expectile"``)
    :param temperature: the paper's lambda, dividing the advantage (``weighting="exp"``)
    :param max_weight: the clip of the exponential weights (``weighting="exp"``)
    :param kl_weight: weight of the KL term (the authors' ``kl_beta``)
    :param max_latent_action: bound of the latent action
    :param doubleq_min: weight of the minimum over the target Q-networks in V's target and the advantage
    :param target_noise: std of the noise on the target policy's latent action in V's target (0: none)
    :param target_noise_clip: clip of that noise
    :param value_bounds: ``(min_v, max_v)`` clamping V's target; ``None``: from the dataset's rewards
    :param reward_transform: the buffer's reward transform (``"max_else_max_abs"``: the authors' ``r / max r``
        where the largest reward is > 0, else ``r / max |r|``; ``None``: as recorded); not applied with a buffer
        that relabels rewards (HER)
    :param normalize_observations: z-score the states with the dataset's statistics (the policy's features extractor;
        ``False`` to use another extractor)
    :param online_variant: ``"finetune"`` (the authors' fine-tuning update in ``learn_online``) or ``"offline"``
    :param online_statistics: in ``learn_online``, update the states' and actions' statistics with every new
        transition (``None``: with ``online_variant="finetune"``, as the authors' fine-tuning)
    :param batch_size: minibatch size
    :param tau: target update rate (every target, the VAE's included)
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("vae", "vae_target", "actor", "actor_target", "critic", "critic_target", "value", "value_target")
    #: the authors' state z-score (``algos/utils.py``: ``(x - mean) / (std + 1e-6)``)
    observation_normalizer = (1e-6, "add")
    target_networks = {"critic_target": "critic", "value_target": "value", "actor_target": "actor", "vae_target": "vae"}
    policy: LAPOPolicy
    vae: ConditionalVAE
    vae_target: ConditionalVAE
    actor: LatentActor
    actor_target: LatentActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic
    value: ValueNetwork
    value_target: ValueNetwork

    def __init__(
        self,
        policy: str | type[LAPOPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 2e-4,
        actor_learning_rate: float = 2e-4,
        vae_learning_rate: float = 2e-4,
        value_learning_rate: float | Schedule | None = None,
        weighting: str = "expectile",
        expectile: float = 0.9,
        temperature: float = 1.0,
        max_weight: float = 100.0,
        kl_weight: float = 1.0,
        max_latent_action: float = 2.0,
        doubleq_min: float = 1.0,
        target_noise: float = 0.1,
        target_noise_clip: float = 0.2,
        value_bounds: tuple[float, float] | None = None,
        reward_transform: RewardTransformSpec = "max_else_max_abs",
        normalize_observations: bool = True,
        online_variant: str = "finetune",
        online_statistics: bool | None = None,
        batch_size: int = 512,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting: expected one of {WEIGHTINGS}, found {weighting!r}")
        if not 0.0 < expectile < 1.0:
            raise ValueError(f"expectile: expected a value in (0, 1), found {expectile}")
        for name, value in (("temperature", temperature), ("max_weight", max_weight)):
            if not value > 0:
                raise ValueError(f"{name}: expected > 0, found {value}")
        if not 0.0 <= doubleq_min <= 1.0:
            raise ValueError(f"doubleq_min: expected a weight in [0, 1], found {doubleq_min}")
        for name, value in (
            ("kl_weight", kl_weight),
            ("target_noise", target_noise),
            ("target_noise_clip", target_noise_clip),
        ):
            if not value >= 0:
                raise ValueError(f"{name}: expected >= 0, found {value}")
        if max_latent_action <= 0:
            raise ValueError(f"max_latent_action: expected > 0, found {max_latent_action}")
        if value_bounds is not None and not (len(value_bounds) == 2 and value_bounds[0] < value_bounds[1]):
            raise ValueError(f"value_bounds: expected (min_v, max_v) with min_v < max_v, found {value_bounds}")
        if online_variant not in ONLINE_VARIANTS:
            raise ValueError(f"online_variant: expected one of {ONLINE_VARIANTS}, found {online_variant!r}")
        self.weighting = weighting
        self.expectile = expectile
        self.temperature = temperature
        self.max_weight = max_weight
        self.kl_weight = kl_weight
        self.doubleq_min = doubleq_min
        self.target_noise = target_noise
        self.target_noise_clip = target_noise_clip
        self.value_bounds = None if value_bounds is None else (float(value_bounds[0]), float(value_bounds[1]))
        self.normalize_observations = normalize_observations
        self.online_variant = online_variant
        self.online_statistics = online_statistics
        self._policy_statistics: PolicyStatistics | None = None
        #: smallest and largest reward (as the buffer holds them) seen: the dataset's, then online ones
        self.reward_range: tuple[float, float] | None = None
        self._value_bounds_tensor: th.Tensor | None = None
        self._value_bounds_values: tuple[float, float] | None = None
        self.max_latent_action = max_latent_action
        self.actor_learning_rate = actor_learning_rate
        self.vae_learning_rate = vae_learning_rate
        self.value_learning_rate = value_learning_rate
        self.reward_transform = reward_transform
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    # ------------------------------------------------------------------------------------ set-up
    def _setup_replay_buffer(self) -> None:
        super()._setup_replay_buffer()
        buffer = self.replay_buffer
        if self.reward_range is None and isinstance(buffer, OfflineReplayBuffer) and buffer.dataset_size > 0:
            rewards = buffer.rewards[: buffer.dataset_size]
            self.reward_range = (float(rewards.min()), float(rewards.max()))

    @property
    def min_v(self) -> float:
        """Lower clamp of V's target: ``value_bounds[0]``, else the smallest reward / (1 - gamma) (-inf unknown)."""
        if self.value_bounds is not None:
            return self.value_bounds[0]
        return -math.inf if self.reward_range is None else self.reward_range[0] / (1.0 - self.gamma)

    @property
    def max_v(self) -> float:
        """Upper clamp of V's target: ``value_bounds[1]``, else the largest reward / (1 - gamma) (+inf unknown)."""
        if self.value_bounds is not None:
            return self.value_bounds[1]
        return math.inf if self.reward_range is None else self.reward_range[1] / (1.0 - self.gamma)

    def _value_bounds(self) -> th.Tensor:
        """``[min_v, max_v]`` as one device tensor, refilled in place when they change (CUDA graphs read it)."""
        values = (self.min_v, self.max_v)
        if self._value_bounds_tensor is None:
            self._value_bounds_tensor = th.tensor(values, dtype=th.float32, device=self.device)
        elif values != self._value_bounds_values:
            self._value_bounds_tensor.copy_(th.tensor(values, dtype=th.float32))
        self._value_bounds_values = values
        return self._value_bounds_tensor

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_value_bounds_tensor", "_value_bounds_values", "_policy_statistics"]

    # ------------------------------------------------------------------------------------ training
    def learning_rates(self) -> dict[str, LearningRate | None]:
        rates = (self.vae_learning_rate, self.actor_learning_rate, None, self.value_learning_rate)
        return dict(zip(("vae", "actor", "critic", "value"), rates, strict=True))

    def _policy_arguments(self) -> dict[str, Any]:
        return {"max_latent_action": self.max_latent_action}

    def _buffer_arguments(self) -> dict[str, Any]:
        """``reward_transform`` for a buffer of recorded rewards (HER's relabelled rewards are the env's)."""
        buffer_class = self.replay_buffer_class or OfflineReplayBuffer
        relabels = issubclass(buffer_class, HerReplayBuffer)
        return {} if relabels or self.reward_transform is None else {"reward_transform": self.reward_transform}

    def _prepare_updates(self) -> None:
        self._value_bounds()

    def _next_update(self) -> tuple[str, Update]:
        """The authors' fine-tuning update in ``learn_online`` (``online_variant="finetune"``), else the offline one."""
        if self._online_mode and self.online_variant == "finetune":
            return "lapo/finetune", self._finetune_update
        return "lapo", self._update

    def _weights(self, advantages: th.Tensor) -> th.Tensor:
        return advantage_weights(advantages, self.weighting, self.expectile, self.temperature, self.max_weight)

    def _update(self, batch_size: int) -> None:
        """One offline step, ``Latent.train`` (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None and self._value_bounds_tensor is not None
        policy, bounds = self.policy, self._value_bounds_tensor
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = policy.features(data.observations)
        next_features = policy.features(data.next_observations)
        actions = policy.critic_action_input(data.actions)
        decode_target = self.vae_target.decode

        # 1. Q on r + gamma * V(s') (online V); V on the target Q-networks at the target policy's noisy action
        with th.no_grad():
            target_q = q_target(data.rewards, data.dones, self.value(next_features), self.gamma)
            latent = self.actor_target.latent_action(features)
            noise = (th.randn_like(latent) * self.target_noise).clamp(-self.target_noise_clip, self.target_noise_clip)
            target_values = critic_values(self.critic_target, features, decode_target(features, latent + noise))
            target_v = value_target(target_values, self.doubleq_min, bounds[0], bounds[1])
        current_q = critic_values(self.critic, features, actions)
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)
        current_v = self.value(features)
        v_loss = F.mse_loss(current_v, target_v)
        minimize(self.value.optimizer, v_loss)

        # 2. the one-step advantage, with V after its update
        with th.no_grad():
            next_actions = decode_target(next_features, self.actor_target.latent_action(next_features))
            next_q = soft_clipped_values(
                critic_values(self.critic_target, next_features, next_actions), self.doubleq_min
            )
            advantages = one_step_advantages(data.rewards, data.dones, next_q, self.value(features), self.gamma)
            weights = self._weights(advantages)

        # 3. the advantage-weighted CVAE; 4. the latent policy through the target decoder
        vae_loss = self._fit_weighted_vae(features, actions, weights)
        _, decoded, _ = self.actor(features, decode_target)
        actor_loss = -q1_values(self.critic, features, decoded).mean()
        minimize(self.actor.optimizer, actor_loss)

        self._update_targets()
        self._log_losses(q_loss, v_loss, vae_loss, actor_loss, current_q, current_v, advantages, weights)

    def _finetune_update(self, batch_size: int) -> None:
        """One step of the authors' fine-tuning update (``algos_vae_finetune.py``, ``Latent.train``)."""
        assert self.replay_buffer is not None and self._value_bounds_tensor is not None
        policy, bounds = self.policy, self._value_bounds_tensor
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = policy.features(data.observations)
        next_features = policy.features(data.next_observations)
        actions = policy.critic_action_input(data.actions)

        with th.no_grad():
            target_q = q_target(data.rewards, data.dones, self.value_target(next_features), self.gamma)
            latent = self.actor_target.latent_action(features)
            std, clip = FINETUNE_TARGET_NOISE
            latent = latent + (th.randn_like(latent) * std).clamp(-clip, clip)
            target_values = critic_values(self.critic_target, features, self.vae_target.decode(features, latent))
            target_v = value_target(target_values, self.doubleq_min, bounds[0], bounds[1])
        current_q = critic_values(self.critic, features, actions)
        q_loss = critic_loss(current_q, target_q)
        minimize(self.critic.optimizer, q_loss)
        current_v = self.value(features)
        v_loss = F.mse_loss(current_v, target_v)
        minimize(self.value.optimizer, v_loss)

        with th.no_grad():
            std, clip = FINETUNE_ACTION_NOISE
            jittered = actions + (th.randn_like(actions) * std).clamp(-clip, clip)
            jittered_q = critic_values(self.critic_target, features, jittered).min(dim=1, keepdim=True).values
            advantages = jittered_q - self.value_target(features)
            weights = self._weights(advantages)
        vae_loss = self._fit_weighted_vae(features, jittered, weights)

        _, decoded, _ = self.actor(features, self.vae.decode)
        std, clip = FINETUNE_POLICY_NOISE
        noisy = decoded + (th.randn_like(decoded) * std).clamp(-clip, clip)
        actor_loss = -q1_values(self.critic, features, noisy).mean()
        minimize(self.actor.optimizer, actor_loss)

        self._update_targets()
        self._log_losses(q_loss, v_loss, vae_loss, actor_loss, current_q, current_v, advantages, weights)

    def _fit_weighted_vae(self, features: th.Tensor, actions: th.Tensor, weights: th.Tensor) -> th.Tensor:
        squared_error, kl = vae_sample_terms(self.vae, features, actions)
        loss = weighted_vae_loss(squared_error, kl, weights, self.kl_weight)
        minimize(self.vae.optimizer, loss)
        self._losses.add("reconstruction_loss", squared_error.detach().mean())
        self._losses.add("kl_loss", kl.detach().mean())
        return loss

    def _log_losses(
        self,
        q_loss: th.Tensor,
        v_loss: th.Tensor,
        vae_loss: th.Tensor,
        actor_loss: th.Tensor,
        current_q: th.Tensor,
        current_v: th.Tensor,
        advantages: th.Tensor,
        weights: th.Tensor,
    ) -> None:
        for name, value in (
            ("critic_loss", q_loss), ("value_loss", v_loss), ("vae_loss", vae_loss), ("actor_loss", actor_loss),
            ("q_value", current_q[:, 0].mean()), ("v_value", current_v.mean()), ("advantage", advantages.mean()),
            ("weight", weights.mean()),
        ):  # fmt: skip
            self._losses.add(name, value)

    # ------------------------------------------------------------------------------------ online
    def learn_online(
        self: SelfLAPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfLAPO:
        """
        ``OfflineAlgorithm.learn_online``; with ``online_variant="finetune"`` every update is the authors'
        fine-tuning one and the policy acts through the online decoder (from then on, as theirs does).
        """
        if self.online_variant == "finetune":
            self.policy.act_with = "online"
        return super().learn_online(
            total_timesteps, callback, log_interval, tb_log_name, reset_num_timesteps, progress_bar
        )

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        SB3's; ``reward_range`` (so ``min_v``, ``max_v``) follows the new rewards and (``online_statistics``) the
        z-score statistics the new states and actions, as the authors' fine-tuning.
        """
        normalized = self._vec_normalize_env is not None
        observations = self._last_original_obs if normalized else self._last_obs  # the state the action was taken in
        statistics = self.online_statistics
        if statistics if statistics is not None else self.online_variant == "finetune":
            if self._policy_statistics is None and isinstance(replay_buffer, OfflineReplayBuffer):
                self._policy_statistics = PolicyStatistics(self.policy, replay_buffer.size(), replay_buffer.buffer_size)
        else:
            self._policy_statistics = None
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        if self._policy_statistics is not None:
            self._policy_statistics.add(observations, buffer_action)
        original = self._vec_normalize_env.get_original_reward() if self._vec_normalize_env is not None else reward
        transform = getattr(replay_buffer, "reward_transform", None)
        stored = np.asarray(transform(np.asarray(original, dtype=np.float32)) if transform is not None else original)
        self.reward_range = widened_range(self.reward_range, stored)
