"""Shared fixtures: small datasets recorded from real environments (session-scoped, never mutate them)."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_offline.datasets import Transitions, record_transitions


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the README's ``-n auto``) each worker is one process per core: one torch thread each."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        th.set_num_threads(1)


@pytest.fixture(autouse=True)
def minari_datasets_path(tmp_path, monkeypatch):
    """Every test gets its own Minari folder, so no test reads or writes ~/.minari."""
    path = tmp_path / "minari_datasets"
    path.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    # trained behaviour agents (sb3_offline.collect) are cached per test too, never in ~/.cache
    monkeypatch.setenv("SB3_OFFLINE_AGENTS", str(tmp_path / "agents"))
    return path


@pytest.fixture(scope="session")
def pendulum_transitions() -> Transitions:
    """1000 random-policy steps of Pendulum-v1: five 200-step episodes, all truncated, no terminations."""
    transitions = record_transitions("Pendulum-v1", 1000, seed=0)
    assert len(transitions) == 1000
    assert not transitions.terminations.any()
    assert transitions.truncations.sum() == 5
    return transitions


@pytest.fixture(scope="session")
def inverted_transitions() -> Transitions:
    """InvertedPendulum-v5 with a 20-step limit: random actions mostly terminate, some episodes truncate."""
    env = gym.make("InvertedPendulum-v5", max_episode_steps=20)
    try:
        transitions = record_transitions(env, 600, seed=0)
    finally:
        env.close()
    assert transitions.terminations.any()
    assert transitions.truncations.any()
    assert not (transitions.terminations & transitions.truncations).any()
    # at least one truncation that is not the end of the data (a real time-limit cut mid-dataset)
    assert np.flatnonzero(transitions.truncations)[0] < len(transitions) - 1
    return transitions


@pytest.fixture
def pendulum_env():
    env = gym.make("Pendulum-v1")
    yield env
    env.close()


@pytest.fixture(scope="session")
def fetch_transitions() -> Transitions:
    """120 random steps of FetchReach-v4 (Dict observations, 50-step time limit)."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    env = gym.make("FetchReach-v4")
    try:
        transitions = record_transitions(env, 120, seed=0)
    finally:
        env.close()
    assert isinstance(transitions.observations, dict)
    assert set(transitions.observations) == {"observation", "achieved_goal", "desired_goal"}
    assert transitions.truncations.sum() == 3  # steps 49, 99 and the closing row 119
    return transitions


@pytest.fixture(scope="session")
def fetch_env_spaces(fetch_transitions):
    """(observation_space, action_space) of FetchReach-v4."""
    env = gym.make("FetchReach-v4")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


@pytest.fixture(scope="session")
def inverted_env_spaces():
    env = gym.make("InvertedPendulum-v5")
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
