"""
Update-by-update parity of our PLAS with d3rlpy 2.8.1's PLAS on one fixed batch (issue 17, item 8).

Both are built with the same sizes on the same data; our weights are copied into d3rlpy's modules (VAE
encoder and decoder, latent policy and its target, both critics and their targets); then each side runs
``--vae-updates`` VAE updates followed by ``--policy-updates`` policy updates through its own public
training path (ours: ``PLAS.train(1)``; d3rlpy: ``algo.update(batch)``, whose ``warmup_steps`` we set to
``--vae-updates``), every update on the same fixed batch, with the same VAE noise (``torch.randn_like`` for
ours and ``torch.distributions.normal._standard_normal`` for d3rlpy's ``Normal.rsample`` both return one
pre-drawn tensor per update). At every update it records, on each side, the losses, the critic target,
each optimizer's gradients (read just before its ``step``) and, after the update, every parameter
(targets included), and prints the largest absolute differences.

Run with a Python where both sb3-offline and d3rlpy import (d3rlpy is no dependency of sb3-offline)::

    python -m venv --system-site-packages d3venv && d3venv/bin/pip install d3rlpy==2.8.1 torch==<ours>
    d3venv/bin/python -m benchmarks.plas_parity                 # Hopper-v5 random data (bounds [-1, 1])
    d3venv/bin/python -m benchmarks.plas_parity --data synthetic --small-nets

Variants (each a fresh pair of models with the same copied weights):

- ``as-shipped``: d3rlpy unmodified;
- ``tanh-decoder``: d3rlpy's ``VAEDecoder`` made to end in ``tanh`` as ours and the authors' do
  (d3rlpy 2.8.1's ``VAEDecoder.forward`` returns the *raw* linear output when ``with_squash=True``,
  the default every PLAS call uses, and ``tanh`` only when ``with_squash=False``: the flag is inverted);
- ``tanh-decoder+own-target-init``: as above, but d3rlpy's target latent policy keeps the weights d3rlpy
  gave it (``PLASImpl`` derives from ``DDPGBaseImpl``, which hard-syncs only the critics' targets, so the
  target policy starts as an independent random network; ours and the authors' start it as a copy).

Actions must be in [-1, 1] in the env's units (our VAE works in SB3's [-1, 1] scale, d3rlpy's and the
authors' in env units): both data choices here have bounds [-1, 1]. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from torch import nn

VARIANTS = ("as-shipped", "tanh-decoder", "tanh-decoder+own-target-init")


# ------------------------------------------------------------------------------------------------ data
def make_transitions(kind: str, rows: int, seed: int) -> Any:
    """Hopper-v5 random-policy transitions (bounds [-1, 1]) or synthetic ones on a [-1, 1] Box."""
    from sb3_offline.datasets import Transitions, record_transitions

    if kind == "hopper":
        return record_transitions("Hopper-v5", rows, seed=seed)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(rows, 11)).astype(np.float32)
    next_obs = (obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32)
    actions = np.clip(rng.normal(scale=0.6, size=(rows, 3)), -1, 1).astype(np.float32)
    rewards = rng.normal(size=rows).astype(np.float32)
    terminations = rng.random(rows) < 0.05
    truncations = np.zeros(rows, dtype=bool)
    return Transitions(obs, actions, rewards, next_obs, terminations, truncations, env_id="Hopper-v5")


# --------------------------------------------------------------------------------------------- models
def linears(*modules: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``modules`` in registration order."""
    return [m for module in modules for m in module.modules() if isinstance(m, nn.Linear)]


