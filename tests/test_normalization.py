"""
The shared input normaliser: statistics from the dataset when it is read, kept in the policy, saved with it; one
rule for every algorithm's ``normalize_observations`` switch, for ``Box`` and ``Dict`` observations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import TINY
from stable_baselines3.common.torch_layers import FlattenExtractor

from sb3_offline import BC, BatchDDPG, Transitions
from sb3_offline.algorithms import ALGOS
from sb3_offline.common.normalization import (
    ActionNormalizer,
    NormalizedCombinedExtractor,
    NormalizedFlattenExtractor,
    ObservationNormalizer,
    Standardizer,
    fit_normalizers,
    observation_normalizer_kwargs,
)
from sb3_offline.datasets import record_transitions
from sb3_offline.ope import FQE


def normalizers(model) -> list[ObservationNormalizer]:
    return [m for m in model.policy.modules() if isinstance(m, ObservationNormalizer)]


def test_standardizer_formulas_by_hand() -> None:
    values = th.tensor([[1.0, 5.0], [3.0, 5.0]])
    td3bc = Standardizer((2,), eps=1e-3, eps_mode="add")
    td3bc.fit(values)
    # mean (2, 5), population std (1, 0): divisors 1.001 and 0.001
    expected = (th.tensor([[4.0, 6.0]]) - th.tensor([2.0, 5.0])) / th.tensor([1.001, 0.001])
    th.testing.assert_close(td3bc(th.tensor([[4.0, 6.0]])), expected)
    her = Standardizer((2,), eps=0.01, eps_mode="max", clip=5.0)
    her.fit(values)
    th.testing.assert_close(her(th.tensor([[4.0, 6.0]])), th.tensor([[2.0, 5.0]]))  # (6-5)/0.01 = 100 -> clip 5
    th.testing.assert_close(td3bc.denormalize(td3bc(values)), values)
    with pytest.raises(ValueError, match=r"std: expected values > 0"):
        Standardizer((2,), eps=0.0).set_statistics([0.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="eps_mode"):
        Standardizer((2,), eps_mode="mul")


def test_statistics_come_from_the_dataset_and_survive_save_load(
    pendulum_transitions: Transitions, tmp_path: Path
) -> None:
    env = gym.make("Pendulum-v1")
    kwargs = observation_normalizer_kwargs(env.observation_space, eps=1e-3)
    model = BC(
        "MlpPolicy",
        env,
        dataset=pendulum_transitions,
        policy_kwargs=dict(net_arch=[16], **kwargs),
        device="cpu",
        seed=0,
    )
    (normalizer,) = normalizers(model)
    standardizer = normalizer.standardizer()
    np.testing.assert_allclose(standardizer.mean.numpy(), pendulum_transitions.observations.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        standardizer.divisor.numpy(), pendulum_transitions.observations.std(axis=0) + 1e-3, rtol=1e-5
    )
    extractor = model.actor.features_extractor
    assert isinstance(extractor, NormalizedFlattenExtractor)
    obs = th.as_tensor(pendulum_transitions.observations[:4])
    expected = (obs - pendulum_transitions.observations.mean(axis=0)) / (
        pendulum_transitions.observations.std(axis=0) + 1e-3
    )
    th.testing.assert_close(extractor(obs), expected.float(), rtol=1e-5, atol=1e-5)
    assert not list(extractor.parameters())  # statistics are buffers, nothing is trained

    model.learn(20)
    model.save(tmp_path / "bc")
    loaded = BC.load(tmp_path / "bc", env=env, device="cpu")  # no dataset: predict still normalises
    th.testing.assert_close(normalizers(loaded)[0].standardizer().mean, standardizer.mean)
    np.testing.assert_allclose(
        loaded.predict(pendulum_transitions.observations[:5], deterministic=True)[0],
        model.predict(pendulum_transitions.observations[:5], deterministic=True)[0],
    )
    # training on again with other data keeps the statistics the policy was trained with
    other = record_transitions("Pendulum-v1", 200, seed=5)
    loaded = BC.load(tmp_path / "bc", env=env, device="cpu", dataset=other)
    loaded.learn(5)
    th.testing.assert_close(normalizers(loaded)[0].standardizer().mean, standardizer.mean)


def test_every_copy_of_the_extractor_is_fitted(pendulum_transitions: Transitions) -> None:
    """SB3's TD3Policy builds four extractors (actor, critic and their targets): all get the statistics."""
    env = gym.make("Pendulum-v1")
    kwargs = observation_normalizer_kwargs(env.observation_space)
    model = BatchDDPG(
        "MlpPolicy",
        env,
        dataset=pendulum_transitions,
        policy_kwargs=dict(net_arch=[16], **kwargs),
        device="cpu",
        seed=0,
    )
    found = normalizers(model)
    assert len(found) == 4 and all(n.fitted for n in found)
    for n in found[1:]:
        th.testing.assert_close(n.standardizer().mean, found[0].standardizer().mean)


