"""
FQE against d3rlpy 2.8.1's ``d3rlpy.ope.FQE`` (``takuseno/d3rlpy``, ``v2.8.1``, ``d3rlpy/ope/torch/fqe_impl.py``).

``run(reference, updates, seed)``: ``reference`` is a checkout of d3rlpy (imported from there: the Python running this
needs d3rlpy's dependencies, e.g. a venv with ``pip install d3rlpy==2.8.1``). Both sides are built with d3rlpy's
``FQEConfig`` defaults (one Q-function of 256-256 ReLU units with the action at the input, Adam lr 1e-4, gamma 0.99)
and ``target_update_interval`` 3 (so the hard copies happen within a few updates: after the 1st, 4th, 7th, ...) on
Hopper-v5 random-policy transitions (action bounds [-1, 1]: our [-1, 1] actions are the env's). The evaluated
policy is one deterministic function, ``tanh(0.3 * s W)``: ours precomputes its actions (a vectorised function),
d3rlpy's FQE asks the evaluated algorithm's ``predict_best_action`` at every update (here a stand-in computing the
same function). Our Q-function's weights are copied into d3rlpy's (its target is then hard-synced, as d3rlpy does
at creation); every update gets one new batch drawn from our buffer (``sample_indices`` returns its rows; d3rlpy
gets them as a ``TransitionMiniBatch``). Each update's loss (ours read at ``backward``, d3rlpy's returned), gradients
(at the optimizers' ``step``) and parameters after it (targets included) are compared. d3rlpy has no FQE of a
stochastic policy (it evaluates ``predict_best_action``): our stochastic path has no reference.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from benchmarks.parity.core import ParityRow
from benchmarks.parity.lapo import Recorder, commit_of, linears

REPOSITORY = "takuseno/d3rlpy"
FILE = "d3rlpy/ope/torch/fqe_impl.py"
INTERVAL = 3


class _EvaluatedImpl:
    """The evaluated algorithm's implementation as d3rlpy's FQE uses it: ``predict_best_action`` (env units)."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = th.as_tensor(weights)

    def predict_best_action(self, observations: th.Tensor) -> th.Tensor:
        return th.tanh(0.3 * observations @ self.weights)


class _EvaluatedAlgo:
    def __init__(self, impl: _EvaluatedImpl) -> None:
        self.impl = impl


def import_d3rlpy(reference: Path) -> Any:
    """``d3rlpy`` imported from the checkout ``reference`` (``ImportError`` naming it when that is not possible)."""
    if not (reference / "d3rlpy" / "ope" / "fqe.py").is_file():
        raise FileNotFoundError(
            f"reference: expected a checkout of {REPOSITORY}, found no d3rlpy/ope/fqe.py in {reference}"
        )
    sys.path.insert(0, str(reference))
    try:
        import d3rlpy
    finally:
        sys.path.remove(str(reference))
    if not Path(d3rlpy.__file__).resolve().is_relative_to(reference.resolve()):
        raise ImportError(f"d3rlpy: expected it imported from {reference}, found {d3rlpy.__file__} (imported before)")
    return d3rlpy


def build(d3rlpy: Any, transitions: Any, seed: int, batch_size: int) -> tuple[Any, Any]:
    """Our FQE of the function policy and d3rlpy's, with our Q-function's weights, at d3rlpy's defaults."""
    from stable_baselines3.common.logger import Logger

    from sb3_offline.ope import FQE

    weights = np.random.default_rng(seed).normal(size=(transitions.observations.shape[1], transitions.actions.shape[1]))
    weights = weights.astype(np.float32)

    def policy(observations: np.ndarray) -> np.ndarray:
        return np.tanh(0.3 * observations @ weights)

    ours = FQE(
        policy, dataset=transitions, vectorized=True, batch_size=batch_size, target_update_interval=INTERVAL,
        device="cpu", seed=seed, cuda_graphs=False,
    )  # fmt: skip
    ours.set_logger(Logger(folder=None, output_formats=[]))
    config = d3rlpy.ope.FQEConfig(batch_size=batch_size, target_update_interval=INTERVAL)
    theirs = d3rlpy.ope.FQE(algo=_EvaluatedAlgo(_EvaluatedImpl(weights)), config=config, device="cpu:0")
    theirs.create_impl(ours.observation_space.shape, ours.action_space.shape[0])
    modules = theirs.impl._modules
    with th.no_grad():
        for a, b in zip(linears(*ours.critic.q_networks), linears(modules.q_funcs), strict=True):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        for p, q in zip(modules.q_funcs.parameters(), modules.targ_q_funcs.parameters(), strict=True):
            q.copy_(p)  # d3rlpy's hard_sync at creation
    return ours, theirs


