"""
The parity harness (``benchmarks/parity``) without the authors' code, which is not in this repository: it runs
against a reference written here in the authors' layout of TD3+BC (``TD3_BC.py`` and ``utils.py``: our own code,
the update of Fujimoto & Gu's paper) on Hopper-v5 random data, reports float-rounding differences for it, and
detects a changed learning rate, a perturbed weight and random draws that do not line up. Plus the command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th

from benchmarks.parity import core, td3bc
from benchmarks.parity.draws import ParityError, SharedDraws

ROOT = Path(__file__).resolve().parents[1]

#: TD3+BC in the layout the harness expects of the authors' ``TD3_BC.py`` ({lr} and {noise} are filled in)
REFERENCE = """
import copy
import torch
import torch.nn as nn
import torch.nn.functional as F

device = torch.device("cpu")


def mlp(sizes):
    layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    return nn.Sequential(*[m for layer in layers for m in (layer, nn.ReLU())][:-1])


class Actor(nn.Module):
    def __init__(self, state_dim, action_dim, max_action):
        super().__init__()
        self.net, self.max_action = mlp([state_dim, 256, 256, action_dim]), max_action

    def forward(self, state):
        return self.max_action * torch.tanh(self.net(state))


class Critic(nn.Module):
    def __init__(self, state_dim, action_dim):
        super().__init__()
        self.q1, self.q2 = mlp([state_dim + action_dim, 256, 256, 1]), mlp([state_dim + action_dim, 256, 256, 1])

    def forward(self, state, action):
        return self.q1(torch.cat([state, action], 1)), self.q2(torch.cat([state, action], 1))


