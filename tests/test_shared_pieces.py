"""The pieces every algorithm shares: learning-rate schedules per optimizer, the critic loss, the advantage
weights, the action-units rule, the features-extractor rule and BatchDDPG's 2018 networks."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor

from sb3_offline import AWAC, BC, BCQ, LAPO, PLAS, BatchDDPG, Transitions
from sb3_offline.algorithms import ALGOS
from sb3_offline.batch_ddpg.policies import ActionAtSecondLayerQNetwork
from sb3_offline.bc.policies import BCPolicy
from sb3_offline.common.actions import action_squared_error, loss_action_scale
from sb3_offline.common.critics import critic_loss
from sb3_offline.common.normalization import NormalizedFlattenExtractor
from sb3_offline.common.scalars import LogScalar
from sb3_offline.common.schedules import CosineDecaySchedule, LinearStepSchedule
from sb3_offline.common.squashed_gaussian import squashed_gaussian_log_prob, squashed_gaussian_sample
from sb3_offline.common.training import minimize
from sb3_offline.common.vae import vae_loss
from sb3_offline.common.weights import exp_weights, expectile_loss, expectile_weights, softmax_weights
from sb3_offline.datasets import record_transitions
from sb3_offline.ope import FQE

TINY: dict[type, dict[str, Any]] = {
    BCQ: dict(policy_kwargs=dict(net_arch=dict(pi=[16], qf=[16], vae=[16]))),
    PLAS: dict(vae_steps=2, policy_kwargs=dict(net_arch=dict(pi=[16], qf=[16], vae=[16]))),
    AWAC: dict(batch_size=32, policy_kwargs=dict(net_arch=dict(pi=[16], qf=[16]))),
    BatchDDPG: dict(policy_kwargs=dict(net_arch=[16, 16])),
    BC: dict(policy_kwargs=dict(net_arch=[16])),
    LAPO: dict(batch_size=32, policy_kwargs=dict(net_arch=dict(pi=[16], qf=[16], vae=[16], vf=[16]))),
}


@pytest.fixture(scope="module")
def pendulum() -> Transitions:
    return record_transitions("Pendulum-v1", 300, seed=0)


def make(algo: type, data: Transitions, **kwargs: Any) -> Any:
    options = {**TINY.get(algo, {}), **kwargs}
    if "policy_kwargs" in kwargs and "policy_kwargs" in TINY.get(algo, {}):
        options["policy_kwargs"] = {**TINY[algo]["policy_kwargs"], **kwargs["policy_kwargs"]}
    return algo("MlpPolicy", gym.make("Pendulum-v1"), dataset=data, device="cpu", seed=0, **options)


def learning_rates(model: Any) -> dict[str, float]:
    return {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in model._optimizers().items()}


# ------------------------------------------------------------------------------------- learning rates
def test_bcq_keeps_the_actor_learning_rate_a_user_sets(pendulum: Transitions) -> None:
    """Issue 17, fix 1: BCQ's train() used to set every optimizer to learning_rate (1e-3) after one step."""
    model = make(BCQ, pendulum, actor_learning_rate=1e-4)
    model.learn(3)
    assert learning_rates(model) == {"vae": 1e-3, "actor": 1e-4, "critic": 1e-3}


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_every_optimizer_keeps_its_own_learning_rate(name: str, pendulum: Transitions) -> None:
    algo = ALGOS[name]
    model = make(algo, pendulum)
    declared = learning_rates(model)
    model.learn(4)
    # constant rates stay exactly; IQL's actor decays over 1M steps (a hair after 4)
    assert learning_rates(model) == pytest.approx(declared, rel=1e-6)
    expected = {
        "awac": {"actor": 3e-4, "critic": 3e-4},
        "bc": {"actor": 1e-3},
        "batch_ddpg": {"actor": 1e-4, "critic": 1e-3},
        "bcq": {"vae": 1e-3, "actor": 1e-3, "critic": 1e-3},
        "plas": {"vae": 1e-4, "actor": 1e-4, "critic": 1e-3},
        "lapo": {"vae": 2e-4, "actor": 2e-4, "critic": 2e-4, "value": 2e-4},
        # SAC's entropy coefficient at the actor's rate, the Lagrange multiplier at the critics' (the CQL authors')
        "cql": {"actor": 1e-4, "critic": 3e-4, "log_ent_coef": 1e-4, "log_alpha_prime": 3e-4},
        "calql": {"actor": 1e-4, "critic": 3e-4, "log_ent_coef": 1e-4, "log_alpha_prime": 3e-4},
        "iql": {"actor": 3e-4, "critic": 3e-4, "value": 3e-4},
        "td3bc": {"actor": 3e-4, "critic": 3e-4},
    }
    if name in expected:
        assert declared == expected[name]


