"""
d3rlpy's algorithms and FQE on our data, with our settings (:mod:`benchmarks.d3rlpy_compat` builds them and lists
where they differ from ours): our ``Transitions`` as d3rlpy's ``MDPDataset`` and batches, a trained d3rlpy algorithm
as a policy in the env's units, its updates per second (``benchmarks.throughput``), its training
(``benchmarks.batch_settings --d3rlpy``) and its FQE on our checkpoints (``benchmarks.ope_checkpoints --d3rlpy``).
d3rlpy is imported lazily; nothing here runs without it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

from benchmarks.d3rlpy_compat import (
    D3RLPY_ALGOS,
    d3rlpy_device,
    flat_observations,
    make_d3rlpy,
    our_defaults,
    our_observation_statistics,
    our_reward_transform,
    small_net_arch,
)
from benchmarks.ope_summary import estimate_fields
from sb3_offline.ope import PolicyValueEstimate, as_evaluation_policy, bootstrap_interval

SAMPLING = ("buffer", "arrays")


# ------------------------------------------------------------------------------------------------- data
def _box_bounds(action_space: Any, transitions: Any) -> tuple[np.ndarray, np.ndarray]:
    if action_space is None:
        if transitions.env_id is None:
            raise ValueError("action_space: expected the env's Box (the dataset records no env id), found None")
        action_space = gym.make(transitions.env_id).action_space
    low = np.asarray(action_space.low, dtype=np.float32)
    high = np.asarray(action_space.high, dtype=np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"action_space: expected finite Box bounds, found {action_space}")
    return low, high


def scale_actions(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Env units -> [-1, 1] (clipped), as our replay buffer does."""
    return np.clip(2.0 * (actions - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)


def unscale_actions(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[-1, 1] -> env units."""
    return np.clip(low + 0.5 * (actions + 1.0) * (high - low), low, high).astype(np.float32)


def to_mdp_dataset(
    transitions: Any, action_space: Any = None, exact_next_observations: bool = True
) -> tuple[Any, np.ndarray, np.ndarray]:
    """
    An ``sb3_offline.datasets.Transitions`` as a d3rlpy ``MDPDataset``, actions rescaled to [-1, 1] with the
    env's bounds (default: ``gym.make(transitions.env_id)``'s): :func:`sb3_offline.datasets.d3rlpy.to_mdp_dataset`
    (which says how our transitions become d3rlpy's episodes, all of them kept), on flat observations.

    :return: ``(dataset, low, high)``, the env's action bounds used for the scaling
    """
    from sb3_offline.datasets.d3rlpy import to_mdp_dataset as as_mdp_dataset

    low, high = _box_bounds(action_space, transitions)
    flat_observations(
        transitions.observations, "observations"
    )  # the bridge's d3rlpy algorithms take flat Box observations
    dataset = as_mdp_dataset(transitions, _Box(low, high), exact_next_observations=exact_next_observations)
    return dataset, low, high


#: d3rlpy algorithms whose batches need each transition's episode (their returns-to-go): ``"buffer"`` sampling only
NEEDS_EPISODES = ("calql",)


def _check_sampling(algo: str, sampling: str) -> None:
    if algo in NEEDS_EPISODES and sampling != "buffer":
        raise ValueError(
            f"sampling: expected 'buffer' for d3rlpy's {algo} (its returns-to-go come from each transition's "
            f"episode, which the 'arrays' batches do not carry), found {sampling!r}"
        )


def batch_sampler(
    transitions: Any,
    batch_size: int,
    sampling: str = "buffer",
    action_space: Any = None,
    exact: bool = True,
    dataset: Any = None,
) -> tuple[Callable[[], Any], int, int]:
    """
    A function returning one d3rlpy ``TransitionMiniBatch`` per call, and the shapes ``(obs_dim, action_dim)``.

    ``"buffer"``: d3rlpy's own ``ReplayBuffer.sample_transition_batch`` on :func:`to_mdp_dataset`'s data (what
    ``fit`` does: ``batch_size`` Python calls per batch). ``"arrays"``: a ``TransitionMiniBatch`` made by
    indexing our flat arrays with numpy (not a d3rlpy API path; it shows what d3rlpy's update costs without
    its sampler). ``dataset``: :func:`to_mdp_dataset`'s result made beforehand (``"buffer"`` only), so that
    several measurements on the same data convert it once.
    """
    from d3rlpy.dataset import TransitionMiniBatch

    if sampling == "buffer":
        if dataset is None:
            dataset, _, _ = to_mdp_dataset(transitions, action_space, exact_next_observations=exact)
        obs_dim = int(np.prod(np.shape(transitions.observations)[1:]))
        action_dim = int(np.prod(np.shape(transitions.actions)[1:]))
        return (lambda: dataset.sample_transition_batch(batch_size)), obs_dim, action_dim
    if sampling != "arrays":
        raise ValueError(f"sampling: expected one of {SAMPLING}, found {sampling!r}")
    low, high = _box_bounds(action_space, transitions)
    obs = flat_observations(transitions.observations, "observations")
    next_obs = flat_observations(transitions.next_observations, "next_observations")
    actions = scale_actions(np.asarray(transitions.actions, dtype=np.float32).reshape(len(obs), -1), low, high)
    rewards = np.asarray(transitions.rewards, dtype=np.float32).reshape(-1, 1)
    terminals = np.asarray(transitions.terminations, dtype=np.float32).reshape(-1, 1)
    intervals = np.ones((batch_size, 1), dtype=np.float32)

    def sample() -> Any:
        index = np.random.randint(len(obs), size=batch_size)
        picked = actions[index]
        return TransitionMiniBatch(
            observations=obs[index],
            actions=picked,
            rewards=rewards[index],
            next_observations=next_obs[index],
            next_actions=picked,  # unused by these algorithms
            terminals=terminals[index],
            intervals=intervals,
            transitions=[],
        )

    return sample, obs.shape[1], actions.shape[1]


# ---------------------------------------------------------------------------------------------- acting
class D3rlpyPolicy:
    """
    A trained d3rlpy algorithm as a policy in the env's units: ``policy(obs) -> action`` (one observation,
    for ``sb3_offline.evaluation.evaluate_callable``) and SB3's ``predict(obs, state, episode_start,
    deterministic) -> (actions, None)`` (batched, for ``evaluate_policy`` / ``sb3_offline.evaluation.evaluate``).

    :param algo: the d3rlpy algorithm (built)
    :param low: the env's action lower bound
    :param high: the env's action upper bound
    :param acting_samples: BCQ only: candidates per state when acting (d3rlpy's private ``_n_action_samples``
        is set to it during ``predict`` and restored after); ``None`` leaves d3rlpy's number
    """

    def __init__(self, algo: Any, low: np.ndarray, high: np.ndarray, acting_samples: int | None = None) -> None:
        self.algo = algo
        self.low = low
        self.high = high
        self.acting_samples = acting_samples

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, None]:
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs.reshape(1 if single else len(obs), -1)
        impl = self.algo.impl
        previous = getattr(impl, "_n_action_samples", None)
        if self.acting_samples is not None and previous is not None:
            impl._n_action_samples = self.acting_samples
        try:
            actions = self.algo.predict(batch)
        finally:
            if self.acting_samples is not None and previous is not None:
                impl._n_action_samples = previous
        actions = unscale_actions(actions, self.low, self.high)
        return (actions[0] if single else actions), None

    def __call__(self, observation: Any) -> np.ndarray:
        return self.predict(observation)[0]


# ------------------------------------------------------------------------------------------- throughput
def measure_d3rlpy_updates(
    algo: str,
    transitions: Any,
    device: str,
    steps: int,
    warmup: int,
    batch_size: int | None,
    small_nets: bool = False,
    net_arch: list[int] | dict[str, list[int]] | None = None,
    sampling: str = "buffer",
    action_space: Any = None,
    seed: int = 0,
    dataset: Any = None,
) -> float:
    """
    Gradient updates per second of d3rlpy's ``algo.update`` on ``transitions``, **sampling included**: each
    timed step is ``algo.update(sample())`` with ``sample`` from :func:`batch_sampler` (default ``"buffer"``,
    d3rlpy's ``ReplayBuffer.sample_transition_batch``, i.e. what its ``fit`` does, host-side, then the copy
    to the device inside ``update``), as our benchmark times our sampling on the device too. The first
    ``warmup`` updates are not timed. The random data of the throughput benchmark is converted with
    ``exact_next_observations=False`` (see :func:`to_mdp_dataset`); the work per update does not depend on it.

    :param algo: ``"bcq"``, ``"awac"``, ``"iql"``, ``"td3bc"``, ``"cql"``, ``"calql"`` (``"buffer"`` sampling
        only: its returns-to-go come from the episodes), ``"plas"`` (policy phase: ``warmup_steps=0``,
        every timed step a critic + actor update) or ``"plas/vae"`` (VAE phase: ``warmup_steps`` never reached)
    :param transitions: ``sb3_offline.datasets.Transitions``
    :param device: our device name
    :param steps: timed updates
    :param warmup: untimed updates first
    :param batch_size: ``None``: our default for ``algo``
    :param small_nets: ``batch_settings.py``'s ``--small-nets`` sizes (else ``net_arch``, else our defaults)
    :param net_arch: our ``policy_kwargs["net_arch"]``
    :param sampling: ``"buffer"`` or ``"arrays"`` (see :func:`batch_sampler`)
    :param action_space: the env's action ``Box`` (default: ``gym.make(transitions.env_id)``'s)
    :param seed: d3rlpy's seed
    :param dataset: ``to_mdp_dataset(transitions, action_space, exact_next_observations=False)[0]`` made
        beforehand (``"buffer"`` sampling), to convert 1M rows once for several measurements
    """
    import d3rlpy

    base = "plas" if algo.startswith("plas") else algo
    _check_sampling(base, sampling)
    if small_nets:
        net_arch = small_net_arch(base)
    vae_steps = (10**9 if algo == "plas/vae" else 0) if base == "plas" else None
    d3rlpy.seed(seed)
    transform = our_reward_transform(base, transitions)
    model = make_d3rlpy(
        base,
        device,
        batch_size,
        net_arch,
        plas_vae_steps=vae_steps,
        reward_transform=transform,
        observation_statistics=our_observation_statistics(base, transitions),
        steps=warmup + steps,
    )
    sample, obs_dim, action_dim = batch_sampler(
        transitions, model.config.batch_size, sampling, action_space, exact=False, dataset=dataset
    )
    model.create_impl((obs_dim,), action_dim)
    for _ in range(warmup):
        model.update(sample())
    cuda = device.startswith("cuda")
    if cuda:
        th.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        model.update(sample())
    if cuda:
        th.cuda.synchronize()
    return steps / (time.perf_counter() - start)


# --------------------------------------------------------------------------------------------- training
def train_d3rlpy(
    algo: str,
    transitions: Any,
    steps: int,
    seed: int,
    device: str = "cpu",
    small_nets: bool = False,
    plas_vae_steps: int = 0,
    *,
    action_space: Any = None,
    net_arch: list[int] | dict[str, list[int]] | None = None,
    batch_size: int | None = None,
    sampling: str = "buffer",
    callback: Callable[[int, D3rlpyPolicy], None] | None = None,
    callback_freq: int = 0,
    bcq_acting_samples: int | None = None,
) -> D3rlpyPolicy:
    """
    Train d3rlpy's ``algo`` with our defaults on ``transitions`` and return it as a policy (obs -> action in
    the env's units; see :class:`D3rlpyPolicy`).

    Runs ``steps`` gradient steps (``algo.update`` on batches from d3rlpy's replay buffer, as ``fit`` does,
    without its logging); PLAS first runs ``plas_vae_steps`` VAE steps (d3rlpy's ``warmup_steps``), then
    ``steps`` policy steps, as ``benchmarks/batch_settings.py`` runs ours (``vae_steps`` + ``steps``).

    :param algo: ``"bcq"``, ``"awac"``, ``"plas"``, ``"iql"``, ``"td3bc"``, ``"cql"`` or ``"calql"``
    :param transitions: ``sb3_offline.datasets.Transitions`` (actions in the env's units)
    :param steps: gradient steps (PLAS: of the policy phase)
    :param seed: ``d3rlpy.seed`` (Python, numpy and torch generators)
    :param device: our device name
    :param small_nets: ``batch_settings.py``'s ``--small-nets`` sizes (else ``net_arch``, else our defaults)
    :param plas_vae_steps: PLAS's VAE pre-training steps
    :param action_space: the env's action ``Box`` (default: ``gym.make(transitions.env_id)``'s)
    :param net_arch: our ``policy_kwargs["net_arch"]``
    :param batch_size: ``None``: our default for ``algo``
    :param sampling: ``"buffer"`` (d3rlpy's) or ``"arrays"`` (see :func:`batch_sampler`)
    :param callback: ``callback(n_updates, policy)`` after every ``callback_freq`` updates (all phases
        counted, as SB3's ``EvalCallback`` counts ours)
    :param callback_freq: see ``callback``; 0: never
    :param bcq_acting_samples: BCQ's candidates when acting (default: our ``action_samples``, 100)
    """
    import d3rlpy

    if algo not in D3RLPY_ALGOS:
        raise ValueError(f"algo: expected one of {D3RLPY_ALGOS}, found {algo!r}")
    _check_sampling(algo, sampling)
    if small_nets:
        net_arch = small_net_arch(algo)
    d3rlpy.seed(seed)
    vae_steps = plas_vae_steps if algo == "plas" else 0
    model = make_d3rlpy(
        algo,
        device,
        batch_size,
        net_arch,
        plas_vae_steps=vae_steps if algo == "plas" else None,
        reward_transform=our_reward_transform(algo, transitions),
        observation_statistics=our_observation_statistics(algo, transitions),
        steps=steps,
    )
    low, high = _box_bounds(action_space, transitions)
    box = _Box(low, high)
    sample, obs_dim, action_dim = batch_sampler(transitions, model.config.batch_size, sampling, box, exact=True)
    model.create_impl((obs_dim,), action_dim)
    acting = None
    if algo == "bcq":
        acting = our_defaults("bcq")["action_samples"] if bcq_acting_samples is None else bcq_acting_samples
    policy = D3rlpyPolicy(model, low, high, acting)
    for update in range(1, vae_steps + steps + 1):
        model.update(sample())
        if callback is not None and callback_freq > 0 and update % callback_freq == 0:
            callback(update, policy)
    return policy


class _Box:
    """Just the bounds of a ``Box`` (what :func:`_box_bounds` reads)."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low, self.high = low, high


# --------------------------------------------------------------------------------------------- d3rlpy's FQE
def foreign_algo(model: Any, observation_space: gym.Space, action_space: gym.Space, device: str) -> Any:
    """
    Our model as the algorithm d3rlpy's FQE evaluates: an object with ``impl`` (a ``QLearningAlgoImplBase``
    whose ``predict_best_action`` is the model's deterministic action in [-1, 1]) and ``predict`` (numpy).
    """
    import dataclasses

    from d3rlpy.algos.qlearning.base import QLearningAlgoImplBase
    from d3rlpy.torch_utility import Modules

    evaluator = as_evaluation_policy(model, observation_space, action_space)

    @dataclasses.dataclass(frozen=True)
    class NoModules(Modules):
        """The wrapped policy has no networks that d3rlpy trains or saves."""

    class PolicyImpl(QLearningAlgoImplBase):
        def inner_predict_best_action(self, x: Any) -> th.Tensor:
            return evaluator.actions(x, 1)[:, 0].to(x.device)

        def inner_sample_action(self, x: Any) -> th.Tensor:
            return self.inner_predict_best_action(x)

        def inner_predict_value(self, x: Any, action: th.Tensor) -> th.Tensor:
            raise NotImplementedError("the evaluated policy has no Q-function; FQE's is the estimate")

        def inner_update(self, batch: Any, grad_step: int) -> dict[str, float]:
            raise NotImplementedError("the evaluated policy is fixed")

    shape = tuple(observation_space.shape or ())
    impl = PolicyImpl(shape, int(np.prod(action_space.shape or ())), NoModules(), device)

    class PolicyAlgo:
        """What ``d3rlpy.ope.FQE`` reads of the algorithm it evaluates: ``impl``, ``predict``, ``sample_action``."""

        def __init__(self) -> None:
            self.impl = impl

        def predict(self, x: np.ndarray) -> np.ndarray:
            return evaluator.actions(th.as_tensor(np.asarray(x, dtype=np.float32)), 1)[:, 0].cpu().numpy()

        sample_action = predict

    return PolicyAlgo()


def d3rlpy_fqe(model: Any, data: Any, gamma: float, env_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """
    d3rlpy's FQE on a run's data (``benchmarks.ope_checkpoints.RunData``), ``args.fqe_steps`` steps: its values
    at the dataset's episode starts (an estimate with its bootstrap interval) and at the rollouts' start states.
    """
    import d3rlpy

    env = gym.make(env_id)
    observation_space, action_space = env.observation_space, env.action_space
    env.close()
    if data.mdp_dataset is None:
        data.mdp_dataset = to_mdp_dataset(data.transitions, action_space)[0]
    config = d3rlpy.ope.FQEConfig(gamma=gamma)
    sample, obs_dim, action_dim = batch_sampler(
        data.transitions, config.batch_size, "buffer", action_space, dataset=data.mdp_dataset
    )
    device = d3rlpy_device(args.device)
    d3rlpy.seed(args.seed)
    algo = foreign_algo(model, observation_space, action_space, device)
    fqe = d3rlpy.ope.FQE(algo=algo, config=config, device=device)
    fqe.create_impl((obs_dim,), action_dim)
    for _ in range(args.fqe_steps):
        fqe.update(sample())

    def values(states: np.ndarray) -> np.ndarray:
        states = states.astype(np.float32)
        return np.asarray(fqe.predict_value(states, algo.predict(states)), dtype=np.float64).reshape(-1)

    initial = values(data.dataset_starts)
    low, high = bootstrap_interval(initial, 0.95, 1000, args.seed)
    estimate = PolicyValueEstimate(float(initial.mean()), low, high, 0.95, initial, gamma)
    return {"dataset": estimate_fields(estimate), "rollout": [float(v) for v in values(data.rollout_starts)]}
