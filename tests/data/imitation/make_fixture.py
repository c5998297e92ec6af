"""
Make the imitation files tests/test_interop.py reads, with imitation itself (run with a Python where
``imitation`` is installed; imitation 1.0.1 pins gymnasium~=0.29 and stable-baselines3~=2.2.1, so it lives in its
own environment, not sb3-offline's):

    python tests/data/imitation/make_fixture.py tests/data/imitation

Writes, from random-policy rollouts of InvertedPendulum-v4 cut at 6 steps (so both terminations and time limits
occur), made by ``imitation.data.rollout.generate_trajectories`` on an SB3 ``DummyVecEnv``:

- ``hf/``: ``imitation.data.serialize.save`` (a HuggingFace ``datasets`` folder, imitation's format since 1.0);
- ``trajectories.npz``: imitation's older ``.npz`` layout (what ``serialize.load`` still reads), checked here by
  reading it back with ``serialize.load``;
- ``expected.npz``: the same trajectories flattened, with each trajectory's ``TimeLimit.truncated`` (from its last
  info) and its imitation ``terminal`` flag, for the test to compare against.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import imitation
import numpy as np
from imitation.data import rollout, serialize
from imitation.data.wrappers import RolloutInfoWrapper
from stable_baselines3.common.vec_env import DummyVecEnv


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    venv = DummyVecEnv([lambda: RolloutInfoWrapper(gym.make("InvertedPendulum-v4", max_episode_steps=6))])
    venv.seed(0)
    rng = np.random.default_rng(0)
    trajectories = rollout.generate_trajectories(None, venv, rollout.make_sample_until(None, 12), rng=rng)
    cut = [bool(t.infos[-1]["TimeLimit.truncated"]) for t in trajectories]
    assert any(cut) and not all(cut), "the fixture needs both terminations and time limits"
    serialize.save(folder / "hf", trajectories)

    lengths = np.asarray([len(t.acts) for t in trajectories])
    infos = np.empty(int(lengths.sum()), dtype=object)
    infos[:] = [info for t in trajectories for info in t.infos]
    np.savez_compressed(
        folder / "trajectories.npz",
        obs=np.concatenate([t.obs for t in trajectories]),
        acts=np.concatenate([t.acts for t in trajectories]),
        rews=np.concatenate([t.rews for t in trajectories]),
        terminal=np.asarray([t.terminal for t in trajectories]),
        indices=np.cumsum(lengths)[:-1],
        infos=infos,
    )
    for loaded, original in zip(serialize.load(folder / "trajectories.npz"), trajectories, strict=True):
        assert np.array_equal(loaded.obs, original.obs) and np.array_equal(loaded.rews, original.rews)
    np.savez(
        folder / "expected.npz",
        observations=np.concatenate([t.obs[:-1] for t in trajectories]),
        next_observations=np.concatenate([t.obs[1:] for t in trajectories]),
        actions=np.concatenate([t.acts for t in trajectories]),
        rewards=np.concatenate([t.rews for t in trajectories]),
        lengths=lengths,
        time_limit=np.asarray(cut),
        terminal=np.asarray([t.terminal for t in trajectories]),
        imitation_version=np.asarray(imitation.__version__),
    )
    print(f"imitation {imitation.__version__}: {len(trajectories)} trajectories, lengths {lengths.tolist()}, cut {cut}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
