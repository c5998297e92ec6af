"""
The networks of CQL and Cal-QL: the CQL authors' rlkit networks (initialisation, ``log sigma`` in [-5, 2]), the
Cal-QL authors' JAX networks (orthogonal initialisation, ``log sigma = m * head + c``), SB3's SAC networks on request,
and checkpoints of sb3-offline 0.1.0 (which lack the choice) loading with SB3's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.sac.policies import Actor

from sb3_offline import CQL, CalQL
from sb3_offline.cql.policies import CQLActor, linear_layers
from sb3_offline.datasets import Transitions


def make(data: Transitions, algo: type = CQL, **kwargs: Any) -> Any:
    kwargs.setdefault("policy_kwargs", dict(net_arch=[16, 32]))
    kwargs.setdefault("batch_size", 64)
    if algo is CalQL:
        kwargs.setdefault("buffer_size", 1000)
    return algo("MlpPolicy", "Pendulum-v1", dataset=data, device="cpu", seed=0, bc_steps=0, **kwargs)


def test_networks_are_the_authors_rlkit_networks(pendulum_transitions: Transitions) -> None:
    """
    rlkit's Mlp (``aviralkumar2907/CQL``, ``d4rl/rlkit/torch/networks.py``): hidden weights uniform in
    ``+-1/sqrt(size[0])`` (the output size of a PyTorch weight), hidden biases 0.1, the Q-functions' last layer in
    +-3e-3, the policy's mean and log sigma heads in +-1e-3; log sigma clipped to [-5, 2].
    """
    model = make(pendulum_transitions, policy_kwargs=dict(net_arch=[64, 32]))
    actor, critic = model.actor, model.critic
    assert isinstance(actor, CQLActor)
    q_layers = [linear_layers(q_net) for q_net in critic.q_networks]
    for layer in linear_layers(actor.latent_pi) + [layer for layers in q_layers for layer in layers[:-1]]:
        bound = 1.0 / math.sqrt(layer.out_features)
        assert bool((layer.bias == 0.1).all())
        assert bound * 0.9 < layer.weight.abs().max().item() <= bound
    for layer, bound in [(actor.mu, 1e-3), (actor.log_std, 1e-3)] + [(layers[-1], 3e-3) for layers in q_layers]:
        assert bound * 0.7 < layer.weight.abs().max().item() <= bound and layer.bias.abs().max().item() <= bound
    for ours, target in zip(critic.parameters(), model.critic_target.parameters(), strict=True):
        assert th.equal(ours, target)
    obs = th.as_tensor(pendulum_transitions.observations[:4])
    for bias, clipped in ((-10.0, -5.0), (10.0, 2.0), (-3.0, -3.0)):
        with th.no_grad():
            actor.log_std.weight.zero_()
            actor.log_std.bias.fill_(bias)
        assert bool((model.policy_parameters(obs)[1] == clipped).all())
    # SB3's SAC networks as they are, on request: log sigma down to -20
    sb3 = make(pendulum_transitions, authors_networks=False)
    assert type(sb3.actor) is Actor and not bool((sb3.critic.q_networks[0][0].bias == 0.1).all())
    with th.no_grad():
        sb3.actor.log_std.weight.zero_()
        sb3.actor.log_std.bias.fill_(-10.0)
    assert bool((sb3.policy_parameters(obs)[1] == -10.0).all())


def test_checkpoints_without_the_choice_keep_sb3s_networks(pendulum_transitions: Transitions, tmp_path: Path) -> None:
    """A 0.1.0 checkpoint (no ``authors_networks``) loads with SB3's networks; a new one keeps the authors'."""
    from golden.cases import box_env

    old = CQL.load(Path(__file__).parent / "data" / "checkpoints" / "cql.zip", env=box_env(), device="cpu")
    assert old.authors_networks is False and type(old.actor) is Actor
    model = make(pendulum_transitions)
    model.save(tmp_path / "cql")
    loaded = CQL.load(tmp_path / "cql", env=gym.make("Pendulum-v1"), device="cpu")
    assert loaded.authors_networks is True and isinstance(loaded.actor, CQLActor)
    obs = pendulum_transitions.observations[:8]
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_networks_are_the_authors_jax_networks(pendulum_transitions: Transitions) -> None:
    """
    ``JaxCQL/model.py`` with ``orthogonal_init`` (their default): hidden weights orthogonal with gain sqrt 2, the output
    layers with gain 1e-2 (the policy's mean and log sigma rows one orthogonal matrix, the authors' one Dense of
    2 |A| outputs), biases 0; ``log sigma = m * head + c``, ``m`` from 1 and ``c`` from -1, learned, clipped to
    [-20, 2].
    """
    model = make(pendulum_transitions, CalQL, policy_kwargs=dict(net_arch=[64, 32]))
    actor = model.actor
    assert isinstance(actor, CQLActor)

    def gram(weight: th.Tensor) -> th.Tensor:
        return weight @ weight.T if weight.shape[0] <= weight.shape[1] else weight.T @ weight

    q_layers = [linear_layers(q_net) for q_net in model.critic.q_networks]
    for layer in linear_layers(actor.latent_pi) + [layer for layers in q_layers for layer in layers[:-1]]:
        th.testing.assert_close(gram(layer.weight.detach()), 2.0 * th.eye(min(layer.weight.shape)), atol=1e-5, rtol=0)
        assert bool((layer.bias == 0).all())
    heads = [th.cat([actor.mu.weight, actor.log_std.weight]).detach()]
    heads += [layers[-1].weight.detach() for layers in q_layers]
    for weight in heads:
        th.testing.assert_close(gram(weight), 1e-4 * th.eye(weight.shape[0]), atol=1e-9, rtol=0)
    assert (actor.log_std_multiplier.item(), actor.log_std_offset.item()) == (1.0, -1.0)
    learned = {id(p) for group in actor.optimizer.param_groups for p in group["params"]}
    assert {id(actor.log_std_multiplier), id(actor.log_std_offset)} <= learned
    obs = th.as_tensor(pendulum_transitions.observations[:4])
    for multiplier, bias, log_std in ((1.0, 0.0, -1.0), (2.0, -5.0, -11.0), (2.0, 3.0, 2.0), (2.0, -15.0, -20.0)):
        with th.no_grad():
            actor.log_std.weight.zero_()
            actor.log_std.bias.fill_(bias)
            actor.log_std_multiplier.fill_(multiplier)
        assert bool((model.policy_parameters(obs)[1] == log_std).all())
    trained = make(pendulum_transitions, CalQL)
    trained.learn(5)
    assert trained.actor.log_std_offset.item() != -1.0 and trained.actor.log_std_multiplier.item() != 1.0


def test_old_checkpoints_keep_sb3s_networks(pendulum_transitions: Transitions, tmp_path: Path) -> None:
    """A 0.1.0 checkpoint (no ``authors_networks``) loads with SB3's actor; a new one keeps the authors' head."""
    from golden.cases import box_env

    old = CalQL.load(Path(__file__).parent / "data" / "checkpoints" / "calql.zip", env=box_env(), device="cpu")
    assert old.authors_networks is False and type(old.actor) is Actor
    model = make(pendulum_transitions, CalQL)
    with th.no_grad():
        model.actor.log_std_offset.fill_(-0.3)
    model.save(tmp_path / "calql")
    loaded = CalQL.load(tmp_path / "calql", env=gym.make("Pendulum-v1"), device="cpu")
    assert loaded.authors_networks is True and loaded.actor.log_std_offset.item() == pytest.approx(-0.3)
