"""
Update-level parity of our CQL with CORL's single-file PyTorch port (``tinkoff-ai/CORL`` commit 6afec90,
``algorithms/offline/cql.py``), loaded from a local checkout (``--reference``, never copied here). Run with
``python -m benchmarks.parity cql --reference CORL_CHECKOUT [--updates 10] [--seed 0]``.

The harness is :mod:`benchmarks.parity.iql`'s (same synthetic data with Hopper-v5's spaces, same batches, gradient
and parameter records). Both sides are 3 x 256 (CORL's policy and Q-functions); our weights are copied into CORL's
modules (our mean and ``log sigma`` heads are the two halves of CORL's one output layer). A CQL update draws standard
normals (the actor's sample at ``s``, the target's at ``s'``, ``n`` samples at ``s`` and at ``s'`` for the
log-sum-exp) and uniform actions: :func:`shared_draws` gives both sides the same ones, in the order drawn (ours as
``(rows * n, |A|)``, CORL's as ``(rows, n, |A|)``, the same numbers state-major; CORL's uniform actions are
``Tensor.uniform_(-1, 1)``, ours ``2 u - 1``).

Our CQL follows the authors' rlkit code (``aviralkumar2907/CQL`` commit d67dbe9, ``d4rl/rlkit/torch/sac/cql.py``).
Where CORL differs from it (:data:`CORL_DIFFERENCES`):

- order: CORL computes every loss from the networks of the start of the step (the entropy coefficient of the start
  of the step in the actor's loss, the actor on the critics before their step), as the JAX code Cal-QL's authors
  use; rlkit steps the entropy coefficient first and uses the new one, and back-propagates the actor's loss after
  the critics' step (ours: a forward pass through the stepped critics);
- the actor: ``log sigma = m * head + c`` (``m``, ``c`` learned, ``c`` from -1), clipped to [-20, 2] (rlkit: the
  head, clipped to [-5, 2]); the tanh correction exact (``TanhTransform``; rlkit and SB3: ``log(1 - a^2 + 1e-6)``);
- behaviour cloning: CORL's ``TanhGaussianPolicy.log_prob`` ignores the actions it is given and returns the
  log-density of a fresh sample (rlkit: of the dataset's action); both sides run with ``bc_steps=0`` here;
- ``max_q_backup``: ``max_i min_j`` (rlkit: ``min_j max_i``); networks: orthogonal or xavier initialisation (rlkit's
  fan-in, hidden biases 0.1; weights copied here).

Rows: ``as-shipped`` (CORL unmodified against our CQL; CORL's ``log sigma`` offset set to 0 so that both policies
start from the same ``log sigma``) and ``ours-as-corl`` (:class:`CQLAsCORL`: our update with ``sequential_updates``
off, CORL's actor head, and, for the harness only, the exact tanh correction of :class:`CQLAsCORL`), which
must sit at float tolerance: its losses do over 10 updates of 256 rows (7e-6); its parameters move apart from about
1e-5 after the first update to 3e-4 after the tenth, Adam's normalisation turning the rounding of near-zero gradient
entries of the critics (summed in another order: ours score all ``1 + 3 n`` actions in one pass) into steps of up to
its learning rate (at 3 updates of 64 rows, the test's, every difference is below 1e-5). Nothing here is a test;
``tests/test_parity_cql_calql.py`` runs it when a CORL checkout is given (``SB3_OFFLINE_CORL``).
"""

from __future__ import annotations

import pathlib
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
import torch.distributions.normal as normal_module

from benchmarks.parity.core import ParityRow
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
from sb3_offline import CQL
from sb3_offline.calql.policies import CalQLPolicy
from sb3_offline.cql.policies import CQLPolicy

CORL_DIFFERENCES = (
    "CORL: every loss from the start-of-step networks (rlkit: alpha stepped first and the new alpha in the actor's "
    "loss, the actor on the critics after their step); log sigma = m * head + c in [-20, 2] (rlkit: head in [-5, 2]); "
    "exact tanh correction (rlkit: log(1 - a^2 + 1e-6)); BC log_prob of a fresh sample (rlkit: of the dataset's "
    "action; bc_steps=0 here)"
)
#: our loss names -> CORL's log entries (sums of them)
LOSS_NAMES = {
    "actor_loss": ("policy_loss",),
    "critic_loss": ("qf1_loss", "qf2_loss"),
    "cql_loss": ("cql_min_qf1_loss", "cql_min_qf2_loss"),
    "ent_coef_loss": ("alpha_loss",),
    "ent_coef": ("alpha",),
    "alpha_prime": ("alpha_prime",),
}


