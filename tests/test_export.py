"""
Exported policies (``sb3_offline.exporting``, ``sb3-offline export``) beyond what ``test_contract.py`` checks for every
algorithm (both formats give ``predict``'s actions): the files run in a separate process where importing sb3_offline
(or SB3) fails; BCQ's graphs, which sample when acting, either draw inside (TorchScript from torch's generator,
ONNX from onnxruntime's) or take the draws as a ``noise`` input; ``Dict`` observations are one input per key; the
command line exports a saved checkpoint; every file describes its inputs and output; bad arguments are named.

Three models are trained a few gradient steps with tiny networks (BCQ on Pendulum, LAPO on FetchReach for its
observation normaliser per key and action de-normalisation, TD3+BC through a saved ``.zip`` for the command line);
every file is written first, then one subprocess runs them all.

ONNX, sampling inside (onnxruntime's own generator), draws from the same distribution as ``predict``, not the same
numbers: ``Q1`` of the chosen actions must agree with ``Q1`` of ``predict``'s on average (within 4 standard errors
over the 1,000 states) and be above ``Q1`` of one unselected candidate per state (the argmax is there).
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th
from conftest import make_fetch_reach
from export_checks import (
    ATOL,
    HAS_ONNX,
    HAS_ORT,
    ONNX_ATOL,
    SEED,
    assert_same_actions,
    named_inputs,
    needs_onnxruntime,
    predict_noise,
    q1,
    sample_observations,
    seeded_predict,
)

from sb3_offline import TD3BC
from sb3_offline.cli import main as cli_main
from sb3_offline.common.critics import q1_values
from sb3_offline.exporting import ExportablePolicy, export, read_metadata

N_OBSERVATIONS = 1000
STEPS = 12
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


class Exports:
    """Everything written and expected; filled by the module fixture, read by the tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.jobs: list[dict[str, Any]] = []
        self.expected: dict[str, np.ndarray] = {}
        self.models: dict[str, Any] = {}
        self.observations: dict[str, Any] = {}
        self.outputs: dict[str, np.ndarray] = {}
        self.loader: dict[str, Any] = {}
        self.cli_output = ""

    def add(self, job_id: str, path: Path, inputs: dict[str, np.ndarray], expected: np.ndarray | None) -> None:
        inputs_path = self.folder / f"{job_id.replace('/', '_')}_inputs.npz"
        np.savez(inputs_path, **inputs)
        fmt = "onnx" if path.suffix == ".onnx" else "torchscript"
        job = dict(id=job_id, path=str(path), format=fmt, inputs=str(inputs_path), input_names=list(inputs), seed=SEED)
        self.jobs.append(job)
        if expected is not None:
            self.expected[job_id] = expected

    def export_both(self, job_id: str, model: Any, observations: Any, expected: np.ndarray, **kwargs: Any) -> None:
        """Export ``model`` in both formats; jobs on the full batch and (deterministic graphs) on one row."""
        inputs = named_inputs(observations)
        if kwargs.get("noise_input"):
            inputs["noise"] = kwargs.pop("noise")
        for suffix in (".pt", ".onnx") if HAS_ONNX else (".pt",):
            path = export(model, self.folder / f"{job_id}{suffix}", **kwargs)
            key = f"{job_id}{suffix}"
            self.add(key, path, inputs, expected)
            if not (hasattr(model.policy, "acting_noise_shape") and not kwargs.get("noise_input")):
                self.add(f"{key}/one row", path, {k: v[:1] for k, v in inputs.items()}, expected[:1])


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tiny_model, pendulum_transitions, fetch_transitions) -> Exports:
    exports = Exports(tmp_path_factory.mktemp("export"))
    # BCQ: sampling inside, and the draws predict made (the same seed replays them) as the noise input
    bcq = exports.models["bcq"] = tiny_model("bcq", pendulum_transitions).learn(STEPS, log_interval=None)
    observations = exports.observations["bcq"] = sample_observations(bcq.observation_space, N_OBSERVATIONS, seed=1)
    expected = seeded_predict(bcq, observations)
    exports.export_both("bcq", bcq, observations, expected)
    noise = predict_noise(bcq, N_OBSERVATIONS)
    exports.export_both("bcq-noise", bcq, observations, expected, noise_input=True, noise=noise)

    # Dict observations: one input per key
    env = make_fetch_reach()
    lapo = exports.models["dict"] = tiny_model("lapo", fetch_transitions, env=env, policy="MultiInputPolicy")
    lapo.learn(STEPS, log_interval=None)
    observations = exports.observations["dict"] = sample_observations(env.observation_space, N_OBSERVATIONS, seed=2)
    exports.export_both("dict", lapo, observations, seeded_predict(lapo, observations))
    env.close()

    # the command line, on a saved checkpoint: the observation normaliser must come back from it
    checkpoint = exports.folder / "td3bc.zip"
    tiny_model("td3bc", pendulum_transitions).learn(STEPS, log_interval=None).save(checkpoint)
    loaded = exports.models["cli"] = TD3BC.load(checkpoint, device="cpu")
    observations = sample_observations(loaded.observation_space, N_OBSERVATIONS, seed=3)
    expected = seeded_predict(loaded, observations)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        for fmt, suffix in (("torchscript", ".pt"), ("onnx", ".onnx")) if HAS_ONNX else (("torchscript", ".pt"),):
            output = exports.folder / f"cli{suffix}"
            assert cli_main(["export", str(checkpoint), "--format", fmt, "--output", str(output)]) == 0
            exports.add(f"cli{suffix}", output, named_inputs(observations), expected)
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


