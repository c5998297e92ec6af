"""HER on FetchReach-v4: SB3's HerReplayBuffer online, OfflineHerReplayBuffer on recorded episodes, collection.

HerDDPG (HER's DDPG) and the README's HER example: tests/test_her_ddpg.py.
"""

from __future__ import annotations

import json
import sys
import zipfile
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import BOX_NAMES
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_offline import AWAC, BatchDDPG
from sb3_offline.algorithms import ALGOS
from sb3_offline.datasets import DatasetValidationError, Transitions, load_transitions, record_transitions, recover_env
from sb3_offline.her import (
    FetchReward,
    NormalizedCombinedExtractor,
    OfflineHerReplayBuffer,
    evaluate_success_rate,
    normalizer_kwargs,
)
from sb3_offline.her.collect import collect_fetch_dataset, episode_success_rate, make_goal_env, train_her_agent

ENV_ID = "FetchReach-v4"
EPISODE = 50  # FetchReach's time limit


def reach_controller(obs: dict[str, np.ndarray]) -> np.ndarray:
    """A proportional controller towards the goal: a near-perfect FetchReach behaviour."""
    move = np.clip(10.0 * (obs["desired_goal"] - obs["achieved_goal"]), -1.0, 1.0)
    return np.concatenate([move, [0.0]]).astype(np.float32)


def fetch_success_rate(model: Any, n_episodes: int = 20) -> float:
    return evaluate_success_rate(model, make_goal_env(ENV_ID), n_episodes=n_episodes, seed=1000)


#: one torch thread (conftest): on 2 shared cores (with MuJoCo) a 2-thread pool oversubscribes these small networks
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fetch_env() -> gym.Env:
    return make_goal_env(ENV_ID)


@pytest.fixture(scope="module")
def reach_data() -> Transitions:
    """600 FetchReach steps (12 episodes of 50), half by a noisy controller, half random: goals are reached."""
    env = make_goal_env(ENV_ID)
    rng = np.random.default_rng(0)

    def behaviour(obs: dict[str, np.ndarray]) -> np.ndarray:
        if rng.random() < 0.5:
            return env.action_space.sample()
        return np.clip(reach_controller(obs) + 0.3 * rng.standard_normal(4), -1, 1).astype(np.float32)

    data = record_transitions(env, 600, policy=behaviour, seed=0)
    assert data.truncations.sum() == 12 and not data.terminations.any()
    return data


def make_buffer(data: Any, spaces_of: gym.Env, **kwargs: Any) -> OfflineHerReplayBuffer:
    """An OfflineHerReplayBuffer on the CPU for the spaces of ``spaces_of`` (rewards by FetchReach's compute_reward)."""
    kwargs.setdefault("env", DummyVecEnv([lambda: make_goal_env(ENV_ID)]))
    return OfflineHerReplayBuffer(
        0, spaces_of.observation_space, spaces_of.action_space, device="cpu", dataset=data, **kwargs
    )


def dataset_rows(data: Transitions, next_observations: dict[str, th.Tensor]) -> np.ndarray:
    """The dataset row of each sampled transition, found by its next 'observation' vector (unique per row)."""
    table = data.next_observations["observation"].astype(np.float32)  # type: ignore[index]
    sampled = next_observations["observation"].numpy()
    matches = (sampled[:, None, :] == table[None, :, :]).all(axis=2)
    assert (matches.sum(axis=1) == 1).all()
    return matches.argmax(axis=1)


