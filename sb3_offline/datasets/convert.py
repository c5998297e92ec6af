"""
Convert a dataset between the formats sb3-offline reads and writes (``sb3-offline convert SRC DST``).

Read: everything :func:`~sb3_offline.datasets.load_transitions` reads (a Minari id or folder, a D4RL-style
``.hdf5``/``.h5``, our ``.npz``, an SB3 replay buffer ``.pkl``, a d3rlpy ``.h5`` dump, imitation's saved
trajectories). Written: a D4RL-style HDF5 file, an ``.npz``, a local Minari dataset (:func:`save_minari`), or a
d3rlpy ``.h5`` dump (:func:`save_d3rlpy`). Terminations and truncations are kept apart all the way; when the
environment is known (``env`` or the id the source records) the data is validated against its spaces first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_offline.datasets.minari import MINARI_ID
from sb3_offline.datasets.transitions import Transitions

#: The formats :func:`convert_dataset` writes.
FORMATS = ("hdf5", "npz", "minari", "d3rlpy")


def output_format(target: str | os.PathLike, to: str | None = None) -> str:
    """
    The format to write ``target`` in: ``to`` when given, else from the name: ``.hdf5``/``.h5`` -> ``"hdf5"``
    (D4RL's layout; a d3rlpy dump needs ``to="d3rlpy"``), ``.npz`` -> ``"npz"``, a Minari id
    (``namespace/name-vN``) -> ``"minari"``.
    """
    if to is not None:
        if to not in FORMATS:
            raise ValueError(f"to: expected one of {list(FORMATS)}, found {to!r}")
        return to
    suffix = Path(target).suffix.lower()
    if suffix in (".hdf5", ".h5"):
        return "hdf5"
    if suffix == ".npz":
        return "npz"
    if MINARI_ID.match(os.fspath(target)):
        return "minari"
    raise ValueError(
        f"target: expected a .hdf5/.h5 or .npz path or a Minari id such as 'pendulum/mine-v0' (or a format given "
        f"with to=/--to, one of {list(FORMATS)}), found {os.fspath(target)!r}"
    )


def read_dataset(
    source: Any,
    env: str | None = None,
    imitation_terminal: str = "infos",
    reward_fill: float | None = None,
    format: str | None = None,
) -> Transitions:
    """
    Read any source sb3-offline reads.

    :param source: a path, Minari id, ``MinariDataset``, d3rlpy dataset or ``Transitions``
    :param env: the gymnasium id of the data's environment; recorded in the result (it replaces what the source
        records) and needed for an SB3 replay buffer (its actions are mapped back with the env's Box)
    :param imitation_terminal: for imitation trajectories, what ``terminal=True`` means (see
        :mod:`sb3_offline.datasets.imitation`)
    :param reward_fill: for imitation trajectories without rewards, the reward of every step
    :param format: the format that reads ``source`` (see :func:`~sb3_offline.datasets.loaders.source_format`;
        default: from the source)
    """
    from sb3_offline.datasets.imitation import from_imitation, load_imitation
    from sb3_offline.datasets.loaders import load_transitions, source_format

    kind = source_format(source, format)
    if kind == "imitation":
        read = load_imitation if isinstance(source, str | os.PathLike) else from_imitation
        transitions = read(source, terminal=imitation_terminal, reward_fill=reward_fill)
    else:
        action_space = None
        if env is not None and kind == "sb3_buffer":
            import gymnasium as gym

            action_space = gym.make(env).action_space
        transitions = load_transitions(source, action_space=action_space, format=kind)
    if env is not None:
        transitions.env_id = env
    return transitions


def write_dataset(
    transitions: Transitions, target: str | os.PathLike, to: str | None = None, overwrite: bool = False
) -> str:
    """
    Write ``transitions`` to ``target`` in the format :func:`output_format` says; atomically (an interrupted write
    leaves nothing). An existing file or Minari dataset is replaced only with ``overwrite``.

    :return: where it went (a path, or the Minari id)
    """
    from sb3_offline.datasets.d3rlpy import save_d3rlpy
    from sb3_offline.datasets.writers import save_hdf5, save_minari, save_npz

    kind = output_format(target, to)
    if kind == "minari":
        if transitions.env_id is None:
            raise ValueError(
                f"env: expected the data's gymnasium id (a Minari dataset records its environment), found none in "
                f"{transitions.source}; pass env= (sb3-offline convert: --env)"
            )
        save_minari(
            transitions,
            os.fspath(target),
            overwrite=overwrite,
            algorithm_name="unspecified",
            description=f"{len(transitions)} transitions converted by sb3-offline from {transitions.source}",
        )
        return os.fspath(target)
    path = Path(target).expanduser()
    if path.exists() and not overwrite:
        raise FileExistsError(f"target: '{path}' already exists (pass overwrite=True; sb3-offline convert --overwrite)")
    if kind == "hdf5":
        return str(save_hdf5(transitions, path))
    if kind == "npz":
        return str(save_npz(transitions, path))
    return str(save_d3rlpy(transitions, path))


@dataclass
class Conversion:
    """What :func:`convert_dataset` did: the data, where it went and in which format."""

    transitions: Transitions
    target: str
    format: str


def convert_dataset(
    source: Any,
    target: str | os.PathLike,
    to: str | None = None,
    env: str | None = None,
    imitation_terminal: str = "infos",
    reward_fill: float | None = None,
    overwrite: bool = False,
) -> Conversion:
    """
    Read ``source`` (:func:`read_dataset`), check it against its environment's spaces when one is known
    (``env`` or the id the source records), and write it to ``target`` (:func:`write_dataset`).

    :param source: any source sb3-offline reads
    :param target: a ``.hdf5``/``.h5`` or ``.npz`` path, a Minari id, or a ``.h5`` path with ``to="d3rlpy"``
    :param to: the output format, one of :data:`FORMATS` (default: from ``target``'s name)
    :param env: the data's gymnasium id (see :func:`read_dataset`); a Minari target needs one
    :param imitation_terminal: see :func:`read_dataset`
    :param reward_fill: see :func:`read_dataset`
    :param overwrite: replace an existing target
    """
    kind = output_format(target, to)  # a bad target fails before anything is read
    transitions = read_dataset(source, env=env, imitation_terminal=imitation_terminal, reward_fill=reward_fill)
    if transitions.env_id is not None:
        import gymnasium as gym

        from sb3_offline.datasets.validation import validate_transitions

        probe = gym.make(transitions.env_id)
        try:
            validate_transitions(transitions, probe.observation_space, probe.action_space)
        finally:
            probe.close()
    return Conversion(transitions, write_dataset(transitions, target, kind, overwrite=overwrite), kind)


__all__ = ["FORMATS", "Conversion", "convert_dataset", "output_format", "read_dataset", "write_dataset"]