def test_dict_observations_with_pooled_goals(fetch_transitions: Transitions, fetch_env_spaces) -> None:
    observation_space, _ = fetch_env_spaces
    normalizer = ObservationNormalizer(
        observation_space, eps=0.01, eps_mode="max", clip=5.0, pooled_keys=[["achieved_goal", "desired_goal"]]
    )
    obs = fetch_transitions.observations
    assert isinstance(obs, dict)
    normalizer.fit({k: th.as_tensor(v) for k, v in obs.items()})
    goals = np.concatenate([obs["achieved_goal"], obs["desired_goal"]])
    for key in ("achieved_goal", "desired_goal"):
        np.testing.assert_allclose(normalizer.standardizer(key).mean.numpy(), goals.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        normalizer.standardizer("observation").divisor.numpy(),
        np.maximum(obs["observation"].std(axis=0), 0.01),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="pooled_keys"):
        ObservationNormalizer(observation_space, pooled_keys=[["observation", "desired_goal"]])


def test_action_normalizers_are_fitted_from_the_actions_given() -> None:
    """An ActionNormalizer in a module gets the actions' statistics; a fitted one, or no actions, leaves it alone."""
    module = th.nn.Module()
    module.obs = ObservationNormalizer(gym.spaces.Box(-1.0, 1.0, (2,)))
    module.actions = ActionNormalizer((1,), eps=1e-6)
    observations, actions = th.tensor([[0.0, 1.0], [2.0, 3.0]]), th.tensor([[-0.5], [0.5]])
    assert fit_normalizers(module, observations) == 1 and not bool(module.actions.fitted)
    assert fit_normalizers(module, observations, actions) == 1  # the observations are fitted already
    th.testing.assert_close(module.actions.mean, th.tensor([0.0]))
    th.testing.assert_close(module.actions.divisor, th.tensor([0.5 + 1e-6]))
    th.testing.assert_close(module.actions.denormalize(module.actions(actions)), actions)
    assert fit_normalizers(module, observations, actions * 4) == 0


# ------------------------------------------------------------------------ the algorithms' switches
NORMALIZING: list[tuple[str, str, float]] = [
    ("td3bc", "normalize_observations", 1e-3),
    ("iql", "normalize_observations", 1e-3),
    ("cql", "normalize_observations", 1e-3),
    ("calql", "normalize_observations", 1e-3),
    ("lapo", "normalize_observations", 1e-6),
    ("fqe", "normalize_observations", 1e-3),
    ("rebrac", "normalize_observations", 1e-3),
]


def make_normalizing(name: str, data: Transitions, switch: str, **kwargs: Any) -> Any:
    if name == "fqe":
        return FQE(
            lambda obs: np.zeros(1, np.float32),
            dataset=data,
            env=gym.make("Pendulum-v1"),
            device="cpu",
            seed=0,
            **{switch: True},
            **kwargs,
        )
    policy_kwargs = {**TINY[name]["policy_kwargs"], **kwargs.pop("policy_kwargs", {})}
    return ALGOS[name](
        "MlpPolicy", "Pendulum-v1", dataset=data, device="cpu", seed=0, policy_kwargs=policy_kwargs, **{switch: True}
    )


@pytest.mark.parametrize(("name", "switch", "eps"), NORMALIZING)
def test_every_state_normalisation_switch_adds_the_same_normaliser(
    name: str, switch: str, eps: float, pendulum_transitions: Transitions
) -> None:
    """One rule (common.normalization.with_observation_normalizer) for every algorithm with a switch: the
    normaliser with the algorithm's eps, statistics from the dataset, the user's extractor kwargs on top, and any
    other extractor refused with the switch named (not kept, normalising nothing)."""
    model = make_normalizing(
        name, pendulum_transitions, switch, policy_kwargs=dict(features_extractor_kwargs=dict(clip=5.0))
    )
    extractors = [m for m in model.policy.modules() if isinstance(m, NormalizedFlattenExtractor)]
    assert extractors, f"{name}: no normalising extractor"
    assert isinstance(pendulum_transitions.observations, np.ndarray)
    for extractor in extractors:
        standardizer = extractor.normalizer.standardizer()
        assert (standardizer.eps, standardizer.eps_mode, standardizer.clip) == (eps, "add", 5.0)
        np.testing.assert_allclose(
            standardizer.mean.cpu().numpy(), pendulum_transitions.observations.mean(axis=0), rtol=1e-5, atol=1e-6
        )
    with pytest.raises(
        ValueError,
        match=rf"features_extractor_class'\]: expected NormalizedFlattenExtractor .*"
        rf"with {switch}=True, found FlattenExtractor; pass {switch}=False",
    ):
        make_normalizing(
            name, pendulum_transitions, switch, policy_kwargs=dict(features_extractor_class=FlattenExtractor)
        )


def test_dict_observations_get_the_datasets_statistics_per_key(tiny_model, fetch_transitions, fetch_env) -> None:
    """TD3+BC normalises by default: a ``Dict`` observation gets one standardizer per key, fitted on the dataset."""
    model = tiny_model("td3bc", fetch_transitions, env=fetch_env, policy="MultiInputPolicy")
    extractor = model.actor.features_extractor
    assert isinstance(extractor, NormalizedCombinedExtractor)
    observations = fetch_transitions.observations
    assert isinstance(observations, dict)
    for key, values in observations.items():
        standardizer = extractor.normalizer.standardizer(key)
        np.testing.assert_allclose(standardizer.mean.numpy(), values.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(standardizer.divisor.numpy(), values.std(axis=0) + 1e-3, rtol=1e-4, atol=1e-6)
