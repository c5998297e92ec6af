"""
TD3+BC against the authors' ``sfujim/TD3_BC`` ``TD3_BC.py`` (``TD3_BC.train``, one call per update).

Both are built at the authors' sizes (actor and critics 256-256) with our defaults, the authors' (lr 3e-4, batch
256, gamma 0.99, tau 0.005, policy noise 0.2 clipped at 0.5, policy delay 2, alpha 2.5); our weights are copied into
theirs. The authors' ``utils.ReplayBuffer`` is filled as their ``main.py`` does (``convert_D4RL`` with our buffer's
rows, then ``normalize_states``: ``(s - mean) / (std + 1e-3)``), so their states are normalised by their code and
ours by our policy's features extractor. The batch indices (their ``np.random.randint``, our ``torch.randint``) and
the target smoothing noise (``torch.randn_like``) are shared. Acting compares our ``predict`` on raw states with
their ``select_action`` on states normalised with their statistics, as their ``eval_policy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch as th

from benchmarks.parity import core

REPO = "sfujim/TD3_BC"
FILES = ("TD3_BC.py",)
#: blob hash of ``TD3_BC.py`` -> a commit that holds it (unchanged from 76cdd14 to 8791ad7)
KNOWN = {"36e3ffa0990d90d1e75b9066f6894f9c478f35ea": "8791ad7"}
ACTING_STATES = 5


#: ``as shipped``: their ``normalize_states`` (statistics in float32 numpy); ``our statistics``: their states
#: normalised by their formula with our policy's mean and divisor (statistics computed in float64)
VARIANTS = ("as shipped", "our statistics")


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
    ``updates`` TD3+BC updates on each side (see the module's docstring; the actor steps on every second one).

    :param reference: a checkout of ``sfujim/TD3_BC`` (or its ``TD3_BC.py``)
    :param data: ``"hopper"`` (Hopper-v5 random data) or ``"synthetic"``, both on a Box with bounds [-1, 1]
    :param rows: transitions in the dataset
    :param batch_size: minibatch size (the authors' 256)
    :param variants: among :data:`VARIANTS`
    """
    if options:
        raise TypeError(f"td3bc.run: unexpected options {sorted(options)}")
    ref = core.locate(reference, FILES, REPO, KNOWN)
    modules = core.load_modules(ref.path.parent, ["TD3_BC", "utils"])
    modules["TD3_BC"].device = th.device("cpu")  # the module's global (CUDA when there is one)
    dataset = core.make_dataset(data, rows, seed)
    return [run_variant(ref, modules, dataset, variant, updates, seed, batch_size) for variant in variants]


def run_variant(
    ref: core.Reference,
    modules: dict[str, Any],
    dataset: tuple[Any, Any],
    variant: str,
    updates: int,
    seed: int,
    batch_size: int,
) -> core.ParityRow:
    """One variant (:data:`VARIANTS`): both sides built afresh, the same weights, ``updates`` updates."""
    from sb3_offline import TD3BC

    transitions, env = dataset
    ours = core.quiet(
        TD3BC("MlpPolicy", env, dataset=transitions, batch_size=batch_size, seed=seed, device="cpu", cuda_graphs=False)
    )
    obs_dim, action_dim = ours.observation_space.shape[0], ours.action_space.shape[0]  # type: ignore[index]
    th.manual_seed(seed + 1)  # other initial weights: the copy below is what makes them equal
    theirs = modules["TD3_BC"].TD3_BC(
        obs_dim,
        action_dim,
        1.0,
        discount=ours.gamma,
        tau=ours.tau,
        policy_noise=ours.target_policy_noise,
        noise_clip=ours.target_noise_clip,
        policy_freq=ours.policy_delay,
        alpha=ours.alpha,
    )
    layers = core.actor_critic_layers(ours, theirs.actor, theirs.actor_target, theirs.critic, theirs.critic_target)
    core.copy_weights(layers)
    arrays = core.buffer_arrays(ours)
    buffer = modules["utils"].ReplayBuffer(obs_dim, action_dim, max_size=1)
    buffer.convert_D4RL(arrays)
    standardizer = ours.actor.features_extractor.normalizer.standardizer()
    ours_mean, ours_std = standardizer.mean.numpy().reshape(1, -1), standardizer.divisor.numpy().reshape(1, -1)
    if variant == "our statistics":
        buffer.state, buffer.next_state = (
            (buffer.state - ours_mean) / ours_std,
            (buffer.next_state - ours_mean) / ours_std,
        )
        mean, std = ours_mean, ours_std
    else:
        mean, std = buffer.normalize_states()
    buffer.device = th.device("cpu")
    theirs_optimizers = {"critic": theirs.critic_optimizer, "actor": theirs.actor_optimizer}
    measures = core.run_updates(
        core.our_side(ours, batch_size),
        core.Side("theirs", lambda _: theirs.train(buffer, batch_size=batch_size), theirs_optimizers),
        layers,
        updates,
        seed,
    )
    states = arrays["observations"][:ACTING_STATES]
    acting = core.acting_on_states(ours, lambda state: theirs.select_action((state - mean) / std), states, seed)
    notes = f"acting (raw states; theirs normalised as their eval_policy) differs by {acting:.1e}"
    if variant == "as shipped":
        normalised = ours.actor.features_extractor(th.as_tensor(arrays["observations"]))
        notes = (
            f"the state statistics: theirs in float32 numpy, ours in float64 (mean differs by "
            f"{core.max_diff(mean, ours_mean):.1e}, std + 1e-3 by {core.max_diff(std, ours_std):.1e}; normalised "
            f"states by {core.max_diff(buffer.state, normalised):.1e}); {notes}"
        )
    return core.make_row("TD3+BC", variant, ref, updates, measures, notes)
