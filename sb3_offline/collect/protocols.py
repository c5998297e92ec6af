"""
The named ways of making a dataset: the BCQ paper's batch settings and D4RL's dataset kinds.

Noise scales are fractions of the action range's half-width (``max_action`` in the BCQ authors'
code, where a Box is symmetric), i.e. the std of the noise added to SB3's actions rescaled to [-1, 1].

On a ``Discrete`` action space the noise is epsilon (:mod:`sb3_offline.collect.discrete`).

References:
- Fujimoto, Meger, Precup, "Off-Policy Deep Reinforcement Learning without Exploration", ICML 2019,
  section 3 and appendix (final buffer, concurrent, imitation; imperfect demonstrations in 4.1).
- Fujimoto, Conti, Ghavamzadeh, Pineau, "Benchmarking Batch Deep Reinforcement Learning Algorithms", 2019, and the
  authors' ``discrete_BCQ/main.py`` (the Discrete protocols' epsilons).
- Fu et al., "D4RL: Datasets for Deep Data-Driven Reinforcement Learning", 2020 (random, medium,
  medium-replay, expert, medium-expert).
"""

from __future__ import annotations

from dataclasses import dataclass

from sb3_offline.collect.discrete import IMPERFECT_EPSILON, LOW_NOISE_EPISODES


@dataclass(frozen=True)
class Protocol:
    """
    How one dataset kind is made.

    :param name: the protocol's name (``--protocol``), also the dataset id's name part
    :param description: one line, written into the Minari dataset's description
    :param source: ``"training"`` (every transition a behaviour agent experienced while learning),
        ``"expert"`` (rollouts of the trained expert), ``"medium"`` (rollouts of a policy stopped at
        ``medium_fraction`` of the expert's normalized return), ``"medium-replay"`` (the replay buffer
        of that policy's training), ``"medium-expert"`` (half medium, half expert rollouts), or
        ``"random"`` (uniform random actions)
    :param noise_std: std of the Gaussian action noise, relative to the action range's half-width
    :param random_action_prob: probability of replacing an action by a uniformly random one
    :param stochastic: roll the policy out with its own exploration (SAC samples; DDPG/TD3 add
        ``noise_std``; DQN/QR-DQN their epsilon) as D4RL does, rather than deterministically
    :param discrete_random_action_prob: on a ``Discrete`` action space (no Gaussian noise there), the probability
        of a random action when it differs from ``random_action_prob``
    :param low_noise_prob: on a ``Discrete`` action space, the probability that an episode has no random action
        (the discrete BCQ authors' low-noise episodes)
    """

    name: str
    description: str
    source: str
    noise_std: float = 0.0
    random_action_prob: float = 0.0
    stochastic: bool = False
    discrete_random_action_prob: float | None = None
    low_noise_prob: float = 0.0


#: The fraction of the expert's normalized return at which D4RL stops the "medium" policy.
MEDIUM_FRACTION = 1.0 / 3.0

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "final",
            "BCQ 'final buffer': every transition a behaviour agent experienced while training with N(0, 0.5) noise",
            "training",
            noise_std=0.5,
        ),
        Protocol(
            "concurrent",
            "BCQ 'concurrent': every transition a behaviour agent experienced while training with N(0, 0.1) noise",
            "training",
            noise_std=0.1,
        ),
        Protocol("imitation", "BCQ 'imitation': a trained expert acting without noise", "expert"),
        Protocol(
            "imperfect",
            "BCQ 'imperfect demonstrations': the expert with N(0, 0.3) noise, a random action with probability 0.3 "
            "(Discrete: 0.2, none in a fifth of the episodes, as the discrete BCQ authors' buffers)",
            "expert",
            noise_std=0.3,
            random_action_prob=0.3,
            discrete_random_action_prob=IMPERFECT_EPSILON,
            low_noise_prob=LOW_NOISE_EPISODES,
        ),
        Protocol("random", "D4RL 'random': uniformly random actions", "random"),
        Protocol(
            "medium",
            "D4RL 'medium': a policy stopped at about a third of the expert's normalized return",
            "medium",
            noise_std=0.1,
            stochastic=True,
        ),
        Protocol(
            "medium-replay",
            "D4RL 'medium-replay': the replay buffer of the medium policy's training, up to its stop",
            "medium-replay",
            noise_std=0.1,
        ),
        Protocol(
            "expert",
            "D4RL 'expert': the trained expert acting with its own exploration",
            "expert",
            noise_std=0.1,
            stochastic=True,
        ),
        Protocol(
            "medium-expert",
            "D4RL 'medium-expert': half medium-policy rollouts, half expert rollouts",
            "medium-expert",
            noise_std=0.1,
            stochastic=True,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """The protocol of that name; a clear error listing the known ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, found '{name}'") from None


__all__ = ["MEDIUM_FRACTION", "PROTOCOLS", "Protocol", "get_protocol"]
