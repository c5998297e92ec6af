"""
The contract every algorithm of ``sb3_offline.algorithms.ALGOS`` keeps, tested for each one as sb3-contrib's
``tests/test_save_load.py`` tests every model of its ``MODEL_LIST``: a new algorithm registered in ``ALGOS`` (and
given tiny settings in ``conftest.TINY``) is covered as it is.

Each test runs the algorithm with tiny networks on data recorded from a real env (Pendulum-v1; CartPole-v1 for an
algorithm on a ``Discrete`` action space: ``conftest.env_id_of``), for ``STEPS`` gradient steps: every kind of update
of the algorithm (``TINY`` ends a first phase after ``PHASE_STEPS`` updates).

- offline ``learn``: gradient steps only (callbacks once per step), the env never stepped nor reset, each optimizer
  at its own learning rate (the authors' defaults, listed here);
- the updates are device work only (the strict stand-in backend of ``graph_safety.py``), and the loop around them
  reads nothing back from the device nor copies numpy arrays per step;
- ``save``/``load``: the checkpoint holds the policy and every optimizer of ``learning_rates()`` and the dataset's
  reference, not the data; a loaded model has the same parameters, optimizer states and predictions, resumes
  training exactly (``learn(n)``, save, load, ``learn(m)`` equals ``learn(n + m)``), and another algorithm's class
  refuses its checkpoint;
- ``predict``'s shapes and bounds for a ``Box`` (with asymmetric action bounds) and a ``Dict`` observation
  (``MultiInputPolicy`` on FetchReach-v4); for a ``Discrete`` action space, DQN's (int64 indices), with a ``Dict``
  observation too (CartPole-v1's observation split in two keys);
- ``learn_online`` after loading: a real env stepped, its transitions appended after the dataset's rows;
- export (``sb3_offline.exporting``): the TorchScript and ONNX graphs give ``predict``'s actions.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import BOX_NAMES, DISCRETE_NAMES, PHASE_STEPS, env_id_of
from discrete_data import dict_cartpole
from export_checks import (
    ATOL,
    HAS_ORT,
    ONNX_ATOL,
    SEED,
    assert_same_actions,
    predict_noise,
    sample_observations,
    samples_when_acting,
    seeded_predict,
)
from graph_safety import strict_update_graphs
from stable_baselines3.common.callbacks import BaseCallback

from sb3_offline.algorithms import ALGOS
from sb3_offline.common.text import article
from sb3_offline.datasets import record_transitions
from sb3_offline.exporting import export

pytestmark = [
    pytest.mark.filterwarnings("ignore:PLAS.learn. all .* gradient steps go to VAE pre-training"),
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]
NAMES = sorted(ALGOS)
#: every kind of update of each algorithm (its first phase, then the rest)
STEPS = 2 * PHASE_STEPS
#: the authors' learning rates, by optimizer (SAC's entropy coefficient at the actor's rate and the Lagrange
#: multiplier at the critics' in CQL and Cal-QL, as the CQL authors' code)
DEFAULT_LEARNING_RATES: dict[str, dict[str, float]] = {
    "awac": {"actor": 3e-4, "critic": 3e-4},
    "bc": {"actor": 1e-3},
    "batch_ddpg": {"actor": 1e-4, "critic": 1e-3},
    "bcq": {"vae": 1e-3, "actor": 1e-3, "critic": 1e-3},
    "plas": {"vae": 1e-4, "actor": 1e-4, "critic": 1e-3},
    "lapo": {"vae": 2e-4, "actor": 2e-4, "critic": 2e-4, "value": 2e-4},
    "cql": {"actor": 1e-4, "critic": 3e-4, "log_ent_coef": 1e-4, "log_alpha_prime": 3e-4},
    "calql": {"actor": 1e-4, "critic": 3e-4, "log_ent_coef": 1e-4, "log_alpha_prime": 3e-4},
    "iql": {"actor": 3e-4, "critic": 3e-4, "value": 3e-4},
    "td3bc": {"actor": 3e-4, "critic": 3e-4},
    "discrete_bc": {"actor": 1e-3},
    "discrete_bcq": {"q_net": 3e-4},
    "discrete_cql": {"q_net": 6.25e-5},
    "discrete_iql": {"actor": 3e-4, "critic": 3e-4, "value": 3e-4},
    "sac_n": {"actor": 3e-4, "critic": 3e-4, "log_ent_coef": 3e-4},
    "edac": {"actor": 3e-4, "critic": 3e-4, "log_ent_coef": 3e-4},
    "rebrac": {"actor": 1e-3, "critic": 1e-3},
}


class StepCounter(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.started = self.ended = False

    def _on_training_start(self) -> None:
        self.started = True

    def _on_step(self) -> bool:
        self.calls += 1
        return True

    def _on_training_end(self) -> None:
        self.ended = True


#: IQL's actor decays over each run by default ("auto"), so a run stopped at half way and continued is another
#: schedule than one straight run (test_iql.py checks "auto", resumes included): a fixed horizon here
FIXED_HORIZON: dict[str, dict[str, Any]] = {
    "iql": dict(actor_lr_decay_steps=1_000_000),
    "discrete_iql": dict(actor_lr_decay_steps=1_000_000),
}


def learning_rates(model: Any) -> dict[str, float]:
    return {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in model._optimizers().items()}


def policy_state(model: Any) -> dict[str, th.Tensor]:
    return {key: value.detach().clone() for key, value in model.policy.state_dict().items()}


def assert_same_state(model: Any, other: Any) -> None:
    """The same policy parameters and optimizer states, bit for bit."""
    expected, found = policy_state(model), policy_state(other)
    assert expected.keys() == found.keys()
    assert [key for key in expected if not th.equal(expected[key], found[key])] == []
    for name, optimizer in model._optimizers().items():
        saved, restored = optimizer.state_dict(), other._optimizers()[name].state_dict()
        assert saved["state"].keys() == restored["state"].keys(), name
        for key, state in saved["state"].items():
            assert all(th.equal(th.as_tensor(v), th.as_tensor(restored["state"][key][k])) for k, v in state.items())
    assert learning_rates(other) == learning_rates(model)


# ------------------------------------------------------------------------------------------ offline learn
@pytest.mark.parametrize("name", NAMES)
def test_offline_learn_runs_gradient_steps_and_never_touches_the_env(name, tiny_model, algo_transitions, counting_env):
    env = counting_env(env_id_of(name))
    model = tiny_model(name, algo_transitions, env=env, **FIXED_HORIZON.get(name, {}))
    declared = learning_rates(model)
    assert declared == DEFAULT_LEARNING_RATES[name]
    counter = StepCounter()
    model.learn(STEPS, callback=counter)
    assert env.steps == 0 and env.resets == 0
    assert model.num_timesteps == model._n_updates == STEPS
    assert counter.calls == STEPS and counter.started and counter.ended
    # every optimizer at its own learning rate (IQL's actor decays over 1M steps: a hair after STEPS)
    assert learning_rates(model) == pytest.approx(declared, rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_updates_are_device_work_only(name, tiny_model, algo_transitions, monkeypatch):
    """
    Every update through ``UpdateGraphs`` with the strict backend (warmed up, captured once, replayed at least
    twice: the checks see every code path of each kind), and no ``.item()``, ``th.as_tensor`` or
    ``th.from_numpy`` per step in the loop around the updates (calls from inside torch excepted: they are not ours).
    """
    warmup, steps = 3, STEPS + 14
    model = tiny_model(name, algo_transitions, env=env_id_of(name))
    backend = strict_update_graphs(model, warmup=warmup)
    model.learn(1, log_interval=None)  # the dataset is read outside the counted region
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
    assert backend.kinds, f"{name}: no update went through OfflineAlgorithm._run_update"
    for key, runs in backend.kinds.items():
        assert (runs.eager, runs.captures) == (warmup, 1), f"{name} {key!r}: {runs}"
        assert runs.replays >= 2, f"{name} {key!r}: {runs}"
    assert sum(r.eager + r.replays for r in backend.kinds.values()) == steps  # one update per gradient step


# ----------------------------------------------------------------------------------------------- save/load
@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_and_exact_resume(name, tiny_model, algo_file, algo_transitions, tmp_path):
    algo, half = ALGOS[name], PHASE_STEPS - 2  # the first phase ends after the resume: its count must come back
    fixed = {"env": env_id_of(name), **FIXED_HORIZON.get(name, {})}
    model = tiny_model(name, str(algo_file), seed=3, **fixed).learn(half)
    path = tmp_path / "model.zip"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = set(archive.namelist())
        data = json.loads(archive.read("data"))
    assert {file for file in files if file.endswith(".pth")} == {
        "policy.pth",
        "pytorch_variables.pth",
        *(f"{network}.optimizer.pth" for network in model.learning_rates()),
    }
    assert data["dataset"] == str(algo_file) and "replay_buffer" not in data
    assert set(model.networks) <= set(model._excluded_save_params())  # aliases of the policy's networks

    th.manual_seed(1234)  # whatever happens to the generators in between, the checkpoint holds theirs
    np.random.seed(1234)
    resumed = algo.load(path, env=gym.make(env_id_of(name)), device="cpu")
    assert type(resumed) is algo and resumed.replay_buffer is None  # predicts without its dataset
    assert all(getattr(resumed, network) is getattr(resumed.policy, network) for network in resumed.networks)
    assert_same_state(model, resumed)
    resumed.learn(STEPS - half, reset_num_timesteps=False)  # the dataset is read again from its saved path
    straight = tiny_model(name, str(algo_file), seed=3, **fixed).learn(STEPS)
    assert resumed.num_timesteps == straight.num_timesteps == STEPS and resumed._n_updates == STEPS
    assert_same_state(straight, resumed)
    half_way, end = policy_state(model), policy_state(straight)
    assert any(not th.equal(half_way[key], end[key]) for key in end)  # the test can fail

    # from a file object, without an env: the same predictions (BCQ's sampling seeded alike)
    loaded = algo.load(io.BytesIO(path.read_bytes()), device="cpu")
    observations = algo_transitions.observations[:20]
    np.testing.assert_array_equal(seeded_predict(loaded, observations), seeded_predict(model, observations))
    for other in ALGOS.values():  # CalQL, a subclass of CQL, is another algorithm too
        if other is not algo:
            message = f"expected {article(other.__name__)} checkpoint, found {article(algo.__name__)} checkpoint"
            with pytest.raises(ValueError, match=message) as error:
                other.load(path)
            assert str(path) in str(error.value)


# ------------------------------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def asymmetric_pendulum():
    """Pendulum with actions in [-1, 3] (the buffer's [-1, 1] is (a - 1) / 2) and 300 random steps of it."""
    low, high = np.array([-1.0], np.float32), np.array([3.0], np.float32)
    env = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), min_action=low, max_action=high)
    data = record_transitions(env, 300, seed=0)
    assert data.actions.min() < 0.0 and data.actions.max() > 2.0
    return env, data


