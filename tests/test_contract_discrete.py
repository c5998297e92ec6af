"""
The contract of ``tests/test_contract.py`` for the algorithms of ``ALGOS`` on a ``Discrete`` action space
(``conftest.DISCRETE_ALGOS``), on data recorded from CartPole-v1: offline ``learn`` (gradient steps only, the env
never touched, each optimizer at its authors' learning rate), updates that are device work only, ``save``/``load``
with an exact resume, ``predict``'s shapes and range (a ``Box`` and a ``Dict`` observation), and ``learn_online``
after loading, and CUDA-graph updates equal to eager ones. Export of discrete policies is not covered here.
"""

from __future__ import annotations

import io
import json
import sys
import warnings
import zipfile
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import DISCRETE_ALGOS, PHASE_STEPS
from discrete_data import cartpole_dataset, cartpole_transitions
from graph_safety import strict_update_graphs
from test_contract import StepCounter, assert_same_state, learning_rates, policy_state
from test_cuda_graphs import ReplayByRerun, _parameters, _record_logged_losses, cuda

from sb3_offline.algorithms import ALGOS
from sb3_offline.common.cuda_graphs import UpdateGraphs
from sb3_offline.common.text import article
from sb3_offline.datasets import Transitions, record_transitions

STEPS = 2 * PHASE_STEPS
#: the references' learning rates, by optimizer
DEFAULT_LEARNING_RATES: dict[str, dict[str, float]] = {
    "discrete_cql": {"q_net": 6.25e-5},
    "discrete_iql": {"actor": 3e-4, "critic": 3e-4, "value": 3e-4},
}
#: as in test_contract.py: a fixed horizon for IQL's decaying actor learning rate
FIXED_HORIZON: dict[str, dict[str, Any]] = {"discrete_iql": dict(actor_lr_decay_steps=1_000_000)}


