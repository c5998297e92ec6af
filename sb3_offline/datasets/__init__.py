"""Dataset sources (Minari, D4RL-style HDF5, npz, SB3 replay buffers, d3rlpy, imitation), validation and writers."""

from sb3_offline.datasets.behaviour import (
    PendulumSwingUp,
    ensure_pendulum_imperfect_file,
    pendulum_imperfect_demonstrations,
)
from sb3_offline.datasets.d3rlpy import from_d3rlpy, load_d3rlpy, save_d3rlpy, to_mdp_dataset
from sb3_offline.datasets.imitation import from_imitation, load_imitation
from sb3_offline.datasets.loaders import (
    DatasetNotFoundError,
    dataset_env_id,
    load_hdf5,
    load_minari,
    load_npz,
    load_sb3_replay_buffer,
    load_transitions,
    recover_env,
    source_format,
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
    "from_d3rlpy",
    "from_imitation",
    "load_d3rlpy",
    "load_hdf5",
    "load_imitation",
    "load_minari",
    "load_npz",
    "load_sb3_replay_buffer",
    "load_transitions",
    "pendulum_imperfect_demonstrations",
    "record_transitions",
    "recover_env",
    "save_d3rlpy",
    "save_hdf5",
    "save_minari",
    "save_npz",
    "source_format",
    "to_mdp_dataset",
    "validate_transitions",
]
