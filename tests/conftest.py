"""
Shared fixtures: small datasets recorded from real environments (session-scoped, never mutate them), envs that
count what is done to them, and every algorithm's tiny settings (``TINY``, used through the ``tiny_model`` fixture).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from discrete_data import cartpole_transitions as record_cartpole
from stable_baselines3.common.logger import KVWriter, Logger

from sb3_offline.algorithms import ALGOS
from sb3_offline.common.discrete import DiscreteOfflineAlgorithm
from sb3_offline.datasets import (
    PendulumSwingUp,
    Transitions,
    pendulum_imperfect_demonstrations,
    record_transitions,
    save_hdf5,
)
from sb3_offline.evaluation import evaluate, evaluate_callable

#: gradient steps of a first phase in ``TINY`` (PLAS's VAE pre-training, CQL's and Cal-QL's behaviour cloning)
PHASE_STEPS = 8
#: by ``sb3_offline.algorithms.ALGOS`` name: tiny networks, and a first phase of ``PHASE_STEPS`` updates, so that
#: ``2 * PHASE_STEPS`` gradient steps run every kind of update of the algorithm; a new algorithm is added here
TINY: dict[str, dict[str, Any]] = {
    "awac": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16]))),
    "batch_ddpg": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "bc": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "bcq": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16]))),
    "calql": dict(bc_steps=PHASE_STEPS, policy_kwargs=dict(net_arch=[16, 16])),
    "cql": dict(bc_steps=PHASE_STEPS, policy_kwargs=dict(net_arch=[16, 16])),
    # the target copied after update 1 and every 4: both kinds of update several times in 2 * PHASE_STEPS
    "discrete_cql": dict(target_update_interval=PHASE_STEPS // 2, policy_kwargs=dict(net_arch=[16, 16])),
    "discrete_iql": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "iql": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "lapo": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16], vf=[16, 16]))),
    "plas": dict(vae_steps=PHASE_STEPS, policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16]))),
    "td3bc": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "discrete_bc": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "discrete_bcq": dict(policy_kwargs=dict(net_arch=[16, 16])),
    "sac_n": dict(n_critics=3, policy_kwargs=dict(net_arch=[16, 16])),
    "edac": dict(n_critics=3, policy_kwargs=dict(net_arch=[16, 16])),
    "rebrac": dict(policy_kwargs=dict(net_arch=[16, 16])),
}
#: the algorithms on a ``Discrete`` action space (tested on CartPole-v1), and those on a ``Box`` (Pendulum-v1)
DISCRETE_NAMES = sorted(name for name, algo in ALGOS.items() if issubclass(algo, DiscreteOfflineAlgorithm))
BOX_NAMES = sorted(set(ALGOS) - set(DISCRETE_NAMES))


def env_id_of(name: str) -> str:
    """The env the shared tests run algorithm ``name`` on: CartPole-v1 for a ``Discrete`` one, else Pendulum-v1."""
    return "CartPole-v1" if name in DISCRETE_NAMES else "Pendulum-v1"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the README's ``-n auto``) each worker is one process per core: one torch thread each."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        th.set_num_threads(1)


# ------------------------------------------------------------------------------------------ the temp dir
#: The machine's temp dir; the suite writes nothing there but pytest's own ``pytest-of-<user>`` (see ``temp_dir``).
REAL_TEMP_DIR = os.path.realpath(tempfile.gettempdir())
#: The entries this process created at the top of ``REAL_TEMP_DIR`` (recorded by ``_record_temp_writes``).
TEMP_WRITES: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _record_temp_writes(event: str, args: tuple[Any, ...]) -> None:
    """An audit hook: a file opened for writing or a folder made at the top of the machine's temp dir."""
    if event != "open" and event != "os.mkdir":
        return
    path, mode = args[0], args[1]
    if not isinstance(path, str | bytes | os.PathLike):  # a file descriptor
        return
    if event == "open" and not (any(c in mode for c in "wax+") if isinstance(mode, str) else args[2] & _WRITE_FLAGS):
        return
    path = os.path.abspath(os.fsdecode(path))
    if event == "os.mkdir" and os.path.exists(path):  # os.makedirs(..., exist_ok=True) on a folder that is there
        return
    if os.path.dirname(path) == REAL_TEMP_DIR and not os.path.basename(path).startswith("pytest-of-"):
        TEMP_WRITES.append(path)


