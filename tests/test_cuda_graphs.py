"""The fast path: device-side loss sums, tensor learning rates, and updates replayed as CUDA graphs.

The graph bookkeeping (warm-up, capture, replay, loss counts, fallback) is tested on CPU with a stand-in
backend whose "replay" re-runs the update's Python code, as a CUDA graph re-runs its kernels. The real
capture, and its parity with the eager path, are tested on CUDA only.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
import torch as th
from conftest import env_id_of
from stable_baselines3.common.logger import Logger

from sb3_offline import BC
from sb3_offline.algorithms import ALGOS
from sb3_offline.common.cuda_graphs import (
    UpdateGraphs,
    can_capture,
    make_capturable,
    portable_optimizer_state,
)
from sb3_offline.common.training import DeviceLossAccumulator, set_learning_rate

#: the algorithms with two kinds of update within 20 steps (a first phase of conftest's PHASE_STEPS, or TD3+BC's
#: delayed actor); the others have one
TWO_KINDS = ("calql", "cql", "discrete_cql", "plas", "rebrac", "td3bc")  # with and without the actor or a target copy
cuda = pytest.mark.skipif(not th.cuda.is_available(), reason="CUDA graphs need a CUDA device")


class ReplayByRerun:
    """Stand-in for the CUDA backend: capture runs nothing; a replay re-runs the update's Python code
    with the loss counts left alone (a replayed graph adds to the sums without calling ``add``)."""

    def __init__(self, losses: DeviceLossAccumulator) -> None:
        self.losses = losses
        self.captures = 0
        self.replays = 0

    def eager(self, update):
        update()

    def capture(self, update):
        self.captures += 1

        def replay() -> None:
            self.replays += 1
            with self.losses.frozen():
                update()

        return replay


class FailingCapture(ReplayByRerun):
    def capture(self, update):
        raise RuntimeError("operation not permitted when stream is capturing")


def _record_logged_losses(model) -> dict[str, float]:
    """The means the model would log, kept (not flushed) at each logger dump, in the returned dict."""
    logs: dict[str, float] = {}
    model._dump_offline_logs = lambda: logs.update(model._losses.means())
    return logs


def _parameters(model) -> dict[str, th.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.policy.state_dict().items()}


# ------------------------------------------------------------------------------ loss accumulator
def test_loss_sums_stay_the_same_tensors_across_flushes():
    losses = DeviceLossAccumulator()
    losses.add("critic_loss", th.tensor(2.0))
    losses.add("critic_loss", th.tensor([4.0]))  # any one-element shape
    total = losses._sums["critic_loss"]
    assert losses.flush(Logger(None, [])) == {"critic_loss": 3.0}
    assert not losses
    assert losses._sums["critic_loss"] is total and total.item() == 0.0  # zeroed in place, kept
    losses.add("critic_loss", th.tensor(5.0))
    assert losses.means() == {"critic_loss": 5.0}


def test_frozen_accumulator_keeps_counts_and_refuses_new_names():
    losses = DeviceLossAccumulator()
    losses.add("a", th.tensor(1.0))
    with losses.frozen():
        losses.add("a", th.tensor(3.0))  # the sum moves (kernels run on replay), the count does not
        with pytest.raises(RuntimeError, match="'b' first appears while an update is captured"):
            losses.add("b", th.tensor(1.0))
    assert losses.counts() == {"a": 1}
    losses.count({"a": 1})
    assert losses.means() == {"a": 2.0}


def test_set_learning_rate_fills_a_tensor_learning_rate_in_place():
    param = th.nn.Parameter(th.zeros(3))
    optimizer = th.optim.Adam([param], lr=1e-3)
    set_learning_rate(optimizer, 5e-4)
    assert optimizer.param_groups[0]["lr"] == 5e-4
    lr = th.tensor(1e-3)
    optimizer.param_groups[0]["lr"] = lr
    set_learning_rate(optimizer, 2e-4)
    assert optimizer.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(2e-4)


def test_portable_optimizer_state_restores_the_eager_settings():
    param = th.nn.Parameter(th.zeros(3))
    optimizer = th.optim.Adam([param], lr=1e-3)
    param.grad = th.ones(3)
    optimizer.step()
    group = optimizer.param_groups[0]
    # what make_capturable leaves in a group (it needs CUDA parameters, so it is mimicked here)
    group["_eager_settings"] = {"capturable": False, "fused": None, "foreach": None}
    group.update(capturable=True, fused=True, foreach=False, lr=th.tensor(3e-4), _lr_value=3e-4)
    state = portable_optimizer_state(optimizer.state_dict())
    saved = state["param_groups"][0]
    assert saved["lr"] == 3e-4 and isinstance(saved["lr"], float)
    assert (saved["capturable"], saved["fused"], saved["foreach"]) == (False, None, None)
    assert "_eager_settings" not in saved and "_lr_value" not in saved
    fresh = th.optim.Adam([th.nn.Parameter(th.zeros(3))], lr=1.0)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["lr"] == 3e-4 and fresh.param_groups[0]["capturable"] is False


def test_make_capturable_switches_flags_and_learning_rate_and_saves_portably(monkeypatch):
    """The switch itself, on CPU tensors (``can_capture`` is forced: stepping a capturable optimizer would
    need CUDA, switching it does not)."""
    import sb3_offline.common.cuda_graphs as cuda_graphs

    monkeypatch.setattr(cuda_graphs, "can_capture", lambda optimizer: True)
    param = th.nn.Parameter(th.zeros(3))
    optimizer = th.optim.Adam([param], lr=1e-3, weight_decay=0.01)
    param.grad = th.ones(3)
    optimizer.step()  # existing state, as after loading a checkpoint
    make_capturable(optimizer)
    group = optimizer.param_groups[0]
    assert group["capturable"] and group["fused"] and group["foreach"] is False
    assert isinstance(group["lr"], th.Tensor) and group["lr"].item() == pytest.approx(1e-3)
    assert optimizer.state[param]["step"].dtype == th.float32
    lr = group["lr"]
    make_capturable(optimizer)  # idempotent: the same learning-rate tensor (a graph may hold it)
    assert optimizer.param_groups[0]["lr"] is lr
    set_learning_rate(optimizer, 4e-4)
    assert lr.item() == pytest.approx(4e-4)
    saved = portable_optimizer_state(optimizer.state_dict())["param_groups"][0]
    assert saved["lr"] == 4e-4 and saved["capturable"] is False and saved["fused"] is None
    assert saved["weight_decay"] == 0.01


def test_cpu_optimizers_cannot_be_captured():
    optimizer = th.optim.Adam([th.nn.Parameter(th.zeros(3))])
    assert not can_capture(optimizer)
    with pytest.raises(ValueError, match="optimizer: expected one with a capturable option and its parameters on CUDA"):
        make_capturable(optimizer)


# ------------------------------------------------------------------------------ graph bookkeeping
def test_update_graphs_warm_up_capture_once_then_replay():
    losses = DeviceLossAccumulator()
    backend = ReplayByRerun(losses)
    graphs = UpdateGraphs(losses, backend, warmup=2)
    value = th.zeros(())

    def update() -> None:
        value.add_(1.0)
        losses.add("loss", value)

    for _ in range(10):
        graphs.run("update", update)
    assert value.item() == 10.0  # exactly one update per run, the capture itself ran nothing
    assert backend.captures == 1 and backend.replays == 8
    assert "update" in graphs
    assert losses.means() == {"loss": 5.5}  # (1 + ... + 10) / 10
    graphs.discard(lambda key: key == "update")
    assert "update" not in graphs


def test_interleaved_updates_each_count_their_own_losses():
    losses = DeviceLossAccumulator()
    backend = ReplayByRerun(losses)
    graphs = UpdateGraphs(losses, backend, warmup=2)

    def critic() -> None:
        losses.add("critic_loss", th.tensor(1.0))
        losses.add("q_value", th.tensor(2.0))

    def actor() -> None:
        losses.add("actor_loss", th.tensor(3.0))

    for step in range(12):
        graphs.run("critic", critic)
        if step % 2:  # the actor every other step, as a delayed policy update would
            graphs.run("actor", actor)
    assert backend.captures == 2
    assert losses.counts() == {"critic_loss": 12, "q_value": 12, "actor_loss": 6}
    assert losses.means() == {"critic_loss": 1.0, "q_value": 2.0, "actor_loss": 3.0}


def test_a_failed_capture_warns_and_stays_eager():
    losses = DeviceLossAccumulator()
    graphs = UpdateGraphs(losses, FailingCapture(losses), warmup=1)
    value = th.zeros(())

    def update() -> None:
        value.add_(1.0)
        losses.add("loss", value)

    with pytest.warns(RuntimeWarning, match="CUDA graph capture of the update 'update' failed.*runs eagerly"):
        for _ in range(5):
            graphs.run("update", update)
    assert value.item() == 5.0 and losses.counts() == {"loss": 5}


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_training_through_update_graphs_equals_eager_training(name, tiny_model, algo_transitions):
    """Each algorithm's update, run by UpdateGraphs (warm-up, capture, replays), trains exactly as the
    plain eager loop: same parameters, same logged losses, two phases each with their own graph."""
    eager = tiny_model(name, algo_transitions, env=env_id_of(name), seed=3)
    graphed = tiny_model(name, algo_transitions, env=env_id_of(name), seed=3)
    backend = ReplayByRerun(graphed._losses)
    graphed._runner.graphs = UpdateGraphs(graphed._losses, backend, warmup=3)
    graphed._runner.applies = lambda *args, **kwargs: True  # type: ignore[method-assign]
    eager_logs, graphed_logs = _record_logged_losses(eager), _record_logged_losses(graphed)
    th.manual_seed(0)
    eager.learn(20, log_interval=None)
    th.manual_seed(0)
    graphed.learn(20, log_interval=None)

    expected_captures = 2 if name in TWO_KINDS else 1
    assert backend.captures == expected_captures
    assert backend.replays == 20 - 3 * expected_captures
    for name, value in _parameters(eager).items():
        th.testing.assert_close(_parameters(graphed)[name], value, rtol=0, atol=0, msg=name)
    assert eager_logs, "nothing was logged"
    assert graphed_logs.keys() == eager_logs.keys() and graphed_logs == pytest.approx(eager_logs)
    if name == "plas":
        assert not any(key[0] == "plas/vae" for key in graphed._runner.graphs._graphs)  # freed once frozen


def test_graphs_are_off_on_cpu_and_with_cuda_graphs_false(tiny_model, pendulum_transitions):
    model = tiny_model("bc", pendulum_transitions)
    assert model.cuda_graphs is True
    assert not model._runner.applies(model.device, model.replay_buffer, list(model._optimizers().values()), True)
    model.learn(5)
    assert model._runner.graphs is None
    off = BC("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, device="cpu", cuda_graphs=False)
    assert off.cuda_graphs is False


# ------------------------------------------------------------------------------------ CUDA only
@cuda
@pytest.mark.parametrize("name", sorted(ALGOS))
def test_cuda_graph_updates_match_eager_updates(name, tiny_model, algo_transitions, tmp_path):
    """Same seed, eager (``cuda_graphs=False``) against captured and replayed: same parameters after
    30 steps (tolerance: fused vs foreach Adam round differently), then a checkpoint that trains on CPU."""
    env = gym.make(env_id_of(name))
    eager = tiny_model(name, algo_transitions, env=env, seed=5, device="cuda", cuda_graphs=False)
    graphed = tiny_model(name, algo_transitions, env=env, seed=5, device="cuda")
    eager_logs, graphed_logs = _record_logged_losses(eager), _record_logged_losses(graphed)
    th.manual_seed(1)
    eager.learn(30, log_interval=None)
    th.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed capture would only warn
        graphed.learn(30, log_interval=None)
    assert graphed._runner.graphs is not None and graphed._runner.graphs._graphs, "nothing was captured"
    assert eager._runner.graphs is None
    for name, value in _parameters(eager).items():
        th.testing.assert_close(_parameters(graphed)[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert graphed_logs and graphed_logs.keys() == eager_logs.keys()
    for name, value in eager_logs.items():
        assert graphed_logs[name] == pytest.approx(value, rel=1e-3, abs=1e-5), name

    graphed.save(tmp_path / "model.zip")
    on_cpu = ALGOS[name].load(tmp_path / "model.zip", env=env, device="cpu", dataset=algo_transitions)
    for optimizer in on_cpu._optimizers().values():
        assert not isinstance(optimizer.param_groups[0]["lr"], th.Tensor)
        assert not optimizer.param_groups[0]["capturable"]
    on_cpu.learn(3)  # the checkpoint trains on CPU


@cuda
def test_cuda_graphs_follow_a_learning_rate_schedule(pendulum_transitions):
    model = BC(
        "MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, device="cuda", learning_rate=lambda p: 1e-3 * p
    )
    model.learn(20, log_interval=None)
    lr = model.actor.optimizer.param_groups[0]["lr"]
    assert isinstance(lr, th.Tensor) and lr.item() == pytest.approx(1e-3 * (1 - 19 / 20), rel=1e-5)
