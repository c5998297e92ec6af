"""IQL: losses on hand-made tensors and fixed batches, the order of the updates, the actor's cosine decay,
save/load of the schedule and the reward transform, offline -> online, and learning on Pendulum."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from golden.cases import box_env
from stable_baselines3.common.logger import Logger

from sb3_offline import IQL, OfflineReplayBuffer
from sb3_offline.common.critics import critic_values
from sb3_offline.common.gaussian_actor import GaussianActor
from sb3_offline.common.normalization import NormalizedFlattenExtractor
from sb3_offline.common.schedules import CosineDecaySchedule
from sb3_offline.common.training import minimize
from sb3_offline.common.weights import exp_weights, expectile_loss
from sb3_offline.datasets import Transitions, pendulum_imperfect_demonstrations, save_hdf5
from sb3_offline.her import OfflineHerReplayBuffer
from sb3_offline.iql.iql import AUTHORS_REWARD_RULES, CosineDecayOverRun
from sb3_offline.zoo import CONFIG_DIR

TINY = dict(net_arch=[16, 32])


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small networks on a shared CPU


@pytest.fixture(scope="module")
def small_pendulum() -> Transitions:
    return pendulum_imperfect_demonstrations(600, seed=0)


def make(data: Any, env: gym.Env | None = None, **kwargs: Any) -> IQL:
    kwargs.setdefault("policy_kwargs", TINY)
    kwargs.setdefault("buffer_size", 0)
    return IQL("MlpPolicy", env or gym.make("Pendulum-v1"), dataset=data, device="cpu", seed=0, **kwargs)


def fix_batch(model: IQL, batch_size: int) -> Any:
    """Sample one batch and make the buffer return it from now on (for the model and its deep copies)."""
    assert model.replay_buffer is not None
    data = model.replay_buffer.sample(batch_size)
    model.replay_buffer.sample = lambda n, env=None: data  # type: ignore[method-assign]
    return data


def hand_log_prob(actor: GaussianActor, features: th.Tensor, actions: th.Tensor) -> np.ndarray:
    """The diagonal Gaussian's log-density written out: sum_i -((a - mu) / sigma)^2 / 2 - log sigma - log(2 pi) / 2."""
    with th.no_grad():
        mean = actor.mu(features).numpy().astype(np.float64)
        log_std = actor.log_std().numpy().astype(np.float64)
    z = (actions.numpy().astype(np.float64) - mean) / np.exp(log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(axis=1)


def flushed(model: IQL) -> IQL:
    model._losses.flush(Logger(None, []))
    return model


# ------------------------------------------------------------------------------------------- defaults
def test_defaults_follow_the_authors(small_pendulum: Transitions) -> None:
    model = IQL("MlpPolicy", gym.make("Pendulum-v1"), dataset=small_pendulum, device="cpu")
    assert model.policy.net_arch == {"pi": [256, 256], "qf": [256, 256], "vf": [256, 256]}
    assert (model.batch_size, model.tau, model.gamma) == (256, 0.005, 0.99)
    assert (model.expectile, model.temperature, model.max_weight) == (0.7, 3.0, 100.0)
    for network in (model.actor, model.critic, model.value):
        assert network.optimizer.param_groups[0]["lr"] == 3e-4
        assert network.optimizer.param_groups[0]["weight_decay"] == 0
    # the actor's cosine decay runs over the run (the authors' max_steps): an SB3 schedule of the progress
    schedule = model.learning_rates()["actor"]
    assert model.actor_lr_decay_steps == "auto" and isinstance(schedule, CosineDecayOverRun)
    assert (schedule(1.0), schedule(0.5), schedule(0.0)) == pytest.approx((3e-4, 1.5e-4, 0.0))
    # the authors' policy: log sigma a parameter clipped to [-5, 2], started at 0; tanh mean
    assert (model.actor.log_std_mode, model.actor.min_log_std, model.actor.max_log_std) == ("clip", -5.0, 2.0)
    assert model.actor.log_std().detach().numpy() == pytest.approx([0.0])
    assert isinstance(model.actor.mu[-1], th.nn.Tanh)
    # only the critics have targets; V is a network of the policy with its own optimizer
    assert model.policy.actor_target is None and model.value is model.policy.value
    assert list(model._target_pairs) == ["critic_target"]
    assert "value.optimizer" in model._get_torch_save_params()[0]
    # rewards as recorded: the authors' reward rules are for their tasks only (test below)
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer) and model.reward_transform is None
    assert buffer.reward_transform.is_identity
    np.testing.assert_array_equal(buffer.rewards[: len(small_pendulum), 0].numpy(), small_pendulum.rewards)
    assert model.buffer_size == 1_000_000 and model.online_batch_size is None


