"""
The shared core of the update-level parity harness (``python -m benchmarks.parity ALGO --reference PATH``).

An algorithm's module (``benchmarks/parity/<algo>.py``, ``run(reference, updates, seed, **options)``) builds our
model and the reference implementation, loaded from a local checkout of the authors' code
(:func:`locate`, :func:`load_modules`; never copied into this repository), with the same sizes; copies our weights
into the reference's modules, layer by layer in registration order (:func:`linear_pairs`, :func:`copy_weights`);
fills the reference's own replay buffer with the rows of ours (:func:`buffer_arrays`: on a Box with bounds
[-1, 1] our [-1, 1] actions are the env's, the reference's units), and runs the updates through each side's own
update code (:func:`run_updates`). During each update:

- random draws are shared (:class:`SharedDraws`): ``torch.randn``/``randn_like``/``rand``/``rand_like``/
  ``randint``/``normal``, ``torch.distributions.normal._standard_normal`` (``Normal.rsample``) and
  ``numpy.random.randint`` (the authors' buffers draw their batch indices with it) are patched so that the k-th
  draw of a kind on one side is the k-th draw of that kind on the other (same shape, same integer bounds, else a
  :class:`ParityError`); batch indices are such a draw, so both sides sample the same rows with their own code;
- :class:`StepRecorder` reads, just before each optimizer's ``step``, the loss last back-propagated and every
  gradient; after the update every parameter (targets included) is compared.

The result is a :class:`ParityRow` per variant, printed as a markdown table (:func:`markdown_table`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import math
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from torch import nn

from benchmarks.parity.draws import ParityError, SharedDraws

#: differences at or below these are float rounding: float32 sums in another order, relative to the magnitude of
#: the losses and gradients (``LOSS_TOLERANCE * max(1, largest |value|)``); absolute for parameters, with a looser
#: bound, as Adam turns a rounding change of a gradient entry near its ``eps`` into up to ``lr`` on that parameter
LOSS_TOLERANCE = 1e-5
PARAMETER_TOLERANCE = 1e-4

LayerPairs = list[tuple[nn.Linear, nn.Linear]]
#: the kinds of quantities compared
KINDS = ("loss", "gradients", "parameters")


@dataclass
class ParityRow:
    """One row of the parity table: an algorithm (variant) against one reference file, after ``updates`` updates."""

    algorithm: str
    variant: str
    reference_repo: str
    reference_commit: str
    reference_file: str
    updates: int
    max_loss_diff: float
    max_param_diff: float
    max_grad_diff: float
    notes: str = ""
    #: the largest ``|loss|`` and ``|gradient entry|`` on our side (what the float tolerance is relative to)
    loss_scale: float = 1.0
    grad_scale: float = 1.0

    @property
    def at_float_tolerance(self) -> bool:
        """Whether every difference is float rounding (:data:`LOSS_TOLERANCE`, :data:`PARAMETER_TOLERANCE`)."""
        return (
            self.max_loss_diff <= tolerance("loss", self.loss_scale)
            and self.max_grad_diff <= tolerance("gradients", self.grad_scale)
            and self.max_param_diff <= tolerance("parameters", 0.0)
        )


def tolerance(kind: str, scale: float) -> float:
    """The float tolerance of a difference of ``kind`` (loss, gradients, parameters) between values up to ``scale``."""
    return PARAMETER_TOLERANCE if kind == "parameters" else LOSS_TOLERANCE * max(1.0, scale)


def markdown_table(rows: Sequence[ParityRow]) -> str:
    """The rows as a markdown table: algorithm | reference | max abs differences | what differs and why."""
    lines = [
        "| algorithm | reference (repo, commit, file) | updates | max abs diff: losses / parameters / gradients "
        "| what differs and why |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        name = row.algorithm if not row.variant else f"{row.algorithm} ({row.variant})"
        reference = f"{row.reference_repo}, {row.reference_commit}, `{row.reference_file}`"
        diffs = f"{row.max_loss_diff:.1e} / {row.max_param_diff:.1e} / {row.max_grad_diff:.1e}"
        notes = row.notes.replace("|", "\\|")
        lines.append(f"| {name} | {reference} | {row.updates} | {diffs} | {notes} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the reference
@dataclass(frozen=True)
class Reference:
    """A reference file: its repository, the commit it is known from, its path in the repository and on disk."""

    repo: str
    commit: str
    file: str
    path: Path


def git_blob(path: Path) -> str:
    """The file's git blob hash (what ``git hash-object`` prints): names its version without a git checkout."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def locate(reference: Path, candidates: Sequence[str], repo: str, known: Mapping[str, str]) -> Reference:
    """
    The reference file: ``reference`` itself when it is a file, else the first of ``candidates`` (paths in the
    repository) under the checkout ``reference``. Its commit: the one ``known`` names for its blob hash, else the
    checkout's ``HEAD`` (a git work tree: the file may differ from it), else ``unknown`` with the blob hash.
    """
    reference = Path(reference).expanduser()
    if reference.is_file():
        path, name = reference, next((c for c in candidates if reference.as_posix().endswith(c)), reference.name)
    else:
        found = [c for c in candidates if (reference / c).is_file()]
        if not found:
            raise FileNotFoundError(
                f"--reference: expected a checkout of {repo} holding one of {list(candidates)}, found none in "
                f"{reference}"
            )
        path, name = reference / found[0], found[0]
    blob = git_blob(path)
    commit = known.get(blob)
    if commit is None:
        head = subprocess.run(
            ["git", "-C", str(path.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        commit = f"{head.stdout.strip()} (HEAD)" if head.returncode == 0 else f"unknown (blob {blob[:10]})"
    return Reference(repo, commit, name, path.resolve())


def load_modules(directory: Path, names: Sequence[str]) -> dict[str, Any]:
    """
    Import the scripts ``names`` of ``directory`` as they import each other (``import utils``: the folder first on
    ``sys.path``), then take every module of that folder out of ``sys.modules`` again (another reference's
    ``utils`` must not be found in their place) and put back any they hid.
    """
    directory = Path(directory).resolve()
    local = {p.stem for p in directory.glob("*.py")}
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in local}
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    try:
        return {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(directory))
        for name in [n for n in sys.modules if n.split(".")[0] in local]:
            del sys.modules[name]
        sys.modules.update(hidden)


# ----------------------------------------------------------------------------------------------------- the data
class SpacesEnv(gym.Env):
    """An env that only has spaces (the synthetic data's: 11-dimensional states, actions in [-1, 1]^3)."""

    def __init__(self, obs_dim: int = 11, action_dim: int = 3) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)


def make_dataset(kind: str, rows: int, seed: int) -> tuple[Any, gym.Env | str]:
    """
    ``(transitions, env)`` on a Box with bounds [-1, 1]: ``"hopper"``, Hopper-v5 random-policy transitions;
    ``"synthetic"``, Gaussian states and rewards with Hopper's sizes.
    """
    from sb3_offline.datasets import Transitions, record_transitions

    if kind == "hopper":
        return record_transitions("Hopper-v5", rows, seed=seed), "Hopper-v5"
    if kind != "synthetic":
        raise ValueError(f"data: expected 'hopper' or 'synthetic', found {kind!r}")
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(rows, 11)).astype(np.float32)
    next_obs = (obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32)
    actions = np.clip(rng.normal(scale=0.6, size=(rows, 3)), -1, 1).astype(np.float32)
    rewards = rng.normal(size=rows).astype(np.float32)
    terminations, truncations = rng.random(rows) < 0.05, np.zeros(rows, dtype=bool)
    return Transitions(obs, actions, rewards, next_obs, terminations, truncations), SpacesEnv()


