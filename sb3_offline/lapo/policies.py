"""Networks of LAPO: a conditional VAE of z-scored actions and its target, a latent policy, twin Q and V."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_offline.common.critics import ValueNetwork
from sb3_offline.common.latent_actor import LatentActor
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.normalization import ActionNormalizer
from sb3_offline.common.policies import VAEActorCriticPolicy
from sb3_offline.common.vae import ConditionalVAE

#: Hidden sizes of every LAPO network: latent policy, CVAE encoder and decoder, Q and V (authors' ``hidden_size``).
LAPO_NET_ARCH = [256, 256, 256]
#: Which VAE decodes the latent policy's actions when acting.
ACTING_DECODERS = ("target", "online")


class LAPOPolicy(VAEActorCriticPolicy):
    """
    The networks of LAPO (Chen et al., NeurIPS 2022), as the authors' ``algos/algos_vae.py``
    (``pcchenxi/LAPO-offlienRL``): the conditional VAE (``ActorVAE``: encoder and decoder 3 x 256, the
    encoder's second head ``log sigma^2``, unclamped, a *linear* decoder of z-scored actions, prior
    samples clipped to ``[-max_latent_action, max_latent_action]``) and its Polyak-averaged target copy
    ``vae_target``, the latent policy ``max_latent_action * tanh`` (``Actor``, 3 x 256) and its target,
    twin Q-networks (3 x 256, the action at the input) and their targets, and a state-value network
    ``value`` (the authors' ``Critic.v`` head, 3 x 256) and its target.

    Actions are z-scored by ``action_normalizer`` (``(a - mean) / (std + 1e-6)``, fitted from the dataset's
    actions when the dataset is read, kept and saved here): the VAE and the critics take z-scored
    actions (:meth:`critic_action_input`), the decoder outputs them. Acting: ``a = D'(s, pi(s))``, with
    the target VAE's decoder ``D'`` (``select_action``; ``act_with="online"`` uses the online one, as the
    authors' fine-tuning code does), de-normalised and clipped to [-1, 1] (the env's bounds).

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``)
    :param lr_schedule: learning rate schedule of the twin Q-networks
    :param max_latent_action: bound of the latent action (LAPO's ``main_d4rl.py``: 2)
    :param normalize_actions: z-score the actions (the authors do); ``False``: the buffer's [-1, 1] actions
    :param action_eps: added to the actions' std (the authors: 1e-6)
    :param act_with: ``"target"`` or ``"online"``: the VAE whose decoder gives the actions when acting
    :param kwargs: the rest of :class:`~sb3_offline.common.policies.VAEActorCriticPolicy`'s arguments;
        ``net_arch`` may set ``pi``, ``qf``, ``vae`` and ``vf`` (a list sets ``pi``, ``qf`` and ``vf``)
    """

    actor: LatentActor
    actor_target: LatentActor
    vae_target: ConditionalVAE
    value: ValueNetwork
    value_target: ValueNetwork
    action_normalizer: ActionNormalizer | None
    default_net_arch = {"pi": LAPO_NET_ARCH, "qf": LAPO_NET_ARCH, "vae": LAPO_NET_ARCH, "vf": LAPO_NET_ARCH}

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        max_latent_action: float = 2.0,
        normalize_actions: bool = True,
        action_eps: float = 1e-6,
        act_with: str = "target",
        **kwargs: Any,
    ) -> None:
        if act_with not in ACTING_DECODERS:
            raise ValueError(f"act_with: expected one of {ACTING_DECODERS}, found {act_with!r}")
        if max_latent_action <= 0:
            raise ValueError(f"max_latent_action: expected > 0, found {max_latent_action}")
        kwargs.setdefault("latent_clip", max_latent_action)  # ActorVAE.decode(z=None) clips to max_latent_action
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        net_arch = kwargs.get("net_arch")
        if net_arch is not None and not isinstance(net_arch, dict):
            self.net_arch["vf"] = list(net_arch)
        self.max_latent_action = max_latent_action
        self.normalize_actions = normalize_actions
        self.action_eps = action_eps
        self.act_with = act_with
        self._build(lr_schedule)

    def _make_vae(self, features_dim: int) -> ConditionalVAE:
        return ConditionalVAE(
            features_dim,
            self.action_dim,
            self.latent_dim,
            self.net_arch["vae"],
            self.activation_fn,
            self.latent_clip,
            squash_output=False,
            log_variance=True,
            log_std_bounds=None,
        )

    def _build_extra(self, features_dim: int, lr_schedule: Schedule) -> None:
        super()._build_extra(features_dim, lr_schedule)
        self.vae_target = _frozen_copy(self._make_vae(features_dim), self.vae)
        self.value = ValueNetwork(features_dim, self.net_arch["vf"], self.activation_fn)
        self.value.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.value.parameters(),
            lr=lr_schedule(1),
            **self.optimizer_kwargs,
        )
        self.value_target = _frozen_copy(
            ValueNetwork(features_dim, self.net_arch["vf"], self.activation_fn), self.value
        )
        self.action_normalizer = (
            ActionNormalizer((self.action_dim,), eps=self.action_eps, eps_mode="add")
            if self.normalize_actions
            else None
        )

    def _build_actor(self, features_dim: int) -> LatentActor:
        return LatentActor(
            features_dim, self.action_dim, self.latent_dim, self.net_arch["pi"], self.max_latent_action, None,
            self.activation_fn,
        )  # fmt: skip

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            max_latent_action=self.max_latent_action,
            normalize_actions=self.normalize_actions,
            action_eps=self.action_eps,
            act_with=self.act_with,
        )
        return data

    def critic_action_input(self, actions: th.Tensor) -> th.Tensor:
        """The buffer's [-1, 1] actions in the units the critics and the VAE take (z-scored)."""
        return self.action_normalizer(actions) if self.action_normalizer is not None else actions

    def buffer_action(self, actions: th.Tensor) -> th.Tensor:
        """Decoded (z-scored) actions back in [-1, 1]: de-normalised, then clipped to the bounds."""
        if self.action_normalizer is not None:
            actions = self.action_normalizer.denormalize(actions)
        return actions.clamp(-1.0, 1.0)

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        self.value.train(mode)

    def _predict(self, observation: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        decoder = self.vae_target.decode if self.act_with == "target" else self.vae.decode
        decoded = self.actor(self.features(observation), decoder)[2]
        return self.buffer_action(decoded)


def _frozen_copy(module: nn.Module, source: nn.Module) -> Any:
    """``module`` with ``source``'s weights, in eval mode, without gradients (a Polyak-averaged target)."""
    module.load_state_dict(source.state_dict())
    module.requires_grad_(False)
    module.train(False)
    return module


MlpPolicy = LAPOPolicy


MultiInputPolicy = multi_input_policy(LAPOPolicy, __name__)
