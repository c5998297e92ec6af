"""EDAC and SAC-N: SAC with an ensemble of N critics (An, Moon, Kim, Song 2021); EDAC diversifies their gradients."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import DictReplayBufferSamples, GymEnv, ReplayBufferSamples, Schedule
from stable_baselines3.sac.policies import Actor

from sb3_offline.common.ensemble import EnsembleCritic
from sb3_offline.common.multi_input import aliases
from sb3_offline.common.offline_algorithm import OfflineAlgorithm, Update
from sb3_offline.common.scalars import LogScalar
from sb3_offline.common.schedules import LearningRate, StepSchedule
from sb3_offline.common.squashed_gaussian import squashed_gaussian_sample
from sb3_offline.common.training import minimize
from sb3_offline.cql.cql import _parse_ent_coef
from sb3_offline.datasets.loaders import DatasetSource
from sb3_offline.edac.policies import EDACPolicy, MlpPolicy, MultiInputPolicy

SelfEDAC = TypeVar("SelfEDAC", bound="EDAC")
Samples = ReplayBufferSamples | DictReplayBufferSamples

#: added to the norm of each member's action gradient before dividing by it (the authors' ``1e-10``)
GRADIENT_NORM_EPS = 1e-10


def ensemble_diversity(gradients: th.Tensor) -> th.Tensor:
    """
    EDAC's ensemble similarity term (the paper's Eq. 5; the authors' ``sac.py``, ``eta > 0``): each member's gradient
    of ``Q_j(s, a)`` with respect to the action, normalised (``g_j / (||g_j|| + 1e-10)``), and the sum of the cosine
    similarities ``<g_i, g_j>`` over the ordered pairs ``i != j``, averaged over the batch and divided by ``N - 1``.

    :param gradients: ``(N, batch, action_dim)``, member ``j``'s gradient at the batch's actions
    :return: a scalar
    """
    n_members = gradients.shape[0]
    unit = gradients / (gradients.norm(p=2, dim=2, keepdim=True) + GRADIENT_NORM_EPS)
    unit = unit.transpose(0, 1)  # (batch, N, action_dim)
    similarities = th.bmm(unit, unit.transpose(1, 2))  # (batch, N, N)
    off_diagonal = similarities.sum(dim=(1, 2)) - similarities.diagonal(dim1=1, dim2=2).sum(dim=1)
    return off_diagonal.mean() / (n_members - 1)


class EDAC(OfflineAlgorithm):
    """
    Ensemble-Diversified Actor Critic: An, Moon, Kim, Song, "Uncertainty-Based Offline Reinforcement Learning with
    Diversified Q-Ensemble", NeurIPS 2021 (https://arxiv.org/abs/2110.01548), following the authors' code
    (``snu-mllab/EDAC`` commit 198d570, ``lifelong_rl/trainers/q_learning/sac.py`` and ``scripts/sac.py``) and
    CORL's port (``tinkoff-ai/CORL``, ``algorithms/offline/edac.py``).

    SAC with ``n_critics`` Q-functions (one vectorised ensemble,
    :class:`~sb3_offline.common.ensemble.EnsembleCritic`) and the minimum over them, in the target and in the
    actor's loss; with ``eta > 0`` the critics' loss adds ``eta`` times the similarity of the members' action
    gradients (:func:`ensemble_diversity`). The paper's SAC-N is this algorithm with ``eta = 0`` (its Section 4 and
    the authors' one trainer, where ``eta <= 0`` is SAC-N): :class:`SACN` is this class with ``eta`` fixed at 0, so
    both share every line of the update. One gradient step, as the authors' ``train_from_torch``:

    1. from the networks of the start of the step: ``a~ ~ pi(.|s)`` (one reparameterised draw) and its
       ``log pi``; the entropy coefficient's loss ``-mean(log alpha * (log pi(a~|s) + target_entropy))``; the
       actor's ``mean(alpha * log pi(a~|s) - min_j Q_j(s, a~))``; the critics'
       ``sum_j mean_i (Q_j(s_i, a_i) - y_i)^2 + eta * diversity`` with
       ``y = r + gamma * (1 - termination) * (min_j Q'_j(s', a') - alpha * log pi(a'|s'))``, ``a' ~ pi(.|s')``,
       ``alpha`` the coefficient of the start of the step everywhere;
    2. then the entropy coefficient, the actor and the critics are each stepped on their loss, and the targets
       Polyak-averaged.

    The diversity term takes each member's gradient with respect to its own copy of the dataset's actions
    (``(N, batch, |A|)``) with one autograd call on the sum of the ensemble's outputs (the members are independent,
    so member ``j``'s slice of that gradient is its own), the same forward pass giving the critics' values.
    ``sequential_updates`` (a class attribute) is CORL's order instead: the coefficient stepped first (on a draw of
    its own), the actor on the new coefficient (a new draw), then the critics with the new actor and coefficient.

    Defaults: the authors' (``scripts/sac.py``; the paper's appendix): learning rates 3e-4 (the coefficient's: the
    policy's), batch 256, 3 x 256 networks, gamma 0.99, tau 5e-3, ``alpha`` tuned from 1 towards ``-|A|``,
    ``n_critics`` 10, ``eta`` 1 (CORL's default; the paper's per-dataset N and eta are in the zoo configs
    ``edac.yml``/``sac_n.yml``). Actions are in [-1, 1] (the actor's ``tanh``; CORL's ``max_action`` is 1). Left
    out: the authors' ``max_q_backup``, ``deterministic_backup`` and reward normalisation options (their Adroit
    runs).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data (Minari id or ``MinariDataset``, ``.hdf5``/``.npz``/SB3 ``.pkl`` path, ``Transitions``)
    :param learning_rate: learning rate of the critics (the authors' ``qf_lr``)
    :param actor_learning_rate: learning rate of the actor (``policy_lr``)
    :param ent_coef_learning_rate: learning rate of the entropy coefficient (``None``: the actor's, as the authors')
    :param n_critics: the ensemble's size N (``num_qs``)
    :param eta: weight of the ensemble diversity term (0: SAC-N)
    :param ent_coef: ``"auto"`` (tuned, starting at 1), ``"auto_<x>"`` (tuned, starting at ``x``) or a fixed value
    :param target_entropy: ``"auto"`` (``-|A|``) or a value
    :param batch_size: minibatch size
    :param tau: target update rate
    :param gamma: discount factor
    :param kwargs: :class:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm`'s other arguments and defaults
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = aliases(MlpPolicy, MultiInputPolicy)
    networks = ("actor", "critic", "critic_target", "log_ent_coef")
    target_networks = {"critic_target": "critic"}
    #: CORL's order (the coefficient, then the actor, then the critics, each on the networks stepped before it);
    #: False: the authors' (every loss from the networks of the start of the step)
    sequential_updates: ClassVar[bool] = False
    policy: EDACPolicy
    actor: Actor
    critic: EnsembleCritic
    critic_target: EnsembleCritic
    log_ent_coef: LogScalar

    def __init__(
        self,
        policy: str | type[EDACPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        learning_rate: float | Schedule = 3e-4,
        actor_learning_rate: float | Schedule | StepSchedule = 3e-4,
        ent_coef_learning_rate: float | Schedule | StepSchedule | None = None,
        n_critics: int = 10,
        eta: float = 1.0,
        ent_coef: str | float = "auto",
        target_entropy: str | float = "auto",
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> None:
        if int(n_critics) != n_critics or n_critics < 2:
            raise ValueError(f"n_critics: expected an integer >= 2, found {n_critics}")
        if not eta >= 0:
            raise ValueError(f"eta: expected >= 0, found {eta}")
        _, self._tune_ent_coef = _parse_ent_coef(ent_coef)
        if not (target_entropy == "auto" or isinstance(target_entropy, int | float)):
            raise ValueError(f"target_entropy: expected 'auto' or a number, found {target_entropy!r}")
        self.n_critics = int(n_critics)
        self.eta = float(eta)
        self.ent_coef = ent_coef
        self.target_entropy = target_entropy
        self.actor_learning_rate = actor_learning_rate
        self.ent_coef_learning_rate = ent_coef_learning_rate
        super().__init__(
            policy, env, learning_rate, dataset=dataset, batch_size=batch_size, tau=tau, gamma=gamma, **kwargs
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        assert self.action_space.shape is not None
        action_dim = int(np.prod(self.action_space.shape))
        self._target_entropy = -float(action_dim) if self.target_entropy == "auto" else float(self.target_entropy)  # type: ignore[arg-type]

    def learning_rates(self) -> dict[str, LearningRate | None]:
        ent_coef = self.actor_learning_rate if self.ent_coef_learning_rate is None else self.ent_coef_learning_rate
        return {"actor": self.actor_learning_rate, "critic": None, "log_ent_coef": ent_coef}

    def _policy_arguments(self) -> dict[str, Any]:
        initial_ent_coef, _ = _parse_ent_coef(self.ent_coef)
        return {"n_critics": self.n_critics, "initial_ent_coef": initial_ent_coef}

    def _next_update(self) -> tuple[str, Update]:
        return "edac", self._update

    def _sample(self, batch_size: int) -> Samples:
        assert self.replay_buffer is not None
        return self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)

    def _policy_sample(self, observations: Any) -> tuple[th.Tensor, th.Tensor]:
        """A reparameterised action of the actor at each observation and its log-density (SB3's and rlkit's)."""
        mean, log_std, _ = self.actor.get_action_dist_params(observations)
        return squashed_gaussian_sample(mean, log_std)

    def critic_features(self, observations: Any) -> th.Tensor:
        """The critics' state features (as SB3's critic: a shared extractor is not trained by the critics)."""
        with th.set_grad_enabled(th.is_grad_enabled() and not self.critic.share_features_extractor):
            return self.critic.extract_features(observations, self.critic.features_extractor)

    def critic_target_values(self, data: Samples, ent_coef: th.Tensor) -> th.Tensor:
        """``r + gamma * (1 - termination) * (min_j Q'_j(s', a') - alpha log pi(a'|s'))``, ``(batch, 1)``."""
        with th.no_grad():
            next_actions, next_log_pi = self._policy_sample(data.next_observations)
            features = self.critic_target.extract_features(
                data.next_observations, self.critic_target.features_extractor
            )
            next_q = self.critic_target.q_values(features, next_actions).min(dim=0).values - ent_coef * next_log_pi
            return data.rewards + (1.0 - data.dones) * self.gamma * next_q

    def critic_losses(self, data: Samples, target_q: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """
        The ensemble's regression loss ``sum_j mean_i (Q_j(s_i, a_i) - y_i)^2`` and, with ``eta > 0``, the diversity
        term (:func:`ensemble_diversity`) on the same forward pass (the members' own copies of the actions); 0 else.
        """
        features = self.critic_features(data.observations)
        if self.eta > 0:
            actions = data.actions.unsqueeze(0).repeat(self.n_critics, 1, 1).requires_grad_(True)
            q_values = self.critic.q_values(features, actions)
            (gradients,) = th.autograd.grad(q_values.sum(), actions, create_graph=True)
            diversity = ensemble_diversity(gradients)
        else:
            q_values = self.critic.q_values(features, data.actions)
            diversity = th.zeros((), device=q_values.device)
        return (q_values - target_q.unsqueeze(0)).pow(2).mean(dim=(1, 2)).sum(), diversity

    def actor_loss(self, observations: Any, actions: th.Tensor, log_pi: th.Tensor, ent_coef: th.Tensor) -> th.Tensor:
        """
        ``mean(alpha * log pi(a~|s) - min_j Q_j(s, a~))``. The critics' features and weights enter as constants
        (``torch.func.functional_call`` with detached weights): the backward pass computes the gradient with respect to
        the actions only, not the critics' weight gradients the authors' code also computes and then zeroes.
        """
        with th.no_grad():
            features = self.critic_features(observations)
        weights = {name: value.detach() for name, value in self.critic.q_net.named_parameters()}
        q_values = th.func.functional_call(self.critic.q_net, weights, (th.cat([features, actions], dim=1),))
        return (ent_coef * log_pi - q_values.min(dim=0).values).mean()

    def _entropy_loss(self, log_pi: th.Tensor) -> th.Tensor:
        return -(self.log_ent_coef.log_value * (log_pi.detach() + self._target_entropy)).mean()

    def _update(self, batch_size: int) -> None:
        """One step (device work only: it may be replayed as a CUDA graph)."""
        data = self._sample(batch_size)
        if self.sequential_updates:
            self._sequential_step(data)
        else:
            self._step(data)
        self._update_targets()

    def _step(self, data: Samples) -> None:
        """The authors' step: every loss from the networks of the start of the step, then each stepped."""
        actions, log_pi = self._policy_sample(data.observations)
        ent_coef = self.log_ent_coef().detach()
        actor_loss = self.actor_loss(data.observations, actions, log_pi, ent_coef)
        bellman, diversity = self.critic_losses(data, self.critic_target_values(data, ent_coef))
        if self._tune_ent_coef:
            self._step_ent_coef(self._entropy_loss(log_pi))
        minimize(self.actor.optimizer, actor_loss)
        minimize(self.critic.optimizer, bellman + self.eta * diversity)
        self._log(actor_loss, bellman, diversity, ent_coef, log_pi)

    def _sequential_step(self, data: Samples) -> None:
        """CORL's step: the coefficient (own draw), the actor on the new one, then the critics on the new actor."""
        if self._tune_ent_coef:
            with th.no_grad():
                _, log_pi = self._policy_sample(data.observations)
            self._step_ent_coef(self._entropy_loss(log_pi))
        ent_coef = self.log_ent_coef().detach()
        actions, log_pi = self._policy_sample(data.observations)
        actor_loss = self.actor_loss(data.observations, actions, log_pi, ent_coef)
        minimize(self.actor.optimizer, actor_loss)
        bellman, diversity = self.critic_losses(data, self.critic_target_values(data, ent_coef))
        minimize(self.critic.optimizer, bellman + self.eta * diversity)
        self._log(actor_loss, bellman, diversity, ent_coef, log_pi)

    def _step_ent_coef(self, loss: th.Tensor) -> None:
        minimize(self.log_ent_coef.optimizer, loss)
        self._losses.add("ent_coef_loss", loss)

    def _log(
        self, actor_loss: th.Tensor, bellman: th.Tensor, diversity: th.Tensor, ent_coef: th.Tensor, log_pi: th.Tensor
    ) -> None:
        self._losses.add("actor_loss", actor_loss)
        self._losses.add("critic_loss", bellman)
        if self.eta > 0:
            self._losses.add("diversity_loss", diversity)
        self._losses.add("ent_coef", ent_coef)
        self._losses.add("log_pi", log_pi.detach().mean())


class SACN(EDAC):
    """
    SAC-N: An, Moon, Kim, Song, "Uncertainty-Based Offline Reinforcement Learning with Diversified Q-Ensemble",
    NeurIPS 2021 (https://arxiv.org/abs/2110.01548), Section 3: SAC with N critics and the minimum over them, no
    other change; the authors' code runs it as EDAC with ``eta <= 0`` (``snu-mllab/EDAC`` commit 198d570,
    ``scripts/sac.py``), CORL as ``algorithms/offline/sac_n.py``. :class:`EDAC` with ``eta = 0`` (its update, its
    networks, its defaults; the paper's per-dataset N are in the zoo config ``sac_n.yml``).

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` or a policy class
    :param env: the environment (``None``: recovered from the dataset)
    :param dataset: the data
    :param n_critics: the ensemble's size N
    :param kwargs: :class:`EDAC`'s other arguments and defaults (but ``eta``)
    """

    def __init__(
        self,
        policy: str | type[EDACPolicy],
        env: GymEnv | str | None,
        dataset: DatasetSource | None = None,
        n_critics: int = 10,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("eta", 0.0) != 0.0:
            raise ValueError("eta: expected 0 for SAC-N (use EDAC for eta > 0)")
        super().__init__(policy, env, dataset=dataset, n_critics=n_critics, eta=0.0, **kwargs)
