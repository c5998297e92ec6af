"""
``minimize`` computes the gradients of its optimizer's parameters only: an actor's loss through the critics leaves
the critics' ``.grad`` untouched and the actor's gradients are those of a full ``backward()``, and every algorithm's
update with it is the one pinned by the golden files (``tests/test_golden.py``).
"""

from __future__ import annotations

import torch as th
from torch import nn

from sb3_offline.common.training import minimize


def test_only_the_optimizers_parameters_get_gradients() -> None:
    th.manual_seed(0)
    actor, critic = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)), nn.Linear(5, 1)
    frozen = nn.Linear(3, 3).requires_grad_(False)
    states = th.randn(16, 3)

    def actor_loss() -> th.Tensor:
        return -critic(th.cat([states, th.tanh(actor(frozen(states)))], dim=1)).mean()

    loss = actor_loss()
    expected = th.autograd.grad(loss, list(actor.parameters()))
    optimizer = th.optim.SGD(actor.parameters(), lr=0.0)  # lr 0: the gradients stay to be read
    minimize(optimizer, actor_loss())
    for found, wanted in zip((p.grad for p in actor.parameters()), expected, strict=True):
        assert found is not None and th.equal(found, wanted)
    assert all(p.grad is None for p in critic.parameters())  # no weight gradient computed for the critic
    # a critic's stale gradient is neither read nor changed by the actor's step
    critic.weight.grad = th.full_like(critic.weight, 7.0)
    minimize(optimizer, actor_loss())
    assert th.equal(critic.weight.grad, th.full_like(critic.weight, 7.0))
