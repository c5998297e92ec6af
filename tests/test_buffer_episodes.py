"""Issue 17: the buffer knows its episodes (ids, returns-to-go, reward transforms, index sampling)."""

from __future__ import annotations

import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl

from sb3_offline.buffers import OfflineReplayBuffer, RewardTransform, resolve_reward_transform
from sb3_offline.common.episodes import discounted_returns_to_go
from sb3_offline.datasets import Transitions

OBS_SPACE = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT_SPACE = spaces.Box(-1.0, 1.0, (1,), np.float32)


def hand_transitions(rewards: list[float], terminations: list[int], truncations: list[int]) -> Transitions:
    """Transitions with the given rewards and episode flags (row indices); observations are the row number."""
    n = len(rewards)
    obs = np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)
    terms, truncs = np.zeros(n, bool), np.zeros(n, bool)
    terms[terminations] = True
    truncs[truncations] = True
    return Transitions(
        observations=obs,
        actions=np.zeros((n, 1), np.float32),
        rewards=np.asarray(rewards, np.float32),
        next_observations=obs + 0.5,
        terminations=terms,
        truncations=truncs,
    )


def make_buffer(data: Transitions | None, **kwargs) -> OfflineReplayBuffer:
    kwargs.setdefault("device", "cpu")
    return OfflineReplayBuffer(0, OBS_SPACE, ACT_SPACE, dataset=data, **kwargs)


def add_step(
    buffer: OfflineReplayBuffer, rewards: list[float], dones: list[bool], truncated: list[bool] | None = None
) -> None:
    """One ``add`` of ``n_envs`` transitions (SB3's arguments: ``done`` = terminated or truncated)."""
    n = buffer.n_envs
    truncated = truncated or [False] * n
    obs = np.zeros((n, 3), np.float32)
    infos = [{"TimeLimit.truncated": t} if t else {} for t in truncated]
    done = np.asarray(dones, bool) | np.asarray(truncated, bool)
    buffer.add(obs, obs, np.zeros((n, 1), np.float32), np.asarray(rewards, np.float32), done, infos)


def loop_rtg(rewards: np.ndarray, ends: np.ndarray, gamma: float) -> np.ndarray:
    """Cal-QL's calc_return_to_go, per trajectory (a trajectory ends at an end flag or at the data's end)."""
    out = np.zeros(len(rewards))
    prev = 0.0
    for i in reversed(range(len(rewards))):
        if ends[i] or i == len(rewards) - 1:
            prev = 0.0
        out[i] = rewards[i] + gamma * prev
        prev = out[i]
    return out


# 10 rows: a termination at row 2, a truncation at row 6, rows 7..9 unclosed (the data's end closes them)
REWARDS = [1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
TERMS, TRUNCS = [2], [6]


# ------------------------------------------------------------------------------------- episode index
def test_episode_index_by_hand() -> None:
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=4)
    assert buffer.n_episodes == 3
    # the online rows are made by the first online transition: until then, the dataset's rows only
    assert buffer.episode_ids.dtype == th.int64 and buffer.episode_ids.shape == (10,)
    assert buffer.episode_ids.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert buffer.episode_starts.tolist() == [0, 3, 7] and buffer.episode_starts.dtype == th.int64
    assert buffer.episode_lengths.tolist() == [3, 4, 3] and buffer.episode_lengths.dtype == th.int64
    # closed at the end by a flag: no empty extra episode
    closed = make_buffer(hand_transitions(REWARDS, [2, 9], [6]))
    assert closed.n_episodes == 3 and closed.episode_lengths.tolist() == [3, 4, 3]
    single = make_buffer(hand_transitions([1.0, 1.0], [], []))
    assert single.n_episodes == 1 and single.episode_ids.tolist() == [0, 0]


def test_episode_index_on_recorded_data(inverted_transitions: Transitions, pendulum_transitions: Transitions) -> None:
    env = gym.make("InvertedPendulum-v5")
    buffer = OfflineReplayBuffer(0, env.observation_space, env.action_space, device="cpu", dataset=inverted_transitions)
    slices = inverted_transitions.episode_slices()
    assert buffer.n_episodes == len(slices)
    assert buffer.episode_starts.tolist() == [s.start for s in slices]
    assert buffer.episode_lengths.tolist() == [s.stop - s.start for s in slices]
    expected = np.concatenate([np.full(s.stop - s.start, i) for i, s in enumerate(slices)])
    assert np.array_equal(buffer.episode_ids.numpy(), expected)
    pendulum = gym.make("Pendulum-v1")
    buffer = OfflineReplayBuffer(
        0, pendulum.observation_space, pendulum.action_space, device="cpu", dataset=pendulum_transitions
    )
    assert buffer.n_episodes == 5 and buffer.episode_lengths.tolist() == [200] * 5


