"""Networks of discrete BCQ: a Q-network and an imitation network (the authors' ``FC_Q``), one optimizer."""

from __future__ import annotations

from typing import Any

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import QNetwork

from sb3_offline.common.discrete import DiscreteQPolicy
from sb3_offline.common.multi_input import multi_input_policy

#: Hidden sizes of the authors' ``FC_Q`` (``discrete_BCQ/discrete_BCQ.py``, "Box2D / Toy problems"): both heads.
DISCRETE_BCQ_NET_ARCH = [256, 256]


def allowed_actions(logits: th.Tensor, threshold: float) -> th.Tensor:
    """
    The generative model's allowed actions, 1.0/0.0 per action: ``pi(a|s) / max_a' pi(a'|s) > threshold``, with
    ``pi = exp(log_softmax(logits))`` (the authors' ``imt``).
    """
    probabilities = F.log_softmax(logits, dim=1).exp()
    return (probabilities / probabilities.max(dim=1, keepdim=True).values > threshold).float()


def masked_argmax(q_values: th.Tensor, allowed: th.Tensor, keepdim: bool = False) -> th.Tensor:
    """The action of highest Q among the allowed ones (the others get -1e8, as the authors')."""
    return (allowed * q_values + (1.0 - allowed) * -1e8).argmax(dim=1, keepdim=keepdim)


class DiscreteBCQPolicy(DiscreteQPolicy):
    """
    SB3's ``DQNPolicy`` (``q_net``, ``q_net_target``) with an imitation network ``imitation`` (the logits of the
    generative model ``G(a|s)``, its own layers: the authors' ``FC_Q`` keeps the Q and imitation heads apart) and one
    optimizer over both, ``q_net.optimizer`` (the authors' single ``Q_optimizer``). ``predict`` takes the argmax of
    ``Q`` among the actions that ``G`` finds likely enough (:func:`allowed_actions`, ``threshold``).

    :param observation_space: observation space
    :param action_space: action space (``Discrete``)
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden sizes of both networks (default: the authors' 256-256)
    :param threshold: BCQ's threshold ``tau`` on ``G(a|s) / max_a' G(a'|s)``
    :param kwargs: ``DQNPolicy``'s other arguments
    """

    imitation: QNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        threshold: float = 0.3,
        **kwargs: Any,
    ) -> None:
        net_arch = list(DISCRETE_BCQ_NET_ARCH) if net_arch is None else list(net_arch)
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)
        self.threshold = threshold

    def _build(self, lr_schedule: Schedule) -> None:
        self.q_net = self.make_q_net()
        self.q_net_target = self.make_q_net()
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.set_training_mode(False)
        self.imitation = self.make_q_net()
        parameters = [*self.q_net.parameters(), *self.imitation.parameters()]
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            parameters, lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self.q_net.optimizer = self.optimizer

    def _predict(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        """The argmax of ``Q(s, .)`` among the allowed actions."""
        return masked_argmax(self.q_net(obs), allowed_actions(self.imitation(obs), self.threshold)).reshape(-1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(threshold=self.threshold)
        return data

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.imitation.set_training_mode(mode)


MlpPolicy = DiscreteBCQPolicy


MultiInputPolicy = multi_input_policy(DiscreteBCQPolicy, __name__)