def episode_of(data: Transitions) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its episode number and its step in the episode."""
    episode, step = np.empty(len(data), np.int64), np.empty(len(data), np.int64)
    for number, part in enumerate(data.episode_slices()):
        episode[part] = number
        step[part] = np.arange(part.stop - part.start)
    return episode, step


# ------------------------------------------------------------------------------------ relabelling
@pytest.mark.parametrize("reward_type", ["sparse", "dense"])
def test_relabelled_rewards_equal_env_compute_reward(reward_type: str) -> None:
    env = make_goal_env(ENV_ID, reward_type=reward_type)
    data = record_transitions(env, 300, policy=reach_controller, seed=1)
    venv = DummyVecEnv([lambda: make_goal_env(ENV_ID, reward_type=reward_type)])
    th.manual_seed(0)
    for compute_reward in (None, FetchReward.from_env(venv)):
        buffer = make_buffer(data, env, env=venv, compute_reward=compute_reward)
        samples = buffer.sample(512)
        achieved = samples.next_observations["achieved_goal"].numpy()
        desired = samples.observations["desired_goal"].numpy()
        expected = env.unwrapped.compute_reward(achieved, desired, {})  # type: ignore[attr-defined]
        np.testing.assert_allclose(samples.rewards.numpy()[:, 0], expected, rtol=1e-6, atol=1e-6)
        # s' carries the same (relabelled) goal as s
        assert th.equal(samples.next_observations["desired_goal"], samples.observations["desired_goal"])
        virtual = samples.rewards[-int(buffer.her_ratio * 512) :]
        if reward_type == "sparse":  # relabelling makes successes out of a controller that mostly reaches
            assert set(np.unique(samples.rewards.numpy())) == {-1.0, 0.0}
            assert (virtual == 0).float().mean() > 0.3


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_goals_come_from_the_same_episode(reach_data: Transitions, fetch_env: gym.Env, strategy: str) -> None:
    buffer = make_buffer(reach_data, fetch_env, goal_selection_strategy=strategy)
    episode, step = episode_of(reach_data)
    th.manual_seed(1)
    samples = buffer.sample(1000)
    rows = dataset_rows(reach_data, samples.next_observations)
    n_virtual = int(buffer.her_ratio * 1000)
    next_achieved = reach_data.next_observations["achieved_goal"].astype(np.float32)  # type: ignore[index]
    for i in range(1000 - n_virtual, 1000):
        goal = samples.observations["desired_goal"][i].numpy()
        sources = np.flatnonzero((next_achieved == goal).all(axis=1))
        same_episode = sources[episode[sources] == episode[rows[i]]]
        assert len(same_episode) >= 1, f"goal of sample {i} is from no state of its episode"
        goal_steps = step[same_episode]
        if strategy == "future":  # SB3's inclusive future: the transition's own next achieved goal or a later one
            assert (goal_steps >= step[rows[i]]).any()
        elif strategy == "final":
            assert (goal_steps == EPISODE - 1).any()

    # every allowed step is drawn, no other: 4000 draws for one transition at step 30 of episode 3
    row = 3 * EPISODE + 30
    goal_rows = buffer.sample_goal_rows(th.full((4000,), row)).numpy()
    assert (episode[goal_rows] == 3).all()
    expected = {"future": set(range(30, EPISODE)), "final": {EPISODE - 1}, "episode": set(range(EPISODE))}[strategy]
    assert set(step[goal_rows].tolist()) == expected
    if strategy != "final":  # uniform over the allowed steps
        counts = np.bincount(step[goal_rows])[sorted(expected)]
        assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()


@pytest.mark.parametrize("n_sampled_goal", [0, 1, 4, 9])
def test_relabelled_fraction(reach_data: Transitions, fetch_env: gym.Env, n_sampled_goal: int) -> None:
    buffer = make_buffer(reach_data, fetch_env, n_sampled_goal=n_sampled_goal)
    assert buffer.her_ratio == pytest.approx(1 - 1 / (n_sampled_goal + 1))
    batch = 300
    samples = buffer.sample(batch)
    rows = dataset_rows(reach_data, samples.next_observations)
    recorded = reach_data.observations["desired_goal"].astype(np.float32)[rows]  # type: ignore[index]
    relabelled = ~(samples.observations["desired_goal"].numpy() == recorded).all(axis=1)
    n_virtual = int((1 - 1 / (n_sampled_goal + 1)) * batch)
    # SB3's layout: the real transitions first, then the virtual ones
    assert relabelled.sum() == n_virtual and relabelled[batch - n_virtual :].all()
    np.testing.assert_array_equal(
        samples.rewards.numpy()[: batch - n_virtual, 0], reach_data.rewards[rows][: batch - n_virtual]
    )
    # the dataset itself is never written
    assert th.equal(
        buffer.observations["desired_goal"][:600],
        th.as_tensor(reach_data.observations["desired_goal"], dtype=th.float32),
    )  # type: ignore[index]


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_same_statistics_as_sb3_her_replay_buffer(reach_data: Transitions, fetch_env: gym.Env, strategy: str) -> None:
    """SB3's HerReplayBuffer filled with the same episodes relabels to the same distribution of rewards."""
    venv = DummyVecEnv([lambda: make_goal_env(ENV_ID)])
    sb3 = HerReplayBuffer(
        1000, fetch_env.observation_space, fetch_env.action_space, venv, device="cpu", goal_selection_strategy=strategy
    )
    for i in range(len(reach_data)):
        sb3.add(
            {k: v[i : i + 1] for k, v in reach_data.observations.items()},  # type: ignore[union-attr]
            {k: v[i : i + 1] for k, v in reach_data.next_observations.items()},  # type: ignore[union-attr]
            reach_data.actions[i : i + 1],
            reach_data.rewards[i : i + 1],
            np.array([reach_data.truncations[i]]),
            [{"TimeLimit.truncated": bool(reach_data.truncations[i])}],
        )
    ours = make_buffer(reach_data, fetch_env, env=venv, goal_selection_strategy=strategy)
    np.random.seed(0)
    th.manual_seed(0)
    n_virtual = int(ours.her_ratio * 4096)
    theirs_rewards = np.concatenate([sb3.sample(4096).rewards[-n_virtual:].numpy() for _ in range(5)])
    our_rewards = np.concatenate([ours.sample(4096).rewards[-n_virtual:].numpy() for _ in range(5)])
    # success fraction of relabelled transitions (about 0.5 for future, 0.3 for final, 0.4 for episode here)
    assert abs(theirs_rewards.mean() - our_rewards.mean()) < 0.02, (theirs_rewards.mean(), our_rewards.mean())