@pytest.mark.parametrize("name", BOX_NAMES)
def test_predict_on_a_box_with_asymmetric_bounds(name, tiny_model, asymmetric_pendulum):
    env, data = asymmetric_pendulum
    model = tiny_model(name, data, env=env).learn(STEPS)
    actions = model.replay_buffer.actions[: len(data), 0].numpy()
    np.testing.assert_allclose(actions, (data.actions[:, 0] - 1.0) / 2.0, atol=1e-6)
    observations = data.observations[:7]
    for deterministic in (True, False):
        batch, _ = model.predict(observations, deterministic=deterministic)
        single, _ = model.predict(observations[0], deterministic=deterministic)
        assert batch.shape == (7, 1) and single.shape == (1,)
        assert np.all(batch >= -1.0) and np.all(batch <= 3.0) and -1.0 <= single[0] <= 3.0


@pytest.mark.parametrize("name", DISCRETE_NAMES)
def test_predict_discrete_actions_as_dqn(name, tiny_model, cartpole_transitions):
    """DQN's ``predict``: int64 action indices, ``(batch,)`` or ``()``; ``exploration_rate`` 1 acts at random."""
    model = tiny_model(name, cartpole_transitions, env="CartPole-v1").learn(STEPS)
    observations = cartpole_transitions.observations[:50]
    for deterministic in (True, False):
        batch, _ = model.predict(observations, deterministic=deterministic)
        single, _ = model.predict(observations[0], deterministic=deterministic)
        assert batch.shape == (50,) and single.shape == () and batch.dtype == np.int64
        assert set(batch.tolist()) <= {0, 1} and int(single) in (0, 1)
    greedy = model.predict(observations, deterministic=True)[0]
    model.exploration_rate = 1.0
    assert (model.predict(observations, deterministic=True)[0] == greedy).all()
    assert not all((model.predict(observations)[0] == greedy).all() for _ in range(5))