#: the names of :func:`buffer_arrays`, in the order the authors' ``ReplayBuffer.add`` takes them (s, a, s', r, done)
D4RL_KEYS = ("observations", "actions", "next_observations", "rewards", "terminals")


def buffer_arrays(model: Any) -> dict[str, np.ndarray]:
    """
    Every row of ``model``'s replay buffer as float32 arrays in D4RL's names (``observations``, ``actions`` in
    [-1, 1], ``next_observations``, ``rewards`` and ``terminals`` of shape ``(N,)``): what the reference is fed.
    """
    buffer = model.replay_buffer
    batch = buffer.gather(th.arange(buffer.size(), device=buffer.device))
    return {
        "observations": batch.observations.cpu().numpy(),
        "actions": batch.actions.cpu().numpy(),
        "next_observations": batch.next_observations.cpu().numpy(),
        "rewards": batch.rewards.reshape(-1).cpu().numpy(),
        "terminals": batch.dones.reshape(-1).cpu().numpy(),
    }


def fill(add: Callable[..., Any], arrays: Mapping[str, np.ndarray]) -> None:
    """``add(s, a, s', r, done)`` for every row of :func:`buffer_arrays` (the authors' ``ReplayBuffer.add``)."""
    for s, a, s2, r, d in zip(*(arrays[k] for k in D4RL_KEYS), strict=True):
        add(s, a, s2, r, float(d))


def quiet(model: Any) -> Any:
    """Give ``model`` a logger that writes nothing (``train()`` records the learning rates)."""
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


