"""
BatchDDPG against the BCQ authors' DDPG (``sfujim/BCQ``): ``DDPG.py`` of commit 115f77d (the 2018 DDPG of the
BCQ paper's experiments, which our defaults follow) or ``continuous_BCQ/DDPG.py`` of later commits (4876f7e).

The file found under ``--reference`` says which: the 2018 one (a checkout at 115f77d) has the critic's action at
its second layer, Adam lr 1e-4 for the actor and 1e-3 with weight decay 1e-2 for the critic, and trains
``iterations`` updates per call; the later one (a checkout at 4876f7e) has the action at the critic's input and
plain Adam (lr 1e-3) for both, so ours is built with ``critic_action_at_input=True``, ``critic_weight_decay=0`` and
``actor_learning_rate=1e-3`` against it. Both sides at 400-300, our weights copied into theirs; each file's own
``utils.ReplayBuffer`` holds our buffer's rows, and its ``np.random.randint`` draws the same indices as our
``torch.randint``. Acting (the deterministic actor) is compared on the first states.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

from benchmarks.parity import core

REPO = "sfujim/BCQ"
FILES = ("DDPG.py", "continuous_BCQ/DDPG.py")
#: blob hash -> a commit that holds it: the 2018 ``DDPG.py`` (115f77d to 05c07fc); the later one (254cfc8 on,
#: ``continuous_BCQ/DDPG.py`` from c43a5b1 to 4876f7e)
KNOWN = {"00b3dbad18ca145824b741a867beca2e90e2d89b": "115f77d", "a3af3744d0c537c2ecd3fb2d7f868b46434fda7d": "4876f7e"}
#: our arguments that give the later ``DDPG.py``'s networks and optimizers
LATER_FILE_SETTINGS: dict[str, Any] = dict(
    actor_learning_rate=1e-3, critic_weight_decay=0.0, policy_kwargs=dict(critic_action_at_input=True)
)
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
    ``updates`` BatchDDPG updates on each side (see the module's docstring).

    :param reference: a checkout of ``sfujim/BCQ`` at 115f77d (the 2018 ``DDPG.py``) or later
        (``continuous_BCQ/DDPG.py``), or the file itself
    :param data: ``"hopper"`` (Hopper-v5 random data) or ``"synthetic"``, both on a Box with bounds [-1, 1]
    :param rows: transitions in the dataset
    :param batch_size: minibatch size (the authors' 100)
    """
    from sb3_offline import BatchDDPG

    if options:
        raise TypeError(f"batch_ddpg.run: unexpected options {sorted(options)}")
    ref = core.locate(reference, FILES, REPO, KNOWN)
    modules = core.load_modules(ref.path.parent, ["DDPG", "utils"])
    ddpg = modules["DDPG"]
    later = "device" in inspect.signature(ddpg.DDPG.__init__).parameters
    ddpg.device = th.device("cpu")  # the 2018 module's global (CUDA when there is one)
    transitions, env = core.make_dataset(data, rows, seed)
    settings = LATER_FILE_SETTINGS if later else {}
    ours = core.quiet(
        BatchDDPG(
            "MlpPolicy",
            env,
            dataset=transitions,
            batch_size=batch_size,
            seed=seed,
            device="cpu",
            cuda_graphs=False,
            **settings,
        )
    )
    obs_dim, action_dim = ours.observation_space.shape[0], ours.action_space.shape[0]  # type: ignore[index]
    th.manual_seed(seed + 1)  # other initial weights: the copy below is what makes them equal
    if later:
        theirs = ddpg.DDPG(obs_dim, action_dim, 1.0, "cpu", discount=ours.gamma, tau=ours.tau)
    else:
        theirs = ddpg.DDPG(obs_dim, action_dim, 1.0)
    layers = core.actor_critic_layers(ours, theirs.actor, theirs.actor_target, theirs.critic, theirs.critic_target)
    core.copy_weights(layers)
    arrays = core.buffer_arrays(ours)
    theirs_optimizers = {"critic": theirs.critic_optimizer, "actor": theirs.actor_optimizer}
    their_update = their_updates(modules["utils"], theirs, arrays, later, batch_size, ours.gamma, ours.tau)
    measures = core.run_updates(
        core.our_side(ours, batch_size), core.Side("theirs", their_update, theirs_optimizers), layers, updates, seed
    )
    acting = core.acting_on_states(ours, theirs.select_action, arrays["observations"][:ACTING_STATES], seed)
    notes = f"none in the update; acting differs by {acting:.1e} on {ACTING_STATES} states"
    if later:
        notes = (
            "ours with critic_action_at_input=True, critic_weight_decay=0, actor_learning_rate=1e-3 (this file's); "
            + notes
        )
    return [core.make_row("BatchDDPG", "later DDPG.py" if later else "2018 DDPG.py", ref, updates, measures, notes)]


def their_updates(
    utils: Any, theirs: Any, arrays: dict[str, np.ndarray], later: bool, batch_size: int, gamma: float, tau: float
) -> Callable[[int], None]:
    """``update(i)``: one update of the reference's ``DDPG.train`` on its own ``utils.ReplayBuffer`` of our rows."""
    if later:
        (rows, obs_dim), action_dim = arrays["observations"].shape, arrays["actions"].shape[1]
        buffer = utils.ReplayBuffer(obs_dim, action_dim, "cpu", max_size=rows)
        core.fill(buffer.add, arrays)
        return lambda _: theirs.train(buffer, batch_size=batch_size)
    buffer = utils.ReplayBuffer()
    for s, a, s2, r, d in zip(*(arrays[k] for k in core.D4RL_KEYS), strict=True):
        # the 2018 buffer's order, (s, s', a, r, done); arrays, which its np.array(x, copy=False) takes in NumPy 2
        buffer.add((s, s2, a, np.asarray(r), np.asarray(d, dtype=np.float32)))
    return lambda _: theirs.train(buffer, iterations=1, batch_size=batch_size, discount=gamma, tau=tau)