# ------------------------------------------------------------------------------------- returns-to-go
def test_returns_to_go_by_hand() -> None:
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS))
    rtg = buffer.returns_to_go(0.5)
    assert rtg.dtype == th.float32 and rtg.shape == (10, 1) and rtg.device == buffer.device
    expected = [
        1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3,  # termination: G_T = r_T
        1.875, 1.75, 1.5, 1.0,  # truncation: nothing added for the unseen steps
        3.5, 3.0, 2.0,  # the data's end
    ]  # fmt: skip
    assert rtg[:, 0].tolist() == pytest.approx(expected)
    assert buffer.rtg_valid.shape == (10, 1) and bool(buffer.rtg_valid.all())
    assert buffer.returns_to_go(0.5) is rtg  # cached per gamma
    assert buffer.returns_to_go(1.0)[:, 0].tolist() == pytest.approx([6, 5, 3, 4, 3, 2, 1, 6, 4, 2])
    assert buffer.returns_to_go(0.0)[:, 0].tolist() == pytest.approx(REWARDS)
    with pytest.raises(ValueError, match="gamma"):
        buffer.returns_to_go(1.5)


def test_returns_to_go_on_recorded_data(inverted_transitions: Transitions) -> None:
    env = gym.make("InvertedPendulum-v5")
    buffer = OfflineReplayBuffer(0, env.observation_space, env.action_space, device="cpu", dataset=inverted_transitions)
    ends = inverted_transitions.episode_ends
    expected = loop_rtg(inverted_transitions.rewards.astype(np.float64), ends, 0.99)
    np.testing.assert_allclose(buffer.returns_to_go(0.99)[:, 0].numpy(), expected, rtol=1e-6)
    # each episode's last row (terminated or truncated): its own reward only
    assert np.array_equal(buffer.returns_to_go(0.99)[:, 0].numpy()[ends], inverted_transitions.rewards[ends])


@pytest.mark.parametrize("n", [1, 2, 3, 1000, 4097])
def test_scan_matches_loop(n: int) -> None:
    rng = np.random.default_rng(n)
    rewards = rng.normal(size=n)
    ends = rng.random(n) < 0.01
    np.testing.assert_allclose(discounted_returns_to_go(rewards, ends, 0.97), loop_rtg(rewards, ends, 0.97), rtol=1e-9)
    no_end = np.zeros(n, bool)  # one long episode closed by the data's end
    np.testing.assert_allclose(discounted_returns_to_go(rewards, no_end, 0.999), loop_rtg(rewards, no_end, 0.999))


# ----------------------------------------------------------------------------------- reward transforms
def iql_normalize_reference(rewards: np.ndarray, terminations: np.ndarray, truncations: np.ndarray) -> np.ndarray:
    """IQL's train_offline.normalize: trajectories split at dones_float, sorted by return, r / spread * 1000."""
    dones_float = (terminations | truncations).astype(np.float32)
    dones_float[-1] = 1.0
    trajs: list[list[float]] = [[]]
    for i in range(len(rewards)):
        trajs[-1].append(float(rewards[i]))
        if dones_float[i] == 1.0 and i + 1 < len(rewards):
            trajs.append([])
    trajs.sort(key=sum)
    return rewards / (sum(trajs[-1]) - sum(trajs[0])) * 1000.0


def test_iql_rule_by_hand() -> None:
    # episode returns 6, 4, 6: spread 2, scale 1000 / 2
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), reward_transform="iql_locomotion")
    assert buffer.reward_transform == RewardTransform(scale=500.0, shift=0.0)
    assert buffer.rewards[:, 0].tolist() == pytest.approx([500 * r for r in REWARDS])
    # returns-to-go from the transformed rewards
    assert buffer.returns_to_go(1.0)[:, 0].tolist() == pytest.approx([500 * g for g in [6, 5, 3, 4, 3, 2, 1, 6, 4, 2]])


