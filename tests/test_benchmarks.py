"""
``benchmarks/``: every module imports, every script answers ``python -m benchmarks.<name> --help`` from the
repository root, and the benchmark variants of :mod:`benchmarks.variants` build the networks they say.

The policy classes of the variants replaced policy flags the library had only for them (``IQLPolicy(ortho_init=False,
init_w=..., log_std_mode="sigmoid")``, ``AWACPolicy(init_w=None, critic_init_w=None, squash_mean=False)``); before the
flags went, each class was shown to give bit for bit the parameters, random generator state and first updates the
flags gave. The tests here check each class against networks drawn by hand in the order of construction.
"""

from __future__ import annotations

import ast
import importlib
import math
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.torch_layers import create_mlp
from torch import nn

import benchmarks
from benchmarks.variants import (
    VARIANTS,
    AWACLinearMeanPolicy,
    AWACPyTorchCriticsPolicy,
    AWACPyTorchInitPolicy,
    IQLPyTorchInitPolicy,
    IQLPyTorchInitSigmoidStdPolicy,
    IQLRlkitInitPolicy,
    IQLRlkitInitSigmoidStdPolicy,
    pytorch_init,
    variant,
)
from sb3_offline.common.initialization import rlkit_init

ROOT = Path(__file__).resolve().parents[1]
BOX_DATASET = ROOT / "tests" / "golden" / "data" / "inverted_pendulum.npz"
MODULES = sorted(info.name for info in pkgutil.iter_modules(benchmarks.__path__))
#: modules that are libraries of the scripts, without a command line of their own
LIBRARIES = {"d3rlpy_compat", "d3rlpy_runs", "d3rlpy_variants", "ope_summary", "variants"}
SMALL = {"awac": dict(net_arch=dict(pi=[16, 16], qf=[16, 16])), "iql": dict(net_arch=[16, 16])}


def test_every_module_imports_without_d3rlpy() -> None:
    assert {"batch_settings", "d3rlpy_compat", "throughput", "variants"} <= set(MODULES)
    for name in MODULES:
        importlib.import_module(f"benchmarks.{name}")


def test_every_import_of_a_sibling_resolves() -> None:
    """The imports inside functions too (the d3rlpy paths import their siblings lazily; d3rlpy is not installed)."""
    missing = []
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):  # the modules of sub-packages (parity/) too
        name = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("benchmarks"):
                module = importlib.import_module(str(node.module))
                missing += [
                    f"{name}:{node.lineno} {node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)
                ]
    assert not missing


