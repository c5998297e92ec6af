"""IQL: Implicit Q-Learning (Kostrikov, Nair, Levine 2022)."""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, GymEnv, ReplayBufferSamples, Schedule

from sb3_offline.buffers import RewardTransformSpec
from sb3_offline.common.critics import ValueNetwork, critic_loss, critic_values
from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.schedules import CosineDecaySchedule, LearningRate, initial_value
from sb3_offline.common.training import minimize
from sb3_offline.common.weights import exp_weights, expectile_loss
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.iql.policies import IQLPolicy, MlpPolicy, MultiInputPolicy

SelfIQL = TypeVar("SelfIQL", bound="IQL")

#: the reward rules of the authors' ``train_offline.py``, by the tasks they were made for (the zoo entries set them)
AUTHORS_REWARD_RULES = {
    "halfcheetah": "iql_locomotion",
    "walker2d": "iql_locomotion",
    "hopper": "iql_locomotion",
    "antmaze": "antmaze",
}


class CosineDecayOverRun:
    """
    ``initial * (1 + cos(pi * (1 - progress_remaining))) / 2``: optax's ``cosine_decay_schedule(initial, max_steps)``
    with ``max_steps`` the run's gradient steps, as an SB3 schedule of the progress remaining through the run
    (``1 - num_timesteps / total_timesteps``): at the ``k``-th of ``N`` steps, ``initial * (1 + cos(pi k / N)) / 2``.

    :param initial: the learning rate at the run's first step
    """

    def __init__(self, initial: float) -> None:
        self.initial = float(initial)

    def __call__(self, progress_remaining: float) -> float:
        fraction = min(max(1.0 - progress_remaining, 0.0), 1.0)
        return self.initial * 0.5 * (1.0 + math.cos(math.pi * fraction))

    def __repr__(self) -> str:
        return f"CosineDecayOverRun(initial={self.initial})"


def check_iql_arguments(
    expectile: float, temperature: float, max_weight: float, actor_lr_decay_steps: int | str | None
) -> None:
    """IQL's hyper-parameters (also DiscreteIQL's): a clear error naming the first one out of its range."""
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile: expected a value in (0, 1), found {expectile}")
    if temperature < 0:
        raise ValueError(f"temperature: expected >= 0, found {temperature}")
    if max_weight <= 0:
        raise ValueError(f"max_weight: expected > 0, found {max_weight}")
    if actor_lr_decay_steps not in (None, "auto") and (
        isinstance(actor_lr_decay_steps, bool | str) or not actor_lr_decay_steps >= 1  # type: ignore[operator]
    ):
        raise ValueError(
            f"actor_lr_decay_steps: expected 'auto', None or >= 1 gradient step, found {actor_lr_decay_steps!r}"
        )


