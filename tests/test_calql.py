"""
Cal-QL: the authors' (JAX) order of a step, the bound of the policy actions' values by the returns-to-go
(by hand), the returns-to-go it samples against a hand computation with terminations and timeouts and the authors'
sparse-reward rule, its defaults, what a checkpoint keeps, learning on imperfect Pendulum demonstrations, and
offline -> online with half of each batch from the dataset and no running episode's rows.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from sb3_offline import CQL, CalQL, OfflineReplayBuffer
from sb3_offline.common.squashed_gaussian import squashed_gaussian_sample
from sb3_offline.datasets import Transitions
from sb3_offline.her import OfflineHerReplayBuffer

TINY = dict(net_arch=[16, 32])


def make(data: Any, algo: type = CalQL, **kwargs: Any) -> Any:
    kwargs.setdefault("policy_kwargs", TINY)
    kwargs.setdefault("batch_size", 64)
    kwargs.setdefault("buffer_size", 1000)
    if algo is CQL:
        kwargs.pop("buffer_size")
        kwargs.setdefault("bc_steps", 0)
    return algo("MlpPolicy", "Pendulum-v1", dataset=data, device="cpu", seed=0, **kwargs)


def hand_loop_rtg(rewards: np.ndarray, ends: np.ndarray, gamma: float) -> np.ndarray:
    """Cal-QL's ``calc_return_to_go`` run on each episode in turn (an episode ends at a termination or a timeout)."""
    out, episode = np.zeros(len(rewards)), []
    for i in range(len(rewards)):
        episode.append(i)
        if ends[i] or i == len(rewards) - 1:
            prev = 0.0
            for j in reversed(episode):
                out[j] = rewards[j] + gamma * prev
                prev = out[j]
            episode = []
    return out


def authors_return_to_go(rewards: np.ndarray, ends: np.ndarray, terminals: np.ndarray, gamma: float, reward_neg: float):
    """The authors' ``calc_return_to_go`` (``JaxCQL/replay_buffer.py``, ``is_sparse_reward=True``) on each episode."""
    out, start = np.zeros(len(rewards)), 0
    for end in [*np.flatnonzero(ends[:-1]), len(rewards) - 1]:
        episode = slice(start, end + 1)
        if np.all(rewards[episode] == reward_neg):
            out[episode] = reward_neg / (1 - gamma)
        else:
            prev = 0.0
            for j in reversed(range(start, end + 1)):
                out[j] = rewards[j] + gamma * prev * (1 - terminals[j])
                prev = out[j]
        start = end + 1
    return out


def sparse_inverted(transitions: Transitions) -> Transitions:
    """InvertedPendulum's episodes with a sparse reward: 1 on the step that ends an episode by its time limit (a
    success: it did not fall), 0 on every other step (an episode that falls never succeeds)."""
    return dataclasses.replace(transitions, rewards=transitions.truncations.astype(np.float32))


