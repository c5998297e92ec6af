"""Networks of BCQ: the generative model G (a conditional VAE), the perturbation model xi and two critics."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule

from sb3_offline.common.critics import q1_values
from sb3_offline.common.multi_input import multi_input_policy
from sb3_offline.common.perturbation import PerturbationActor
from sb3_offline.common.policies import VAEActorCriticPolicy


class BCQPolicy(VAEActorCriticPolicy):
    """
    The networks of BCQ (Fujimoto, Meger, Precup, ICML 2019), all inside the policy so that SB3's
    ``predict``, ``save`` and ``load`` handle them: the VAE ``G = {E, D}``, the perturbation model
    ``xi_phi`` and its target, two critics ``Q_theta1, Q_theta2`` and their targets.

    Acting is Eq. 11: for each state, ``n_action_samples`` actions from ``G(s)``, perturbed, and the
    one with the highest ``Q_theta1``. ``predict(deterministic=True)`` is that argmax; so is
    ``deterministic=False`` (the policy's randomness is in the sampled candidates), as in the authors' code.

    :param observation_space: observation space (``Box``, or ``Dict`` with ``MultiInputPolicy``)
    :param action_space: action space (a bounded ``Box``; networks work in SB3's [-1, 1] scale)
    :param lr_schedule: learning rate schedule of the perturbation model and the critics
    :param phi: perturbation bound Phi as a fraction of the action range (BCQ: 0.05)
    :param n_action_samples: candidate actions per state when acting (authors' code: 100)
    :param kwargs: the rest of :class:`~sb3_offline.common.policies.VAEActorCriticPolicy`'s arguments
        (``net_arch``, ``latent_dim``, features extractor, optimizer, ...)
    """

    actor: PerturbationActor
    actor_target: PerturbationActor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        phi: float = 0.05,
        n_action_samples: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.phi = phi
        self.n_action_samples = n_action_samples
        self._build(lr_schedule)

    def _build_actor(self, features_dim: int) -> PerturbationActor:
        return PerturbationActor(features_dim, self.action_dim, self.net_arch["pi"], self.phi, self.activation_fn)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(phi=self.phi, n_action_samples=self.n_action_samples)
        return data

    def sample_perturbed(
        self,
        features: th.Tensor,
        n: int,
        actor: PerturbationActor | None = None,
        noise: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        ``n`` candidates per state: ``a_i ~ G(s)``, perturbed by ``actor`` (default ``self.actor``).

        :param noise: the standard normal draws of the prior's latents, ``(batch, n, latent_dim)``
            (``None``: drawn here, from torch's global generator)
        :return: ``(repeated_features, actions)``, both of ``batch * n`` rows, state-major
            (rows ``i * n .. i * n + n - 1`` belong to state ``i``)
        """
        repeated = features.repeat_interleave(n, dim=0)
        latent = None if noise is None else self.vae.prior_latent(noise.reshape(-1, self.latent_dim))
        candidates = self.vae.decode(repeated, latent)
        return repeated, (actor or self.actor)(repeated, candidates)

    def acting_noise_shape(self) -> tuple[int, ...]:
        """The shape, per state, of the standard normal draws acting makes (``noise`` of :meth:`_predict`)."""
        return (self.n_action_samples, self.latent_dim)

    def select_action(self, features: th.Tensor, n: int | None = None, noise: th.Tensor | None = None) -> th.Tensor:
        """Eq. 11: the argmax of ``Q_theta1`` over ``n`` perturbed samples of ``G(s)``, for each state."""
        n = self.n_action_samples if n is None else n
        repeated, actions = self.sample_perturbed(features, n, noise=noise)
        q1 = q1_values(self.critic, repeated, actions)
        best = q1.view(-1, n).argmax(dim=1)
        return actions.view(-1, n, actions.shape[-1])[th.arange(features.shape[0], device=features.device), best]

    def _predict(
        self, observation: PyTorchObs, deterministic: bool = True, noise: th.Tensor | None = None
    ) -> th.Tensor:
        """:param noise: the prior's standard normal draws, ``(batch, *acting_noise_shape())`` (``None``: drawn here)"""
        return self.select_action(self.features(observation), noise=noise)


MlpPolicy = BCQPolicy


MultiInputPolicy = multi_input_policy(BCQPolicy, __name__)