# ----------------------------------------------------------------------------------- bad input
def test_errors_name_the_field(reach_data: Transitions, fetch_env: gym.Env, pendulum_env: gym.Env) -> None:
    venv = DummyVecEnv([lambda: make_goal_env(ENV_ID)])
    with pytest.raises(ValueError, match="observation_space: expected a Dict with keys"):
        OfflineHerReplayBuffer(
            0, pendulum_env.observation_space, pendulum_env.action_space, env=venv, dataset=reach_data
        )
    with pytest.raises(ValueError, match="goal_selection_strategy: expected one of"):
        make_buffer(reach_data, fetch_env, goal_selection_strategy="past")
    with pytest.raises(ValueError, match="copy_info_dict: expected False"):
        make_buffer(reach_data, fetch_env, copy_info_dict=True)
    with pytest.raises(ValueError, match="n_sampled_goal: expected an integer >= 0"):
        make_buffer(reach_data, fetch_env, n_sampled_goal=-1)

    # a dataset without the goal keys
    no_goals = Transitions(
        observations={"observation": reach_data.observations["observation"]},  # type: ignore[index]
        actions=reach_data.actions,
        rewards=reach_data.rewards,
        next_observations={"observation": reach_data.next_observations["observation"]},  # type: ignore[index]
        terminations=reach_data.terminations,
        truncations=reach_data.truncations,
    )
    with pytest.raises(DatasetValidationError, match=r"field 'observations': expected keys \['achieved_goal'"):
        make_buffer(no_goals, fetch_env)

    # an env without compute_reward
    class NoReward(gym.Env):
        observation_space = fetch_env.observation_space
        action_space = fetch_env.action_space

    with pytest.raises(ValueError, match="env: expected a goal-conditioned env with a compute_reward"):
        make_buffer(reach_data, fetch_env, env=DummyVecEnv([NoReward]))
    with pytest.raises(ValueError, match="env: expected a Fetch env"):
        FetchReward.from_env(NoReward())

    # episode ends lost: two episodes run into each other, HER would mix their goals
    merged = reach_data.select(slice(None))
    merged.truncations = merged.truncations.copy()
    merged.truncations[49] = False
    with pytest.raises(DatasetValidationError, match=r"field 'observations/achieved_goal': expected row 50 equal"):
        make_buffer(merged, fetch_env)

    # SB3's own HerReplayBuffer holds no dataset: not silently ignored
    with pytest.raises(ValueError, match="replay_buffer_class: expected an OfflineReplayBuffer subclass"):
        BatchDDPG("MultiInputPolicy", fetch_env, dataset=reach_data, replay_buffer_class=HerReplayBuffer)


