"""Dataset collection under the BCQ paper's and D4RL's protocols, on Pendulum-v1 with tiny budgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest

from sb3_offline import BCQ, BatchDDPG
from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.collect import (
    PROTOCOLS,
    ActingPolicy,
    collect_dataset,
    default_dataset_id,
    episode_returns,
    expert_agent,
    run_concurrent_experiment,
)
from sb3_offline.evaluation import evaluate, normalized_score, reference_scores

ENV = "Pendulum-v1"
EXPERT_STEPS = 300
BEHAVIOUR = dict(learning_starts=100, policy_kwargs=dict(net_arch=[64, 64]))
TINY = dict(expert_steps=EXPERT_STEPS, ref_episodes=2, behaviour_kwargs=BEHAVIOUR, progress_bar=False)


@pytest.fixture(scope="session")
def agents_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny expert for the whole session (trained on first use, then read from this cache)."""
    return tmp_path_factory.mktemp("agents")


def collect(protocol: str, n: int, agents_cache: Path, **kwargs: Any) -> Any:
    return collect_dataset(ENV, protocol, n, agents_cache=agents_cache, **{**TINY, **kwargs})


def expert_actions(agents_cache: Path, observations: np.ndarray) -> np.ndarray:
    expert, _ = expert_agent(ENV, steps=EXPERT_STEPS, cache_dir=agents_cache, behaviour_kwargs=BEHAVIOUR)
    actions, _ = expert.predict(observations, deterministic=True)
    return np.clip(actions, -2.0, 2.0)


def test_default_dataset_id() -> None:
    assert default_dataset_id("Pendulum-v1", "imperfect") == "pendulum/imperfect-v0"
    assert default_dataset_id("HalfCheetah-v5", "medium-replay") == "halfcheetah/medium-replay-v0"


def test_imitation_is_the_noiseless_expert_and_round_trips_through_minari(agents_cache: Path) -> None:
    result = collect("imitation", 600, agents_cache)
    data = result.transitions
    assert result.dataset_id == "pendulum/imitation-v0" and len(data) == 600
    assert not result.random_actions.any()
    np.testing.assert_allclose(data.actions, expert_actions(agents_cache, data.observations), atol=1e-5)
    # Pendulum: time-limit truncations every 200 steps, never a termination
    assert not data.terminations.any() and data.truncations.sum() == 3

    ds = minari.load_dataset("pendulum/imitation-v0")
    assert ds.total_steps == 600 and ds.total_episodes == 3
    assert ds.spec.env_spec is not None and ds.spec.env_spec.id == ENV
    assert ds.recover_environment().spec.id == ENV
    assert ds.storage.metadata["ref_min_score"] == pytest.approx(result.scores.random)
    assert ds.storage.metadata["ref_max_score"] == pytest.approx(result.scores.expert)
    episode = next(iter(ds.iterate_episodes()))
    np.testing.assert_allclose(episode.actions, data.actions[:200], atol=1e-6)

    buffer = OfflineReplayBuffer(
        0, ds.observation_space, ds.action_space, device="cpu", dataset="pendulum/imitation-v0"
    )
    assert buffer.size() == 600
    assert reference_scores(buffer) == (pytest.approx(result.scores.random), pytest.approx(result.scores.expert))


def test_imperfect_noise_and_random_actions_are_visible_in_the_data(agents_cache: Path) -> None:
    result = collect("imperfect", 4000, agents_cache)
    flags = result.random_actions
    assert abs(flags.mean() - 0.3) < 0.04  # a random action with probability 0.3
    greedy = expert_actions(agents_cache, result.transitions.observations)[:, 0]
    residual = result.transitions.actions[:, 0] - greedy
    noisy = residual[~flags]
    # N(0, 0.3 * max_action) with max_action = 2, then clipped to [-2, 2]: the spread expected for
    # these very expert actions, simulated, matches the spread found in the data
    rng = np.random.default_rng(0)
    simulated = (
        np.clip(greedy[~flags, None] + 0.6 * rng.standard_normal((len(noisy), 50)), -2, 2) - greedy[~flags, None]
    )
    assert noisy.std() == pytest.approx(simulated.std(), rel=0.1)
    assert np.abs(noisy).max() < 0.6 * 5  # nothing beyond 5 sigma: the wide ones are the random actions
    assert np.abs(residual[flags]).mean() > np.abs(noisy).mean()
    assert (np.abs(result.transitions.actions) <= 2.0).all()


def test_random_protocol_is_uniform(agents_cache: Path) -> None:
    result = collect("random", 2000, agents_cache)
    actions = result.transitions.actions[:, 0]
    assert result.random_actions.all()
    assert abs(actions.mean()) < 0.15 and abs(actions.std() - 4 / np.sqrt(12)) < 0.1
    assert result.behaviour_return == pytest.approx(float(episode_returns(result.transitions).mean()))


@pytest.mark.parametrize("protocol", ["final", "concurrent"])
def test_training_protocols_keep_every_experienced_transition(protocol: str, agents_cache: Path) -> None:
    result = collect(protocol, 500, agents_cache)
    data = result.transitions
    assert len(data) == 500 and result.info["behaviour_training_steps"] == 500
    assert not data.terminations.any()
    # 2 complete 200-step episodes, and the last 100 steps closed as a truncation by the buffer's end
    assert np.flatnonzero(data.truncations).tolist() == [199, 399, 499]
    # consecutive rows chain (s' of one row is s of the next) inside an episode
    np.testing.assert_allclose(data.next_observations[:199], data.observations[1:200], atol=1e-6)
    assert minari.load_dataset(result.dataset_id).total_steps == 500


