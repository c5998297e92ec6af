"""
Update-level parity of our IQL with CORL's single-file PyTorch port (``tinkoff-ai/CORL`` commit 6afec90,
``algorithms/offline/iql.py``), loaded from a local checkout (``--reference``, never copied here). Run with
``python -m benchmarks.parity iql --reference CORL_CHECKOUT [--updates 10] [--seed 0]``.

Both sides are built with the same sizes (actor, critics and value 256-256) on the same synthetic data
(Hopper-v5's spaces, action bounds [-1, 1]: CORL regresses its actor on the env's actions); our weights are
copied into CORL's modules, both get the same batches, and each runs K updates through its own update code
(ours: ``IQL.train(1)``; CORL: ``ImplicitQLearning.train(batch)``). Every loss, every gradient (read just before
each optimizer's ``step``) and, after every update, every parameter (targets included) are compared. IQL's update
draws no random numbers (no dropout, the actor regresses on the dataset's actions).

Our IQL follows the authors' JAX code (``ikostrikov/implicit_q_learning`` commit 09d7002, ``learner.py``,
``critic.py``, ``actor.py``, ``policy.py``). Where CORL differs from it (:data:`CORL_DIFFERENCES`):

- order: CORL computes ``V(s')`` and the advantage with ``V`` *before* this step's value update, then steps
  ``V``, the critics and the actor; the authors step ``V`` first and use the *new* ``V`` in the actor's weights
  and the critics' target (``_update_jit``);
- the critic loss: CORL averages the two critics' MSEs, the authors sum them (Adam is invariant to that scale
  up to its ``eps``; the harness compares our loss and critic gradients with twice CORL's);
- ``log sigma`` clipped to [-20, 2] (the authors: [-5, 2]);
- the actor's cosine decay: PyTorch's ``CosineAnnealingLR(T_max=max_timesteps)``, which climbs back after
  ``T_max`` (optax's ``cosine_decay_schedule`` stays at 0); the same values within ``T_max``;
- networks: PyTorch's initialisation (the authors': orthogonal, gain sqrt 2, zero bias; copied here);
- options the authors lack: a deterministic actor (``iql_deterministic``, its Hopper medium configs), dropout
  in the actor (Adroit), rewards unscaled by default (``normalize_reward=False``, its locomotion configs), states
  normalised (``normalize=True``: our ``normalize_observations``).

Rows: ``as-shipped`` (CORL unmodified against our IQL) and ``ours-in-corl-order`` (our update made to follow CORL:
:class:`IQLInCORLOrder`, with CORL's ``log sigma`` bounds), which must sit at float tolerance. Nothing here is a
test; ``tests/test_parity_iql_awac.py`` runs it when a CORL checkout is given (``SB3_OFFLINE_CORL``).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn

from benchmarks.d3rlpy_variants import IQLJointStep
from benchmarks.parity.core import ParityRow
from sb3_offline import IQL
from sb3_offline.datasets import Transitions

CORL_REPO, CORL_COMMIT = "tinkoff-ai/CORL", "6afec90"
CORL_DIFFERENCES = (
    "CORL: V(s') and the advantage from V before its step (authors: the new V); critics' MSEs averaged (authors: "
    "summed; compared x2); log sigma in [-20, 2] (authors: [-5, 2])"
)


@dataclass
class Trace:
    """What one side did, per update: its losses, its gradients by network, its parameters after the update."""

    losses: list[dict[str, float]] = field(default_factory=list)
    grads: list[dict[str, dict[str, th.Tensor]]] = field(default_factory=list)
    params: list[dict[str, th.Tensor]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ the reference
def load_reference(reference: pathlib.Path, relative: str, name: str) -> types.ModuleType:
    """
    A CORL file as a module, with stub modules for what it imports at the top and never uses in its update
    (``d4rl``, ``gym``, ``pyrallis``, ``wandb``): loaded from the checkout, never copied.
    """
    path = reference / relative
    if not path.is_file():
        raise FileNotFoundError(f"reference: expected a CORL checkout with {relative}, found no {path}")
    stubs = {
        "d4rl": types.ModuleType("d4rl"),
        "gym": types.ModuleType("gym"),
        "pyrallis": types.ModuleType("pyrallis"),
        "wandb": types.ModuleType("wandb"),
    }
    stubs["gym"].Env = object  # type: ignore[attr-defined]  # annotations only
    stubs["pyrallis"].wrap = lambda *args, **kwargs: lambda function: function  # type: ignore[attr-defined]
    saved = {key: sys.modules.get(key) for key in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
    return module


# ---------------------------------------------------------------------------------------------- the data
def make_transitions(rows: int = 2000, seed: int = 0) -> Transitions:
    """Synthetic transitions with Hopper-v5's spaces (11-dim states, 3 actions in [-1, 1], some saturated)."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(rows, 11)).astype(np.float32)
    next_obs = (obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32)
    actions = np.clip(rng.normal(scale=0.6, size=(rows, 3)), -1, 1).astype(np.float32)
    rewards = rng.normal(size=rows).astype(np.float32)
    terminations = rng.random(rows) < 0.05
    return Transitions(obs, actions, rewards, next_obs, terminations, np.zeros(rows, bool), env_id="Hopper-v5")