@pytest.mark.parametrize("name", [name for name in MODULES if name not in LIBRARIES])
def test_script_help_from_the_repository_root(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:"), result.stdout[:500]


def test_variant_names() -> None:
    assert variant("iql") == variant("iql") and variant("iql").policy_class == "MlpPolicy"
    assert variant("iql_d3_all").algorithm_class.__name__ == "IQLJointStep"
    with pytest.raises(ValueError, match=r"name: expected one of ALGOS .* or VARIANTS .*, found 'iql_nope'"):
        variant("iql_nope")


# -------------------------------------------------------------------------------- variants on a real dataset
class _Recorder(KVWriter):
    def __init__(self) -> None:
        self.dumps: list[dict[str, float]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append({k: float(v) for k, v in key_values.items() if k.startswith("train/")})

    def close(self) -> None:
        pass


def _box_env() -> gym.Env:
    """InvertedPendulum-v5 cut at 20 steps, the env of ``tests/golden/data/inverted_pendulum.npz``."""
    return gym.make("InvertedPendulum-v5", max_episode_steps=20)


def _build(name: str, policy: Any, policy_kwargs: dict[str, Any]) -> Any:
    row = variant(name)
    model = row.algorithm_class(
        policy,
        _box_env(),
        dataset=str(BOX_DATASET),
        seed=3,
        device="cpu",
        policy_kwargs={**SMALL[row.algo], **policy_kwargs},
        **row.kwargs,
    )
    return model, th.random.get_rng_state()


def _train(model: Any, updates: int = 3) -> list[dict[str, float]]:
    recorder = _Recorder()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    model.learn(updates, log_interval=1)
    return recorder.dumps


def _assert_same_parameters(found: nn.Module, expected: nn.Module) -> None:
    found_state, expected_state = found.state_dict(), expected.state_dict()
    assert list(found_state) == list(expected_state)
    for key, tensor in expected_state.items():
        assert th.equal(found_state[key], tensor), key


@pytest.mark.parametrize("name", sorted(name for name, row in VARIANTS.items() if row.policy is not None))
def test_variant_trains_saves_and_loads(name: str, tmp_path: Path) -> None:
    model, _ = _build(name, VARIANTS[name].policy_class, {})
    assert isinstance(model.policy, VARIANTS[name].policy)
    dumps = _train(model, updates=2)
    assert len(dumps) == 2 and all(math.isfinite(v) for dump in dumps for v in dump.values())
    states = np.random.default_rng(0).uniform(-1.0, 1.0, (5, 4)).astype(np.float32)
    actions, _ = model.predict(states, deterministic=True)
    model.save(tmp_path / "model")
    loaded = type(model).load(tmp_path / "model", device="cpu")
    assert type(loaded.policy) is VARIANTS[name].policy
    np.testing.assert_array_equal(loaded.predict(states, deterministic=True)[0], actions)


# ------------------------------------------------------------- the initialisations, drawn by hand (no library flag)
OBS, ACT, HIDDEN = 4, 1, [16, 16]  # InvertedPendulum-v5


def _policy(policy_class: type, seed: int) -> Any:
    env = _box_env()
    th.manual_seed(seed)
    policy = policy_class(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=HIDDEN)
    return policy, th.random.get_rng_state()


def _mlp(n_in: int, n_out: int, squash: bool = False) -> nn.Sequential:
    return nn.Sequential(*create_mlp(n_in, n_out, HIDDEN, nn.ReLU, squash_output=squash))


def _by_hand(seed: int, value: bool, rlkit_actor: bool) -> tuple[dict[str, nn.Module], th.Tensor]:
    """The networks built in the order of construction (value, actor, rlkit's draws, critics, targets)."""
    th.manual_seed(seed)
    nets: dict[str, nn.Module] = {}
    if value:
        nets["value.v_net"] = _mlp(OBS, 1)
    nets["actor.mu"] = _mlp(OBS, ACT, squash=True)
    if rlkit_actor:
        rlkit_init(nets["actor.mu"], 1e-3)
    for prefix in ("critic", "critic_target"):
        for i in range(2):
            nets[f"{prefix}.qf{i}"] = _mlp(OBS + ACT, 1)
    nets["critic_target.qf0"].load_state_dict(nets["critic.qf0"].state_dict())
    nets["critic_target.qf1"].load_state_dict(nets["critic.qf1"].state_dict())
    return nets, th.random.get_rng_state()


@pytest.mark.parametrize(
    ("policy_class", "value", "rlkit_actor"),
    [
        (AWACPyTorchInitPolicy, False, False),
        (AWACPyTorchCriticsPolicy, False, True),
        (AWACLinearMeanPolicy, False, False),
        (IQLPyTorchInitPolicy, True, False),
        (IQLRlkitInitPolicy, True, True),
        (IQLRlkitInitSigmoidStdPolicy, True, True),
        (IQLPyTorchInitSigmoidStdPolicy, True, False),
    ],
)
def test_variant_policy_draws_in_the_order_of_construction(policy_class: type, value: bool, rlkit_actor: bool) -> None:
    policy, rng = _policy(policy_class, seed=5)
    nets, expected_rng = _by_hand(5, value, rlkit_actor)
    assert th.equal(rng, expected_rng)
    state = policy.state_dict()
    for prefix, net in nets.items():
        for key, tensor in net.state_dict().items():
            assert th.equal(state[f"{prefix}.{key}"], tensor), f"{prefix}.{key}"
    linears = [m for m in policy.actor.mu if isinstance(m, nn.Linear)]
    if rlkit_actor:
        assert linears[-1].weight.abs().max() <= 1e-3 and not linears[-1].bias.any()
    else:
        assert linears[-1].bias.abs().min() > 0  # PyTorch's: biases drawn too
    assert isinstance(policy.actor.mu[-1], nn.Linear if policy_class is AWACLinearMeanPolicy else nn.Tanh)
    sigmoid = policy_class in (IQLRlkitInitSigmoidStdPolicy, IQLPyTorchInitSigmoidStdPolicy)
    assert policy.actor.log_std_mode == ("sigmoid" if sigmoid else "clip" if value else "sigmoid")
    if sigmoid:  # d3rlpy's: a sigmoid into [-5, 2], starting at its middle
        assert th.allclose(policy.actor.log_std(), th.full((ACT,), -1.5))
        optimized = [p for group in policy.actor.optimizer.param_groups for p in group["params"]]
        assert any(p is policy.actor.log_std_logits for p in optimized)


def test_linear_mean_acts_clipped() -> None:
    policy, _ = _policy(AWACLinearMeanPolicy, seed=0)
    with th.no_grad():
        policy.actor.mu[-1].weight.zero_()
        policy.actor.mu[-1].bias.fill_(5.0)
    features = th.zeros(3, OBS)
    assert th.all(policy.actor.distribution(features).mean == 5.0)
    assert th.all(policy.actor.mode(features) == 1.0)


def test_pytorch_init_refuses_unknown_layers() -> None:
    with pytest.raises(ValueError, match=r"modules: expected only nn.Linear layers to hold weights, found LayerNorm"):
        pytorch_init(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))