def test_medium_family(agents_cache: Path) -> None:
    replay = collect("medium-replay", 1, agents_cache)
    steps = replay.info["medium_training_steps"]
    # SB3 stops training inside the step that reached the target, before storing that step's transition
    assert 0 < steps <= EXPERT_STEPS and steps - 1 <= len(replay.transitions) <= steps
    medium = collect("medium", 400, agents_cache)
    assert len(medium.transitions) == 400 and medium.info["medium_training_steps"] == steps  # the cached medium agent
    both = collect("medium-expert", 600, agents_cache)
    assert len(both.transitions) == 600
    # the first half comes from the medium policy, the second from the expert
    assert both.transitions.truncations[299] and both.transitions.truncations[-1]


def test_interrupted_collection_leaves_nothing_behind(
    agents_cache: Path, minari_datasets_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = minari.create_dataset_from_buffers

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)  # the whole dataset is written (in the staging folder) ...
        raise KeyboardInterrupt  # ... and the process is interrupted before it is moved into place

    monkeypatch.setattr(minari, "create_dataset_from_buffers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        collect("imitation", 300, agents_cache)
    assert minari.list_local_datasets() == {}
    assert [p.name for p in minari_datasets_path.iterdir()] == []


def test_existing_dataset_is_not_overwritten_silently(agents_cache: Path) -> None:
    collect("random", 200, agents_cache)
    with pytest.raises(FileExistsError, match="pendulum/random-v0"):
        collect("random", 200, agents_cache)
    assert len(collect("random", 300, agents_cache, overwrite=True).transitions) == 300


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="protocol: expected one of"):
        collect_dataset(ENV, "nonsense", 10)
    with pytest.raises(ValueError, match="n_transitions"):
        collect_dataset(ENV, "random", 0)
    with pytest.raises(ValueError, match="action_space: expected a bounded Box"):
        ActingPolicy(None, gym.spaces.Discrete(3))
    assert set(PROTOCOLS) >= {"final", "concurrent", "imitation", "imperfect", "random", "medium", "medium-replay"}


def test_normalized_score_and_evaluate(agents_cache: Path) -> None:
    result = collect("imitation", 400, agents_cache)
    low, high = result.scores.random, result.scores.expert
    assert normalized_score("pendulum/imitation-v0", low) == pytest.approx(0.0)
    assert normalized_score("pendulum/imitation-v0", high) == pytest.approx(100.0)
    np.testing.assert_allclose(normalized_score(result.transitions, [low, high]), [0.0, 100.0])
    model = BatchDDPG("MlpPolicy", gym.make(ENV), dataset="pendulum/imitation-v0", device="cpu", seed=0)
    model.learn(20)
    evaluation = evaluate(model, n_episodes=2)
    assert len(evaluation.returns) == 2 and evaluation.mean_return == pytest.approx(np.mean(evaluation.returns))
    assert evaluation.normalized_score == pytest.approx(
        normalized_score("pendulum/imitation-v0", evaluation.mean_return)
    )


def test_normalized_score_needs_reference_scores(pendulum_transitions: Any) -> None:
    assert reference_scores(pendulum_transitions) is None
    with pytest.raises(ValueError, match="ref_min_score and ref_max_score"):
        normalized_score(pendulum_transitions, -100.0)


@pytest.mark.slow  # more than 15 s on a busy 2-core machine
def test_concurrent_experiment_learners_share_the_growing_buffer(tmp_path: Path) -> None:
    small = dict(policy_kwargs=dict(net_arch=[32, 32]), learning_starts=100)
    bcq_small = dict(policy_kwargs=dict(net_arch=dict(pi=[32, 32], qf=[32, 32], vae=[32, 32])))
    result = run_concurrent_experiment(
        ENV,
        {"BatchDDPG": (BatchDDPG, dict(policy_kwargs=small["policy_kwargs"])), "BCQ": (BCQ, bcq_small)},
        total_steps=400,
        eval_freq=200,
        n_eval_episodes=1,
        sync_every=50,
        behaviour_kwargs=small,
        device="cpu",
    )
    assert result.timesteps == [200, 400]
    assert set(result.returns) == {"behaviour", "BatchDDPG", "BCQ"}
    assert all(len(v) == 2 and np.isfinite(v).all() for v in result.returns.values())
    models = result.models
    assert models["BCQ"].replay_buffer is models["behaviour"].replay_buffer is models["BatchDDPG"].replay_buffer
    assert models["behaviour"].replay_buffer.size() == 400
    # one gradient step per behaviour env step after its learning_starts (100)
    assert models["BCQ"].num_timesteps == models["BatchDDPG"].num_timesteps == 300
    assert result.save_csv(tmp_path / "curves.csv").read_text().startswith("timesteps,behaviour_mean")
    assert result.plot(tmp_path / "curves.png").stat().st_size > 1000


def test_expert_protocol_acts_with_the_agents_own_exploration(agents_cache: Path) -> None:
    result = collect("expert", 1000, agents_cache)
    assert not result.random_actions.any()
    greedy = expert_actions(agents_cache, result.transitions.observations)[:, 0]
    residual = result.transitions.actions[:, 0] - greedy
    # TD3's exploration: N(0, 0.1 * max_action), clipped to the bounds
    rng = np.random.default_rng(0)
    simulated = np.clip(greedy[:, None] + 0.2 * rng.standard_normal((len(greedy), 50)), -2, 2) - greedy[:, None]
    assert residual.std() == pytest.approx(simulated.std(), rel=0.15)