def test_iql_rule_on_recorded_data(pendulum_transitions: Transitions) -> None:
    env = gym.make("Pendulum-v1")
    data = pendulum_transitions
    buffer = OfflineReplayBuffer(
        0, env.observation_space, env.action_space, device="cpu", dataset=data, reward_transform="iql_locomotion"
    )
    expected = iql_normalize_reference(data.rewards.astype(np.float64), data.terminations, data.truncations)
    np.testing.assert_allclose(buffer.rewards[:, 0].numpy(), expected, rtol=1e-5)
    returns = [float(data.rewards[s].astype(np.float64).sum()) for s in data.episode_slices()]
    assert buffer.reward_transform.scale == pytest.approx(1000.0 / (max(returns) - min(returns)))


def test_antmaze_dict_and_resolved_transforms(pendulum_transitions: Transitions) -> None:
    data = hand_transitions(REWARDS, TERMS, TRUNCS)
    antmaze = make_buffer(data, reward_transform="antmaze")
    assert antmaze.reward_transform == RewardTransform(1.0, -1.0)
    assert antmaze.rewards[:, 0].tolist() == pytest.approx([r - 1 for r in REWARDS])
    affine = make_buffer(data, reward_transform=dict(scale=2.0, shift=0.5))
    assert affine.rewards[:, 0].tolist() == pytest.approx([2 * r + 0.5 for r in REWARDS])
    assert make_buffer(data).reward_transform == RewardTransform()  # None: identity
    assert make_buffer(data).rewards[:, 0].tolist() == REWARDS
    # a resolved transform (or its dict) rebuilds exactly, from another dataset
    trained = make_buffer(data, reward_transform="iql_locomotion").reward_transform
    env = gym.make("Pendulum-v1")
    for spec in (trained, trained.to_dict()):
        other = OfflineReplayBuffer(
            0, env.observation_space, env.action_space, device="cpu", dataset=pendulum_transitions,
            reward_transform=spec,
        )  # fmt: skip
        assert other.reward_transform == trained
        np.testing.assert_allclose(other.rewards[:, 0].numpy(), pendulum_transitions.rewards * 500.0, rtol=1e-6)
    assert RewardTransform(**trained.to_dict()) == trained
    # numpy and torch alike
    assert trained(np.array([1.0], np.float32)).dtype == np.float32
    assert trained(th.tensor([1.0])).tolist() == [500.0]
    assert trained(np.array([2])).tolist() == [1000.0]  # integers are not truncated


def test_lapo_max_rules_by_hand(pendulum_transitions: Transitions) -> None:
    """LAPO's authors divide by the largest reward; 'max_abs' is the same there and also defined for r <= 0."""
    data = hand_transitions([2.0, -1.0, 4.0, 0.5], [1], [3])
    for rule in ("max", "max_abs"):  # max r = 4 >= |min r|: both divide by 4
        buffer = make_buffer(data, reward_transform=rule)
        assert buffer.reward_transform == RewardTransform(scale=0.25, shift=0.0)
        assert buffer.rewards[:, 0].tolist() == pytest.approx([0.5, -0.25, 1.0, 0.125])
    dominated = hand_transitions([1.0, -8.0], [], [1])  # |min r| > max r: max_abs divides by 8, max by 1
    assert make_buffer(dominated, reward_transform="max_abs").reward_transform.scale == pytest.approx(1 / 8)
    assert make_buffer(dominated, reward_transform="max").reward_transform.scale == pytest.approx(1.0)
    # Pendulum: every reward <= 0; 'max' would flip their signs, 'max_abs' puts them in [-1, 0]
    env = gym.make("Pendulum-v1")
    spaces_ = (env.observation_space, env.action_space)
    with pytest.raises(ValueError, match=r"reward_transform: 'max' expected a largest reward > 0, found rewards in"):
        OfflineReplayBuffer(0, *spaces_, device="cpu", dataset=pendulum_transitions, reward_transform="max")
    buffer = OfflineReplayBuffer(0, *spaces_, device="cpu", dataset=pendulum_transitions, reward_transform="max_abs")
    largest = float(np.abs(pendulum_transitions.rewards.astype(np.float64)).max())
    assert buffer.reward_transform.scale == pytest.approx(1.0 / largest)
    assert float(buffer.rewards.min()) == pytest.approx(-1.0) and float(buffer.rewards.max()) <= 0.0
    with pytest.raises(ValueError, match=r"'max_abs' expected a reward != 0"):
        make_buffer(hand_transitions([0.0, 0.0], [], [1]), reward_transform="max_abs")
    with pytest.raises(ValueError, match=r"expected a dataset to compute 'max_abs' from"):
        resolve_reward_transform("max_abs")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (
            "iql",
            r"reward_transform: expected one of \['antmaze', 'iql_locomotion', 'lapo_antmaze', 'max', 'max_abs', "
            r"'max_else_max_abs'\], found 'iql'",
        ),
        (3, "reward_transform: expected None, a RewardTransform"),
        (dict(scale=2.0, offset=1.0), r"reward_transform: expected a dict with keys 'scale' and 'shift', found keys"),
        (dict(scale=0.0), "reward_transform: expected a finite, non-zero scale, found scale=0.0"),
        (dict(shift=float("nan")), "reward_transform: expected a finite shift, found shift=nan"),
        (dict(scale="2"), "reward_transform: expected a real number as scale, found '2'"),
    ],
)
def test_bad_reward_transform(spec: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), reward_transform=spec)


