"""
Optuna samplers of our algorithms' hyper-parameters, in rl-zoo3's format (``HYPERPARAMS_SAMPLER``:
``sampler(trial, n_actions, n_envs, additional_args) -> hyperparams``; ``HYPERPARAMS_CONVERTER``:
a finished trial's ``params`` -> the same hyperparams, for ``--trial-id``).

Each sampler suggests its raw parameters and returns ``convert_offline_params(trial.params)``, so a
trial trains with exactly what the converter gives back later. Shared by all four: ``gamma`` (as
``1 - gamma``, log scale), ``batch_size`` (a power of two), ``tau`` and the network size (a list sets the
actor and the critics; the VAE keeps its 750-750 default). ``policy_kwargs`` of a trial replaces the
entry's. Online ``HerReplayBuffer`` entries also sample HER's goal strategy and number of goals.
The ranges are centred on each paper's values (see each class's docstring).
"""

from __future__ import annotations

from typing import Any

import optuna

#: Network sizes the samplers choose among: a list sets the actor and the critics, a dict sets each.
NET_ARCH: dict[str, list[int] | dict[str, list[int]]] = {
    "small": [64, 64],
    "medium": [256, 256],
    "big": [400, 300],  # BCQ, PLAS and the BCQ paper's DDPG
    "awac": {"pi": [256, 256, 256, 256], "qf": [256, 256]},  # AWAC (rlkit)
}


def convert_offline_params(params: dict[str, Any], her_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    Raw Optuna parameters -> constructor keyword arguments.

    :param params: a trial's ``params`` (``one_minus_gamma``, ``batch_size_pow``, ``net_arch`` name,
        HER's ``n_sampled_goal`` and ``goal_selection_strategy``; the rest is passed through)
    :param her_kwargs: the entry's ``replay_buffer_kwargs``, updated with the HER parameters
    :return: the hyper-parameters
    """
    hyperparams = dict(params)
    if "one_minus_gamma" in hyperparams:
        hyperparams["gamma"] = 1.0 - hyperparams.pop("one_minus_gamma")
    if "batch_size_pow" in hyperparams:
        hyperparams["batch_size"] = 2 ** hyperparams.pop("batch_size_pow")
    if "net_arch" in hyperparams:
        name = hyperparams.pop("net_arch")
        if name not in NET_ARCH:
            raise ValueError(f"net_arch: expected one of {sorted(NET_ARCH)}, found {name!r}")
        hyperparams["policy_kwargs"] = {"net_arch": NET_ARCH[name]}
    her = {key: hyperparams.pop(key) for key in ("n_sampled_goal", "goal_selection_strategy") if key in hyperparams}
    if her:
        hyperparams["replay_buffer_kwargs"] = {**(her_kwargs or {}), **her}
    return hyperparams


def _sample_common(trial: optuna.Trial, net_arch: list[str], batch_size_pows: tuple[int, int]) -> None:
    trial.suggest_float("one_minus_gamma", 1e-4, 0.03, log=True)
    trial.suggest_int("batch_size_pow", *batch_size_pows)
    trial.suggest_float("tau", 1e-3, 0.05, log=True)
    trial.suggest_categorical("net_arch", net_arch)


def _finish(trial: optuna.Trial, additional_args: dict[str, Any]) -> dict[str, Any]:
    if additional_args.get("using_her_replay_buffer"):
        trial.suggest_int("n_sampled_goal", 1, 5)
        trial.suggest_categorical("goal_selection_strategy", ["final", "episode", "future"])
    return convert_offline_params(trial.params, additional_args.get("her_kwargs"))


def sample_bcq_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    BCQ (paper: lr 1e-3, batch 100, tau 0.005, lambda 0.75, Phi 0.05, 400-300): learning rate,
    ``lmbda`` (weight of the minimum in the target), ``phi`` (perturbation bound), and the shared ones.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)
    trial.suggest_float("lmbda", 0.5, 1.0)
    trial.suggest_float("phi", 0.01, 0.5, log=True)
    _sample_common(trial, ["small", "medium", "big"], (6, 10))
    return _finish(trial, additional_args)


def sample_awac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    AWAC (rlkit: lr 3e-4 for both, beta 2, policy weight decay 1e-4, batch 1024, 4 x 256 / 2 x 256):
    critic and actor learning rates, ``beta`` (advantage temperature), actor weight decay, and the shared ones.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("beta", 0.1, 10.0, log=True)
    trial.suggest_float("actor_weight_decay", 1e-6, 1e-2, log=True)
    _sample_common(trial, ["medium", "big", "awac"], (6, 11))
    return _finish(trial, additional_args)


def sample_plas_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    PLAS (authors: critic lr 1e-3, actor lr 1e-4, VAE lr 1e-4, max latent action 2, lambda 0.75,
    batch 100, 400-300): the three learning rates, ``max_latent_action``, ``lmbda``, PLAS-P or not
    (``perturbation``, then its ``phi``), and the shared ones. ``vae_steps`` stays the entry's.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 1e-5, 1e-3, log=True)
    trial.suggest_float("vae_learning_rate", 1e-5, 1e-3, log=True)
    trial.suggest_float("max_latent_action", 0.5, 3.0)
    trial.suggest_float("lmbda", 0.5, 1.0)
    if trial.suggest_categorical("perturbation", [False, True]):
        trial.suggest_float("phi", 0.01, 0.5, log=True)
    _sample_common(trial, ["small", "medium", "big"], (6, 10))
    return _finish(trial, additional_args)


def sample_batch_ddpg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    BatchDDPG (BCQ authors' DDPG: critic lr 1e-3 with weight decay 1e-2, actor lr 1e-4, batch 100,
    400-300): both learning rates, the critic's weight decay, and the shared ones.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 1e-5, 1e-3, log=True)
    trial.suggest_float("critic_weight_decay", 1e-5, 1e-1, log=True)
    _sample_common(trial, ["small", "medium", "big"], (6, 10))
    return _finish(trial, additional_args)


def sample_bc_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    BC (the BCQ paper's baseline: 400-300 actor, Adam lr 1e-3, batch 100): the learning rate, the
    batch size and the network size (``gamma`` and ``tau`` play no part in its loss).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True)
    trial.suggest_int("batch_size_pow", 6, 10)
    trial.suggest_categorical("net_arch", ["small", "medium", "big"])
    return _finish(trial, additional_args)


#: Added to ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` by :func:`sb3_offline.zoo.register`.
HYPERPARAMS_SAMPLER = {
    "awac": sample_awac_params,
    "batch_ddpg": sample_batch_ddpg_params,
    "bc": sample_bc_params,
    "bcq": sample_bcq_params,
    "plas": sample_plas_params,
}
#: Added to ``rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER`` (``--trial-id`` reads a trial back).
HYPERPARAMS_CONVERTER = dict.fromkeys(HYPERPARAMS_SAMPLER, convert_offline_params)
