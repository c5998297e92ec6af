"""AWAC: Advantage-Weighted Actor-Critic (Nair, Gupta, Dalal, Levine 2020)."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, GymEnv, ReplayBufferSamples, Schedule

from sb3_offline.awac.policies import AWACPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.common.critics import critic_loss, critic_values, soft_clipped_target
from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import LearningRate
from sb3_offline.common.training import minimize
from sb3_offline.common.weights import softmax_weights
from sb3_offline.datasets.loaders import DatasetSource

SelfAWAC = TypeVar("SelfAWAC", bound="AWAC")


class AWAC(OfflineAlgorithm):
    """
    Advantage-Weighted Actor-Critic: Nair, Gupta, Dalal, Levine, "AWAC: Accelerating Online
    Reinforcement Learning with Offline Datasets", 2020 (https://arxiv.org/abs/2006.09359). Where the
    paper is silent, the authors' code: rlkit (``rail-berkeley/rlkit``, commit ac45a9d),
    ``rlkit/torch/sac/awac_trainer.py`` (``AWACTrainer``) and ``examples/awac/mujoco/awac1.py``.

    The policy improvement step is the projection of ``pi* ∝ pi_beta exp(A / lambda)`` onto the policy
    class by weighted maximum likelihood on the *dataset's* actions:
    ``max_pi E[log pi(a | s) * w(s, a)]`` with ``w = N * softmax(A / lambda)`` over the batch,
    ``A(s, a) = min_j Q_j(s, a) - V(s)`` and ``V(s) = min_j Q_j(s, a_pi)`` for one ``a_pi ~ pi(s)``
    (rlkit: ``awr_min_q=True``, ``awr_sample_actions=False``, ``awr_use_mle_for_vf=False``). Both terms
    of ``A`` come from the critics *before* this step's critic update, as in rlkit's
    ``train_from_torch``, which computes every loss first and then steps the optimizers. The critics
    regress on the clipped double-Q target ``r + gamma * (1 - termination) * min_j Q'_j(s', a')``,
    ``a' ~ pi(s')``, with no entropy term (the MuJoCo setup has ``alpha = 0``). Actions are in
    [-1, 1], the units of rlkit's ``NormalizedBoxEnv``.

    Offline training is ``learn(total_timesteps)`` (gradient steps), with rlkit's offline batch:
    ``pretrain_q_with_bc_data`` samples ``bc_batch_size`` (128) transitions for its 50k offline steps
    (``q_num_pretrain2_steps``). Fine-tuning is ``learn_online(total_timesteps)``: SB3's ordinary
    off-policy loop with rlkit's online batch (``online_batch_size``, 1024), acting with samples of the
    Gaussian (no extra noise), appending each transition after the dataset in the same buffer, whose
    ``buffer_size`` rows are reserved for that; the dataset keeps being replayed and is never copied.

    Defaults (``examples/awac/mujoco/awac1.py``): policy rlkit ``GaussianPolicy`` 4 x 256 (tanh mean,
    ``log sigma`` in [-6, 0] from state-independent values, rlkit's initialisation: hidden weights in
    ``+-1/sqrt(out_features)``, biases 0, last layer in +-1e-3), Q 2 x 256 (rlkit's ``ConcatMlp``: the same
    initialisation, last layer in +-3e-3),
    Adam lr 3e-4 for both, ``beta`` 2 (that file's ``search_space`` for HalfCheetah/Ant/Walker2d; the
    variant's own value is 1), policy weight decay 1e-4, tau 5e-3, gamma 0.99, replay buffer 1M (here:
    1M online rows after the dataset), batch 128 offline and 1024 online; weights by batch softmax
    (``normalize_over_batch=True``).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: critic learning rate (constant or schedule)
    :param actor_learning_rate: actor learning rate
    :param beta: advantage temperature (the paper's lambda)
    :param actor_weight_decay: weight decay of the actor's Adam
    :param batch_size: minibatch size of offline training (``learn``)
    :param online_batch_size: minibatch size of fine-tuning (``learn_online``)
    :param tau: target update rate
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "critic", "critic_target")
    target_networks = {"critic_target": "critic"}
    policy: AWACPolicy
    actor: GaussianActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic

    def __init__(
        self,
        policy: str | type[AWACPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float = 3e-4,
        beta: float = 2.0,
        actor_weight_decay: float = 1e-4,
        batch_size: int = 128,
        online_batch_size: int = 1024,
        tau: float = 5e-3,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if beta <= 0:
            raise ValueError(f"beta: expected > 0, found {beta}")
        self.beta = beta
        self.actor_learning_rate = actor_learning_rate
        self.actor_weight_decay = actor_weight_decay
        self.online_batch_size = online_batch_size
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def compute_critic_target(self, data: ReplayBufferSamples | DictReplayBufferSamples) -> th.Tensor:
        """``r + gamma * (1 - termination) * min_j Q'_j(s', a')`` with ``a' ~ pi(s')``: no entropy term."""
        with th.no_grad():
            next_features = self.policy.features(data.next_observations)
            next_actions = self.actor.sample(next_features)
            next_q = critic_values(self.critic_target, next_features, next_actions)
            return soft_clipped_target(next_q, data.rewards, data.dones, self.gamma, lmbda=1.0)

    def learning_rates(self) -> dict[str, LearningRate | None]:
        return {"actor": self.actor_learning_rate, "critic": None}

    def _policy_arguments(self) -> dict[str, Any]:
        return {"actor_optimizer_kwargs": {"weight_decay": self.actor_weight_decay}}

    def _next_update(self) -> tuple[str, Update]:
        return "awac", self._update

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        policy = self.policy
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = policy.features(data.observations)

        target_q = self.compute_critic_target(data)
        current_q = critic_values(self.critic, features, data.actions)
        q_loss = critic_loss(current_q, target_q)

        # The advantage of the dataset's actions, with the critics of this step before their update (rlkit).
        state_features = features.detach()
        with th.no_grad():
            q_data = current_q.min(dim=1).values
            policy_actions = self.actor.sample(state_features)
            value = critic_values(self.critic, state_features, policy_actions).min(dim=1).values
            advantages = q_data - value
            weights = softmax_weights(advantages, self.beta)

        minimize(self.critic.optimizer, q_loss)

        # Weighted maximum likelihood of the dataset's actions (the projection of pi*).
        actor_loss = self.actor.weighted_regression_step(state_features, data.actions, weights)

        self._update_targets()

        self._losses.add("critic_loss", q_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("q_value", q_data.mean())
        self._losses.add("advantage", advantages.mean())
        self._losses.add("max_weight", weights.max())
        self._losses.add("log_std", self.actor.log_std().mean())