def one_update(model: Any, data: ReplayBufferSamples, reference: th.Tensor, seed: int) -> dict[str, float]:
    """One ``train`` step on ``data`` after ``th.manual_seed(seed)`` (its first draw: the actor's sample at ``s``)."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    model._losses.flush(model.logger)
    model._sample = lambda batch_size: (data, reference)
    th.manual_seed(seed)
    model.train(gradient_steps=1, batch_size=data.observations.shape[0])
    return model._losses.flush(model.logger)


# ------------------------------------------------------------------------------------------ defaults
def test_defaults_follow_the_authors_script(pendulum_transitions: Transitions) -> None:
    model = CalQL("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, device="cpu", buffer_size=100)
    assert isinstance(model, CQL)
    assert model.policy.net_arch == {"pi": [256, 256], "qf": [256, 256, 256, 256]}
    assert (model.alpha_cql, model.target_action_gap, model.max_q_backup, model.bc_steps) == (5.0, 0.8, True, 0)
    assert model.log_alpha_prime().item() == pytest.approx(math.e)  # Scalar(1.0) for log alpha'
    assert model.offline_fraction == 0.5 and model.replay_buffer.offline_fraction == 0.5
    assert model.train_freq.frequency == 1 and model.train_freq.unit.value == "episode" and model.gradient_steps == -1
    optimizer_rates = {name: o.param_groups[0]["lr"] for name, o in model._optimizers().items()}
    assert optimizer_rates == {"actor": 1e-4, "critic": 3e-4, "log_ent_coef": 1e-4, "log_alpha_prime": 3e-4}
    # one place per setting: the algorithm's argument, not repeated with another value in the buffer's kwargs
    with pytest.raises(ValueError, match=r"replay_buffer_kwargs\['offline_fraction'\]: expected none .* CalQL's"):
        CalQL(
            "MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, device="cpu", buffer_size=100,
            replay_buffer_kwargs=dict(offline_fraction=0.25),
        )  # fmt: skip
    kept = CalQL(
        "MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, device="cpu", buffer_size=100, offline_fraction=0.25
    )
    assert kept.replay_buffer.offline_fraction == 0.25


def test_relabelling_buffers_are_refused(pendulum_transitions: Transitions) -> None:
    with pytest.raises(ValueError, match="replay_buffer_class"):
        make(pendulum_transitions, replay_buffer_class=OfflineHerReplayBuffer)


def test_step_in_the_jax_codes_order(imperfect_pendulum: Transitions) -> None:
    """
    ``conservative_sac.py``'s ``_train_step``: every loss from the networks of the start of the step (simultaneous
    gradients), the actor's on the entropy coefficient and the critics before their steps; ``max_i min_j`` backup.
    """
    model = make(imperfect_pendulum)
    model.learn(3)
    steps: list[str] = []
    for name, optimizer in model._optimizers().items():

        def step(*args: Any, _name: str = name, _step: Any = optimizer.step, **kwargs: Any) -> Any:
            steps.append(_name)
            return _step(*args, **kwargs)

        optimizer.step = step  # type: ignore[method-assign]
    rows = slice(40, 104)
    data = ReplayBufferSamples(
        th.as_tensor(imperfect_pendulum.observations[rows]), th.as_tensor(imperfect_pendulum.actions[rows]) / 2.0,
        th.as_tensor(imperfect_pendulum.next_observations[rows]), th.zeros(64, 1),
        th.as_tensor(imperfect_pendulum.rewards[rows]).reshape(64, 1),
    )  # fmt: skip
    actor, critic, ent_coef = copy.deepcopy(model.actor), copy.deepcopy(model.critic), model.log_ent_coef().item()
    losses = one_update(model, data, th.full((64, 1), -50.0), seed=11)
    assert steps == ["log_ent_coef", "actor", "log_alpha_prime", "critic"]
    th.manual_seed(11)
    with th.no_grad():
        pi_actions, log_pi = squashed_gaussian_sample(*actor.get_action_dist_params(data.observations)[:2])
        q_pi = th.cat(critic(data.observations, pi_actions), dim=1).min(dim=1, keepdim=True).values
    assert losses["actor_loss"] == pytest.approx((ent_coef * log_pi - q_pi).mean().item(), rel=1e-5)
    # one state, two samples: critic 1 gives (1, 4), critic 2 (5, 2): min then max is 2 (CQL's max then min, 4)
    th.testing.assert_close(model.max_backup(th.tensor([[1.0, 5.0], [4.0, 2.0]]), 2), th.tensor([[2.0]]))


# ---------------------------------------------------------------------------------------- the bound
def test_policy_values_bounded_below_by_the_reference_on_a_hand_made_batch(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, n_actions=6)
    model.learn(3)
    obs = th.as_tensor(imperfect_pendulum.observations[:4])
    next_obs = th.as_tensor(imperfect_pendulum.next_observations[:4])
    actions = th.as_tensor(imperfect_pendulum.actions[:4]) / 2.0
    with th.no_grad():
        features = model.critic_features(obs)
        mean, log_std = model.policy_parameters(obs)
        next_mean, next_log_std = model.policy_parameters(next_obs)
        q_data = th.cat(model.critic(obs, actions), dim=1)
    # rows 0, 1: a reference far above every Q-value; row 2: far below; row 3: in the middle of its values
    reference = th.tensor([[500.0], [40.0], [-500.0], [0.0]])
    th.manual_seed(7)
    with th.no_grad():
        terms = model.conservative_terms(features, actions, mean, log_std, next_mean, next_log_std, reference)
    th.manual_seed(7)
    with th.no_grad():
        unbounded = CQL.conservative_terms(model, features, actions, mean, log_std, next_mean, next_log_std, None)
    for bounded, raw in ((terms.q_current, unbounded.q_current), (terms.q_next, unbounded.q_next)):
        assert bool((bounded >= reference.view(4, 1, 1)).all())  # never below the reference
        th.testing.assert_close(bounded, th.maximum(raw, reference.view(4, 1, 1)))
        assert bool((bounded[:2] == reference[:2].view(2, 1, 1)).all())
        th.testing.assert_close(bounded[2], raw[2])  # a reference below every value changes nothing
    # only the policy actions are bounded: the uniform ones and the dataset's action keep their values
    th.testing.assert_close(terms.q_random, unbounded.q_random)
    th.testing.assert_close(terms.q_data, q_data)
    assert terms.logsumexp.shape == (4, 2)
    # row 0: the policy terms are 500 - log pi, so the estimate sits near 500 + log(2 n) + a small correction
    assert bool((terms.logsumexp[0] > 500.0).all()) and bool((terms.logsumexp[0] < 520.0).all())
    below = (unbounded.q_current < reference.view(4, 1, 1)).float().sum() + (
        unbounded.q_next < reference.view(4, 1, 1)
    ).float().sum()
    assert terms.bound_rate.item() == pytest.approx(below.item() / (2 * 4 * 6 * 2))


def test_bounded_logsumexp_by_hand(pendulum_transitions: Transitions) -> None:
    """
    Cal-QL's ``conservative_terms`` on critics with constant values ``c_j`` (every weight 0, the output bias
    ``c_j``): the estimate is ``log(sum_i e^(c_j - log 0.5^d) + sum_i e^(max(c_j, V) - log pi(a_i|s)) + sum_i
    e^(max(c_j, V) - log pi(a'_i|s')))``, with the draws replayed from the same seed; CQL's leaves ``c_j`` unbounded.
    """
    model = make(pendulum_transitions, n_actions=3)
    values = (-1.0, 2.0)
    with th.no_grad():
        for q_net, value in zip(model.critic.q_networks, values, strict=True):
            for parameter in q_net.parameters():
                parameter.zero_()
            q_net[-1].bias.fill_(value)
    obs = th.as_tensor(pendulum_transitions.observations[:1])
    actions = th.tensor([[0.2]])
    mean, log_std = th.tensor([[0.3]]), th.tensor([[-0.5]])
    next_mean, next_log_std = th.tensor([[-0.4]]), th.tensor([[0.1]])
    features = model.critic_features(obs)
    reference = th.tensor([[0.5]])
    with th.no_grad():
        th.manual_seed(5)
        bounded = model.conservative_terms(features, actions, mean, log_std, next_mean, next_log_std, reference)
        th.manual_seed(5)
        unbounded = CQL.conservative_terms(model, features, actions, mean, log_std, next_mean, next_log_std, None)
        th.manual_seed(5)
        th.rand((1, 3, 1))  # the uniform actions
        _, log_pi_current = squashed_gaussian_sample(mean, log_std, 3, exact=True)  # the authors' exact correction
        _, log_pi_next = squashed_gaussian_sample(next_mean, next_log_std, 3, exact=True)
    for j, value in enumerate(values):
        for terms, bound in ((bounded, max(value, 0.5)), (unbounded, value)):
            sampled = [bound - float(lp) for lp in [*log_pi_current[:, 0], *log_pi_next[:, 0]]]
            expected = math.log(3 * math.exp(value - math.log(0.5)) + sum(math.exp(x) for x in sampled))
            assert terms.logsumexp[0, j].item() == pytest.approx(expected, rel=1e-6)
    assert bounded.logsumexp[0, 0] > unbounded.logsumexp[0, 0] and bounded.logsumexp[0, 1] == unbounded.logsumexp[0, 1]


# ------------------------------------------------------------------------------------ returns-to-go
def test_sampled_reference_is_the_discounted_return_to_go(inverted_transitions: Transitions) -> None:
    """Terminations and timeouts end the sum (nothing is added after a time-limit cut), as calc_return_to_go."""
    env = gym.make("InvertedPendulum-v5")
    gamma = 0.9
    model = CalQL(
        "MlpPolicy", env, dataset=inverted_transitions, gamma=gamma, batch_size=len(inverted_transitions),
        buffer_size=10, policy_kwargs=TINY, device="cpu", seed=0,
    )  # fmt: skip
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    n = len(inverted_transitions)
    buffer.sample_indices = lambda size, finished_episodes_only=False: th.arange(size)  # type: ignore[method-assign]
    model._prepare_updates()
    data, reference = model._sample(n)
    ends = inverted_transitions.terminations | inverted_transitions.truncations
    expected = hand_loop_rtg(inverted_transitions.rewards.astype(np.float64), ends, gamma)
    assert reference is not None and reference.shape == (n, 1)
    np.testing.assert_allclose(reference[:, 0].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(data.rewards[:, 0].numpy(), inverted_transitions.rewards)
    # a row cut by a timeout: its reference is its reward alone, and it still bootstraps in the target
    cut = int(np.flatnonzero(inverted_transitions.truncations & ~inverted_transitions.terminations)[0])
    assert reference[cut, 0].item() == pytest.approx(float(inverted_transitions.rewards[cut]))
    assert data.dones[cut, 0].item() == 0.0


def test_reference_uses_the_transformed_rewards(pendulum_transitions: Transitions) -> None:
    model = make(pendulum_transitions, replay_buffer_kwargs=dict(reward_transform=dict(scale=10.0, shift=-5.0)))
    model._prepare_updates()
    rewards = 10.0 * pendulum_transitions.rewards.astype(np.float64) - 5.0
    ends = pendulum_transitions.terminations | pendulum_transitions.truncations
    np.testing.assert_allclose(
        model._returns_to_go[:1000, 0].numpy(), hand_loop_rtg(rewards, ends, 0.99), rtol=1e-4, atol=1e-3
    )


def test_sparse_reward_reference_is_the_authors(inverted_transitions: Transitions) -> None:
    """
    On a sparse task (two reward values) an episode that never succeeds has ``r_neg / (1 - gamma)`` at every step,
    the others their discounted returns-to-go (``calc_return_to_go`` with ``is_sparse_reward``), from the
    transformed rewards (``r_neg`` 10 * 0 - 5 here, as the authors' AntMaze); ``failure_reward=None`` turns it off.
    """
    data, gamma = sparse_inverted(inverted_transitions), 0.9
    ends = data.terminations | data.truncations
    transform = dict(reward_transform=dict(scale=10.0, shift=-5.0))
    kwargs: dict[str, Any] = dict(gamma=gamma, buffer_size=10, policy_kwargs=TINY, device="cpu")
    model = CalQL("MlpPolicy", gym.make("InvertedPendulum-v5"), dataset=data, replay_buffer_kwargs=transform, **kwargs)
    assert model.failure_reward == "auto" and model.resolved_failure_reward() == -5.0
    model._prepare_updates()
    rewards = 10.0 * data.rewards.astype(np.float64) - 5.0
    expected = authors_return_to_go(rewards, ends, data.terminations, gamma, -5.0)
    n = len(data)
    failed = np.isclose(expected, -50.0)
    assert failed.sum() > 100 and (~failed).sum() > 10  # episodes that fail, and episodes that succeed
    np.testing.assert_allclose(model._returns_to_go[:n, 0].tolist(), expected, rtol=1e-6)  # (no numpy view: it grows)
    off = CalQL(
        "MlpPolicy", gym.make("InvertedPendulum-v5"), dataset=data, replay_buffer_kwargs=transform, failure_reward=None,
        **kwargs,
    )  # fmt: skip
    off._prepare_updates()
    np.testing.assert_allclose(off._returns_to_go[:n, 0].numpy(), hand_loop_rtg(rewards, ends, gamma), rtol=1e-6)
    # online: an episode that fails throughout, then one that succeeds at its last step
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    obs, action = np.zeros((1, 4), np.float32), np.zeros((1, 1), np.float32)
    for reward, done in ((0.0, False), (0.0, True), (0.0, False), (1.0, True)):
        buffer.add(obs, obs, action, np.array([reward], np.float32), np.array([done]), [{}])
    np.testing.assert_allclose(model._returns_to_go[n : n + 4, 0].tolist(), [-50.0, -50.0, -5.0 + 0.9 * 5.0, 5.0])


def test_failure_reward_resolution(pendulum_transitions: Transitions, inverted_transitions: Transitions) -> None:
    """``"auto"`` is off on dense rewards (Pendulum's); a number is used as given; anything else is refused."""
    assert make(pendulum_transitions).resolved_failure_reward() is None
    assert make(pendulum_transitions, failure_reward=-1).resolved_failure_reward() == -1.0
    with pytest.raises(ValueError, match="failure_reward"):
        make(pendulum_transitions, failure_reward="sparse")
    model = CalQL(
        "MlpPolicy", gym.make("InvertedPendulum-v5"), dataset=sparse_inverted(inverted_transitions), gamma=1.0,
        buffer_size=10, policy_kwargs=TINY, device="cpu",
    )  # fmt: skip
    with pytest.raises(ValueError, match="gamma: expected < 1 with a failure_reward"):
        model._prepare_updates()


# ------------------------------------------------------------------------------------------ save/load
def test_save_load_keeps_no_returns_to_go(imperfect_pendulum: Transitions, tmp_path: Path) -> None:
    """The returns-to-go are computed from the dataset when training starts, never saved; the mixing is kept."""
    model = make(imperfect_pendulum, bc_steps=2)
    model.learn(6)
    model.save(tmp_path / "calql")
    loaded = CalQL.load(tmp_path / "calql", env=gym.make("Pendulum-v1"), device="cpu", dataset=imperfect_pendulum)
    assert "_returns_to_go" not in loaded.__dict__ or loaded._returns_to_go is None
    loaded.learn(2, reset_num_timesteps=False)
    assert loaded.replay_buffer.offline_fraction == 0.5 and loaded._n_updates == 8


# --------------------------------------------------------------------------------- offline -> online
def test_offline_then_online_with_half_of_each_batch_from_the_dataset(imperfect_pendulum: Transitions) -> None:
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = CalQL(
        "MlpPolicy", env, dataset=imperfect_pendulum, policy_kwargs=TINY, batch_size=64, buffer_size=1000,
        device="cpu", seed=0,
    )  # fmt: skip
    model.learn(20)
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    batches: list[tuple[float, bool, int]] = []
    sample = buffer.sample_indices

    def spy(batch_size: int, finished_episodes_only: bool = False) -> th.Tensor:
        assert finished_episodes_only
        rows = sample(batch_size, finished_episodes_only)
        online_rows = int((rows >= buffer.dataset_size).sum())
        batches.append(
            ((rows < buffer.dataset_size).float().mean().item(), bool(buffer.rtg_valid[rows].all()), online_rows)
        )
        return rows

    buffer.sample_indices = spy  # type: ignore[method-assign]
    actor = [p.detach().clone() for p in model.actor.parameters()]
    model.learn_online(150)  # three 50-step episodes, each followed by 50 updates (the authors' schedule)
    assert buffer.online_size == 150 and buffer.n_online_episodes == 3
    assert model._n_updates == 20 + 150 and len(batches) == 150
    assert all(share == 0.5 and valid and online == 32 for share, valid, online in batches)
    assert not all(th.equal(a, p) for a, p in zip(actor, model.actor.parameters(), strict=True))


def test_online_before_an_episode_ends_uses_the_dataset_only(imperfect_pendulum: Transitions) -> None:
    """With per-step training, the running episode's rows stay out until it ends (then half of each batch)."""
    env = gym.make("Pendulum-v1", max_episode_steps=30)
    model = CalQL(
        "MlpPolicy", env, dataset=imperfect_pendulum, policy_kwargs=TINY, batch_size=64, buffer_size=1000,
        train_freq=1, gradient_steps=1, device="cpu", seed=0,
    )  # fmt: skip
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)
    shares: list[float] = []
    sample = buffer.sample_indices

    def spy(batch_size: int, finished_episodes_only: bool = False) -> th.Tensor:
        rows = sample(batch_size, finished_episodes_only)
        assert bool(buffer.rtg_valid[rows].all())
        shares.append((rows < buffer.dataset_size).float().mean().item())
        return rows

    buffer.sample_indices = spy  # type: ignore[method-assign]
    model.learn_online(45)
    assert shares == [1.0] * 29 + [0.5] * 16  # the first episode ends at step 30, before its update


# ------------------------------------------------------------------------------------------- learning
@pytest.mark.slow  # the longest learning tests (30-45 s on one core)
def test_calql_learns_from_imperfect_demonstrations(
    imperfect_pendulum: Transitions, pendulum_return, one_torch_thread
) -> None:
    """
    The BCQ paper's imperfect demonstrations, 2000 gradient steps at Cal-QL's defaults (the authors' networks, actor
    lr 1e-4, Lagrange gap 0.8, max backup, batch 256, the sparse-reward rule off on these dense rewards) but 64-64
    networks (their 2 x 256 and 4 x 256: too slow here). Measured (conftest's 10 evaluation episodes; random -1284),
    training seeds 0-3: -843, -857, -711, -723 (mean -784); the bar, random + 300 = -984, is 127 below the worst seed.
    """
    model = CalQL(
        "MlpPolicy", "Pendulum-v1", dataset=imperfect_pendulum, policy_kwargs=dict(net_arch=[64, 64]), device="cpu",
        seed=0,
    )  # fmt: skip
    model.learn(2000, log_interval=None)
    calql_return, random_return = pendulum_return(model), pendulum_return(None)
    assert calql_return > random_return + 300, (calql_return, random_return)


def test_cuda_graphs_are_keyed_on_the_buffers_sampling_state(imperfect_pendulum: Transitions) -> None:
    """With a full ring the row count stays the same while the running episode moves: a new graph is captured."""
    from graph_safety import strict_update_graphs

    model = make(imperfect_pendulum, buffer_size=4, batch_size=32)
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer)

    def step(done: bool) -> None:
        obs = np.zeros((1, 3), np.float32)
        buffer.add(obs, obs, np.zeros((1, 1), np.float32), np.ones(1, np.float32), np.array([done]), [{}])

    for done in (False, True, False, False):  # the ring is full: one ended episode, one running
        step(done)
    backend = strict_update_graphs(model, warmup=2)
    model.learn(5)
    step(False)  # the same row count, the running episode one row longer
    model.learn(5, reset_num_timesteps=False)
    keys = [key for key in backend.kinds if key[0] == "calql"]
    assert len(keys) == 2 and keys[0][3] != keys[1][3] and keys[0][3][0] == keys[1][3][0] == buffer.size()
    assert backend.violations == []


