"""
BCQ against the authors' ``sfujim/BCQ`` ``continuous_BCQ/BCQ.py`` (``BCQ.train``, one iteration per update).

Both are built at the authors' sizes (perturbation model and critics 400-300, VAE 750-750, latent
``2 * action_dim``) with our defaults (lr 1e-3 for the three Adams, gamma 0.99, tau 0.005, lambda 0.75, Phi 0.05,
10 target samples); our weights are copied into theirs; the authors' ``utils.ReplayBuffer`` holds our buffer's rows
and samples its batches with ``np.random.randint``, our buffer with ``torch.randint``: both draws are shared, and so
are the VAE's ``randn_like``, the 10 prior samples per next state and the prior sample per state of the actor's
loss (``torch.randn``). Acting (Eq. 11: 100 candidates, argmax of ``Q_1``) is compared on the first states.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch as th

from benchmarks.parity import core

REPO = "sfujim/BCQ"
FILES = ("continuous_BCQ/BCQ.py", "BCQ.py")
#: blob hash of ``continuous_BCQ/BCQ.py`` -> a commit that holds it (the file is unchanged from c43a5b1 to 4876f7e)
KNOWN = {"6fca11144c7d817d6aa3f0b64507f4a183b46d65": "4876f7e"}
ACTING_STATES = 5


def run(
    reference: Path,
    updates: int = 10,
    seed: int = 0,
    data: str = "hopper",
    rows: int = 2000,
    batch_size: int = 100,
    **options: Any,
) -> list[core.ParityRow]:
    """
    ``updates`` BCQ updates on each side (see the module's docstring).

    :param reference: a checkout of ``sfujim/BCQ`` (or its ``continuous_BCQ/BCQ.py``)
    :param data: ``"hopper"`` (Hopper-v5 random data) or ``"synthetic"``, both on a Box with bounds [-1, 1]
    :param rows: transitions in the dataset
    :param batch_size: minibatch size (the authors' 100)
    """
    from sb3_offline import BCQ

    if options:
        raise TypeError(f"bcq.run: unexpected options {sorted(options)}")
    ref = core.locate(reference, FILES, REPO, KNOWN)
    modules = core.load_modules(ref.path.parent, ["BCQ", "utils"])
    transitions, env = core.make_dataset(data, rows, seed)
    ours = core.quiet(
        BCQ("MlpPolicy", env, dataset=transitions, batch_size=batch_size, seed=seed, device="cpu", cuda_graphs=False)
    )
    obs_dim, action_dim = ours.observation_space.shape[0], ours.action_space.shape[0]  # type: ignore[index]
    th.manual_seed(seed + 1)  # other initial weights: the copy below is what makes them equal
    theirs = modules["BCQ"].BCQ(
        obs_dim, action_dim, 1.0, "cpu", discount=ours.gamma, tau=ours.tau, lmbda=ours.lmbda, phi=ours.phi
    )
    layers = {
        "vae": core.linear_pairs("vae", [ours.vae], [theirs.vae]),
        **core.actor_critic_layers(ours, theirs.actor, theirs.actor_target, theirs.critic, theirs.critic_target),
    }
    core.copy_weights(layers)
    arrays = core.buffer_arrays(ours)
    buffer = modules["utils"].ReplayBuffer(obs_dim, action_dim, "cpu", max_size=len(arrays["actions"]))
    core.fill(buffer.add, arrays)
    theirs_optimizers = {
        "vae": theirs.vae_optimizer,
        "critic": theirs.critic_optimizer,
        "actor": theirs.actor_optimizer,
    }
    measures = core.run_updates(
        core.our_side(ours, batch_size),
        core.Side("theirs", lambda _: theirs.train(buffer, iterations=1, batch_size=batch_size), theirs_optimizers),
        layers,
        updates,
        seed,
    )
    acting = core.acting_on_states(ours, theirs.select_action, arrays["observations"][:ACTING_STATES], seed)
    notes = (
        f"none in the update; acting (Eq. 11, 100 candidates, same draws) differs by {acting:.1e} on "
        f"{ACTING_STATES} states. Ours computes the perturbation model's loss on decoded actions under no_grad "
        "(theirs back-propagates into the VAE's .grad, zeroed before its next step: same steps)"
    )
    return [core.make_row("BCQ", "", ref, updates, measures, notes)]
