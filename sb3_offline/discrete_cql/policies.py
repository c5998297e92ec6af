"""
Networks of DiscreteCQL: SB3's ``DQNPolicy`` (``base="dqn"``) and sb3-contrib's ``QRDQNPolicy`` (``base="qrdqn"``),
with the references' hidden sizes and optimizer settings; their checkpoints' networks are theirs.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_offline.common.discrete import DiscreteQPolicy

#: d3rlpy 2.8.1's default encoder for vector observations (``VectorEncoderFactory``: 256-256, ReLU); the CQL authors
#: have no vector setting (their discrete runs are on Atari frames, with the Nature DQN network)
DISCRETE_CQL_NET_ARCH = [256, 256]
#: the CQL authors' Adam epsilon on Atari (``atari/batch_rl/fixed_replay/configs/quantile.gin``:
#: ``tf.train.AdamOptimizer.epsilon = 0.0003125``, QR-DQN's ``0.01 / 32``)
QRDQN_ADAM_EPS = 0.0003125


def _default_net_arch(net_arch: list[int] | None, features_extractor_class: type[BaseFeaturesExtractor]) -> Any:
    """``DISCRETE_CQL_NET_ARCH`` on vector features; SB3's own default (none after the CNN) otherwise."""
    if net_arch is None and features_extractor_class is not NatureCNN:
        return list(DISCRETE_CQL_NET_ARCH)
    return net_arch


class DiscreteCQLPolicy(DiscreteQPolicy):
    """
    SB3's ``DQNPolicy`` (``q_net``, ``q_net_target``; ``predict``: the argmax of ``Q(s, .)``; the optimizer also
    ``q_net.optimizer``, :class:`~sb3_offline.common.discrete.DiscreteQPolicy`) with d3rlpy's hidden sizes (256-256
    on vector observations) and optimizer: Adam, SB3's and d3rlpy's settings (``eps=1e-8``).

    :param observation_space: observation space
    :param action_space: a ``Discrete`` action space
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden sizes of the Q-network (default 256-256; none after a ``NatureCNN``)
    :param features_extractor_class: SB3's features extractor (``FlattenExtractor``; ``NatureCNN`` for images)
    :param kwargs: SB3's ``DQNPolicy``'s other arguments
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=_default_net_arch(net_arch, features_extractor_class),
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )


class QuantileCQLPolicy(QRDQNPolicy):
    """
    sb3-contrib's ``QRDQNPolicy`` (``quantile_net``, ``quantile_net_target``; 200 quantiles; ``predict``: the argmax
    of the quantiles' mean) with 256-256 hidden layers on vector observations and the CQL authors' Adam
    (``eps=0.0003125``, ``atari/batch_rl/fixed_replay/configs/quantile.gin``), held as ``quantile_net.optimizer``.

    :param observation_space: observation space
    :param action_space: a ``Discrete`` action space
    :param lr_schedule: learning rate schedule
    :param n_quantiles: quantiles per action (the authors' ``num_atoms = 200``)
    :param net_arch: hidden sizes (default 256-256; none after a ``NatureCNN``)
    :param features_extractor_class: SB3's features extractor (``FlattenExtractor``; ``NatureCNN`` for images)
    :param optimizer_kwargs: the optimizer's arguments (default ``eps=0.0003125`` with Adam)
    :param kwargs: sb3-contrib's ``QRDQNPolicy``'s other arguments
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        n_quantiles: int = 200,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        optimizer_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if optimizer_kwargs is None and kwargs.get("optimizer_class", th.optim.Adam) is th.optim.Adam:
            optimizer_kwargs = {"eps": QRDQN_ADAM_EPS}
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            n_quantiles=n_quantiles,
            net_arch=_default_net_arch(net_arch, features_extractor_class),
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            optimizer_kwargs=optimizer_kwargs,
            **kwargs,
        )
        self.quantile_net.optimizer = self.optimizer  # type: ignore[assignment]


def _with_extractor(policy_class: type, extractor: type[BaseFeaturesExtractor], name: str, doc: str) -> type:
    """A subclass of ``policy_class`` whose default features extractor is ``extractor``, named ``name`` here."""

    def __init__(self: Any, *args: Any, features_extractor_class: type = extractor, **kwargs: Any) -> None:
        policy_class.__init__(self, *args, features_extractor_class=features_extractor_class, **kwargs)  # type: ignore[misc]

    namespace = {"__init__": __init__, "__module__": __name__, "__qualname__": name, "__doc__": doc}
    return type(name, (policy_class,), namespace)


MlpPolicy = DiscreteCQLPolicy
CnnPolicy = _with_extractor(
    DiscreteCQLPolicy, NatureCNN, "CnnPolicy", ":class:`DiscreteCQLPolicy` on images (SB3's ``NatureCNN``)."
)
MultiInputPolicy = _with_extractor(
    DiscreteCQLPolicy, CombinedExtractor, "MultiInputPolicy", ":class:`DiscreteCQLPolicy` for ``Dict`` observations."
)
QuantileMlpPolicy = QuantileCQLPolicy
QuantileCnnPolicy = _with_extractor(
    QuantileCQLPolicy, NatureCNN, "QuantileCnnPolicy", ":class:`QuantileCQLPolicy` on images (SB3's ``NatureCNN``)."
)
QuantileMultiInputPolicy = _with_extractor(
    QuantileCQLPolicy,
    CombinedExtractor,
    "QuantileMultiInputPolicy",
    ":class:`QuantileCQLPolicy` for ``Dict`` observations.",
)
