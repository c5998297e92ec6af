"""
Optuna samplers of our algorithms' hyper-parameters, in rl-zoo3's format (``HYPERPARAMS_SAMPLER``:
``sampler(trial, n_actions, n_envs, additional_args) -> hyperparams``; ``HYPERPARAMS_CONVERTER``:
a finished trial's ``params`` -> the same hyperparams, for ``--trial-id``).

Every sampler has rl-zoo3's signature ``sample_<algo>_params(trial, n_actions, n_envs, additional_args)``
(``trial``: the Optuna trial; ``n_actions`` and ``n_envs``: unused; ``additional_args``: rl-zoo3's
``using_her_replay_buffer`` and ``her_kwargs``) and returns the trial's hyper-parameters. It suggests its raw
parameters and returns ``convert_offline_params(trial.params)``, so a trial trains with exactly what the
converter gives back later. Shared by all but BC: ``gamma`` (as ``1 - gamma``, log scale), ``batch_size`` (a
power of two), ``tau`` and the network size (a list sets the actor and the critics; the VAE keeps its 750-750
default); BC searches the batch size and the network size only. ``policy_kwargs`` of a trial replaces the
entry's. Online ``HerReplayBuffer`` entries also sample HER's goal strategy and number of goals. The ranges are
centred on each paper's values (see each sampler's docstring).
"""

from __future__ import annotations

from typing import Any, NamedTuple

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


class Range(NamedTuple):
    """The interval an Optuna float parameter is drawn from (``log``: uniformly in its logarithm)."""

    low: float
    high: float
    log: bool = False


def _log(low: float, high: float) -> Range:
    return Range(low, high, log=True)


#: Learning-rate intervals the samplers share.
LR, WIDE_LR, LOW_LR = _log(1e-4, 3e-3), _log(3e-5, 3e-3), _log(1e-5, 1e-3)
#: The network sizes most samplers choose among.
NET_SIZES = ["small", "medium", "big"]


def _suggest(trial: optuna.Trial, **ranges: Range) -> None:
    """``trial.suggest_float`` for each ``name=Range(...)``, in order."""
    for name, (low, high, log) in ranges.items():
        trial.suggest_float(name, low, high, log=log)


def _finish(
    trial: optuna.Trial,
    additional_args: dict[str, Any],
    net_arch: list[str] | None = None,
    batch_size_pows: tuple[int, int] = (6, 10),
    **after: Range,
) -> dict[str, Any]:
    """
    The shared parameters (none for ``net_arch=None``), the ``after`` ones, HER's for a ``HerReplayBuffer``
    entry, then the trial's hyper-parameters (:func:`convert_offline_params`).
    """
    if net_arch is not None:
        _suggest(trial, one_minus_gamma=_log(1e-4, 0.03))
        trial.suggest_int("batch_size_pow", *batch_size_pows)
        _suggest(trial, tau=_log(1e-3, 0.05))
        trial.suggest_categorical("net_arch", net_arch)
    _suggest(trial, **after)
    if additional_args.get("using_her_replay_buffer"):
        trial.suggest_int("n_sampled_goal", 1, 5)
        trial.suggest_categorical("goal_selection_strategy", ["final", "episode", "future"])
    return convert_offline_params(trial.params, additional_args.get("her_kwargs"))


def sample_bcq_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    BCQ (paper: lr 1e-3, batch 100, tau 0.005, lambda 0.75, Phi 0.05, 400-300): learning rate,
    ``lmbda`` (weight of the minimum in the target), ``phi`` (perturbation bound), and the shared ones.
    """
    _suggest(trial, learning_rate=LR, lmbda=Range(0.5, 1.0), phi=_log(0.01, 0.5))
    return _finish(trial, additional_args, NET_SIZES)


def sample_awac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    AWAC (rlkit: lr 3e-4 for both, beta 2, policy weight decay 1e-4, batch 128 offline, 4 x 256 / 2 x 256):
    critic and actor learning rates, ``beta`` (advantage temperature), actor weight decay, and the shared ones.
    """
    _suggest(trial, learning_rate=WIDE_LR, actor_learning_rate=WIDE_LR, beta=_log(0.1, 10.0))
    _suggest(trial, actor_weight_decay=_log(1e-6, 1e-2))
    return _finish(trial, additional_args, ["medium", "big", "awac"], (6, 11))