def layer_pairs(ours: Any, d3: Any) -> dict[str, list[tuple[nn.Linear, nn.Linear]]]:
    """Our Linear layers matched with d3rlpy's, per network (the architectures must line up exactly)."""
    m = d3.impl._modules
    pairs = {
        "vae": (linears(ours.vae), linears(m.vae_encoder, m.vae_decoder)),
        "actor": (linears(ours.actor), linears(m.policy)),
        "actor_target": (linears(ours.actor_target), linears(m.targ_policy)),
        "critic": (linears(*ours.critic.q_networks), linears(m.q_funcs)),
        "critic_target": (linears(*ours.critic_target.q_networks), linears(m.targ_q_funcs)),
    }
    out = {}
    for name, (a, b) in pairs.items():
        if len(a) != len(b) or any(x.weight.shape != y.weight.shape for x, y in zip(a, b, strict=True)):
            raise RuntimeError(
                f"{name}: layers differ: ours {[tuple(x.weight.shape) for x in a]}, "
                f"d3rlpy {[tuple(y.weight.shape) for y in b]}"
            )
        out[name] = list(zip(a, b, strict=True))
    return out


def param_pairs(pairs: dict[str, list[tuple[nn.Linear, nn.Linear]]]) -> dict[str, list[tuple[th.Tensor, th.Tensor]]]:
    return {
        name: [(p, q) for a, b in layers for p, q in ((a.weight, b.weight), (a.bias, b.bias))]
        for name, layers in pairs.items()
    }


def build(args: argparse.Namespace, transitions: Any, variant: str) -> tuple[Any, Any, dict]:
    import d3rlpy

    from benchmarks.d3rlpy_compat import make_d3rlpy
    from sb3_offline import PLAS

    kwargs: dict[str, Any] = {}
    net_arch = None
    if args.small_nets:
        net_arch = dict(pi=[64, 64], qf=[64, 64], vae=[128, 128])
        kwargs["policy_kwargs"] = dict(net_arch=net_arch)
    ours = PLAS(
        "MlpPolicy",
        None,
        dataset=transitions,
        vae_steps=args.vae_updates,
        batch_size=args.batch_size,
        seed=args.seed,
        device="cpu",
        cuda_graphs=False,
        **kwargs,
    )
    from stable_baselines3.common.logger import Logger

    ours.set_logger(Logger(folder=None, output_formats=[]))  # train() records the learning rate
    d3rlpy.seed(args.seed + 1)  # other initial weights: the copy below must be what makes them equal
    d3 = make_d3rlpy("plas", "cpu", args.batch_size, net_arch, plas_vae_steps=args.vae_updates)
    obs_dim = int(np.prod(ours.observation_space.shape or ()))
    d3.create_impl((obs_dim,), int(np.prod(ours.action_space.shape or ())))
    m = d3.impl._modules
    info = {
        "d3rlpy targ_policy vs policy at creation (max |diff| over weights)": max(
            (p - q).abs().max().item() for p, q in zip(m.policy.parameters(), m.targ_policy.parameters(), strict=True)
        ),
        "d3rlpy targ_q_funcs vs q_funcs at creation": max(
            (p - q).abs().max().item() for p, q in zip(m.q_funcs.parameters(), m.targ_q_funcs.parameters(), strict=True)
        ),
    }
    pairs = layer_pairs(ours, d3)
    with th.no_grad():
        for name, layers in pairs.items():
            if name == "actor_target" and variant.endswith("own-target-init"):
                continue
            for a, b in layers:
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
    if variant != "as-shipped":
        decoder = m.vae_decoder

        def tanh_forward(x: th.Tensor, latent: th.Tensor, with_squash: bool = True) -> th.Tensor:
            return th.tanh(decoder._fc(decoder._encoder(x, latent)))

        decoder.forward = tanh_forward  # type: ignore[method-assign]
    return ours, d3, info


