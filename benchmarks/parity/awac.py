"""
Update-level parity of our AWAC with CORL's single-file PyTorch port (``tinkoff-ai/CORL`` commit 6afec90,
``algorithms/offline/awac.py``), loaded from a local checkout (``--reference``, never copied here). Run with
``python -m benchmarks.parity awac --reference CORL_CHECKOUT [--updates 10] [--seed 0]``.

The harness is :mod:`benchmarks.parity.iql`'s (same data, batches, gradient and parameter records). AWAC's
update draws from the policy twice (``a' ~ pi(s')`` for the critics' target, ``a ~ pi(s)`` for ``V(s)``): both
sides get the same standard normal draws, in that order, through ``Normal.sample``/``rsample``
(:func:`injected_normal_draws`).

Our AWAC follows the authors' code, rlkit (``rail-berkeley/rlkit`` commit ac45a9d, ``awac_trainer.py``,
``examples/awac/mujoco/awac1.py``). Where CORL differs from it (:data:`CORL_DIFFERENCES`):

- the advantage weights: ``min(exp(A / lambda), 100)`` per sample (rlkit: ``N * softmax(A / beta)`` over the batch);
- order: CORL steps the critics first and takes the advantage from the *updated* critics (rlkit: every loss from
  the critics before this step's update);
- the actor: a *linear* mean (rlkit: ``tanh``) and a free ``log sigma`` clipped to [-20, 2], started at 0 (rlkit:
  a sigmoid into [-6, 0], started at -3); no weight decay (rlkit: 1e-4);
- sizes and defaults: actor and critics 3 x 256 (rlkit: 4 x 256 and 2 x 256), batch 256 (rlkit 128 offline, 1024
  online), ``awac_lambda`` 1 (its locomotion configs 0.3333; rlkit's ``beta`` 2), PyTorch's initialisation (rlkit's
  ``fanin_init``, last layers +-1e-3 / +-3e-3), states normalised (``compute_mean_std``).

Both sides are built 3 x 256 here (CORL's sizes; ours through ``net_arch``) with the same ``lambda`` (our ``beta``
= 1). Rows: ``as-shipped`` (CORL unmodified against our AWAC: the mean, ``log sigma``, weights and order differ;
CORL's ``log sigma`` is set to our initial value, -3) and ``ours-as-corl`` (our update and actor made to follow
CORL: :class:`AWACAsCORL` with :class:`CORLActorPolicy`), which must sit at float tolerance. Nothing here is a test.
"""

from __future__ import annotations

import pathlib
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import torch as th
from torch import nn
from torch.distributions import Normal

from benchmarks.d3rlpy_variants import AWACValueAfterCritic
from benchmarks.parity.core import ParityRow
from benchmarks.parity.iql import (
    CORL_COMMIT,
    CORL_REPO,
    Trace,
    as_list,
    copy_params,
    deterministic_cpu,
    linear_params,
    load_reference,
    make_batches,
    make_transitions,
    max_diff,
    quiet_logger,
    run_ours,
    snapshot,
    watch,
)
from sb3_offline import AWAC
from sb3_offline.awac.policies import AWACPolicy
from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.weights import exp_weights

CORL_DIFFERENCES = (
    "CORL: weights min(exp(A / lambda), 100) (rlkit: batch softmax); advantage from the critics after their step "
    "(rlkit: before); linear mean, log sigma a clipped parameter in [-20, 2] (rlkit: tanh mean, sigmoid into [-6, 0]); "
    "no actor weight decay (rlkit 1e-4)"
)
SIZES = dict(pi=[256, 256, 256], qf=[256, 256, 256])  # CORL's Actor and Critic (hidden_dim 256)


class CORLActorPolicy(AWACPolicy):
    """AWAC's networks with CORL's actor: a linear mean and a free ``log sigma`` clipped to its bounds (a harness
    variant, not the authors' networks)."""

    log_std_mode = "clip"

    def _build_actor(self, features_dim: int) -> GaussianActor:
        actor = super()._build_actor(features_dim)
        if isinstance(actor.mu[-1], nn.Tanh):
            actor.mu = nn.Sequential(*list(actor.mu)[:-1])
        return actor


class AWACAsCORL(AWACValueAfterCritic):
    """Our AWAC made to follow CORL's update: the critics stepped first, then the advantage from the updated critics
    weighted by ``min(exp(A / beta), 100)``, the actor, the targets (a harness variant)."""

    def _weights(self, advantages: th.Tensor) -> th.Tensor:
        return exp_weights(advantages, 1.0 / self.beta, 100.0)


@contextmanager
def injected_normal_draws(draws: list[th.Tensor]) -> Iterator[None]:
    """``Normal.sample`` and ``rsample`` return ``loc + eps * scale`` with ``eps`` the next of ``draws``."""
    queue = iter(draws)
    sample, rsample = Normal.sample, Normal.rsample

    def next_draw(self: Normal, sample_shape: Any = ()) -> th.Tensor:
        eps = next(queue)
        shape = self._extended_shape(th.Size(sample_shape))
        if eps.shape != shape:
            raise RuntimeError(f"injected draw: expected shape {tuple(shape)}, found {tuple(eps.shape)}")
        return self.loc + eps * self.scale

    def no_grad_draw(self: Normal, sample_shape: Any = ()) -> th.Tensor:
        with th.no_grad():
            return next_draw(self, sample_shape)

    Normal.sample, Normal.rsample = no_grad_draw, next_draw  # type: ignore[method-assign]
    try:
        yield
    finally:
        Normal.sample, Normal.rsample = sample, rsample  # type: ignore[method-assign]