# ---------------------------------------------------------------------------- with the algorithms
SMALL: dict[str, dict[str, Any]] = {
    "bc": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64),
    "bcq": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32], vae=[32])), batch_size=64),
    "batch_ddpg": dict(policy_kwargs=dict(net_arch=[32, 32]), batch_size=64),
    "plas": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32], vae=[32])), batch_size=64, vae_steps=10),
    "awac": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32])), batch_size=64, buffer_size=0),
    "cql": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64, bc_steps=10),
    "lapo": dict(policy_kwargs=dict(net_arch=dict(pi=[32], qf=[32], vae=[32], vf=[32])), batch_size=64),
    # relabelled rewards come from the env: IQL's dataset reward rule does not apply to them
    "iql": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64, reward_transform=None),
    "td3bc": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64),
    "sac_n": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64, n_critics=3),
    "edac": dict(policy_kwargs=dict(net_arch=[32]), batch_size=64, n_critics=3),
}


@pytest.mark.parametrize("algo", BOX_NAMES)  # FetchReach's actions are a Box
def test_learn_predict_save_load(algo: str, reach_data: Transitions, tmp_path: Path) -> None:
    from sb3_offline.datasets import save_minari

    save_minari(reach_data, "test/fetch-reach-v0")
    env = make_goal_env(ENV_ID)
    her = dict(n_sampled_goal=4, goal_selection_strategy="future")
    # Cal-QL: its bound is the returns-to-go of the recorded rewards, which relabelling replaces; ReBRAC: its critic's
    # penalty needs each row's next action, and a relabelled batch does not say which rows it holds
    if algo in ("calql", "rebrac"):
        with pytest.raises(ValueError, match="replay_buffer_class"):
            ALGOS[algo]("MultiInputPolicy", env, dataset=reach_data, replay_buffer_class=OfflineHerReplayBuffer)
        return
    small = dict(SMALL[algo])
    small["policy_kwargs"] = {**small["policy_kwargs"], **normalizer_kwargs("test/fetch-reach-v0")}
    model = ALGOS[algo](
        "MultiInputPolicy",
        env,
        dataset="test/fetch-reach-v0",
        replay_buffer_class=OfflineHerReplayBuffer,
        replay_buffer_kwargs=her,
        device="cpu",
        seed=0,
        **small,
    )
    assert isinstance(model.replay_buffer, OfflineHerReplayBuffer) and model.replay_buffer.size() == 600
    extractors = [m for m in model.policy.modules() if isinstance(m, NormalizedCombinedExtractor)]
    assert extractors and all(e.normalizer.standardizers["desired_goal"].mean.shape == (3,) for e in extractors)
    model.learn(30)
    obs, _ = env.reset(seed=3)
    th.manual_seed(7)  # BCQ and PLAS decode VAE samples even when deterministic
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)
    batch = {k: np.stack([v, v]) for k, v in obs.items()}
    assert model.predict(batch, deterministic=True)[0].shape == (2, 4)

    model.save(tmp_path / "model")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        data = json.loads(archive.read("data"))
    assert data["dataset"] == "test/fetch-reach-v0" and "replay_buffer" not in data
    loaded = ALGOS[algo].load(tmp_path / "model", env=env, device="cpu")
    assert loaded.replay_buffer is None and loaded.replay_buffer_kwargs == her
    th.manual_seed(7)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], action, rtol=1e-5, atol=1e-6)
    loaded.learn(5, reset_num_timesteps=False)  # the dataset is read again, the env given to the buffer
    buffer = loaded.replay_buffer
    assert isinstance(buffer, OfflineHerReplayBuffer) and buffer.env is loaded.env and buffer.n_sampled_goal == 4
    # a model loaded without env recovers it from the Minari dataset's spec
    alone = ALGOS[algo].load(tmp_path / "model", device="cpu")
    alone.learn(2)
    assert isinstance(alone.replay_buffer, OfflineHerReplayBuffer) and alone.replay_buffer.env is not None


def count_host_transfers(run: Any) -> dict[str, int]:
    """Calls of ``Tensor.item``, ``torch.as_tensor`` and ``torch.from_numpy`` from outside torch during ``run()``."""
    calls = {"item": 0, "as_tensor": 0, "from_numpy": 0}
    originals = {"item": th.Tensor.item, "as_tensor": th.as_tensor, "from_numpy": th.from_numpy}

    def counting(key: str) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not str(sys._getframe(1).f_globals.get("__name__", "")).startswith("torch"):
                calls[key] += 1
            return originals[key](*args, **kwargs)

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(th.Tensor, "item", counting("item"))
        patch.setattr(th, "as_tensor", counting("as_tensor"))
        patch.setattr(th, "from_numpy", counting("from_numpy"))
        run()
    return calls


