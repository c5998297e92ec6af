"""HerDDPG (DDPG with Hindsight Experience Replay's settings) on FetchReach-v4, and the README's HER example."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_offline import BatchDDPG
from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.datasets import Transitions, record_transitions
from sb3_offline.her import HerDDPG, OfflineHerReplayBuffer, evaluate_success_rate, normalizer_kwargs
from sb3_offline.her.collect import collect_fetch_dataset, make_goal_env

README = Path(__file__).resolve().parents[1] / "README.md"
ENV_ID = "FetchReach-v4"
#: HerDDPG (HER's settings) with small networks
SMALL_HER_DDPG = dict(net_arch=[64, 64])


#: one torch thread (conftest): on 2 shared cores (with MuJoCo) a 2-thread pool oversubscribes these small networks
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fetch_env() -> gym.Env:
    return make_goal_env(ENV_ID)


@pytest.fixture(scope="module")
def reach_data() -> Transitions:
    """300 random FetchReach steps (6 episodes of 50)."""
    return record_transitions(make_goal_env(ENV_ID), 300, seed=0)


def fetch_success_rate(model: Any, n_episodes: int = 20) -> float:
    return evaluate_success_rate(model, make_goal_env(ENV_ID), n_episodes=n_episodes, seed=1000)


# ------------------------------------------------------------------------------------------ HerDDPG
def test_her_ddpg_defaults_are_hers(reach_data: Transitions, fetch_env: gym.Env, tmp_path: Path) -> None:
    """OpenAI baselines' her (config.py, actor_critic.py): the settings, the normaliser, the checkpoint."""
    model = HerDDPG("MultiInputPolicy", fetch_env, dataset=reach_data, device="cpu", seed=0)
    assert (model.gamma, model.tau, model.batch_size) == (0.98, 0.05, 256)
    assert (model.action_l2, model.clip_return, model.critic_weight_decay) == (1.0, True, 0.0)
    for network in ("actor", "critic"):
        optimizer = getattr(model, network).optimizer
        assert optimizer.param_groups[0]["lr"] == 1e-3 and optimizer.param_groups[0]["weight_decay"] == 0.0
    assert [m.out_features for m in model.actor.mu if isinstance(m, th.nn.Linear)] == [256, 256, 256, 4]
    assert model.critic.q_networks[0][0].in_features == 16 + 4  # [o, achieved, desired, a] at the input
    assert isinstance(model.replay_buffer, OfflineHerReplayBuffer) and model.replay_buffer.n_sampled_goal == 4
    # the dataset's statistics, as normalizer_kwargs computes them: clipped to [-5, 5], the goals pooled
    stats = normalizer_kwargs(reach_data)["features_extractor_kwargs"]
    normalizer = model.actor.features_extractor.normalizer
    for key in ("observation", "achieved_goal", "desired_goal"):
        standardizer = normalizer.standardizer(key)
        assert standardizer.clip == 5.0 and standardizer.eps_mode == "max" and standardizer.eps == 0.01
        np.testing.assert_allclose(standardizer.mean.numpy(), stats["mean"][key], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(standardizer.divisor.numpy(), stats["std"][key], rtol=1e-5, atol=1e-6)
    model.learn(3)
    model.save(tmp_path / "her_ddpg")
    loaded = HerDDPG.load(tmp_path / "her_ddpg", device="cpu")
    obs, _ = fetch_env.reset(seed=1)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    with pytest.raises(ValueError, match="expected a BatchDDPG checkpoint, found a HerDDPG checkpoint"):
        BatchDDPG.load(tmp_path / "her_ddpg", device="cpu")
    plain = HerDDPG("MultiInputPolicy", fetch_env, dataset=reach_data, device="cpu", replay_buffer_class=None)
    assert type(plain.replay_buffer) is OfflineReplayBuffer  # replayed as recorded
    with pytest.raises(ValueError, match="action_l2: expected >= 0, found -1"):
        HerDDPG("MultiInputPolicy", fetch_env, dataset=reach_data, action_l2=-1)


def test_her_ddpg_target_and_actor_loss_by_hand(reach_data: Transitions, fetch_env: gym.Env) -> None:
    """The target clipped to [-1 / (1 - gamma), 0] (HER's clip_return) and the actor's L2 penalty on its actions."""
    model = HerDDPG(
        "MultiInputPolicy", fetch_env, dataset=reach_data, device="cpu", seed=0, policy_kwargs=dict(net_arch=[32])
    )
    assert model.replay_buffer is not None
    data = model.replay_buffer.sample(64)
    with th.no_grad():  # Q' = 30 everywhere: r + 0.98 * 30 > 0 is clipped to 0
        model.critic_target.q_networks[0][-1].weight.zero_()
        model.critic_target.q_networks[0][-1].bias.fill_(30.0)
    th.testing.assert_close(model.compute_critic_target(data), th.zeros(64, 1))
    with th.no_grad():  # Q' = -100: r - 98 < -50 is clipped to -1 / (1 - 0.98) = -50
        model.critic_target.q_networks[0][-1].bias.fill_(-100.0)
    th.testing.assert_close(model.compute_critic_target(data), th.full((64, 1), -50.0))
    model.clip_return = False
    th.testing.assert_close(model.compute_critic_target(data), data.rewards - 98.0)

    with th.no_grad():
        actions = model.actor(data.observations)
        q_values = model.critic.q1_forward(data.observations, actions)
    expected = -q_values.mean() + 1.0 * (actions**2).mean()
    th.testing.assert_close(model.compute_actor_loss(data).detach(), expected)
    model.action_l2 = 0.0
    th.testing.assert_close(model.compute_actor_loss(data).detach(), -q_values.mean())


# -------------------------------------------------------------------------------------- learning
def readme_her_snippet(readme: Path = README) -> str:
    """The README's HER example, as a user copies it: its one Python block that builds a ``HerDDPG``."""
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    found = [block for block in blocks if "HerDDPG(" in block]
    assert len(found) == 1, f"README.md: expected one Python block building HerDDPG, found {len(found)}"
    return found[0]


def run_readme_her_snippet(steps: int, seed: int, code: str | None = None) -> float:
    """
    Run the README's HER example as written, with ``steps`` gradient steps instead of its 3000 and the global
    generators (the model's initialisation, the batches) seeded with ``seed``; return the success rate it prints.
    The dataset goes to ``MINARI_DATASETS_PATH`` (a temporary folder in the tests).
    """
    code = readme_her_snippet() if code is None else code
    assert code.count("model.learn(3_000)") == 1, "README.md: the HER example's model.learn(3_000) changed"
    th.manual_seed(seed)
    np.random.seed(seed)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace("model.learn(3_000)", f"model.learn({steps})"), str(README), "exec"), {})
    return float(printed.getvalue().split()[-1])


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_readme_her_snippet_reaches_hers_success(seed: int) -> None:
    """
    The README's HER example as written: 5000 random FetchReach steps collected into a local Minari dataset (the
    test's own folder), ``HerDDPG`` at its defaults, the success rate over 50 episodes; 500 gradient steps instead
    of its 3000. HER reaches every goal of FetchReach. Measured at 500 steps: 1.0 on seeds 0-4 (1.0 at 3000 steps,
    seeds 0-2). The example before ``HerDDPG`` (``BatchDDPG``, the BCQ paper's DDPG, with HER's relabelling and
    normaliser) gave 1.0 and 0.8 on seeds 0 and 1 (1.0 and 1.0 at 3000 steps).
    """
    assert run_readme_her_snippet(500, seed) >= 0.9


