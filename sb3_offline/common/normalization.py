"""
Input normalisation with statistics fixed from the dataset, kept in the policy.

Offline, the data do not change, so the statistics are computed once, from the dataset's rows, when
the algorithm reads its dataset (:meth:`~sb3_offline.common.offline_algorithm.OfflineAlgorithm._setup_replay_buffer`
fits every :class:`Standardizer` of the policy that is not fitted yet). They are buffers of the policy,
saved and loaded with it, so ``predict`` takes raw observations after ``load`` without the dataset.

The formula is each algorithm's authors' (``eps_mode`` and ``eps``; ``clip``):

- TD3+BC (Fujimoto & Gu 2021): ``(s - mean) / (std + 1e-3)`` (``eps_mode="add"``, ``eps=1e-3``);
- HER (Andrychowicz et al. 2017): ``clip((x - mean) / max(std, 0.01), -5, 5)`` (``eps_mode="max"``,
  ``eps=0.01``, ``clip=5``), goals pooled (``pooled_keys``);
- LAPO (authors' code): states and actions z-scored with ``std + 1e-6``.

IQL's and CQL's authors normalise no states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor
from torch import nn

EPS_MODES = ("add", "max")


class Standardizer(nn.Module):
    """
    ``(x - mean) / divisor`` (then clipped to ``[-clip, clip]`` when ``clip`` is set), with
    ``divisor = std + eps`` (``eps_mode="add"``) or ``max(std, eps)`` (``"max"``), per feature.
    Identity until fitted (``mean`` 0, ``divisor`` 1); :meth:`fit` computes the statistics from data,
    :meth:`set_statistics` takes them as given. ``denormalize`` inverts it (LAPO's decoded actions).

    :param shape: the shape of one value (e.g. the observation's)
    :param eps: see ``eps_mode``
    :param eps_mode: ``"add"`` or ``"max"``
    :param clip: bound of the normalised values (``None``: no clip)
    """

    mean: th.Tensor
    divisor: th.Tensor
    fitted: th.Tensor

    def __init__(
        self, shape: Sequence[int], eps: float = 1e-3, eps_mode: str = "add", clip: float | None = None
    ) -> None:
        super().__init__()
        if eps_mode not in EPS_MODES:
            raise ValueError(f"eps_mode: expected one of {EPS_MODES}, found {eps_mode!r}")
        if eps < 0:
            raise ValueError(f"eps: expected >= 0, found {eps}")
        if clip is not None and clip <= 0:
            raise ValueError(f"clip: expected > 0 or None, found {clip}")
        self.shape = tuple(int(n) for n in shape)
        self.eps, self.eps_mode, self.clip = float(eps), eps_mode, clip
        self.register_buffer("mean", th.zeros(self.shape))
        self.register_buffer("divisor", th.ones(self.shape))
        self.register_buffer("fitted", th.zeros((), dtype=th.bool))

    def _divisor(self, std: th.Tensor) -> th.Tensor:
        return std + self.eps if self.eps_mode == "add" else th.clamp(std, min=self.eps)

    @th.no_grad()
    def set_statistics(self, mean: Any, std: Any, label: str = "") -> None:
        """
        Use these statistics (each of ``shape``, or flat with as many values); marks the standardizer fitted.

        :param label: appended to ``mean``/``std`` in error messages (e.g. ``"['observation']"``)
        """
        for name, values in (("mean", mean), ("std", std)):
            size = int(np.prod(self.shape)) if self.shape else 1
            if np.asarray(values).size != size:
                raise ValueError(f"{name}{label}: expected {size} values, found {np.asarray(values).size}")
        mean_t = th.as_tensor(np.asarray(mean, dtype=np.float32), device=self.mean.device).reshape(self.shape)
        std_t = th.as_tensor(np.asarray(std, dtype=np.float32), device=self.mean.device).reshape(self.shape)
        if not bool(th.isfinite(mean_t).all()):
            raise ValueError(f"mean{label}: expected finite values, found {mean}")
        if not bool((std_t >= 0).all()) or not bool(th.isfinite(std_t).all()):
            raise ValueError(f"std{label}: expected finite values >= 0, found {std}")
        divisor = self._divisor(std_t)
        if not bool((divisor > 0).all()):
            raise ValueError(
                f"std{label}: expected values > 0 (a feature with std 0 needs eps > 0), found {std} with eps={self.eps}"
            )
        self.mean.copy_(mean_t)
        self.divisor.copy_(divisor)
        self.fitted.fill_(True)

    @th.no_grad()
    def fit(self, values: th.Tensor) -> None:
        """Mean and (population) standard deviation over the first axis of ``values`` (rows, ``*shape``)."""
        data = values.to(th.float64).reshape(values.shape[0], *self.shape)
        if data.shape[0] == 0:
            raise ValueError("values: expected at least one row to compute statistics from, found none")
        self.set_statistics(data.mean(dim=0).cpu().numpy(), data.std(dim=0, unbiased=False).cpu().numpy())

    def forward(self, values: th.Tensor) -> th.Tensor:
        normalized = (values - self.mean) / self.divisor
        return normalized.clamp(-self.clip, self.clip) if self.clip is not None else normalized

    def denormalize(self, values: th.Tensor) -> th.Tensor:
        """The inverse of ``forward`` (without the clip)."""
        return values * self.divisor + self.mean

    def extra_repr(self) -> str:
        return f"shape={self.shape}, eps={self.eps}, eps_mode={self.eps_mode!r}, clip={self.clip}"


class ObservationNormalizer(nn.Module):
    """
    A :class:`Standardizer` per observation key (``Dict``) or one for a ``Box``; image keys stay raw.
    ``pooled_keys`` groups keys that share one statistic, computed over all of them (HER's achieved and
    desired goals, so a relabelled goal is normalised like the achieved goal it came from).

    :param observation_space: ``Box`` or ``Dict`` of ``Box``
    :param eps: see :class:`Standardizer`
    :param eps_mode: see :class:`Standardizer`
    :param clip: see :class:`Standardizer`
    :param pooled_keys: groups of ``Dict`` keys with one statistic each
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        eps: float = 1e-3,
        eps_mode: str = "add",
        clip: float | None = None,
        pooled_keys: Sequence[Sequence[str]] = (),
    ) -> None:
        super().__init__()
        self.is_dict = isinstance(observation_space, spaces.Dict)
        is_dict = isinstance(observation_space, spaces.Dict)
        subspaces = dict(observation_space.spaces) if is_dict else {"": observation_space}  # type: ignore[attr-defined]
        self.standardizers = nn.ModuleDict()
        for key, subspace in subspaces.items():
            if not isinstance(subspace, spaces.Box):
                raise ValueError(f"observation_space['{key}']: expected a Box, found {type(subspace).__name__}")
            if not is_image_space(subspace, check_channels=False):
                self.standardizers[key or "_"] = Standardizer(subspace.shape, eps, eps_mode, clip)
        self.pooled_keys = [list(group) for group in pooled_keys]
        for group in self.pooled_keys:
            unknown = [key for key in group if key not in self.standardizers]
            if unknown:
                raise ValueError(f"pooled_keys: expected keys of the observation space, found {unknown}")
            shapes = {self.standardizer(key).shape for key in group}
            if len(shapes) > 1:
                raise ValueError(f"pooled_keys: expected keys of one shape, found {sorted(shapes)} for {group}")

    def standardizer(self, key: str = "_") -> Standardizer:
        """The standardizer of ``key`` (``"_"``: a ``Box``'s)."""
        return cast(Standardizer, self.standardizers[key])

    @property
    def fitted(self) -> bool:
        return all(bool(self.standardizer(key).fitted) for key in self.standardizers)

    def fit(self, observations: th.Tensor | dict[str, th.Tensor]) -> None:
        """Statistics from rows of observations (a tensor for a ``Box``, a dict of tensors for a ``Dict``)."""
        values = observations if isinstance(observations, dict) else {"_": observations}
        pooled = {key: group for group in self.pooled_keys for key in group}
        for key in self.standardizers:
            if key in pooled:
                self.standardizer(key).fit(th.cat([values[k].reshape(values[k].shape[0], -1) for k in pooled[key]]))
            else:
                self.standardizer(key).fit(values[key])

    def forward(self, observations: th.Tensor | dict[str, th.Tensor]) -> Any:
        if isinstance(observations, dict):
            return {
                key: self.standardizers[key](value) if key in self.standardizers else value
                for key, value in observations.items()
            }
        return self.standardizers["_"](observations) if "_" in self.standardizers else observations


class NormalizedFlattenExtractor(FlattenExtractor):
    """
    SB3's ``FlattenExtractor`` on observations normalised by an :class:`ObservationNormalizer` (no
    trainable parameters: the statistics are buffers).

    :param observation_space: a ``Box``
    :param mean: the statistics, if known (else fitted from the dataset when it is read)
    :param std: as ``mean``
    :param eps: see :class:`Standardizer`
    :param eps_mode: see :class:`Standardizer`
    :param clip: see :class:`Standardizer`
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        eps: float = 1e-3,
        eps_mode: str = "add",
        clip: float | None = None,
    ) -> None:
        super().__init__(observation_space)
        self.normalizer = ObservationNormalizer(observation_space, eps, eps_mode, clip)
        if (mean is None) != (std is None):
            raise ValueError("mean, std: expected both or neither")
        if mean is not None and std is not None:
            self.normalizer.standardizer().set_statistics(mean, std)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return super().forward(self.normalizer(observations))


class NormalizedCombinedExtractor(CombinedExtractor):
    """
    SB3's ``CombinedExtractor`` (each key flattened, then concatenated) on observations normalised key
    by key by an :class:`ObservationNormalizer` (image keys are not normalised here).

    :param observation_space: a ``Dict``
    :param mean: per key, the statistics, if known (else fitted from the dataset when it is read)
    :param std: as ``mean``
    :param eps: see :class:`Standardizer`
    :param eps_mode: see :class:`Standardizer`
    :param clip: see :class:`Standardizer`
    :param pooled_keys: groups of keys sharing one statistic (see :class:`ObservationNormalizer`)
    :param cnn_output_dim: as ``CombinedExtractor``
    :param normalized_image: as ``CombinedExtractor``
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        mean: dict[str, Sequence[float]] | None = None,
        std: dict[str, Sequence[float]] | None = None,
        eps: float = 1e-3,
        eps_mode: str = "add",
        clip: float | None = None,
        pooled_keys: Sequence[Sequence[str]] = (),
        cnn_output_dim: int = 256,
        normalized_image: bool = False,
    ) -> None:
        super().__init__(observation_space, cnn_output_dim=cnn_output_dim, normalized_image=normalized_image)
        self.normalizer = ObservationNormalizer(observation_space, eps, eps_mode, clip, pooled_keys)
        if (mean is None) != (std is None):
            raise ValueError("mean, std: expected both or neither")
        if mean is not None and std is not None:
            keys = set(self.normalizer.standardizers)
            for name, stats in (("mean", mean), ("std", std)):
                if set(stats) != keys:
                    raise ValueError(
                        f"{name}: expected the keys of the observation space {sorted(keys)}, found {sorted(stats)}"
                    )
            for key in self.normalizer.standardizers:
                self.normalizer.standardizer(key).set_statistics(mean[key], std[key], label=f"['{key}']")

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:  # type: ignore[override]
        return super().forward(self.normalizer(observations))


