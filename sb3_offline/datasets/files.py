"""
Dataset files as files: finding them, listing their top-level keys, and turning a failure to read one into a
:class:`~sb3_offline.datasets.validation.DatasetValidationError` that says what was expected and what the file
holds (judged from its first bytes).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sb3_offline.datasets.validation import DatasetValidationError


class DatasetNotFoundError(FileNotFoundError):
    """The dataset source names nothing that exists locally."""


#: What each reader expects, for the message when a file is not that.
EXPECTED_HDF5 = "an HDF5 file with D4RL's datasets (observations, actions, rewards, terminals, timeouts)"
EXPECTED_NPZ = "an .npz archive (numpy.savez) with D4RL's keys (observations, actions, rewards, terminals, timeouts)"
EXPECTED_PKL = "an SB3 replay buffer pickled by model.save_replay_buffer"
EXPECTED_MINARI = "a Minari dataset folder (data/metadata.json and data/main_data.hdf5)"
EXPECTED_D3RLPY = "an HDF5 file written by d3rlpy's dump (columns, num_episodes, version, observations_<i>, ...)"
_UNREADABLE_HINT = (
    "The file may be incomplete (an interrupted download or copy) or in another format than its name says"
)

#: The 8 bytes an HDF5 file starts with (HDF5's format signature).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: What each reader of HDF5 files expects: a file that is no HDF5 file is called that, naming the signature.
_EXPECTED_HDF5_FILES = (EXPECTED_HDF5, EXPECTED_D3RLPY)

_SIGNATURES = (
    (HDF5_SIGNATURE, "an HDF5 file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x93NUMPY", "a single .npy array"),
    (b"\x1f\x8b", "a gzip file"),
    # pickle protocols 2 to 5 open with PROTO and the protocol number (0 and 1 have no mark)
    *((b"\x80" + bytes([protocol]), "a Python pickle") for protocol in range(2, 6)),
)


def describe_file(path: str | os.PathLike) -> str:
    """What a file holds, judged from its size and first bytes (for messages): ``"an HTML page of 1234 bytes ..."``."""
    file = Path(path)
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(64)
    except OSError as error:
        return f"a file that cannot be read ({error})"
    if size == 0:
        return "an empty file (0 bytes)"
    kind = next((name for signature, name in _SIGNATURES if head.startswith(signature)), None)
    if kind is None:
        text = head.lstrip().lower()
        if text.startswith((b"<!doctype html", b"<html")):
            kind = "an HTML page (a download that returned a web page?)"
        elif all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
            kind = "a text file"
        else:
            kind = "bytes of no known format"
    return f"{kind} of {size} bytes starting {head[:16]!r}"


def existing_file(path: str | os.PathLike, suffix: str | None = None) -> Path:
    """``path`` as a ``Path`` if it is a file (or ``path + suffix`` is); else :class:`DatasetNotFoundError`."""
    file = Path(path).expanduser()
    if file.is_file():
        return file
    if suffix is not None and file.with_name(file.name + suffix).is_file():
        return file.with_name(file.name + suffix)
    raise DatasetNotFoundError(f"dataset '{path}': no such file")


@contextmanager
def reading_dataset_file(path: str | os.PathLike, expected: str, source: str | None = None) -> Iterator[None]:
    """
    Around the code that parses a dataset file: any failure to read it (another format under the suffix,
    random bytes, a truncated download, a corrupt archive or pickle) becomes a :class:`DatasetValidationError`
    naming the file, what was ``expected`` and what the file holds. Errors about the data's content
    (``DatasetValidationError``) pass through, and so do ``MemoryError`` and interrupts.

    :param path: the file
    :param expected: what it should be (``EXPECTED_HDF5``, ...)
    :param source: the name in the message (default: ``path``)
    """
    try:
        yield
    except (DatasetValidationError, MemoryError):
        raise
    except Exception as error:  # any failure of the format's reader means the same thing: not a readable file
        found = f"{describe_file(path)} ({type(error).__name__}: {error})"
        if expected in _EXPECTED_HDF5_FILES and not _starts_with(path, HDF5_SIGNATURE):
            found = f"not an HDF5 file (no HDF5 signature {HDF5_SIGNATURE!r} at its start): {found}"
        raise DatasetValidationError(source or str(path), "", expected, found, hint=_UNREADABLE_HINT) from error


def _starts_with(path: str | os.PathLike, signature: bytes) -> bool:
    """Whether the file at ``path`` can be read and starts with ``signature``."""
    try:
        with open(path, "rb") as f:
            return f.read(len(signature)) == signature
    except OSError:
        return False


def hdf5_keys(path: str | os.PathLike) -> set[str] | None:
    """The names at the top of an HDF5 file; ``None`` when h5py cannot open it (not HDF5, or cut short)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return set(f)
    except OSError:  # h5py's error for a file that is not (or no longer) HDF5
        return None


def npz_keys(path: str | os.PathLike) -> set[str] | None:
    """
    The names at the top of an ``.npz`` archive (its entries without ``.npy``; ``observations/<key>`` entries as
    ``observations``), read from the zip directory alone; ``None`` when the file is no readable zip archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    return {name.removesuffix(".npy").split("/")[0] for name in names}


__all__ = [
    "EXPECTED_D3RLPY",
    "EXPECTED_HDF5",
    "EXPECTED_MINARI",
    "EXPECTED_NPZ",
    "EXPECTED_PKL",
    "HDF5_SIGNATURE",
    "DatasetNotFoundError",
    "describe_file",
    "existing_file",
    "hdf5_keys",
    "npz_keys",
    "reading_dataset_file",
]