def our_named(model: AWAC) -> dict[str, Any]:
    return {
        **linear_params("actor", model.actor.mu),
        "actor.log_std": model.actor.log_std,
        **linear_params("critic", *model.critic.q_networks),
        **linear_params("critic_target", *model.critic_target.q_networks),
    }


def corl_named(trainer: Any) -> dict[str, Any]:
    actor = trainer._actor
    return {
        **linear_params("actor", actor._mlp),
        "actor.log_std": lambda: actor._log_std.clamp(actor._min_log_std, actor._max_log_std),
        **linear_params("critic", trainer._critic_1, trainer._critic_2),
        **linear_params("critic_target", trainer._target_critic_1, trainer._target_critic_2),
    }


def build(corl: types.ModuleType, variant: str, seed: int, beta: float) -> tuple[AWAC, Any]:
    """Our AWAC (or :class:`AWACAsCORL`) and CORL's ``AdvantageWeightedActorCritic`` with our weights."""
    as_corl = variant == "ours-as-corl"
    policy_kwargs: dict[str, Any] = {"net_arch": SIZES}
    if as_corl:
        policy_kwargs.update(min_log_std=-20.0, max_log_std=2.0)
    model = (AWACAsCORL if as_corl else AWAC)(
        CORLActorPolicy if as_corl else "MlpPolicy",
        gym.make("Hopper-v5"),
        dataset=make_transitions(seed=seed),
        beta=beta,
        actor_weight_decay=0.0 if as_corl else 1e-4,
        seed=seed,
        device="cpu",
        cuda_graphs=False,
        policy_kwargs=policy_kwargs,
    )
    model.set_logger(quiet_logger())
    actor = corl.Actor(11, 3, 256)
    critics = [corl.Critic(11, 3, 256) for _ in range(2)]
    copy_params(
        {k: v for k, v in our_named(model).items() if k.startswith(("actor.", "critic.")) and not callable(v)},
        {**linear_params("actor", actor._mlp), **linear_params("critic", *critics)},
    )
    with th.no_grad():
        actor._log_std.copy_(model.actor.log_std())  # as shipped: our initial log sigma (-3), other parametrisation
    trainer = corl.AdvantageWeightedActorCritic(
        actor=actor,
        actor_optimizer=th.optim.Adam(actor.parameters(), lr=model.actor_learning_rate),
        critic_1=critics[0],
        critic_1_optimizer=th.optim.Adam(critics[0].parameters(), lr=3e-4),
        critic_2=critics[1],
        critic_2_optimizer=th.optim.Adam(critics[1].parameters(), lr=3e-4),
        gamma=model.gamma,
        tau=model.tau,
        awac_lambda=beta,
    )
    return model, trainer


def run_variant(corl: types.ModuleType, variant: str, updates: int, seed: int, batch_size: int) -> ParityRow:
    """Both sides with the same weights, batches and normal draws; ``updates`` updates each, compared."""
    model, trainer = build(corl, variant, seed, beta=1.0)
    ours, reference = Trace(), Trace()
    params = {k: v for k, v in our_named(model).items() if not callable(v)}
    theirs = {k: v for k, v in corl_named(trainer).items() if not callable(v)}
    same_log_std = variant == "ours-as-corl"  # as shipped, log sigma has another parametrisation: no gradient pair
    for label, optimizer in (("actor", model.actor.optimizer), ("critic", model.critic.optimizer)):
        named = {k: v for k, v in params.items() if k.startswith(label + ".")}
        named.update({"actor.log_std": model.actor.log_std_values} if label == "actor" and same_log_std else {})
        watch(optimizer, label, named, ours)
    for label, optimizer in (("actor", trainer._actor_optimizer), ("critic", trainer._critic_1_optimizer)):
        named = {k: v for k, v in theirs.items() if k.startswith(label + ".")}
        named.update({"actor.log_std": trainer._actor._log_std} if label == "actor" and same_log_std else {})
        watch(optimizer, label, named, reference)  # critic_2's optimizer steps after critic_1's, on the same backward
    batches = make_batches(make_transitions(seed=seed), updates, batch_size, seed)
    generator = th.Generator().manual_seed(seed + 2)
    draws = [th.randn(batch_size, 3, generator=generator) for _ in range(2 * updates)]
    with deterministic_cpu(), injected_normal_draws(list(draws)):
        run_ours(model, batches, our_named(model), ours)
    with deterministic_cpu(), injected_normal_draws(list(draws)):
        for batch in batches:
            reference.grads.append({})
            reference.losses.append(trainer.update(as_list(batch)))
            reference.params.append(snapshot(corl_named(trainer)))
    notes = CORL_DIFFERENCES if variant == "as-shipped" else "ours made to follow CORL (harness variant)"
    return ParityRow(
        "AWAC", variant, CORL_REPO, CORL_COMMIT, "algorithms/offline/awac.py", updates,
        max_diff(ours.losses, reference.losses), max_diff(ours.params, reference.params),
        max_diff(ours.grads, reference.grads), notes + "; both 3 x 256, lambda = beta = 1",
    )  # fmt: skip


VARIANTS = ("as-shipped", "ours-as-corl")


def run(reference: pathlib.Path, updates: int = 10, seed: int = 0, batch_size: int = 256, **_: Any) -> list[ParityRow]:
    """
    The parity rows of AWAC against CORL's ``awac.py`` in the checkout ``reference``.

    :param reference: a CORL checkout (commit 6afec90)
    :param updates: K, the updates each side runs
    :param seed: seed of the weights, the batches and the normal draws
    :param batch_size: rows per batch (CORL's 256)
    """
    corl = load_reference(pathlib.Path(reference), "algorithms/offline/awac.py", "corl_awac")
    th.manual_seed(seed)
    return [run_variant(corl, variant, updates, seed, batch_size) for variant in VARIANTS]
