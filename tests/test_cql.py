"""CQL: the authors' (rlkit) order of a step, the importance-sampled log-sum-exp against a fine grid, the
target without entropy, the max backup, the Lagrange multiplier, the behaviour-cloning warm-up and its likelihood, the
entropy coefficient, online fine-tuning with the offline/online mixing, and learning on imperfect Pendulum
demonstrations."""

from __future__ import annotations

import copy
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.sac.policies import SACPolicy

from sb3_offline import CQL, OfflineReplayBuffer
from sb3_offline.common.critics import critic_values
from sb3_offline.common.scalars import LogScalar
from sb3_offline.common.squashed_gaussian import squashed_gaussian_sample
from sb3_offline.cql.cql import importance_sampled_logsumexp
from sb3_offline.datasets import Transitions

TINY = dict(net_arch=[16, 32])


def make(data: Any, env: gym.Env | str = "Pendulum-v1", **kwargs: Any) -> CQL:
    kwargs.setdefault("policy_kwargs", TINY)
    kwargs.setdefault("batch_size", 64)
    kwargs.setdefault("bc_steps", 0)
    return CQL("MlpPolicy", env, dataset=data, device="cpu", seed=0, **kwargs)


def batch(data: Transitions, rows: slice, dones: list[float] | None = None) -> ReplayBufferSamples:
    """Rows of the dataset as a minibatch, actions in [-1, 1] (Pendulum: env action / 2)."""
    n = rows.stop - rows.start
    return ReplayBufferSamples(
        observations=th.as_tensor(data.observations[rows]),
        actions=th.as_tensor(data.actions[rows]) / 2.0,
        next_observations=th.as_tensor(data.next_observations[rows]),
        dones=th.tensor(dones if dones is not None else [0.0] * n).reshape(n, 1),
        rewards=th.as_tensor(data.rewards[rows]).reshape(n, 1),
        discounts=None,
    )


def learning_rates(model: CQL) -> dict[str, float]:
    return {name: float(optimizer.param_groups[0]["lr"]) for name, optimizer in model._optimizers().items()}