def test_iql_rule_needs_a_spread_and_a_dataset() -> None:
    same = hand_transitions([1.0, 2.0, 2.0, 1.0], [1], [])  # two episodes, both of return 3
    with pytest.raises(
        ValueError, match=r"reward_transform: 'iql_locomotion' expected .* max > min, found max = min = 3"
    ):
        make_buffer(same, reward_transform="iql_locomotion")
    with pytest.raises(ValueError, match="reward_transform: expected a dataset"):
        make_buffer(None, online_capacity=4, reward_transform="iql_locomotion")
    with pytest.raises(ValueError, match="reward_transform"):
        resolve_reward_transform("iql_locomotion")


def test_transform_applies_to_online_rewards() -> None:
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=4, reward_transform="iql_locomotion")
    add_step(buffer, [1.0], [False])
    add_step(buffer, [-2.0], [True])
    assert buffer.rewards[10:12, 0].tolist() == [500.0, -1000.0]
    assert buffer.returns_to_go(0.5)[10:12, 0].tolist() == pytest.approx([500.0 - 500.0, -1000.0])
    online_only = make_buffer(None, online_capacity=4, reward_transform="antmaze")
    add_step(online_only, [1.0], [False])
    assert online_only.rewards[0, 0].item() == 0.0


# ---------------------------------------------------------------------------------- online episodes
@pytest.mark.parametrize("ask_first", [True, False])
def test_online_returns_to_go_invalid_until_the_episode_ends(ask_first: bool) -> None:
    """Cached before the adds (kept up to date by add) or computed after them: the same values."""
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=10)
    if ask_first:
        rtg = buffer.returns_to_go(0.5)
    for reward in (1.0, 2.0, 4.0):
        add_step(buffer, [reward], [False])
    assert buffer.episode_ids[10:13].tolist() == [3, 3, 3] and buffer.n_online_episodes == 1
    assert not bool(buffer.rtg_valid[10:13].any())
    if ask_first:
        assert rtg[10:13, 0].tolist() == [0.0, 0.0, 0.0]
    else:
        assert buffer.returns_to_go(0.5)[10:13, 0].tolist() == [0.0, 0.0, 0.0]  # the lazy path masks them too
    add_step(buffer, [8.0], [True])  # a termination ends it
    assert bool(buffer.rtg_valid[10:14].all())
    rtg = buffer.returns_to_go(0.5)
    assert rtg[10:14, 0].tolist() == pytest.approx([1 + 0.5 * 6, 2 + 0.5 * 8, 4 + 0.5 * 8, 8])
    # the next episode: a new id, cut by a time limit (nothing added after the cut)
    add_step(buffer, [2.0], [False])
    add_step(buffer, [2.0], [False], truncated=[True])
    assert buffer.episode_ids[14:16].tolist() == [4, 4]
    assert buffer.timeouts[15, 0] == 1.0 and buffer.dones[15, 0] == 0.0
    assert rtg[14:16, 0].tolist() == pytest.approx([3.0, 2.0])
    assert buffer.returns_to_go(0.5)[14:16, 0].tolist() == pytest.approx([3.0, 2.0])
    # a gamma asked for only now agrees with the ones kept up to date
    assert buffer.returns_to_go(0.25)[10:16, 0].tolist() == pytest.approx(
        [1 + 0.25 * (2 + 0.25 * (4 + 0.25 * 8)), 2 + 0.25 * (4 + 0.25 * 8), 4 + 0.25 * 8, 8, 2.5, 2.0]
    )
    assert not bool(buffer.rtg_valid[16:].any()) and buffer.episode_ids[16:].tolist() == [-1] * 4


