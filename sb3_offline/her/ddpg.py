"""``HerDDPG``: DDPG with the settings of Hindsight Experience Replay (Andrychowicz et al., NeurIPS 2017), offline."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, ReplayBufferSamples, Schedule

from sb3_offline.batch_ddpg import BatchDDPG, BatchDDPGPolicy
from sb3_offline.common.multi_input import aliases, multi_input_policy
from sb3_offline.common.schedules import StepSchedule
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.her.goals import GOAL_KEYS
from sb3_offline.her.her_replay_buffer import OfflineHerReplayBuffer

#: HER's actor and critic: 3 hidden layers of 256 (OpenAI baselines ``her``: ``layers=3``, ``hidden=256``)
HER_NET_ARCH = [256, 256, 256]
#: HER's bound of the normalised inputs (``norm_clip``)
HER_NORM_CLIP = 5.0


class HerDDPGPolicy(BatchDDPGPolicy):
    """
    :class:`~sb3_offline.batch_ddpg.BatchDDPGPolicy` with HER's networks: actor and critic 256-256-256, the action at
    the critic's input (``[s, g, a]``, OpenAI baselines ``her/actor_critic.py``), no weight decay.

    :param observation_space: observation space (``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes (default 256-256-256)
    :param critic_action_at_input: ``False`` gives the BCQ authors' 2018 critic (action at the second layer)
    :param kwargs: the rest of ``BatchDDPGPolicy``'s arguments
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        critic_action_at_input: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=list(HER_NET_ARCH) if net_arch is None else net_arch,
            critic_action_at_input=critic_action_at_input,
            **kwargs,
        )


MlpPolicy = HerDDPGPolicy
MultiInputPolicy = multi_input_policy(HerDDPGPolicy, __name__)


class HerDDPG(BatchDDPG):
    """
    DDPG as Hindsight Experience Replay trains it on the Fetch tasks, from a dataset: Andrychowicz et al.,
    "Hindsight Experience Replay", NeurIPS 2017 (https://arxiv.org/abs/1707.01495, appendix), following their code
    (OpenAI baselines, commit ea25b9e, ``baselines/her/experiment/config.py``, ``ddpg.py``, ``actor_critic.py``).
    :class:`~sb3_offline.batch_ddpg.BatchDDPG` with HER's settings as defaults, as SB3's ``DDPG`` is its ``TD3``
    with DDPG's:

    - the dataset replayed with hindsight relabelling (``replay_buffer_class``:
      :class:`~sb3_offline.her.OfflineHerReplayBuffer`, ``future`` goals, ``n_sampled_goal=4``: their
      ``replay_strategy``, ``replay_k``); ``replay_buffer_class=None`` replays it as recorded;
    - inputs normalised with the dataset's statistics, ``clip((x - mean) / max(std, 0.01), -5, 5)``, the achieved
      and desired goals sharing one statistic (``normalize_observations=True``; their ``norm_eps``, ``norm_clip``;
      they update the statistics as their buffer grows, the dataset's are fixed);
    - actor and critic 256-256-256, the action at the critic's input, Adam with lr 1e-3 for both, no weight
      decay (:class:`HerDDPGPolicy`), batch 256, ``tau = 1 - polyak = 0.05``, ``gamma = 1 - 1/T = 0.98`` (``T``:
      the Fetch tasks' 50 steps);
    - the critic's target clipped to ``[-1 / (1 - gamma), 0]``, the values a return of rewards in ``[-1, 0]``
      can take (``clip_return``; their ``clip_pos_returns``);
    - the actor's loss ``-mean Q(s, g, pi(s, g)) + action_l2 * mean pi(s, g)^2``, ``pi`` in [-1, 1] (their
      ``pi / max_u``), ``action_l2 = 1``.

    Where it differs from their code: the targets move after every update (theirs after each cycle of 40), the
    policy sees every key of the observation (theirs ``observation`` and ``desired_goal``; on FetchReach the
    achieved goal is part of ``observation`` too), and the terminations of the data stop the bootstrap (the Fetch
    tasks have none). A checkpoint loads with ``HerDDPG.load`` (``BatchDDPG.load`` refuses it: another algorithm).

    :param policy: ``"MultiInputPolicy"`` (goal-conditioned ``Dict`` observations), ``"MlpPolicy"`` or a class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: critic learning rate (their ``Q_lr``)
    :param actor_learning_rate: actor learning rate (their ``pi_lr``)
    :param critic_weight_decay: L2 weight decay of the critic's optimizer (none in HER)
    :param action_l2: weight of the actor's penalty on its actions' squares (their ``action_l2``)
    :param clip_return: clip the critic's target to ``[-1 / (1 - gamma), 0]``
    :param normalize_observations: normalise the inputs as HER (dataset statistics, clipped to [-5, 5])
    :param replay_buffer_class: the buffer that replays the dataset (``None``: without relabelling)
    :param batch_size: minibatch size
    :param tau: soft update coefficient (``1 - polyak``)
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.batch_ddpg.BatchDDPG`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    #: HER's input normalisation, ``max(std, 0.01)`` (``norm_eps``); the clip and the pooled goals: :meth:`_setup_model`
    observation_normalizer = (0.01, "max")

    def __init__(
        self,
        policy: str | type[HerDDPGPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 1e-3,
        actor_learning_rate: float | Schedule | StepSchedule = 1e-3,
        critic_weight_decay: float = 0.0,
        action_l2: float = 1.0,
        clip_return: bool = True,
        normalize_observations: bool = True,
        replay_buffer_class: type[ReplayBuffer] | None = OfflineHerReplayBuffer,
        batch_size: int = 256,
        tau: float = 0.05,
        gamma: float = 0.98,
        **kwargs: Any,
    ) -> None:
        if action_l2 < 0:
            raise ValueError(f"action_l2: expected >= 0, found {action_l2}")
        self.action_l2 = action_l2
        self.clip_return = clip_return
        self.normalize_observations = normalize_observations
        super().__init__(
            policy,
            env,
            dataset=dataset,
            learning_rate=learning_rate,
            actor_learning_rate=actor_learning_rate,
            critic_weight_decay=critic_weight_decay,
            replay_buffer_class=replay_buffer_class,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            **kwargs,
        )

    def _setup_model(self) -> None:
        if self.normalize_observations:  # HER's clip, and one statistic for both goals (given kwargs win)
            space = self.observation_space
            goals = isinstance(space, spaces.Dict) and set(GOAL_KEYS) <= set(space.spaces)
            her = {"clip": HER_NORM_CLIP, **({"pooled_keys": [list(GOAL_KEYS)]} if goals else {})}
            given = self.policy_kwargs.get("features_extractor_kwargs") or {}
            self.policy_kwargs = {**self.policy_kwargs, "features_extractor_kwargs": {**her, **given}}
        super()._setup_model()

    @th.no_grad()
    def compute_critic_target(self, data: ReplayBufferSamples) -> th.Tensor:
        """BatchDDPG's target, clipped to ``[-1 / (1 - gamma), 0]`` with ``clip_return``."""
        target_q = super().compute_critic_target(data)
        return target_q.clamp(-1.0 / (1.0 - self.gamma), 0.0) if self.clip_return else target_q

    def compute_actor_loss(self, data: ReplayBufferSamples) -> th.Tensor:
        """``-mean Q(s, pi(s)) + action_l2 * mean pi(s)^2`` (``pi`` in [-1, 1])."""
        actions = self.actor(data.observations)
        loss = -self.critic.q1_forward(data.observations, actions).mean()
        return loss + self.action_l2 * actions.pow(2).mean() if self.action_l2 else loss