def _assert_same(exports: Exports, job_id: str, bcq: bool = False) -> None:
    tie_check = dict(model=exports.models["bcq"], observations=exports.observations["bcq"]) if bcq else {}
    atol = ONNX_ATOL if ".onnx" in job_id else ATOL
    assert_same_actions(exports.outputs[job_id], exports.expected[job_id], atol, job_id, **tie_check)


def test_loading_process_never_imports_sb3_offline(exports):
    assert exports.loader["loaded"] == []
    assert len(exports.outputs) == len(exports.jobs if HAS_ORT else [j for j in exports.jobs if j["format"] != "onnx"])


def test_bcq_graphs_give_predicts_actions_with_its_draws(exports):
    _assert_same(exports, "bcq.pt", bcq=True)  # the same seed, the same draws from torch's generator
    _assert_same(exports, "bcq-noise.pt", bcq=True)
    _assert_same(exports, "bcq-noise.pt/one row", bcq=True)
    if HAS_ORT:
        _assert_same(exports, "bcq-noise.onnx", bcq=True)
        _assert_same(exports, "bcq-noise.onnx/one row", bcq=True)


@needs_onnxruntime
def test_onnx_sampling_inside_chooses_as_well_as_predict(exports):
    model, observations = exports.models["bcq"], exports.observations["bcq"]
    policy, actions = model.policy, exports.outputs["bcq.onnx"]
    chosen, predicted = q1(model, observations, actions), q1(model, observations, exports.expected["bcq.onnx"])
    with th.no_grad():
        features = policy.features(th.as_tensor(observations))
        th.manual_seed(SEED + 1)
        _, one_candidate = policy.sample_perturbed(features, 1)
        unselected = q1_values(policy.critic, features, one_candidate).squeeze(1).numpy()
    low, high = model.action_space.low, model.action_space.high
    assert ((actions >= low) & (actions <= high)).all()
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
    assert read_metadata(exports.folder / "cli.pt")["algorithm"] == "TD3BC"
    if HAS_ORT:
        _assert_same(exports, "cli.onnx")
        assert read_metadata(exports.folder / "cli.onnx")["format"] == "onnx"


def test_metadata_describes_the_graph(exports):
    metadata = read_metadata(exports.folder / "bcq-noise.pt")
    policy = exports.models["bcq"].policy
    assert metadata["random"] == "input"
    assert metadata["inputs"][-1] == {
        "name": "noise", "shape": ["batch", policy.n_action_samples, policy.latent_dim], "dtype": "float32"
    }  # fmt: skip
    assert read_metadata(exports.folder / "bcq.pt")["random"] == "inside"
    assert metadata["action_low"] == [-2.0] and metadata["action_high"] == [2.0]


def test_bad_arguments(exports, tmp_path):
    model = exports.models["cli"]
    with pytest.raises(ValueError, match=r"format: expected one of \('torchscript', 'onnx'\), found 'tflite'"):
        export(model, tmp_path / "policy.tflite", format="tflite")
    with pytest.raises(ValueError, match="noise_input: expected a policy that draws random numbers"):
        ExportablePolicy(model.policy, noise_input=True)
    with pytest.raises(FileNotFoundError, match="path: expected an exported"):
        read_metadata(tmp_path / "missing.pt")


@pytest.mark.skipif(not (HAS_ONNX and HAS_ORT), reason="needs onnx and onnxruntime (pip install -e '.[export]')")
def test_a_wrong_input_names_the_input_and_what_it_expects(tmp_path: Path, pendulum_transitions: Any) -> None:
    """No batch axis or another width: TorchScript's error is ours, ONNX's onnxruntime's (both name the input)."""
    import gymnasium as gym
    import onnxruntime

    model = TD3BC("MlpPolicy", gym.make("Pendulum-v1"), dataset=pendulum_transitions, policy_kwargs=dict(net_arch=[8]))
    module = th.jit.load(str(export(model, tmp_path / "policy.pt")))
    expected = (
        r"observation: expected a float32 tensor of shape \(batch, 3\): the batch axis first \(observation\[None\]"
    )
    for observation, found in ((th.zeros(3), r"\[3\]"), (th.zeros(2, 4), r"\[2, 4\]")):
        with pytest.raises(th.jit.Error, match=f"{expected} for one observation\\), found shape {found}"):
            module(observation)
    assert module(th.zeros(2, 3)).shape == (2, 1)
    path = str(export(model, tmp_path / "policy.onnx"))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="Invalid rank for input: observation Got: 1 Expected: 2"):
        session.run(None, {"observation": np.zeros(3, np.float32)})
    with pytest.raises(Exception, match=r"Actual: \(tensor\(double\)\) , expected: \(tensor\(float\)\)"):
        session.run(None, {"observation": np.zeros((1, 3))})
