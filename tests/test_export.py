"""
Exported policies (``sb3_offline.export``, ``sb3-offline export``): the TorchScript and ONNX graphs of every
algorithm in ``sb3_offline.algorithms.ALGOS`` give ``predict(deterministic=True)``'s actions on 1,000 observations,
loaded in a separate process where importing sb3_offline (or SB3) fails.

Every model is trained a few gradient steps with tiny networks on 300 Pendulum steps (a new algorithm gets 16-16
networks unless ``TINY`` names it); every file is written first, then one subprocess runs them all.

BCQ samples its VAE's prior when acting; its comparisons are made fair in three ways:

- TorchScript, sampling inside: the graph draws from torch's global generator as ``predict`` does, so seeding both
  with ``SEED`` gives the same draws and the same actions;
- both formats with ``noise_input=True``: the draws ``predict`` made (replayed by seeding torch again) are fed in
  as the ``noise`` input, so the actions must be the same;
- ONNX, sampling inside (onnxruntime's own generator): the same distribution, not the same draws; ``Q1`` of the
  chosen actions must agree with ``Q1`` of ``predict``'s on average (within 4 standard errors over the 1,000
  states) and be above ``Q1`` of one unselected candidate per state (the argmax is there).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_offline.algorithms import ALGOS
from sb3_offline.cli import main as cli_main
from sb3_offline.common.critics import q1_values
from sb3_offline.datasets import record_transitions
from sb3_offline.exporting import ExportablePolicy, export, read_metadata

HAS_ONNX = importlib.util.find_spec("onnx") is not None
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_onnxruntime = pytest.mark.skipif(
    not (HAS_ONNX and HAS_ORT), reason="ONNX export needs onnx and onnxruntime: pip install 'sb3-offline[export]'"
)

SEED = 7
N_OBSERVATIONS = 1000
STEPS = 12
ATOL = 1e-5
#: onnxruntime's CPU kernels (MLAS GEMM, its own tanh) differ from torch's in the last bits of each layer; over a few
#: layers and a tanh-squashed mean that reaches a few 1e-5 on actions of magnitude 1 (seen: 4.2e-5 on the Fetch policy)
ONNX_ATOL = 1e-4
TINY: dict[str, dict[str, Any]] = {  # by ALGOS name: tiny networks, every phase of the update within STEPS
    "awac": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16]))),
    "bcq": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16]))),
    "calql": dict(bc_steps=4, policy_kwargs=dict(net_arch=[16, 16])),
    "cql": dict(bc_steps=4, policy_kwargs=dict(net_arch=[16, 16])),
    "lapo": dict(policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16], vf=[16, 16]))),
    "plas": dict(vae_steps=4, policy_kwargs=dict(net_arch=dict(pi=[16, 16], qf=[16, 16], vae=[16, 16]))),
}
DEFAULT_TINY: dict[str, Any] = dict(policy_kwargs=dict(net_arch=[16, 16]))
DICT_CASE = "lapo"  # on FetchReach: observation normaliser per key, action de-normalisation, decoding
CLI_CASE = "td3bc"  # through a saved .zip: the observation normaliser must come back from the checkpoint
BLOCKED = ("sb3_offline", "stable_baselines3")

# Runs every exported file; importing sb3_offline or SB3 here raises, and none may be loaded at the end.
LOADER = """
import json, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} imported while running an exported policy")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
import torch

jobs = json.load(open(sys.argv[1]))
outputs, onnx_inputs = {}, {}
for job in jobs:
    inputs = dict(np.load(job["inputs"]))
    if job["format"] == "torchscript":
        module = torch.jit.load(job["path"])
        torch.manual_seed(job["seed"])
        with torch.no_grad():
            actions = module(*[torch.from_numpy(inputs[name]) for name in job["input_names"]]).numpy()
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(job["path"], providers=["CPUExecutionProvider"])
        onnx_inputs[job["id"]] = [[i.name, [str(d) for d in i.shape]] for i in session.get_inputs()]
        actions = session.run(["action"], {i.name: inputs[i.name] for i in session.get_inputs()})[0]
    outputs[job["id"]] = actions