@pytest.mark.slow
def test_online_ddpg_with_sb3_her_reaches() -> None:
    """HerDDPG used online with SB3's HerReplayBuffer and VecNormalize on FetchReach: 2000 env steps."""
    venv = VecNormalize(DummyVecEnv([lambda: make_goal_env(ENV_ID)]), norm_obs=True, norm_reward=False)
    model = HerDDPG(
        "MultiInputPolicy",
        venv,
        buffer_size=10_000,
        learning_starts=200,
        action_noise=NormalActionNoise(np.zeros(4), 0.2 * np.ones(4)),
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future"),
        seed=0,
        device="cpu",
        normalize_observations=False,  # VecNormalize does it
        policy_kwargs=SMALL_HER_DDPG,
    )
    assert isinstance(model.replay_buffer, HerReplayBuffer)
    model.learn_online(2000)
    assert model.replay_buffer.size() == 2000
    venv.training = False
    assert fetch_success_rate(model) >= 0.5  # random actions: 0.005


@pytest.mark.slow
def test_offline_her_beats_no_relabelling_on_random_data() -> None:
    """HerDDPG on 50 random FetchReach episodes: with HER relabelling it reaches its goals, without it it does not."""
    collection = collect_fetch_dataset(ENV_ID, 2500, behaviour="random", seed=0)
    assert collection.success_rate < 0.1  # a poor behaviour
    env = make_goal_env(ENV_ID)
    rates = {}
    for relabel in (True, False):
        model = HerDDPG(
            "MultiInputPolicy",
            env,
            dataset=collection.transitions,
            replay_buffer_class=OfflineHerReplayBuffer if relabel else None,
            seed=0,
            device="cpu",
            policy_kwargs=SMALL_HER_DDPG,
        )
        model.learn(1000)
        rates[relabel] = fetch_success_rate(model)
    # measured: 1.0 with HER (seeds 0, 1, 2), 0.0 without
    assert rates[True] >= 0.6 and rates[False] <= 0.2, rates