def make_batches(transitions: Transitions, updates: int, batch_size: int, seed: int) -> list[ReplayBufferSamples]:
    """``updates`` batches drawn once, fed to both sides (actions in [-1, 1] = the env's units here)."""
    rng = np.random.default_rng(seed + 1)
    columns = [transitions.observations, transitions.actions, transitions.next_observations]
    columns += [transitions.terminations, transitions.rewards]
    out = []
    for _ in range(updates):
        index = rng.integers(0, len(transitions), size=batch_size)
        obs, actions, next_obs, dones, rewards = (th.as_tensor(np.asarray(c)[index], dtype=th.float32) for c in columns)
        out.append(ReplayBufferSamples(obs, actions, next_obs, dones.reshape(-1, 1), rewards.reshape(-1, 1)))
    return out


# ----------------------------------------------------------------------------------------- instruments
def watch(optimizer: th.optim.Optimizer, label: str, named: dict[str, th.Tensor], trace: Trace) -> None:
    """Record the gradients of ``named`` parameters in ``trace.grads[-1][label]`` whenever ``optimizer`` steps."""
    step = optimizer.step

    def recording_step(*args: Any, **kwargs: Any) -> Any:
        trace.grads[-1][label] = {n: p.grad.detach().clone() for n, p in named.items() if p.grad is not None}
        return step(*args, **kwargs)

    optimizer.step = recording_step  # type: ignore[method-assign]


def linear_params(prefix: str, *modules: nn.Module) -> dict[str, th.Tensor]:
    """The weights and biases of the ``nn.Linear`` layers of ``modules``, named ``prefix.<layer>.<weight|bias>``."""
    layers = [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]
    return {f"{prefix}.{i}.{k}": getattr(layer, k) for i, layer in enumerate(layers) for k in ("weight", "bias")}


def as_list(batch: ReplayBufferSamples) -> list[th.Tensor]:
    """A batch as CORL's ``TensorBatch``: states, actions, rewards, next states, dones."""
    return [batch.observations, batch.actions, batch.rewards, batch.next_observations, batch.dones]


def copy_params(ours: dict[str, th.Tensor], theirs: dict[str, th.Tensor]) -> None:
    """Copy our parameters into theirs, name by name, after checking that the two sides have the same shapes."""
    if ours.keys() != theirs.keys():
        raise RuntimeError(f"parameters differ: ours {sorted(ours)}, reference {sorted(theirs)}")
    with th.no_grad():
        for name, value in ours.items():
            if value.shape != theirs[name].shape:
                raise RuntimeError(f"{name}: ours {tuple(value.shape)}, reference {tuple(theirs[name].shape)}")
            theirs[name].copy_(value)


def snapshot(named: dict[str, th.Tensor | Callable[[], th.Tensor]]) -> dict[str, th.Tensor]:
    return {n: (p() if callable(p) else p).detach().clone() for n, p in named.items()}


