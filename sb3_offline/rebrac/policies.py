"""Networks of ReBRAC: a deterministic actor and two critics on one ensemble, 3 x 256, with LayerNorm in the critics."""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor
from torch import nn

from sb3_offline.common.ensemble import EnsembleCritic, fanin_init
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.td3bc.policies import TD3BCPolicy

#: Hidden sizes of actor and critics in the authors' code (``hidden_dim=256``, ``actor_n_hiddens=critic_n_hiddens=3``)
REBRAC_NET_ARCH = [256, 256, 256]
#: flax's ``nn.LayerNorm`` epsilon (the authors' LayerNorm; PyTorch's default is 1e-5)
LAYER_NORM_EPS = 1e-6
#: the hidden layers' bias and the output layers' bound of the authors' initialisation ("as in the EDAC paper")
HIDDEN_BIAS, ACTOR_LAST_BOUND, CRITIC_LAST_BOUND = 0.1, 1e-3, 3e-3


def rebrac_mlp(input_dim: int, output_dim: int, net_arch: list[int], layer_norm: bool) -> list[nn.Module]:
    """
    The authors' ``DetActor`` body: ``Linear -> ReLU [-> LayerNorm]`` per hidden layer, a linear output and
    ``tanh``; initialised as theirs (``src/nn.py``: ``pytorch_init(fan_in)``, uniform in ``+-1 / sqrt(fan_in)``, on the
    hidden weights, hidden biases 0.1, the output's weights and bias uniform in ``+-1e-3``).
    """
    layers: list[nn.Module] = []
    sizes = [input_dim, *net_arch]
    for in_size, out_size in itertools.pairwise(sizes):
        layers += [nn.Linear(in_size, out_size), nn.ReLU()]
        if layer_norm:
            layers.append(nn.LayerNorm(out_size, eps=LAYER_NORM_EPS))
    layers += [nn.Linear(sizes[-1], output_dim), nn.Tanh()]
    linears = [layer for layer in layers if isinstance(layer, nn.Linear)]
    with th.no_grad():
        for linear in linears[:-1]:
            bound = 1.0 / math.sqrt(linear.in_features)
            linear.weight.uniform_(-bound, bound)
            linear.bias.fill_(HIDDEN_BIAS)
        linears[-1].weight.uniform_(-ACTOR_LAST_BOUND, ACTOR_LAST_BOUND)
        linears[-1].bias.uniform_(-ACTOR_LAST_BOUND, ACTOR_LAST_BOUND)
    return layers


class ReBRACActor(Actor):
    """
    TD3's deterministic actor (SB3's ``Actor``: ``tanh`` output in [-1, 1], rescaled to the action Box by the policy)
    with the authors' ``DetActor`` in ``mu`` (:func:`rebrac_mlp`: their initialisation, LayerNorm as an option).

    :param layer_norm: a LayerNorm after each hidden activation (the authors' ``actor_ln``)
    :param kwargs: SB3's ``Actor`` arguments
    """

    def __init__(self, *args: Any, layer_norm: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layer_norm = layer_norm
        self.mu = nn.Sequential(
            *rebrac_mlp(self.features_dim, get_action_dim(self.action_space), self.net_arch, layer_norm)
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(layer_norm=self.layer_norm)
        return data


def rebrac_critic_init(ensemble: Any) -> None:
    """The authors' ``Critic`` initialisation, member by member: :func:`~sb3_offline.common.ensemble.fanin_init`."""
    fanin_init(ensemble, hidden_bias=HIDDEN_BIAS, last_bound=CRITIC_LAST_BOUND)


class ReBRACPolicy(TD3BCPolicy):
    """
    ReBRAC's networks as its authors build them (``tinkoff-ai/ReBRAC`` commit 694385b, ``src/networks.py``, and CORL's
    ``algorithms/offline/rebrac.py``): a deterministic actor (:class:`ReBRACActor`, 3 x 256, no LayerNorm by default)
    and ``n_critics=2`` critics (3 x 256, ``Linear -> ReLU -> LayerNorm``, the state and action at their input) held as
    one :class:`~sb3_offline.common.ensemble.EnsembleCritic` (their ``EnsembleCritic``, an ``nn.vmap`` of ``Critic``),
    each network with a target copy that starts equal to it. Every layer is initialised as theirs (hidden weights
    uniform in ``+-1 / sqrt(fan_in)``, hidden biases 0.1, output layers uniform in ``+-1e-3`` (actor) and ``+-3e-3``
    (critics)); the LayerNorms use flax's epsilon 1e-6. TD3+BC's policy (SB3's ``TD3Policy``) builds each network's
    optimizer (the authors: Adam, 1e-3 for both; the learning rates are the algorithm's, set before every update).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: the learning rate every optimizer is built with (the algorithm sets each one's)
    :param net_arch: hidden sizes, for both networks or ``dict(pi=[...], qf=[...])`` (default 3 x 256)
    :param actor_layer_norm: LayerNorm in the actor (the authors' ``actor_ln``, default off)
    :param critic_layer_norm: LayerNorm in the critics (the authors' ``critic_ln``, default on)
    :param kwargs: the rest of ``TD3Policy``'s arguments (features extractor, optimizer, ``n_critics`` ...)
    """

    default_net_arch: dict[str, list[int]] = {"pi": REBRAC_NET_ARCH, "qf": REBRAC_NET_ARCH}
    critic: EnsembleCritic  # type: ignore[assignment]
    critic_target: EnsembleCritic  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        actor_layer_norm: bool = False,
        critic_layer_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        self.actor_layer_norm = actor_layer_norm
        self.critic_layer_norm = critic_layer_norm
        net_arch = list(REBRAC_NET_ARCH) if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(actor_layer_norm=self.actor_layer_norm, critic_layer_norm=self.critic_layer_norm)
        return data

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> ReBRACActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return ReBRACActor(**actor_kwargs, layer_norm=self.actor_layer_norm).to(self.device)

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> EnsembleCritic:  # type: ignore[override]
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return EnsembleCritic(
            **critic_kwargs, layer_norm=self.critic_layer_norm, init=rebrac_critic_init, layer_norm_eps=LAYER_NORM_EPS
        ).to(self.device)


MlpPolicy = ReBRACPolicy


MultiInputPolicy = multi_input_policy(ReBRACPolicy, __name__)
