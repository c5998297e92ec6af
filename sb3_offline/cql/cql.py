"""CQL: Conservative Q-Learning (Kumar, Zhou, Tucker, Levine 2020), CQL(H) on SAC."""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.sac.policies import Actor

from sb3_offline.common.critics import critic_loss, critic_values, soft_clipped_target
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.scalars import LogScalar
from sb3_offline.common.schedules import LearningRate, StepSchedule
from sb3_offline.common.squashed_gaussian import squashed_gaussian_log_prob, squashed_gaussian_sample
from sb3_offline.common.training import minimize
from sb3_offline.cql.policies import CQLPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.datasets.loaders import DatasetSource

SelfCQL = TypeVar("SelfCQL", bound="CQL")
Samples = ReplayBufferSamples | DictReplayBufferSamples

#: the authors' clip of the Lagrange multiplier (``torch.clamp(self.log_alpha_prime.exp(), min=0.0, max=1000000.0)``)
MAX_ALPHA_PRIME = 1e6


def importance_sampled_logsumexp(
    q_random: th.Tensor,
    q_current: th.Tensor,
    log_pi_current: th.Tensor,
    q_next: th.Tensor,
    log_pi_next: th.Tensor,
    action_dim: int,
    temperature: float = 1.0,
) -> th.Tensor:
    """
    CQL(H)'s ``log sum_a exp Q(s, a)`` by importance sampling, the authors' ``min_q_version=3``
    (``cql.py``, ``random_density = np.log(0.5 ** action_dim)``; CORL's ``cql_importance_sample``):
    ``temperature * logsumexp`` over the ``3 n`` samples of ``(Q(s, a_i) - log p(a_i)) / temperature``, with
    ``n`` actions uniform on [-1, 1]^d (density ``0.5^d``), ``n`` drawn from ``pi(.|s)`` and ``n`` from
    ``pi(.|s')``, all scored at ``s``. As a sum (not a mean) of ``exp(Q - log p)`` over ``3 n`` draws, it
    estimates ``log(3 n) + log integral exp(Q(s, a)) da`` (at temperature 1): a constant ``log(3 n)`` above
    the log-integral, which no gradient sees.

    :param q_random: ``(rows, n, n_critics)`` Q-values of the uniform actions
    :param q_current: ``(rows, n, n_critics)`` of the actions drawn at ``s``
    :param log_pi_current: ``(rows, n, 1)`` their log-densities (no gradient)
    :param q_next: ``(rows, n, n_critics)`` of the actions drawn at ``s'`` (scored at ``s``)
    :param log_pi_next: ``(rows, n, 1)`` their log-densities under ``pi(.|s')`` (no gradient)
    :param action_dim: the action's size (the uniform density is ``0.5 ** action_dim``)
    :param temperature: CQL's temperature (the authors' ``temp``)
    :return: ``(rows, n_critics)``
    """
    random_log_density = action_dim * math.log(0.5)
    weighted = th.cat([q_random - random_log_density, q_next - log_pi_next, q_current - log_pi_current], dim=1)
    return th.logsumexp(weighted / temperature, dim=1) * temperature


class ConservativeTerms(NamedTuple):
    """What the CQL regulariser is made of, for one batch (see :meth:`CQL.conservative_terms`)."""

    #: ``(batch, n_critics)`` Q-values of the dataset's actions (also the Bellman regression's)
    q_data: th.Tensor
    #: ``(batch, n, n_critics)`` of the uniform actions
    q_random: th.Tensor
    #: ``(batch, n, n_critics)`` of the actions drawn at ``s`` (after Cal-QL's bound, if any)
    q_current: th.Tensor
    #: ``(batch, n, n_critics)`` of the actions drawn at ``s'``, scored at ``s`` (after Cal-QL's bound, if any)
    q_next: th.Tensor
    #: ``(batch, n_critics)``: the importance-sampled ``log sum exp Q(s, .)``
    logsumexp: th.Tensor
    #: ``(n_critics,)``: ``mean(logsumexp - q_data)`` per critic, the gap the regulariser pushes down
    gap: th.Tensor
    #: fraction of the policy actions' Q-values below Cal-QL's bound (0 without one)
    bound_rate: th.Tensor