class CORLHeadPolicy(CQLPolicy):
    """CQL's networks with CORL's actor head (a harness variant): ``log sigma = m * head + c``, in [-20, 2]."""

    actor_head = CalQLPolicy.actor_head


class CQLAsCORL(CQL):
    """
    Our CQL in CORL's order (a harness variant): every loss from the networks of the start of the step, the exact
    tanh correction (Cal-QL's, CORL's ``TanhTransform``).
    """

    sequential_updates: ClassVar[bool] = False
    exact_tanh_correction: ClassVar[bool] = True


#: torch's own samplers (:func:`shared_draws` replaces ``torch.rand``), for the shared draws themselves
_RANDN, _RAND = th.randn, th.rand


class Draws:
    """
    The random draws of both sides: the k-th standard normal (uniform) draw a side makes is the k-th made on either
    side, of the same number of entries (reshaped to the shape asked for), drawn once from ``generator``.
    """

    def __init__(self, seed: int) -> None:
        self.generator = th.Generator().manual_seed(seed)
        self.drawn: dict[str, list[th.Tensor]] = {"normal": [], "uniform": []}
        self.cursor: dict[str, int] = {}

    def start(self) -> None:
        """A side starts its updates: its draws start at the first."""
        self.cursor = {"normal": 0, "uniform": 0}

    def next(self, kind: str, shape: tuple[int, ...]) -> th.Tensor:
        drawn, k = self.drawn[kind], self.cursor[kind]
        self.cursor[kind] = k + 1
        numel = int(np.prod(shape))
        if k == len(drawn):
            sampler = _RANDN if kind == "normal" else _RAND
            drawn.append(sampler(numel, generator=self.generator))
        if drawn[k].numel() != numel:
            raise RuntimeError(f"{kind} draw #{k + 1}: expected {drawn[k].numel()} entries, found {numel}")
        return drawn[k].reshape(shape)


@contextmanager
def shared_draws(draws: Draws) -> Iterator[None]:
    """``torch.randn_like``, ``torch.rand``, ``Normal``'s ``_standard_normal``, ``Tensor.uniform_`` from ``draws``."""
    draws.start()
    randn_like, rand, standard_normal, uniform_ = (
        th.randn_like,
        th.rand,
        normal_module._standard_normal,
        th.Tensor.uniform_,
    )

    def our_randn_like(tensor: th.Tensor, **_: Any) -> th.Tensor:
        return draws.next("normal", tuple(tensor.shape)).to(tensor)

    def our_rand(*size: Any, **kwargs: Any) -> th.Tensor:
        shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], tuple | list | th.Size) else tuple(size)
        return draws.next("uniform", shape).to(kwargs.get("device") or "cpu")

    def their_standard_normal(shape: Any, dtype: Any, device: Any) -> th.Tensor:
        return draws.next("normal", tuple(shape)).to(device=device, dtype=dtype)

    def their_uniform_(tensor: th.Tensor, low: float = 0.0, high: float = 1.0, **_: Any) -> th.Tensor:
        with th.no_grad():
            return tensor.copy_(low + (high - low) * draws.next("uniform", tuple(tensor.shape)))

    th.randn_like, th.rand, th.Tensor.uniform_ = our_randn_like, our_rand, their_uniform_  # type: ignore[assignment]
    normal_module._standard_normal = their_standard_normal
    try:
        yield
    finally:
        th.randn_like, th.rand, th.Tensor.uniform_ = randn_like, rand, uniform_  # type: ignore[assignment]
        normal_module._standard_normal = standard_normal


# ---------------------------------------------------------------------------------------------- the two sides
class _NoStep(th.optim.Optimizer):
    """An optimizer that does nothing (CORL's second critic optimizer: the first one steps both critics here)."""

    def __init__(self) -> None:
        self.param_groups: list[dict[str, Any]] = []

    def zero_grad(self, set_to_none: bool = True) -> None:
        return None

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        return None


def our_named(model: CQL) -> dict[str, Any]:
    actor = model.actor
    named: dict[str, Any] = {**linear_params("actor", actor.latent_pi, actor.mu, actor.log_std)}
    if getattr(actor, "affine_log_std", False):
        named.update({"actor.m": actor.log_std_multiplier, "actor.c": actor.log_std_offset})
    named.update(linear_params("critic", *model.critic.q_networks))
    named.update(linear_params("critic_target", *model.critic_target.q_networks))
    named.update({"log_ent_coef": model.log_ent_coef.log_value, "log_alpha_prime": model.log_alpha_prime.log_value})
    return named


