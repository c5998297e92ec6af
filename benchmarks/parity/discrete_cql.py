"""
Update-level parity of our DiscreteCQL (``base="dqn"``) with d3rlpy 2.8.1's ``DiscreteCQL``
(``d3rlpy/algos/qlearning/torch/cql_impl.py``, ``DiscreteCQLImpl`` on ``DoubleDQNImpl``), the installed package
(``--reference`` names its folder, e.g. ``<venv>/lib/python3.11/site-packages/d3rlpy``; run with that venv's
python). Run with ``python -m benchmarks.parity discrete_cql --reference D3RLPY_PACKAGE [--updates 10] [--seed 0]``.

Both sides are built with d3rlpy's defaults (one Q-network 256-256 ReLU, Adam lr 6.25e-5, ``eps`` 1e-8, ``alpha``
1, gamma 0.99) on the same synthetic data (4-dimensional Gaussian states, 3 actions, 5% terminations); the target
is copied every ``target_update_interval`` updates on both sides (3 here, d3rlpy's ``grad_step % 3 == 0``: after
updates 1, 4, 7, 10), so that K updates exercise the copies. Our weights are copied into d3rlpy's Q-network and its
target; both get the same batches (d3rlpy's as a ``TorchMiniBatch`` with ``intervals`` 1), and each runs K updates
through its own code (ours: ``DiscreteCQL.train(1)``; d3rlpy: ``DiscreteCQLImpl.update(batch, grad_step)``). The
loss back-propagated, every gradient (just before Adam's ``step``) and, after every update, every parameter (the
target's too) are compared (:func:`benchmarks.parity.core.run_updates`). Neither side draws random numbers.
Nothing here is a test; ``tests/test_parity_discrete_cql.py`` runs it where d3rlpy is installed.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from benchmarks.parity.core import ParityRow, Reference, Side, git_blob, linear_pairs, make_row, our_side, quiet
from benchmarks.parity.iql import deterministic_cpu
from sb3_offline import DiscreteCQL
from sb3_offline.datasets import Transitions

D3RLPY_REPO, D3RLPY_FILE = "takuseno/d3rlpy", "d3rlpy/algos/qlearning/torch/cql_impl.py"
OBS_DIM, N_ACTIONS = 4, 3


class SpacesEnv(gym.Env):
    """An env that only has spaces: 4-dimensional states, 3 actions."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Discrete(N_ACTIONS)


