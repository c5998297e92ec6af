"""Networks of TD3+BC: TD3's deterministic actor and twin critics, on SB3's ``TD3Policy``."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import TD3Policy

from sb3_offline.common.multi_input import multi_input_policy

#: Hidden sizes of actor and critics in the authors' ``TD3_BC.py`` (``sfujim/TD3_BC``): 256-256.
TD3BC_NET_ARCH = [256, 256]


class TD3BCPolicy(TD3Policy):
    """
    TD3's networks as TD3+BC's authors build them (``sfujim/TD3_BC`` commit 8791ad7, ``TD3_BC.py``): a
    deterministic actor 256-256 (``tanh`` output, rescaled to the action Box), two critics 256-256 with the
    action at their input, each network with a target copy. SB3's ``TD3Policy`` with its default layout
    (``n_critics=2``, one features extractor per network), which builds each network's optimizer (the authors:
    Adam, 3e-4 for both; the learning rates are the algorithm's, set before every update); only the default
    sizes differ.

    The state normalisation of TD3+BC is a features extractor with the dataset's statistics
    (:mod:`sb3_offline.common.normalization`), which :class:`~sb3_offline.td3bc.TD3BC` passes in
    ``features_extractor_class`` when ``normalize_observations=True``.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])`` (default 256-256)
    :param kwargs: the rest of ``TD3Policy``'s arguments (features extractor, optimizer, ``n_critics`` ...)
    """

    default_net_arch: dict[str, list[int]] = {"pi": TD3BC_NET_ARCH, "qf": TD3BC_NET_ARCH}

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        **kwargs: Any,
    ) -> None:
        net_arch = list(TD3BC_NET_ARCH) if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)


MlpPolicy = TD3BCPolicy


MultiInputPolicy = multi_input_policy(TD3BCPolicy, __name__)
