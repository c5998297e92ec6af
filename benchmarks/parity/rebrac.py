"""
ReBRAC against the authors' JAX code (``tinkoff-ai/ReBRAC`` ``src/algorithms/rebrac.py``, or CORL's single-file port
``algorithms/offline/rebrac.py``, the same update), run with ``jax``, ``flax`` and ``optax`` (a Python that has them
and ours: ``python -m venv --system-site-packages`` and ``pip install jax flax optax chex``).

Both sides are built at the authors' sizes (actor and two critics 3 x 256, LayerNorm in the critics) with the authors'
defaults (lr 1e-3, gamma 0.99, tau 5e-3, policy noise 0.2 clipped at 0.5, policy delay 2, Q normalised) and
``actor_bc_coef``/``critic_bc_coef`` 0.01/0.1; their flax parameters are made from ours (a ``Dense`` kernel is the
transpose of an ``nn.Linear`` weight; the critics' ``vmap``-ed kernels ``(2, in, out)`` are our ensemble's stacked
weights as they are). Each update runs their ``update_td3`` (critics, then actor and targets) or
``update_td3_no_targets`` as their ``delayed_updates`` says, eagerly (no ``jit``), on the rows our update draws, with
their batch's ``next_actions`` the data's next actions as their ``qlearning_dataset`` makes them; the target noise
is theirs (``jax.random.normal`` of their key, split as their ``update_critic`` splits it), handed to our
``torch.randn_like``. The rows are drawn among those whose next action exists or that terminate (the authors' loader
drops a truncated episode's last row). Every loss, every gradient (read as each side's optimizer gets it: our
optimizers' step pre-hooks, their ``TrainState.apply_gradients``) and, after every update, every parameter (targets
included) are compared.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from benchmarks.parity import core

REPO = "tinkoff-ai/ReBRAC"
FILES = ("src/algorithms/rebrac.py", "algorithms/offline/rebrac.py")
#: blob hash -> a commit that holds it (the authors' file)
KNOWN = {"d57335d430b33115271b1663bbcfc020d7cc8dbb": "694385b"}
#: what the authors' scripts import at the top and never use in their update (D4RL, logging, configuration, the
#: buffer that reads D4RL): stand-in modules
STUBS = ("wandb", "pyrallis", "distrax", "gym", "d4rl", "src.utils.buffer")
BETAS = (0.01, 0.1)


def stub_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.wrap = lambda *args, **kwargs: lambda function: function  # type: ignore[attr-defined]  # pyrallis
    module.Transformed = module.Env = module.ReplayBuffer = object  # type: ignore[attr-defined]
    return module


def load_reference(ref: core.Reference) -> types.ModuleType:
    """The authors' script as a module (their ``src`` package importable from the checkout, stubs for :data:`STUBS`)."""
    root = ref.path.parents[2] if ref.file.startswith("src/") else ref.path.parent
    saved = {name: sys.modules.get(name) for name in STUBS}
    for name in STUBS:
        if name not in sys.modules or name == "src.utils.buffer":
            sys.modules[name] = stub_module(name)
    sys.path.insert(0, str(root))
    try:
        if ref.file.startswith("src/"):
            return importlib.import_module("src.algorithms.rebrac")
        spec = importlib.util.spec_from_file_location("corl_rebrac", ref.path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(root))
        for name, module in saved.items():
            if module is not None:
                sys.modules[name] = module