def test_a_schedule_moves_only_its_own_optimizer(pendulum: Transitions) -> None:
    model = make(AWAC, pendulum, learning_rate=lambda progress: 1e-3 * progress, actor_learning_rate=2e-4)
    model.learn(10)
    rates = learning_rates(model)
    assert rates["critic"] == pytest.approx(1e-3 * (1 - 9 / 10))  # progress remaining before the last step
    assert rates["actor"] == 2e-4


def test_step_schedules_run_over_gradient_steps_across_learn_calls(pendulum: Transitions) -> None:
    """A fixed-horizon schedule (IQL's cosine decay) does not restart when learn is called again."""
    schedule = CosineDecaySchedule(1e-3, horizon=20)
    model = make(BC, pendulum, learning_rate=schedule)
    model.learn(5)
    model.learn(5, reset_num_timesteps=False)
    # set before the 10th update, i.e. after 9 updates
    assert learning_rates(model)["actor"] == pytest.approx(schedule(9))
    model.learn(5)  # a fresh learn call: progress restarts, the step count does not
    assert learning_rates(model)["actor"] == pytest.approx(schedule(14))


def test_step_schedules_by_hand() -> None:
    cosine = CosineDecaySchedule(1.0, horizon=10, alpha=0.1)
    assert cosine(0) == pytest.approx(1.0)
    assert cosine(5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine(10) == cosine(1000) == pytest.approx(0.1)
    linear = LinearStepSchedule(1.0, 0.0, horizon=4)
    assert [linear(step) for step in (0, 2, 4, 9)] == [1.0, 0.5, 0.0, 0.0]


def test_step_schedule_is_saved_and_continues(pendulum: Transitions, tmp_path) -> None:
    model = make(BC, pendulum, learning_rate=CosineDecaySchedule(1e-3, horizon=20))
    model.learn(6)
    model.save(tmp_path / "bc")
    loaded = BC.load(tmp_path / "bc", env=gym.make("Pendulum-v1"), dataset=pendulum, device="cpu")
    loaded.learn(4, reset_num_timesteps=False)
    assert learning_rates(loaded)["actor"] == pytest.approx(CosineDecaySchedule(1e-3, horizon=20)(9))


# ------------------------------------------------------------------------------------------ critics
def test_critic_loss_sums_one_mse_per_critic() -> None:
    current = th.tensor([[1.0, 2.0], [3.0, 5.0]])
    target = th.tensor([[0.0], [1.0]])
    # critic 1: ((1-0)^2 + (3-1)^2) / 2 = 2.5; critic 2: ((2-0)^2 + (5-1)^2) / 2 = 10
    assert critic_loss(current, target).item() == pytest.approx(12.5)
    with pytest.raises(ValueError, match="target_q"):
        critic_loss(current, target.reshape(-1))


# ------------------------------------------------------------------------------------------ weights
def test_advantage_weights_in_their_three_forms() -> None:
    advantages = th.tensor([-1.0, 0.0, 1.0, 10.0])
    expected = [math.exp(-3), 1, math.exp(3), 100]  # exp(3 * A), clipped at 100
    np.testing.assert_allclose(exp_weights(advantages, temperature=3.0).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(expectile_weights(advantages, 0.7).numpy(), [0.3, 0.3, 0.7, 0.7], rtol=1e-6)
    weights = softmax_weights(advantages, beta=2.0)
    assert weights.sum().item() == pytest.approx(4.0)
    # the expectile loss is asymmetric: a positive error weighs expectile, a negative 1 - expectile
    assert expectile_loss(th.tensor([2.0]), 0.9).item() == pytest.approx(0.9 * 4)
    assert expectile_loss(th.tensor([-2.0]), 0.9).item() == pytest.approx(0.1 * 4)
    for bad in (lambda: softmax_weights(advantages, 0.0), lambda: expectile_weights(advantages, 1.0)):
        with pytest.raises(ValueError):
            bad()


# ------------------------------------------------------------------------------------- action units
def test_vae_loss_in_the_env_units_on_a_box_with_bound_two() -> None:
    """Issue 17, fix 6: the authors' reconstruction error is taken on the env's actions (bound 2 on Pendulum)."""
    space = spaces.Box(-2.0, 2.0, (2,), np.float32)
    scale = loss_action_scale(space, "env")
    assert scale.tolist() == [2.0, 2.0]
    reconstruction = th.tensor([[0.5, -0.5], [0.0, 1.0]])
    actions = th.tensor([[0.0, 0.0], [0.25, 0.75]])
    mean, std = th.zeros(2, 4), th.ones(2, 4)  # KL 0
    _, recon, kl = vae_loss(reconstruction, actions, mean, std, kl_weight=0.5, action_scale=scale)
    env_recon, env_actions = 2.0 * reconstruction, 2.0 * actions  # [-1, 1] -> [-2, 2]
    by_hand = ((env_recon - env_actions) ** 2).mean()
    assert recon.item() == pytest.approx(by_hand.item()) and kl.item() == pytest.approx(0.0, abs=1e-7)
    assert recon.item() == pytest.approx(4 * th.nn.functional.mse_loss(reconstruction, actions).item())


def test_action_units_change_nothing_on_a_unit_box() -> None:
    space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    prediction, target = th.randn(5, 3), th.randn(5, 3)
    scaled = action_squared_error(prediction, target, loss_action_scale(space, "env"))
    assert th.equal(scaled, th.nn.functional.mse_loss(prediction, target))  # bit for bit
    asymmetric = spaces.Box(np.array([0.0, -3.0], np.float32), np.array([1.0, 1.0], np.float32))
    assert loss_action_scale(asymmetric, "env").tolist() == [0.5, 2.0]
    assert loss_action_scale(asymmetric, "normalized").tolist() == [1.0, 1.0]


@pytest.mark.parametrize(("algo", "units"), [(BCQ, "env"), (PLAS, "env"), (BC, "env"), (AWAC, "normalized")])
def test_each_algorithm_computes_its_action_losses_in_its_authors_units(
    algo: type, units: str, pendulum: Transitions
) -> None:
    model = make(algo, pendulum)
    assert model.action_units == units
    assert model._action_scale.tolist() == ([2.0] if units == "env" else [1.0])


def test_plas_p_perturbation_bound_is_in_the_env_units(pendulum: Transitions) -> None:
    """PLAS's ActorPerturbation adds phi * tanh(.) to the decoded action in the env's units (not phi * max_action)."""
    model = make(PLAS, pendulum, perturbation=True, phi=0.05)
    perturbation = model.actor.perturbation
    assert perturbation is not None
    with th.no_grad():
        last = [m for m in perturbation.net if isinstance(m, th.nn.Linear)][-1]
        last.weight.zero_()
        last.bias.fill_(50.0)  # tanh saturates: the perturbation is at its bound
    features = th.zeros(4, 3)
    decoded = th.zeros(4, 1)
    moved = perturbation(features, decoded)
    # 0.05 in the env's units is 0.025 of Pendulum's [-1, 1] scale (bound 2)
    assert moved.flatten().tolist() == pytest.approx([0.025] * 4)


# ------------------------------------------------------------------------------- features extractors
class TrainableExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=8)
        self.linear = th.nn.Linear(int(np.prod(observation_space.shape)), 8)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


@pytest.mark.parametrize("algo", [BCQ, PLAS, AWAC])
def test_trainable_shared_extractor_is_refused(algo: type, pendulum: Transitions) -> None:
    """Issue 17, fix 7: the critics' targets share the extractor, so a trained one would have no target copy."""
    with pytest.raises(ValueError, match="features_extractor_class: expected an extractor without trainable"):
        make(algo, pendulum, policy_kwargs=dict(features_extractor_class=TrainableExtractor))


# --------------------------------------------------------------------------------------- BatchDDPG
def test_batch_ddpg_critic_is_the_2018_layout(pendulum: Transitions) -> None:
    """Issue 17, fix 5: sfujim/BCQ 115f77d DDPG.py: l1 s -> 400, l2 400 + a -> 300, l3 300 -> 1."""
    model = BatchDDPG("MlpPolicy", gym.make("Pendulum-v1"), dataset=pendulum, device="cpu", seed=0)
    (q_net,) = model.critic.q_networks
    assert isinstance(q_net, ActionAtSecondLayerQNetwork)
    linears = [m for m in q_net.modules() if isinstance(m, th.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 400), (401, 300), (300, 1)]
    # the action reaches Q only through the second layer
    obs, action = th.randn(2, 3), th.randn(2, 1)
    manual = linears[2](th.relu(linears[1](th.cat([th.relu(linears[0](obs)), action], dim=1))))
    assert th.allclose(model.critic(obs, action)[0], manual)
    actor_linears = [m for m in model.actor.modules() if isinstance(m, th.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in actor_linears] == [(3, 400), (400, 300), (300, 1)]
    # critic_action_at_input keeps SB3's layout
    other = make(BatchDDPG, pendulum, policy_kwargs=dict(critic_action_at_input=True))
    first = next(m for m in other.critic.q_networks[0].modules() if isinstance(m, th.nn.Linear))
    assert first.in_features == 3 + 1


def test_batch_ddpg_weight_decay_reaches_the_critic_only(pendulum: Transitions) -> None:
    model = make(BatchDDPG, pendulum)
    assert model.critic.optimizer.param_groups[0]["weight_decay"] == 1e-2
    assert model.actor.optimizer.param_groups[0]["weight_decay"] == 0
    with pytest.raises(ValueError, match=r"optimizer_kwargs\['weight_decay'\].*critic_weight_decay"):
        make(BatchDDPG, pendulum, policy_kwargs=dict(optimizer_kwargs=dict(weight_decay=0.5)))
    model = make(BatchDDPG, pendulum, critic_weight_decay=0.0, policy_kwargs=dict(optimizer_kwargs=dict(eps=1e-5)))
    assert model.critic.optimizer.param_groups[0]["weight_decay"] == 0.0
    assert model.actor.optimizer.param_groups[0]["eps"] == 1e-5


# -------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", sorted(ALGOS))
def test_checkpoint_holds_the_policy_and_every_optimizer(name: str, pendulum: Transitions) -> None:
    model = make(ALGOS[name], pendulum)
    names = model._get_torch_save_params()[0]
    assert names[0] == "policy"
    assert sorted(names[1:]) == sorted(f"{n}.optimizer" for n in model.learning_rates())
    for network in model.networks:
        assert network in model._excluded_save_params()


# -------------------------------------------------------------- learned scalars, the squashed Gaussian
class ScaledBCPolicy(BCPolicy):
    """BC's policy with a learned positive scalar and its optimizer (as CQL's entropy coefficient)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scale = LogScalar(2.0)
        self.scale.optimizer = th.optim.Adam(self.scale.parameters(), lr=1.0)


class ScaledBC(BC):
    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": ScaledBCPolicy}
    networks = (*BC.networks, "scale")

    def learning_rates(self) -> dict[str, Any]:
        return {**super().learning_rates(), "scale": 0.05}

    def _update(self, batch_size: int) -> None:
        super()._update(batch_size)
        minimize(self.scale.optimizer, (self.scale() - 1.0).pow(2).sum())


def test_a_log_scalar_gets_the_plumbing_of_a_network(pendulum: Transitions, tmp_path) -> None:
    """A LogScalar named in networks is aliased, has its own learning rate, and its optimizer is checkpointed."""
    model = make(ScaledBC, pendulum)
    assert model.scale is model.policy.scale and model.scale().item() == pytest.approx(2.0)
    assert learning_rates(model)["scale"] == 0.05  # its own learning rate from the start (built at 1.0)
    model.learn(5)  # and before each update
    assert learning_rates(model)["scale"] == 0.05 and model.scale().item() < 2.0
    assert "scale.optimizer" in model._get_torch_save_params()[0] and "scale" in model._excluded_save_params()
    model.save(tmp_path / "scaled")
    loaded = ScaledBC.load(tmp_path / "scaled", device="cpu")
    assert th.equal(loaded.scale.log_value, model.scale.log_value)
    assert loaded.scale.optimizer.state_dict()["state"][0]["step"] == 5
    with pytest.raises(ValueError, match="initial_value"):
        LogScalar(0.0)


def test_squashed_gaussian_is_sb3s_distribution() -> None:
    th.manual_seed(0)
    mean, log_std = th.randn(6, 2), 0.5 * th.randn(6, 2)
    sb3 = SquashedDiagGaussianDistribution(2)
    actions = th.tensor([[0.3, -1.0], [1.0, 0.2], [0.0, 0.0], [-0.99, 0.5], [0.1, 0.9999], [-1.0, 1.0]])
    expected_density = sb3.proba_distribution(mean, log_std).log_prob(actions)
    th.testing.assert_close(squashed_gaussian_log_prob(mean, log_std, actions)[:, 0], expected_density)
    th.manual_seed(1)
    sampled, log_prob = squashed_gaussian_sample(mean, log_std, n_samples=3)
    th.manual_seed(1)
    repeated = mean.repeat_interleave(3, 0), log_std.repeat_interleave(3, 0)
    expected, expected_log_prob = sb3.log_prob_from_params(*repeated)
    assert sampled.shape == (18, 2) and log_prob.shape == (18, 1)
    th.testing.assert_close(sampled, expected)
    th.testing.assert_close(log_prob[:, 0], expected_log_prob)


# ---------------------------------------------------------------------------------- state normalisation
NORMALIZING: list[tuple[str, str, float]] = [
    ("td3bc", "normalize_observations", 1e-3),
    ("iql", "normalize_observations", 1e-3),
    ("cql", "normalize_observations", 1e-3),
    ("calql", "normalize_observations", 1e-3),
    ("lapo", "normalize_observations", 1e-6),
    ("fqe", "normalize_observations", 1e-3),
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
    return make(ALGOS[name], data, **{switch: True}, **kwargs)


@pytest.mark.parametrize(("name", "switch", "eps"), NORMALIZING)
def test_every_state_normalisation_switch_adds_the_same_normaliser(
    name: str, switch: str, eps: float, pendulum: Transitions
) -> None:
    """One rule (common.normalization.with_observation_normalizer) for every algorithm with a switch: the
    normaliser with the algorithm's eps, statistics from the dataset, the user's extractor kwargs on top, and any
    other extractor refused with the switch named (LAPO once kept a user's extractor and normalised nothing)."""
    model = make_normalizing(name, pendulum, switch, policy_kwargs=dict(features_extractor_kwargs=dict(clip=5.0)))
    extractors = [m for m in model.policy.modules() if isinstance(m, NormalizedFlattenExtractor)]
    assert extractors, f"{name}: no normalising extractor"
    assert isinstance(pendulum.observations, np.ndarray)
    for extractor in extractors:
        standardizer = extractor.normalizer.standardizer()
        assert (standardizer.eps, standardizer.eps_mode, standardizer.clip) == (eps, "add", 5.0)
        np.testing.assert_allclose(
            standardizer.mean.cpu().numpy(), pendulum.observations.mean(axis=0), rtol=1e-5, atol=1e-6
        )
    with pytest.raises(
        ValueError,
        match=rf"features_extractor_class'\]: expected NormalizedFlattenExtractor .*"
        rf"with {switch}=True, found FlattenExtractor; pass {switch}=False",
    ):
        make_normalizing(name, pendulum, switch, policy_kwargs=dict(features_extractor_class=FlattenExtractor))