def parameters(module: th.nn.Module) -> list[th.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def one_update(model: CQL, data: ReplayBufferSamples, seed: int) -> dict[str, float]:
    """One ``train`` step on ``data`` after ``th.manual_seed(seed)`` (its first draw: the actor's sample at ``s``)."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    model._losses.flush(model.logger)
    model._sample = lambda batch_size: (data, None)  # type: ignore[method-assign]
    th.manual_seed(seed)
    model.train(gradient_steps=1, batch_size=data.observations.shape[0])
    return model._losses.flush(model.logger)


def record_steps(model: CQL) -> list[str]:
    """The names of the optimizers, in the order they step."""
    steps: list[str] = []
    for name, optimizer in model._optimizers().items():

        def step(*args: Any, _name: str = name, _step: Any = optimizer.step, **kwargs: Any) -> Any:
            steps.append(_name)
            return _step(*args, **kwargs)

        optimizer.step = step  # type: ignore[method-assign]
    return steps


# ------------------------------------------------------------------------------------------ defaults
def test_defaults_follow_the_authors(pendulum_transitions: Transitions) -> None:
    model = CQL("MlpPolicy", "Pendulum-v1", dataset=pendulum_transitions, device="cpu")
    assert isinstance(model.policy, SACPolicy)  # SB3's SAC networks
    assert model.policy.net_arch == {"pi": [256, 256, 256], "qf": [256, 256, 256]}
    assert [m.out_features for m in model.actor.latent_pi if isinstance(m, th.nn.Linear)] == [256, 256, 256]
    assert len(model.critic.q_networks) == 2 and model.critic.q_networks[0][0].in_features == 3 + 1
    assert (model.alpha_cql, model.n_actions, model.cql_temperature, model.bc_steps) == (5.0, 10, 1.0, 40_000)
    assert model.target_action_gap is None and not model.max_q_backup and not model.normalize_observations
    assert (model.batch_size, model.tau, model.gamma) == (256, 0.005, 0.99)
    # the entropy coefficient's optimizer follows the actor's rate, the Lagrange multiplier's the critics'
    assert learning_rates(model) == {"actor": 1e-4, "critic": 3e-4, "log_ent_coef": 1e-4, "log_alpha_prime": 3e-4}
    assert isinstance(model.log_ent_coef, LogScalar) and model.log_ent_coef is model.policy.log_ent_coef
    assert model.log_ent_coef().item() == pytest.approx(1.0) and model._tune_ent_coef
    assert model._target_entropy == -1.0  # -|A|
    assert not hasattr(model, "actor_target")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(alpha_cql=-1.0), "alpha_cql"),
        (dict(n_actions=0), "n_actions"),
        (dict(cql_temperature=0.0), "cql_temperature"),
        (dict(target_action_gap=float("nan")), "target_action_gap"),
        (dict(bc_steps=-1), "bc_steps"),
        (dict(ent_coef="autox"), "ent_coef"),
        (dict(ent_coef=-0.1), "ent_coef"),
        (dict(target_entropy="max"), "target_entropy"),
        (dict(policy_kwargs=dict(initial_alpha_prime=0.0)), "initial_alpha_prime"),
    ],
)
def test_bad_hyper_parameters_are_refused(pendulum_transitions: Transitions, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make(pendulum_transitions, **kwargs)


# -------------------------------------------------------------------------------- the log-sum-exp estimate
def test_importance_sampled_logsumexp_by_hand() -> None:
    q_random, q_current, q_next = th.tensor([[[1.0], [2.0]]]), th.tensor([[[0.5], [0.0]]]), th.tensor([[[3.0], [1.0]]])
    log_pi_current, log_pi_next = th.tensor([[[-0.2], [0.1]]]), th.tensor([[[0.3], [-1.0]]])
    terms = [1.0 - math.log(0.25), 2.0 - math.log(0.25), 3.0 - 0.3, 1.0 + 1.0, 0.5 + 0.2, 0.0 - 0.1]  # 2-D actions
    for temperature in (1.0, 0.5):
        expected = temperature * math.log(sum(math.exp(t / temperature) for t in terms))
        value = importance_sampled_logsumexp(q_random, q_current, log_pi_current, q_next, log_pi_next, 2, temperature)
        assert value.shape == (1, 1) and value.item() == pytest.approx(expected, rel=1e-6)


def test_logsumexp_estimate_against_a_fine_grid(imperfect_pendulum: Transitions) -> None:
    """
    Pendulum's action is 1-D: ``log integral exp Q(s, a) da`` over [-1, 1] is computed on a grid of 20001
    actions. The importance-sampled estimate sums ``exp(Q - log p)`` over its ``3 n`` draws, so it estimates
    ``log(3 n)`` plus that log-integral; the grid's own log-sum-exp is the log-integral minus ``log(da)``.
    """
    model = make(imperfect_pendulum)
    model.learn(200)  # critics with some shape
    model.n_actions = 400
    with th.no_grad():  # steeper, so that the estimate has something to get right
        for q_net in model.critic.q_networks:
            q_net[-1].weight.mul_(30.0)
    state = imperfect_pendulum.observations[123]
    obs = th.as_tensor(np.repeat(state[None], 32, axis=0))
    data = batch(imperfect_pendulum, slice(123, 155))
    with th.no_grad():
        features = model.critic_features(obs)
        mean, log_std = model.policy_parameters(obs)
        next_mean, next_log_std = model.policy_parameters(data.next_observations)
        terms = model.conservative_terms(features, data.actions, mean, log_std, next_mean, next_log_std)
        grid = th.linspace(-1.0, 1.0, 20001).unsqueeze(1)
        q_grid = critic_values(model.critic, features[:1].expand(len(grid), -1), grid)  # (grid, 2)
    spacing = 2.0 / (len(grid) - 1)
    grid_logsumexp = th.logsumexp(q_grid, dim=0)  # per critic
    log_integral = grid_logsumexp + math.log(spacing)
    assert q_grid.max(dim=0).values.sub(q_grid.min(dim=0).values).min() > 2.0  # not a flat function
    estimate = terms.logsumexp.mean(dim=0)  # each of the 32 rows is an estimate for the same state
    th.testing.assert_close(estimate - math.log(3 * 400), log_integral, atol=0.03, rtol=0.0)
    # what a plain log-sum-exp of the grid would need: the constant of the grid's spacing and the 3 n draws
    th.testing.assert_close(estimate, grid_logsumexp + math.log(spacing) + math.log(1200), atol=0.03, rtol=0.0)
    # the gap the regulariser pushes down: the estimate minus the dataset action's value, per critic
    th.testing.assert_close(terms.gap, (terms.logsumexp - terms.q_data).mean(dim=0))
    with th.no_grad():
        q_data = th.cat(model.critic(obs, data.actions), dim=1)
    th.testing.assert_close(terms.q_data, q_data)


def test_one_batched_critic_pass_per_update(imperfect_pendulum: Transitions) -> None:
    """The dataset's actions and all 3 n sampled actions of a state go through each critic once, together."""
    model = make(imperfect_pendulum, n_actions=7, batch_size=16)
    rows: list[int] = []
    hooks = [model.critic.q_networks[0].register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))]
    model.learn(1)
    for hook in hooks:
        hook.remove()
    assert rows == [16 * (1 + 3 * 7), 16]  # the conservative pass, then the actor's Q(s, pi(s)) on the stepped critic


