"""
What an exported policy (``sb3_offline.exporting``) must give: ``predict(deterministic=True)``'s actions, compared
by :func:`assert_same_actions` (used by ``test_contract.py`` and ``test_export.py``).

BCQ samples its VAE's prior when acting; its comparisons are made fair by replaying ``predict``'s draws: seeding
torch's global generator with the same seed (TorchScript draws from it as ``predict`` does), or feeding the draws
``predict`` made as the ``noise`` input (:func:`predict_noise`, with ``noise_input=True``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_offline.common.critics import q1_values

HAS_ONNX = importlib.util.find_spec("onnx") is not None
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_onnxruntime = pytest.mark.skipif(
    not (HAS_ONNX and HAS_ORT), reason="ONNX export needs onnx and onnxruntime: pip install -e '.[export]'"
)

#: the seed of torch's generator before ``predict`` and before running a TorchScript graph that samples
SEED = 7
ATOL = 1e-5
#: onnxruntime's CPU kernels (MLAS GEMM, its own tanh) differ from torch's in the last bits of each layer; over a few
#: layers and a tanh-squashed mean that reaches a few 1e-5 on actions of magnitude 1 (seen: 4.2e-5 on the Fetch policy)
ONNX_ATOL = 1e-4


def sample_observations(space: gym.Space, n: int, seed: int) -> Any:
    """``n`` raw observations sampled from ``space``, float32 (a dict of arrays for a ``Dict``)."""
    space.seed(seed)
    rows = [space.sample() for _ in range(n)]
    if isinstance(space, gym.spaces.Dict):
        return {key: np.stack([row[key] for row in rows]).astype(np.float32) for key in space.spaces}
    return np.stack(rows).astype(np.float32)


def named_inputs(observations: Any) -> dict[str, np.ndarray]:
    """The graph's observation inputs: ``observation`` for a ``Box``, one per key of a ``Dict``."""
    return dict(observations) if isinstance(observations, dict) else {"observation": observations}


def seeded_predict(model: Any, observations: Any, seed: int = SEED) -> np.ndarray:
    th.manual_seed(seed)
    return model.predict(observations, deterministic=True)[0]


def samples_when_acting(model: Any) -> bool:
    return hasattr(model.policy, "acting_noise_shape")


def predict_noise(model: Any, n_observations: int, seed: int = SEED) -> np.ndarray:
    """The standard normal draws ``seeded_predict`` makes (its only draw: one ``randn`` of batch * n rows)."""
    shape = tuple(model.policy.acting_noise_shape())
    th.manual_seed(seed)
    return th.randn(n_observations * shape[0], *shape[1:]).reshape(n_observations, *shape).numpy()


def q1(model: Any, observations: Any, actions: np.ndarray) -> np.ndarray:
    """``Q1(s, a)`` of the model's critic for actions in the env's units."""
    policy = model.policy
    with th.no_grad():
        features = policy.features(th.as_tensor(observations))
        scaled = th.as_tensor(policy.scale_action(actions), dtype=th.float32)
        return q1_values(policy.critic, features, scaled).squeeze(1).numpy()


def assert_same_actions(
    actual: np.ndarray, expected: np.ndarray, atol: float, label: str, model: Any = None, observations: Any = None
) -> None:
    """
    The same actions, float32; for a policy that picks the best of sampled candidates (``model`` given: BCQ), a row
    may hold another candidate whose ``Q1`` ties with predict's within float error (a different last bit in the
    graph's arithmetic can flip an argmax between near-equal candidates), in at most 1% of the rows.
    """
    assert actual.shape == expected.shape, label
    assert actual.dtype == np.float32, label
    if model is not None:
        rows = np.flatnonzero(np.abs(actual - expected).max(axis=1) > atol)
        assert len(rows) <= len(actual) // 100, (label, rows)
        if len(rows):
            chosen, predicted = (q1(model, observations[rows], a[rows]) for a in (actual, expected))
            np.testing.assert_allclose(chosen, predicted, rtol=1e-5, atol=1e-6, err_msg=f"{label}: not a tie")
            actual, expected = np.delete(actual, rows, axis=0), np.delete(expected, rows, axis=0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=label)
