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
    "three": [256, 256, 256],  # LAPO (with LAPO, a list also sets V; its VAE keeps 3 x 256), CQL
    "calql": {"pi": [256, 256], "qf": [256, 256, 256, 256]},  # Cal-QL's AntMaze script
}


def convert_offline_params(params: dict[str, Any], her_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    Raw Optuna parameters -> constructor keyword arguments.

    :param params: a trial's ``params`` (``one_minus_gamma``, ``batch_size_pow``, ``net_arch`` name,
        HER's ``n_sampled_goal`` and ``goal_selection_strategy``, CQL's ``lagrange`` (``False``:
        ``target_action_gap=None``); the rest is passed through)
    :param her_kwargs: the entry's ``replay_buffer_kwargs``, updated with the HER parameters
    :return: the hyper-parameters
    """
    hyperparams = dict(params)
    if "one_minus_gamma" in hyperparams:
        hyperparams["gamma"] = 1.0 - hyperparams.pop("one_minus_gamma")
    if "batch_size_pow" in hyperparams:
        hyperparams["batch_size"] = 2 ** hyperparams.pop("batch_size_pow")
    if not hyperparams.pop("lagrange", True):
        hyperparams["target_action_gap"] = None  # CQL's and Cal-QL's weight without Lagrange tuning
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
    AWAC (rlkit: lr 3e-4 for both, beta 2, policy weight decay 1e-4, batch 128 offline, 4 x 256 / 2 x 256):
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


def sample_iql_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    IQL (authors: lr 3e-4 for all, expectile 0.7 / 0.9 AntMaze, temperature 3 / 10 AntMaze, batch 256,
    256-256): the critics' and value's learning rate, the actor's, ``expectile``, ``temperature``, and the
    shared ones. ``reward_transform`` and the actor's cosine decay stay the entry's.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("expectile", 0.5, 0.95)
    trial.suggest_float("temperature", 0.3, 10.0, log=True)
    _sample_common(trial, ["small", "medium", "big"], (6, 10))
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


def sample_lapo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    LAPO (authors' main_d4rl.py: lr 2e-4 for the CVAE, the latent policy and the critics, expectile 0.9,
    kl weight 1, max latent action 2, doubleq_min 1, batch 512, 3 x 256): the three learning rates,
    ``expectile``, ``kl_weight``, ``max_latent_action``, ``doubleq_min``, the weighting (``"exp"``: then its
    ``temperature``), and the shared ones.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("vae_learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("kl_weight", 0.1, 2.0, log=True)
    trial.suggest_float("max_latent_action", 0.5, 3.0)
    trial.suggest_float("doubleq_min", 0.5, 1.0)
    if trial.suggest_categorical("weighting", ["expectile", "exp"]) == "expectile":
        trial.suggest_float("expectile", 0.6, 0.97)
    else:
        trial.suggest_float("temperature", 0.1, 10.0, log=True)
    _sample_common(trial, ["small", "medium", "three"], (7, 10))
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


def sample_td3bc_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    TD3+BC (authors: lr 3e-4 for both, alpha 2.5, policy delay 2, batch 256, 256-256): both learning
    rates, ``alpha`` (weight of the Q term against the BC term),
    ``policy_delay``, and the shared ones.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    trial.suggest_float("learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("alpha", 0.5, 10.0, log=True)
    trial.suggest_int("policy_delay", 1, 3)
    _sample_common(trial, ["small", "medium", "big"], (6, 10))
    return _finish(trial, additional_args)


def _sample_cql(trial: optuna.Trial, net_arch: list[str]) -> None:
    trial.suggest_float("learning_rate", 3e-5, 3e-3, log=True)
    trial.suggest_float("actor_learning_rate", 1e-5, 1e-3, log=True)
    trial.suggest_float("alpha_cql", 0.5, 20.0, log=True)
    if trial.suggest_categorical("lagrange", [False, True]):
        trial.suggest_float("target_action_gap", 0.1, 10.0, log=True)
    trial.suggest_categorical("max_q_backup", [False, True])
    _sample_common(trial, net_arch, (6, 10))


def sample_cql_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    CQL (authors: critic lr 3e-4, policy lr 1e-4 or 3e-5 (CORL), alpha_cql 5 or 10, Lagrange off on MuJoCo and
    on for AntMaze, no max backup, batch 256, 3 x 256): both learning rates, ``alpha_cql``, Lagrange tuning
    or not (then ``target_action_gap``), ``max_q_backup``, and the shared ones. ``bc_steps`` stays the entry's.

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    _sample_cql(trial, ["small", "medium", "three"])
    return _finish(trial, additional_args)


def sample_calql_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Cal-QL (authors: CQL's, with Lagrange tuning towards a gap of 0.8 and a max backup, policy 2 x 256 and
    critics 4 x 256): as :func:`sample_cql_params`, and the dataset's share of each online batch
    (``offline_fraction``, the authors' ``mixing_ratio`` 0.5).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused)
    :param n_envs: number of envs (unused)
    :param additional_args: rl-zoo3's ``using_her_replay_buffer`` and ``her_kwargs``
    :return: the hyper-parameters of this trial
    """
    _sample_cql(trial, ["small", "medium", "calql"])
    trial.suggest_float("offline_fraction", 0.1, 0.9)
    return _finish(trial, additional_args)


#: Added to ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` by :func:`sb3_offline.zoo.register`.
HYPERPARAMS_SAMPLER = {
    "awac": sample_awac_params,
    "batch_ddpg": sample_batch_ddpg_params,
    "bc": sample_bc_params,
    "bcq": sample_bcq_params,
    "calql": sample_calql_params,
    "cql": sample_cql_params,
    "iql": sample_iql_params,
    "lapo": sample_lapo_params,
    "plas": sample_plas_params,
    "td3bc": sample_td3bc_params,
}
#: Added to ``rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER`` (``--trial-id`` reads a trial back).
HYPERPARAMS_CONVERTER = dict.fromkeys(HYPERPARAMS_SAMPLER, convert_offline_params)
