"""
Networks of Cal-QL: CQL's (SB3's ``SACPolicy``), with the sizes, the initialisation and the actor's ``log sigma``
head of Cal-QL's authors' JAX code.
"""

from __future__ import annotations

import math
from typing import Any

import torch as th
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.sac.policies import LOG_STD_MIN, Actor
from torch import nn

from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.cql.policies import CQLPolicy, linear_layers

#: Hidden sizes in Cal-QL's authors' AntMaze script (``nakamotoo/Cal-QL``, ``scripts/run_antmaze.sh``:
#: ``--policy_arch=256-256 --qf_arch=256-256-256-256``)
CALQL_NET_ARCH: dict[str, list[int]] = {"pi": [256, 256], "qf": [256, 256, 256, 256]}
#: the authors' ``policy_log_std_offset`` (``conservative_sac_main.py``), the learned offset's initial value
CALQL_LOG_STD_OFFSET = -1.0
#: the gains of the authors' orthogonal initialisation (``JaxCQL/model.py``, ``FullyConnectedNetwork`` with
#: ``orthogonal_init=True``, their default): hidden layers ``sqrt(2)``, the output layer ``1e-2``, biases 0
ORTHOGONAL_HIDDEN_GAIN, ORTHOGONAL_LAST_GAIN = math.sqrt(2.0), 1e-2


def orthogonal_init(hidden: list[nn.Linear], last: list[nn.Linear]) -> None:
    """
    The JAX code's orthogonal initialisation: hidden weights orthogonal with gain ``sqrt(2)``, the output weights
    with gain ``1e-2``, every bias 0. The ``last`` layers are the rows of one output layer (the authors' policy has
    one ``Dense`` of ``2 |A|`` outputs, the mean's then ``log sigma``'s): one orthogonal matrix, split among them.
    """
    with th.no_grad():
        for layer in hidden:
            nn.init.orthogonal_(layer.weight, gain=ORTHOGONAL_HIDDEN_GAIN)
            layer.bias.zero_()
        stacked = th.empty(sum(layer.out_features for layer in last), last[0].in_features)
        nn.init.orthogonal_(stacked, gain=ORTHOGONAL_LAST_GAIN)
        for layer, rows in zip(last, stacked.split([layer.out_features for layer in last]), strict=True):
            layer.weight.copy_(rows)
            layer.bias.zero_()


class CalQLPolicy(CQLPolicy):
    """
    :class:`~sb3_offline.cql.policies.CQLPolicy` with Cal-QL's default sizes (policy 2 x 256, critics 4 x 256) and,
    with ``authors_networks`` (the default), the networks of the authors' JAX code (``nakamotoo/Cal-QL`` commit
    ac6eafe, ``JaxCQL/model.py``): ``log sigma = m * head + c`` with ``m`` (from 1) and ``c`` (from -1) learned with
    the actor, clipped to [-20, 2] (``TanhGaussianPolicy``), and the orthogonal initialisation
    (:func:`orthogonal_init`) of every network.
    """

    default_net_arch: dict[str, list[int]] = CALQL_NET_ARCH

    def actor_head(self) -> dict[str, Any]:
        """The authors' head: a learned multiplier and offset of ``log sigma``, clipped to [-20, 2]."""
        return {"log_std_min": float(LOG_STD_MIN), "affine_log_std": True, "log_std_offset": CALQL_LOG_STD_OFFSET}

    def initialize_actor(self, actor: Actor) -> None:
        """:func:`orthogonal_init`, the mean and ``log sigma`` heads one output layer."""
        orthogonal_init(linear_layers(actor.latent_pi), [actor.mu, actor.log_std])  # type: ignore[list-item]

    def initialize_critic(self, critic: ContinuousCritic) -> None:
        """:func:`orthogonal_init` of each Q-function."""
        for q_net in critic.q_networks:
            layers = linear_layers(q_net)
            orthogonal_init(layers[:-1], layers[-1:])


MlpPolicy = CalQLPolicy


MultiInputPolicy = multi_input_policy(CalQLPolicy, __name__)