def test_no_host_round_trip_with_device_rewards(reach_data: Transitions) -> None:
    """With FetchReward nothing leaves the device per batch; with env.compute_reward one transfer back per batch."""
    env = make_goal_env(ENV_ID)
    counts: dict[str, dict[str, int]] = {}
    for name, reward in (("device", FetchReward()), ("env", None)):
        model = BatchDDPG(
            "MultiInputPolicy",
            env,
            dataset=reach_data,
            replay_buffer_class=OfflineHerReplayBuffer,
            replay_buffer_kwargs=dict(compute_reward=reward),
            device="cpu",
            **SMALL["batch_ddpg"],
        )
        model.learn(5)
        counts[name] = count_host_transfers(partial(model.learn, 50, log_interval=None, reset_num_timesteps=False))
    assert counts["device"] == {"item": 0, "as_tensor": 0, "from_numpy": 0}
    assert counts["env"] == {"item": 0, "as_tensor": 50, "from_numpy": 0}


# ---------------------------------------------------------------------------------- online rows
def test_online_episodes_are_tracked_and_relabelled(reach_data: Transitions, fetch_env: gym.Env) -> None:
    """Online transitions of 2 envs go after the dataset; an episode is sampled once done, dropped once overwritten."""
    buffer = make_buffer(reach_data.select(slice(0, 100)), fetch_env, n_envs=2, online_capacity=2 * 12)
    D = 100

    def add(step: int, done: tuple[bool, bool]) -> None:
        obs = {k: np.zeros((2, *s.shape), np.float32) for k, s in fetch_env.observation_space.spaces.items()}  # type: ignore[union-attr]
        nxt = {k: v.copy() for k, v in obs.items()}
        for e in range(2):
            obs["observation"][e, 0] = step + 1000 * e
            nxt["achieved_goal"][e] = [step, e, 7.0]  # the goal it reaches tells the step and the env
            obs["desired_goal"][e] = nxt["desired_goal"][e] = [-1.0, -1.0, -1.0]
        buffer.add(obs, nxt, np.zeros((2, 4), np.float32), np.full(2, -1.0), np.array(done), [{}, {}])

    # env 0: episodes of 4 steps; env 1: one episode of 6 steps then one of 5
    for t in range(6):
        add(t, (t % 4 == 3, t == 5))
    assert (buffer.ep_length[D : D + 12].view(6, 2)[:, 0] == th.tensor([4, 4, 4, 4, 0, 0])).all()
    assert (buffer.ep_length[D : D + 12].view(6, 2)[:, 1] == 6).all()

    th.manual_seed(0)
    for _ in range(20):
        rows = buffer._sample_rows(64)
        assert bool((buffer.ep_length[rows] > 0).all())  # never a transition of a running episode
        online = rows[rows >= D]
        goals = buffer.next_observations["achieved_goal"][buffer.sample_goal_rows(online)]  # type: ignore[index]
        own = buffer.next_observations["achieved_goal"][online]  # type: ignore[index]
        assert th.equal(goals[:, 1], own[:, 1])  # the same env's episode
        assert bool((goals[:, 0] >= own[:, 0]).all())  # future: same step or later

    # the ring holds 12 steps: steps 6..11 overwrite nothing, step 12 overwrites step 0 (env 0's first
    # episode and env 1's 6-step episode lose their first rows: neither can be sampled any more)
    for t in range(6, 13):
        add(t, (t % 4 == 3, t == 10))
    by_env = buffer.ep_length[D : D + 24].view(12, 2)
    assert buffer.size() == D + 24
    assert (by_env[1:4, 0] == 0).all() and (by_env[1:6, 1] == 0).all()  # both old episodes dropped
    assert (by_env[4:8, 0] == 4).all() and (by_env[8:12, 0] == 4).all()  # env 0: steps 4-7, 8-11
    assert (by_env[6:11, 1] == 5).all()  # env 1: steps 6-10
    samples = buffer.sample(256)
    assert samples.rewards.shape == (256, 1)

    buffer.truncate_last_trajectory()  # env 0's step 12 and env 1's steps 11-12 become sampleable
    assert by_env[0, 0] == 1 and by_env[11, 1] == 2 and by_env[0, 1] == 2
    assert (buffer.timeouts[D : D + 2] == 1).all() and (buffer.dones[D : D + 2] == 0).all()
    buffer.reset()
    assert buffer.size() == D and not bool((buffer.ep_length[D:] > 0).any())