# ------------------------------------------------------------------------------------------- the target
def test_target_has_no_entropy_term_and_uses_a_policy_sample(
    imperfect_pendulum: Transitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make(imperfect_pendulum)
    model.learn(5)
    data = batch(imperfect_pendulum, slice(200, 204), dones=[0.0, 1.0, 0.0, 0.0])
    noise = th.tensor([[0.3], [-1.2], [0.0], [2.0]])
    monkeypatch.setattr(th, "randn_like", lambda like: noise.clone())
    with th.no_grad():
        next_mean, next_log_std = model.policy_parameters(data.next_observations)
    target = model.compute_critic_target(data, next_mean, next_log_std)
    next_actions = th.tanh(next_mean + next_log_std.exp() * noise)
    with th.no_grad():
        next_q = (
            th.cat(model.critic_target(data.next_observations, next_actions), dim=1).min(dim=1, keepdim=True).values
        )
    expected = data.rewards + 0.99 * (1.0 - data.dones) * next_q
    th.testing.assert_close(target, expected)
    with th.no_grad():
        model.log_ent_coef.log_value.fill_(3.0)  # a large entropy coefficient changes nothing in the target
    th.testing.assert_close(model.compute_critic_target(data, next_mean, next_log_std), expected)


def test_max_backup_takes_each_critics_best_sample_then_the_minimum(
    imperfect_pendulum: Transitions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authors' ``min_j max_i Q'_j(s', a'_i)`` (``cql.py``: ``.max(1)`` per target network, then ``torch.min``)."""
    model = make(imperfect_pendulum, max_q_backup=True, n_actions=3)
    # one state, two samples: critic 1 gives (1, 4), critic 2 (5, 2): max then min is 4 (min then max would be 2)
    th.testing.assert_close(model.max_backup(th.tensor([[1.0, 5.0], [4.0, 2.0]]), 2), th.tensor([[4.0]]))
    model.learn(5)
    data = batch(imperfect_pendulum, slice(300, 302))
    noise = th.tensor([[0.5], [-2.0], [1.0], [0.0], [-0.3], [1.5]])  # 3 draws per next state
    monkeypatch.setattr(th, "randn_like", lambda like: noise.clone())
    with th.no_grad():
        next_mean, next_log_std = model.policy_parameters(data.next_observations)
        target = model.compute_critic_target(data, next_mean, next_log_std)
        actions = th.tanh(next_mean.repeat_interleave(3, 0) + next_log_std.exp().repeat_interleave(3, 0) * noise)
        q = th.cat(model.critic_target(data.next_observations.repeat_interleave(3, 0), actions), dim=1)
        best = q.view(2, 3, 2).max(dim=1).values.min(dim=1, keepdim=True).values
    th.testing.assert_close(target, data.rewards + 0.99 * best)


# -------------------------------------------------------------------------------- Lagrange, BC, entropy
@pytest.mark.parametrize(("target_gap", "direction"), [(100.0, -1), (-100.0, 1)])
def test_lagrange_multiplier_moves_towards_the_target_gap(
    imperfect_pendulum: Transitions, target_gap: float, direction: int
) -> None:
    """alpha' grows while the gap exceeds its target (more penalty) and shrinks while it is below."""
    model = make(imperfect_pendulum, target_action_gap=target_gap)
    before = model.log_alpha_prime.log_value.item()
    model.learn(20)
    after = model.log_alpha_prime.log_value.item()
    assert direction * (after - before) > 0.0
    assert after == pytest.approx(before + direction * 20 * 3e-4, rel=0.05)  # Adam: lr per step, one sign

    fixed = make(imperfect_pendulum)  # without target_action_gap the multiplier is never trained
    fixed.learn(5)
    assert fixed.log_alpha_prime.log_value.item() == 0.0


def test_behaviour_cloning_warm_up_then_cql(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, bc_steps=3)
    kinds: list[str] = []
    step = model._run_update

    def gradient_step(name: str, update: Any, size: int) -> None:
        kinds.append(name)
        step(name, update, size)

    model._run_update = gradient_step  # type: ignore[method-assign]
    # the actor's loss reaches the critics only through its Q-term: a critic evaluated with gradient between the
    # critics' step and the actor's (minimize computes no critic gradient for the actor's loss, so none is compared)
    with_gradient: list[bool] = []
    model.critic.q_networks[0].register_forward_hook(lambda *_: with_gradient.append(th.is_grad_enabled()))
    reached: list[bool] = []
    critic_step, actor_step = model.critic.optimizer.step, model.actor.optimizer.step

    def record_critic(*args: Any, **kwargs: Any) -> Any:
        with_gradient.clear()
        return critic_step(*args, **kwargs)

    def record_actor(*args: Any, **kwargs: Any) -> Any:
        reached.append(any(with_gradient))
        return actor_step(*args, **kwargs)

    model.critic.optimizer.step = record_critic  # type: ignore[method-assign]
    model.actor.optimizer.step = record_actor  # type: ignore[method-assign]
    model.learn(5)
    assert kinds == ["cql/bc"] * 3 + ["cql"] * 2
    assert reached == [False] * 3 + [True] * 2
    model.learn(2, reset_num_timesteps=False)  # the count continues (saved as _n_updates)
    assert kinds[-2:] == ["cql", "cql"]


def test_behaviour_cloning_fits_rlkits_log_likelihood(imperfect_pendulum: Transitions) -> None:
    """
    During behaviour cloning the actor's loss is ``mean(alpha * log pi(a~|s) - log pi(a|s))`` with rlkit's
    ``TanhGaussianPolicy.log_prob``: the mean clipped to [-9, 9], the dataset's action mapped back by
    ``0.5 log((1 + a) / (1 - a))`` with both sides clipped below at 1e-6 (actions on the bounds included).
    """
    model = make(imperfect_pendulum, bc_steps=5, ent_coef=0.5)
    data = batch(imperfect_pendulum, slice(0, 8))
    actions = data.actions.clone()
    actions[0, 0], actions[1, 0] = 1.0, -1.0
    data = data._replace(actions=actions)
    with th.no_grad():
        model.actor.mu.bias.fill_(12.0)  # a mean beyond rlkit's bound
    actor = copy.deepcopy(model.actor)
    losses = one_update(model, data, seed=3)
    th.manual_seed(3)
    with th.no_grad():
        mean, log_std, _ = actor.get_action_dist_params(data.observations)
        _, log_pi = squashed_gaussian_sample(mean, log_std)
        raw = 0.5 * th.log((1.0 + actions).clamp(min=1e-6) / (1.0 - actions).clamp(min=1e-6))
        normal = th.distributions.Normal(mean.clamp(-9.0, 9.0), log_std.exp())
        log_likelihood = (normal.log_prob(raw) - th.log(1.0 - actions**2 + 1e-6)).sum(dim=1, keepdim=True)
    assert losses["actor_loss"] == pytest.approx((0.5 * log_pi - log_likelihood).mean().item(), rel=1e-5)


def test_behaviour_cloning_raises_the_likelihood_of_the_datasets_actions(imperfect_pendulum: Transitions) -> None:
    from sb3_offline.common.squashed_gaussian import squashed_gaussian_log_prob

    model = make(imperfect_pendulum, bc_steps=400, actor_learning_rate=1e-3)
    data = batch(imperfect_pendulum, slice(0, 500))

    def likelihood() -> float:
        with th.no_grad():
            mean, log_std = model.policy_parameters(data.observations)
            return squashed_gaussian_log_prob(mean, log_std, data.actions.clamp(-0.99, 0.99)).mean().item()

    before = likelihood()
    model.learn(400)
    cloned = likelihood()
    without = make(imperfect_pendulum, actor_learning_rate=1e-3)  # the same steps, CQL's actor loss from the start
    without.learn(400)
    model = without
    assert cloned > before + 0.1 and cloned > likelihood() + 0.1


@pytest.mark.parametrize(("target_entropy", "direction"), [(10.0, 1), (-10.0, -1)])
def test_entropy_coefficient_follows_its_loss_or_stays_fixed(
    imperfect_pendulum: Transitions, target_entropy: float, direction: int
) -> None:
    """
    Tuned: ``log alpha`` descends ``-mean(log alpha * (log pi + target_entropy))``, so one (Adam) step moves it by its
    learning rate, up while ``log pi + target_entropy > 0``; fixed: never stepped, the actor's loss uses the value.
    """
    tuned = make(imperfect_pendulum, ent_coef="auto_0.1", target_entropy=target_entropy, ent_coef_learning_rate=1e-3)
    assert tuned.log_ent_coef().item() == pytest.approx(0.1) and tuned._target_entropy == target_entropy
    data = batch(imperfect_pendulum, slice(0, 64))
    losses = one_update(tuned, data, seed=0)
    assert losses["ent_coef_loss"] == pytest.approx(-math.log(0.1) * (losses["log_pi"] + target_entropy), rel=1e-5)
    moved = tuned.log_ent_coef.log_value.item() - math.log(0.1)
    assert moved == pytest.approx(direction * 1e-3, rel=1e-3)
    assert losses["ent_coef"] == pytest.approx(math.exp(math.log(0.1) + moved), rel=1e-6)  # the new one, in the actor
    fixed = make(imperfect_pendulum, ent_coef=0.2, target_entropy=-3.0)
    before = fixed.log_ent_coef.log_value.detach().clone()
    losses = one_update(fixed, data, seed=0)
    assert "ent_coef_loss" not in losses and losses["ent_coef"] == pytest.approx(0.2)
    assert th.equal(fixed.log_ent_coef.log_value, before)


def test_step_in_the_authors_order(imperfect_pendulum: Transitions) -> None:
    """
    rlkit's ``train_from_torch``: the entropy coefficient is stepped first and its new value weighs the actor's
    ``log pi``; ``alpha'`` is stepped before the critics, whose regulariser takes ``alpha'`` of the start of the step;
    the actor's loss is on the critics after their step, and the actor steps last.
    """
    model = make(imperfect_pendulum, target_action_gap=1.0)
    model.learn(3)
    steps = record_steps(model)
    data = batch(imperfect_pendulum, slice(40, 104))
    actor, alpha_prime = copy.deepcopy(model.actor), model.log_alpha_prime().item()
    losses = one_update(model, data, seed=11)
    assert steps == ["log_ent_coef", "log_alpha_prime", "critic", "actor"]
    th.manual_seed(11)
    with th.no_grad():
        pi_actions, log_pi = squashed_gaussian_sample(*actor.get_action_dist_params(data.observations)[:2])
        q_pi = th.cat(model.critic(data.observations, pi_actions), dim=1).min(dim=1, keepdim=True).values
        expected = (model.log_ent_coef() * log_pi - q_pi).mean().item()
    assert losses["actor_loss"] == pytest.approx(expected, rel=1e-5)
    assert losses["cql_loss"] == pytest.approx(alpha_prime * 5.0 * 2 * (losses["cql_gap"] - 1.0), rel=1e-5)


# ------------------------------------------------------------------------------------------ save/load
# ------------------------------------------------------------------------------------ Dict observations
# ------------------------------------------------------------------------------------------- online
def test_learn_online_with_the_offline_fraction(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, buffer_size=500, replay_buffer_kwargs=dict(offline_fraction=0.5))
    model.learn(10)
    buffer = model.replay_buffer
    assert isinstance(buffer, OfflineReplayBuffer) and buffer.offline_fraction == 0.5
    shares: list[float] = []
    sample = buffer.sample_indices

    def spy(batch_size: int, finished_episodes_only: bool = False) -> th.Tensor:
        rows = sample(batch_size, finished_episodes_only)
        shares.append((rows < buffer.dataset_size).float().mean().item())
        return rows

    buffer.sample_indices = spy  # type: ignore[method-assign]
    model.learn_online(100)
    assert buffer.online_size == 100 and model._n_updates == 110
    assert shares == [0.5] * 100  # CQL's batches may hold rows of the running episode (online rows from step 1)


def test_learn_online_without_online_rows_names_buffer_size(imperfect_pendulum: Transitions) -> None:
    model = make(imperfect_pendulum, buffer_size=0)  # no rows for online transitions: offline only
    model.learn(2)
    with pytest.raises(ValueError, match=r"online_capacity: expected at least n_envs=1 rows .* give the algorithm "
                       r"buffer_size=\.\.\."):  # fmt: skip
        model.learn_online(5)


# ------------------------------------------------------------------------------------------- learning
@pytest.mark.slow  # the longest learning tests (30-45 s on one core)
def test_cql_learns_from_imperfect_demonstrations(
    imperfect_pendulum: Transitions, pendulum_return, one_torch_thread
) -> None:
    """
    The BCQ paper's imperfect demonstrations, 3000 gradient steps at the authors' settings but 64-64 networks (their
    3 x 256), the actor at 3e-4 (the README's other rate), no behaviour-cloning warm-up and SB3's SAC networks
    (``authors_networks=False``). Measured (conftest's 10 evaluation episodes; random -1284), training seeds 0-2:
    -279, -246, -329; the bar, random + 500 = -784, is 455 below the worst seed. Not at the defaults, measured: the
    authors' rlkit networks here reach -1601 (seed 0; -1593 in the order of the JAX code, -279 with PyTorch's
    initialisation), and the full defaults (rlkit networks, 40k steps of behaviour cloning, actor lr 1e-4) -1344 and
    -1339 after 2000 steps (seeds 0-1): below the random policy, so no bound to hold at this budget.
    """
    model = make(
        imperfect_pendulum, batch_size=256, actor_learning_rate=3e-4, policy_kwargs=dict(net_arch=[64, 64]),
        authors_networks=False,
    )  # fmt: skip
    model.learn(3000, log_interval=None)
    cql_return, random_return = pendulum_return(model), pendulum_return(None)
    assert cql_return > random_return + 500, (cql_return, random_return)


def test_squashed_samples_feed_the_regulariser_without_gradient(imperfect_pendulum: Transitions) -> None:
    """The sampled actions are constants for the critics' loss: no gradient reaches the actor through them."""
    model = make(imperfect_pendulum)
    data = batch(imperfect_pendulum, slice(0, 8))
    features = model.critic_features(data.observations)
    mean, log_std = model.policy_parameters(data.observations)
    next_mean, next_log_std = model.policy_parameters(data.next_observations)
    terms = model.conservative_terms(features, data.actions, mean, log_std, next_mean, next_log_std)
    model.actor.optimizer.zero_grad()
    terms.gap.sum().backward()
    assert all(p.grad is None for p in model.actor.parameters())
    assert squashed_gaussian_sample(mean, log_std, 3)[0].shape == (24, 1)