# ---------------------------------------------------------------------------------------- instruments
class Recorder:
    """Gradients at each optimizer's ``step`` and values returned by wrapped functions, per side."""

    def __init__(self) -> None:
        self.grads: dict[str, dict[int, th.Tensor]] = {}
        self.values: dict[str, th.Tensor] = {}

    def watch_optimizer(self, name: str, optimizer: th.optim.Optimizer) -> None:
        step = optimizer.step

        def recording_step(*a: Any, **k: Any) -> Any:
            self.grads[name] = {
                id(p): (p.grad.detach().clone() if p.grad is not None else th.zeros_like(p))
                for group in optimizer.param_groups
                for p in group["params"]
            }
            return step(*a, **k)

        optimizer.step = recording_step  # type: ignore[method-assign]

    def wrap(self, name: str, fn: Callable[..., Any], pick: Callable[[Any], th.Tensor] = lambda x: x) -> Callable:
        def wrapped(*a: Any, **k: Any) -> Any:
            out = fn(*a, **k)
            self.values[name] = pick(out).detach().clone()
            return out

        return wrapped

    def clear(self) -> None:
        self.grads.clear()
        self.values.clear()


class _NoLogger:
    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


def _fixed_noise(eps: th.Tensor, *args: Any, **kwargs: Any) -> th.Tensor:
    """Stands in for ``torch.randn_like`` and ``torch.distributions.normal._standard_normal``: always ``eps``."""
    return eps.clone()


def max_diff(a: th.Tensor, b: th.Tensor) -> float:
    return float((a.detach().reshape(-1) - b.detach().reshape(-1)).abs().max())


def batch_source(buffer: Any, batch_size: int, seed: int) -> Callable[[], tuple[Any, Any]]:
    """
    ``next_batch() -> (ours, d3rlpy's)``: a batch gathered from our buffer (actions in its [-1, 1] scale, dones =
    terminations) and the same as d3rlpy's ``TransitionMiniBatch``; one fixed batch, or with
    ``--new-batch-each-update`` a new one per update, the same for both sides.
    """
    from d3rlpy.dataset import TransitionMiniBatch

    generator = th.Generator().manual_seed(seed)

    def next_batch() -> tuple[Any, Any]:
        idx = th.randint(0, buffer.size(), (batch_size,), generator=generator)
        batch = buffer.gather(idx)
        d3_batch = TransitionMiniBatch(
            observations=batch.observations.numpy(),
            actions=batch.actions.numpy(),
            rewards=batch.rewards.numpy(),
            next_observations=batch.next_observations.numpy(),
            next_actions=batch.actions.numpy(),  # unused by PLAS
            terminals=batch.dones.numpy(),
            intervals=np.ones((batch_size, 1), dtype=np.float32),
            transitions=[],
        )
        return batch, d3_batch

    return next_batch


def compare_update(
    tag: str,
    batch: Any,
    our_losses: dict,
    d3_metrics: dict,
    recorders: tuple[Recorder, Recorder],
    params: dict[str, list[tuple[th.Tensor, th.Tensor]]],
    gamma: float,
    info: dict,
) -> list[tuple[str, float, float]]:
    """One update's rows ``(quantity, max |ours - d3rlpy|, max |ours|)``: losses, target, gradients, parameters."""
    ours_rec, d3_rec = recorders
    rows: list[tuple[str, float, float]] = []
    if tag.startswith("vae"):
        vae_loss = float(our_losses["vae/loss"])
        rows.append((f"{tag} VAE loss", abs(vae_loss - float(d3_rec.values["vae_loss"])), abs(vae_loss)))
        networks = ["vae"]
    else:
        # d3rlpy's compute_target returns the mixed next Q; the target is r + gamma * (1 - d) * it
        target = batch.rewards + gamma * (1.0 - batch.dones) * d3_rec.values["next_q_mix"]
        a = ours_rec.values["target"]
        rows.append((f"{tag} critic target y", max_diff(a, target), float(a.abs().max())))
        critic_loss = float(our_losses["critic_loss"])
        rows.append((f"{tag} critic loss", abs(critic_loss - d3_metrics["critic_loss"]), abs(critic_loss)))
        actor_loss = float(our_losses["actor_loss"])
        rows.append((f"{tag} actor loss", abs(actor_loss - d3_metrics["actor_loss"]), abs(actor_loss)))
        networks = ["critic", "actor"]
    for name in networks:
        diffs = [max_diff(ours_rec.grads[name][id(p)], d3_rec.grads[name][id(q)]) for p, q in params[name]]
        scale = max(float(ours_rec.grads[name][id(p)].abs().max()) for p, _ in params[name])
        rows.append((f"{tag} {name} gradients", max(diffs), scale))
    if not tag.startswith("vae") and any(
        q.grad is not None and float(q.grad.abs().max()) > 0 for _, q in params["vae"]
    ):
        info["d3rlpy accumulates decoder gradients in the policy phase (never stepped)"] = True
    for name, pairs in params.items():
        diff = max(max_diff(p, q) for p, q in pairs)
        scale = max(float(p.detach().abs().max()) for p, _ in pairs)
        rows.append((f"{tag} {name} params after", diff, scale))
    return rows