def test_fine_tuning_keeps_relabelling(reach_data: Transitions, tmp_path: Path) -> None:
    """AWAC offline then online on the same OfflineHerReplayBuffer; its online episodes survive save/load."""
    env = make_goal_env(ENV_ID)
    model = AWAC(
        "MultiInputPolicy",
        env,
        dataset=reach_data,
        replay_buffer_class=OfflineHerReplayBuffer,
        device="cpu",
        seed=0,
        **{**SMALL["awac"], "buffer_size": 200},
    )
    model.learn(10)
    model.learn_online(120)  # two whole episodes and 20 steps of a third
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineHerReplayBuffer) and buffer.online_size == 120
    assert bool((buffer.ep_length[600:700] == 50).all()) and not bool(buffer.ep_length[700:720].any())
    assert buffer.timeouts[600:720].sum() == 2 and buffer.dones[600:720].sum() == 0

    model.save_replay_buffer(tmp_path / "buffer.pkl")
    other = AWAC("MultiInputPolicy", env, dataset=reach_data, device="cpu", **SMALL["awac"])
    other.load_replay_buffer(tmp_path / "buffer.pkl")  # SB3: set_env, then close the running episode
    loaded = other.replay_buffer
    assert isinstance(loaded, OfflineHerReplayBuffer) and loaded.env is other.env
    assert bool((loaded.ep_length[700:720] == 20).all()) and loaded.timeouts[719] == 1
    assert loaded.sample(64).rewards.shape == (64, 1)


