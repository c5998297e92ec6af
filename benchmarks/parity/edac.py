"""
Update-level parity of our EDAC with CORL's single-file PyTorch port (``tinkoff-ai/CORL`` commit 6afec90,
``algorithms/offline/edac.py``), loaded from a local checkout (``--reference``, never copied here). Run with
``python -m benchmarks.parity edac --reference CORL_CHECKOUT [--updates 10] [--seed 0] [--set n_critics=10]``;
:mod:`benchmarks.parity.sac_n` runs the same against CORL's ``sac_n.py``.

The harness is :mod:`benchmarks.parity.cql`'s (synthetic data with Hopper-v5's spaces, the same batches fed to both
sides, the same standard-normal draws in the order drawn: :class:`~benchmarks.parity.cql.Draws`; every loss, every
gradient as each optimizer steps, every parameter after each update). Both sides are 3 x 256 with N critics; our
weights are copied into CORL's modules (CORL's ``VectorizedLinear`` holds ``(N, in, out)`` weights, as ours).

Our EDAC follows the authors' code (``snu-mllab/EDAC`` commit 198d570, ``lifelong_rl/trainers/q_learning/sac.py``):
every loss from the networks of the start of the step, one draw of the actor at ``s`` for the entropy coefficient's
and the actor's losses, then the three steps. CORL (:data:`CORL_DIFFERENCES`) steps the entropy coefficient first
(on a draw of its own), then the actor with the new coefficient (a second draw), then the critics with the new actor
and coefficient. Rows: ``as-shipped`` (our EDAC against CORL unmodified: the order differs) and ``ours-as-corl``
(:class:`EDACAsCORL`: our update with ``sequential_updates``, CORL's order; must sit at float tolerance). Nothing
here is a test; ``tests/test_parity_ensemble.py`` runs it when a CORL checkout is given (``SB3_OFFLINE_CORL``).
"""

from __future__ import annotations

import pathlib
import types
from typing import Any, ClassVar

import gymnasium as gym
import torch as th

from benchmarks.parity.core import ParityRow
from benchmarks.parity.cql import Draws, shared_draws
from benchmarks.parity.iql import (
    CORL_COMMIT,
    CORL_REPO,
    Trace,
    as_list,
    deterministic_cpu,
    linear_params,
    load_reference,
    make_batches,
    make_transitions,
    max_diff,
    quiet_logger,
    snapshot,
    watch,
)
from sb3_offline.edac import EDAC, SACN

CORL_DIFFERENCES = (
    "CORL: alpha stepped first (own draw), the actor on the new alpha (second draw), the critics on the new actor "
    "and alpha (authors: every loss from the start-of-step networks, one draw at s)"
)
#: our loss names -> CORL's log entries
LOSS_NAMES = {"actor_loss": "actor_loss", "critic_total": "critic_loss", "ent_coef_loss": "alpha_loss"}
VARIANTS = ("as-shipped", "ours-as-corl")


class EDACAsCORL(EDAC):
    """Our EDAC in CORL's order (a harness variant): the coefficient, then the actor, then the critics."""

    sequential_updates: ClassVar[bool] = True


class SACNAsCORL(SACN):
    """Our SAC-N in CORL's order (a harness variant)."""

    sequential_updates: ClassVar[bool] = True


def ensemble_params(prefix: str, module: th.nn.Module) -> dict[str, th.Tensor]:
    """The weights and biases of the ``VectorizedLinear`` layers of ``module`` (ours or CORL's), in order."""
    layers = [m for m in module.modules() if type(m).__name__ == "VectorizedLinear"]
    return {f"{prefix}.{i}.{k}": getattr(layer, k) for i, layer in enumerate(layers) for k in ("weight", "bias")}


def our_named(model: EDAC) -> dict[str, Any]:
    actor = model.actor
    named: dict[str, Any] = {**linear_params("actor", actor.latent_pi, actor.mu, actor.log_std)}
    named.update(ensemble_params("critic", model.critic.q_net))
    named.update(ensemble_params("critic_target", model.critic_target.q_net))
    named["log_ent_coef"] = model.log_ent_coef.log_value
    return named


def corl_named(trainer: Any) -> dict[str, Any]:
    actor = trainer.actor
    named: dict[str, Any] = {**linear_params("actor", actor.trunk, actor.mu, actor.log_sigma)}
    named.update(ensemble_params("critic", trainer.critic))
    named.update(ensemble_params("critic_target", trainer.target_critic))
    named["log_ent_coef"] = trainer.log_alpha
    return named


def build_corl(corl: types.ModuleType, trainer_class: str, model: EDAC) -> Any:
    """CORL's trainer (``EDAC`` or ``SACN``) with our weights, sizes and hyperparameters."""
    obs_dim, action_dim = model.observation_space.shape[0], model.action_space.shape[0]  # type: ignore[index]
    hidden = model.critic.q_net.net_arch[0]
    actor = corl.Actor(obs_dim, action_dim, hidden, max_action=1.0)
    critic = corl.VectorizedCritic(obs_dim, action_dim, hidden, model.n_critics)
    ours = our_named(model)
    theirs = {**linear_params("actor", actor.trunk, actor.mu, actor.log_sigma), **ensemble_params("critic", critic)}
    with th.no_grad():
        for name, value in theirs.items():
            if value.shape != ours[name].shape:
                raise RuntimeError(f"{name}: ours {tuple(ours[name].shape)}, CORL's {tuple(value.shape)}")
            value.copy_(ours[name])
    actor_lr, critic_lr = float(model.actor_learning_rate), float(model.learning_rate)  # type: ignore[arg-type]
    alpha_lr = actor_lr if model.ent_coef_learning_rate is None else float(model.ent_coef_learning_rate)  # type: ignore[arg-type]
    options: dict[str, Any] = {"eta": model.eta} if trainer_class == "EDAC" else {}
    trainer = getattr(corl, trainer_class)(
        actor=actor,
        actor_optimizer=th.optim.Adam(actor.parameters(), lr=actor_lr),
        critic=critic,
        critic_optimizer=th.optim.Adam(critic.parameters(), lr=critic_lr),
        gamma=model.gamma,
        tau=model.tau,
        alpha_learning_rate=alpha_lr,
        device="cpu",
        **options,
    )
    with th.no_grad():
        trainer.log_alpha.copy_(model.log_ent_coef.log_value)
        trainer.alpha = trainer.log_alpha.exp().detach()
    return trainer


