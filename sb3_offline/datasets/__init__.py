"""Dataset sources (Minari, D4RL-style HDF5, npz, SB3 replay buffers), validation and writers."""

from sb3_offline.datasets.behaviour import (
    PendulumSwingUp,
    ensure_pendulum_imperfect_file,
    pendulum_imperfect_demonstrations,
)
from sb3_offline.datasets.loaders import (
    DatasetNotFoundError,
    dataset_env_id,
    load_hdf5,
    load_minari,
    load_npz,
    load_sb3_replay_buffer,
    load_transitions,
    recover_env,
)
from sb3_offline.datasets.rollouts import record_transitions
from sb3_offline.datasets.transitions import Transitions, derive_next_observations
from sb3_offline.datasets.validation import DatasetValidationError, validate_transitions
from sb3_offline.datasets.writers import save_hdf5, save_minari, save_npz

__all__ = [
    "DatasetNotFoundError",
    "DatasetValidationError",
    "PendulumSwingUp",
    "Transitions",
    "dataset_env_id",
    "derive_next_observations",
    "ensure_pendulum_imperfect_file",
    "load_hdf5",
    "load_minari",
    "load_npz",
    "load_sb3_replay_buffer",
    "load_transitions",
    "pendulum_imperfect_demonstrations",
    "record_transitions",
    "recover_env",
    "save_hdf5",
    "save_minari",
    "save_npz",
    "validate_transitions",
]