class IQL(OfflineAlgorithm):
    """
    Implicit Q-Learning: Kostrikov, Nair, Levine, "Offline Reinforcement Learning with Implicit
    Q-Learning", ICLR 2022 (https://arxiv.org/abs/2110.06169). The update follows the authors' code,
    ``ikostrikov/implicit_q_learning`` (commit 09d7002): ``learner.py`` (``_update_jit``), ``critic.py``
    (``update_v``, ``update_q``), ``actor.py`` (``update``), ``value_net.py``, ``policy.py``, ``train_offline.py``,
    ``train_finetune.py`` and ``configs/``; PyTorch details as rlkit's port
    (``rail-berkeley/rlkit`` commit ac45a9d, ``rlkit/torch/sac/iql_trainer.py``), whose order differs (see below).

    One gradient step, in the authors' order, on one batch:

    1. ``V`` by expectile regression on the *target* critics:
       ``L_V = mean(|expectile - 1(u < 0)| u^2)``, ``u = min_j Q'_j(s, a) - V(s)``;
    2. the actor by advantage-weighted regression with the **new** ``V``:
       ``L_pi = -mean(min(exp(temperature * (min_j Q'_j(s, a) - V(s))), 100) * log pi(a | s))``;
    3. the twin critics on ``r + gamma * (1 - termination) * V(s')`` with the **new** ``V``, the sum of
       the two mean squared errors;
    4. Polyak averaging of the target critics (``tau``); the actor and ``V`` have no target.

    rlkit's ``IQLTrainer`` computes every loss first and then steps the optimizers, so its Q target and
    advantage use ``V`` before its update; we follow the authors. No step ever evaluates a critic on an
    action that is not in the dataset.

    The policy is a Gaussian with a ``tanh`` mean and unsquashed samples (the authors'
    ``NormalTanhPolicy`` with ``tanh_squash_distribution=False``, state-independent ``log sigma``
    clipped to [-5, 2]); the shared :class:`~sb3_offline.common.gaussian_actor.GaussianActor` with
    ``log_std_mode="clip"``. Acting: the mean (``deterministic=True``, the authors' evaluation) or a
    sample clipped to [-1, 1] (fine-tuning). Every network starts as the authors' (``common.py``,
    ``default_init``): each linear layer orthogonal with gain ``sqrt(2)``, biases 0 (``IQLPolicy``; other
    initialisations are benchmark variants, ``benchmarks/variants.py``).

    The actor's learning rate decays as optax's ``cosine_decay_schedule(-actor_lr, max_steps)`` (the authors'),
    ``max_steps`` being the run's length (``train_offline.py``: ``max_steps=FLAGS.max_steps``, the run's gradient
    steps). ``actor_lr_decay_steps="auto"`` (default) decays over the run: :class:`CosineDecayOverRun`, an SB3
    schedule of the progress through ``learn``'s ``total_timesteps``. As SB3's own schedules, a
    ``learn(n, reset_num_timesteps=False)`` that continues a run stretches the cosine over all of the run's steps
    (the rate is the longer cosine's from there on), a checkpoint resumed with ``learn(remaining,
    reset_num_timesteps=False)`` continues it exactly, and ``learn(n)`` with ``reset_num_timesteps=True`` starts a
    new run and a new decay. An int is a fixed horizon of gradient updates
    (:class:`~sb3_offline.common.schedules.CosineDecaySchedule`), which continues across ``learn`` calls and
    checkpoints. In ``learn_online`` the actor's learning rate is the constant ``actor_learning_rate`` (its initial
    value), as ``configs/antmaze_finetune_config.py`` turns the decay off (``opt_decay_schedule = None``);
    ``actor_lr_decay_steps=None`` turns it off offline too (that config's offline phase).

    Rewards are transformed in the buffer, for the dataset and for online rewards alike (``reward_transform``),
    by default not at all: the authors' rules are per task (``train_offline.py``), ``"iql_locomotion"``
    (``normalize``, ``r * 1000 / (max - min episode return)``) for HalfCheetah, Walker2d and Hopper only, and
    ``"antmaze"`` (``r - 1``) for AntMaze (:data:`AUTHORS_REWARD_RULES`; the zoo's entries for those tasks set
    them). On other data the locomotion rule would rescale every advantage, and so the meaning of
    ``temperature``, by ``1000 / spread``.
    The authors normalise no states; ``normalize_observations=True`` standardises them with the
    dataset's mean and ``std + 1e-3``, as CORL's IQL does.

    Offline training is ``learn(total_timesteps)`` (gradient steps); fine-tuning is
    ``learn_online(total_timesteps)``: SB3's off-policy loop acting with samples of the Gaussian,
    appending each transition after the dataset in the same buffer (``buffer_size`` rows reserved),
    one update per env step on batches from dataset and new transitions together (``train_finetune.py``).

    Defaults (``configs/mujoco_config.py``, ``train_offline.py``): actor, critics and value 256-256, Adam lr
    3e-4 for all three, batch 256, tau 0.005, gamma 0.99, ``expectile`` 0.7, ``temperature`` 3, weight clip
    100; on the locomotion tasks ``reward_transform="iql_locomotion"``. AntMaze (``configs/antmaze_config.py``):
    ``expectile=0.9``, ``temperature=10``, ``reward_transform="antmaze"``.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the critics (constant or schedule)
    :param actor_learning_rate: the actor's (initial) learning rate
    :param value_learning_rate: the value network's learning rate (``None``: ``learning_rate``)
    :param actor_lr_decay_steps: over how many gradient updates the actor's learning rate decays to 0 along a
        cosine (offline): ``"auto"``, the run's (``learn``'s ``total_timesteps``), an int, or ``None``: constant
    :param expectile: the expectile of the value regression, in (0, 1) (the paper's tau)
    :param temperature: inverse temperature of the advantage weights (the paper's beta; it multiplies ``A``)
    :param max_weight: clip of the advantage weights
    :param reward_transform: the buffer's reward transform: ``None`` (rewards as recorded), ``"iql_locomotion"``
        (the authors' on HalfCheetah, Walker2d and Hopper), ``"antmaze"``, ``dict(scale=..., shift=...)``, or
        another registered rule; the resolved transform is saved with the
        model (``replay_buffer_kwargs``) and applied as is when a loaded model reads its data again
    :param normalize_observations: standardise observations with the dataset's statistics (CORL), kept in
        the policy (its features extractor)
    :param batch_size: minibatch size
    :param online_batch_size: minibatch size of ``learn_online`` (``None``: ``batch_size``, as the authors)
    :param tau: target update rate
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "critic", "critic_target", "value")
    target_networks = {"critic_target": "critic"}
    #: CORL's state normalisation for IQL (``tinkoff-ai/CORL`` commit f608d88, ``algorithms/offline/iql.py``,
    #: ``compute_mean_std(..., eps=1e-3)``): ``(s - mean) / (std + 1e-3)``
    observation_normalizer = (1e-3, "add")
    policy: IQLPolicy
    actor: GaussianActor
    critic: ContinuousCritic
    critic_target: ContinuousCritic
    value: ValueNetwork

    def __init__(
        self,
        policy: str | type[IQLPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float = 3e-4,
        value_learning_rate: float | Schedule | None = None,
        actor_lr_decay_steps: int | str | None = "auto",
        expectile: float = 0.7,
        temperature: float = 3.0,
        max_weight: float = 100.0,
        reward_transform: RewardTransformSpec = None,
        normalize_observations: bool = False,
        batch_size: int = 256,
        online_batch_size: int | None = None,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        check_iql_arguments(expectile, temperature, max_weight, actor_lr_decay_steps)
        if online_batch_size is not None and online_batch_size < 1:
            raise ValueError(f"online_batch_size: expected None or >= 1, found {online_batch_size}")
        self.expectile = expectile
        self.temperature = temperature
        self.max_weight = max_weight
        self.actor_learning_rate = actor_learning_rate
        self.value_learning_rate = value_learning_rate
        self.actor_lr_decay_steps = actor_lr_decay_steps
        self.reward_transform = reward_transform
        self.normalize_observations = normalize_observations
        self.online_batch_size = online_batch_size
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def learning_rates(self) -> dict[str, LearningRate | None]:
        """
        The actor's decays along a cosine offline (``actor_lr_decay_steps``: over the run, or a fixed number of
        updates); in ``learn_online`` it is the constant ``actor_learning_rate``, as
        ``configs/antmaze_finetune_config.py`` turns the decay off.
        """
        actor: LearningRate = self.actor_learning_rate
        if self.actor_lr_decay_steps == "auto" and not self._online_mode:
            actor = CosineDecayOverRun(initial_value(self.actor_learning_rate))
        elif self.actor_lr_decay_steps is not None and not self._online_mode:
            actor = CosineDecaySchedule(initial_value(self.actor_learning_rate), int(self.actor_lr_decay_steps))
        return {"critic": None, "value": self.value_learning_rate, "actor": actor}

    def _buffer_arguments(self) -> dict[str, Any]:
        return {} if self.reward_transform is None else {"reward_transform": self.reward_transform}

    def compute_critic_target(self, data: ReplayBufferSamples | DictReplayBufferSamples) -> th.Tensor:
        """``r + gamma * (1 - termination) * V(s')`` with the value network as it is now, ``(batch, 1)``."""
        with th.no_grad():
            next_value = self.value(self.policy.features(data.next_observations))
            return data.rewards + (1.0 - data.dones) * self.gamma * next_value

    def target_q_values(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``min_j Q'_j(s, a)`` of the target critics, ``(batch, 1)``, no gradient."""
        with th.no_grad():
            return critic_values(self.critic_target, features, actions).min(dim=1, keepdim=True).values

    def _next_update(self) -> tuple[str, Update]:
        return "iql", self._update

    def _update(self, batch_size: int) -> None:
        """One gradient step (device work only: it may be replayed as a CUDA graph)."""
        assert self.replay_buffer is not None
        data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        features = self.policy.features(data.observations)  # no trainable parameters in the extractor
        target_q = self.target_q_values(features, data.actions)

        # 1. V: expectile regression on the target critics' minimum
        value = self.value(features)
        value_loss = expectile_loss(target_q - value, self.expectile)
        minimize(self.value.optimizer, value_loss)

        # 2. the actor: advantage-weighted regression with the new V
        with th.no_grad():
            advantages = target_q - self.value(features)
            weights = exp_weights(advantages, self.temperature, self.max_weight)
        actor_loss = self.actor.weighted_regression_step(features, data.actions, weights)

        # 3. the critics on r + gamma * (1 - d) * V(s'), the new V
        current_q = critic_values(self.critic, features, data.actions)
        q_loss = critic_loss(current_q, self.compute_critic_target(data))
        minimize(self.critic.optimizer, q_loss)

        self._update_targets()

        self._losses.add("value_loss", value_loss)
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("critic_loss", q_loss)
        self._losses.add("value", value.detach().mean())
        self._losses.add("q_value", current_q.detach().mean())
        self._losses.add("advantage", advantages.mean())
        self._losses.add("max_weight", weights.max())
        self._losses.add("log_std", self.actor.log_std().detach().mean())
