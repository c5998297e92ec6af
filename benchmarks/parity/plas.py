"""
PLAS against the authors' ``Wenxuan-Zhou/PLAS`` ``algos.py`` (``VAEModule.train_step``, then ``Latent.train`` or,
for PLAS-P, ``LatentPerturbation.train``) or d3rlpy 2.8.1's PLAS (``algo.update(batch)``, its
``d3rlpy/algos/qlearning/torch/plas_impl.py``): ``--reference`` names a checkout of either.

Both sides at the papers' sizes (VAE 750-750, latent ``2 * action_dim``, latent policy and critics 400-300) with
our defaults (the authors' ``main.py``'s: lr VAE 1e-4, actor 1e-4, critic 1e-3, batch 100, gamma 0.99, tau 0.005,
lambda 0.75, max latent action 2; PLAS-P phi 0.05); our weights are copied into theirs. ``updates`` VAE updates
(our ``vae_steps``; d3rlpy's ``warmup_steps``), then ``updates`` policy updates. The batch indices are shared
draws (the authors' ``np.random.randint`` in ``train_step`` and in their ``utils.ReplayBuffer``, filled with our
buffer's rows; for d3rlpy, our rows at the same indices as its ``TransitionMiniBatch``), and so is the VAE's noise
(``torch.randn_like``; d3rlpy's ``Normal.rsample``). Acting is compared on the first states.

d3rlpy variants (each a fresh pair with the same copied weights): ``as shipped``; ``tanh decoder`` (d3rlpy 2.8.1's
``VAEDecoder.forward`` returns the raw linear output when ``with_squash=True``, the default every PLAS call uses:
the flag is inverted; ours and the authors' end in ``tanh``); ``tanh decoder + own target init`` (d3rlpy's target
latent policy keeps the weights d3rlpy gave it: ``PLASImpl`` derives from ``DDPGBaseImpl``, which hard-syncs only
the critics' targets, so d3rlpy's target policy starts as an independent random network; ours is a copy).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from benchmarks.parity import core

REPO = "Wenxuan-Zhou/PLAS"
FILES = ("algos.py",)
#: blob hash of ``algos.py`` -> a commit that holds it (unchanged from da34852 to 9fbc6ff)
KNOWN = {"2a3147b227705378d0e6dd240d3e14f91b8f33d2": "9fbc6ff"}
D3RLPY_REPO = "takuseno/d3rlpy"
D3RLPY_FILES = ("d3rlpy/algos/qlearning/torch/plas_impl.py", "algos/qlearning/torch/plas_impl.py")
D3RLPY_KNOWN = {"66818e4ae58ea0a4bce71485447f9cb38418bcfe": "v2.8.1 (4e7bba7a)"}
AUTHORS_VARIANTS = ("PLAS", "PLAS-P")
D3RLPY_VARIANTS = ("as shipped", "tanh decoder", "tanh decoder + own target init")
ACTING_STATES = 5


def run(
    reference: Path,
    updates: int = 10,
    seed: int = 0,
    data: str = "hopper",
    rows: int = 2000,
    batch_size: int = 100,
    variants: tuple[str, ...] | None = None,
    **options: Any,
) -> list[core.ParityRow]:
    """
    ``updates`` VAE updates then ``updates`` policy updates on each side (see the module's docstring).

    :param reference: a checkout of ``Wenxuan-Zhou/PLAS`` (or its ``algos.py``), or of d3rlpy (the folder that holds
        the package ``d3rlpy``, e.g. its git checkout at v2.8.1; d3rlpy's dependencies must be installed)
    :param data: ``"hopper"`` (Hopper-v5 random data) or ``"synthetic"``, both on a Box with bounds [-1, 1]
    :param rows: transitions in the dataset
    :param batch_size: minibatch size (the authors' 100)
    :param variants: among :data:`AUTHORS_VARIANTS` or :data:`D3RLPY_VARIANTS` (``None``: all of the reference's)
    """
    if options:
        raise TypeError(f"plas.run: unexpected options {sorted(options)}")
    reference = Path(reference).expanduser()
    dataset = core.make_dataset(data, rows, seed)
    if any((reference / f).is_file() for f in D3RLPY_FILES) or reference.as_posix().endswith("plas_impl.py"):
        ref = core.locate(reference, D3RLPY_FILES, D3RLPY_REPO, D3RLPY_KNOWN)
        import_d3rlpy(ref.path.parents[4])  # the folder that holds the package d3rlpy
        names = variants or D3RLPY_VARIANTS
        return [d3rlpy_variant(ref, dataset, v, updates, seed, batch_size) for v in names]
    ref = core.locate(reference, FILES, REPO, KNOWN)
    modules = core.load_modules(ref.path.parent, ["algos", "utils"])
    modules["algos"].device = modules["utils"].device = th.device("cpu")  # their globals (CUDA when there is one)
    return [authors_variant(ref, modules, dataset, v, updates, seed, batch_size) for v in variants or AUTHORS_VARIANTS]


def build_ours(dataset: tuple[Any, Any], updates: int, seed: int, batch_size: int, perturbation: bool = False) -> Any:
    """Our PLAS with ``vae_steps=updates``, on the CPU, eager."""
    from sb3_offline import PLAS

    transitions, env = dataset
    model = PLAS(
        "MlpPolicy",
        env,
        dataset=transitions,
        vae_steps=updates,
        perturbation=perturbation,
        batch_size=batch_size,
        seed=seed,
        device="cpu",
        cuda_graphs=False,
    )
    return core.quiet(model)


def layer_pairs(ours: Any, vae: Any, actor: Any, actor_target: Any, critic: Any, critic_target: Any) -> dict:
    """Our networks' layers matched with the reference's modules (VAE as a list: d3rlpy's encoder and decoder)."""
    return {
        "vae": core.linear_pairs("vae", [ours.vae], vae),
        **core.actor_critic_layers(ours, actor, actor_target, critic, critic_target),
    }


def authors_variant(
    ref: core.Reference, modules: dict, dataset: tuple, variant: str, updates: int, seed: int, batch_size: int
) -> core.ParityRow:
    """PLAS (``Latent``) or PLAS-P (``LatentPerturbation``) of the authors' ``algos.py`` against ours."""
    algos = modules["algos"]
    ours = build_ours(dataset, updates, seed, batch_size, perturbation=variant == "PLAS-P")
    obs_dim, action_dim = ours.observation_space.shape[0], ours.action_space.shape[0]
    latent_dim = ours.vae.latent_dim
    th.manual_seed(seed + 1)  # other initial weights: the copy below is what makes them equal
    vae = algos.VAEModule(obs_dim, action_dim, latent_dim, 1.0, vae_lr=ours.vae_learning_rate, hidden_size=750)
    kwargs = dict(discount=ours.gamma, tau=ours.tau, actor_lr=ours.actor_learning_rate, critic_lr=ours.learning_rate)
    kwargs.update(lmbda=ours.lmbda, max_latent_action=ours.max_latent_action)
    if variant == "PLAS-P":
        theirs = algos.LatentPerturbation(vae.vae, obs_dim, action_dim, latent_dim, 1.0, phi=ours.phi, **kwargs)
    else:
        theirs = algos.Latent(vae.vae, obs_dim, action_dim, latent_dim, 1.0, **kwargs)
    layers = layer_pairs(ours, [vae.vae], theirs.actor, theirs.actor_target, theirs.critic, theirs.critic_target)
    core.copy_weights(layers)
    arrays = core.buffer_arrays(ours)
    buffer = modules["utils"].ReplayBuffer(obs_dim, action_dim, max_size=len(arrays["actions"]))
    core.fill(buffer.add, arrays)

    def their_update(i: int) -> None:
        if i < updates:
            vae.train_step(arrays, batch_size)
        else:
            theirs.train(buffer, iterations=1, batch_size=batch_size)

    theirs_optimizers = {"vae": vae.vae_optimizer, "critic": theirs.critic_optimizer, "actor": theirs.actor_optimizer}
    measures = core.run_updates(
        core.our_side(ours, batch_size),
        core.Side("theirs", their_update, theirs_optimizers),
        layers,
        2 * updates,
        seed,
    )
    acted = core.acting_on_states(ours, theirs.select_action, arrays["observations"][:ACTING_STATES], seed)
    notes = (
        f"{updates} VAE + {updates} policy updates; none in the update; acting differs by {acted:.1e}. Their "
        "ReplayBuffer.load skips the dataset's last row (filled here with add(), every row)"
    )
    return core.make_row("PLAS", "" if variant == "PLAS" else "PLAS-P, perturbation", ref, updates, measures, notes)


# ------------------------------------------------------------------------------------------------------- d3rlpy
def import_d3rlpy(root: Path) -> None:
    """Import the package ``d3rlpy`` from the folder ``root`` (its checkout), before any other ``d3rlpy``."""
    loaded = sys.modules.get("d3rlpy")
    if loaded is not None and not Path(str(loaded.__file__)).resolve().is_relative_to(root.resolve()):
        raise core.ParityError(f"d3rlpy: expected it imported from {root}, found it imported from {loaded.__file__}")
    sys.path.insert(0, str(root))
    from benchmarks.d3rlpy_compat import d3rlpy_available

    if not d3rlpy_available():
        raise ImportError(f"d3rlpy in {root} does not import in this Python (are its dependencies installed?)")


def d3rlpy_variant(
    ref: core.Reference, dataset: tuple, variant: str, updates: int, seed: int, batch_size: int
) -> core.ParityRow:
    """One of :data:`D3RLPY_VARIANTS`: d3rlpy's PLAS (patched as the variant says) against ours."""
    import d3rlpy
    from d3rlpy.dataset import TransitionMiniBatch

    from benchmarks.d3rlpy_compat import make_d3rlpy

    ours = build_ours(dataset, updates, seed, batch_size)
    obs_dim, action_dim = ours.observation_space.shape[0], ours.action_space.shape[0]
    d3rlpy.seed(seed + 1)  # other initial weights: the copy below is what makes them equal
    d3 = make_d3rlpy("plas", "cpu", batch_size, plas_vae_steps=updates)
    d3.create_impl((obs_dim,), action_dim)
    m = d3.impl._modules
    at_creation = max(
        core.max_diff(p, q) for p, q in zip(m.policy.parameters(), m.targ_policy.parameters(), strict=True)
    )
    layers = layer_pairs(ours, [m.vae_encoder, m.vae_decoder], m.policy, m.targ_policy, m.q_funcs, m.targ_q_funcs)
    core.copy_weights(layers, skip=("actor_target",) if variant.endswith("own target init") else ())
    if variant != "as shipped":
        decoder = m.vae_decoder

        def tanh_forward(x: th.Tensor, latent: th.Tensor, with_squash: bool = True) -> th.Tensor:
            return th.tanh(decoder._fc(decoder._encoder(x, latent)))

        decoder.forward = tanh_forward  # type: ignore[method-assign]
    arrays = core.buffer_arrays(ours)

    def their_update(_: int) -> None:
        idx = th.randint(0, len(arrays["actions"]), (batch_size,)).numpy()  # the shared draw: ours samples the same
        column = {key: arrays[key][idx].reshape(batch_size, -1) for key in core.D4RL_KEYS}
        batch = TransitionMiniBatch(
            observations=column["observations"],
            actions=column["actions"],
            rewards=column["rewards"],
            next_observations=column["next_observations"],
            next_actions=column["actions"],  # unused by PLAS
            terminals=column["terminals"],
            intervals=np.ones((batch_size, 1), dtype=np.float32),
            transitions=[],
        )
        d3.update(batch)

    theirs_optimizers = {"vae": m.vae_optim.optim, "critic": m.critic_optim.optim, "actor": m.actor_optim.optim}
    measures = core.run_updates(
        core.our_side(ours, batch_size),
        core.Side("theirs", their_update, theirs_optimizers),
        layers,
        2 * updates,
        seed,
    )
    states = arrays["observations"][:ACTING_STATES]
    acted = core.acting_on_states(ours, lambda s: d3.impl.predict_best_action(th.as_tensor(s)), states, seed)
    notes = {
        "as shipped": "d3rlpy's VAE decoder has no tanh (VAEDecoder's with_squash flag is inverted: raw output "
        "under the default with_squash=True), and its target latent policy starts independent "
        f"(max |targ_policy - policy| at creation {at_creation:.1e}); we copy ours into it here",
        "tanh decoder": "decoder patched to end in tanh; target latent policy copied from ours",
        "tanh decoder + own target init": "decoder patched to end in tanh; d3rlpy's own (independent) initial "
        "target latent policy kept: differs from the first policy update on",
    }[variant]
    notes = f"{updates} VAE + {updates} policy updates; {notes}; acting differs by {acted:.1e}"
    return core.make_row("PLAS", f"d3rlpy {d3rlpy.__version__}, {variant}", ref, updates, measures, notes)