def merge_heads(entries: dict[str, Any], hidden: int) -> dict[str, Any]:
    """Our mean and ``log sigma`` heads (layers ``hidden`` and ``hidden + 1``) as CORL's one output layer."""
    out = dict(entries)
    for kind in ("weight", "bias"):
        mu, log_std = (f"actor.{hidden}.{kind}", f"actor.{hidden + 1}.{kind}")
        if mu in out and log_std in out:
            out[f"actor.{hidden}.{kind}"] = th.cat([out.pop(mu), out.pop(log_std)])
    return out


def corl_named(trainer: Any, offset_learned: bool) -> dict[str, Any]:
    actor = trainer.actor
    named: dict[str, Any] = {**linear_params("actor", actor.base_network)}
    if offset_learned:
        named.update({"actor.m": actor.log_std_multiplier.constant, "actor.c": actor.log_std_offset.constant})
    named.update(linear_params("critic", trainer.critic_1, trainer.critic_2))
    named.update(linear_params("critic_target", trainer.target_critic_1, trainer.target_critic_2))
    named["log_ent_coef"] = trainer.log_alpha.constant
    named["log_alpha_prime"] = trainer.log_alpha_prime.constant
    return named


def affine(model: CQL) -> bool:
    """Whether our actor's ``log sigma`` is ``m * head + c`` (CORL's), else the head itself."""
    return bool(getattr(model.actor, "affine_log_std", False))


def build_corl(corl: types.ModuleType, trainer_class: str, model: CQL, **options: Any) -> Any:
    """CORL's trainer (``ContinuousCQL`` or ``CalQL``) with our weights, sizes and hyperparameters."""
    obs_dim, action_dim = model.observation_space.shape[0], model.action_space.shape[0]  # type: ignore[index]
    actor = corl.TanhGaussianPolicy(obs_dim, action_dim, max_action=1.0)
    n_hidden = len(model.critic.q_networks[0]) // 2
    critics = [corl.FullyConnectedQFunction(obs_dim, action_dim, n_hidden_layers=n_hidden) for _ in range(2)]
    ours = merge_heads({k: v for k, v in our_named(model).items() if k.startswith("actor.")}, hidden=3)
    theirs = {**linear_params("actor", actor.base_network), **linear_params("critic", *critics)}
    ours.update({k: v for k, v in our_named(model).items() if k.startswith("critic.")})
    with th.no_grad():
        for name, value in theirs.items():
            value.copy_(ours[name])
        if not affine(model):  # our actor's log sigma is the head: CORL's starts the same (multiplier 1, offset 0)
            actor.log_std_offset.constant.fill_(0.0)
    actor_lr, critic_lr = float(model.actor_learning_rate), float(model.learning_rate)  # type: ignore[arg-type]
    ent_coef_lr = actor_lr if model.ent_coef_learning_rate is None else float(model.ent_coef_learning_rate)  # type: ignore[arg-type]
    critic_optimizer = th.optim.Adam([*critics[0].parameters(), *critics[1].parameters()], lr=critic_lr)
    trainer = getattr(corl, trainer_class)(
        critic_1=critics[0],
        critic_1_optimizer=critic_optimizer,
        critic_2=critics[1],
        critic_2_optimizer=_NoStep(),
        actor=actor,
        actor_optimizer=th.optim.Adam(actor.parameters(), lr=actor_lr),
        target_entropy=-float(action_dim),
        discount=model.gamma,
        policy_lr=ent_coef_lr,
        qf_lr=critic_lr,
        soft_target_update_rate=model.tau,
        bc_steps=model.bc_steps,
        cql_n_actions=model.n_actions,
        cql_temp=model.cql_temperature,
        cql_alpha=model.alpha_cql,
        cql_max_target_backup=model.max_q_backup,
        cql_lagrange=model.target_action_gap is not None,
        cql_target_action_gap=-1.0 if model.target_action_gap is None else model.target_action_gap,
        **options,
    )
    with th.no_grad():
        trainer.log_alpha.constant.copy_(model.log_ent_coef.log_value[0])
        trainer.log_alpha_prime.constant.copy_(model.log_alpha_prime.log_value[0])
    return trainer


