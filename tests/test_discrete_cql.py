"""DiscreteCQL: its conservative penalty and TD losses on plain tensors, its target copies, and learning on CartPole."""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import optuna
import pytest
import torch as th
from conftest import MemoryWriter
from discrete_data import cartpole_dataset
from sb3_contrib import QRDQN
from sb3_contrib.common.utils import quantile_huber_loss
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from stable_baselines3.common.logger import Logger
from stable_baselines3.dqn.policies import DQNPolicy

from sb3_offline import DiscreteCQL
from sb3_offline.discrete_cql.discrete_cql import action_quantiles, conservative_penalty
from sb3_offline.discrete_cql.policies import DiscreteCQLPolicy, QuantileCQLPolicy
from sb3_offline.evaluation import evaluate, evaluate_callable
from sb3_offline.zoo.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER


def test_conservative_penalty_is_logsumexp_minus_the_data_actions_value() -> None:
    q_values = th.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    actions = th.tensor([[2], [1]])
    expected = ((math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3.0) + (math.log(3.0) - 0.0)) / 2
    assert conservative_penalty(q_values, actions).item() == pytest.approx(expected, rel=1e-6)


def test_conservative_penalty_pushes_the_data_action_up_and_the_others_down() -> None:
    q_values = th.zeros(1, 4, requires_grad=True)
    conservative_penalty(q_values, th.tensor([[1]])).backward()
    assert q_values.grad is not None
    # d/dQ: softmax(Q) - onehot(a): -3/4 on the data action, +1/4 on each other one
    assert th.allclose(q_values.grad, th.tensor([[0.25, -0.75, 0.25, 0.25]]))


def test_action_quantiles_gather_each_rows_action_over_every_quantile() -> None:
    quantiles = th.arange(2 * 3 * 4, dtype=th.float32).view(2, 3, 4)  # (batch, n_quantiles, n_actions)
    picked = action_quantiles(quantiles, th.tensor([[1], [3]]))
    assert th.equal(picked, th.stack([quantiles[0, :, 1], quantiles[1, :, 3]]))


def test_the_authors_quantile_loss_is_sb3_contribs() -> None:
    """quantile_agent.py: sum over the current quantiles of the mean over the target's, kappa 1, batch mean."""
    gen = th.Generator().manual_seed(0)
    current, target = th.randn(5, 7, generator=gen), th.randn(5, 7, generator=gen)
    errors = target[:, None, :] - current[:, :, None]  # (batch, current i, target j)
    huber = th.where(errors.abs() <= 1.0, 0.5 * errors**2, errors.abs() - 0.5)
    tau_hat = (th.arange(7, dtype=th.float32) + 0.5) / 7
    authors = ((tau_hat[None, :, None] - (errors < 0).float()).abs() * huber).mean(dim=2).sum(dim=1).mean()
    assert quantile_huber_loss(current, target, sum_over_quantiles=True).item() == pytest.approx(authors.item())


# ------------------------------------------------------------------------------------------ the model
@pytest.fixture(scope="module")
def cartpole_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5000 transitions of the scripted CartPole controller with 30% random actions (episodes of about 260)."""
    return cartpole_dataset(tmp_path_factory.mktemp("cartpole") / "cartpole.hdf5", n_steps=5000, seed=0)


def test_each_base_keeps_its_references_settings(cartpole_file: Path) -> None:
    dqn = DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu")
    assert isinstance(dqn.policy, DiscreteCQLPolicy) and isinstance(dqn.policy, DQNPolicy)
    assert (dqn.learning_rate, dqn.batch_size, dqn.alpha, dqn.target_update_interval) == (6.25e-5, 32, 1.0, 8000)
    assert dqn.policy.net_arch == [256, 256] and dqn.q_net.optimizer.defaults["eps"] == 1e-8
    assert dqn.learning_rates() == {"q_net": None}
    qr = DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), base="qrdqn", device="cpu")
    assert isinstance(qr.policy, QuantileCQLPolicy) and isinstance(qr.policy, QRDQNPolicy)
    assert (qr.learning_rate, qr.batch_size, qr.alpha, qr.target_update_interval) == (5e-5, 32, 1.0, 2000)
    assert qr.policy.n_quantiles == 200 and qr.quantile_net.optimizer.defaults["eps"] == 0.0003125
    assert qr.networks == ("quantile_net", "quantile_net_target")
    assert qr.learning_rates() == {"quantile_net": None}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(base="c51"), r"base: expected one of \['dqn', 'qrdqn'\], found 'c51'"),
        (dict(alpha=-1.0), "alpha: expected >= 0, found -1.0"),
        (dict(target_update_interval=0), "target_update_interval: expected an int >= 1 gradient step, found 0"),
    ],
)
def test_bad_settings_are_named(cartpole_file: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), **kwargs)


@pytest.mark.parametrize("base, network", [("dqn", "q_net"), ("qrdqn", "quantile_net")])
def test_the_target_is_copied_after_the_first_update_and_every_interval(
    cartpole_file: Path, base: str, network: str
) -> None:
    """d3rlpy's ``grad_step % target_update_interval == 0`` (dopamine's alike): after updates 1, 4, 7, ..."""
    model = DiscreteCQL(
        "MlpPolicy",
        None,
        dataset=str(cartpole_file),
        base=base,
        target_update_interval=3,
        device="cpu",
        policy_kwargs=dict(net_arch=[16], **({"n_quantiles": 5} if base == "qrdqn" else {})),
    )
    online, target = getattr(model, network), getattr(model, f"{network}_target")
    copied = []
    for update in range(1, 8):
        model.learn(1, reset_num_timesteps=False, log_interval=None)
        same = all(th.equal(p, q) for p, q in zip(online.parameters(), target.parameters(), strict=True))
        copied.append(update) if same else None
    assert copied == [1, 4, 7]


def test_the_update_is_d3rlpys_double_dqn_huber_loss_plus_alpha_times_the_penalty(cartpole_file: Path) -> None:
    """One update's loss, recomputed by hand from the networks before it on the batch it drew."""
    model = DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), alpha=2.0, device="cpu", seed=0)
    q_net, q_target = copy.deepcopy(model.q_net), copy.deepcopy(model.q_net_target)
    batches = []
    sample = model.replay_buffer.sample
    model.replay_buffer.sample = lambda *a, **k: batches.append(sample(*a, **k)) or batches[-1]  # type: ignore[method-assign]
    recorder = MemoryWriter()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    model.learn(1, log_interval=1)
    data = batches[0]
    actions = data.actions.long()
    with th.no_grad():
        next_values = q_target(data.next_observations).gather(1, q_net(data.next_observations).argmax(1, keepdim=True))
        y = data.rewards + 0.99 * (1 - data.dones) * next_values
        q = q_net(data.observations)
        diff = y - q.gather(1, actions)
        td = th.where(diff.abs() < 1, 0.5 * diff**2, diff.abs() - 0.5).mean()
        penalty = (th.logsumexp(q, dim=1, keepdim=True) - q.gather(1, actions)).mean()
    logged = recorder.dumps[-1]
    assert logged["train/td_loss"] == pytest.approx(td.item(), rel=1e-5)
    assert logged["train/conservative_loss"] == pytest.approx(penalty.item(), rel=1e-5)
    assert logged["train/loss"] == pytest.approx(td.item() + 2.0 * penalty.item(), rel=1e-5)