def run_variant(
    args: argparse.Namespace, transitions: Any, variant: str
) -> tuple[list[tuple[str, float, float]], dict, Any, Any]:
    """:return: rows ``(quantity, max |ours - d3rlpy|, max |ours|)``, side information, and both trained models"""
    import d3rlpy.algos.qlearning.torch.plas_impl as d3_plas_impl
    import torch.distributions.normal as normal_module

    ours, d3, info = build(args, transitions, variant)
    our_plas: Any = importlib.import_module(type(ours).__module__)  # where PLAS looks up soft_clipped_target
    params = param_pairs(layer_pairs(ours, d3))
    m = d3.impl._modules
    assert ours.replay_buffer is not None
    buffer = ours.replay_buffer
    next_batch = batch_source(buffer, args.batch_size, args.seed)
    batch, d3_batch = next_batch()
    buffer.sample = lambda batch_size, env=None: batch  # type: ignore[method-assign]
    info["terminations in the (first) batch"] = int(batch.dones.sum())

    ours_rec, d3_rec = Recorder(), Recorder()
    ours_rec.watch_optimizer("vae", ours.vae.optimizer)
    ours_rec.watch_optimizer("critic", ours.critic.optimizer)
    ours_rec.watch_optimizer("actor", ours.actor.optimizer)
    d3_rec.watch_optimizer("vae", m.vae_optim.optim)
    d3_rec.watch_optimizer("critic", m.critic_optim.optim)
    d3_rec.watch_optimizer("actor", m.actor_optim.optim)
    # the critic target and d3rlpy's VAE loss, recorded where each side computes them (our losses: ``_losses``)
    saved = (our_plas.soft_clipped_target, d3_plas_impl.compute_vae_error)
    our_plas.soft_clipped_target = ours_rec.wrap("target", our_plas.soft_clipped_target)
    d3_plas_impl.compute_vae_error = d3_rec.wrap("vae_loss", d3_plas_impl.compute_vae_error)
    d3.impl.compute_target = d3_rec.wrap("next_q_mix", d3.impl.compute_target)  # type: ignore[method-assign]
    saved_randn_like, saved_standard_normal = th.randn_like, normal_module._standard_normal

    latent_dim = ours.vae.latent_dim
    noise_generator = th.Generator().manual_seed(args.seed + 7)
    rows: list[tuple[str, float, float]] = []
    gamma = ours.gamma
    try:
        for update in range(args.vae_updates + args.policy_updates):
            phase = "vae" if update < args.vae_updates else "policy"
            tag = f"{phase}[{update + 1 if phase == 'vae' else update + 1 - args.vae_updates}]"
            if update > 0 and args.new_batch_each_update:
                batch, d3_batch = next_batch()
            eps = th.randn(args.batch_size, latent_dim, generator=noise_generator)
            th.randn_like = functools.partial(_fixed_noise, eps)  # type: ignore[assignment]
            normal_module._standard_normal = functools.partial(_fixed_noise, eps)
            ours_rec.clear()
            d3_rec.clear()
            ours.train(gradient_steps=1, batch_size=args.batch_size)
            our_losses = ours._losses.flush(_NoLogger())  # type: ignore[arg-type]
            d3_metrics = d3.update(d3_batch)
            th.randn_like, normal_module._standard_normal = saved_randn_like, saved_standard_normal

            rows += compare_update(tag, batch, our_losses, d3_metrics, (ours_rec, d3_rec), params, gamma, info)
        # acting: our predict path vs d3rlpy's predict_best_action, on the batch's observations
        with th.no_grad():
            ours.policy.set_training_mode(False)
            a = ours.policy._predict(batch.observations)
            b = d3.impl.predict_best_action(batch.observations)
        rows.append(("acting: predicted actions", max_diff(a, b), float(a.abs().max())))
        info["d3rlpy predicted |action| max (before any clipping)"] = float(b.abs().max())
    finally:
        th.randn_like, normal_module._standard_normal = saved_randn_like, saved_standard_normal
        our_plas.soft_clipped_target, d3_plas_impl.compute_vae_error = saved
    return rows, info, ours, d3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data", default="hopper", choices=["hopper", "synthetic"])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--vae-updates", type=int, default=3)
    parser.add_argument("--policy-updates", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--new-batch-each-update", action="store_true", help="a new batch per update (the same for both sides)"
    )
    parser.add_argument("--summary-only", action="store_true", help="print only the summary table")
    parser.add_argument("--small-nets", action="store_true", help="64-64 / VAE 128-128 instead of the paper's sizes")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument(
        "--tolerance", type=float, default=1e-5, help="a loss/target/gradient difference above it is flagged"
    )
    parser.add_argument(
        "--param-tolerance",
        type=float,
        default=1e-4,
        help="a parameter difference above it is flagged: Adam's early steps are ~lr * sign(g) where |g| >> eps, "
        "so float rounding in a gradient entry near eps (1e-8) moves that entry by up to ~lr/100 (critics: 1e-5)",
    )
    args = parser.parse_args(argv)

    from benchmarks.d3rlpy_compat import d3rlpy_available

    if not d3rlpy_available():
        parser.error("d3rlpy is not importable in this Python (it is no dependency of sb3-offline)")
    import d3rlpy

    logging.getLogger("gymnasium").setLevel(logging.ERROR)
    th.set_num_threads(max(1, th.get_num_threads()))
    transitions = make_transitions(args.data, args.rows, args.seed)
    print(
        f"d3rlpy {d3rlpy.__version__}, torch {th.__version__}; data {args.data} ({len(transitions)} rows), "
        f"batch {args.batch_size}, {'small' if args.small_nets else 'paper'} networks, "
        f"{args.vae_updates} VAE + {args.policy_updates} policy updates on "
        + ("a new batch each (the same for both)" if args.new_batch_each_update else "one fixed batch")
    )
    summary: dict[str, dict[str, float]] = {}
    for variant in args.variants:
        rows, info, _, _ = run_variant(args, transitions, variant)
        for name, diff, _ in rows:
            key = re.sub(r"\[\d+\]", "", name).strip()
            column = summary.setdefault(key, {})
            column[variant] = max(column.get(variant, 0.0), diff)
        print(f"\n## variant {variant}\n")
        for key, value in info.items():
            print(f"- {key}: {value}")
        if args.summary_only:
            continue
        print("\n| quantity | max abs diff ours vs d3rlpy | max abs (ours) | |\n|---|---|---|---|")
        for name, diff, scale in rows:
            tolerance = args.param_tolerance if name.endswith("params after") else args.tolerance * max(1.0, scale)
            flag = "DIFFERS" if diff > tolerance else ""
            print(f"| {name} | {diff:.3e} | {scale:.3e} | {flag} |")
    print("\n## summary: max abs diff ours vs d3rlpy over all updates\n")
    print("| quantity | " + " | ".join(args.variants) + " |\n|---|" + "---|" * len(args.variants))
    for key, column in summary.items():
        print(f"| {key} | " + " | ".join(f"{column.get(v, float('nan')):.1e}" for v in args.variants) + " |")


if __name__ == "__main__":
    main()
