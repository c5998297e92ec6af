"""
EDAC and SAC-N (``sb3_offline/edac``): the diversity term from one autograd call equals the members' gradients taken
one by one, SAC-N is EDAC with ``eta = 0``, the authors' networks, learning on the shipped Pendulum data, the example.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_offline import EDAC, SACN
from sb3_offline.datasets import Transitions
from sb3_offline.edac.edac import ensemble_diversity

ROOT = Path(__file__).resolve().parents[1]


def make(cls, data, **kwargs):
    kwargs.setdefault("policy_kwargs", dict(net_arch=[32, 32]))
    kwargs.setdefault("n_critics", 4)
    kwargs.setdefault("seed", 0)
    return cls("MlpPolicy", "Pendulum-v1", dataset=data, device="cpu", **kwargs)


def batch(data: Transitions, rows: slice) -> ReplayBufferSamples:
    def f(x):
        return th.as_tensor(np.asarray(x)[rows], dtype=th.float32)

    return ReplayBufferSamples(
        f(data.observations), f(data.actions) / 2.0, f(data.next_observations),
        f(data.terminations).reshape(-1, 1), f(data.rewards).reshape(-1, 1),
    )  # fmt: skip


def test_diversity_term_equals_the_members_one_by_one(fetch_transitions, fetch_env) -> None:
    """FetchReach's 4-dimensional actions: each member's gradient from a loop, then the paper's sum by hand."""
    model = EDAC("MultiInputPolicy", fetch_env, dataset=fetch_transitions, seed=0, device="cpu", n_critics=4,
                 policy_kwargs=dict(net_arch=[32, 32]))  # fmt: skip
    model.learn(5)
    obs = {k: th.as_tensor(v[:16], dtype=th.float32) for k, v in fetch_transitions.observations.items()}
    actions = th.as_tensor(fetch_transitions.actions[:16], dtype=th.float32)
    features = model.critic_features(obs)
    copies = actions.unsqueeze(0).repeat(4, 1, 1).requires_grad_(True)
    (batched,) = th.autograd.grad(model.critic.q_values(features, copies).sum(), copies)
    loop = []
    for member in range(4):
        single = actions.clone().requires_grad_(True)
        value = model.critic.q_net.member_forward(th.cat([features, single], dim=1), member)
        loop.append(th.autograd.grad(value.sum(), single)[0])
    assert (batched - th.stack(loop)).abs().max() < 1e-6
    unit = [g / (g.norm(dim=1, keepdim=True) + 1e-10) for g in loop]
    by_hand = sum((unit[i] * unit[j]).sum(dim=1) for i in range(4) for j in range(4) if i != j).mean() / 3
    assert ensemble_diversity(batched).item() == pytest.approx(by_hand.item(), abs=1e-6)
    assert -1.0 <= by_hand.item() / 4 <= 1.0


def test_sac_n_is_edac_with_eta_zero(imperfect_pendulum: Transitions) -> None:
    sac_n = make(SACN, imperfect_pendulum).learn(5)  # each built then trained: the global seed is set when built
    edac = make(EDAC, imperfect_pendulum, eta=0.0).learn(5)
    assert sac_n.eta == 0.0 and edac.eta == 0.0
    for a, b in zip(sac_n.policy.state_dict().values(), edac.policy.state_dict().values(), strict=True):
        assert th.equal(a, b)
    with pytest.raises(ValueError, match="eta: expected 0 for SAC-N"):
        make(SACN, imperfect_pendulum, eta=1.0)
    with pytest.raises(ValueError, match="n_critics: expected an integer >= 2, found 1"):
        make(EDAC, imperfect_pendulum, n_critics=1)


def test_the_authors_networks_and_losses(imperfect_pendulum: Transitions) -> None:
    """rlkit's actor, the authors' ensemble initialisation, and the logged losses recomputed by hand."""
    model = make(EDAC, imperfect_pendulum, policy_kwargs=dict(net_arch=[256, 256, 256]))
    assert model.critic.n_critics == 4 and model.critic_target.n_critics == 4
    linears = model.critic.q_net.linears
    assert all(th.all(layer.bias == 0.1) for layer in linears[:-1])
    assert linears[-1].weight.abs().max() <= 3e-3 and linears[0].weight.abs().max() <= 1 / math.sqrt(4)
    assert model.actor.mu.weight.abs().max() <= 1e-3 and model.actor.log_std_min == -5.0
    assert model._target_entropy == -1.0
    data = batch(imperfect_pendulum, slice(0, 64))
    target = model.critic_target_values(data, th.ones(1))
    bellman, diversity = model.critic_losses(data, target)
    q = model.critic(data.observations, data.actions)
    assert bellman.item() == pytest.approx(sum(((q[j] - target) ** 2).mean().item() for j in range(4)), rel=1e-5)
    assert diversity.requires_grad and -1.0 <= diversity.item() <= 4.0 * 3 / 3


# ------------------------------------------------------------------------------------------- learning
@pytest.mark.slow
@pytest.mark.parametrize("cls", [EDAC, SACN])
def test_learns_from_the_shipped_pendulum_data(cls, imperfect_pendulum: Transitions, pendulum_return, one_torch_thread):
    """
    The BCQ paper's imperfect demonstrations, the defaults (N = 10, eta = 1 for EDAC, learning rates 3e-4, batch
    256) but 64-64 networks (the authors' 3 x 256: ten of them run a few updates per second on one core) and 3000
    gradient steps; N kept at 10 (with N = 5, EDAC ended at -1663 after 2000 steps, seed 0: below random). Minutes
    on one core (ten critics; EDAC's diversity term takes a second backward pass). Measured (conftest's 10
    evaluation episodes; random -1284), training seeds 0-1: EDAC -809, -908; SAC-N -965, -1040. The bars (BARS)
    are 126 (EDAC) and 94 (SAC-N) below the worst seed.
    """
    model = make(cls, imperfect_pendulum, n_critics=10, policy_kwargs=dict(net_arch=[64, 64]))
    model.learn(3000, log_interval=None)
    ours, random_return = pendulum_return(model), pendulum_return(None)
    assert ours > random_return + BARS[cls.__name__], (ours, random_return)


#: the margin above the random policy each learning test holds (see the test's docstring for the measured returns)
BARS = {"EDAC": 250.0, "SACN": 150.0}


def test_example_runs(tmp_path: Path, one_torch_thread) -> None:
    spec = importlib.util.spec_from_file_location("edac_pendulum", ROOT / "examples" / "edac_pendulum.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rows = example.main(["--steps", "20", "--n-critics", "3", "--episodes", "1", "--output", str(tmp_path)])
    assert [row[0] for row in rows] == ["EDAC", "SACN"]
    assert all(np.isfinite(row[1]) for row in rows)
    assert (tmp_path / "edac.zip").is_file() and (tmp_path / "sacn.zip").is_file()
