"""
An optional bridge to d3rlpy (https://github.com/takuseno/d3rlpy, written against 2.8.1): its BCQ, AWAC,
PLAS, IQL, TD3+BC, CQL and Cal-QL built with *our* defaults, for the benchmarks' side-by-side rows and
columns. d3rlpy is imported lazily and is never a dependency of sb3-offline; :func:`d3rlpy_available` says
whether it can be used.

Every hyperparameter is read from our own constructors at run time (``inspect.signature`` of
``ALGOS[algo].__init__`` and the policy's ``default_net_arch``), so the two sides cannot drift apart:

- BCQ: perturbation model and critics 400-300, VAE 750-750, latent ``2 * action_dim``, Adam lr 1e-3 for
  all three, batch 100, tau 0.005, gamma 0.99, lambda 0.75, Phi 0.05, KL weight 0.5, 10 target samples;
- AWAC: actor 4 x 256, critics 2 x 256, Adam lr 3e-4 (actor weight decay 1e-4), batch 128 (rlkit's offline
  batch), tau 0.005, gamma 0.99, temperature 2 (d3rlpy's ``lam``), one policy sample for ``V(s)``;
- PLAS: latent policy and critics 400-300, VAE 750-750, lr critic 1e-3, actor 1e-4, VAE 1e-4, batch 100,
  tau 0.005, gamma 0.99, lambda 0.75, KL weight 0.5, max latent action 2; ``warmup_steps`` = our
  ``vae_steps`` (VAE pre-training, then the policy phase);
- IQL: actor, critics and value 256-256, Adam lr 3e-4 for all, batch 256, tau 0.005, gamma 0.99, expectile
  0.7, temperature 3 (d3rlpy's ``weight_temp``), weight clip 100 (``max_weight``); the actor's learning rate
  on a cosine decay over ``actor_lr_decay_steps`` (d3rlpy: ``CosineAnnealingLRFactory(T_max=...)`` on the
  actor's Adam); our ``reward_transform`` resolved on the same data and given to d3rlpy as its
  ``reward_scaler`` (``ConstantShiftRewardScaler(shift, multiplier=scale, multiply_first=True)``: d3rlpy
  transforms no rewards by default);
- TD3+BC (d3rlpy's ``TD3PlusBC``): actor and critics 256-256, Adam lr 3e-4 for both, batch 256, tau 0.005,
  gamma 0.99, alpha 2.5, target smoothing noise 0.2 clipped at 0.5 (``target_smoothing_sigma``/``_clip``),
  actor and targets every 2 updates (``update_actor_interval``); our state normalisation
  ``(s - mean) / (std + 1e-3)`` with the dataset's statistics given to d3rlpy as its ``observation_scaler``
  (``StandardObservationScaler(mean, std, eps=1e-3)``, the same formula: d3rlpy normalises no
  observations by default).
- CQL (``CQLConfig``) and Cal-QL (``CalQLConfig``): policy and critics at our sizes (CQL 3 x 256; Cal-QL
  policy 2 x 256, critics 4 x 256), critic lr 3e-4, actor lr 1e-4 and the temperature's (our entropy
  coefficient's) lr the actor's, initial temperature 1, ``conservative_weight`` = ``alpha_cql`` 5,
  ``n_action_samples`` = ``n_actions`` 10, no soft backup (no entropy in the target), ``max_q_backup`` ours
  (CQL off, Cal-QL on), batch 256, tau 0.005, gamma 0.99. The Lagrange multiplier: with our
  ``target_action_gap`` set (Cal-QL's 0.8), ``alpha_threshold`` = it, ``alpha_learning_rate`` = the critic lr
  and ``initial_alpha`` ours (Cal-QL: e); without it (CQL), ``alpha_learning_rate=0`` (d3rlpy then keeps
  ``alpha`` fixed), ``initial_alpha=1`` and ``alpha_threshold=0``, so its loss ``1 * weight * (gap - 0)`` is ours.
  d3rlpy's conservative loss is our form ``alpha' * weight * (gap - threshold)``, summed over the critics.

Where d3rlpy's algorithms necessarily differ from ours (none of these can be set through its configs):

- BCQ: one ``n_action_samples`` serves both the target (our ``target_action_samples``, 10) and acting (our
  ``action_samples``, 100); d3rlpy's default is 100 for both, i.e. 10x our target work in every update. We set it to
  **10** (our target), so an update does the same work as ours, and :class:`~benchmarks.d3rlpy_runs.D3rlpyPolicy`
  switches it to **100** while acting by setting the private ``impl._n_action_samples`` (acting matches ours too;
  pass ``bcq_acting_samples`` to change that). d3rlpy's perturbation-model loss back-propagates through the VAE
  decoder (the decoded actions are not detached; only the actor's optimizer steps, so the result is the same, but
  the backward pass is longer); ours decodes under ``no_grad``. d3rlpy's VAE loss (``compute_vae_error``: MSE plus
  ``beta`` times the KL averaged over batch and latent dimensions, as ours) is on [-1, 1] actions; ours, as the
  authors', in the env's units: on a Box with bound ``b`` ours equals d3rlpy's times ``b^2`` with
  ``kl_weight = 0.5 * b^2`` (Pendulum: 2, the benchmarks' variant ``bcq_kl2``), the same on MuJoCo (bound 1).
- AWAC: both Gaussian actors have a ``tanh`` mean (the log-likelihood is of an unsquashed Normal around
  ``tanh(mu)``, as rlkit's); d3rlpy's critic target is SAC's,
  with ``a' ~ tanh(Normal)`` and an entropy term at a fixed temperature ``exp(0) = 1`` (ours: no entropy
  term, ``a'`` a clipped sample); d3rlpy's actor loss is a *sum* over the batch (ours a mean), so with Adam
  the same ``weight_decay=1e-4`` weighs ~``batch_size`` times less there; d3rlpy's ``V(s)`` sample is not
  clipped to [-1, 1]; d3rlpy's ``V(s)`` comes from the critics after their update (ours, as rlkit, before). Its
  networks have PyTorch's initialisation (ours rlkit's, as the authors': hidden weights in
  ``+-1/sqrt(out_features)``, biases 0, last layer in ``+-1e-3`` on the actor, ``+-3e-3`` on the critics). Of
  these, the initialisation is what separates the two on Pendulum ``imitation`` (``benchmarks/d3rlpy_variants.py``
  and RESULTS.md); the policy ``benchmarks.variants.AWACPyTorchInitPolicy`` gives d3rlpy's.
- PLAS: d3rlpy 2.8.1's VAE decoder has **no** ``tanh`` (``VAEDecoder.forward`` in
  ``models/torch/imitators.py`` returns the raw linear output when ``with_squash=True``, the default every
  PLAS call uses: the flag is inverted), so its reconstructions, target actions and acted actions are
  unbounded (the bridge clips what it acts with); ours and the authors' end in ``tanh``. Its target latent
  policy starts as an independent random network (``PLASImpl`` derives from ``DDPGBaseImpl``, which copies
  only the critics into their targets); ours and the authors' start it as a copy. With both patched,
  ``python -m benchmarks.parity plas --reference <d3rlpy checkout>`` finds every loss, gradient and parameter of
  both phases equal to ~1e-7 on Hopper-sized data with bounds [-1, 1]. Also: d3rlpy builds the VAE's optimizer from
  ``critic_optim_factory`` (both plain Adam here: no effect); it never freezes the VAE but stops stepping it
  after ``warmup_steps`` (ours sets ``requires_grad=False``: a shorter backward pass); its VAE loss is on
  [-1, 1] actions (the bridge rescales), ours in the env's units as the authors' (differs where bounds != 1).
- IQL: d3rlpy steps the critics and ``V`` together, with one optimizer (``critic_learning_rate``; ours: one
  each, the same rate), and first: its Q target ``r + gamma * V(s')`` uses ``V`` *before* this step's update
  (ours, as the authors, after); its actor then uses the new ``V``, as ours. Its actor's ``log sigma`` is a
  sigmoid of a parameter into [-5, 2] (starts at -1.5; ours: the authors' clipped parameter, starts at 0);
  its networks have PyTorch's initialisation (ours the authors': orthogonal with gain ``sqrt(2)``, biases 0;
  before 2026-12-03 rlkit's on the actor, which is what separated the two on Pendulum ``imitation``). Past
  ``T_max``, PyTorch's ``CosineAnnealingLR`` climbs back up (ours stays at 0).
- TD3+BC: d3rlpy's BC term ``mean (a - pi(s))^2`` is taken on the [-1, 1] actions it sees; ours, as the
  authors', in the env's units: the same on a Box with bound 1 (MuJoCo), a quarter of ours on Pendulum
  (bound 2), i.e. a 4x larger weight on the Q term there. d3rlpy counts its updates from 0 and updates the
  actor and the targets on the 1st, 3rd, ... (ours, as the authors, on the 2nd, 4th, ...); it puts the
  critics in eval mode for the actor's loss (no effect on these MLPs).
- CQL and Cal-QL: d3rlpy's target (without ``max_q_backup``) takes the policy's *mean* action at ``s'``
  (``squashed_mu``); ours a sample, as the authors. d3rlpy has no behaviour-cloning warm-up (our ``bc_steps``:
  the benchmarks' rows run both without it). Its temperature loss is ``-exp(log t) * (log pi - |A|)``, a
  gradient ``exp(log t)`` times ours (SB3's and the authors' ``-log alpha * (log pi + target)``). Its update
  steps the critics first, then the temperature and the actor on the updated critics, and its critics use the
  Lagrange multiplier after that step's update; ours computes every loss from the networks at the start of
  the step (Cal-QL's JAX code, CORL). Networks: d3rlpy's default initialisation, ours SB3's.
- Cal-QL: d3rlpy computes each sampled transition's return-to-go in a Python loop over the rest of its
  episode (``TorchMiniBatch.from_batch``); ours are read from the buffer's cached tensor on the device. So
  its Cal-QL needs ``sampling="buffer"`` (the ``"arrays"`` batches carry no episodes). Both stop the sum at the
  episode's end, termination or timeout.
- Data and sampling: d3rlpy keeps episodes of observations and takes ``s'`` from the next row;
  :func:`~benchmarks.d3rlpy_runs.to_mdp_dataset` cuts an episode wherever our ``next_observations`` differ from the
  next row and appends the true final ``s'`` of every episode that does not terminate, so nothing is lost. Batches
  come from ``ReplayBuffer.sample_transition_batch`` (what ``fit`` uses: a Python loop over the batch on the host),
  are copied to the device, and every update turns its losses into Python floats (a device sync).
- ReBRAC (``ReBRACConfig``): actor and critics 3 x 256, LayerNorm after each hidden ReLU of the critics
  (``VectorEncoderFactory(use_layer_norm=True)``, the same order), Adam lr 1e-3 for both, batch 1024, tau 0.005,
  gamma 0.99, ``actor_beta``/``critic_beta`` our ``actor_bc_coef``/``critic_bc_coef``, target smoothing 0.2 clipped
  at 0.5, actor and targets every 2 updates; d3rlpy keeps PyTorch's initialisation and LayerNorm epsilon (ours:
  the authors', flax's 1e-6) and moves the actor's target after the actor's step (the authors: before).
- Actions: d3rlpy's policies are ``tanh``-bounded, so actions are rescaled to [-1, 1] with the env's
  ``Box`` bounds (as our replay buffer does) before d3rlpy sees them and scaled back when acting.
- Observations: flat ``Box`` only (no ``Dict`` observations, no features extractor).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

#: our algorithms with a d3rlpy counterpart here (``d3rlpy_runs.measure_d3rlpy_updates`` also takes "plas/vae")
D3RLPY_ALGOS = ("bcq", "awac", "plas", "iql", "td3bc", "cql", "calql", "rebrac")


@functools.cache
def d3rlpy_available() -> bool:
    """
    Whether ``import d3rlpy`` works in this Python (it is imported once, here, and cached). d3rlpy configures
    ``structlog`` globally when imported and prints info lines to stdout (e.g. every dataset's signatures);
    we raise that threshold to warnings so that the benchmarks' tables stay readable.
    """
    try:
        import d3rlpy  # noqa: F401
        import structlog
    except Exception:  # ImportError, or a broken install
        return False
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return True


# ------------------------------------------------------------------------------------------ our defaults
def our_defaults(algo: str) -> dict[str, Any]:
    """The keyword defaults of our algorithm's constructor (``ALGOS[algo].__init__``)."""
    from sb3_offline.algorithms import ALGOS

    parameters = inspect.signature(ALGOS[algo].__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def our_reward_transform(algo: str, transitions: Any) -> Any:
    """
    The reward transform our ``algo`` trains ``transitions`` with by default (its ``reward_transform``
    argument, resolved on the data's episodes as our buffer does), or ``None`` for an algorithm without one.
    """
    reward_transform = our_defaults(algo).get("reward_transform")
    if reward_transform is None:
        return None
    from sb3_offline.buffers import resolve_reward_transform

    ends = np.asarray(transitions.terminations, dtype=bool) | np.asarray(transitions.truncations, dtype=bool)
    return resolve_reward_transform(reward_transform, np.asarray(transitions.rewards, dtype=np.float64), ends)


def our_observation_statistics(algo: str, transitions: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """
    The dataset's observation mean and (population) standard deviation when our ``algo`` normalises
    observations by default (its ``normalize_observations``, TD3+BC), else ``None``.
    """
    if not our_defaults(algo).get("normalize_observations", False):
        return None
    observations = flat_observations(transitions.observations, "observations").astype(np.float64)
    return observations.mean(axis=0), observations.std(axis=0)


def network_sizes(algo: str, net_arch: list[int] | dict[str, list[int]] | None = None) -> dict[str, list[int]]:
    """
    Hidden sizes ``{"pi": ..., "qf": ..., ("vae": ..., "vf": ...)}`` our policy builds for ``net_arch`` (as its
    ``policy_kwargs["net_arch"]``): a dict overrides the keys it names, a list sets ``pi`` and ``qf`` (and IQL's
    value network ``vf``).
    """
    from sb3_offline.algorithms import ALGOS

    policy = ALGOS[algo].policy_aliases["MlpPolicy"]
    sizes = {key: list(value) for key, value in policy.default_net_arch.items()}  # type: ignore[attr-defined]
    if isinstance(net_arch, dict):
        unknown = set(net_arch) - set(sizes)
        if unknown:
            raise ValueError(f"net_arch: expected keys among {sorted(sizes)}, found {sorted(unknown)}")
        sizes.update({key: list(value) for key, value in net_arch.items()})
    elif net_arch is not None:
        sizes["pi"], sizes["qf"] = list(net_arch), list(net_arch)
        if "vf" in sizes:
            sizes["vf"] = list(net_arch)
    return sizes


def small_net_arch(algo: str) -> dict[str, Any]:
    """The ``--small-nets`` sizes of ``benchmarks/batch_settings.py`` (``SMALL_NETS[algo]["net_arch"]``)."""
    from benchmarks.batch_settings import SMALL_NETS

    return SMALL_NETS[algo]["net_arch"]


def d3rlpy_device(device: str) -> str:
    """Our device name (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``) as d3rlpy wants it (``"cpu:0"``, ...)."""
    import torch as th

    if device == "auto":
        device = "cuda" if th.cuda.is_available() else "cpu"
    return device if ":" in device else f"{device}:0"


def make_d3rlpy(
    algo: str,
    device: str = "cpu",
    batch_size: int | None = None,
    net_arch: list[int] | dict[str, list[int]] | None = None,
    plas_vae_steps: int | None = None,
    reward_transform: Any = None,
    observation_statistics: tuple[np.ndarray, np.ndarray] | None = None,
    steps: int | None = None,
) -> Any:
    """
    d3rlpy's algorithm (not built yet) with our defaults.

    :param algo: ``"bcq"``, ``"awac"``, ``"plas"``, ``"iql"``, ``"td3bc"``, ``"cql"`` or ``"calql"``
    :param device: our device name
    :param batch_size: ``None``: our default batch size for ``algo``
    :param net_arch: our ``policy_kwargs["net_arch"]`` (``None``: our defaults)
    :param plas_vae_steps: d3rlpy PLAS's ``warmup_steps`` (``None``: our ``vae_steps`` default)
    :param reward_transform: IQL: our resolved ``sb3_offline.buffers.RewardTransform`` (see
        :func:`our_reward_transform`), given to d3rlpy as its ``reward_scaler``; ``None``: rewards as recorded
    :param observation_statistics: TD3+BC: the dataset's observation ``(mean, std)`` (see
        :func:`our_observation_statistics`), given to d3rlpy as its ``observation_scaler``; required when our
        TD3+BC normalises observations by default
    :param steps: the run's gradient steps: IQL's cosine decay runs over them where ours does
        (``actor_lr_decay_steps="auto"``, the authors' ``max_steps``)
    """
    if not d3rlpy_available():
        raise ImportError("d3rlpy is not importable in this Python (it is no dependency of sb3-offline)")
    from d3rlpy.models.encoders import VectorEncoderFactory

    if algo not in D3RLPY_ALGOS:
        raise ValueError(f"algo: expected one of {D3RLPY_ALGOS}, found {algo!r}")
    ours = our_defaults(algo)
    sizes = network_sizes(algo, net_arch)

    def encoder(key: str) -> VectorEncoderFactory:
        return VectorEncoderFactory(hidden_units=sizes[key])

    common: dict[str, Any] = dict(
        batch_size=batch_size or ours["batch_size"],
        gamma=ours["gamma"],
        tau=ours["tau"],
        n_critics=2,
        actor_encoder_factory=encoder("pi"),
        critic_encoder_factory=encoder("qf"),
    )
    options = dict(
        plas_vae_steps=plas_vae_steps,
        reward_transform=reward_transform,
        observation_statistics=observation_statistics,
        steps=steps,
    )
    config = _CONFIGS[algo](algo, ours, common, encoder, **options)
    return config.create(device=d3rlpy_device(device))


# Each d3rlpy config from our defaults ``ours``, the ``common`` settings and ``encoder(net_arch key)``; the keyword
# options are make_d3rlpy's (each config reads the ones it needs).
def _bcq_config(algo: str, ours: dict, common: dict, encoder: Callable, **_: Any) -> Any:
    import d3rlpy

    lr = float(ours["learning_rate"])
    return d3rlpy.algos.BCQConfig(
        **common,
        actor_learning_rate=lr,
        critic_learning_rate=lr,
        imitator_learning_rate=ours["vae_learning_rate"] or lr,
        imitator_encoder_factory=encoder("vae"),
        lam=ours["lmbda"],
        n_action_samples=ours["target_action_samples"],
        action_flexibility=ours["phi"],
        beta=ours["kl_weight"],
        rl_start_step=0,
    )


def _awac_config(algo: str, ours: dict, common: dict, encoder: Callable, **_: Any) -> Any:
    import d3rlpy
    from d3rlpy.optimizers import AdamFactory

    return d3rlpy.algos.AWACConfig(
        **common,
        actor_learning_rate=ours["actor_learning_rate"],
        critic_learning_rate=float(ours["learning_rate"]),
        actor_optim_factory=AdamFactory(weight_decay=ours["actor_weight_decay"]),
        lam=ours["beta"],
        n_action_samples=1,
    )


def _iql_config(
    algo: str, ours: dict, common: dict, encoder: Callable, reward_transform: Any, steps: int | None, **_: Any
) -> Any:
    import d3rlpy
    from d3rlpy.optimizers import AdamFactory
    from d3rlpy.optimizers.lr_schedulers import CosineAnnealingLRFactory
    from d3rlpy.preprocessing import ConstantShiftRewardScaler

    decay = ours["actor_lr_decay_steps"]
    if decay == "auto":  # ours: over the run, as the authors' max_steps
        if steps is None:
            raise ValueError("steps: IQL's actor_lr_decay_steps='auto' decays over the run; give the run's steps")
        decay = steps
    scaler = None
    if reward_transform is not None and not reward_transform.is_identity:
        scaler = ConstantShiftRewardScaler(
            shift=reward_transform.shift, multiplier=reward_transform.scale, multiply_first=True
        )
    return d3rlpy.algos.IQLConfig(
        **common,
        actor_learning_rate=ours["actor_learning_rate"],
        critic_learning_rate=float(ours["learning_rate"]),
        actor_optim_factory=AdamFactory(lr_scheduler_factory=CosineAnnealingLRFactory(T_max=decay) if decay else None),
        value_encoder_factory=encoder("vf"),
        expectile=ours["expectile"],
        weight_temp=ours["temperature"],
        max_weight=ours["max_weight"],
        reward_scaler=scaler,
    )


def _cql_config(algo: str, ours: dict, common: dict, encoder: Callable, **_: Any) -> Any:
    """CQL's or Cal-QL's (``algo``)."""
    import d3rlpy

    from sb3_offline.calql.calql import CALQL_INITIAL_ALPHA_PRIME
    from sb3_offline.common.schedules import initial_value
    from sb3_offline.cql.policies import CQLPolicy

    if ours["ent_coef"] != "auto" or ours["target_entropy"] != "auto":
        raise ValueError("d3rlpy's CQL tunes the temperature from 1 towards -|A|; our defaults changed")
    initial_alpha = (
        CALQL_INITIAL_ALPHA_PRIME
        if algo == "calql"
        else inspect.signature(CQLPolicy.__init__).parameters["initial_alpha_prime"].default
    )
    gap = ours["target_action_gap"]
    lr = float(ours["learning_rate"])
    actor_lr = float(initial_value(ours["actor_learning_rate"]))
    config_class = d3rlpy.algos.CQLConfig if algo == "cql" else d3rlpy.algos.CalQLConfig
    return config_class(
        **common,
        actor_learning_rate=actor_lr,
        critic_learning_rate=lr,
        temp_learning_rate=actor_lr,
        alpha_learning_rate=lr if gap is not None else 0.0,
        initial_temperature=1.0,
        initial_alpha=initial_alpha if gap is not None else 1.0,
        alpha_threshold=gap if gap is not None else 0.0,
        conservative_weight=ours["alpha_cql"],
        n_action_samples=ours["n_actions"],
        soft_q_backup=False,
        max_q_backup=ours["max_q_backup"],
    )


def _td3bc_config(algo: str, ours: dict, common: dict, encoder: Callable, observation_statistics: Any, **_: Any) -> Any:
    import d3rlpy
    from d3rlpy.preprocessing import StandardObservationScaler

    from sb3_offline.td3bc import TD3BC

    observation_scaler = None
    if ours["normalize_observations"]:
        if observation_statistics is None:
            raise ValueError(
                "observation_statistics: expected the dataset's (mean, std) (our TD3+BC normalises observations "
                "by default; see our_observation_statistics), found None"
            )
        mean, std = observation_statistics
        observation_scaler = StandardObservationScaler(mean=mean, std=std, eps=TD3BC.observation_normalizer[0])
    return d3rlpy.algos.TD3PlusBCConfig(
        **common,
        actor_learning_rate=ours["actor_learning_rate"],
        critic_learning_rate=float(ours["learning_rate"]),
        target_smoothing_sigma=ours["target_policy_noise"],
        target_smoothing_clip=ours["target_noise_clip"],
        alpha=ours["alpha"],
        update_actor_interval=ours["policy_delay"],
        observation_scaler=observation_scaler,
    )


def _plas_config(algo: str, ours: dict, common: dict, encoder: Callable, plas_vae_steps: Any, **_: Any) -> Any:
    import d3rlpy

    if ours["max_latent_action"] != 2.0 or ours["perturbation"]:
        raise ValueError("d3rlpy's PLAS hard-codes max latent action 2 and no perturbation; our defaults changed")
    return d3rlpy.algos.PLASConfig(
        **common,
        actor_learning_rate=ours["actor_learning_rate"],
        critic_learning_rate=float(ours["learning_rate"]),
        imitator_learning_rate=ours["vae_learning_rate"],
        imitator_encoder_factory=encoder("vae"),
        lam=ours["lmbda"],
        warmup_steps=ours["vae_steps"] if plas_vae_steps is None else plas_vae_steps,
        beta=ours["kl_weight"],
    )


def _rebrac_config(algo: str, ours: dict, common: dict, encoder: Callable, **_: Any) -> Any:
    import dataclasses

    import d3rlpy

    if ours["actor_layer_norm"] or not ours["critic_layer_norm"] or not ours["normalize_q"]:
        raise ValueError("d3rlpy's ReBRAC: LayerNorm set by our critic_layer_norm only, Q always normalised")
    return d3rlpy.algos.ReBRACConfig(
        **{**common, "critic_encoder_factory": dataclasses.replace(encoder("qf"), use_layer_norm=True)},
        actor_learning_rate=ours["actor_learning_rate"],
        critic_learning_rate=float(ours["learning_rate"]),
        target_smoothing_sigma=ours["target_policy_noise"],
        target_smoothing_clip=ours["target_noise_clip"],
        actor_beta=ours["actor_bc_coef"],
        critic_beta=ours["critic_bc_coef"],
        update_actor_interval=ours["policy_delay"],
    )


_CONFIGS: dict[str, Callable[..., Any]] = {
    "bcq": _bcq_config,
    "awac": _awac_config,
    "iql": _iql_config,
    "cql": _cql_config,
    "calql": _cql_config,
    "td3bc": _td3bc_config,
    "plas": _plas_config,
    "rebrac": _rebrac_config,
}


def flat_observations(observations: Any, what: str) -> np.ndarray:
    if isinstance(observations, dict):
        raise ValueError(f"{what}: expected a flat Box observation array (d3rlpy bridge), found a dict")
    return np.asarray(observations, dtype=np.float32).reshape(len(observations), -1)