def observation_normalizer_kwargs(
    observation_space: spaces.Space,
    eps: float = 1e-3,
    eps_mode: str = "add",
    clip: float | None = None,
    pooled_keys: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """
    ``policy_kwargs`` entries that normalise the policy's observations with the dataset's statistics,
    fitted when the dataset is read: ``policy_kwargs=dict(**observation_normalizer_kwargs(env.observation_space))``.
    """
    if isinstance(observation_space, spaces.Dict):
        kwargs: dict[str, Any] = dict(eps=eps, eps_mode=eps_mode, clip=clip, pooled_keys=[list(g) for g in pooled_keys])
        return dict(features_extractor_class=NormalizedCombinedExtractor, features_extractor_kwargs=kwargs)
    if pooled_keys:
        found = [list(group) for group in pooled_keys]
        raise ValueError(f"pooled_keys: expected none for a {type(observation_space).__name__} space, found {found}")
    return dict(
        features_extractor_class=NormalizedFlattenExtractor,
        features_extractor_kwargs=dict(eps=eps, eps_mode=eps_mode, clip=clip),
    )


def with_observation_normalizer(
    policy_kwargs: dict[str, Any],
    observation_space: spaces.Space,
    eps: float,
    eps_mode: str = "add",
    switch: str = "normalize_observations",
) -> dict[str, Any]:
    """
    ``policy_kwargs`` with the dataset-statistics observation normaliser of
    :func:`observation_normalizer_kwargs` as its features extractor: the one way the algorithms with a state
    normalisation switch (TD3+BC, IQL, CQL, LAPO, FQE) add it. A ``features_extractor_class`` already given
    must be the normaliser's class or a subclass of it; ``features_extractor_kwargs`` already given override the
    normaliser's. The input is not changed.

    :param policy_kwargs: the algorithm's ``policy_kwargs``
    :param observation_space: the env's observation space
    :param eps: the normaliser's ``eps`` (the algorithm's paper)
    :param eps_mode: ``"add"`` (``std + eps``) or ``"max"`` (``max(std, eps)``)
    :param switch: the algorithm's name for the switch, for the error message
    :raises ValueError: another features extractor is given
    """
    normalizer = observation_normalizer_kwargs(observation_space, eps=eps, eps_mode=eps_mode)
    expected = normalizer["features_extractor_class"]
    given = policy_kwargs.get("features_extractor_class", expected)
    if not (isinstance(given, type) and issubclass(given, expected)):
        raise ValueError(
            f"policy_kwargs['features_extractor_class']: expected {expected.__name__} (or none) with {switch}=True, "
            f"found {getattr(given, '__name__', given)}; pass {switch}=False to use another extractor"
        )
    return {
        **policy_kwargs,
        "features_extractor_class": given,
        "features_extractor_kwargs": {
            **normalizer["features_extractor_kwargs"],
            **(policy_kwargs.get("features_extractor_kwargs") or {}),
        },
    }


class ActionNormalizer(Standardizer):
    """
    A :class:`Standardizer` of the dataset's actions, as the buffer holds them (SB3's [-1, 1] scale),
    kept in the policy: :func:`fit_normalizers` fits it from the dataset's actions when the dataset is
    read (LAPO z-scores its actions; its decoder outputs z-scored actions, ``denormalize`` maps them back).
    """


def fit_normalizers(
    module: nn.Module, observations: th.Tensor | dict[str, th.Tensor], actions: th.Tensor | None = None
) -> int:
    """
    Fit every :class:`ObservationNormalizer` in ``module`` (a policy) that is not fitted yet on
    ``observations`` (the dataset's rows), and every :class:`ActionNormalizer` not fitted yet on ``actions``
    (the same rows' actions, when given); those with statistics (given, or loaded) are left alone.

    :return: how many were fitted
    """
    fitted = 0
    for child in module.modules():
        if isinstance(child, ObservationNormalizer) and not child.fitted:
            child.fit(observations)
            fitted += 1
        elif isinstance(child, ActionNormalizer) and actions is not None and not bool(child.fitted):
            child.fit(actions)
            fitted += 1
    return fitted