def compare(
    algorithm: str, variant: str, reference_file: str, model: EDAC, trainer: Any, batches: list[Any], seed: int,
    notes: str,
) -> ParityRow:  # fmt: skip
    """Both sides on the same batches and draws, ``len(batches)`` updates each, every loss, gradient, parameter."""
    ours, theirs = Trace(), Trace()
    params, their_params = our_named(model), corl_named(trainer)
    for label, our_optimizer, their_optimizer in (
        ("actor", model.actor.optimizer, trainer.actor_optimizer),
        ("critic", model.critic.optimizer, trainer.critic_optimizer),
        ("log_ent_coef", model.log_ent_coef.optimizer, trainer.alpha_optimizer),
    ):
        watch(our_optimizer, label, {k: v for k, v in params.items() if k.split(".")[0] == label}, ours)
        watch(their_optimizer, label, {k: v for k, v in their_params.items() if k.split(".")[0] == label}, theirs)
    draws = Draws(seed + 2)
    queue = iter(batches)
    model._sample = lambda batch_size: next(queue)  # type: ignore[method-assign]
    with deterministic_cpu(), shared_draws(draws):
        for batch in batches:
            ours.grads.append({})
            model.train(gradient_steps=1, batch_size=batch.observations.shape[0])
            logged = model._losses.flush(model.logger)
            logged["critic_total"] = logged["critic_loss"] + model.eta * logged.get("diversity_loss", 0.0)
            ours.losses.append({k: logged[k] for k in LOSS_NAMES})
            ours.params.append(snapshot(params))
    with deterministic_cpu(), shared_draws(draws):
        for batch in batches:
            theirs.grads.append({})
            logged = trainer.update(as_list(batch))
            theirs.losses.append({k: logged[name] for k, name in LOSS_NAMES.items()})
            theirs.params.append(snapshot(their_params))
    grads = [g for update in ours.grads for named in update.values() for g in named.values()]
    return ParityRow(
        algorithm, variant, CORL_REPO, CORL_COMMIT, reference_file, len(batches),
        max_diff(ours.losses, theirs.losses), max_diff(ours.params, theirs.params),
        max_diff(ours.grads, theirs.grads), notes,
        loss_scale=max(abs(v) for update in ours.losses for v in update.values()),
        grad_scale=max(float(g.abs().max()) for g in grads),
    )  # fmt: skip


def build_ours(cls: type[EDAC], seed: int, **kwargs: Any) -> EDAC:
    """Our model on the synthetic data (Hopper-v5's spaces), a logger that writes nothing."""
    model = cls(
        "MlpPolicy", gym.make("Hopper-v5"), dataset=make_transitions(seed=seed), seed=seed, device="cpu",
        cuda_graphs=False, **kwargs,
    )  # fmt: skip
    model.set_logger(quiet_logger())
    return model


def run_algorithm(
    reference: pathlib.Path, name: str, updates: int, seed: int, batch_size: int, **kwargs: Any
) -> list[ParityRow]:
    """The rows of ``name`` (``"edac"`` or ``"sac_n"``) against CORL's file of that name."""
    relative = f"algorithms/offline/{name}.py"
    corl = load_reference(pathlib.Path(reference), relative, f"corl_{name}")
    shipped, as_corl = (EDAC, EDACAsCORL) if name == "edac" else (SACN, SACNAsCORL)
    rows = []
    for variant in VARIANTS:
        th.manual_seed(seed)
        model = build_ours(as_corl if variant == "ours-as-corl" else shipped, seed, **kwargs)
        trainer = build_corl(corl, "EDAC" if name == "edac" else "SACN", model)
        batches = make_batches(make_transitions(seed=seed), updates, batch_size, seed)
        notes = CORL_DIFFERENCES if variant == "as-shipped" else "ours in CORL's order (harness)"
        notes += f"; N = {model.n_critics}" + (f", eta = {model.eta:g}" if name == "edac" else "") + "; 3 x 256"
        rows.append(
            compare("EDAC" if name == "edac" else "SAC-N", variant, relative, model, trainer, batches, seed, notes)
        )
    return rows


def run(
    reference: pathlib.Path, updates: int = 10, seed: int = 0, batch_size: int = 256, **kwargs: Any
) -> list[ParityRow]:
    """
    The parity rows of EDAC against CORL's ``edac.py`` in the checkout ``reference``.

    :param reference: a CORL checkout (commit 6afec90)
    :param updates: K, the updates each side runs
    :param seed: seed of the weights, the batches and the random draws
    :param batch_size: rows per batch
    :param kwargs: our constructor's arguments (``n_critics``, ``eta``)
    """
    return run_algorithm(reference, "edac", updates, seed, batch_size, **kwargs)