def test_two_envs_online() -> None:
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=8, n_envs=2)
    rtg = buffer.returns_to_go(0.5)
    add_step(buffer, [1.0, 10.0], [False, False])  # rows 10 (env 0), 11 (env 1)
    add_step(buffer, [2.0, 20.0], [True, False])  # env 0's episode ends
    add_step(buffer, [3.0, 30.0], [False, True])  # env 0 starts its second episode; env 1's first ends
    add_step(buffer, [4.0, 40.0], [False, False])
    # ids: env 0 -> 3, env 1 -> 4 (first add, env order), env 0's second episode -> 5, env 1's second -> 6
    assert buffer.episode_ids[10:18].tolist() == [3, 4, 3, 4, 5, 4, 5, 6]
    assert buffer.n_online_episodes == 4
    assert buffer.rtg_valid[10:18, 0].tolist() == [True, True, True, True, False, True, False, False]
    expected = [1 + 0.5 * 2, 10 + 0.5 * (20 + 0.5 * 30), 2, 20 + 0.5 * 30, 0, 30, 0, 0]
    assert rtg[10:18, 0].tolist() == pytest.approx(expected)
    fresh = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=8, n_envs=2)
    for rewards, dones in (([1.0, 10.0], [False, False]), ([2.0, 20.0], [True, False])):
        add_step(fresh, rewards, dones)
    add_step(fresh, [3.0, 30.0], [False, True])
    add_step(fresh, [4.0, 40.0], [False, False])
    assert fresh.returns_to_go(0.5)[10:18, 0].tolist() == pytest.approx(expected)  # the lazy path, per env stream
    add_step(buffer, [5.0, 50.0], [True, True])  # the ring wraps: rows 10, 11 are overwritten
    assert buffer.episode_ids[10:12].tolist() == [5, 6]
    assert rtg[[10, 12, 14, 16], 0].tolist() == pytest.approx([5, 2, 3 + 0.5 * (4 + 0.5 * 5), 4 + 0.5 * 5])
    assert rtg[[11, 13, 15, 17], 0].tolist() == pytest.approx([50, 20 + 0.5 * 30, 30, 40 + 0.5 * 50])


def test_ring_wrap() -> None:
    """An overwritten episode's rows lose their id; an episode longer than the ring keeps exact returns-to-go."""
    buffer = make_buffer(None, online_capacity=4)
    assert buffer.n_episodes == 0
    rtg = buffer.returns_to_go(0.5)
    for reward, done in ((1.0, False), (1.0, False), (1.0, True), (2.0, False), (2.0, False)):
        add_step(buffer, [reward], [done])
    # episode 0 took rows 0..2, episode 1 rows 3, 0 (wrapped): row 0 is no longer episode 0's
    assert buffer.episode_ids.tolist() == [1, 0, 0, 1]
    assert buffer.rtg_valid[:, 0].tolist() == [False, True, True, False]
    assert rtg[:, 0].tolist() == pytest.approx([0.0, 1.5, 1.0, 0.0])
    # episode 1 runs on past the ring's length, then terminates: 6 steps, rewards 2, 2, 2, 4, 8, 16
    for reward in (2.0, 4.0, 8.0):
        add_step(buffer, [reward], [False])
    add_step(buffer, [16.0], [True])
    steps = np.array([2.0, 2.0, 2.0, 4.0, 8.0, 16.0])
    assert buffer.episode_ids.tolist() == [1, 1, 1, 1] and bool(buffer.rtg_valid.all())
    for gamma, tensor in ((0.5, rtg), (0.9, buffer.returns_to_go(0.9))):  # kept up to date; computed now
        full = loop_rtg(steps, np.zeros(6, bool), gamma)
        # the ring holds its last 4 steps (k = 2..5), step k at row (3 + k) % 4
        alive = {(3 + k) % 4: full[k] for k in range(2, 6)}
        assert tensor[:, 0].tolist() == pytest.approx([alive[row] for row in range(4)])