@pytest.mark.slow  # 12-40 s on the shared 2-core machine
def test_discrete_cql_learns_cartpole_from_the_controllers_data(cartpole_file: Path) -> None:
    """
    DiscreteCQL at its defaults (base "dqn": d3rlpy's settings, the target copied after the first update only in
    2000 steps) on 5000 transitions of the scripted controller with 30% random actions (its episodes: about 260).
    Measured (10 evaluation episodes, seeds 100-109), data and training seeds 0-2: 485, 500, 500; random: about 22.
    """
    model = DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu", seed=0)
    model.learn(2000, log_interval=None)
    ours = evaluate(model, "CartPole-v1", n_episodes=10, seed=100).mean_return
    random = evaluate_callable(gym.make("CartPole-v1"), None, n_episodes=10, seed=100)[0]
    assert ours > max(5 * random, 150), (ours, random)


def test_zoo_sampler_gives_constructor_arguments_and_the_converter_gives_them_back(cartpole_file: Path) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    hyperparams = HYPERPARAMS_SAMPLER["discrete_cql"](trial, 2, 1, {})
    assert HYPERPARAMS_CONVERTER["discrete_cql"](trial.params) == hyperparams
    assert "tau" not in hyperparams and hyperparams["target_update_interval"] in {1000, 2000, 4000, 8000}
    model = DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), device="cpu", **hyperparams)
    assert (model.alpha, model.batch_size) == (hyperparams["alpha"], hyperparams["batch_size"])


@pytest.mark.slow  # three algorithms in a subprocess: 10-30 s
def test_the_example_runs(tmp_path: Path) -> None:
    """examples/discrete_cql_cartpole.py end to end with a little data and few steps (its numbers: the docs')."""
    root = Path(__file__).resolve().parents[1]
    args = ["--steps", "20", "--transitions", "600", "--episodes", "1", "--output", str(tmp_path)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, str(root / "examples" / "discrete_cql_cartpole.py"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| DiscreteCQL (qrdqn)" in result.stdout and "| DiscreteIQL" in result.stdout
    assert {p.name for p in tmp_path.glob("*.zip")} == {
        "discretecql_dqn.zip",
        "discretecql_qrdqn.zip",
        "discreteiql.zip",
    }


def test_the_qrdqn_base_without_its_penalty_is_sb3_contribs_qrdqn_update(cartpole_file: Path) -> None:
    """``alpha=0``: one update equals sb3-contrib's ``QRDQN.train`` on the same weights and batch, bit for bit."""
    ours = DiscreteCQL("MlpPolicy", None, dataset=str(cartpole_file), base="qrdqn", alpha=0.0, device="cpu", seed=0)
    theirs = QRDQN(
        "MlpPolicy", "CartPole-v1", learning_rate=5e-5, policy_kwargs=dict(net_arch=[256, 256]), device="cpu"
    )
    theirs.policy.load_state_dict(ours.policy.state_dict())
    assert theirs.policy.optimizer.defaults["eps"] == ours.quantile_net.optimizer.defaults["eps"] == 0.01 / 32
    batches = []
    sample = ours.replay_buffer.sample
    ours.replay_buffer.sample = lambda *a, **k: batches.append(sample(*a, **k)) or batches[-1]  # type: ignore[method-assign]
    ours.learn(1, log_interval=None)
    theirs.set_logger(Logger(folder=None, output_formats=[]))
    theirs.replay_buffer.sample = lambda *a, **k: batches[0]  # type: ignore[method-assign]
    theirs.train(gradient_steps=1, batch_size=32)
    for a, b in zip(ours.quantile_net.parameters(), theirs.quantile_net.parameters(), strict=True):
        assert th.equal(a, b)