def to_numpy(tensor: th.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def actor_params(actor: th.nn.Module) -> dict[str, Any]:
    linears = [m for m in actor.mu if isinstance(m, th.nn.Linear)]
    return {
        "params": {
            f"Dense_{i}": {"kernel": to_numpy(layer.weight.T), "bias": to_numpy(layer.bias)}
            for i, layer in enumerate(linears)
        }
    }


def critic_params(critic: Any) -> dict[str, Any]:
    from sb3_offline.common.ensemble import VectorizedLayerNorm, VectorizedLinear

    tree: dict[str, Any] = {}
    linears = [m for m in critic.q_net.net if isinstance(m, VectorizedLinear)]
    norms = [m for m in critic.q_net.net if isinstance(m, VectorizedLayerNorm)]
    for i, layer in enumerate(linears):
        tree[f"Dense_{i}"] = {"kernel": to_numpy(layer.weight), "bias": to_numpy(layer.bias[:, 0])}
    for i, norm in enumerate(norms):
        tree[f"LayerNorm_{i}"] = {"scale": to_numpy(norm.weight[:, 0]), "bias": to_numpy(norm.bias[:, 0])}
    return {"params": {"VmapCritic_0": tree}}


def pairs(actor: th.nn.Module, critic: Any) -> dict[str, list[tuple[th.Tensor, tuple[str, ...], bool]]]:
    """Per network: (our parameter, its path in their tree, whether theirs is its transpose)."""
    from sb3_offline.common.ensemble import VectorizedLayerNorm, VectorizedLinear

    linears = [m for m in actor.mu if isinstance(m, th.nn.Linear)]
    out: dict[str, list[tuple[th.Tensor, tuple[str, ...], bool]]] = {"actor": [], "critic": []}
    for i, layer in enumerate(linears):
        out["actor"] += [
            (layer.weight, ("params", f"Dense_{i}", "kernel"), True),
            (layer.bias, ("params", f"Dense_{i}", "bias"), False),
        ]
    vlinears = [m for m in critic.q_net.net if isinstance(m, VectorizedLinear)]
    norms = [m for m in critic.q_net.net if isinstance(m, VectorizedLayerNorm)]
    base = ("params", "VmapCritic_0")
    for i, layer in enumerate(vlinears):
        out["critic"] += [
            (layer.weight, (*base, f"Dense_{i}", "kernel"), False),
            (layer.bias, (*base, f"Dense_{i}", "bias"), False),
        ]
    for i, norm in enumerate(norms):
        out["critic"] += [
            (norm.weight, (*base, f"LayerNorm_{i}", "scale"), False),
            (norm.bias, (*base, f"LayerNorm_{i}", "bias"), False),
        ]
    return out


def leaf(tree: Any, path: tuple[str, ...]) -> np.ndarray:
    for key in path:
        tree = tree[key]
    return np.asarray(tree)


def difference(ours: th.Tensor, theirs: np.ndarray, transposed: bool) -> float:
    value = to_numpy(ours)
    value = value.T if transposed else value
    return float(np.abs(value.reshape(theirs.shape) - theirs).max())


@contextmanager
def recorded_gradients(ref: types.ModuleType, grads: dict[str, list[Any]]) -> Iterator[None]:
    """Their gradients as their ``TrainState.apply_gradients`` gets them (actor's and critics' states)."""
    originals = {}
    for name, cls in (("actor", ref.ActorTrainState), ("critic", ref.CriticTrainState)):
        original = cls.apply_gradients
        originals[cls] = original

        def record(self: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            grads[_name].append(kwargs["grads"])
            return _original(self, *args, **kwargs)

        cls.apply_gradients = record
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.apply_gradients = original


@dataclass
class Step:
    """One update of one side: its losses and gradients by network (theirs as flax trees), its parameters after it."""

    losses: dict[str, float]
    grads: dict[str, Any]
    params: dict[str, Any]


def our_updates(ours: Any, batches: list[tuple[th.Tensor, np.ndarray]]) -> list[Step]:
    """Our updates on the given rows with the given target noise (``torch.randint``/``randn_like`` stand-ins)."""
    recorder = core.StepRecorder(ours._optimizers())
    steps = []
    for idx, noise in batches:
        original_randint, original_randn_like = th.randint, th.randn_like
        th.randint = lambda *args, _idx=idx, **kwargs: _idx.clone()  # type: ignore[assignment]
        th.randn_like = lambda tensor, _noise=noise, **kwargs: th.tensor(_noise, dtype=tensor.dtype)  # type: ignore[assignment]
        try:
            with recorder.recording():
                ours.train(gradient_steps=1, batch_size=len(idx))
        finally:
            th.randint, th.randn_like = original_randint, original_randn_like
        losses = {name: steps_[0][0] for name, steps_ in recorder.steps.items()}
        grads = {name: steps_[0][1] for name, steps_ in recorder.steps.items()}
        params = {name: [to_numpy(p) for p in getattr(ours, name).parameters()] for name in ours.networks}
        steps.append(Step(losses, grads, params))
    return steps


def their_updates(
    ref: types.ModuleType,
    ours: Any,
    trees: tuple[Any, Any],
    batches: list[dict[str, Any]],
    keys: list[Any],
    optimizer: str = "adam",
    jit: bool = False,
) -> list[Step]:
    """
    Their ``update_td3`` / ``update_td3_no_targets`` from the flax ``trees`` (actor, critics): eagerly, or compiled by
    ``jax.jit`` as their training loop runs them (XLA fuses and reorders: the same update, other roundings).
    """
    import jax
    import optax

    make_tx = optax.sgd if optimizer == "sgd" else optax.adam
    action_dim = ours.action_space.shape[0]
    actor_module = ref.DetActor(action_dim=action_dim, hidden_dim=256, layernorm=False, n_hiddens=3)
    critic_module = ref.EnsembleCritic(hidden_dim=256, num_critics=2, layernorm=True, n_hiddens=3)
    actor = ref.ActorTrainState.create(
        apply_fn=actor_module.apply, params=trees[0], target_params=trees[0], tx=make_tx(ours.actor_learning_rate)
    )
    critic = ref.CriticTrainState.create(
        apply_fn=critic_module.apply, params=trees[1], target_params=trees[1], tx=make_tx(ours.learning_rate)
    )
    common = dict(
        actor_bc_coef=ours.actor_bc_coef, critic_bc_coef=ours.critic_bc_coef, tau=ours.tau,
        policy_noise=ours.target_policy_noise, noise_clip=ours.target_noise_clip,
    )  # fmt: skip
    full = functools.partial(ref.update_td3, gamma=ours.gamma, normalize_q=True, **common)
    critic_only = functools.partial(ref.update_td3_no_targets, gamma=ours.gamma, **common)
    if jit:
        full, critic_only = jax.jit(full), jax.jit(critic_only)
    steps = []
    for update, (batch, key) in enumerate(zip(batches, keys, strict=True)):
        metrics = ref.Metrics.create(
            ["critic_loss", "q_min", "actor_loss", "bc_mse_policy", "bc_mse_random", "action_mse"]
        )
        grads: dict[str, list[Any]] = {"actor": [], "critic": []}
        with recorded_gradients(ref, grads):
            if update % ours.policy_delay == 0:  # their delayed_updates: i % policy_freq == 0 from i = 0
                _, actor, critic, metrics = full(key=key, actor=actor, critic=critic, batch=batch, metrics=metrics)
            else:
                _, actor, critic, metrics = critic_only(
                    key=key, actor=actor, critic=critic, batch=batch, metrics=metrics
                )
        values = metrics.compute()
        names = [name for name in ("critic", "actor") if grads[name]]
        losses = {name: float(values[f"{name}_loss"][0]) for name in names}
        params = {"actor": actor.params, "actor_target": actor.target_params, "critic": critic.params,
                  "critic_target": critic.target_params}  # fmt: skip
        steps.append(Step(losses, {name: grads[name][0] for name in names}, params))
    return steps


def compare(ours: Any, our_steps: list[Step], their_steps: list[Step]) -> core.Measures:
    """Losses, gradients and parameters of every update (a different number of optimizer steps: ``inf``)."""
    measures = core.Measures()
    network_pairs = pairs(ours.actor, ours.critic)
    target_pairs = pairs(ours.actor_target, ours.critic_target)
    for update, (a, b) in enumerate(zip(our_steps, their_steps, strict=True)):
        for name in ("critic", "actor"):
            if (name in a.losses) != (name in b.losses):
                measures.add(update, f"{name} steps (ours {name in a.losses}, theirs {name in b.losses}) loss", np.inf)
            elif name in a.losses:
                measures.add(update, f"{name} loss", abs(a.losses[name] - b.losses[name]), abs(a.losses[name]))
                our_grads = [a.grads[name][id(p)] for p, _, _ in network_pairs[name]]
                diffs = [
                    difference(g, leaf(b.grads[name], path), t)
                    for g, (_, path, t) in zip(our_grads, network_pairs[name], strict=True)
                ]
                measures.add(update, f"{name} gradients", max(diffs), max(float(g.abs().max()) for g in our_grads))
        for name in ("actor", "critic", "actor_target", "critic_target"):
            our = (target_pairs if name.endswith("target") else network_pairs)[name.split("_")[0]]
            ours_now = dict(zip([id(p) for p in getattr(ours, name).parameters()], a.params[name], strict=True))
            worst = max(difference(th.as_tensor(ours_now[id(p)]), leaf(b.params[name], path), t) for p, path, t in our)
            measures.add(update, f"{name} parameters", worst, max(float(np.abs(v).max()) for v in a.params[name]))
    return measures


#: ``adam``: both sides as shipped (Adam); ``sgd``: plain SGD on both sides at the same learning rates, where no
#: optimizer state magnifies float rounding (Adam divides each gradient entry by its running scale: a tiny entry's
#: rounding moves its parameter by up to ``lr``), so what is left is the update's arithmetic
VARIANTS = ("adam", "sgd")


def build_ours(transitions: Any, env: Any, batch_size: int, seed: int, optimizer: str) -> Any:
    """Our ReBRAC at the authors' sizes with :data:`BETAS`; ``optimizer="sgd"``: SGD in place of each Adam."""
    from sb3_offline import ReBRAC

    ours = core.quiet(
        ReBRAC(
            "MlpPolicy", env, dataset=transitions, batch_size=batch_size, seed=seed, device="cpu", cuda_graphs=False,
            actor_bc_coef=BETAS[0], critic_bc_coef=BETAS[1],
        )
    )  # fmt: skip
    if optimizer == "sgd":
        for name, rate in (("actor", ours.actor_learning_rate), ("critic", ours.learning_rate)):
            getattr(ours, name).optimizer = th.optim.SGD(getattr(ours, name).parameters(), lr=rate)
    return ours


def make_batches(ours: Any, updates: int, seed: int, batch_size: int) -> tuple[list[Any], list[Any], list[Any]]:
    """
    Per update: our rows and target noise, their batch (their ``qlearning_dataset``'s keys) and their key; the rows
    among those whose next action exists or that terminate, the noise their ``update_critic`` draws from their key.
    """
    import jax
    import jax.numpy as jnp

    from sb3_offline.rebrac.rebrac import dataset_next_actions

    buffer = ours.replay_buffer
    all_rows = th.arange(buffer.size())
    next_actions, exists = dataset_next_actions(buffer, all_rows)
    usable = all_rows[(exists[:, 0] > 0) | (buffer.dones[: buffer.size(), 0] > 0)]
    rng, key = np.random.default_rng(seed), jax.random.PRNGKey(seed)
    our_batches, their_batches, keys = [], [], []
    for _ in range(updates):
        idx = usable[th.as_tensor(rng.integers(0, len(usable), batch_size))]
        key, update_key = jax.random.split(key)
        # their update_critic: key, actions_key = split(key); normal(actions_key, next_actions.shape)
        noise = np.asarray(jax.random.normal(jax.random.split(update_key)[1], (batch_size, ours.action_space.shape[0])))
        gathered = buffer.gather(idx)
        batch = {
            "states": gathered.observations, "actions": gathered.actions, "rewards": gathered.rewards[:, 0],
            "next_states": gathered.next_observations, "next_actions": next_actions[idx], "dones": gathered.dones[:, 0],
        }  # fmt: skip
        their_batches.append({k: jnp.asarray(to_numpy(v)) for k, v in batch.items()})
        our_batches.append((idx, noise))
        keys.append(update_key)
    return our_batches, their_batches, keys


def run(
    reference: Path,
    updates: int = 10,
    seed: int = 0,
    data: str = "hopper",
    rows: int = 2000,
    batch_size: int = 256,
    variants: tuple[str, ...] = VARIANTS,
    **options: Any,
) -> list[core.ParityRow]:
    """
    ``updates`` ReBRAC updates on each side (see the module's docstring; the actor steps on the 1st, 3rd, ...) per
    variant (:data:`VARIANTS`), and the float noise floor: their update eager against their update compiled by
    ``jax.jit``.

    :param reference: a checkout of ``tinkoff-ai/ReBRAC`` (or of CORL, or the file itself)
    :param data: ``"hopper"`` (Hopper-v5 random data) or ``"synthetic"``, both on a Box with bounds [-1, 1]
    :param rows: transitions in the dataset
    :param batch_size: minibatch size (the authors' 1024 on MuJoCo; 256 keeps it quick)
    :param variants: among :data:`VARIANTS`
    """
    import flax
    import jax
    import jax.numpy as jnp
    import optax

    if options:
        raise TypeError(f"rebrac.run: unexpected options {sorted(options)}")
    ref_file = core.locate(reference, FILES, REPO, KNOWN)
    ref = load_reference(ref_file)
    transitions, env = core.make_dataset(data, rows, seed)
    result = []
    for variant in variants:
        ours = build_ours(transitions, env, batch_size, seed, variant)
        our_batches, their_batches, keys = make_batches(ours, updates, seed, batch_size)
        trees = jax.tree_util.tree_map(jnp.asarray, (actor_params(ours.actor), critic_params(ours.critic)))
        theirs = their_updates(ref, ours, trees, their_batches, keys, optimizer=variant)
        floor = their_updates(ref, ours, trees, their_batches, keys, optimizer=variant, jit=True)
        measures = compare(ours, our_updates(ours, our_batches), theirs)
        noise_floor = max(
            float(jnp.abs(a - b).max())
            for x, y in zip(theirs, floor, strict=True)
            for a, b in zip(jax.tree_util.tree_leaves(x.params), jax.tree_util.tree_leaves(y.params), strict=True)
        )
        notes = (
            f"JAX {jax.__version__}, flax {flax.__version__}, optax {optax.__version__} on CPU (float32, eager); betas "
            f"{BETAS[0]}/{BETAS[1]}, batch {batch_size}, {data} data; their update eager against jax.jit-compiled "
            f"differs by {noise_floor:.1e} in the parameters"
        )
        if variant == "adam":
            notes += (
                "; Adam magnifies float32 roundings of small gradient entries into parameter steps of up to lr = 1e-3 "
                "(the same update with SGD on both sides is at float tolerance: the sgd row)"
            )
        result.append(core.make_row("ReBRAC", f"authors' JAX, {variant}", ref_file, updates, measures, notes))
    return result
