"""
LAPO against the authors' ``pcchenxi/LAPO-offlienRL``: the offline update (``algos/algos_vae.py``), the fine-tuning
update and the running statistics of fine-tuning (branch ``finetune``: ``algos/algos_vae_finetune.py``,
``algos/utils_finetune.py``).

``run(reference, updates, seed, finetune_reference=...)``: ``reference`` is a checkout of the main branch (``d2493b1``),
``finetune_reference`` one of the branch ``finetune`` (``c47c28f``; without it the two fine-tuning rows are left
out). Both sides are built with the authors' sizes (every network 3 x 256, latent ``2 * action_dim``) on Hopper-v5
random-policy transitions (action bounds [-1, 1]: our [-1, 1] actions are the env's); our weights (online and
target networks) are copied into theirs; every update gets one new batch drawn from our buffer, given to ours as is
and to theirs as their buffer holds it (states and actions z-scored, here by our normalisers, ``not_done``); the
k-th ``torch.randn_like`` of an update returns the same tensor on both sides (V's target noise, the VAE's sample,
fine-tuning's action and policy noise), and the updates run through each side's own code (ours: ``LAPO.train``;
theirs: ``Latent.train(1)``). Each update's losses (read at every ``backward``; their one critic loss is our Q and
V losses' sum), gradients (at every optimizer ``step``) and parameters after it (targets included) are compared.
The statistics row feeds the same dataset and online transitions to their ``ReplayBuffer`` and to our
:class:`~sb3_offline.lapo.running_statistics.PolicyStatistics` and compares the means and standard deviations.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch as th
from torch import nn

from benchmarks.parity.core import ParityRow

REPOSITORY = "pcchenxi/LAPO-offlienRL"


# ------------------------------------------------------------------------------------------------ the reference
def load_file(checkout: Path, file: str, name: str) -> ModuleType:
    """The module ``file`` of ``checkout``, imported as ``name`` with the checkout's own imports (never copied)."""
    path = checkout / file
    if not path.is_file():
        raise FileNotFoundError(f"reference: expected {path} (a checkout of {REPOSITORY}), found no such file")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(checkout))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(checkout))
        for loaded in [key for key in sys.modules if key == "algos" or key.startswith("algos.")]:
            del sys.modules[loaded]  # the other branch's ``algos`` package is another one
    return module


def commit_of(checkout: Path) -> str:
    """The checkout's commit (short), or ``"unknown"`` for a tree that is no git checkout."""
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


class _Stub:
    """Their ``ReplayBuffer`` as ``Latent`` uses it: ``sample`` returns the batch set for the update."""

    def __init__(self, policy: Any) -> None:
        self.batch: tuple[th.Tensor, ...] = ()
        self.policy = policy

    def sample(self, batch_size: int) -> tuple[th.Tensor, ...]:
        return self.batch

    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        with th.no_grad():
            return self.policy.features(th.as_tensor(state, dtype=th.float32)[None]).numpy()[0]

    def unnormalize_action(self, action: np.ndarray) -> np.ndarray:
        with th.no_grad():
            return self.policy.action_normalizer.denormalize(th.as_tensor(action)).numpy()


# ---------------------------------------------------------------------------------------------- instruments
class SharedDraws:
    """The k-th ``torch.randn_like`` of an update returns the same tensor on both sides (same shape, else an error)."""

    def __init__(self, seed: int) -> None:
        self.generator = th.Generator().manual_seed(seed)
        self.draws: list[th.Tensor] = []
        self.counts: dict[str, int] = {}

    @contextlib.contextmanager
    def side(self, name: str) -> Iterator[None]:
        original, index = th.randn_like, 0

        def randn_like(tensor: th.Tensor, *args: Any, **kwargs: Any) -> th.Tensor:
            nonlocal index
            if index == len(self.draws):
                self.draws.append(th.randn(tuple(tensor.shape), generator=self.generator))
            draw = self.draws[index]
            if draw.shape != tensor.shape:
                raise RuntimeError(f"draw {index} of {name}: shape {tuple(tensor.shape)}, the other's {draw.shape}")
            index += 1
            return draw.clone().to(dtype=tensor.dtype)

        th.randn_like = randn_like  # type: ignore[assignment]
        try:
            yield
        finally:
            th.randn_like = original  # type: ignore[assignment]
            self.counts[name] = index

    def next_update(self) -> None:
        if len(set(self.counts.values())) > 1:
            raise RuntimeError(f"the sides drew a different number of normal tensors: {self.counts}")
        self.draws.clear()