@pytest.mark.parametrize("name", DISCRETE_NAMES)
def test_discrete_predict_and_save_load_with_dict_observations(name, tiny_model, tmp_path):
    env = dict_cartpole()
    data = record_transitions(env, 300, seed=0)
    model = tiny_model(name, data, env=env, policy="MultiInputPolicy").learn(STEPS)
    observation, _ = env.reset(seed=0)
    single, _ = model.predict(observation, deterministic=True)
    batch = {key: np.stack([value] * 3) for key, value in observation.items()}
    assert single.shape == () and int(single) in (0, 1)
    assert model.predict(batch, deterministic=False)[0].shape == (3,)
    model.save(tmp_path / "model")
    loaded = ALGOS[name].load(tmp_path / "model", env=env, device="cpu")
    np.testing.assert_array_equal(seeded_predict(loaded, batch), seeded_predict(model, batch))


@pytest.mark.parametrize("name", BOX_NAMES)
def test_predict_and_save_load_with_dict_observations(name, tiny_model, fetch_transitions, fetch_env, tmp_path):
    model = tiny_model(name, fetch_transitions, env=fetch_env, policy="MultiInputPolicy").learn(STEPS)
    observation, _ = fetch_env.reset(seed=0)
    single, _ = model.predict(observation, deterministic=True)
    batch = {key: np.stack([value] * 3) for key, value in observation.items()}
    assert single.shape == (4,) and np.all(np.abs(single) <= 1.0)
    assert model.predict(batch, deterministic=False)[0].shape == (3, 4)
    model.save(tmp_path / "model")
    loaded = ALGOS[name].load(tmp_path / "model", env=fetch_env, device="cpu")
    np.testing.assert_array_equal(seeded_predict(loaded, batch), seeded_predict(model, batch))


