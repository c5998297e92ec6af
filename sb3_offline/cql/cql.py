"""CQL: Conservative Q-Learning (Kumar, Zhou, Tucker, Levine 2020), CQL(H) on SAC."""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy, ContinuousCritic
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.sac.policies import Actor

from sb3_offline.common.critics import critic_loss, critic_values
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.scalars import LogScalar
from sb3_offline.common.schedules import LearningRate, StepSchedule
from sb3_offline.common.squashed_gaussian import rlkit_log_prob, squashed_gaussian_sample
from sb3_offline.common.training import minimize
from sb3_offline.cql.conservative import ConservativeTerms, importance_sampled_logsumexp
from sb3_offline.cql.policies import CQLPolicy, MlpPolicy, MultiInputPolicy
from sb3_offline.datasets.loaders import DatasetSource

SelfCQL = TypeVar("SelfCQL", bound="CQL")
Samples = ReplayBufferSamples | DictReplayBufferSamples

#: the authors' clip of the Lagrange multiplier (``torch.clamp(self.log_alpha_prime.exp(), min=0.0, max=1000000.0)``)
MAX_ALPHA_PRIME = 1e6


class CQL(OfflineAlgorithm):
    """
    Conservative Q-Learning: Kumar, Zhou, Tucker, Levine, "Conservative Q-Learning for Offline Reinforcement
    Learning", NeurIPS 2020 (https://arxiv.org/abs/2006.04779). CQL(H) on SAC, following the authors' code
    (``aviralkumar2907/CQL`` commit d67dbe9, ``d4rl/rlkit/torch/sac/cql.py``'s ``train_from_torch`` and
    ``d4rl/examples/cql_mujoco_new.py``).

    Networks: SB3's SAC policy (:class:`~sb3_offline.cql.policies.CQLPolicy`: tanh-Gaussian actor, twin critics and
    their target) with the authors' rlkit networks (``log sigma`` clipped to [-5, 2]; hidden biases 0.1, the last
    layers uniform in +-3e-3 for the Q-functions and +-1e-3 for the policy's mean and ``log sigma``), SAC's entropy
    coefficient tuned to the target entropy ``-|A|``. One gradient step, in the authors' order:

    1. entropy coefficient: ``log alpha`` descends ``-mean(log alpha * (log pi(a~|s) + target_entropy))``,
       ``a~ ~ pi(.|s)``, and is stepped first;
    2. critics: ``sum_j mean (Q_j(s, a) - y)^2 + alpha_cql * sum_j mean_batch(LSE_j(s) - Q_j(s, a))``, with
       ``y = r + gamma * (1 - termination) * min_j Q'_j(s', a')``, ``a' ~ pi(.|s')``, **no entropy term** in the
       target (``deterministic_backup=True``, the default of ``cql_mujoco_new.py``); with ``max_q_backup``,
       ``min_j max_i Q'_j(s', a'_i)`` over ``n_actions`` actions drawn at ``s'`` (each target critic's best, then
       the minimum, as the authors). ``LSE_j(s)`` estimates ``log sum_a exp Q_j(s, a)`` by importance sampling over
       ``n_actions`` uniform actions, ``n_actions`` drawn at ``s`` and ``n_actions`` drawn at ``s'``, all scored with
       ``Q_j(s, .)`` (:func:`importance_sampled_logsumexp`); the sampled actions carry no gradient. All
       ``1 + 3 n_actions`` actions of a state (the dataset's included) go through each critic in one batched pass.
       Lagrange version (``target_action_gap`` set): the regulariser becomes
       ``alpha' * alpha_cql * sum_j (gap_j - target_action_gap)``, ``gap_j = mean(LSE_j - Q_j(s, a))``, with
       ``alpha'`` of the start of the step; ``log alpha'`` descends
       ``-alpha' * alpha_cql * mean_j (gap_j - target_action_gap)`` (``alpha'`` grows while the gap exceeds its
       target), ``alpha' = clip(exp(log alpha'), 0, 1e6)``, stepped before the critics;
    3. actor: ``mean(alpha * log pi(a~|s) - min_j Q_j(s, a~))`` with the *new* ``alpha`` of step 1 and the critics
       *after* their step 2; for the first ``bc_steps`` updates the Q-term is replaced by the log-likelihood of the
       dataset's action (the authors' ``policy_eval_start``; rlkit's ``log_prob``, the mean clipped to [-9, 9]:
       :func:`~sb3_offline.common.squashed_gaussian.rlkit_log_prob`).

    The authors run step 3 on PyTorch 1.4, whose backward after the critics' in-place step combines the stepped
    critics' weights with the activations of the forward pass made before it (which ReLUs are on, which critic is
    the minimum); later PyTorch refuses that backward. Here the actor's Q-term is a forward pass through the stepped
    critics, the same gradient but where a ReLU or the minimum switches (``benchmarks/parity/cql.py`` measures it).

    The Lagrange form is Cal-QL's, CORL's and d3rlpy's; the CQL authors write ``alpha' * (alpha_cql * gap_j - tau)``,
    i.e. their ``lagrange_thresh`` ``tau`` is ``alpha_cql * target_action_gap`` here. States are not normalised (the
    authors'); ``normalize_observations=True`` is CORL's ``(s - mean) / (std + 1e-3)``. ``authors_networks=False``
    keeps SB3's SAC networks as they are (``log sigma`` in [-20, 2], PyTorch's initialisation); a checkpoint that
    does not record this choice (sb3-offline 0.1.0's) loads with them.

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
    :param authors_networks: the authors' actor head and initialisation (else SB3's SAC networks as they are)
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
    #: the order of a step: the authors' rlkit code steps the entropy coefficient, then the critics, then the actor on
    #: the new coefficient and the stepped critics; False: every loss from the networks of the start of the step
    #: (the JAX code of Cal-QL's authors)
    sequential_updates: ClassVar[bool] = True
    #: the tanh correction of the sampled actions' log-densities: rlkit's ``log(1 - a^2 + 1e-6)`` (False) or exact
    exact_tanh_correction: ClassVar[bool] = False
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
        authors_networks: bool = True,
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
        # SB3's load builds the model with _init_setup_model=False, then sets the checkpoint's attributes: a checkpoint
        # without this one (sb3-offline 0.1.0's) keeps the networks it was saved with, SB3's SAC networks
        self.authors_networks = authors_networks if kwargs.get("_init_setup_model", True) else False
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
        return {
            "initial_ent_coef": initial_ent_coef,
            "initial_alpha_prime": self.initial_alpha_prime,
            "authors_networks": self.authors_networks,
        }

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
        ``max_q_backup`` the best over ``n_actions`` such actions (:meth:`max_backup`). ``(batch, 1)``, no gradient.
        """
        with th.no_grad():
            n = self.n_actions if self.max_q_backup else 1
            next_actions, _ = squashed_gaussian_sample(next_mean, next_log_std, n, self.exact_tanh_correction)
            features = self.critic_target.extract_features(
                data.next_observations, self.critic_target.features_extractor
            )
            next_q = critic_values(self.critic_target, features.repeat_interleave(n, dim=0), next_actions)
            best = self.max_backup(next_q, n) if n > 1 else next_q.min(dim=1, keepdim=True).values
            return data.rewards + (1.0 - data.dones) * self.gamma * best

    def max_backup(self, next_q: th.Tensor, n: int) -> th.Tensor:
        """
        The authors' max backup, ``min_j max_i Q'_j(s', a'_i)`` (``cql.py``: each target network's ``.max(1)`` over the
        sampled actions, then ``torch.min`` of the two), ``(batch, 1)``.

        :param next_q: ``(batch * n, n_critics)`` the target critics' values, state-major
        :param n: actions per next state
        """
        return next_q.view(-1, n, next_q.shape[1]).max(dim=1).values.min(dim=1, keepdim=True).values

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
            current_actions, log_pi_current = squashed_gaussian_sample(
                mean.detach(), log_std.detach(), n, self.exact_tanh_correction
            )
            next_actions, log_pi_next = squashed_gaussian_sample(next_mean, next_log_std, n, self.exact_tanh_correction)
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
        pi_actions, log_pi = squashed_gaussian_sample(mean, log_std, exact=self.exact_tanh_correction)
        ent_coef = self._entropy_step(log_pi)
        features = self.critic_features(data.observations)
        if not self.sequential_updates:  # the actor on the critics of the start of the step
            self._actor_step(data, features, mean, log_std, pi_actions, log_pi, ent_coef, behaviour_cloning)
        self._critic_step(data, features, mean, log_std, next_mean, next_log_std, reference)
        if self.sequential_updates:  # the authors': the actor on the critics just stepped
            with th.no_grad():
                features = self.critic_features(data.observations)
            self._actor_step(data, features, mean, log_std, pi_actions, log_pi, ent_coef, behaviour_cloning)
        self._update_targets()
        self._losses.add("ent_coef", ent_coef)
        self._losses.add("log_pi", log_pi.detach().mean())

    def _entropy_step(self, log_pi: th.Tensor) -> th.Tensor:
        """
        Step SAC's entropy coefficient when it is tuned (``-mean(log alpha * (log pi + target_entropy))``) and return
        the coefficient of the actor's loss: the new one in the authors' order (``sequential_updates``), else the one
        of the start of the step.
        """
        start = self.log_ent_coef().detach()
        if self._tune_ent_coef:
            ent_coef_loss = -(self.log_ent_coef.log_value * (log_pi.detach() + self._target_entropy)).mean()
            minimize(self.log_ent_coef.optimizer, ent_coef_loss)
            self._losses.add("ent_coef_loss", ent_coef_loss)
        return self.log_ent_coef().detach() if self.sequential_updates else start

    def _actor_step(
        self,
        data: Samples,
        features: th.Tensor,
        mean: th.Tensor,
        log_std: th.Tensor,
        pi_actions: th.Tensor,
        log_pi: th.Tensor,
        ent_coef: th.Tensor,
        behaviour_cloning: bool,
    ) -> None:
        """SAC's actor loss on the critics' minimum, or during behaviour cloning on the dataset action's log-density."""
        if behaviour_cloning:
            fit = rlkit_log_prob(mean, log_std, data.actions)
        else:
            fit = critic_values(self.critic, features.detach(), pi_actions).min(dim=1, keepdim=True).values
        actor_loss = (ent_coef * log_pi - fit).mean()
        minimize(self.actor.optimizer, actor_loss)
        self._losses.add("actor_loss", actor_loss)

    def _critic_step(
        self,
        data: Samples,
        features: th.Tensor,
        mean: th.Tensor,
        log_std: th.Tensor,
        next_mean: th.Tensor,
        next_log_std: th.Tensor,
        reference: th.Tensor | None,
    ) -> None:
        """The critics' Bellman regression and conservative regulariser (the Lagrange multiplier stepped first)."""
        target_q = self.compute_critic_target(data, next_mean, next_log_std)
        terms = self.conservative_terms(features, data.actions, mean, log_std, next_mean, next_log_std, reference)
        bellman_loss = critic_loss(terms.q_data, target_q)
        if self.target_action_gap is None:
            cql_loss = self.alpha_cql * terms.gap.sum()
        else:  # alpha' is stepped first; the critics' loss takes its value of the start of the step
            alpha_prime = self.log_alpha_prime().clamp(0.0, MAX_ALPHA_PRIME)
            excess = terms.gap - self.target_action_gap
            cql_loss = (alpha_prime.detach() * self.alpha_cql * excess).sum()
            alpha_prime_loss = -0.5 * (alpha_prime * self.alpha_cql * excess.detach()).sum()
            minimize(self.log_alpha_prime.optimizer, alpha_prime_loss)
            self._losses.add("alpha_prime", alpha_prime.detach())
        minimize(self.critic.optimizer, bellman_loss + cql_loss)
        self._losses.add("critic_loss", bellman_loss)
        self._losses.add("cql_loss", cql_loss)
        self._losses.add("cql_gap", terms.gap.detach().mean())
        self._losses.add("q_value", terms.q_data.detach().mean())
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
