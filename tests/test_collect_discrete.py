"""
Dataset collection on a ``Discrete`` action space (CartPole-v1, tiny budgets): SB3's DQN and sb3-contrib's QR-DQN as
behaviour agents, the BCQ paper's protocols with the discrete BCQ authors' epsilons, written as Minari datasets that
the discrete algorithms train on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest
from sb3_contrib import QRDQN
from stable_baselines3 import DQN

from sb3_offline import DiscreteBCQ
from sb3_offline.collect import collect_dataset, expert_agent, make_behaviour_agent
from sb3_offline.collect.discrete import DiscreteActingPolicy

ENV = "CartPole-v1"
EXPERT_STEPS = 1500
BEHAVIOUR = dict(learning_starts=200, train_freq=64, gradient_steps=32, policy_kwargs=dict(net_arch=[32, 32]))
TINY = dict(algo="dqn", expert_steps=EXPERT_STEPS, ref_episodes=2, behaviour_kwargs=BEHAVIOUR, progress_bar=False)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def agents_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny DQN expert for the module (trained on first use, then read from this cache)."""
    return tmp_path_factory.mktemp("agents")


def collect(protocol: str, n: int, agents_cache: Path, **kwargs: Any) -> Any:
    return collect_dataset(ENV, protocol, n, agents_cache=agents_cache, **{**TINY, **kwargs})


def greedy_actions(agents_cache: Path, observations: np.ndarray) -> np.ndarray:
    expert, _ = expert_agent(ENV, "dqn", steps=EXPERT_STEPS, cache_dir=agents_cache, behaviour_kwargs=BEHAVIOUR)
    assert isinstance(expert, DQN)
    return expert.predict(observations, deterministic=True)[0]


def test_imitation_is_the_greedy_expert_and_trains_discrete_bcq(agents_cache: Path) -> None:
    result = collect("imitation", 400, agents_cache)
    data = result.transitions
    assert result.dataset_id == "cartpole/imitation-v0" and len(data) == 400
    assert data.actions.dtype == np.int64 and not result.random_actions.any()
    np.testing.assert_array_equal(data.actions, greedy_actions(agents_cache, data.observations))
    ds = minari.load_dataset("cartpole/imitation-v0")
    assert ds.total_steps == 400 and ds.recover_environment().spec.id == ENV
    model = DiscreteBCQ("MlpPolicy", None, dataset="cartpole/imitation-v0", device="cpu", batch_size=16)
    assert model.replay_buffer.size() == 400 and model.replay_buffer.actions.dtype.is_floating_point is False
    model.learn(3)


def test_imperfect_has_the_discrete_bcq_authors_epsilon(agents_cache: Path) -> None:
    """A random action with probability 0.2, except in low-noise episodes (a fifth of them, none at all)."""
    result = collect("imperfect", 3000, agents_cache)
    data, flags = result.transitions, result.random_actions
    per_episode = [flags[part] for part in data.episode_slices() if part.stop - part.start >= 20]
    quiet = [episode for episode in per_episode if not episode.any()]
    assert 0 < len(quiet) < len(per_episode)
    noisy = np.concatenate([episode for episode in per_episode if episode.any()])
    assert abs(noisy.mean() - 0.2) < 0.05
    greedy = greedy_actions(agents_cache, data.observations)
    np.testing.assert_array_equal(data.actions[~flags], greedy[~flags])


def test_random_protocol_is_uniform(agents_cache: Path) -> None:
    result = collect("random", 1000, agents_cache, ref_scores=False)
    assert result.random_actions.all() and abs(result.transitions.actions.mean() - 0.5) < 0.06


@pytest.mark.parametrize("protocol, epsilon", [("final", 0.5), ("concurrent", 0.1)])
def test_training_protocols_keep_every_transition_of_a_dqn_exploring_with_epsilon(
    protocol: str, epsilon: float, agents_cache: Path
) -> None:
    result = collect(protocol, 500, agents_cache, ref_scores=False)
    data = result.transitions
    assert len(data) == 500 and result.info["behaviour_training_steps"] == 500
    assert data.actions.dtype == np.int64 and set(np.unique(data.actions)) == {0, 1}
    assert data.terminations.any()  # CartPole's falls are terminations, kept apart from truncations
    assert minari.load_dataset(result.dataset_id).total_steps == 500
    agent = make_behaviour_agent(gym.make(ENV), "dqn", epsilon, seed=0)
    assert agent.exploration_initial_eps == agent.exploration_final_eps == epsilon


def test_qrdqn_behaviour_agent(agents_cache: Path) -> None:
    result = collect("concurrent", 300, agents_cache, algo="qrdqn", ref_scores=False, dataset_id="cartpole/qr-v0")
    assert len(result.transitions) == 300 and result.info["behaviour_algo"] == "qrdqn"
    assert isinstance(make_behaviour_agent(gym.make(ENV), "qrdqn", 0.1, seed=0), QRDQN)


def test_bad_behaviour_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"algo: expected one of \['dqn', 'qrdqn'\] for the Discrete action space"):
        make_behaviour_agent(gym.make(ENV), "td3")
    with pytest.raises(ValueError, match="noise_std: expected an epsilon in"):
        make_behaviour_agent(gym.make(ENV), "dqn", noise_std=1.5)
    with pytest.raises(ValueError, match="low_noise_prob: expected a probability"):
        DiscreteActingPolicy(None, gym.make(ENV).action_space, low_noise_prob=2.0)


def test_collect_command_takes_a_discrete_behaviour_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sb3_offline.cli import main

    args = ["collect", "--env", ENV, "--protocol", "concurrent", "--algo", "qrdqn", "--steps", "300"]
    assert main([*args, "--no-ref-scores", "--no-progress-bar"]) == 0
    assert "wrote 'cartpole/concurrent-v0': 300 transitions" in capsys.readouterr().out
    assert minari.load_dataset("cartpole/concurrent-v0").action_space == gym.spaces.Discrete(2)
