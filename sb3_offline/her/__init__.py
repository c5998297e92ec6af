"""
Hindsight Experience Replay (Andrychowicz et al., 2017) for offline data on goal-conditioned envs.

Online HER is SB3's own ``HerReplayBuffer`` (``replay_buffer_class=HerReplayBuffer`` with
``learn_online``); :class:`OfflineHerReplayBuffer` relabels a static dataset the same way.
:class:`HerDDPG` is DDPG with HER's settings (relabelling, input normalisation, networks, losses) as defaults.
:func:`collect_fetch_dataset` makes Fetch datasets (random, or an agent trained with SB3's HER),
:func:`evaluate_success_rate` measures a policy's success rate, and :func:`normalizer_kwargs` gives a
policy HER's input normalisation with statistics from the dataset.
"""

from sb3_offline.her.collect import collect_fetch_dataset, episode_success_rate, train_her_agent
from sb3_offline.her.ddpg import HerDDPG, HerDDPGPolicy
from sb3_offline.her.evaluation import evaluate_success_rate
from sb3_offline.her.goals import FetchReward
from sb3_offline.her.her_replay_buffer import OfflineHerReplayBuffer
from sb3_offline.her.normalization import NormalizedCombinedExtractor, normalizer_kwargs

__all__ = [
    "FetchReward",
    "HerDDPG",
    "HerDDPGPolicy",
    "NormalizedCombinedExtractor",
    "OfflineHerReplayBuffer",
    "collect_fetch_dataset",
    "episode_success_rate",
    "evaluate_success_rate",
    "normalizer_kwargs",
    "train_her_agent",
]