def test_reset_and_truncate_last_trajectory() -> None:
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=6)
    rtg = buffer.returns_to_go(0.5)
    add_step(buffer, [1.0], [True])
    add_step(buffer, [2.0], [False])
    add_step(buffer, [4.0], [False])
    assert buffer.rtg_valid[11:13, 0].tolist() == [False, False]
    buffer.truncate_last_trajectory()  # e.g. after loading: the running episode is cut by a time limit
    assert buffer.timeouts[12, 0] == 1.0 and buffer.dones[12, 0] == 0.0
    assert bool(buffer.rtg_valid[11:13].all()) and rtg[11:13, 0].tolist() == [4.0, 4.0]
    add_step(buffer, [1.0], [False])
    assert buffer.episode_ids[13].item() == 5  # a new episode after the truncation
    buffer.reset()
    assert buffer.size() == 10 and buffer.n_online_episodes == 0
    assert buffer.episode_ids[10:].tolist() == [-1] * 6 and not bool(buffer.rtg_valid[10:].any())
    assert rtg[10:, 0].tolist() == [0.0] * 6 and bool(buffer.rtg_valid[:10].all())
    add_step(buffer, [1.0], [False])
    assert buffer.episode_ids[10].item() == 3


# ----------------------------------------------------------------------------------------- sampling
def test_sample_indices_and_gather_match_sample(inverted_transitions: Transitions) -> None:
    env = gym.make("InvertedPendulum-v5")
    buffer = OfflineReplayBuffer(
        0, env.observation_space, env.action_space, device="cpu", dataset=inverted_transitions, online_capacity=8
    )
    for _ in range(5):
        buffer.add(
            np.zeros((1, 4)), np.zeros((1, 4)), np.zeros((1, 1)), np.ones(1), np.array([False]), [{}]
        )  # fmt: skip
    th.manual_seed(3)
    sampled = buffer.sample(64)
    after_sample = th.rand(1)
    th.manual_seed(3)
    idx = buffer.sample_indices(64)
    assert th.rand(1).item() == after_sample.item()  # exactly the one draw sample makes
    th.manual_seed(3)
    assert th.equal(idx, th.randint(0, buffer.size(), (64,)))  # the same random stream as before
    assert idx.dtype == th.int64 and idx.shape == (64,) and idx.device == buffer.device
    gathered = buffer.gather(idx)
    for name in ("observations", "actions", "next_observations", "dones", "rewards"):
        assert th.equal(getattr(sampled, name), getattr(gathered, name)), name
    # extras fetched with the same indices line up with the batch
    rtg, valid = buffer.returns_to_go(0.99)[idx], buffer.rtg_valid[idx]
    assert rtg.shape == valid.shape == gathered.rewards.shape == (64, 1)
    data_rows = idx < buffer.dataset_size
    assert bool(valid[data_rows].all()) and not bool(valid[~data_rows].any())  # the online episode is running
    assert th.equal(buffer.episode_ids[idx][data_rows], buffer.episode_ids[: buffer.dataset_size][idx[data_rows]])
    with pytest.raises(ValueError, match="holds no transitions"):
        make_buffer(None, online_capacity=2).sample_indices(4)


