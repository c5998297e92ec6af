"""
Benchmark variants: an algorithm of ``sb3_offline`` with other settings, another policy class (an initialisation or
parametrisation that is not the authors', replayed for a comparison in RESULTS.md) or another update (an algorithm
class of :mod:`benchmarks.d3rlpy_variants`). The library keeps the authors' networks; what differs here lives here.

The policy classes build the library's networks, then redraw their weights the way the compared code does:

- PyTorch's initialisation (d3rlpy's): every ``nn.Linear``'s own ``reset_parameters``;
- rlkit's initialisation of the actor (:func:`sb3_offline.common.initialization.rlkit_init`, last layer ``+-w``).

To give bit-for-bit the networks of a policy built that way from the start, the redraw rewinds the CPU random
generator to where the policy's construction started and draws again in the order in which the library built these
networks when they were its options (IQL: value, actor, critics, critic targets; AWAC: actor, critics, critic
targets; rlkit's draws on the actor right after the actor's own): every weight and the generator's state afterwards
are then those of that construction, whatever initialisation (and order) the library uses now. The policy is built
on the CPU (SB3 moves it to the device afterwards), so the CPU generator is the one that draws.
``tests/test_benchmarks.py`` checks each against networks drawn by hand in that order (each was checked bit for bit
against the library options it replaced, ``IQLPolicy(ortho_init=False, init_w=..., log_std_mode=...)`` and
``AWACPolicy(init_w=None, critic_init_w=None, squash_mean=False)``, before they were removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch as th
from torch import nn

from benchmarks.d3rlpy_variants import (
    AWACD3rlpy,
    AWACRlkitHiddenInit,
    AWACRlkitLastInit,
    AWACSacTarget,
    AWACUnclippedValue,
    AWACValueAfterCritic,
    IQLJointStep,
)
from sb3_offline.algorithms import ALGOS
from sb3_offline.awac.policies import AWACPolicy
from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.initialization import rlkit_init
from sb3_offline.iql.policies import IQLPolicy

#: rlkit's bound of the actor's last-layer weights (``GaussianPolicy``'s ``init_w``)
RLKIT_ACTOR_W = 1e-3


def pytorch_init(*modules: nn.Module) -> None:
    """
    PyTorch's default initialisation of every ``nn.Linear`` in ``modules``, in module order: the same random draws,
    in the same order, as building them (``nn.Linear.__init__`` calls ``reset_parameters``).

    :raises ValueError: a module with parameters of its own that is not an ``nn.Linear`` (its draws are not known here)
    """
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
            elif any(True for _ in layer.parameters(recurse=False)):
                raise ValueError(
                    f"modules: expected only nn.Linear layers to hold weights, found {type(layer).__name__}"
                )


class _RedrawnInit:
    """
    Mixin of an actor-critic policy with a Gaussian actor (``actor.mu``): after the library's construction, the
    weights are redrawn from the generator's state at the start of it (module docstring), PyTorch's initialisation
    everywhere, and rlkit's on the actor when :attr:`actor_rlkit_w` is set.
    """

    actor: GaussianActor
    critic: nn.Module
    critic_target: nn.Module
    #: rlkit's bound of the actor's last layer (``rlkit_init``); ``None``: PyTorch's initialisation of the actor
    actor_rlkit_w: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        start = th.random.get_rng_state()
        super().__init__(*args, **kwargs)
        th.random.set_rng_state(start)
        pytorch_init(*self._built_before_actor(), self.actor.mu)
        if self.actor_rlkit_w is not None:
            rlkit_init(self.actor.mu, self.actor_rlkit_w)
        pytorch_init(self.critic, self.critic_target)
        self.critic_target.load_state_dict(self.critic.state_dict())

    def _built_before_actor(self) -> list[nn.Module]:
        """The networks the policy builds before its actor, in order."""
        return []


class AWACPyTorchInitPolicy(_RedrawnInit, AWACPolicy):
    """AWAC's networks with PyTorch's initialisation everywhere (d3rlpy's), rlkit's tanh-mean actor otherwise."""


class AWACPyTorchCriticsPolicy(_RedrawnInit, AWACPolicy):
    """AWAC's networks with rlkit's initialisation on the actor and PyTorch's on the critics: AWAC's default before
    the authors' initialisation of the critics (rlkit's, last layer in ``+-3e-3``) became it."""

    actor_rlkit_w = RLKIT_ACTOR_W


class AWACLinearMeanPolicy(AWACPyTorchInitPolicy):
    """
    AWAC's networks with PyTorch's initialisation and a *linear* actor mean (no ``tanh``; clipped to [-1, 1] when
    acting by :meth:`GaussianActor.mode`, and its samples when acted on): the actor before rlkit's ``tanh`` mean.
    """

    def _build_actor(self, features_dim: int) -> GaussianActor:
        actor = super()._build_actor(features_dim)
        if isinstance(actor.mu[-1], nn.Tanh):
            actor.mu = nn.Sequential(*list(actor.mu)[:-1])  # the same Linear layers, the same state_dict keys
        return actor


class IQLPyTorchInitPolicy(_RedrawnInit, IQLPolicy):
    """IQL's networks with PyTorch's initialisation everywhere (d3rlpy's) instead of the authors' orthogonal one."""

    def _built_before_actor(self) -> list[nn.Module]:
        return [self.value]


class IQLRlkitInitPolicy(IQLPyTorchInitPolicy):
    """IQL's networks with rlkit's initialisation on the actor (rlkit's IQL port), PyTorch's on critics and value:
    IQL's default before the authors' orthogonal initialisation became it."""

    actor_rlkit_w = RLKIT_ACTOR_W


class _SigmoidStd:
    """Mixin of an IQL policy: d3rlpy's ``log sigma``, a sigmoid of a parameter into the policy's
    ``[min_log_std, max_log_std]`` (``[-5, 2]``: it starts at -1.5), instead of the authors' clipped parameter."""

    min_log_std: float
    max_log_std: float
    action_dim: int
    net_arch: dict[str, list[int]]
    activation_fn: type[nn.Module]

    def _build_actor(self, features_dim: int) -> GaussianActor:
        return GaussianActor(
            features_dim,
            self.action_dim,
            self.net_arch["pi"],
            self.activation_fn,
            min_log_std=self.min_log_std,
            max_log_std=self.max_log_std,
            log_std_mode="sigmoid",
        )


class IQLRlkitInitSigmoidStdPolicy(_SigmoidStd, IQLRlkitInitPolicy):
    """:class:`IQLRlkitInitPolicy` with d3rlpy's sigmoid ``log sigma``."""


class IQLPyTorchInitSigmoidStdPolicy(_SigmoidStd, IQLPyTorchInitPolicy):
    """:class:`IQLPyTorchInitPolicy` with d3rlpy's sigmoid ``log sigma`` (d3rlpy's IQL networks)."""


class IQLSigmoidStdPolicy(_SigmoidStd, IQLPolicy):
    """IQL's networks (the authors' orthogonal initialisation) with d3rlpy's sigmoid ``log sigma``."""


@dataclass(frozen=True)
class Variant:
    """
    A benchmark row: algorithm ``algo`` of ``ALGOS`` with constructor keyword arguments ``kwargs``, built with
    ``policy`` (default: the algorithm's ``"MlpPolicy"``) by ``algorithm`` (default: ``ALGOS[algo]``).
    """

    algo: str
    label: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    policy: type | None = None
    algorithm: type | None = None

    @property
    def algorithm_class(self) -> type:
        return ALGOS[self.algo] if self.algorithm is None else self.algorithm

    @property
    def policy_class(self) -> str | type:
        return "MlpPolicy" if self.policy is None else self.policy


def variant(name: str) -> Variant:
    """The row ``name``: one of :data:`VARIANTS`, or an algorithm of ``ALGOS`` as it is."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name not in ALGOS:
        raise ValueError(f"name: expected one of ALGOS {sorted(ALGOS)} or VARIANTS {sorted(VARIANTS)}, found {name!r}")
    return Variant(name, name)


#: rows that are one of ALGOS with other settings, another policy class or another update
VARIANTS: dict[str, Variant] = {
    "plas_p": Variant("plas", "PLAS-P", dict(perturbation=True)),  # the paper's PLAS with perturbation
    "awac_linear_mean": Variant("awac", "AWAC (linear mean)", policy=AWACLinearMeanPolicy),
    # AWAC with rlkit's online batch offline too
    "awac_batch1024": Variant("awac", "AWAC (batch 1024)", dict(batch_size=1024), AWACPyTorchCriticsPolicy),
    # TD3+BC with alpha 10 and the BC term in the env's units: on a Box with bound 2 (Pendulum) 4 times the objective
    # of the default (and of d3rlpy's TD3PlusBC), whose BC term is on [-1, 1] actions; elsewhere only a 4x larger alpha
    "td3bc_alpha10": Variant("td3bc", "TD3+BC (alpha 10, env units)", dict(alpha=10.0, action_units="env")),
    # BCQ with KL weight 2 and the reconstruction in the env's units: on a Box with bound 2 (Pendulum) 4 times the VAE
    # objective of the default (and of d3rlpy's BCQ): (recon_env + 2 KL) / 4 = recon_unit + 0.5 KL
    "bcq_kl2": Variant("bcq", "BCQ (KL weight 2, env units)", dict(kl_weight=2.0, action_units="env")),
    # AWAC with the actor's weight decay 1e-4 / 128: d3rlpy's AWAC sums its actor loss over the batch of 128 (ours,
    # as rlkit, averages), so the same Adam weight_decay weighs 128 times less against its loss
    "awac_wd_sum": Variant(
        "awac", "AWAC (weight decay / 128)", dict(actor_weight_decay=1e-4 / 128), AWACPyTorchCriticsPolicy
    ),
    # one of d3rlpy's differences each (benchmarks/d3rlpy_variants.py): PyTorch's initialisation (d3rlpy's) instead of
    # rlkit's and the authors'
    "awac_torch_init": Variant("awac", "AWAC (PyTorch init)", policy=AWACPyTorchInitPolicy),
    "awac_d3_target": Variant("awac", "AWAC (d3rlpy's SAC target)", {}, AWACPyTorchCriticsPolicy, AWACSacTarget),
    "awac_d3_value_unclipped": Variant(
        "awac", "AWAC (unclipped V sample)", {}, AWACPyTorchCriticsPolicy, AWACUnclippedValue
    ),
    "awac_d3_value_after": Variant(
        "awac", "AWAC (V after critic step)", {}, AWACPyTorchCriticsPolicy, AWACValueAfterCritic
    ),
    "awac_d3_all": Variant("awac", "AWAC (all d3rlpy's differences)", {}, AWACPyTorchInitPolicy, AWACD3rlpy),
    # IQL's initialisation before the authors' orthogonal one became the default: rlkit's on the actor (the rlkit
    # port's), PyTorch's on critics and value; then one of d3rlpy's differences each on top of it
    "iql_rlkit_init": Variant(
        "iql", "IQL (rlkit init: the default before the authors' init)", policy=IQLRlkitInitPolicy
    ),
    "iql_torch_init": Variant("iql", "IQL (PyTorch init)", policy=IQLPyTorchInitPolicy),
    # d3rlpy's log sigma: a sigmoid of a parameter into [-5, 2], starting at -1.5 (ours: clipped, starting at 0)
    "iql_sigmoid_std": Variant("iql", "IQL (sigmoid log sigma)", policy=IQLRlkitInitSigmoidStdPolicy),
    "iql_d3_joint": Variant("iql", "IQL (d3rlpy's joint step)", {}, IQLRlkitInitPolicy, IQLJointStep),
    "iql_d3_all": Variant("iql", "IQL (all d3rlpy's differences)", {}, IQLPyTorchInitSigmoidStdPolicy, IQLJointStep),
    # which part of rlkit's actor initialisation matters: PyTorch's, then rlkit's on some layers of the actor
    "awac_rlkit_hidden_init": Variant(
        "awac", "AWAC (rlkit init, hidden layers only)", {}, AWACPyTorchInitPolicy, AWACRlkitHiddenInit
    ),
    "awac_rlkit_last_init": Variant(
        "awac", "AWAC (rlkit init, last layer only)", {}, AWACPyTorchInitPolicy, AWACRlkitLastInit
    ),
    "awac_hybrid_init": Variant(
        "awac", "AWAC (rlkit init on the actor only: the default before 2026-12-03)", policy=AWACPyTorchCriticsPolicy
    ),
    # IQL as it is (the authors' initialisation) with one of d3rlpy's differences each, or one setting changed: why
    # IQL is below d3rlpy's on held-out imperfect and mixed-quality data (issue 33)
    "iql_d3_std": Variant("iql", "IQL (d3rlpy's sigmoid log sigma)", policy=IQLSigmoidStdPolicy),
    "iql_d3_order": Variant("iql", "IQL (d3rlpy's joint critic/value step)", algorithm=IQLJointStep),
    "iql_raw_rewards": Variant("iql", "IQL (rewards as recorded)", dict(reward_transform=None)),
    "iql_locomotion_rewards": Variant(
        "iql", "IQL (rewards x 1000 / return spread)", dict(reward_transform="iql_locomotion")
    ),
    "iql_decay_1m": Variant("iql", "IQL (actor decay over 1M steps)", dict(actor_lr_decay_steps=1_000_000)),
    "iql_decay_5k": Variant("iql", "IQL (actor decay over 5k steps)", dict(actor_lr_decay_steps=5000)),
    "iql_temp1": Variant("iql", "IQL (temperature 1)", dict(temperature=1.0)),
    "iql_clip_weight10": Variant("iql", "IQL (weights clipped at 10)", dict(max_weight=10.0)),
    # CQL with SB3's SAC networks instead of the authors' rlkit networks (issue 33: the default moved to rlkit's)
    "cql_sb3_networks": Variant("cql", "CQL (SB3's networks)", dict(authors_networks=False)),
    # AWAC as it is (rlkit's initialisation everywhere) with one of d3rlpy's differences each
    "awac_d3_target_now": Variant("awac", "AWAC (d3rlpy's SAC target)", algorithm=AWACSacTarget),
    "awac_d3_value_after_now": Variant("awac", "AWAC (V after critic step)", algorithm=AWACValueAfterCritic),
    "awac_d3_value_unclipped_now": Variant("awac", "AWAC (unclipped V sample)", algorithm=AWACUnclippedValue),
    "awac_wd_sum_now": Variant("awac", "AWAC (weight decay / 128)", dict(actor_weight_decay=1e-4 / 128)),
    "awac_d3_all_now": Variant(
        "awac", "AWAC (d3rlpy's init, target, V sample and order)", {}, AWACPyTorchInitPolicy, AWACD3rlpy
    ),
}