def test_locomotion_rule_is_the_authors_and_set_on_their_tasks_only(small_pendulum: Transitions) -> None:
    """
    ``"iql_locomotion"``: r * 1000 / (max - min episode return), resolved from the dataset and kept with the model;
    the authors' ``train_offline.py`` applies it to HalfCheetah, Walker2d and Hopper only (AntMaze: ``r - 1``), and
    so do the zoo's entries, while every other entry (and the constructor) keeps the rewards as recorded.
    """
    model = make(small_pendulum, reward_transform="iql_locomotion")
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    ends = small_pendulum.terminations | small_pendulum.truncations
    ends[-1] = True
    returns = np.add.reduceat(small_pendulum.rewards.astype(np.float64), np.r_[0, np.flatnonzero(ends)[:-1] + 1])
    assert buffer.reward_transform.scale == pytest.approx(1000.0 / (returns.max() - returns.min()))
    assert model.replay_buffer_kwargs["reward_transform"] == buffer.reward_transform.to_dict()
    np.testing.assert_allclose(
        buffer.rewards[: len(small_pendulum), 0].numpy(),
        small_pendulum.rewards * buffer.reward_transform.scale,
        rtol=1e-6,
    )
    entries = yaml.load((CONFIG_DIR / "iql.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert sorted(t for e in entries for t in AUTHORS_REWARD_RULES if t in e.lower()) == sorted(AUTHORS_REWARD_RULES)
    for env_id, entry in entries.items():
        rule = next((AUTHORS_REWARD_RULES[t] for t in AUTHORS_REWARD_RULES if t in env_id.lower()), None)
        assert entry.get("reward_transform") == rule, env_id


def test_old_checkpoint_keeps_its_reward_rule_and_decay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint saved by 0.1.0 (defaults "iql_locomotion" and a 1M-step decay) trains on as it was saved."""
    folder = Path(__file__).resolve().parent / "data" / "checkpoints"
    monkeypatch.chdir(folder.parents[2])  # its dataset is recorded relative to the repository root
    model = IQL.load(folder / "iql.zip", env=box_env(), device="cpu")
    assert (model.reward_transform, model.actor_lr_decay_steps) == ("iql_locomotion", 1_000_000)
    model.learn(2, reset_num_timesteps=False)
    assert model.replay_buffer is not None and model.replay_buffer.reward_transform.scale == pytest.approx(1000 / 18)
    assert repr(model.learning_rates()["actor"]) == "CosineDecaySchedule(initial=0.0003, horizon=1000000, alpha=0.0)"


def test_reward_transform_argument(small_pendulum: Transitions, fetch_transitions: Transitions) -> None:
    model = make(small_pendulum, reward_transform="antmaze")
    assert model.replay_buffer is not None
    np.testing.assert_allclose(model.replay_buffer.rewards[:10, 0].numpy(), small_pendulum.rewards[:10] - 1.0)
    model = make(small_pendulum, reward_transform=None)
    assert model.replay_buffer is not None
    np.testing.assert_allclose(model.replay_buffer.rewards[:10, 0].numpy(), small_pendulum.rewards[:10])
    # a buffer that takes no reward transform (HER's rewards come from compute_reward) asks for None, the default
    her = dict(dataset=fetch_transitions, replay_buffer_class=OfflineHerReplayBuffer, policy_kwargs=TINY)
    assert isinstance(IQL("MultiInputPolicy", "FetchReach-v4", **her).replay_buffer, OfflineHerReplayBuffer)
    with pytest.raises(ValueError, match=r"reward_transform: expected None with OfflineHerReplayBuffer"):
        IQL("MultiInputPolicy", "FetchReach-v4", reward_transform="iql_locomotion", **her)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(expectile=1.0), r"expectile: expected a value in \(0, 1\), found 1.0"),
        (dict(temperature=-1.0), r"temperature: expected >= 0, found -1.0"),
        (dict(max_weight=0.0), r"max_weight: expected > 0, found 0.0"),
        (dict(actor_lr_decay_steps=0), r"actor_lr_decay_steps: expected 'auto', None or >= 1 gradient step, found 0"),
        (dict(actor_lr_decay_steps="run"), r"actor_lr_decay_steps: expected 'auto', None .* found 'run'"),
        (
            dict(normalize_observations=True, policy_kwargs=dict(features_extractor_class=th.nn.Identity)),
            r"features_extractor_class.\]: expected NormalizedFlattenExtractor \(or none\) with "
            r"normalize_observations=True",
        ),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], message: str, small_pendulum: Transitions) -> None:
    with pytest.raises(ValueError, match=message):
        make(small_pendulum, **kwargs)


def test_networks_start_with_the_authors_orthogonal_initialisation(small_pendulum: Transitions) -> None:
    """Every linear layer of actor, critics and value: orthogonal with gain sqrt(2), zero bias (``common.py``)."""
    model = make(small_pendulum, policy_kwargs=dict(net_arch=[16, 32]))
    layers = [
        m
        for network in (model.actor.mu, *model.critic.q_networks, model.value)
        for m in network.modules()
        if isinstance(m, th.nn.Linear)
    ]
    assert len(layers) == 3 * 4  # actor, two critics, value: 2 hidden layers and the output each
    for layer in layers:
        w = layer.weight.detach().double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        np.testing.assert_allclose(gram.numpy(), 2.0 * np.eye(gram.shape[0]), atol=1e-5)
        assert not layer.bias.detach().any()
    for p, q in zip(model.critic.parameters(), model.critic_target.parameters(), strict=True):
        assert th.equal(p, q)


# ------------------------------------------------------------------------------------- the losses
def test_expectile_loss_is_asymmetric() -> None:
    u = th.tensor([1.0, -1.0, 2.0, -2.0])
    # |tau - 1(u < 0)| u^2: 0.7 on the positive differences, 0.3 on the negative ones
    assert expectile_loss(u, 0.7).item() == pytest.approx((0.7 * 1 + 0.3 * 1 + 0.7 * 4 + 0.3 * 4) / 4)
    assert expectile_loss(th.tensor([1.0]), 0.9).item() == pytest.approx(0.9)
    assert expectile_loss(th.tensor([-1.0]), 0.9).item() == pytest.approx(0.1)
    assert expectile_loss(u, 0.5).item() == pytest.approx(0.5 * (u**2).mean().item())  # 0.5: half the MSE
    # minimising it over a constant v gives the expectile: above the mean for tau > 0.5
    samples = th.tensor([0.0, 0.0, 0.0, 10.0])
    v = th.zeros((), requires_grad=True)
    optimizer = th.optim.Adam([v], lr=0.1)
    for _ in range(2000):
        minimize(optimizer, expectile_loss(samples - v, 0.9))
    # the 0.9-expectile of {0, 0, 0, 10}: 0.9 * (10 - v) = 0.1 * 3 * v  ->  v = 9 / 1.2 = 7.5
    assert v.item() == pytest.approx(7.5, abs=1e-2)
    assert v.item() > samples.mean().item()


def test_awr_weights_are_clipped_at_100() -> None:
    advantages = th.tensor([[0.0], [1.0], [-1.0], [2.0], [50.0]])
    weights = exp_weights(advantages, 3.0, 100.0)
    expected = np.minimum(np.exp(3.0 * np.array([0.0, 1.0, -1.0, 2.0, 50.0])), 100.0)
    np.testing.assert_allclose(weights[:, 0].numpy(), expected, rtol=1e-6)
    assert weights.max().item() == 100.0 and th.isfinite(exp_weights(th.tensor([1e4]), 3.0)).all()


def test_value_loss_regresses_on_the_target_critics(small_pendulum: Transitions) -> None:
    model = make(small_pendulum, batch_size=64)
    model.learn(10)
    with th.no_grad():  # critics and targets apart, so that using the wrong ones shows
        for p in model.critic.parameters():
            p.add_(0.3 * th.randn_like(p))
    data = fix_batch(model, 64)
    with th.no_grad():
        features = model.policy.features(data.observations)
        q_target = th.min(*[q(th.cat([features, data.actions], 1)) for q in model.critic_target.q_networks])
        q_online = critic_values(model.critic, features, data.actions).min(dim=1, keepdim=True).values
        v = model.value(features)
    diff = (q_target - v).numpy().astype(np.float64)
    by_hand = np.mean(np.where(diff > 0, 0.7, 0.3) * diff**2)
    online = (q_online - v).numpy().astype(np.float64)
    assert abs(by_hand - np.mean(np.where(online > 0, 0.7, 0.3) * online**2)) > 1e-3 * by_hand  # they differ
    flushed(model)._update(64)
    assert model._losses.means()["value_loss"] == pytest.approx(by_hand, rel=1e-5)


def test_critic_target_bootstraps_from_v_and_not_at_terminations(inverted_transitions: Transitions) -> None:
    model = make(inverted_transitions, env=gym.make("InvertedPendulum-v5"), batch_size=64, reward_transform=None)
    model.learn(5)
    assert model.replay_buffer is not None
    data = model.replay_buffer.gather(th.arange(len(inverted_transitions)))
    assert data.dones.any() and not data.dones.all()
    target = model.compute_critic_target(data)
    with th.no_grad():
        next_v = model.value(model.policy.features(data.next_observations))
    expected = data.rewards + 0.99 * (1.0 - data.dones) * next_v
    np.testing.assert_allclose(target.numpy(), expected.numpy(), rtol=1e-6)
    terminated = data.dones[:, 0] == 1.0
    np.testing.assert_allclose(target[terminated].numpy(), data.rewards[terminated].numpy())


def test_one_step_replayed_by_hand_v_first_then_actor_and_q_with_the_new_v(small_pendulum: Transitions) -> None:
    """
    The authors' order (learner.py ``_update_jit``): V on the target critics, then the actor and the twin Q
    both with the *new* V, then the targets. A replay of the same batch on a copy gives the same networks;
    the same replay with the V from before its update does not.
    """
    model = make(small_pendulum, batch_size=64)
    model.learn(10)
    data = fix_batch(model, 64)
    reference, old_v_replay = copy.deepcopy(model), copy.deepcopy(model)
    flushed(model)._update(64)
    logged = model._losses.means()

    def replay(m: IQL, new_v: bool) -> dict[str, float]:
        features = m.policy.features(data.observations)
        with th.no_grad():
            q_min = critic_values(m.critic_target, features, data.actions).min(dim=1, keepdim=True).values
            v_before = m.value(features)
            next_v_before = m.value(m.policy.features(data.next_observations))
        value_loss = expectile_loss(q_min - m.value(features), 0.7)
        minimize(m.value.optimizer, value_loss)
        with th.no_grad():
            v = m.value(features) if new_v else v_before
            next_v = m.value(m.policy.features(data.next_observations)) if new_v else next_v_before
        weights = np.minimum(np.exp(3.0 * (q_min - v).numpy().astype(np.float64)[:, 0]), 100.0)
        actor_by_hand = -np.mean(weights * hand_log_prob(m.actor, features, data.actions))
        actor_loss = -(th.as_tensor(weights, dtype=th.float32) * m.actor.distribution(features).log_prob(data.actions))
        minimize(m.actor.optimizer, actor_loss.mean())
        q_target = data.rewards + 0.99 * (1.0 - data.dones) * next_v
        current = critic_values(m.critic, features, data.actions)
        critic_loss = ((current - q_target) ** 2).mean(dim=0).sum()
        minimize(m.critic.optimizer, critic_loss)
        with th.no_grad():
            for p, tp in zip(m.critic.parameters(), m.critic_target.parameters(), strict=True):
                tp.mul_(0.995).add_(0.005 * p)
        return {"value_loss": value_loss.item(), "actor_loss": actor_by_hand, "critic_loss": critic_loss.item()}

    by_hand = replay(reference, new_v=True)
    for name in ("value_loss", "actor_loss", "critic_loss"):
        assert logged[name] == pytest.approx(by_hand[name], rel=1e-4, abs=1e-6), name
    for name in ("value", "actor", "critic", "critic_target"):
        for ours, theirs in zip(getattr(model, name).parameters(), getattr(reference, name).parameters(), strict=True):
            th.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    # the same step with the V from before its update (rlkit's order) ends elsewhere
    replay(old_v_replay, new_v=False)
    moved = [
        not th.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        for name in ("actor", "critic")
        for ours, theirs in zip(
            getattr(model, name).parameters(), getattr(old_v_replay, name).parameters(), strict=True
        )
    ]
    assert any(moved)


# --------------------------------------------------------------------------------- learning rates
def cosine(steps: range, horizon: int) -> list[float]:
    return [3e-4 * 0.5 * (1 + math.cos(math.pi * k / horizon)) for k in steps]


def rates(model: IQL, *networks: str) -> list[Any]:
    """The learning rates of ``networks`` at each update from now on (a tuple per update, or the one network's)."""
    used: list[Any] = []
    update = model._update

    def recording(batch_size: int) -> None:
        values = tuple(float(getattr(model, n).optimizer.param_groups[0]["lr"]) for n in networks)
        used.append(values[0] if len(networks) == 1 else values)
        update(batch_size)

    model._update = recording  # type: ignore[method-assign]
    return used


def test_actor_learning_rate_decays_along_a_cosine_across_learn_calls(small_pendulum: Transitions) -> None:
    model = make(small_pendulum, batch_size=32, actor_lr_decay_steps=10, buffer_size=50)
    used = rates(model, "actor", "critic", "value")
    model.learn(4)
    model.learn(4)  # a new learn call (step count reset) continues the schedule: it counts gradient updates
    np.testing.assert_allclose([u[0] for u in used], cosine(range(8), 10), rtol=1e-9)
    assert {u[1] for u in used} == {3e-4} and {u[2] for u in used} == {3e-4}  # critics and V: constant
    model.learn(4)
    # updates 8 .. 11: the last two of the decay, then 0 past its horizon
    tail = [*cosine(range(8, 10), 10), 0.0, 0.0]
    assert [u[0] for u in used[8:]] == pytest.approx(tail, rel=1e-9, abs=1e-15)
    # fine-tuning: the actor's learning rate is its constant initial value (antmaze_finetune_config.py)
    used.clear()
    model.learn_online(6)
    assert used and {u[0] for u in used} == {3e-4}
    # and offline again: the cosine at the number of updates done (past its horizon: 0)
    used.clear()
    model.learn(1)
    assert used[0][0] == 0.0


def test_actor_decay_auto_runs_over_the_run_none_turns_it_off(small_pendulum: Transitions, tmp_path: Path) -> None:
    """
    ``actor_lr_decay_steps="auto"``: the authors' ``cosine_decay_schedule(lr, max_steps)`` with ``max_steps`` the
    run's gradient steps; a continued run (``reset_num_timesteps=False``) stretches it over all its steps, a new run
    starts a new decay, a checkpoint resumed mid-run continues it exactly, fine-tuning keeps it constant.
    """
    model = make(small_pendulum, batch_size=32, buffer_size=50)
    used = rates(model, "actor")
    model.learn(8)
    assert used == pytest.approx(cosine(range(8), 8), rel=1e-9)
    model.learn(4, reset_num_timesteps=False)  # the run now has 12 steps: the 12-step cosine from step 8 on
    assert used[8:] == pytest.approx(cosine(range(8, 12), 12), rel=1e-9)
    model.learn(4)  # a new run
    assert used[12:] == pytest.approx(cosine(range(4), 4), rel=1e-9)
    model.learn_online(6)
    assert set(used[16:]) == {3e-4}

    interrupted = make(small_pendulum, batch_size=32)
    first = rates(interrupted, "actor")
    interrupted.learn(10, callback=lambda local, _: local["self"].num_timesteps < 5)  # stopped after 5 of 10
    interrupted.save(tmp_path / "iql")
    resumed = IQL.load(tmp_path / "iql", env=gym.make("Pendulum-v1"), device="cpu", dataset=small_pendulum)
    second = rates(resumed, "actor")
    resumed.learn(5, reset_num_timesteps=False)
    assert first + second == pytest.approx(cosine(range(10), 10), rel=1e-9)
    constant = make(small_pendulum, batch_size=32, actor_lr_decay_steps=None, actor_learning_rate=1e-4)  # no decay
    constant.learn(3)
    assert constant.learning_rates()["actor"] == 1e-4 and constant.actor.optimizer.param_groups[0]["lr"] == 1e-4


# ------------------------------------------------------------------------- save / load / Dict / online
def test_save_load_keeps_networks_schedule_and_reward_transform(small_pendulum: Transitions, tmp_path: Path) -> None:
    path = save_hdf5(small_pendulum, tmp_path / "pendulum.hdf5")
    rule = dict(reward_transform="iql_locomotion")
    model = make(str(path), batch_size=32, actor_lr_decay_steps=50, normalize_observations=True, **rule)
    assert isinstance(model.policy.features_extractor, NormalizedFlattenExtractor)
    model.learn(20)
    obs = small_pendulum.observations[:8]
    before = model.predict(obs, deterministic=True)[0]
    with th.no_grad():
        values = model.value(model.policy.features(th.as_tensor(obs)))
    model.save(tmp_path / "iql")

    loaded = IQL.load(tmp_path / "iql", env=gym.make("Pendulum-v1"), device="cpu")
    assert loaded.replay_buffer is None  # not read yet: predict needs no dataset (the normaliser is in the policy)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], before)
    with th.no_grad():
        th.testing.assert_close(loaded.value(loaded.policy.features(th.as_tensor(obs))), values)
    for name in ("actor", "critic", "value"):
        saved = getattr(model, name).optimizer.state_dict()["state"]
        restored = getattr(loaded, name).optimizer.state_dict()["state"]
        assert saved.keys() == restored.keys() and all(
            th.equal(saved[k]["exp_avg"], restored[k]["exp_avg"]) for k in saved
        )
    assert loaded.replay_buffer_kwargs["reward_transform"] == model.replay_buffer_kwargs["reward_transform"]
    assert isinstance(loaded.learning_rates()["actor"], CosineDecaySchedule) and loaded._n_updates == 20
    loaded.learn(2)  # the dataset is read again; the schedule continues at update 20
    assert loaded.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.5 * (1 + math.cos(math.pi * 21 / 50)))
    assert (
        loaded.replay_buffer is not None
        and loaded.replay_buffer.reward_transform == model.replay_buffer.reward_transform
    )  # type: ignore[union-attr]


def test_online_rewards_are_transformed_and_batches_have_the_online_size(
    small_pendulum: Transitions, counting_env
) -> None:
    env = counting_env()
    model = make(
        small_pendulum, env=env, batch_size=32, online_batch_size=48, buffer_size=500, reward_transform="iql_locomotion"
    )
    model.learn(20)
    assert env.steps == 0
    sizes: list[int] = []
    sample = model.replay_buffer.sample  # type: ignore[union-attr]
    model.replay_buffer.sample = lambda n, env=None: sizes.append(n) or sample(n, env)  # type: ignore[union-attr,method-assign,func-returns-value]
    model.learn_online(250)
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    assert env.steps == 250 and buffer.dataset_size == len(small_pendulum)
    assert buffer.size() == len(small_pendulum) + 250
    # the dataset's rows are untouched; the new rewards are transformed like the dataset's
    scale = buffer.reward_transform.scale
    np.testing.assert_allclose(
        buffer.rewards[: buffer.dataset_size, 0].numpy(), small_pendulum.rewards * scale, rtol=1e-6
    )
    assert buffer.rewards[buffer.dataset_size : buffer.size()].max().item() <= 0.0
    assert model._n_updates == 20 + 250 and set(sizes) == {48} and model.batch_size == 32
    model.learn(5, reset_num_timesteps=False)
    assert env.steps == 250 and sizes[-1] == 32


# ------------------------------------------------------------------------------------------ learning
@pytest.mark.slow  # more than 15 s on a busy 2-core machine
def test_iql_learns_offline_on_imperfect_demonstrations(imperfect_pendulum: Transitions, pendulum_return) -> None:
    """
    IQL at its defaults (temperature 3, expectile 0.7, rewards as recorded, the actor's decay over the run) on the
    BCQ paper's imperfect demonstrations, 3000 gradient steps, 64-64 networks (the authors' 256-256). Measured
    (conftest's 10 evaluation episodes; random -1284), training seeds 0-4: -540, -685, -551, -812, -625 (mean
    -643, std 100); the bar, random + 350 = -934, is 122 below the worst seed.
    """
    model = make(imperfect_pendulum, policy_kwargs=dict(net_arch=[64, 64]))
    model.learn(3000, log_interval=None)
    iql_return, random_return = pendulum_return(model), pendulum_return(None)
    assert iql_return > random_return + 350, (iql_return, random_return)