def max_diff(a: list[dict[str, Any]], b: list[dict[str, Any]], scale: dict[str, float] | None = None) -> float:
    """The largest ``|a - scale * b|`` over the entries both sides have, update by update (nested dicts too)."""
    scale = scale or {}
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if not y or not y.keys() <= x.keys():
            raise RuntimeError(f"compared entries: expected the reference's {sorted(y)} among ours, found {sorted(x)}")
        for key in y:
            u, v = x[key], y[key]
            if isinstance(u, dict):
                worst = max(worst, max_diff([u], [v], {k: scale.get(key, 1.0) for k in u}))
            else:
                worst = max(worst, float(th.as_tensor(u - scale.get(key, 1.0) * v).abs().max()))
    return worst


def quiet_logger() -> Logger:
    """A logger that writes nothing (our ``train()`` records learning rates and losses)."""
    return Logger(folder=None, output_formats=[])


def run_ours(model: Any, batches: list[ReplayBufferSamples], params: dict[str, Any], trace: Trace) -> None:
    """Our side: one ``model.train(1)`` per batch, fed through the replay buffer's ``sample``."""
    queue = iter(batches)
    model.replay_buffer.sample = lambda *args, **kwargs: next(queue)
    for batch in batches:
        trace.grads.append({})
        model.train(gradient_steps=1, batch_size=batch.observations.shape[0])
        trace.losses.append(model._losses.flush(model.logger))
        trace.params.append(snapshot(params))