np.savez(sys.argv[2], **outputs)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"loaded": loaded, "onnx_inputs": onnx_inputs}))
""".replace("BLOCKED", repr(BLOCKED))


def _observations(space: gym.Space, n: int, seed: int) -> Any:
    """``n`` raw observations sampled from ``space``, float32 (a dict of arrays for a ``Dict``)."""
    space.seed(seed)
    rows = [space.sample() for _ in range(n)]
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([row[key] for row in rows]).astype(np.float32) for key in space.spaces}
    return np.stack(rows).astype(np.float32)


def _named(observations: Any) -> dict[str, np.ndarray]:
    return dict(observations) if isinstance(observations, dict) else {"observation": observations}


def _predict(model: Any, observations: Any, seed: int = SEED) -> np.ndarray:
    th.manual_seed(seed)
    return model.predict(observations, deterministic=True)[0]


class Exports:
    """Everything written and expected; filled by the module fixture, read by the tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.jobs: list[dict[str, Any]] = []
        self.expected: dict[str, np.ndarray] = {}
        self.errors: dict[str, str] = {}
        self.models: dict[str, Any] = {}
        self.observations: dict[str, Any] = {}
        self.outputs: dict[str, np.ndarray] = {}
        self.loader: dict[str, Any] = {}
        self.cli_output = ""

    def add(
        self,
        job_id: str,
        path: Path,
        inputs: dict[str, np.ndarray],
        expected: np.ndarray | None,
        seed: int = SEED,
    ) -> None:
        inputs_path = self.folder / f"{job_id.replace('/', '_')}_inputs.npz"
        np.savez(inputs_path, **inputs)
        self.jobs.append(
            dict(
                id=job_id,
                path=str(path),
                format="onnx" if path.suffix == ".onnx" else "torchscript",
                inputs=str(inputs_path),
                input_names=list(inputs),
                seed=seed,
            )
        )
        if expected is not None:
            self.expected[job_id] = expected

    def export_both(self, job_id: str, model: Any, observations: Any, expected: np.ndarray, **kwargs: Any) -> None:
        """Export ``model`` in both formats; jobs on the full batch and (deterministic graphs) on one row."""
        inputs = _named(observations)
        if kwargs.get("noise_input"):
            inputs["noise"] = kwargs.pop("noise")
        for suffix in (".pt", ".onnx") if HAS_ONNX else (".pt",):
            path = export(model, self.folder / f"{job_id}{suffix}", **kwargs)
            key = f"{job_id}{suffix}"
            self.add(key, path, inputs, expected)
            if not _samples_inside(model, kwargs):
                self.add(f"{key}/one row", path, {k: v[:1] for k, v in inputs.items()}, expected[:1])


def _samples_inside(model: Any, kwargs: dict[str, Any]) -> bool:
    return hasattr(model.policy, "acting_noise_shape") and not kwargs.get("noise_input")


def _train(name: str, env: Any, dataset: Any) -> Any:
    kwargs = {"batch_size": 32, **TINY.get(name, DEFAULT_TINY)}
    policy = "MultiInputPolicy" if isinstance(dataset.observations, dict) else "MlpPolicy"
    model = ALGOS[name](policy, env, dataset=dataset, seed=0, device="cpu", **kwargs)
    model.learn(STEPS, log_interval=None)
    return model


