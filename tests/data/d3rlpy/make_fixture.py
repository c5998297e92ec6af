"""
Make the d3rlpy file tests/test_interop.py reads, with d3rlpy itself (run with a Python where ``d3rlpy`` is
installed; d3rlpy 2.8.1 pins gymnasium==1.0.0, so it may live in its own environment):

    python tests/data/d3rlpy/make_fixture.py tests/data/d3rlpy

- ``collected.h5``: 60 steps of d3rlpy's ``RandomPolicy`` on InvertedPendulum-v5 cut at 5 steps, collected
  into an ``InfiniteBuffer`` by d3rlpy's own ``algo.collect`` and written by ``ReplayBuffer.dump``;
- ``expected.npz``: every transition d3rlpy's ``BasicTransitionPicker`` gives for those episodes, in order, with
  whether it is the last of its episode and whether that episode terminated.
"""

from __future__ import annotations

import sys
from pathlib import Path

import d3rlpy
import gymnasium as gym
import numpy as np
from d3rlpy.dataset import BasicTransitionPicker, InfiniteBuffer, ReplayBuffer


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    d3rlpy.seed(0)
    env = gym.make("InvertedPendulum-v5", max_episode_steps=5)
    env.reset(seed=0)
    algo = d3rlpy.algos.RandomPolicyConfig(action_scaler=d3rlpy.preprocessing.MinMaxActionScaler()).create()
    algo.build_with_env(env)
    buffer = ReplayBuffer(InfiniteBuffer(), env=env)
    algo.collect(env, buffer, n_steps=60, show_progress=False)
    with open(folder / "collected.h5", "w+b") as f:
        buffer.dump(f)
    picker = BasicTransitionPicker()
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "next", "terminal", "last", "terminated")}
    for episode in buffer.episodes:
        for index in range(episode.transition_count):
            t = picker(episode, index)
            rows["obs"].append(t.observation)
            rows["act"].append(t.action)
            rows["rew"].append(float(t.reward[0]))
            rows["next"].append(t.next_observation)
            rows["terminal"].append(t.terminal)
            rows["last"].append(index == episode.transition_count - 1)
            rows["terminated"].append(bool(episode.terminated))
    np.savez(
        folder / "expected.npz",
        observations=np.asarray(rows["obs"]),
        actions=np.asarray(rows["act"]),
        rewards=np.asarray(rows["rew"], dtype=np.float32),
        next_observations=np.asarray(rows["next"]),
        terminal=np.asarray(rows["terminal"]),
        last=np.asarray(rows["last"]),
        terminated=np.asarray(rows["terminated"]),
        d3rlpy_version=np.asarray(d3rlpy.__version__),
    )
    episodes = [(e.size(), bool(e.terminated)) for e in buffer.episodes]
    print(f"d3rlpy {d3rlpy.__version__}: {buffer.transition_count} transitions, episodes (size, terminated) {episodes}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