@contextmanager
def deterministic_cpu() -> Iterator[None]:
    """One CPU thread (the same reduction order on both sides), and no warning about our wrapped ``step``."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Seems like `optimizer.step", category=UserWarning)
            yield
    finally:
        th.set_num_threads(threads)


# --------------------------------------------------------------------------------------------- our side
class IQLInCORLOrder(IQLJointStep):
    """
    Our IQL made to follow CORL's update (a harness variant, not the authors' algorithm): ``V(s')`` and the advantage
    from ``V`` before its step; ``V`` stepped, then the critics on the mean of their MSEs, then the actor.
    """

    corl = True


def our_named(model: IQL) -> dict[str, Any]:
    actor = model.actor
    return {
        **linear_params("actor", actor.mu),
        "actor.log_std": actor.log_std,
        **linear_params("critic", *model.critic.q_networks),
        **linear_params("critic_target", *model.critic_target.q_networks),
        **linear_params("value", model.value),
    }


def corl_named(trainer: Any) -> dict[str, Any]:
    actor = trainer.actor
    return {
        **linear_params("actor", actor.net),
        "actor.log_std": lambda: actor.log_std.clamp(-20.0, 2.0),
        **linear_params("critic", trainer.qf.q1, trainer.qf.q2),
        **linear_params("critic_target", trainer.q_target.q1, trainer.q_target.q2),
        **linear_params("value", trainer.vf),
    }


# ------------------------------------------------------------------------------------------------- a row
def build(corl: types.ModuleType, variant: str, seed: int, decay_steps: int) -> tuple[IQL, Any]:
    """Our IQL (or :class:`IQLInCORLOrder`) and CORL's ``ImplicitQLearning`` with our weights."""
    in_corl_order = variant == "ours-in-corl-order"
    model = (IQLInCORLOrder if in_corl_order else IQL)(
        "MlpPolicy",
        gym.make("Hopper-v5"),
        dataset=make_transitions(seed=seed),
        reward_transform=None,
        actor_lr_decay_steps=decay_steps,
        seed=seed,
        device="cpu",
        cuda_graphs=False,
        policy_kwargs={"min_log_std": -20.0} if in_corl_order else {},
    )
    model.set_logger(quiet_logger())
    actor = corl.GaussianPolicy(11, 3, max_action=1.0)
    q_network, v_network = corl.TwinQ(11, 3), corl.ValueFunction(11)
    ours = {
        k: v for k, v in our_named(model).items() if k.startswith(("actor.", "critic.", "value.")) and not callable(v)
    }
    theirs = {**linear_params("actor", actor.net), **linear_params("critic", q_network.q1, q_network.q2)}
    copy_params(ours, {**theirs, **linear_params("value", v_network)})
    with th.no_grad():
        actor.log_std.copy_(model.actor.log_std_values)
    trainer = corl.ImplicitQLearning(
        max_action=1.0,
        actor=actor,
        actor_optimizer=th.optim.Adam(actor.parameters(), lr=model.actor_learning_rate),
        q_network=q_network,
        q_optimizer=th.optim.Adam(q_network.parameters(), lr=3e-4),
        v_network=v_network,
        v_optimizer=th.optim.Adam(v_network.parameters(), lr=3e-4),
        iql_tau=model.expectile,
        beta=model.temperature,
        max_steps=decay_steps,
        discount=model.gamma,
        tau=model.tau,
    )
    return model, trainer


def run_variant(
    corl: types.ModuleType, variant: str, updates: int, seed: int, decay_steps: int, batch_size: int
) -> ParityRow:
    """Both sides built with the same weights, ``updates`` updates on the same batches, compared."""
    model, trainer = build(corl, variant, seed, decay_steps)
    ours, reference = Trace(), Trace()
    params = {k: v for k, v in our_named(model).items() if not callable(v)}
    theirs = {k: v for k, v in corl_named(trainer).items() if not callable(v)}
    optimizers = {"actor": (model.actor.optimizer, trainer.actor_optimizer)}
    optimizers.update(
        critic=(model.critic.optimizer, trainer.q_optimizer), value=(model.value.optimizer, trainer.v_optimizer)
    )
    for label, (our_optimizer, their_optimizer) in optimizers.items():
        log_std = label == "actor"
        named = {k: v for k, v in params.items() if k.startswith(label + ".")}
        watch(
            our_optimizer, label, {**named, **({"actor.log_std": model.actor.log_std_values} if log_std else {})}, ours
        )
        named = {k: v for k, v in theirs.items() if k.startswith(label + ".")}
        watch(
            their_optimizer,
            label,
            {**named, **({"actor.log_std": trainer.actor.log_std} if log_std else {})},
            reference,
        )
    batches = make_batches(make_transitions(seed=seed), updates, batch_size, seed)
    with deterministic_cpu():
        run_ours(model, batches, our_named(model), ours)
        for batch in batches:
            reference.grads.append({})
            logged = trainer.train(as_list(batch))
            reference.losses.append({"value_loss": logged["value_loss"], "actor_loss": logged["actor_loss"]})
            reference.losses[-1]["critic_loss"] = logged["q_loss"]
            reference.params.append(snapshot(corl_named(trainer)))
    # CORL averages the two critics' MSEs: as shipped, our critic loss and gradients are twice its
    scale = {} if variant == "ours-in-corl-order" else {"critic_loss": 2.0, "critic": 2.0}
    notes = (
        CORL_DIFFERENCES
        if variant == "as-shipped"
        else "our update in CORL's order (harness variant), log sigma in [-20, 2]"
    )
    return ParityRow(
        "IQL", variant, CORL_REPO, CORL_COMMIT, "algorithms/offline/iql.py", updates,
        max_diff(ours.losses, reference.losses, scale), max_diff(ours.params, reference.params),
        max_diff(ours.grads, reference.grads, scale), notes + f"; cosine decay over {decay_steps} steps",
    )  # fmt: skip


VARIANTS = ("as-shipped", "ours-in-corl-order")


def run(
    reference: pathlib.Path, updates: int = 10, seed: int = 0, decay_steps: int = 20, batch_size: int = 256, **_: Any
) -> list[ParityRow]:
    """
    The parity rows of IQL against CORL's ``iql.py`` in the checkout ``reference``.

    :param reference: a CORL checkout (commit 6afec90)
    :param updates: K, the updates each side runs
    :param seed: seed of the weights and the batches
    :param decay_steps: the actor's cosine decay horizon on both sides (short, so that K updates exercise it)
    :param batch_size: rows per batch
    """
    corl = load_reference(pathlib.Path(reference), "algorithms/offline/iql.py", "corl_iql")
    th.manual_seed(seed)
    return [run_variant(corl, variant, updates, seed, decay_steps, batch_size) for variant in VARIANTS]
