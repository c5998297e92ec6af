"""
The golden cases: every algorithm (and FQE) trained for a few updates on a small fixed dataset, on CPU.

What a case records (``run_case``) is what the golden test compares with the file ``tests/golden/<case>.json``:
the logged training values of each of the first updates (``log_interval=1``, so every update is its own dump),
the actions ``predict`` gives for 32 fixed states (deterministic, and sampled after a fixed seed), and a SHA-256
of every tensor of the policy's ``state_dict`` after the updates (with its float64 sum, to say how far a change
moved it). The ``online`` cases add ``learn_online`` on the real env after the offline updates (the buffer's online
rows, mixed sampling, fine-tuning variants).

Regenerate a case on purpose (an intended change of an algorithm's numbers) with
``python tests/golden/cases.py CASE [CASE ...]`` (``--all`` for every case) and say why in the commit message.
The kind of CPU decides the rounding: ``--other-cpu`` records the unchanged code's cases on another kind
(``tests/golden/by_cpu``), so the test is exact there too; regenerating a case removes those records.
The datasets (``tests/golden/data``) are files, made once by ``--datasets``, so a change of a recorder cannot
move the cases.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.logger import KVWriter, Logger

GOLDEN_DIR = Path(__file__).resolve().parent
DATA_DIR = GOLDEN_DIR / "data"
BOX_DATASET = DATA_DIR / "inverted_pendulum.npz"
DICT_DATASET = DATA_DIR / "fetch_reach.npz"
#: the cases of an algorithm on a ``Discrete`` action space: CartPole-v1 (20-step limit), Box and Dict observations
DISCRETE_DATASET = DATA_DIR / "cartpole.npz"
DISCRETE_DICT_DATASET = DATA_DIR / "cartpole_dict.npz"
OFFLINE_UPDATES = 50
DICT_UPDATES = 10
SEED = 0

#: per algorithm, what differs from its defaults so that 50 updates reach every phase of its update
PHASE_KWARGS: dict[str, dict[str, Any]] = {
    "plas": {"vae_steps": 20},
    "cql": {"bc_steps": 20},
    "calql": {"bc_steps": 20},
    "discrete_cql": {"target_update_interval": 20},
}
#: other cases of an algorithm: ``<algo>-<variant>`` -> the algorithm and what differs from its defaults
VARIANT_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "discrete_cql-qrdqn": ("discrete_cql", {"base": "qrdqn", "target_update_interval": 20}),
}


class _Recorder(KVWriter):
    """Keeps every dump of the ``train/`` keys (one per update with ``log_interval=1``)."""

    def __init__(self) -> None:
        self.dumps: list[dict[str, float]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        values = {k: float(v) for k, v in key_values.items() if k.startswith("train/") and k != "train/n_updates"}
        if values:
            self.dumps.append(values)

    def close(self) -> None:
        pass


def box_env() -> gym.Env:
    """InvertedPendulum-v5 cut at 20 steps: terminations and time-limit truncations, action bounds +-3."""
    return gym.make("InvertedPendulum-v5", max_episode_steps=20)


def dict_env() -> gym.Env:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    return gym.make("FetchReach-v4")


def cartpole_env(dict_observations: bool = False, max_episode_steps: int | None = 20) -> gym.Env:
    """
    CartPole-v1 (a ``Discrete(2)`` action space) cut at ``max_episode_steps``; with ``dict_observations``, its
    observation as a ``Dict``: ``cart`` (position, velocity) and ``pole`` (angle, angular velocity).
    """
    env = gym.make("CartPole-v1", max_episode_steps=max_episode_steps)
    if not dict_observations:
        return env
    box = env.observation_space
    assert isinstance(box, gym.spaces.Box)
    halves = {"cart": slice(0, 2), "pole": slice(2, 4)}
    space = gym.spaces.Dict(
        {key: gym.spaces.Box(box.low[s], box.high[s], dtype=np.float32) for key, s in halves.items()}
    )
    return gym.wrappers.TransformObservation(env, lambda obs: {key: obs[s] for key, s in halves.items()}, space)


def make_discrete_datasets() -> None:
    """Record the two CartPole datasets once (random actions, seed 0) and write them as ``.npz`` files."""
    from sb3_offline.datasets import record_transitions, save_npz

    for dataset, dict_observations, steps in ((DISCRETE_DATASET, False, 600), (DISCRETE_DICT_DATASET, True, 120)):
        env = cartpole_env(dict_observations)
        save_npz(record_transitions(env, steps, seed=SEED), dataset)
        env.close()


def make_datasets() -> None:
    """Record the two datasets once (random actions, seed 0) and write them as ``.npz`` files."""
    from sb3_offline.datasets import record_transitions, save_npz

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = box_env()
    save_npz(record_transitions(env, 600, seed=SEED), BOX_DATASET)
    env.close()
    env = dict_env()
    save_npz(record_transitions(env, 120, seed=SEED), DICT_DATASET)
    env.close()


def _fixed_states(space: gym.spaces.Space, n: int = 32) -> Any:
    """``n`` fixed states (a seeded draw within a bounded range of the space's shape)."""
    rng = np.random.default_rng(1234)
    if isinstance(space, gym.spaces.Dict):
        return {key: rng.uniform(-1.0, 1.0, (n, *sub.shape)).astype(np.float32) for key, sub in space.spaces.items()}
    return rng.uniform(-1.0, 1.0, (n, *space.shape)).astype(np.float32)


def _checksums(module: th.nn.Module) -> dict[str, list[Any]]:
    """``name -> [sha256 of the tensor's bytes, float64 sum]`` for every tensor of ``module.state_dict()``."""
    sums: dict[str, list[Any]] = {}
    for name, tensor in module.state_dict().items():
        array = tensor.detach().cpu().contiguous().numpy()
        sums[name] = [hashlib.sha256(array.tobytes()).hexdigest(), float(array.astype(np.float64).sum())]
    return sums


def _actions(model: Any, states: Any) -> dict[str, list[float]]:
    deterministic, _ = model.predict(states, deterministic=True)
    th.manual_seed(SEED)
    sampled, _ = model.predict(states, deterministic=False)
    return {
        "deterministic": np.asarray(deterministic, dtype=np.float64).reshape(-1).tolist(),
        "sampled": np.asarray(sampled, dtype=np.float64).reshape(-1).tolist(),
    }


def _recorded(model: Any) -> _Recorder:
    recorder = _Recorder()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    return recorder


def _algorithm_case(
    name: str, observations: str, online: bool, variant: dict[str, Any] | None = None
) -> dict[str, Any]:
    from sb3_offline.algorithms import ALGOS
    from sb3_offline.common.discrete import DiscreteOfflineAlgorithm

    discrete = issubclass(ALGOS[name], DiscreteOfflineAlgorithm)
    if discrete:
        env = cartpole_env(dict_observations=observations == "dict")
        dataset = DISCRETE_DATASET if observations == "box" else DISCRETE_DICT_DATASET
    else:
        env = box_env() if observations == "box" else dict_env()
        dataset = BOX_DATASET if observations == "box" else DICT_DATASET
    # the Dict cases run 10 updates: their phases switch after 5
    kwargs = {k: v if observations == "box" else v // 4 for k, v in PHASE_KWARGS.get(name, {}).items()}
    kwargs.update(variant or {})
    if online:
        kwargs.update(buffer_size=500, learning_starts=10)
    model = ALGOS[name](
        "MlpPolicy" if observations == "box" else "MultiInputPolicy",
        env,
        dataset=str(dataset),
        seed=SEED,
        device="cpu",
        **kwargs,
    )
    recorder = _recorded(model)
    model.learn(OFFLINE_UPDATES if observations == "box" else DICT_UPDATES, log_interval=1)
    result: dict[str, Any] = {"losses": recorder.dumps}
    if online:
        model.learn_online(40, log_interval=1000)
        result["online_size"] = int(model.replay_buffer.size())
    result["actions"] = _actions(model, _fixed_states(env.observation_space))
    result["parameters"] = _checksums(model.policy)
    env.close()
    return result


def _fqe_case() -> dict[str, Any]:
    from sb3_offline.ope import FQE

    env = box_env()

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.clip(np.tanh(obs[..., :1] - 0.5 * obs[..., 1:2]) * 3.0, -3.0, 3.0).astype(np.float32)

    model = FQE(
        policy,
        dataset=str(BOX_DATASET),
        env=env,
        seed=SEED,
        device="cpu",
        vectorized=True,
        target_update_interval=20,
    )
    recorder = _recorded(model)
    model.learn(OFFLINE_UPDATES, log_interval=1)
    states = _fixed_states(env.observation_space)
    values = model.predict_value(states, policy(states))
    env.close()
    return {
        "losses": recorder.dumps,
        "values": np.asarray(values, dtype=np.float64).reshape(-1).tolist(),
        "parameters": _checksums(model.policy),
    }


def case_names() -> list[str]:
    from sb3_offline.algorithms import ALGOS

    names = []
    for algo in ALGOS:
        names += [f"{algo}-box", f"{algo}-dict", f"{algo}-online"]
    return [*names, *VARIANT_CASES, "fqe-box"]


def run_case(case: str) -> dict[str, Any]:
    """
    Run one case (``<algo>-box``, ``<algo>-dict``, ``<algo>-online`` or ``fqe-box``) on CPU, one torch thread; an
    algorithm on a ``Discrete`` action space runs on CartPole-v1 (``box``: its observation; ``dict``: a ``Dict``).
    """
    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        if case == "fqe-box":
            return _fqe_case()
        if case in VARIANT_CASES:
            algo, variant = VARIANT_CASES[case]
            return _algorithm_case(algo, "box", online=False, variant=variant)
        algo, kind = case.rsplit("-", 1)
        runners: dict[str, Callable[[], dict[str, Any]]] = {
            "box": lambda: _algorithm_case(algo, "box", online=False),
            "dict": lambda: _algorithm_case(algo, "dict", online=False),
            "online": lambda: _algorithm_case(algo, "box", online=True),
        }
        return runners[kind]()
    finally:
        th.set_num_threads(threads)


def golden_path(case: str) -> Path:
    return GOLDEN_DIR / f"{case}.json"


def other_cpu_path(case: str, capability: str) -> Path:
    """The same case's record on another kind of CPU (``--other-cpu``): ``tests/golden/by_cpu/<case>.<kind>.json``."""
    return GOLDEN_DIR / "by_cpu" / f"{case}.{capability}.json"


def _write(path: Path, result: dict[str, Any]) -> None:
    result["cpu_capability"] = th.backends.cpu.get_cpu_capability()
    result["torch"] = th.__version__
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def write_case(case: str) -> None:
    """Regenerate ``case`` on purpose; its records on other kinds of CPU (made by the old code) are removed."""
    _write(golden_path(case), run_case(case))
    for stale in (GOLDEN_DIR / "by_cpu").glob(f"{case}.*.json"):
        stale.unlink()


def write_other_cpu(case: str) -> Path | None:
    """
    Record ``case`` on this kind of CPU beside a golden file written on another kind, for the golden test to compare
    bit for bit here too. Run it only on the code that wrote the golden files (a float tolerance across kinds of CPU
    cannot tell rounding from a change after a few updates). ``None`` where the golden file is of this kind.
    """
    capability = th.backends.cpu.get_cpu_capability()
    if json.loads(golden_path(case).read_text())["cpu_capability"] == capability:
        return None
    path = other_cpu_path(case, capability)
    _write(path, run_case(case))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate golden files (on purpose: say why in the commit).")
    parser.add_argument("cases", nargs="*", help="case names (see --list)")
    parser.add_argument("--all", action="store_true", help="every case")
    parser.add_argument("--list", action="store_true", help="print the case names")
    parser.add_argument("--datasets", action="store_true", help="record the datasets again (moves every case)")
    parser.add_argument("--discrete-datasets", action="store_true", help="record the CartPole datasets again")
    parser.add_argument(
        "--other-cpu",
        action="store_true",
        help="record the cases on this kind of CPU beside golden files of another kind (tests/golden/by_cpu), "
        "without changing the golden files: only on the code that wrote them",
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(case_names()))
        return
    if args.datasets:
        make_datasets()
    if args.discrete_datasets:
        make_discrete_datasets()
    cases = case_names() if args.all else args.cases
    unknown = sorted(set(cases) - set(case_names()))
    if unknown:
        raise SystemExit(f"cases: expected names from --list, found {unknown}")
    for case in cases:
        if args.other_cpu:
            path = write_other_cpu(case)
            print(f"wrote by_cpu/{path.name}" if path else f"{case}: the golden file is of this CPU", file=sys.stderr)
        else:
            write_case(case)
            print(f"wrote {golden_path(case).name}", file=sys.stderr)


if __name__ == "__main__":
    main()