def test_log_densities_take_the_exact_tanh_correction() -> None:
    """
    Cal-QL's sampled actions are scored with the exact ``log(1 - tanh(u)^2)`` of the authors' distrax ``Tanh``
    (CQL: rlkit's ``log(1 - a^2 + 1e-6)``, which differs where the tanh saturates), checked in float64 by hand.
    """
    assert CalQL.exact_tanh_correction and not CQL.exact_tanh_correction
    mean, log_std = th.tensor([[0.3, 6.0]]), th.tensor([[-0.5, -2.0]])  # the second dimension saturates
    th.manual_seed(0)
    actions, log_pi = squashed_gaussian_sample(mean, log_std, 4, exact=True)
    th.manual_seed(0)
    _, rlkit = squashed_gaussian_sample(mean, log_std, 4)
    th.manual_seed(0)
    u = (mean.repeat(4, 1) + log_std.exp().repeat(4, 1) * th.randn(4, 2)).double()
    gaussian = th.distributions.Normal(mean.double(), log_std.exp().double()).log_prob(u)
    expected = (gaussian - th.log(1.0 - th.tanh(u) ** 2)).sum(dim=-1, keepdim=True)
    th.testing.assert_close(actions.double(), th.tanh(u), atol=1e-6, rtol=0)
    th.testing.assert_close(log_pi.double(), expected, atol=1e-3, rtol=0)
    assert (rlkit.double() - expected).abs().max() > 1e-2