# ------------------------------------------------------------------------------- devices and pickles
def test_save_load_and_to(tmp_path: Path) -> None:
    buffer = make_buffer(
        hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=6, reward_transform=dict(scale=2.0, shift=0.0)
    )
    rtg = buffer.returns_to_go(0.5)
    add_step(buffer, [1.0], [True])
    add_step(buffer, [2.0], [False])  # an episode still running when saved
    save_to_pkl(tmp_path / "buffer.pkl", buffer)  # what SB3's save_replay_buffer does
    loaded = load_from_pkl(tmp_path / "buffer.pkl")
    assert isinstance(loaded, OfflineReplayBuffer)
    loaded.to("cpu")  # what OfflineAlgorithm.load_replay_buffer does after SB3's load_replay_buffer
    assert loaded.reward_transform == RewardTransform(2.0, 0.0)
    assert loaded.n_episodes == 3 and loaded.n_online_episodes == 2
    for name in ("episode_ids", "episode_starts", "episode_lengths", "rtg_valid", "rewards"):
        assert th.equal(getattr(loaded, name), getattr(buffer, name)), name
    loaded_rtg = loaded.returns_to_go(0.5)
    assert th.equal(loaded_rtg, rtg)
    # the running episode continues after loading; its end updates the loaded cache in place
    add_step(loaded, [3.0], [True])
    assert loaded_rtg[11:13, 0].tolist() == pytest.approx([4 + 0.5 * 6, 6])
    assert bool(loaded.rtg_valid[11:13].all())
    assert pickle.loads(pickle.dumps(loaded)).returns_to_go(0.5)[11, 0].item() == pytest.approx(7.0)
    # to() moves every tensor, the cached returns-to-go included
    moved = loaded.to("meta")
    assert moved is loaded and loaded.device == th.device("meta")
    for tensor in (loaded.episode_ids, loaded.episode_starts, loaded.episode_lengths, loaded.rtg_valid):
        assert tensor.device.type == "meta"
    assert loaded.returns_to_go(0.5).device.type == "meta"


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs CUDA")
def test_on_cuda() -> None:
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=4, device="cuda")
    rtg = buffer.returns_to_go(0.5)
    assert rtg.device.type == buffer.episode_ids.device.type == buffer.rtg_valid.device.type == "cuda"
    add_step(buffer, [1.0], [False])
    add_step(buffer, [2.0], [True])
    assert rtg[10:12, 0].tolist() == [2.0, 2.0] and bool(buffer.rtg_valid[10:12].all())
    idx = buffer.sample_indices(16)
    assert idx.device.type == "cuda" and buffer.gather(idx).rewards.device.type == "cuda"
    cpu = buffer.to("cpu")
    assert cpu.returns_to_go(0.5).device.type == "cpu" and cpu.episode_ids.device.type == "cpu"


def test_her_buffer_keeps_its_own_episodes(fetch_transitions: Transitions, fetch_env_spaces) -> None:
    """OfflineHerReplayBuffer (a subclass) gets the episode index too, and its online add still works."""
    from sb3_offline.her import FetchReward, OfflineHerReplayBuffer

    obs_space, act_space = fetch_env_spaces
    buffer = OfflineHerReplayBuffer(
        0, obs_space, act_space, device="cpu", dataset=fetch_transitions, online_capacity=10,
        compute_reward=FetchReward(),
    )  # fmt: skip
    assert buffer.n_episodes == 3 and buffer.episode_lengths.tolist() == [50, 50, 20]
    obs = {key: np.zeros((1, *space.shape), np.float32) for key, space in obs_space.spaces.items()}
    for done in (False, False, True):
        buffer.add(obs, obs, np.zeros((1, 4)), np.zeros(1), np.array([done]), [{}])
    assert buffer.episode_ids[120:123].tolist() == [3, 3, 3] and bool(buffer.rtg_valid[120:123].all())
    assert buffer.ep_length[120:123].tolist() == [3, 3, 3]  # HER's own bookkeeping is untouched


def test_model_saves_the_resolved_reward_transform(pendulum_transitions: Transitions, tmp_path: Path) -> None:
    """A rule read from the dataset ("iql_locomotion") is saved resolved and applied as is when the model trains on."""
    from sb3_offline import BC

    env = gym.make("Pendulum-v1")
    model = BC(
        "MlpPolicy",
        env,
        dataset=pendulum_transitions,
        replay_buffer_kwargs=dict(reward_transform="iql_locomotion"),
        policy_kwargs=dict(net_arch=[8]),
        device="cpu",
    )
    assert model.replay_buffer is not None
    resolved = model.replay_buffer.reward_transform.to_dict()  # type: ignore[attr-defined]
    assert model.replay_buffer_kwargs["reward_transform"] == resolved and resolved["scale"] != 1.0
    model.save(tmp_path / "bc")
    other = pendulum_transitions.select(np.arange(400))  # a smaller dataset: its own rule would give another scale
    loaded = BC.load(tmp_path / "bc", env=env, dataset=other, device="cpu")
    loaded.learn(2)
    assert loaded.replay_buffer.reward_transform.to_dict() == resolved  # type: ignore[union-attr]


# --------------------------------------------------------------- offline / online mixing (Cal-QL's mixing_ratio)
def draw(buffer: OfflineReplayBuffer, batches: int, batch_size: int, finished: bool = False) -> th.Tensor:
    return th.stack([buffer.sample_indices(batch_size, finished_episodes_only=finished) for _ in range(batches)])