@pytest.fixture(scope="session", autouse=True)
def temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """
    The suite leaves nothing in the machine's temp dir: what libraries put there (SB3's logger folders
    ``SB3-<date>`` of models the tests train, gymnasium-robotics' ``ant_maze.xml``) goes to a folder of pytest's
    ``basetemp`` instead (``tempfile.tempdir`` here, ``TMPDIR`` for subprocesses), and any file or folder this
    process still makes at the top of the temp dir fails the session (an audit hook records them; each xdist
    worker checks itself, and other processes on the machine are not counted).
    """
    folder = tmp_path_factory.mktemp("tempdir")
    saved, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
    if not getattr(sys, "_sb3_offline_temp_hook", False):  # audit hooks cannot be removed: one per process
        sys.addaudithook(_record_temp_writes)
        sys._sb3_offline_temp_hook = True  # type: ignore[attr-defined]
    TEMP_WRITES.clear()
    yield folder
    tempfile.tempdir = saved
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env
    if TEMP_WRITES:
        pytest.fail(f"the tests wrote into the temp dir {REAL_TEMP_DIR}: {sorted(set(TEMP_WRITES))}")


@pytest.fixture(autouse=True)
def minari_datasets_path(tmp_path, monkeypatch):
    """Every test gets its own Minari folder, so no test reads or writes ~/.minari."""
    path = tmp_path / "minari_datasets"
    path.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    # trained behaviour agents (sb3_offline.collect) are cached per test too, never in ~/.cache
    monkeypatch.setenv("SB3_OFFLINE_AGENTS", str(tmp_path / "agents"))
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread: small networks on a shared CPU run several times faster than with two."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ datasets
@pytest.fixture(scope="session")
def pendulum_transitions() -> Transitions:
    """1000 random-policy steps of Pendulum-v1: five 200-step episodes, all truncated, no terminations."""
    transitions = record_transitions("Pendulum-v1", 1000, seed=0)
    assert len(transitions) == 1000
    assert not transitions.terminations.any()
    assert transitions.truncations.sum() == 5
    return transitions