class CQL(OfflineAlgorithm):
    """
    Conservative Q-Learning: Kumar, Zhou, Tucker, Levine, "Conservative Q-Learning for Offline Reinforcement
    Learning", NeurIPS 2020 (https://arxiv.org/abs/2006.04779). CQL(H) on SAC, following the authors' code
    (``aviralkumar2907/CQL`` commit d67dbe9, ``d4rl/rlkit/torch/sac/cql.py`` and ``d4rl/examples/cql_mujoco_new.py``)
    and, where that code is ambiguous or PyTorch-version dependent, CORL's port (``tinkoff-ai/CORL`` commit 6afec90,
    ``algorithms/offline/cql.py``) and the JAX code it was ported from, which Cal-QL's authors use
    (``nakamotoo/Cal-QL`` commit ac6eafe, ``JaxCQL/conservative_sac.py``).

    Networks: SB3's SAC policy (:class:`~sb3_offline.cql.policies.CQLPolicy`: tanh-Gaussian actor, twin
    critics and their target), SAC's entropy coefficient tuned to the target entropy ``-|A|``.
    One gradient step, every loss computed from the networks as they are at the start of the step:

    - critics: ``sum_j mean (Q_j(s, a) - y)^2 + alpha_cql * sum_j mean_batch(LSE_j(s) - Q_j(s, a))``, with
      ``y = r + gamma * (1 - termination) * min_j Q'_j(s', a')``, ``a' ~ pi(.|s')``, **no entropy term** in the
      target (the authors' ``deterministic_backup=True`` default of ``cql_mujoco_new.py``, CORL's
      ``backup_entropy=False``); with ``max_q_backup``, ``max_i min_j Q'_j(s', a'_i)`` over ``n_actions``
      actions drawn at ``s'`` (CORL's and Cal-QL's order; the CQL authors take ``min_j max_i``).
      ``LSE_j(s)`` estimates ``log sum_a exp Q_j(s, a)`` by importance sampling over ``n_actions`` uniform
      actions, ``n_actions`` drawn at ``s`` and ``n_actions`` drawn at ``s'``, all scored with ``Q_j(s, .)``
      (:func:`importance_sampled_logsumexp`); the sampled actions carry no gradient. All ``1 + 3 n_actions``
      actions of a state (the dataset's included) go through each critic in one batched pass.
    - Lagrange version (``target_action_gap`` set): the regulariser becomes
      ``alpha' * alpha_cql * sum_j (gap_j - target_action_gap)``, ``gap_j = mean(LSE_j - Q_j(s, a))``, and
      ``log alpha'`` descends ``-alpha' * alpha_cql * mean_j (gap_j - target_action_gap)`` (so ``alpha'``
      grows while the gap exceeds its target), ``alpha' = clip(exp(log alpha'), 0, 1e6)``. This is the form
      of Cal-QL's, CORL's and d3rlpy's code; the CQL authors write ``alpha' * (alpha_cql * gap_j - tau)``,
      i.e. their ``lagrange_thresh`` ``tau`` is ``alpha_cql * target_action_gap`` here.
    - actor: ``mean(alpha * log pi(a~|s) - min_j Q_j(s, a~))``, ``a~ ~ pi(.|s)``; for the first ``bc_steps``
      updates the Q-term is replaced by the log-likelihood of the dataset's action,
      ``mean(alpha * log pi(a~|s) - log pi(a|s))`` (the authors' ``policy_eval_start``).
    - entropy coefficient: ``-mean(log alpha * (log pi(a~|s) + target_entropy))``, as SB3's SAC and the authors.

    Where the two codes differ, followed: the order of updates (all losses from the start-of-step networks, as
    the JAX code's simultaneous gradients and CORL: the authors' PyTorch code back-propagates the actor's loss
    after the critics' step with PyTorch 1.4 semantics and uses the entropy coefficient after its own step); the
    actor learning rate (the authors' 1e-4, CORL's 3e-5); BC warm-up (the authors' 40k steps, CORL's 0);
    networks (SB3's SAC networks and initialisation, the policy rule of ``docs/design.md``; the authors' rlkit
    policy clips ``log sigma`` to [-5, 2], CORL's is orthogonally initialised with a learned ``log sigma``
    offset). States are not normalised (the authors'); ``normalize_observations=True`` is CORL's
    ``(s - mean) / (std + 1e-3)``.

    Defaults: the authors' MuJoCo settings (``cql_mujoco_new.py`` and their README: ``min_q_weight`` 5,
    ``policy_lr`` 1e-4, ``qf_lr`` 3e-4, ``lagrange_thresh=-1`` i.e. no Lagrange, ``policy_eval_start`` 40000,
    ``num_random`` 10, 3 x 256 networks, ``soft_target_tau`` 5e-3, batch 256, gamma 0.99).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the critics and of the Lagrange multiplier (constant or schedule)
    :param actor_learning_rate: learning rate of the actor
    :param ent_coef_learning_rate: learning rate of the entropy coefficient (``None``: the actor's, as the authors'
        ``alpha_optimizer`` takes ``policy_lr``)
    :param alpha_cql: weight of the CQL regulariser (the authors' ``min_q_weight``, CORL's ``cql_alpha``)
    :param n_actions: actions of each kind (uniform, at ``s``, at ``s'``) in the log-sum-exp estimate, and of
        the max backup (the authors' ``num_random``)
    :param cql_temperature: temperature of the log-sum-exp (the authors' ``temp``)
    :param target_action_gap: ``None``: a fixed ``alpha_cql``; a value: Lagrange tuning of the regulariser's
        weight towards this gap (CORL's ``cql_target_action_gap``; see above for the authors' ``lagrange_thresh``)
    :param max_q_backup: the target takes the best of ``n_actions`` actions at ``s'``
    :param bc_steps: the first ``bc_steps`` updates train the actor by behaviour cloning (``policy_eval_start``)
    :param ent_coef: ``"auto"`` (tuned, starting at 1), ``"auto_<x>"`` (tuned, starting at ``x``) or a fixed value
    :param target_entropy: ``"auto"`` (``-|A|``) or a value
    :param initial_alpha_prime: initial Lagrange multiplier ``alpha'`` (> 0; trained with ``target_action_gap``)
    :param normalize_observations: standardise observations with the dataset's statistics (CORL), kept in the
        policy's features extractors
    :param batch_size: minibatch size
    :param tau: target update rate
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "critic", "critic_target", "log_ent_coef", "log_alpha_prime")
    target_networks = {"critic_target": "critic"}
    #: CORL's state normalisation (``tinkoff-ai/CORL``, ``algorithms/offline/cql.py``: ``compute_mean_std(..., 1e-3)``)
    observation_normalizer = (1e-3, "add")
    #: the name of the kind of update (``"<kind>/bc"`` during behaviour cloning), one CUDA graph each
    update_kind: ClassVar[str] = "cql"
    policy: CQLPolicy
    actor: Actor
    critic: ContinuousCritic
    critic_target: ContinuousCritic
    log_ent_coef: LogScalar
    log_alpha_prime: LogScalar

    def __init__(
        self,
        policy: str | type[CQLPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float | Schedule | StepSchedule = 1e-4,
        ent_coef_learning_rate: float | Schedule | StepSchedule | None = None,
        alpha_cql: float = 5.0,
        n_actions: int = 10,
        cql_temperature: float = 1.0,
        target_action_gap: float | None = None,
        max_q_backup: bool = False,
        bc_steps: int = 40_000,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        initial_alpha_prime: float = 1.0,
        normalize_observations: bool = False,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if not alpha_cql >= 0:
            raise ValueError(f"alpha_cql: expected >= 0, found {alpha_cql}")
        if int(n_actions) != n_actions or n_actions < 1:
            raise ValueError(f"n_actions: expected an integer >= 1, found {n_actions}")
        if not cql_temperature > 0:
            raise ValueError(f"cql_temperature: expected > 0, found {cql_temperature}")
        if target_action_gap is not None and not math.isfinite(target_action_gap):
            raise ValueError(f"target_action_gap: expected None or a finite value, found {target_action_gap}")
        if int(bc_steps) != bc_steps or bc_steps < 0:
            raise ValueError(f"bc_steps: expected an integer >= 0, found {bc_steps}")
        _, self._tune_ent_coef = _parse_ent_coef(ent_coef)
        if not (target_entropy == "auto" or isinstance(target_entropy, int | float)):
            raise ValueError(f"target_entropy: expected 'auto' or a number, found {target_entropy!r}")
        self.alpha_cql = alpha_cql
        self.n_actions = int(n_actions)
        self.cql_temperature = cql_temperature
        self.target_action_gap = target_action_gap
        self.max_q_backup = max_q_backup
        self.bc_steps = int(bc_steps)
        self.ent_coef = ent_coef
        self.target_entropy = target_entropy
        self.normalize_observations = normalize_observations
        self.actor_learning_rate = actor_learning_rate
        self.ent_coef_learning_rate = ent_coef_learning_rate
        self.initial_alpha_prime = initial_alpha_prime
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        assert self.action_space.shape is not None
        self._action_dim = int(np.prod(self.action_space.shape))
        self._target_entropy = (
            -float(self._action_dim) if self.target_entropy == "auto" else float(self.target_entropy)  # type: ignore[arg-type]
        )

    def learning_rates(self) -> dict[str, LearningRate | None]:
        ent_coef = self.actor_learning_rate if self.ent_coef_learning_rate is None else self.ent_coef_learning_rate
        return {"actor": self.actor_learning_rate, "critic": None, "log_ent_coef": ent_coef, "log_alpha_prime": None}

    def _policy_arguments(self) -> dict[str, Any]:
        initial_ent_coef, _ = _parse_ent_coef(self.ent_coef)
        return {"initial_ent_coef": initial_ent_coef, "initial_alpha_prime": self.initial_alpha_prime}
    def _next_update(self) -> tuple[str, Update]:
        """Behaviour cloning for the actor in the first ``bc_steps`` updates (over all calls), then CQL's."""
        if self._n_updates <= self.bc_steps:
            return f"{self.update_kind}/bc", self._bc_update
        return self.update_kind, self._update
    def _sample(self, batch_size: int) -> tuple[Samples, th.Tensor | None]:
        """A batch, and the reference values of Cal-QL's bound (``None`` for CQL)."""
        assert self.replay_buffer is not None
        return self.replay_buffer.sample(batch_size, env=self._vec_normalize_env), None

    def _bound_policy_values(self, q_values: th.Tensor, reference: th.Tensor | None) -> th.Tensor:
        """CQL leaves the policy actions' Q-values as they are (Cal-QL bounds them below)."""
        return q_values

    def critic_features(self, observations: Any) -> th.Tensor:
        """The critics' state features (as SB3's ``ContinuousCritic.forward``: a shared extractor is not trained)."""
        with th.set_grad_enabled(th.is_grad_enabled() and not self.critic.share_features_extractor):
            return self.critic.extract_features(observations, self.critic.features_extractor)

    def policy_parameters(self, observations: Any) -> tuple[th.Tensor, th.Tensor]:
        """Mean and ``log sigma`` (clipped) of the policy's Gaussian before the ``tanh``, ``(rows, action_dim)``."""
        mean, log_std, _ = self.actor.get_action_dist_params(observations)
        return mean, log_std

    def compute_critic_target(self, data: Samples, next_mean: th.Tensor, next_log_std: th.Tensor) -> th.Tensor:
        """
        ``r + gamma * (1 - termination) * min_j Q'_j(s', a')``, ``a' ~ pi(.|s')`` (no entropy term); with
        ``max_q_backup`` the best over ``n_actions`` such actions. ``(batch, 1)``, no gradient.
        """
        with th.no_grad():
            n = self.n_actions if self.max_q_backup else 1
            next_actions, _ = squashed_gaussian_sample(next_mean, next_log_std, n)
            features = self.critic_target.extract_features(
                data.next_observations, self.critic_target.features_extractor
            )
            next_q = critic_values(self.critic_target, features.repeat_interleave(n, dim=0), next_actions)
            return soft_clipped_target(next_q, data.rewards, data.dones, self.gamma, lmbda=1.0, n_samples=n)

    def conservative_terms(
        self,
        features: th.Tensor,
        actions: th.Tensor,
        mean: th.Tensor,
        log_std: th.Tensor,
        next_mean: th.Tensor,
        next_log_std: th.Tensor,
        reference: th.Tensor | None = None,
    ) -> ConservativeTerms:
        """
        The critics' values of the dataset's actions and of ``n_actions`` uniform actions, actions drawn at
        ``s`` and actions drawn at ``s'`` (all at ``s``, one batched pass through each critic), and the
        importance-sampled log-sum-exp (:func:`importance_sampled_logsumexp`).

        :param features: ``(batch, features_dim)`` the critics' features of ``s`` (with gradient)
        :param actions: ``(batch, action_dim)`` the dataset's actions
        :param mean: ``(batch, action_dim)`` the policy's Gaussian at ``s`` (no gradient is taken through it)
        :param log_std: its ``log sigma``
        :param next_mean: the same at ``s'``
        :param next_log_std: the same at ``s'``
        :param reference: Cal-QL's lower bound of the policy actions' values, ``(batch, 1)`` (``None``: CQL)
        """
        batch, action_dim, n = actions.shape[0], actions.shape[1], self.n_actions
        with th.no_grad():
            random_actions = th.rand((batch, n, action_dim), device=actions.device) * 2.0 - 1.0
            current_actions, log_pi_current = squashed_gaussian_sample(mean.detach(), log_std.detach(), n)
            next_actions, log_pi_next = squashed_gaussian_sample(next_mean, next_log_std, n)
        per_state = 1 + 3 * n
        all_actions = th.cat(
            [
                actions.unsqueeze(1),
                random_actions,
                current_actions.view(batch, n, action_dim),
                next_actions.view(batch, n, action_dim),
            ],
            dim=1,
        ).reshape(batch * per_state, action_dim)
        q_values = critic_values(self.critic, features.repeat_interleave(per_state, dim=0), all_actions)
        q_values = q_values.view(batch, per_state, -1)
        q_data, q_random = q_values[:, 0], q_values[:, 1 : 1 + n]
        q_current = self._bound_policy_values(q_values[:, 1 + n : 1 + 2 * n], reference)
        q_next = self._bound_policy_values(q_values[:, 1 + 2 * n :], reference)
        if reference is None:
            bound_rate = th.zeros((), device=actions.device)
        else:
            below = q_values[:, 1 + n :].detach() < reference.view(batch, 1, 1)  # actions drawn at s and at s'
            bound_rate = below.float().mean()
        logsumexp = importance_sampled_logsumexp(
            q_random,
            q_current,
            log_pi_current.view(batch, n, 1),
            q_next,
            log_pi_next.view(batch, n, 1),
            action_dim,
            self.cql_temperature,
        )
        gap = (logsumexp - q_data).mean(dim=0)
        return ConservativeTerms(q_data, q_random, q_current, q_next, logsumexp, gap, bound_rate)

    def _bc_update(self, batch_size: int) -> None:
        """A step whose actor clones the dataset's actions (device work only)."""
        self._step(batch_size, behaviour_cloning=True)

    def _update(self, batch_size: int) -> None:
        """A step (device work only: it may be replayed as a CUDA graph)."""
        self._step(batch_size, behaviour_cloning=False)

    def _step(self, batch_size: int, behaviour_cloning: bool) -> None:
        data, reference = self._sample(batch_size)
        mean, log_std = self.policy_parameters(data.observations)
        with th.no_grad():
            next_mean, next_log_std = self.policy_parameters(data.next_observations)
        pi_actions, log_pi = squashed_gaussian_sample(mean, log_std)
        ent_coef = self.log_ent_coef().detach()

        # the actor: behaviour cloning for the first bc_steps updates, then SAC's loss on the critics
        features = self.critic_features(data.observations)
        if behaviour_cloning:
            actor_loss = (ent_coef * log_pi - squashed_gaussian_log_prob(mean, log_std, data.actions)).mean()
        else:
            q_pi = critic_values(self.critic, features.detach(), pi_actions).min(dim=1, keepdim=True).values
            actor_loss = (ent_coef * log_pi - q_pi).mean()

        # the critics: Bellman regression plus the conservative regulariser
        target_q = self.compute_critic_target(data, next_mean, next_log_std)
        terms = self.conservative_terms(features, data.actions, mean, log_std, next_mean, next_log_std, reference)
        bellman_loss = critic_loss(terms.q_data, target_q)
        if self.target_action_gap is None:
            cql_loss = self.alpha_cql * terms.gap.sum()
        else:
            alpha_prime = self.log_alpha_prime().clamp(0.0, MAX_ALPHA_PRIME)
            cql_loss = (alpha_prime.detach() * self.alpha_cql * (terms.gap - self.target_action_gap)).sum()
            alpha_prime_loss = (
                -0.5 * (alpha_prime * self.alpha_cql * (terms.gap.detach() - self.target_action_gap)).sum()
            )

        if self._tune_ent_coef:
            ent_coef_loss = -(self.log_ent_coef.log_value * (log_pi.detach() + self._target_entropy)).mean()
            minimize(self.log_ent_coef.optimizer, ent_coef_loss)
            self._losses.add("ent_coef_loss", ent_coef_loss)
        minimize(self.actor.optimizer, actor_loss)
        if self.target_action_gap is not None:
            minimize(self.log_alpha_prime.optimizer, alpha_prime_loss)
            self._losses.add("alpha_prime", alpha_prime.detach())
        minimize(self.critic.optimizer, bellman_loss + cql_loss)
        self._update_targets()

        self._losses.add("actor_loss", actor_loss)
        self._losses.add("critic_loss", bellman_loss)
        self._losses.add("cql_loss", cql_loss)
        self._losses.add("cql_gap", terms.gap.detach().mean())
        self._losses.add("q_value", terms.q_data.detach().mean())
        self._losses.add("ent_coef", ent_coef)
        self._losses.add("log_pi", log_pi.detach().mean())
        if reference is not None:
            self._losses.add("bound_rate", terms.bound_rate)


def _parse_ent_coef(ent_coef: str | float) -> tuple[float, bool]:
    """SB3's ``ent_coef``: ``"auto"`` / ``"auto_<x>"`` (tuned from 1 / ``x``) or a fixed value -> (initial, tuned)."""
    if isinstance(ent_coef, str):
        if ent_coef == "auto":
            return 1.0, True
        if ent_coef.startswith("auto_"):
            try:
                value = float(ent_coef.removeprefix("auto_"))
            except ValueError:
                value = float("nan")
            if value > 0:
                return value, True
        raise ValueError(f"ent_coef: expected 'auto', 'auto_<x>' with x > 0, or a number > 0, found {ent_coef!r}")
    if isinstance(ent_coef, bool) or not isinstance(ent_coef, int | float) or not ent_coef > 0:
        raise ValueError(f"ent_coef: expected 'auto', 'auto_<x>' with x > 0, or a number > 0, found {ent_coef!r}")
    return float(ent_coef), False
