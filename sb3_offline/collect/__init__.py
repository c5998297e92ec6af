"""
Make datasets the BCQ paper's way (final buffer, concurrent, imitation, imperfect demonstrations)
and the D4RL way (random, medium, medium-replay, expert, medium-expert), as local Minari datasets.
"""

from sb3_offline.collect.agents import (
    BEHAVIOUR_ALGOS,
    ActingPolicy,
    ReferenceScores,
    agents_dir,
    expert_agent,
    make_behaviour_agent,
    medium_agent,
)
from sb3_offline.collect.collect import CollectedDataset, collect_dataset, default_dataset_id, episode_returns
from sb3_offline.collect.concurrent import ConcurrentResult, run_concurrent_experiment
from sb3_offline.collect.protocols import PROTOCOLS, Protocol, get_protocol

__all__ = [
    "BEHAVIOUR_ALGOS",
    "PROTOCOLS",
    "ActingPolicy",
    "CollectedDataset",
    "ConcurrentResult",
    "Protocol",
    "ReferenceScores",
    "agents_dir",
    "collect_dataset",
    "default_dataset_id",
    "episode_returns",
    "expert_agent",
    "get_protocol",
    "make_behaviour_agent",
    "medium_agent",
    "run_concurrent_experiment",
]