class Recorder:
    """Each ``backward``'s loss value and, at each optimizer's ``step``, its gradients (by parameter)."""

    def __init__(self, optimizers: dict[str, th.optim.Optimizer]) -> None:
        self.losses: list[float] = []
        self.grads: dict[int, th.Tensor] = {}
        for optimizer in optimizers.values():
            step = optimizer.step

            def recording_step(*args: Any, _step: Callable = step, _opt: Any = optimizer, **kwargs: Any) -> Any:
                for group in _opt.param_groups:
                    for p in group["params"]:
                        self.grads[id(p)] = p.grad.detach().clone() if p.grad is not None else th.zeros_like(p)
                return _step(*args, **kwargs)

            optimizer.step = recording_step  # type: ignore[method-assign]

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        self.losses.clear()
        original = th.Tensor.backward

        def backward(tensor: th.Tensor, *args: Any, **kwargs: Any) -> Any:
            self.losses.append(float(tensor.detach()))
            return original(tensor, *args, **kwargs)

        th.Tensor.backward = backward  # type: ignore[method-assign]
        try:
            yield
        finally:
            th.Tensor.backward = original  # type: ignore[method-assign]


class _MeanSquaredErrors:
    """Their module's ``F`` (``torch.nn.functional``), recording each mean ``mse_loss`` (V's, then Q1's and Q2's)."""

    def __init__(self, functional: Any) -> None:
        self._functional, self.values = functional, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._functional, name)

    def mse_loss(self, *args: Any, **kwargs: Any) -> th.Tensor:
        out = self._functional.mse_loss(*args, **kwargs)
        if kwargs.get("reduction", "mean") == "mean":
            self.values.append(float(out.detach()))
        return out


# ------------------------------------------------------------------------------------------------ the models
def linears(*modules: nn.Module) -> list[nn.Linear]:
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def named(module: nn.Module, names: str) -> list[nn.Linear]:
    return [getattr(module, name) for name in names.split()]


def layer_pairs(ours: Any, theirs: Any) -> dict[str, list[tuple[nn.Linear, nn.Linear]]]:
    """Our Linear layers with theirs, per network; their critic holds Q1 (l1-l4), Q2 (l5-l8) and V (v1-v4)."""
    vae, q, v = "e1 e2 e3 mean log_var d1 d2 d3 d4", "l1 l2 l3 l4 l5 l6 l7 l8", "v1 v2 v3 v4"
    pairs = {
        "vae": (linears(ours.vae), named(theirs.actor_vae, vae)),
        "vae_target": (linears(ours.vae_target), named(theirs.actor_vae_target, vae)),
        "actor": (linears(ours.actor), named(theirs.actor, "pi1 pi2 pi3 pi4")),
        "actor_target": (linears(ours.actor_target), named(theirs.actor_target, "pi1 pi2 pi3 pi4")),
        "critic": (linears(*ours.critic.q_networks), named(theirs.critic, q)),
        "critic_target": (linears(*ours.critic_target.q_networks), named(theirs.critic_target, q)),
        "value": (linears(ours.value), named(theirs.critic, v)),
        "value_target": (linears(ours.value_target), named(theirs.critic_target, v)),
    }
    for name, (a, b) in pairs.items():
        if [x.weight.shape for x in a] != [y.weight.shape for y in b]:
            raise RuntimeError(
                f"{name}: ours {[tuple(x.weight.shape) for x in a]}, theirs {[y.weight.shape for y in b]}"
            )
    return {name: list(zip(a, b, strict=True)) for name, (a, b) in pairs.items()}


def build(module: ModuleType, transitions: Any, seed: int, batch_size: int) -> tuple[Any, Any]:
    """Our LAPO (authors' defaults) and their ``Latent`` with our weights, bounds and hyper-parameters."""
    from stable_baselines3.common.logger import Logger

    from sb3_offline import LAPO

    ours = LAPO(
        "MlpPolicy", None, dataset=transitions, batch_size=batch_size, seed=seed, device="cpu", cuda_graphs=False
    )
    ours.set_logger(Logger(folder=None, output_formats=[]))
    obs_dim, action_dim = ours.observation_space.shape[0], ours.action_space.shape[0]  # type: ignore[index]
    theirs = module.Latent(
        obs_dim,
        action_dim,
        ours.policy.latent_dim,
        1.0,
        ours.min_v,
        ours.max_v,
        replay_buffer=_Stub(ours.policy),
        device="cpu",
        discount=ours.gamma,
        tau=ours.tau,
        vae_lr=ours.vae_learning_rate,
        actor_lr=ours.actor_learning_rate,
        critic_lr=ours.learning_rate,
        max_latent_action=ours.max_latent_action,
        expectile=ours.expectile,
        kl_beta=ours.kl_weight,
        no_noise=False,
        doubleq_min=ours.doubleq_min,
    )
    with th.no_grad():
        for layers in layer_pairs(ours, theirs).values():
            for a, b in layers:
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
    return ours, theirs