class DictCartPole(gym.ObservationWrapper):
    """CartPole-v1 with its state split in a ``Dict``: ``cart`` (position, velocity) and ``pole`` (angle, rate)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        box = env.observation_space
        assert isinstance(box, gym.spaces.Box)
        self.observation_space = gym.spaces.Dict(
            {
                "cart": gym.spaces.Box(box.low[:2], box.high[:2], dtype=np.float32),
                "pole": gym.spaces.Box(box.low[2:], box.high[2:], dtype=np.float32),
            }
        )

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"cart": observation[:2], "pole": observation[2:]}


@pytest.fixture(scope="module")
def cartpole_data() -> Transitions:
    return cartpole_transitions(300, seed=0)


@pytest.fixture(scope="module")
def cartpole_file(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return cartpole_dataset(tmp_path_factory.mktemp("cartpole") / "cartpole.hdf5", n_steps=300, seed=0)


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_offline_learn_runs_gradient_steps_and_never_touches_the_env(name, tiny_model, cartpole_data, counting_env):
    env = counting_env("CartPole-v1")
    model = tiny_model(name, cartpole_data, env=env, **FIXED_HORIZON.get(name, {}))
    declared = learning_rates(model)
    assert declared == DEFAULT_LEARNING_RATES[name]
    counter = StepCounter()
    model.learn(STEPS, callback=counter)
    assert env.steps == 0 and env.resets == 0
    assert model.num_timesteps == model._n_updates == STEPS
    assert counter.calls == STEPS and counter.started and counter.ended
    assert learning_rates(model) == pytest.approx(declared, rel=1e-5)


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_updates_are_device_work_only(name, tiny_model, cartpole_data, monkeypatch):
    """test_contract.py's check: each kind of update warmed up, captured once and replayed by the strict backend."""
    warmup, steps = 3, STEPS + 14
    model = tiny_model(name, cartpole_data, env="CartPole-v1")
    backend = strict_update_graphs(model, warmup=warmup)
    model.learn(1, log_interval=None)
    calls = {"item": 0, "as_tensor": 0, "from_numpy": 0}

    def counting(key: str, fn: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not str(sys._getframe(1).f_globals.get("__name__", "")).startswith("torch"):
                calls[key] += 1
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(th.Tensor, "item", counting("item", th.Tensor.item))
    monkeypatch.setattr(th, "as_tensor", counting("as_tensor", th.as_tensor))
    monkeypatch.setattr(th, "from_numpy", counting("from_numpy", th.from_numpy))
    model.learn(steps - 1, log_interval=None, reset_num_timesteps=False)
    monkeypatch.undo()
    assert calls == {"item": 0, "as_tensor": 0, "from_numpy": 0}
    assert backend.violations == []
    for key, runs in backend.kinds.items():
        assert (runs.eager, runs.captures) == (warmup, 1), f"{name} {key!r}: {runs}"
        assert runs.replays >= 2, f"{name} {key!r}: {runs}"
    assert sum(r.eager + r.replays for r in backend.kinds.values()) == steps


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_save_load_round_trip_and_exact_resume(name, tiny_model, cartpole_file, cartpole_data, tmp_path):
    algo, half, fixed = ALGOS[name], PHASE_STEPS - 2, FIXED_HORIZON.get(name, {})
    model = tiny_model(name, str(cartpole_file), env="CartPole-v1", seed=3, **fixed).learn(half)
    path = tmp_path / "model.zip"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {file for file in archive.namelist() if file.endswith(".pth")}
        data = json.loads(archive.read("data"))
    optimizers = {f"{network}.optimizer.pth" for network in model.learning_rates()}
    assert files == {"policy.pth", "pytorch_variables.pth", *optimizers}
    assert data["dataset"] == str(cartpole_file) and "replay_buffer" not in data

    th.manual_seed(1234)
    np.random.seed(1234)
    resumed = algo.load(path, env=gym.make("CartPole-v1"), device="cpu")
    assert type(resumed) is algo and resumed.replay_buffer is None
    assert all(getattr(resumed, network) is getattr(resumed.policy, network) for network in resumed.networks)
    assert_same_state(model, resumed)
    resumed.learn(STEPS - half, reset_num_timesteps=False)
    straight = tiny_model(name, str(cartpole_file), env="CartPole-v1", seed=3, **fixed).learn(STEPS)
    assert resumed._n_updates == straight._n_updates == STEPS
    assert_same_state(straight, resumed)
    half_way, end = policy_state(model), policy_state(straight)
    assert any(not th.equal(half_way[key], end[key]) for key in end)

    loaded = algo.load(io.BytesIO(path.read_bytes()), device="cpu")
    observations = cartpole_data.observations[:20]
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0], model.predict(observations, deterministic=True)[0]
    )
    for other in ALGOS.values():
        if other is not algo:
            message = f"expected {article(other.__name__)} checkpoint, found {article(algo.__name__)} checkpoint"
            with pytest.raises(ValueError, match=message):
                other.load(path)


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_predict_gives_action_indices(name, tiny_model, cartpole_data):
    model = tiny_model(name, cartpole_data, env="CartPole-v1").learn(STEPS)
    observations = cartpole_data.observations[:7]
    for deterministic in (True, False):
        batch, _ = model.predict(observations, deterministic=deterministic)
        single, _ = model.predict(observations[0], deterministic=deterministic)
        assert batch.shape == (7,) and np.issubdtype(batch.dtype, np.integer) and set(batch) <= {0, 1}
        assert np.ndim(single) == 0 or single.shape == (1,)


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_predict_and_save_load_with_dict_observations(name, tiny_model, tmp_path):
    env = DictCartPole(gym.make("CartPole-v1"))
    data = record_transitions(env, 200, seed=0)
    model = tiny_model(name, data, env=env, policy="MultiInputPolicy").learn(STEPS)
    observation, _ = env.reset(seed=0)
    batch = {key: np.stack([value] * 3) for key, value in observation.items()}
    actions, _ = model.predict(batch, deterministic=True)
    assert actions.shape == (3,) and set(actions) <= {0, 1}
    model.save(tmp_path / "model")
    loaded = ALGOS[name].load(tmp_path / "model", env=env, device="cpu")
    np.testing.assert_array_equal(loaded.predict(batch, deterministic=True)[0], actions)


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_learn_online_after_loading_appends_after_the_dataset(
    name, tiny_model, cartpole_file, cartpole_data, counting_env, tmp_path
):
    tiny_model(name, str(cartpole_file), env="CartPole-v1").learn(STEPS).save(tmp_path / "offline")
    env = counting_env("CartPole-v1", max_episode_steps=25)
    model = ALGOS[name].load(tmp_path / "offline", env=env, device="cpu", buffer_size=100, learning_starts=10)
    model.learn_online(60)
    buffer, n = model.replay_buffer, len(cartpole_data)
    assert env.steps == 60 and model.num_timesteps == 60
    assert buffer.dataset_size == n and buffer.size() == n + 60
    np.testing.assert_array_equal(buffer.observations[:n].numpy(), cartpole_data.observations)
    assert set(buffer.actions[n : n + 60, 0].tolist()) <= {0, 1}
    assert model._n_updates > STEPS
    model.learn(2, reset_num_timesteps=False)
    assert env.steps == 60