# --------------------------------------------------------------------------------- normalisation
def test_normalizer_statistics_and_forward(reach_data: Transitions, fetch_env: gym.Env) -> None:
    kwargs = normalizer_kwargs(reach_data)
    assert kwargs["features_extractor_class"] is NormalizedCombinedExtractor
    stats = kwargs["features_extractor_kwargs"]
    obs = reach_data.observations
    assert isinstance(obs, dict)
    np.testing.assert_allclose(stats["mean"]["observation"], obs["observation"].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(stats["std"]["observation"], np.maximum(obs["observation"].std(axis=0), 0.01), rtol=1e-6)
    # the two goal keys share one statistic, over both
    goals = np.concatenate([obs["achieved_goal"], obs["desired_goal"]])
    for key in ("achieved_goal", "desired_goal"):
        np.testing.assert_allclose(stats["mean"][key], goals.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(stats["std"][key], np.maximum(goals.std(axis=0), 0.01), rtol=1e-6)
    assert min(stats["std"]["observation"]) == 0.01  # FetchReach's gripper state never changes: eps

    extractor = NormalizedCombinedExtractor(fetch_env.observation_space, **stats)  # type: ignore[arg-type]
    batch = {k: th.as_tensor(v[:5], dtype=th.float32) for k, v in obs.items()}
    expected = th.cat(
        [
            ((batch[k] - th.tensor(stats["mean"][k])) / th.tensor(stats["std"][k])).clamp(-5, 5)
            for k in sorted(batch)  # CombinedExtractor's order: the Dict space's (sorted) keys
        ],
        dim=1,
    )
    th.testing.assert_close(extractor(batch), expected)
    assert extractor.features_dim == 16

    space = fetch_env.observation_space
    with pytest.raises(ValueError, match=r"mean: expected the keys of the observation space"):
        NormalizedCombinedExtractor(space, mean={"observation": [0.0] * 10}, std=stats["std"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"std\['achieved_goal'\]: expected 3 values, found 2"):
        NormalizedCombinedExtractor(space, stats["mean"], {**stats["std"], "achieved_goal": [1.0, 1.0]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"std\['desired_goal'\]: expected values > 0"):
        NormalizedCombinedExtractor(  # type: ignore[arg-type]
            space, stats["mean"], {**stats["std"], "desired_goal": [1.0, 0.0, 1.0]}, eps=0.0, eps_mode="max"
        )
    with pytest.raises(ValueError, match="field 'observations': expected a dict of arrays"):
        normalizer_kwargs(record_transitions("Pendulum-v1", 10, seed=0))


# ------------------------------------------------------------------------------------ collection
def test_collect_random_fetch_dataset() -> None:
    collection = collect_fetch_dataset(ENV_ID, 230, behaviour="random", dataset_id="test/fetch-random-v0", seed=0)
    data = load_transitions("test/fetch-random-v0")
    assert len(data) == 230 and data.env_id == ENV_ID
    # Minari's episode structure: 50-step episodes closed by truncations, never terminations
    assert [s.stop - s.start for s in data.episode_slices()] == [50, 50, 50, 50, 30]
    assert data.truncations.sum() == 5 and not data.terminations.any()
    assert collection.dataset.total_episodes == 5 and collection.agent is None
    assert recover_env("test/fetch-random-v0").spec.id == ENV_ID
    for key in ("observation", "achieved_goal", "desired_goal"):
        np.testing.assert_allclose(data.observations[key], collection.transitions.observations[key], rtol=1e-6)  # type: ignore[index]
    assert collection.success_rate == episode_success_rate(data)


def test_episode_success_rate_is_the_env_is_success(fetch_env: gym.Env) -> None:
    data = record_transitions(fetch_env, 500, policy=reach_controller, seed=2)
    ends = [s.stop - 1 for s in data.episode_slices()]
    achieved = data.next_observations["achieved_goal"][ends]  # type: ignore[index]
    desired = data.next_observations["desired_goal"][ends]  # type: ignore[index]
    reached = fetch_env.unwrapped.compute_reward(achieved, desired, {}) == 0  # type: ignore[attr-defined]
    assert episode_success_rate(data) == pytest.approx(reached.mean()) and reached.mean() > 0.8
    random = record_transitions(fetch_env, 500, seed=2)
    assert episode_success_rate(random) < 0.2
    with pytest.raises(ValueError, match="field 'next_observations': expected a dict"):
        episode_success_rate(record_transitions("Pendulum-v1", 10, seed=0))
    # the same measure, from the env's info["is_success"] while acting
    assert evaluate_success_rate(reach_controller, fetch_env, n_episodes=10) > 0.8
    assert evaluate_success_rate(None, fetch_env, n_episodes=10) < 0.2
    with pytest.raises(ValueError, match=r"env: expected info\['is_success'\]"):
        evaluate_success_rate(None, gym.make("Pendulum-v1"), n_episodes=1)


def test_collect_with_a_her_agent_and_noise() -> None:
    collection = collect_fetch_dataset(
        ENV_ID,
        100,
        behaviour="tqc",
        train_timesteps=150,
        agent_kwargs=dict(learning_starts=100, batch_size=32, policy_kwargs=dict(net_arch=[16])),
        noise_std=0.1,
        random_prob=0.3,
        dataset_id="test/fetch-tqc-v0",
        device="cpu",
    )
    from sb3_contrib import TQC

    assert isinstance(collection.agent, TQC) and isinstance(collection.agent.replay_buffer, HerReplayBuffer)
    assert collection.agent.num_timesteps == 150
    vec_normalize = collection.agent.get_vec_normalize_env()
    assert vec_normalize is not None and not vec_normalize.training  # rl-zoo3's normalize: True, frozen
    assert "TQC+HER" in collection.dataset.storage.metadata["algorithm_name"]
    assert len(load_transitions("test/fetch-tqc-v0")) == 100
    # a trained model or a function as the behaviour; no dataset_id: nothing written
    again = collect_fetch_dataset(ENV_ID, 50, behaviour=collection.agent, seed=1)
    assert again.agent is collection.agent and again.dataset is None and len(again.transitions) == 50
    scripted = collect_fetch_dataset(ENV_ID, 150, behaviour=reach_controller, seed=1)
    assert scripted.agent is None and scripted.success_rate == 1.0
    assert "reach_controller" in scripted.transitions.source


def test_collect_errors() -> None:
    with pytest.raises(ValueError, match=r"behaviour: expected one of \['random', 'tqc'"):
        collect_fetch_dataset(ENV_ID, 10, behaviour="expert")
    with pytest.raises(ValueError, match="n_transitions: expected > 0, found 0"):
        collect_fetch_dataset(ENV_ID, 0, behaviour="random")
    with pytest.raises(ValueError, match="env_id: expected a goal-conditioned env"):
        collect_fetch_dataset("Pendulum-v1", 10, behaviour="random")
    with pytest.raises(ValueError, match=r"algo: expected one of \['tqc', 'sac', 'td3', 'ddpg'\]"):
        train_her_agent(ENV_ID, "ppo")
