"""Networks of AWAC: rlkit's Gaussian actor (tanh mean, unsquashed samples) and twin critics."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule

from sb3_offline.common.initialization import rlkit_init
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.policies import GaussianActorCriticPolicy

#: rlkit's AWAC setup for MuJoCo (examples/awac/mujoco): policy 4 x 256, Q-functions 2 x 256.
AWAC_NET_ARCH = {"pi": [256, 256, 256, 256], "qf": [256, 256]}


#: rlkit's bounds of the last layers' initial weights: ``GaussianPolicy`` (the actor) and ``Mlp`` (the critics)
ACTOR_INIT_W, CRITIC_INIT_W = 1e-3, 3e-3


class AWACPolicy(GaussianActorCriticPolicy):
    """
    The networks of AWAC (Nair, Gupta, Dalal, Levine 2020): rlkit's Gaussian actor (``log sigma`` through a sigmoid
    into ``[min_log_std, max_log_std]``; no target copy) and two critics with targets. ``predict(deterministic=True)``
    returns the mean, ``deterministic=False`` a clipped sample (what online fine-tuning explores with).

    Initialised as the authors' (rlkit, as ``awac1.py`` builds its networks): the actor's hidden weights in
    ``+-1/sqrt(out_features)``, biases 0, last-layer weights in ``+-1e-3`` (``GaussianPolicy``); the critics the same
    with ``+-3e-3`` (``ConcatMlp``, its ``Mlp`` default).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param min_log_std: lower bound of the actor's ``log sigma``
    :param max_log_std: upper bound of the actor's ``log sigma``
    :param kwargs: :class:`~sb3_offline.common.policies.OfflineActorCriticPolicy`'s arguments
        (``net_arch`` default ``dict(pi=[256] * 4, qf=[256, 256])``, ``actor_optimizer_kwargs``, ...)
    """

    default_net_arch = AWAC_NET_ARCH
    log_std_mode = "sigmoid"
    actor_init_w = ACTOR_INIT_W

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        min_log_std: float = -6.0,
        max_log_std: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, min_log_std, max_log_std, **kwargs)
        self._build(lr_schedule)
        for q_net in self.critic.q_networks:
            rlkit_init(q_net, CRITIC_INIT_W)
        self.critic_target.load_state_dict(self.critic.state_dict())


MlpPolicy = AWACPolicy


MultiInputPolicy = multi_input_policy(AWACPolicy, __name__)