# ------------------------------------------------------------------------------------------------ the updates
def _their_batch(policy: Any, batch: Any) -> tuple[th.Tensor, ...]:
    """Our batch as their buffer returns it: z-scored states and actions, next states, rewards, ``not_done``."""
    with th.no_grad():
        return (
            policy.features(batch.observations),
            policy.critic_action_input(batch.actions),
            policy.features(batch.next_observations),
            batch.rewards.clone(),
            1.0 - batch.dones,
        )


def _update_differences(ours: Any, theirs: Any, recorders: tuple[Recorder, Recorder], mse: list[float]) -> list[float]:
    """``[loss, gradient, parameter]`` max differences of one update (their losses: Q+V, CVAE, policy)."""
    our_rec, their_rec = recorders
    q, v, vae, actor = our_rec.losses
    their_q = mse[1] + mse[2]
    losses = [abs(q - their_q), abs(v - mse[0]), abs(q + v - their_rec.losses[0])]
    losses += [abs(vae - their_rec.losses[1]), abs(actor - their_rec.losses[2])]
    grads, params = [0.0], [0.0]
    for name, layers in layer_pairs(ours, theirs).items():
        for a, b in layers:
            for p, t in ((a.weight, b.weight), (a.bias, b.bias)):
                params.append(float((p - t).detach().abs().max()))
                if not name.endswith("target"):
                    grads.append(float((our_rec.grads[id(p)] - their_rec.grads[id(t)]).abs().max()))
    return [max(losses), max(grads), max(params)]


def run_updates(module: ModuleType, transitions: Any, updates: int, seed: int, finetune: bool) -> dict[str, float]:
    """``updates`` updates on each side, a new batch each; the largest differences and our loss/gradient scales."""
    batch_size = 512
    ours, theirs = build(module, transitions, seed, batch_size)
    our_rec = Recorder({name: getattr(ours, name).optimizer for name in ("critic", "value", "vae", "actor")})
    their_rec = Recorder(
        {"critic": theirs.critic_optimizer, "vae": theirs.actorvae_optimizer, "actor": theirs.actor_optimizer}
    )
    mse = _MeanSquaredErrors(module.F)
    module.F = mse  # type: ignore[attr-defined]
    ours._online_mode = finetune  # LAPO.train runs the fine-tuning update
    draws, generator = SharedDraws(seed + 1), th.Generator().manual_seed(seed + 2)
    buffer, result = ours.replay_buffer, {"loss": 0.0, "grad": 0.0, "param": 0.0, "loss_scale": 0.0, "grad_scale": 0.0}
    try:
        for _ in range(updates):
            batch = buffer.gather(th.randint(0, buffer.size(), (batch_size,), generator=generator))
            buffer.sample = lambda batch_size, env=None, _batch=batch: _batch  # type: ignore[method-assign]
            theirs.replay_buffer.batch = _their_batch(ours.policy, batch)
            mse.values.clear()
            with draws.side("ours"), our_rec.recording():
                ours.train(gradient_steps=1, batch_size=batch_size)
            with draws.side("theirs"), their_rec.recording():
                theirs.train(iterations=1, batch_size=batch_size)
            draws.next_update()
            found = _update_differences(ours, theirs, (our_rec, their_rec), mse.values)
            for key, value in zip(("loss", "grad", "param"), found, strict=True):
                result[key] = max(result[key], value)
            result["loss_scale"] = max(result["loss_scale"], *(abs(x) for x in our_rec.losses))
            result["grad_scale"] = max(result["grad_scale"], *(float(g.abs().max()) for g in our_rec.grads.values()))
    finally:
        module.F = mse._functional  # type: ignore[attr-defined]
    # theirs acts through the target decoder (main) or the online one (finetune)
    ours.policy.act_with = "online" if finetune else "target"
    result["acting"] = acting_difference(ours, theirs, transitions.observations[:16])
    return result