class TD3_BC:
    def __init__(self, state_dim, action_dim, max_action, discount, tau, policy_noise, noise_clip, policy_freq, alpha):
        self.actor = Actor(state_dim, action_dim, max_action)
        self.actor_target = copy.deepcopy(self.actor)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr={lr})
        self.critic = Critic(state_dim, action_dim)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=3e-4)
        self.max_action, self.discount, self.tau, self.alpha = max_action, discount, tau, alpha
        self.policy_noise, self.noise_clip, self.policy_freq, self.total_it = policy_noise, noise_clip, policy_freq, 0

    def select_action(self, state):
        return self.actor(torch.FloatTensor(state.reshape(1, -1))).data.numpy().flatten()

    def train(self, replay_buffer, batch_size=256):
        self.total_it += 1
        state, action, next_state, reward, not_done = replay_buffer.sample(batch_size)
        with torch.no_grad():
            noise = ({noise} * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
            next_action = (self.actor_target(next_state) + noise).clamp(-self.max_action, self.max_action)
            target_q = reward + not_done * self.discount * torch.min(*self.critic_target(next_state, next_action))
        current_q1, current_q2 = self.critic(state, action)
        critic_loss = F.mse_loss(current_q1, target_q) + F.mse_loss(current_q2, target_q)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        if self.total_it % self.policy_freq == 0:
            pi = self.actor(state)
            q = self.critic(state, pi)[0]
            actor_loss = -self.alpha / q.abs().mean().detach() * q.mean() + F.mse_loss(pi, action)
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            for net, target in ((self.critic, self.critic_target), (self.actor, self.actor_target)):
                for param, target_param in zip(net.parameters(), target.parameters()):
                    target_param.data.copy_(self.tau * param.data + (1 - self.tau) * target_param.data)
"""

#: the authors' ``utils.ReplayBuffer`` interface: D4RL arrays in, states normalised, batches by ``np.random.randint``
UTILS = """
import numpy as np
import torch


class ReplayBuffer:
    def __init__(self, state_dim, action_dim, max_size=1):
        self.device = torch.device("cpu")

    def convert_D4RL(self, dataset):
        self.state, self.action = dataset["observations"], dataset["actions"]
        self.next_state, self.reward = dataset["next_observations"], dataset["rewards"].reshape(-1, 1)
        self.not_done = 1.0 - dataset["terminals"].reshape(-1, 1)
        self.size = self.state.shape[0]

    def normalize_states(self, eps=1e-3):
        mean, std = self.state.mean(0, keepdims=True), self.state.std(0, keepdims=True) + eps
        self.state, self.next_state = (self.state - mean) / std, (self.next_state - mean) / std
        return mean, std

    def sample(self, batch_size):
        ind = np.random.randint(0, self.size, size=batch_size)
        arrays = (self.state, self.action, self.next_state, self.reward, self.not_done)
        return tuple(torch.FloatTensor(a[ind]).to(self.device) for a in arrays)
"""


def reference(folder: Path, lr: float = 3e-4, noise: str = "torch.randn_like(action)") -> Path:
    """A checkout holding the reference above (with the actor's ``lr`` and the target ``noise`` draw)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "TD3_BC.py").write_text(REFERENCE.replace("{lr}", repr(lr)).replace("{noise}", noise))
    (folder / "utils.py").write_text(UTILS)
    return folder


def run(folder: Path, updates: int = 4) -> core.ParityRow:
    (row,) = td3bc.run(folder, updates=updates, rows=300, variants=("our statistics",))
    return row


def test_a_faithful_reference_is_at_float_tolerance(tmp_path: Path) -> None:
    row = run(reference(tmp_path / "faithful"))
    assert row.at_float_tolerance, row
    assert row.max_loss_diff < 1e-5 and row.max_grad_diff < 1e-5 and row.max_param_diff < 1e-6, row
    assert (row.reference_repo, row.reference_file, row.updates) == ("sfujim/TD3_BC", "TD3_BC.py", 4)
    assert row.reference_commit != "8791ad7", row.reference_commit  # another file than the authors' known one
    assert "TD3_BC" not in sys.modules  # the reference's modules are not left importable by name


def test_a_changed_learning_rate_is_detected(tmp_path: Path) -> None:
    row = run(reference(tmp_path / "lr", lr=1e-3))
    assert not row.at_float_tolerance
    assert row.max_param_diff > 1e-4, row
    assert "first beyond float tolerance: actor parameters at update 2" in row.notes, row.notes  # the first actor step


def test_a_perturbed_weight_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_weights = core.copy_weights

    def copy_then_perturb(layers: dict, skip: tuple = ()) -> None:
        copy_weights(layers, skip)
        with th.no_grad():
            layers["critic"][0][1].weight[0, 0] += 1e-3  # one weight of the reference's first critic

    monkeypatch.setattr(core, "copy_weights", copy_then_perturb)
    row = run(reference(tmp_path / "perturbed"), updates=1)
    assert not row.at_float_tolerance and row.max_grad_diff > 1e-4 and row.max_loss_diff > 1e-6, row
    assert "first beyond float tolerance: critic gradients at update 1" in row.notes, row.notes


@pytest.mark.parametrize(
    ("noise", "message"),
    [
        ("torch.randn(action.shape[0], action.shape[1] + 1)[:, :-1]", r"normal draw #1: expected shape \(256, 3\)"),
        ("torch.randn_like(action) + 0 * torch.rand(1)", r"expected the same number of each kind on both sides"),
    ],
)
def test_random_draws_that_do_not_line_up_are_refused(tmp_path: Path, noise: str, message: str) -> None:
    with pytest.raises(ParityError, match=message):
        run(reference(tmp_path / "draws", noise=noise), updates=1)


def test_shared_draws() -> None:
    draws = SharedDraws(seed=3)
    with draws.patched("ours"):
        a = (th.randn(2, 3), th.rand((4,)), th.randint(0, 10, (5,)), np.random.randint(10, size=5))
    with draws.patched("theirs"):
        b = (
            th.randn_like(th.zeros(2, 3)),
            th.rand_like(th.zeros(4)),
            th.randint(10, (5,)),
            np.random.randint(0, 10, 5),
        )
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2].numpy(), a[3]) and a[3].dtype == np.int64  # the first and second integer draws
    draws.finish_update()
    with draws.patched("ours"):
        c, _ = th.randn(2, 3), np.random.randint(0, 10, 5)
    assert not th.equal(c, a[0])  # a new update, new draws
    with draws.patched("theirs"), pytest.raises(ParityError, match=r"bounds \(0, 10\).*found \(5,\) and \(0, 9\)"):
        th.randn(2, 3), th.randint(0, 9, (5,))
    assert th.randn(1).shape == (1,) and not th.equal(th.randn(2, 3), c)  # torch's own randn is back


def test_locate_and_the_table(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"expected a checkout of sfujim/TD3_BC holding one of \['TD3_BC.py'\]"):
        td3bc.run(tmp_path, updates=1)
    row = core.ParityRow("X", "v", "a/b", "abc", "f.py", 3, 1e-7, 2e-7, 3e-7, "max |a - b|")
    table = core.markdown_table([row])
    assert table.splitlines()[2] == "| X (v) | a/b, abc, `f.py` | 3 | 1.0e-07 / 2.0e-07 / 3.0e-07 | max \\|a - b\\| |"
    assert row.at_float_tolerance


def test_help_runs_without_a_reference() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.parity", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: python -m benchmarks.parity")
    assert all(f"  {name}: " in result.stdout for name in ("bcq", "batch_ddpg", "td3bc", "plas"))