def sample_iql_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    IQL (authors: lr 3e-4 for all, expectile 0.7 / 0.9 AntMaze, temperature 3 / 10 AntMaze, batch 256,
    256-256): the critics' and value's learning rate, the actor's, ``expectile``, ``temperature``, and the
    shared ones. ``reward_transform`` and the actor's cosine decay stay the entry's.
    """
    _suggest(trial, learning_rate=WIDE_LR, actor_learning_rate=WIDE_LR, expectile=Range(0.5, 0.95))
    _suggest(trial, temperature=_log(0.3, 10.0))
    return _finish(trial, additional_args, NET_SIZES)


def sample_plas_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    PLAS (authors: critic lr 1e-3, actor lr 1e-4, VAE lr 1e-4, max latent action 2, lambda 0.75,
    batch 100, 400-300): the three learning rates, ``max_latent_action``, ``lmbda``, PLAS-P or not
    (``perturbation``, then its ``phi``), and the shared ones. ``vae_steps`` stays the entry's.
    """
    _suggest(trial, learning_rate=LR, actor_learning_rate=LOW_LR, vae_learning_rate=LOW_LR)
    _suggest(trial, max_latent_action=Range(0.5, 3.0), lmbda=Range(0.5, 1.0))
    if trial.suggest_categorical("perturbation", [False, True]):
        _suggest(trial, phi=_log(0.01, 0.5))
    return _finish(trial, additional_args, NET_SIZES)


def sample_lapo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    LAPO (authors' main_d4rl.py: lr 2e-4 for the CVAE, the latent policy and the critics, expectile 0.9,
    kl weight 1, max latent action 2, doubleq_min 1, batch 512, 3 x 256): the three learning rates,
    ``expectile``, ``kl_weight``, ``max_latent_action``, ``doubleq_min``, the weighting (``"exp"``: then its
    ``temperature``), and the shared ones.
    """
    _suggest(trial, learning_rate=WIDE_LR, actor_learning_rate=WIDE_LR, vae_learning_rate=WIDE_LR)
    _suggest(trial, kl_weight=_log(0.1, 2.0), max_latent_action=Range(0.5, 3.0), doubleq_min=Range(0.5, 1.0))
    if trial.suggest_categorical("weighting", ["expectile", "exp"]) == "expectile":
        _suggest(trial, expectile=Range(0.6, 0.97))
    else:
        _suggest(trial, temperature=_log(0.1, 10.0))
    return _finish(trial, additional_args, ["small", "medium", "three"], (7, 10))


def sample_batch_ddpg_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    BatchDDPG (BCQ authors' DDPG: critic lr 1e-3 with weight decay 1e-2, actor lr 1e-4, batch 100,
    400-300): both learning rates, the critic's weight decay, and the shared ones.
    """
    _suggest(trial, learning_rate=LR, actor_learning_rate=LOW_LR, critic_weight_decay=_log(1e-5, 1e-1))
    return _finish(trial, additional_args, NET_SIZES)


