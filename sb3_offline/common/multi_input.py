"""``MultiInputPolicy``: any of our policies for ``Dict`` observations, with SB3's ``CombinedExtractor``."""

from __future__ import annotations

from typing import Any, TypeVar

from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor
from stable_baselines3.common.type_aliases import Schedule

PolicyT = TypeVar("PolicyT", bound=type[BasePolicy])


def multi_input_policy(policy_class: PolicyT, module: str) -> PolicyT:
    """
    A subclass of ``policy_class`` whose default features extractor is SB3's ``CombinedExtractor`` (each
    ``Dict`` key flattened, then concatenated; goal-conditioned data), named ``MultiInputPolicy`` in
    ``module`` (so checkpoints pickle it by reference): ``MultiInputPolicy = multi_input_policy(BCQPolicy, __name__)``.

    :param policy_class: the algorithm's ``MlpPolicy``
    :param module: the module that defines the alias (``__name__``)
    """

    def __init__(
        self: Any,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        policy_class.__init__(
            self,
            observation_space,
            action_space,
            lr_schedule,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )

    namespace = {
        "__init__": __init__,
        "__module__": module,
        "__qualname__": "MultiInputPolicy",
        "__doc__": f":class:`{policy_class.__name__}` for ``Dict`` observations, with SB3's ``CombinedExtractor``.",
    }
    return type("MultiInputPolicy", (policy_class,), namespace)  # type: ignore[return-value]


def aliases(mlp_policy: type[BasePolicy], multi_input_policy: type[BasePolicy]) -> dict[str, type[BasePolicy]]:
    """An algorithm's ``policy_aliases`` (SB3's): ``"MlpPolicy"`` and ``"MultiInputPolicy"``."""
    return {"MlpPolicy": mlp_policy, "MultiInputPolicy": multi_input_policy}