def make_transitions(rows: int = 2000, seed: int = 0) -> Transitions:
    """Synthetic discrete transitions: Gaussian states and rewards, uniform actions, 5% terminations."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(rows, OBS_DIM)).astype(np.float32)
    next_obs = (obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32)
    actions = rng.integers(0, N_ACTIONS, size=rows).astype(np.int64)
    rewards = rng.normal(size=rows).astype(np.float32)
    terminations = rng.random(rows) < 0.05
    return Transitions(obs, actions, rewards, next_obs, terminations, np.zeros(rows, bool))


def make_batches(transitions: Transitions, updates: int, batch_size: int, seed: int) -> list[ReplayBufferSamples]:
    """``updates`` batches drawn once (actions ``(batch, 1)`` int64, as our buffer's), fed to both sides."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(updates):
        index = rng.integers(0, len(transitions), size=batch_size)
        out.append(
            ReplayBufferSamples(
                th.as_tensor(np.asarray(transitions.observations)[index]),
                th.as_tensor(transitions.actions[index]).reshape(-1, 1),
                th.as_tensor(np.asarray(transitions.next_observations)[index]),
                th.as_tensor(transitions.terminations[index], dtype=th.float32).reshape(-1, 1),
                th.as_tensor(transitions.rewards[index]).reshape(-1, 1),
            )
        )
    return out


def import_d3rlpy(reference: pathlib.Path) -> Any:
    """d3rlpy, from the environment or from the folder above the package ``reference``; its version must be 2.8.1."""
    try:
        import d3rlpy
    except ImportError:
        sys.path.insert(0, str(pathlib.Path(reference).resolve().parent))
        import d3rlpy
    if d3rlpy.__version__ != "2.8.1":
        raise RuntimeError(f"reference: expected d3rlpy 2.8.1, found {d3rlpy.__version__}")
    return d3rlpy


def d3rlpy_side(d3rlpy: Any, model: DiscreteCQL, batches: list[ReplayBufferSamples], alpha: float) -> tuple[Side, Any]:
    """d3rlpy's ``DiscreteCQL`` with our weights (network and target); an update is ``impl.update(batch, k)``."""
    config = d3rlpy.algos.DiscreteCQLConfig(
        learning_rate=float(model.learning_rate),  # type: ignore[arg-type]
        batch_size=model.batch_size,
        gamma=model.gamma,
        alpha=alpha,
        target_update_interval=model.target_update_interval,
    )
    algo = config.create(device="cpu:0")
    algo.create_impl((OBS_DIM,), N_ACTIONS)
    impl = algo.impl
    from d3rlpy.torch_utility import TorchMiniBatch

    def update(k: int) -> None:
        b = batches[k]
        ones = th.ones_like(b.rewards)
        batch = TorchMiniBatch(
            b.observations, b.actions, b.rewards, b.next_observations, b.actions, b.rewards, b.dones, ones, "cpu:0"
        )
        impl.update(batch, k)  # d3rlpy's grad_step counts from 0

    return Side("theirs", update, {"q_net": impl._modules.optim.optim}), impl


def run(
    reference: pathlib.Path,
    updates: int = 10,
    seed: int = 0,
    batch_size: int = 32,
    interval: int = 3,
    reference_alpha: float | None = None,
    **_: Any,
) -> list[ParityRow]:
    """
    The parity row of DiscreteCQL (base "dqn") against d3rlpy 2.8.1's ``DiscreteCQLImpl``.

    :param reference: the installed d3rlpy package's folder
    :param updates: K, the updates each side runs
    :param seed: seed of the data, our weights and the batches
    :param batch_size: rows per batch (d3rlpy's default 32)
    :param interval: the target's copy interval on both sides (short, so that K updates exercise it)
    :param reference_alpha: d3rlpy's ``alpha`` (``None``: ours, 1); another value shows the harness sees a difference
    """
    d3rlpy = import_d3rlpy(reference)
    transitions = make_transitions(seed=seed)
    model = quiet(
        DiscreteCQL(
            "MlpPolicy",
            SpacesEnv(),
            dataset=transitions,
            target_update_interval=interval,
            batch_size=batch_size,
            seed=seed,
            device="cpu",
            cuda_graphs=False,
        )
    )
    model._setup_learn(updates)
    batches = make_batches(transitions, updates, batch_size, seed)
    queue = iter(batches)
    model.replay_buffer.sample = lambda *args, **kwargs: next(queue)  # type: ignore[method-assign]
    theirs, impl = d3rlpy_side(d3rlpy, model, batches, model.alpha if reference_alpha is None else reference_alpha)
    layers = {
        "q_net": linear_pairs("q_net", [model.q_net], [impl._modules.q_funcs[0]]),
        "q_net_target": linear_pairs("q_net_target", [model.q_net_target], [impl._modules.targ_q_funcs[0]]),
    }
    with th.no_grad():
        for pairs in layers.values():
            for ours, other in pairs:
                other.weight.copy_(ours.weight)
                other.bias.copy_(ours.bias)
    path = pathlib.Path(d3rlpy.__file__).parent / "algos/qlearning/torch/cql_impl.py"
    ref = Reference(D3RLPY_REPO, f"v{d3rlpy.__version__} (blob {git_blob(path)[:10]})", D3RLPY_FILE, path)
    from benchmarks.parity.core import run_updates

    with deterministic_cpu():
        measures = run_updates(our_side(model, batch_size), theirs, layers, updates, seed)
    notes = f"d3rlpy's defaults (256-256, lr 6.25e-5, alpha 1); the target copied every {interval} updates on both"
    if reference_alpha is not None:
        notes += f"; d3rlpy's alpha set to {reference_alpha} (a harness check)"
    return [make_row("DiscreteCQL", "base dqn", ref, updates, measures, notes)]