def sample_bc_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    BC (the BCQ paper's baseline: 400-300 actor, Adam lr 1e-3, batch 100): the learning rate, the
    batch size and the network size (``gamma`` and ``tau`` play no part in its loss).
    """
    _suggest(trial, learning_rate=LR)
    trial.suggest_int("batch_size_pow", 6, 10)
    trial.suggest_categorical("net_arch", NET_SIZES)
    return _finish(trial, additional_args)


def sample_td3bc_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    TD3+BC (authors: lr 3e-4 for both, alpha 2.5, policy delay 2, batch 256, 256-256): both learning
    rates, ``alpha`` (weight of the Q term against the BC term), ``policy_delay``, and the shared ones.
    """
    _suggest(trial, learning_rate=WIDE_LR, actor_learning_rate=WIDE_LR, alpha=_log(0.5, 10.0))
    trial.suggest_int("policy_delay", 1, 3)
    return _finish(trial, additional_args, NET_SIZES)


def sample_rebrac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    ReBRAC (authors: lr 1e-3 for both on MuJoCo, 3e-4 / 5e-5 elsewhere, beta_actor and beta_critic per dataset in
    0.0005-0.5, batch 1024 or 256, 3 x 256): both learning rates, both penalties' weights, and the shared ones.
    """
    _suggest(trial, learning_rate=WIDE_LR, actor_learning_rate=WIDE_LR)
    _suggest(trial, actor_bc_coef=_log(1e-4, 1.0), critic_bc_coef=_log(1e-4, 1.0))
    return _finish(trial, additional_args, ["medium", "three"], batch_size_pows=(8, 10))


def _suggest_cql(trial: optuna.Trial) -> None:
    """CQL's and Cal-QL's own parameters: both learning rates, ``alpha_cql``, Lagrange tuning, ``max_q_backup``."""
    _suggest(trial, learning_rate=WIDE_LR, actor_learning_rate=LOW_LR, alpha_cql=_log(0.5, 20.0))
    if trial.suggest_categorical("lagrange", [False, True]):
        _suggest(trial, target_action_gap=_log(0.1, 10.0))
    trial.suggest_categorical("max_q_backup", [False, True])


def sample_cql_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    CQL (authors: critic lr 3e-4, policy lr 1e-4 or 3e-5 (CORL), alpha_cql 5 or 10, Lagrange off on MuJoCo and
    on for AntMaze, no max backup, batch 256, 3 x 256): both learning rates, ``alpha_cql``, Lagrange tuning
    or not (then ``target_action_gap``), ``max_q_backup``, and the shared ones. ``bc_steps`` stays the entry's.
    """
    _suggest_cql(trial)
    return _finish(trial, additional_args, ["small", "medium", "three"])


def sample_calql_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    Cal-QL (authors: CQL's, with Lagrange tuning towards a gap of 0.8 and a max backup, policy 2 x 256 and
    critics 4 x 256): as :func:`sample_cql_params`, and the dataset's share of each online batch
    (``offline_fraction``, the authors' ``mixing_ratio`` 0.5).
    """
    _suggest_cql(trial)
    return _finish(trial, additional_args, ["small", "medium", "calql"], offline_fraction=Range(0.1, 0.9))


def sample_discrete_bc_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """
    DiscreteBC (d3rlpy: lr 1e-3, batch 100, beta 0.5, 256-256): the learning rate, ``beta`` (the logits'
    penalty), the batch size and the network size (``gamma`` and ``tau`` play no part in its loss).
    """
    _suggest(trial, learning_rate=LR, beta=_log(0.01, 2.0))
    trial.suggest_int("batch_size_pow", 6, 10)
    trial.suggest_categorical("net_arch", NET_SIZES)
    return _finish(trial, additional_args)


def sample_discrete_bcq_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """
    DiscreteBCQ (authors, non-Atari: lr 3e-4, threshold 0.3, batch 64, tau 0.005, 256-256): the learning rate,
    ``threshold`` (the generative model's), and the shared ones.
    """
    _suggest(trial, learning_rate=LR, threshold=Range(0.05, 0.9))
    return _finish(trial, additional_args, NET_SIZES)


def sample_discrete_cql_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """
    DiscreteCQL (d3rlpy: lr 6.25e-5, alpha 1, target copied every 8000 steps, batch 32, 256-256; the CQL authors'
    QR-DQN: lr 5e-5, alpha 1 or 4, every 2000): the learning rate, ``alpha``, the target's interval, ``gamma``, the
    batch size and the network size. ``base`` and ``tau`` (1: a copy) stay the entry's.
    """
    _suggest(trial, learning_rate=_log(1e-5, 1e-3), alpha=_log(0.1, 10.0), one_minus_gamma=_log(1e-4, 0.03))
    trial.suggest_categorical("target_update_interval", [1000, 2000, 4000, 8000])
    trial.suggest_int("batch_size_pow", 5, 9)
    trial.suggest_categorical("net_arch", NET_SIZES)
    return _finish(trial, additional_args)


def sample_discrete_iql_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """DiscreteIQL (IQL's authors' settings): as :func:`sample_iql_params`."""
    return sample_iql_params(trial, n_actions, n_envs, additional_args)


def sample_sac_n_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    SAC-N (EDAC authors: lr 3e-4 for both, N 10 to 500 by dataset, batch 256, 3 x 256): both learning rates, the
    ensemble's size ``n_critics``, and the shared ones.
    """
    _suggest(trial, learning_rate=LR, actor_learning_rate=LR)
    trial.suggest_int("n_critics", 2, 50, log=True)
    return _finish(trial, additional_args, [*NET_SIZES, "three"])


def sample_edac_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    EDAC (authors: lr 3e-4 for both, N 10 to 50 and eta 0 to 1000 by dataset, batch 256, 3 x 256): as
    :func:`sample_sac_n_params`, and ``eta`` (weight of the ensemble diversity term).
    """
    _suggest(trial, learning_rate=LR, actor_learning_rate=LR, eta=_log(0.1, 1000.0))
    trial.suggest_int("n_critics", 2, 50, log=True)
    return _finish(trial, additional_args, [*NET_SIZES, "three"])


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
    "rebrac": sample_rebrac_params,
    "td3bc": sample_td3bc_params,
    "discrete_bc": sample_discrete_bc_params,
    "discrete_bcq": sample_discrete_bcq_params,
    "discrete_cql": sample_discrete_cql_params,
    "discrete_iql": sample_discrete_iql_params,
    "sac_n": sample_sac_n_params,
    "edac": sample_edac_params,
}
#: Added to ``rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER`` (``--trial-id`` reads a trial back).
HYPERPARAMS_CONVERTER = dict.fromkeys(HYPERPARAMS_SAMPLER, convert_offline_params)