def _parameter_pairs(ours: Any, theirs: Any) -> list[tuple[str, th.Tensor, th.Tensor]]:
    modules = theirs.impl._modules
    pairs = []
    for name, mine, other in (
        ("critic", ours.critic.q_networks, modules.q_funcs),
        ("critic_target", ours.critic_target.q_networks, modules.targ_q_funcs),
    ):
        for a, b in zip(linears(*mine), linears(other), strict=True):
            pairs += [(name, a.weight, b.weight), (name, a.bias, b.bias)]
    return pairs


def run_updates(d3rlpy: Any, transitions: Any, updates: int, seed: int) -> dict[str, float]:
    """``updates`` updates on each side, a new batch each; the largest differences and our loss/gradient scales."""
    from d3rlpy.dataset import TransitionMiniBatch

    batch_size = 100
    ours, theirs = build(d3rlpy, transitions, seed, batch_size)
    our_rec = Recorder({"critic": ours.critic.optimizer})
    their_rec = Recorder({"critic": theirs.impl._modules.optim.optim})
    buffer, generator = ours.replay_buffer, th.Generator().manual_seed(seed + 2)
    result = {"loss": 0.0, "grad": 0.0, "param": 0.0, "loss_scale": 0.0, "grad_scale": 0.0}
    for _ in range(updates):
        idx = th.randint(0, buffer.size(), (batch_size,), generator=generator)
        buffer.sample_indices = lambda batch_size, finished_episodes_only=False, _idx=idx: _idx
        batch = buffer.gather(idx)
        d3_batch = TransitionMiniBatch(
            observations=batch.observations.numpy(), actions=batch.actions.numpy(), rewards=batch.rewards.numpy(),
            next_observations=batch.next_observations.numpy(), next_actions=batch.actions.numpy(),
            terminals=batch.dones.numpy(), intervals=np.ones((batch_size, 1), dtype=np.float32), transitions=[],
        )  # fmt: skip
        with our_rec.recording():
            ours.train(gradient_steps=1, batch_size=batch_size)
        metrics = theirs.update(d3_batch)
        (loss,) = our_rec.losses
        grads, params = [0.0], [0.0]
        for name, p, q in _parameter_pairs(ours, theirs):
            params.append(float((p - q).detach().abs().max()))
            if name == "critic":
                grads.append(float((our_rec.grads[id(p)] - their_rec.grads[id(q)]).abs().max()))
        for key, value in (("loss", abs(loss - metrics["loss"])), ("grad", max(grads)), ("param", max(params))):
            result[key] = max(result[key], value)
        result["loss_scale"] = max(result["loss_scale"], abs(loss))
        result["grad_scale"] = max(result["grad_scale"], *(float(g.abs().max()) for g in our_rec.grads.values()))
    states = th.as_tensor(transitions.observations[:64], dtype=th.float32)
    with th.no_grad():
        mine = th.as_tensor(ours.predict_value(states.numpy()))
        other = theirs.impl._modules.q_funcs[0](states, theirs.impl._algo.predict_best_action(states)).q_value
    result["values"] = float((mine - other.reshape(-1)).abs().max())
    return result


NOTES = (
    "d3rlpy computes pi(s') at every update (predict_best_action), ours once before fitting (the same actions for a "
    "deterministic policy); the target network is copied after updates 1, 1 + interval, ... on both sides"
)


def run(reference: Path, updates: int = 10, seed: int = 0, **options: Any) -> list[ParityRow]:
    """The parity row of FQE (a deterministic policy). Options: ``rows`` (dataset size, default 2000)."""
    from sb3_offline.datasets import record_transitions

    reference = Path(reference)
    d3rlpy = import_d3rlpy(reference)
    transitions = record_transitions("Hopper-v5", int(options.get("rows", 2000)), seed=seed)
    th.manual_seed(seed)
    found = run_updates(d3rlpy, transitions, updates, seed)
    notes = f"{NOTES}; Q(s, pi(s)) after the updates, max abs diff {found['values']:.1e} (d3rlpy {d3rlpy.__version__})"
    scores = [found[key] for key in ("loss", "param", "grad")]
    return [
        ParityRow("FQE", "deterministic policy", REPOSITORY, commit_of(reference), FILE, updates, *scores, notes,
                  found["loss_scale"], found["grad_scale"])
    ]  # fmt: skip