@pytest.fixture(scope="session")
def pendulum_file(pendulum_transitions: Transitions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pendulum_transitions`` as a D4RL-style HDF5 file: a dataset a checkpoint refers to by its path."""
    return save_hdf5(pendulum_transitions, tmp_path_factory.mktemp("data") / "pendulum.hdf5")


@pytest.fixture(scope="session")
def cartpole_transitions() -> Transitions:
    """1000 steps of CartPole-v1 under a scripted controller with 30% random actions (``tests/discrete_data.py``)."""
    return record_cartpole(1000, seed=0)


@pytest.fixture(scope="session")
def cartpole_file(cartpole_transitions: Transitions, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cartpole_transitions`` as a D4RL-style HDF5 file."""
    return save_hdf5(cartpole_transitions, tmp_path_factory.mktemp("data") / "cartpole.hdf5")


@pytest.fixture
def algo_transitions(name: str, request: pytest.FixtureRequest) -> Transitions:
    """The transitions of algorithm ``name``'s env (:func:`env_id_of`), for tests parametrized over ``name``."""
    return request.getfixturevalue("cartpole_transitions" if name in DISCRETE_NAMES else "pendulum_transitions")


@pytest.fixture
def algo_file(name: str, request: pytest.FixtureRequest) -> Path:
    """:func:`algo_transitions` as an HDF5 file."""
    return request.getfixturevalue("cartpole_file" if name in DISCRETE_NAMES else "pendulum_file")


@pytest.fixture(scope="session")
def imperfect_pendulum() -> Transitions:
    """The BCQ paper's imperfect demonstrations on Pendulum-v1 (a noisy swing-up controller), 5000 steps."""
    return pendulum_imperfect_demonstrations(5000, seed=0)


@pytest.fixture(scope="session")
def expert_pendulum() -> Transitions:
    """The scripted swing-up controller without noise (the BCQ paper's imitation setting), 3000 steps."""
    return record_transitions("Pendulum-v1", 3000, policy=PendulumSwingUp(), seed=0)


@pytest.fixture(scope="session")
def inverted_transitions() -> Transitions:
    """InvertedPendulum-v5 with a 20-step limit: random actions mostly terminate, some episodes truncate."""
    env = gym.make("InvertedPendulum-v5", max_episode_steps=20)
    try:
        transitions = record_transitions(env, 600, seed=0)
    finally:
        env.close()
    assert transitions.terminations.any()
    assert transitions.truncations.any()
    assert not (transitions.terminations & transitions.truncations).any()
    # at least one truncation that is not the end of the data (a real time-limit cut mid-dataset)
    assert np.flatnonzero(transitions.truncations)[0] < len(transitions) - 1
    return transitions


@pytest.fixture(scope="session")
def fetch_transitions() -> Transitions:
    """120 random steps of FetchReach-v4 (Dict observations, 50-step time limit)."""
    env = make_fetch_reach()
    try:
        transitions = record_transitions(env, 120, seed=0)
    finally:
        env.close()
    assert isinstance(transitions.observations, dict)
    assert set(transitions.observations) == {"observation", "achieved_goal", "desired_goal"}
    assert transitions.truncations.sum() == 3  # steps 49, 99 and the closing row 119
    return transitions


# ---------------------------------------------------------------------------------------------- envs
def make_fetch_reach() -> gym.Env:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    return gym.make("FetchReach-v4")


@pytest.fixture
def pendulum_env() -> Iterator[gym.Env]:
    env = gym.make("Pendulum-v1")
    yield env
    env.close()


@pytest.fixture
def fetch_env() -> Iterator[gym.Env]:
    """FetchReach-v4 (gymnasium-robotics): Dict observations with goals, a Box of 4 actions."""
    env = make_fetch_reach()
    yield env
    env.close()


@pytest.fixture(scope="session")
def fetch_env_spaces(fetch_transitions):
    """(observation_space, action_space) of FetchReach-v4."""
    env = make_fetch_reach()
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


@pytest.fixture(scope="session")
def inverted_env_spaces():
    env = gym.make("InvertedPendulum-v5")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


class CountingWrapper(gym.Wrapper):
    """Counts every step and reset made on the env it wraps."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0
        self.resets = 0

    def step(self, action: Any) -> Any:
        self.steps += 1
        return super().step(action)

    def reset(self, **kwargs: Any) -> Any:
        self.resets += 1
        return super().reset(**kwargs)


@pytest.fixture
def counting_env() -> Callable[..., CountingWrapper]:
    """``counting_env(env_id, **make_kwargs)``: ``gym.make``'s env wrapped to count its ``steps`` and ``resets``."""
    return lambda env_id="Pendulum-v1", **kwargs: CountingWrapper(gym.make(env_id, **kwargs))


# -------------------------------------------------------------------------------------------- models
@pytest.fixture(scope="session")
def tiny_model() -> Callable[..., Any]:
    """
    ``tiny_model(name, dataset, env="Pendulum-v1", policy="MlpPolicy", **kwargs)``: the algorithm ``name`` of
    ``ALGOS`` with its ``TINY`` settings, ``batch_size=32``, on the CPU, seed 0; ``kwargs`` override any of them.
    """

    def make(name: str, dataset: Any, env: Any = "Pendulum-v1", policy: str = "MlpPolicy", **kwargs: Any) -> Any:
        if name not in TINY:
            raise KeyError(f"{name}: expected an entry in tests/conftest.py's TINY (tiny networks, short phases)")
        options = {"batch_size": 32, "device": "cpu", "seed": 0, **TINY[name], **kwargs}
        return ALGOS[name](policy, env, dataset=dataset, **options)

    return make


@pytest.fixture(scope="session")
def pendulum_return() -> Callable[[Any], float]:
    """
    ``pendulum_return(model)``: the mean return of ``model``'s deterministic actions over the learning tests' 10
    Pendulum-v1 episodes (episode ``k`` reset with seed ``100 + k``, the same start states on every machine);
    ``pendulum_return(None)``: a uniformly random policy's on the same episodes (-1284), the floor of the tests.
    """

    def mean_return(model: Any) -> float:
        if model is None:
            return evaluate_callable(gym.make("Pendulum-v1"), None, n_episodes=10, seed=100)[0]
        return evaluate(model, "Pendulum-v1", n_episodes=10, seed=100).mean_return

    return mean_return


class MemoryWriter(KVWriter):
    """Keeps every dump of the SB3 logger in memory, with the step it was dumped at (``"_step"``)."""

    def __init__(self) -> None:
        self.dumps: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append({**key_values, "_step": step})

    def close(self) -> None:
        pass


@pytest.fixture
def memory_logger() -> Callable[[Any], MemoryWriter]:
    """``memory_logger(model)``: the model logs to memory from now on; returns the writer holding its dumps."""

    def attach(model: Any) -> MemoryWriter:
        writer = MemoryWriter()
        model.set_logger(Logger(folder=None, output_formats=[writer]))
        return writer

    return attach


# ------------------------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """
    One local Ray session for the whole run (``ray.init(num_cpus=2)``), its files in pytest's ``basetemp`` (a
    short path: Ray's unix sockets allow 107 characters), shut down at the end; skipped where Ray is not installed.
    """
    ray = pytest.importorskip("ray")
    folder = tmp_path_factory.mktemp("r")
    ray.init(num_cpus=2, _temp_dir=str(folder), include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