def _export_algorithm(exports: Exports, name: str, dataset: Any) -> None:
    model = _train(name, "Pendulum-v1", dataset)
    exports.models[name] = model
    observations = _observations(model.observation_space, N_OBSERVATIONS, seed=1)
    exports.observations[name] = observations
    expected = _predict(model, observations)
    exports.export_both(name, model, observations, expected)
    if hasattr(model.policy, "acting_noise_shape"):
        # the draws predict made: the same seed replays them (its only draw is one randn of batch * n rows)
        shape = tuple(model.policy.acting_noise_shape())
        th.manual_seed(SEED)
        noise = th.randn(N_OBSERVATIONS * shape[0], *shape[1:]).reshape(N_OBSERVATIONS, *shape).numpy()
        exports.export_both(f"{name}-noise", model, observations, expected, noise_input=True, noise=noise)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, fetch_transitions) -> Exports:
    exports = Exports(tmp_path_factory.mktemp("export"))
    pendulum = record_transitions("Pendulum-v1", 300, seed=0)
    for name in sorted(ALGOS):
        try:
            _export_algorithm(exports, name, pendulum)
        except Exception:  # reported by that algorithm's tests, so the others still run
            exports.errors[name] = traceback.format_exc()

    # Dict observations: one input per key
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FetchReach-v4")
    model = _train(DICT_CASE, env, fetch_transitions)
    observations = _observations(env.observation_space, N_OBSERVATIONS, seed=2)
    exports.models["dict"], exports.observations["dict"] = model, observations
    exports.export_both("dict", model, observations, _predict(model, observations))
    env.close()

    # the command line, on a saved checkpoint
    checkpoint = exports.folder / f"{CLI_CASE}.zip"
    trained = _train(CLI_CASE, "Pendulum-v1", pendulum)
    trained.save(checkpoint)
    loaded = ALGOS[CLI_CASE].load(checkpoint, device="cpu")
    observations = _observations(loaded.observation_space, N_OBSERVATIONS, seed=3)
    expected = _predict(loaded, observations)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        for fmt, suffix in (("torchscript", ".pt"), ("onnx", ".onnx")) if HAS_ONNX else (("torchscript", ".pt"),):
            output = exports.folder / f"cli{suffix}"
            assert cli_main(["export", str(checkpoint), "--format", fmt, "--output", str(output)]) == 0
            exports.add(f"cli{suffix}", output, _named(observations), expected)
    exports.cli_output = stdout.getvalue()

    jobs = exports.folder / "jobs.json"
    jobs.write_text(json.dumps([job for job in exports.jobs if job["format"] == "torchscript" or HAS_ORT]))
    script = exports.folder / "loader.py"
    script.write_text(LOADER)
    outputs = exports.folder / "outputs.npz"
    result = subprocess.run(
        [sys.executable, str(script), str(jobs), str(outputs)],
        capture_output=True,
        text=True,
        cwd=exports.folder,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    exports.loader = json.loads(result.stdout.strip().splitlines()[-1])
    exports.outputs = dict(np.load(outputs))
    return exports


def _check(exports: Exports, name: str) -> None:
    if name in exports.errors:
        pytest.fail(f"{name} could not be exported (or trained for the test):\n{exports.errors[name]}")


def _q1(model: Any, observations: Any, actions: np.ndarray) -> np.ndarray:
    """``Q1(s, a)`` of the model's critic for actions in the env's units."""
    policy = model.policy
    with th.no_grad():
        features = policy.features(th.as_tensor(observations))
        scaled = th.as_tensor(policy.scale_action(actions), dtype=th.float32)
        return q1_values(policy.critic, features, scaled).squeeze(1).numpy()


def _assert_same(exports: Exports, job_id: str, name: str | None = None) -> None:
    """
    The same actions; for a policy that picks the best of sampled candidates (``name`` given: BCQ), a row may
    hold another candidate whose ``Q1`` ties with predict's within float error (a different last bit in the
    graph's arithmetic can flip an argmax between near-equal candidates), in at most 1% of the rows.
    """
    actual, expected = exports.outputs[job_id], exports.expected[job_id]
    atol = ONNX_ATOL if ".onnx" in job_id else ATOL
    assert actual.shape == expected.shape, job_id
    assert actual.dtype == np.float32, job_id
    if name is not None:
        rows = np.flatnonzero(np.abs(actual - expected).max(axis=1) > atol)
        assert len(rows) <= len(actual) // 100, (job_id, rows)
        if len(rows):
            observations = exports.observations[name][rows]
            chosen, predicted = (_q1(exports.models[name], observations, a[rows]) for a in (actual, expected))
            np.testing.assert_allclose(chosen, predicted, rtol=1e-5, atol=1e-6, err_msg=f"{job_id}: not a tie")
            actual, expected = np.delete(actual, rows, axis=0), np.delete(expected, rows, axis=0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=job_id)


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_torchscript_gives_predicts_actions(exports, name):
    _check(exports, name)
    if f"{name}-noise.pt" not in exports.expected:
        _assert_same(exports, f"{name}.pt")
        _assert_same(exports, f"{name}.pt/one row")
        return
    _assert_same(exports, f"{name}.pt", name)  # BCQ: the same seed, the same draws from torch's generator
    _assert_same(exports, f"{name}-noise.pt", name)
    _assert_same(exports, f"{name}-noise.pt/one row", name)


@needs_onnxruntime
@pytest.mark.parametrize("name", sorted(ALGOS))
def test_onnx_gives_predicts_actions(exports, name):
    _check(exports, name)
    model = exports.models[name]
    if not hasattr(model.policy, "acting_noise_shape"):
        _assert_same(exports, f"{name}.onnx")
        _assert_same(exports, f"{name}.onnx/one row")
        return
    # the draws predict made, as the noise input: the same actions
    _assert_same(exports, f"{name}-noise.onnx", name)
    _assert_same(exports, f"{name}-noise.onnx/one row", name)
    # sampling inside the graph (onnxruntime's generator): as good a choice by Q1 as predict's
    policy, observations = model.policy, exports.observations[name]
    chosen = _q1(model, observations, exports.outputs[f"{name}.onnx"])
    predicted = _q1(model, observations, exports.expected[f"{name}.onnx"])
    with th.no_grad():
        features = policy.features(th.as_tensor(observations))
        th.manual_seed(SEED + 1)
        _, one_candidate = policy.sample_perturbed(features, 1)
        unselected = q1_values(policy.critic, features, one_candidate).squeeze(1).numpy()
    low, high = model.action_space.low, model.action_space.high
    assert ((exports.outputs[f"{name}.onnx"] >= low) & (exports.outputs[f"{name}.onnx"] <= high)).all()
    difference = chosen - predicted
    standard_error = difference.std() / np.sqrt(len(difference))
    assert abs(difference.mean()) <= 4 * standard_error + 1e-7, (difference.mean(), standard_error)
    assert chosen.mean() > unselected.mean(), (chosen.mean(), unselected.mean())


def test_dict_observations_are_one_input_per_key(exports):
    keys = list(exports.models["dict"].observation_space.spaces)
    assert keys == ["achieved_goal", "desired_goal", "observation"]
    _assert_same(exports, "dict.pt")
    _assert_same(exports, "dict.pt/one row")
    metadata = read_metadata(exports.folder / "dict.pt")
    assert [entry["name"] for entry in metadata["inputs"]] == keys
    assert metadata["inputs"][2]["shape"] == ["batch", 10] and metadata["output"]["shape"] == ["batch", 4]
    if HAS_ORT:
        _assert_same(exports, "dict.onnx")
        _assert_same(exports, "dict.onnx/one row")
        inputs = exports.loader["onnx_inputs"]["dict.onnx"]
        assert [name for name, _ in inputs] == keys
        assert all(shape[0] == "batch" for _, shape in inputs)  # the batch axis is dynamic


def test_command_line_exports_a_saved_checkpoint(exports):
    _assert_same(exports, "cli.pt")
    assert "wrote" in exports.cli_output and "observation (batch, 3)" in exports.cli_output
    assert read_metadata(exports.folder / "cli.pt")["algorithm"] == ALGOS[CLI_CASE].__name__
    if HAS_ORT:
        _assert_same(exports, "cli.onnx")
        assert read_metadata(exports.folder / "cli.onnx")["format"] == "onnx"


def test_loading_process_never_imports_sb3_offline(exports):
    assert exports.loader["loaded"] == []
    assert len(exports.outputs) == len(exports.jobs if HAS_ORT else [j for j in exports.jobs if j["format"] != "onnx"])


def test_metadata_describes_the_graph(exports):
    _check(exports, "bcq")
    metadata = read_metadata(exports.folder / "bcq-noise.pt")
    policy = exports.models["bcq"].policy
    assert metadata["random"] == "input"
    assert metadata["inputs"][-1] == {
        "name": "noise", "shape": ["batch", policy.n_action_samples, policy.latent_dim], "dtype": "float32"
    }  # fmt: skip
    assert read_metadata(exports.folder / "bcq.pt")["random"] == "inside"
    assert metadata["action_low"] == [-2.0] and metadata["action_high"] == [2.0]


def test_bad_arguments(exports, tmp_path):
    _check(exports, "bc")
    model = exports.models["bc"]
    with pytest.raises(ValueError, match=r"format: expected one of \('torchscript', 'onnx'\), found 'tflite'"):
        export(model, tmp_path / "policy.tflite", format="tflite")
    with pytest.raises(ValueError, match="noise_input: expected a policy that draws random numbers"):
        ExportablePolicy(model.policy, noise_input=True)
    with pytest.raises(FileNotFoundError, match="path: expected an exported"):
        read_metadata(tmp_path / "missing.pt")
