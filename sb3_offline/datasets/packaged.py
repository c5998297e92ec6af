"""
Datasets shipped inside the package, so that ``dataset="pendulum/imperfect-v0"`` works after
``pip install`` with no collection and no network: on first use a shipped dataset is copied
(atomically) into the local Minari folder, where Minari itself (``minari.load_dataset``) finds it too.

Shipped:
- ``pendulum/imperfect-v0``: 50 000 Pendulum-v1 transitions of a TD3 expert under the BCQ paper's
  "imperfect demonstrations" protocol (N(0, 0.3) noise, a random action with probability 0.3),
  with reference scores; remade by ``sb3-offline collect --env Pendulum-v1 --protocol imperfect
  --steps 50000 --seed 0``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: Where the shipped Minari datasets live inside the package (``<id>/data/main_data.hdf5`` + ``metadata.json``).
PACKAGED_ROOT = Path(__file__).resolve().parent.parent / "data" / "minari"


def packaged_datasets() -> list[str]:
    """The ids of the datasets shipped with the package."""
    if not PACKAGED_ROOT.is_dir():
        return []
    return sorted(
        str(meta.parent.parent.relative_to(PACKAGED_ROOT)) for meta in PACKAGED_ROOT.glob("**/data/metadata.json")
    )


def install_packaged_dataset(dataset_id: str, overwrite: bool = False) -> Path:
    """
    Copy a shipped dataset into the local Minari folder (``MINARI_DATASETS_PATH``) and return its path
    there. Nothing is copied when it is already there (unless ``overwrite``). The copy is made next to
    its destination and renamed into place, so an interrupted copy leaves nothing half-written.
    """
    from minari.storage.datasets_root_dir import get_dataset_path

    if dataset_id not in packaged_datasets():
        raise ValueError(
            f"dataset_id: expected one of the shipped datasets {packaged_datasets()}, found '{dataset_id}'"
        )
    root = Path(get_dataset_path())
    final = root / dataset_id
    if final.exists() and not overwrite:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=final.parent))
    try:
        shutil.copytree(PACKAGED_ROOT / dataset_id, staging / "dataset")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging / "dataset", final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


__all__ = ["PACKAGED_ROOT", "install_packaged_dataset", "packaged_datasets"]
