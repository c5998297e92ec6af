"""The features-extractor rule of the policies whose critics' targets share the actor's extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor


class TrainableExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=8)
        self.linear = th.nn.Linear(int(np.prod(observation_space.shape)), 8)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations)


@pytest.mark.parametrize("name", ["bcq", "plas", "awac"])
def test_trainable_shared_extractor_is_refused(name: str, tiny_model, pendulum_transitions) -> None:
    """The critics' targets share the extractor, so a trained one would have no target copy: refused, named."""
    with pytest.raises(ValueError, match="features_extractor_class: expected an extractor without trainable"):
        tiny_model(name, pendulum_transitions, policy_kwargs=dict(features_extractor_class=TrainableExtractor))