# -------------------------------------------------------------------------------------------------- the weights
def linears(*modules: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``modules``, in registration order."""
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def linear_pairs(name: str, ours: Sequence[nn.Module], theirs: Sequence[nn.Module]) -> LayerPairs:
    """Our Linear layers matched with the reference's, in registration order (the shapes must agree one by one)."""
    a, b = linears(*ours), linears(*theirs)
    if len(a) != len(b) or any(x.weight.shape != y.weight.shape for x, y in zip(a, b, strict=False)):
        raise ParityError(
            f"{name}: expected the same layers, found ours {[tuple(x.weight.shape) for x in a]}, "
            f"the reference's {[tuple(y.weight.shape) for y in b]}"
        )
    return list(zip(a, b, strict=True))


@th.no_grad()
def copy_weights(layers: Mapping[str, LayerPairs], skip: Sequence[str] = ()) -> None:
    """Copy our weights and biases into the reference's layers (every network but those in ``skip``)."""
    for name, pairs in layers.items():
        if name not in skip:
            for ours, theirs in pairs:
                theirs.weight.copy_(ours.weight)
                theirs.bias.copy_(ours.bias)


def parameter_pairs(pairs: LayerPairs) -> list[tuple[th.Tensor, th.Tensor]]:
    """``(our tensor, the reference's)`` for every weight and bias of ``pairs``."""
    return [(a, b) for x, y in pairs for a, b in ((x.weight, y.weight), (x.bias, y.bias))]


def actor_critic_layers(
    ours: Any, actor: nn.Module, actor_target: nn.Module, critic: nn.Module, critic_target: nn.Module
) -> dict[str, LayerPairs]:
    """Our ``actor``, ``critic`` and their targets (critics: ``q_networks`` in order) matched with the reference's."""
    return {
        "actor": linear_pairs("actor", [ours.actor], [actor]),
        "actor_target": linear_pairs("actor_target", [ours.actor_target], [actor_target]),
        "critic": linear_pairs("critic", ours.critic.q_networks, [critic]),
        "critic_target": linear_pairs("critic_target", ours.critic_target.q_networks, [critic_target]),
    }


def max_diff(a: Any, b: Any) -> float:
    """``max |a - b|`` over all entries (tensors or arrays of the same number of entries)."""
    a = th.as_tensor(np.asarray(a) if not isinstance(a, th.Tensor) else a.detach().cpu(), dtype=th.float64)
    b = th.as_tensor(np.asarray(b) if not isinstance(b, th.Tensor) else b.detach().cpu(), dtype=th.float64)
    return float((a.reshape(-1) - b.reshape(-1)).abs().max()) if a.numel() else 0.0


# --------------------------------------------------------------------------------------------- losses, gradients
class StepRecorder:
    """
    For each optimizer (by network name) that steps inside :meth:`recording`: the loss last back-propagated
    (``torch.autograd.backward``, which ``Tensor.backward`` calls) and every gradient, read just before ``step``.
    """

    def __init__(self, optimizers: Mapping[str, th.optim.Optimizer]) -> None:
        self.steps: dict[str, list[tuple[float, dict[int, th.Tensor]]]] = {}
        self._loss = math.nan
        self._active = False
        for name, optimizer in optimizers.items():
            optimizer.register_step_pre_hook(functools.partial(self._on_step, name))

    def _on_step(self, name: str, optimizer: th.optim.Optimizer, *_: Any) -> None:
        if self._active:
            grads = {
                id(p): p.grad.detach().clone() if p.grad is not None else th.zeros_like(p)
                for group in optimizer.param_groups
                for p in group["params"]
            }
            self.steps.setdefault(name, []).append((self._loss, grads))

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Within: record the steps (those of an earlier ``recording`` are forgotten)."""
        original = th.autograd.backward

        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(tensors, th.Tensor) and tensors.numel() == 1:
                self._loss = float(tensors.detach())
            return original(tensors, *args, **kwargs)

        self.steps, self._loss, self._active = {}, math.nan, True
        th.autograd.backward = backward  # type: ignore[assignment]
        try:
            yield
        finally:
            th.autograd.backward = original  # type: ignore[assignment]
            self._active = False


# -------------------------------------------------------------------------------------------------- the updates
@dataclass
class Side:
    """One implementation: ``update(i)`` runs its i-th update through its own code; its optimizers by network."""

    name: str
    update: Callable[[int], Any]
    optimizers: Mapping[str, th.optim.Optimizer]


@dataclass
class Measures:
    """
    The largest differences (and magnitudes, ours) over the updates of each kind (``loss``, ``gradients``,
    ``parameters``: a quantity's last word), and per update ``(update, quantity, difference, magnitude)``.
    """

    diffs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    scales: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    details: list[tuple[int, str, float, float]] = field(default_factory=list)

    def add(self, update: int, quantity: str, difference: float, scale: float = 0.0) -> None:
        kind = quantity.rsplit(" ", 1)[-1]
        self.details.append((update, quantity, difference, scale))
        self.diffs[kind], self.scales[kind] = max(self.diffs[kind], difference), max(self.scales[kind], scale)


def compare_steps(
    update: int, ours: StepRecorder, theirs: StepRecorder, layers: Mapping[str, LayerPairs], measures: Measures
) -> None:
    """Add the losses and gradients of one update's optimizer steps, network by network (``inf``: steps differ)."""
    for name in sorted(set(ours.steps) | set(theirs.steps)):
        a, b = ours.steps.get(name, []), theirs.steps.get(name, [])
        if len(a) != len(b):
            measures.add(update, f"{name} steps (ours {len(a)}, theirs {len(b)}) loss", math.inf)
            continue
        for (loss_a, grads_a), (loss_b, grads_b) in zip(a, b, strict=True):
            measures.add(update, f"{name} loss", abs(loss_a - loss_b), abs(loss_a))
            pairs = [(grads_a[id(p)], grads_b[id(q)]) for p, q in parameter_pairs(layers[name])]
            scale = max(float(a.abs().max()) for a, _ in pairs)
            measures.add(update, f"{name} gradients", max(max_diff(a, b) for a, b in pairs), scale)


def run_updates(ours: Side, theirs: Side, layers: Mapping[str, LayerPairs], updates: int, seed: int) -> Measures:
    """
    ``updates`` updates on each side with the same random draws; after each, the losses and gradients of every
    optimizer step and every parameter pair of ``layers`` (by network name; an optimizer's name is its network's).
    """
    draws = SharedDraws(seed)
    recorders = StepRecorder(ours.optimizers), StepRecorder(theirs.optimizers)
    measures = Measures()
    for update in range(updates):
        for side, recorder in zip((ours, theirs), recorders, strict=True):
            with draws.patched(side.name), recorder.recording():
                side.update(update)
        draws.finish_update()
        compare_steps(update, *recorders, layers, measures)
        for name, pairs in layers.items():
            tensors = parameter_pairs(pairs)
            scale = max(float(p.detach().abs().max()) for p, _ in tensors)
            measures.add(update, f"{name} parameters", max(max_diff(p, q) for p, q in tensors), scale)
    return measures


def our_side(model: Any, batch_size: int) -> Side:
    """Our ``model``: an update is ``train(gradient_steps=1)``; its optimizers those of ``learning_rates()``."""
    return Side("ours", lambda _: model.train(gradient_steps=1, batch_size=batch_size), model._optimizers())


def acting_on_states(model: Any, act: Callable[[np.ndarray], Any], states: np.ndarray, seed: int) -> float:
    """``max |a_ours - a_theirs|`` on ``states`` (``act`` takes one state, a ``(1, obs_dim)`` float32 array)."""
    return acting_difference(
        lambda i: model.policy._predict(th.as_tensor(states[i : i + 1])),
        lambda i: act(states[i : i + 1]),
        len(states),
        seed,
    )


def acting_difference(ours: Callable[[int], Any], theirs: Callable[[int], Any], states: int, seed: int) -> float:
    """``max |ours(i) - theirs(i)|`` over ``i < states`` (the actions for state ``i``), with shared random draws."""
    draws, worst = SharedDraws(seed), 0.0
    for i in range(states):
        with th.no_grad(), draws.patched("ours"):
            a = ours(i)
        with th.no_grad(), draws.patched("theirs"):
            b = theirs(i)
        draws.finish_update()
        worst = max(worst, max_diff(a, b))
    return worst


def make_row(
    algorithm: str, variant: str, reference: Reference, updates: int, measures: Measures, notes: str
) -> ParityRow:
    """A :class:`ParityRow` of ``measures`` against ``reference``; beyond float tolerance, ``notes`` say where."""
    diffs, scales = measures.diffs, measures.scales
    row = ParityRow(
        algorithm,
        variant,
        reference.repo,
        reference.commit,
        reference.file,
        updates,
        diffs["loss"],
        diffs["parameters"],
        diffs["gradients"],
        notes,
        loss_scale=scales["loss"],
        grad_scale=scales["gradients"],
    )
    beyond = [d for d in measures.details if d[2] > tolerance(d[1].rsplit(" ", 1)[-1], d[3])]
    if beyond:
        update, quantity, difference, _ = beyond[0]
        row.notes += f" (first beyond float tolerance: {quantity} at update {update + 1}, {difference:.1e})"
    return row