# ------------------------------------------------------------------------------------------- CUDA graphs
#: the kinds of update of each algorithm in 20 updates of its TINY settings
KINDS = {"discrete_cql": 2, "discrete_iql": 1}


@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_training_through_update_graphs_equals_eager_training(name, tiny_model, cartpole_data):
    """test_cuda_graphs.py's check: warm-up, capture and replays of each kind train exactly as the eager loop."""
    eager = tiny_model(name, cartpole_data, env="CartPole-v1", seed=3)
    graphed = tiny_model(name, cartpole_data, env="CartPole-v1", seed=3)
    backend = ReplayByRerun(graphed._losses)
    graphed._runner.graphs = UpdateGraphs(graphed._losses, backend, warmup=3)
    graphed._runner.applies = lambda *args, **kwargs: True
    eager_logs, graphed_logs = _record_logged_losses(eager), _record_logged_losses(graphed)
    th.manual_seed(0)
    eager.learn(20, log_interval=None)
    th.manual_seed(0)
    graphed.learn(20, log_interval=None)
    assert backend.captures == KINDS[name] and backend.replays == 20 - 3 * KINDS[name]
    for key, value in _parameters(eager).items():
        th.testing.assert_close(_parameters(graphed)[key], value, rtol=0, atol=0, msg=key)
    assert eager_logs and graphed_logs == pytest.approx(eager_logs)


@cuda
@pytest.mark.parametrize("name", DISCRETE_ALGOS)
def test_cuda_graph_updates_match_eager_updates(name, tiny_model, cartpole_data, tmp_path):
    """test_cuda_graphs.py's check on a CUDA device: captured updates as eager ones, and a checkpoint for the CPU."""
    eager = tiny_model(name, cartpole_data, env="CartPole-v1", seed=5, device="cuda", cuda_graphs=False)
    graphed = tiny_model(name, cartpole_data, env="CartPole-v1", seed=5, device="cuda")
    th.manual_seed(1)
    eager.learn(30, log_interval=None)
    th.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed capture would only warn
        graphed.learn(30, log_interval=None)
    assert graphed._runner.graphs is not None and graphed._runner.graphs._graphs, "nothing was captured"
    for key, value in _parameters(eager).items():
        th.testing.assert_close(_parameters(graphed)[key], value, rtol=1e-4, atol=1e-5, msg=key)
    graphed.save(tmp_path / "model.zip")
    on_cpu = ALGOS[name].load(tmp_path / "model.zip", env="CartPole-v1", device="cpu", dataset=cartpole_data)
    on_cpu.learn(3)