# -------------------------------------------------------------------------------------------- learn_online
@pytest.mark.parametrize("name", NAMES)
def test_learn_online_after_loading_appends_after_the_dataset(
    name, tiny_model, algo_file, algo_transitions, counting_env, tmp_path
):
    """
    Pre-train, save; later load the checkpoint (its dataset read again) and fine-tune on a real env (a ``Discrete``
    algorithm: epsilon-greedy as DQN, ``exploration_rate``).
    """
    tiny_model(name, str(algo_file), env=env_id_of(name)).learn(STEPS).save(tmp_path / "offline")
    env = counting_env(env_id_of(name), max_episode_steps=25)
    model = ALGOS[name].load(tmp_path / "offline", env=env, device="cpu", buffer_size=100, learning_starts=10)
    model.learn_online(75)  # three episodes (Cal-QL trains after each episode, SB3 collects whole ones)
    buffer, n = model.replay_buffer, len(algo_transitions)
    assert env.steps == 75 and model.num_timesteps == 75
    assert buffer.dataset_size == n and buffer.size() == n + 75
    np.testing.assert_array_equal(buffer.observations[:n].numpy(), algo_transitions.observations)  # untouched
    if name in DISCRETE_NAMES:  # CartPole's episodes end (a fall) or are cut (25 steps): each reset followed one
        assert buffer.timeouts[n : n + 75].sum() + buffer.dones[n : n + 75].sum() == env.resets - 1
    else:
        assert buffer.timeouts[n : n + 75].sum() == 3 and buffer.dones[n : n + 75].sum() == 0  # time limits
    assert model._n_updates > STEPS  # trained during the online phase too
    model.learn(2, reset_num_timesteps=False)  # and offline again, on the dataset and the online rows
    assert env.steps == 75


# -------------------------------------------------------------------------------------------------- export
@pytest.mark.parametrize("name", NAMES)
def test_exported_graphs_give_predicts_actions(name, tiny_model, algo_transitions, tmp_path):
    """
    TorchScript draws BCQ's samples from torch's generator, seeded as ``predict``; ONNX (onnxruntime has its own
    generator) takes ``predict``'s draws as its ``noise`` input. On 500 observations and on one. A ``Discrete``
    algorithm's graph gives ``predict``'s int64 indices (the argmax inside the graph).
    """
    model = tiny_model(name, algo_transitions, env=env_id_of(name)).learn(STEPS)
    observations = sample_observations(model.observation_space, 500, seed=1)
    expected = seeded_predict(model, observations)
    tie_check = dict(model=model, observations=observations) if samples_when_acting(model) else {}
    module = th.jit.load(str(export(model, tmp_path / "policy.pt")))
    for rows in (slice(None), slice(0, 1)):
        th.manual_seed(SEED)
        actions = module(th.from_numpy(observations[rows])).numpy()
        if rows == slice(None) or not tie_check:  # one row of BCQ's draws is not the first row of 500 rows'
            same_actions(name, actions, expected[rows], ATOL, f"{name}.pt[{rows}]", **tie_check)
    if not HAS_ORT:
        return
    import onnxruntime

    path = export(model, tmp_path / "policy.onnx", noise_input=samples_when_acting(model))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {"observation": observations}
    if samples_when_acting(model):
        inputs["noise"] = predict_noise(model, len(observations))
    for rows in (slice(None), slice(0, 1)):
        actions = session.run(["action"], {key: value[rows] for key, value in inputs.items()})[0]
        same_actions(name, actions, expected[rows], ONNX_ATOL, f"{name}.onnx[{rows}]", **tie_check)


def same_actions(name: str, actual: np.ndarray, expected: np.ndarray, atol: float, label: str, **tie_check) -> None:
    """:func:`assert_same_actions`; a ``Discrete`` algorithm's: the same int64 indices."""
    if name in DISCRETE_NAMES:
        assert actual.dtype == expected.dtype == np.int64, label
        np.testing.assert_array_equal(actual, expected, err_msg=label)
    else:
        assert_same_actions(actual, expected, atol, label, **tie_check)