def test_offline_fraction_takes_half_of_every_batch_from_the_dataset() -> None:
    th.manual_seed(0)
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=8, offline_fraction=0.5)
    assert bool((draw(buffer, 20, 64) < 10).all())  # no online row yet: the whole batch is the dataset's
    for reward, done in ((1.0, False), (1.0, False), (1.0, True), (5.0, False), (5.0, False)):
        add_step(buffer, [reward], [done])  # rows 10-12: an ended episode; rows 13-14: one still running
    rows = draw(buffer, 2000, 64)
    offline = rows < 10
    assert bool((offline.sum(dim=1) == 32).all()) and offline.float().mean().item() == 0.5
    counts = th.bincount(rows.flatten(), minlength=15).float()
    expected_data, expected_online = 2000 * 32 / 10, 2000 * 32 / 5  # uniform within each share
    assert th.allclose(counts[:10], th.full((10,), expected_data), rtol=0.05)
    assert th.allclose(counts[10:], th.full((5,), expected_online), rtol=0.05)

    # Cal-QL's batches: the running episode's rows (no returns-to-go yet) are never drawn
    rows = draw(buffer, 2000, 64, finished=True)
    assert bool((rows < 13).all()) and bool(buffer.rtg_valid[rows].all())
    assert bool(((rows < 10).sum(dim=1) == 32).all())
    counts = th.bincount(rows.flatten(), minlength=13).float()
    assert th.allclose(counts[10:], th.full((3,), 2000 * 32 / 3), rtol=0.05)


def test_online_share_with_fewer_online_rows_than_its_share() -> None:
    """The authors' online buffer is sampled with replacement: one finished row fills the whole online share."""
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=8, offline_fraction=0.25)
    add_step(buffer, [1.0], [False])
    assert bool((draw(buffer, 10, 16, finished=True) < 10).all())  # its episode has not ended: dataset only
    add_step(buffer, [1.0], [True])
    rows = draw(buffer, 10, 16, finished=True)
    assert bool(((rows < 10).sum(dim=1) == 4).all())  # int(16 * 0.25)
    assert set(rows[rows >= 10].tolist()) == {10, 11}


def test_finished_episodes_only_without_a_fraction_is_uniform_over_the_rows_allowed() -> None:
    th.manual_seed(1)
    buffer = make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=8)
    for reward, done in ((1.0, False), (1.0, True), (3.0, False)):
        add_step(buffer, [reward], [done])
    rows = draw(buffer, 1000, 60, finished=True)
    counts = th.bincount(rows.flatten(), minlength=13).float()
    assert counts[12] == 0 and th.allclose(counts[:12], th.full((12,), 1000 * 60 / 12), rtol=0.06)
    assert bool((draw(buffer, 200, 60) == 12).any())  # every row when the algorithm does not ask


def test_finished_episodes_only_with_two_envs_and_a_wrapped_ring() -> None:
    th.manual_seed(2)
    buffer = OfflineReplayBuffer(
        0, OBS_SPACE, ACT_SPACE, device="cpu", n_envs=2, dataset=hand_transitions(REWARDS, TERMS, TRUNCS),
        online_capacity=6, offline_fraction=0.5,
    )  # fmt: skip
    # env 0: episodes of 2 steps; env 1: one long episode, then a short one; the ring (3 slots per env) wraps
    for dones in ([False, False], [True, False], [False, False], [True, True], [False, False]):
        add_step(buffer, [1.0, 2.0], dones)
    allowed = {row for row in range(10, 16) if bool(buffer.rtg_valid[row])}
    assert allowed and len(allowed) < 6  # each env's newest row belongs to its running episode
    before = buffer.graph_key()
    rows = draw(buffer, 3000, 32, finished=True)
    online = rows[rows >= 10]
    assert set(online.tolist()) == allowed
    counts = th.bincount(online, minlength=16).float()[sorted(allowed)]
    assert th.allclose(counts, th.full_like(counts, online.numel() / len(allowed)), rtol=0.06)
    add_step(buffer, [1.0, 2.0], [False, False])  # the ring is full: the same size, another sampling state
    assert buffer.size() == 16 and buffer.graph_key() != before


@pytest.mark.parametrize("fraction", [-0.1, 1.5, "half", True])
def test_bad_offline_fraction(fraction: object) -> None:
    with pytest.raises(ValueError, match="offline_fraction"):
        make_buffer(hand_transitions(REWARDS, TERMS, TRUNCS), online_capacity=2, offline_fraction=fraction)