def compare(
    algorithm: str,
    variant: str,
    reference_file: str,
    model: CQL,
    trainer: Any,
    batches: list[Any],
    seed: int,
    notes: str,
    extra: Callable[[Any], list[th.Tensor]] = lambda batch: [],
    reference: Callable[[Any], th.Tensor | None] = lambda batch: None,
) -> ParityRow:
    """Both sides on the same batches and draws, ``len(batches)`` updates each, every loss, gradient, parameter."""
    ours, theirs = Trace(), Trace()
    params = {k: v for k, v in our_named(model).items()}
    their_params = corl_named(trainer, offset_learned=affine(model))
    for label, our_optimizer, their_optimizer in (
        ("actor", model.actor.optimizer, trainer.actor_optimizer),
        ("critic", model.critic.optimizer, trainer.critic_1_optimizer),
        ("log_ent_coef", model.log_ent_coef.optimizer, trainer.alpha_optimizer),
        ("log_alpha_prime", model.log_alpha_prime.optimizer, trainer.alpha_prime_optimizer),
    ):
        mine = {k: v for k, v in params.items() if k.split(".")[0] == label}
        watch(our_optimizer, label, mine, ours)
        watch(their_optimizer, label, {k: v for k, v in their_params.items() if k.split(".")[0] == label}, theirs)
    draws = Draws(seed + 2)
    queue = iter(batches)
    model._sample = lambda batch_size: (lambda batch: (batch, reference(batch)))(next(queue))  # type: ignore[method-assign]
    with deterministic_cpu(), shared_draws(draws):
        for batch in batches:
            ours.grads.append({})
            model.train(gradient_steps=1, batch_size=batch.observations.shape[0])
            logged = model._losses.flush(model.logger)
            ours.losses.append({k: logged[k] for k in LOSS_NAMES if k in logged})
            ours.params.append(merge_heads(snapshot(params), hidden=3))
            ours.grads[-1] = {k: merge_heads(v, hidden=3) for k, v in ours.grads[-1].items()}
    with deterministic_cpu(), shared_draws(draws):
        for batch in batches:
            theirs.grads.append({})
            logged = trainer.train([*as_list(batch), *extra(batch)])
            theirs.losses.append(
                {k: sum(logged[n] for n in names) for k, names in LOSS_NAMES.items() if k in ours.losses[0]}
            )
            theirs.params.append(snapshot(corl_named(trainer, offset_learned=affine(model))))
    grads = [g for update in ours.grads for named in update.values() for g in named.values()]
    return ParityRow(
        algorithm, variant, CORL_REPO, CORL_COMMIT, reference_file, len(batches),
        max_diff(ours.losses, theirs.losses), max_diff(ours.params, theirs.params),
        max_diff(ours.grads, theirs.grads), notes,
        loss_scale=max(abs(v) for update in ours.losses for v in update.values()),
        grad_scale=max(float(g.abs().max()) for g in grads),
    )  # fmt: skip


VARIANTS = ("as-shipped", "ours-as-corl")


def build_ours(cls: type[CQL], policy: Any, seed: int, **kwargs: Any) -> CQL:
    """Our model on the synthetic data (Hopper-v5's spaces), no behaviour cloning, a logger that writes nothing."""
    model = cls(
        policy,
        gym.make("Hopper-v5"),
        dataset=make_transitions(seed=seed),
        seed=seed,
        device="cpu",
        cuda_graphs=False,
        bc_steps=0,
        **kwargs,
    )
    model.set_logger(quiet_logger())
    return model


def run(reference: pathlib.Path, updates: int = 10, seed: int = 0, batch_size: int = 256, **_: Any) -> list[ParityRow]:
    """
    The parity rows of CQL against CORL's ``cql.py`` in the checkout ``reference``.

    :param reference: a CORL checkout (commit 6afec90)
    :param updates: K, the updates each side runs
    :param seed: seed of the weights, the batches and the random draws
    :param batch_size: rows per batch
    """
    corl = load_reference(pathlib.Path(reference), "algorithms/offline/cql.py", "corl_cql")
    rows = []
    for variant in VARIANTS:
        th.manual_seed(seed)
        as_corl = variant == "ours-as-corl"
        model = build_ours(CQLAsCORL if as_corl else CQL, CORLHeadPolicy if as_corl else "MlpPolicy", seed)
        trainer = build_corl(corl, "ContinuousCQL", model)
        batches = make_batches(make_transitions(seed=seed), updates, batch_size, seed)
        notes = CORL_DIFFERENCES if variant == "as-shipped" else "ours in CORL's order with its actor head (harness)"
        rows.append(
            compare("CQL", variant, "algorithms/offline/cql.py", model, trainer, batches, seed, notes + "; 3 x 256")
        )
    return rows