def acting_difference(ours: Any, theirs: Any, states: np.ndarray) -> float:
    """Our deterministic actions against their ``select_action`` (clipped to [-1, 1] as ours; their main does not)."""
    with th.no_grad():
        ours.policy.set_training_mode(False)
        mine = ours.policy._predict(th.as_tensor(states)).numpy()
    their_actions = np.stack([np.clip(theirs.select_action(s), -1.0, 1.0) for s in states])
    return float(np.abs(mine - their_actions).max())


# ------------------------------------------------------------------------------------------------ statistics
def statistics_differences(module: ModuleType, transitions: Any, online: Any) -> float:
    """Their fine-tuning buffer's running means and stds against ours, after the dataset and ``online``'s rows."""
    from sb3_offline import LAPO
    from sb3_offline.lapo.running_statistics import PolicyStatistics

    obs_dim, action_dim = transitions.observations.shape[1], transitions.actions.shape[1]
    buffer = module.ReplayBuffer(obs_dim, action_dim, "cpu", max_size=len(transitions) + len(online))
    buffer.load(
        {
            "observations": transitions.observations,
            "actions": transitions.actions,
            "next_observations": transitions.next_observations,
            "rewards": transitions.rewards,
            "terminals": transitions.terminations,
        }
    )
    ours = LAPO("MlpPolicy", None, dataset=transitions, device="cpu", cuda_graphs=False)
    statistics = PolicyStatistics(ours.policy, len(transitions), len(transitions) + len(online))
    for row in range(len(online)):
        buffer.add(online.observations[row], online.actions[row], online.next_observations[row], 0.0, 0.0)
        statistics.add(online.observations[row : row + 1], online.actions[row : row + 1])
    observations = ours.policy.features_extractor.normalizer.standardizer()
    actions = ours.policy.action_normalizer
    pairs = [
        (observations.mean, buffer.state_mean),
        (observations.divisor - 1e-6, buffer.state_std),
        (actions.mean, buffer.action_mean),
        (actions.divisor - 1e-6, buffer.action_std),
    ]
    return max(float(np.abs(a.double().numpy() - np.asarray(b)).max()) for a, b in pairs)


# ------------------------------------------------------------------------------------------------ the rows
NOTES = {
    "offline": "one Adam on Q and V (their critic_loss = q1 + q2 + v) is ours' two Adams on Q and on V with one "
    "learning rate (Adam is per parameter); acting: their main select_action does not clip (the env does), ours "
    "clips to [-1, 1] (compared clipped)",
    "finetune": "as offline; acting through the online decoder (their select_action), clipped to [-1, 1] as theirs",
    "finetune statistics": "their load: s = std^2 (N + 1), then Welford per add (std = sqrt(s / (n - 1))), as "
    "ours; float32 statistics on our side (their float64): differences are float32 rounding",
}


def run(reference: Path, updates: int = 10, seed: int = 0, **options: Any) -> list[ParityRow]:
    """
    The parity rows: ``offline``, and with ``finetune_reference`` (a checkout of the branch ``finetune``)
    ``finetune`` and ``finetune statistics``. Options: ``rows`` (dataset size, default 2000).
    """
    from sb3_offline.datasets import record_transitions

    reference = Path(reference)
    transitions = record_transitions("Hopper-v5", int(options.get("rows", 2000)), seed=seed)
    th.manual_seed(seed)
    jobs = [("offline", reference, "algos/algos_vae.py")]
    finetune_reference = options.get("finetune_reference")
    if finetune_reference is not None:
        jobs.append(("finetune", Path(finetune_reference), "algos/algos_vae_finetune.py"))
    rows = []
    for variant, checkout, file in jobs:
        module = load_file(checkout, file, f"lapo_reference_{variant}")
        found = run_updates(module, transitions, updates, seed, finetune=variant == "finetune")
        notes = f"{NOTES[variant]}; acting max abs diff {found['acting']:.1e}"
        scores = [found[key] for key in ("loss", "param", "grad")]
        reference_of = (REPOSITORY, commit_of(checkout), file, updates)
        rows.append(ParityRow("LAPO", variant, *reference_of, *scores, notes, found["loss_scale"], found["grad_scale"]))
    if finetune_reference is not None:
        checkout, file = Path(finetune_reference), "algos/utils_finetune.py"
        module = load_file(checkout, file, "lapo_reference_utils_finetune")
        online = record_transitions("Hopper-v5", 200, seed=seed + 1)
        difference, variant = statistics_differences(module, transitions, online), "finetune statistics"
        reference_of = (REPOSITORY, commit_of(checkout), file, len(online))
        nan = float("nan")
        rows.append(ParityRow("LAPO", "finetune statistics", *reference_of, difference, nan, nan, NOTES[variant]))
    return rows
