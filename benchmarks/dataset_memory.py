"""
Peak host memory of reading a dataset file, as a multiple of the file's size.

    python -m benchmarks.dataset_memory                    # 3M HalfCheetah-shaped rows: a 475 MiB file
    python -m benchmarks.dataset_memory --rows 1000000 --dir /tmp --keep

Writes synthetic D4RL-style files (obs dim 17, action dim 6, float32 fields, bool flags, 1000-step episodes
closed by a timeout and a few terminations) under ``--dir`` (not in the repository; removed afterwards unless
``--keep``): an HDF5 file with ``next_observations`` (the layout of the 475 MiB file of the issue "Faults"), the
same without them (``next_observations`` derived per episode when read), and the first as an ``.npz``. Each
reading is measured in a fresh Python process: the peak resident set size (``resource.getrusage``
``ru_maxrss``) minus the resident size just before reading (after the imports and, on CUDA, after the CUDA
context is made), so only what reading the file costs is counted. Readings:

- ``load``: ``load_transitions(path)`` (the arrays, as the loaders return them);
- ``buffer cpu``: ``OfflineReplayBuffer(dataset=path, device="cpu")`` (read, validated, stored as tensors);
- ``buffer cpu+online``: the same with ``online_capacity=1000`` (rows kept after the dataset for fine-tuning: the
  dataset is copied into the larger storage, not adopted as it is);
- ``buffer cuda``: the same on CUDA, when available (host memory only: the device copy is not counted).

Prints a table; nothing here is a test. The readings import the ``sb3_offline`` of the folder the script runs from
(first on ``sys.path``), so to compare with another version of the package, run ``python -m
benchmarks.dataset_memory`` from the root of a checkout of that version (with this file copied there if it has none).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

OBS_DIM, ACT_DIM, EPISODE = 17, 6, 1000

_MEASURE = r"""
import json, resource, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch as th
from gymnasium import spaces
from sb3_offline.buffers import OfflineReplayBuffer
from sb3_offline.datasets import load_transitions

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) * 1024

reading, path, obs_dim, act_dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
obs_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
act_space = spaces.Box(-1.0, 1.0, (act_dim,), np.float32)
if reading == "buffer cuda":
    th.zeros(1, device="cuda")  # the CUDA context is not the dataset's
before = rss()
if reading == "load":
    data = load_transitions(path)
    rows = len(data)
else:
    device = "cuda" if reading == "buffer cuda" else "cpu"
    online = 1000 if reading == "buffer cpu+online" else 0
    data = OfflineReplayBuffer(0, obs_space, act_space, device=device, dataset=path, online_capacity=online)
    rows = data.dataset_size
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(before=before, peak=peak, after=rss(), rows=rows)))
"""


def write_files(directory: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """The three synthetic files, written chunk by chunk (the writing process never holds a whole field)."""
    import h5py

    rng = np.random.default_rng(seed)
    paths = {
        "hdf5 + next_obs": directory / "synthetic_next.hdf5",
        "hdf5, derived next_obs": directory / "synthetic_derived.hdf5",
        "npz + next_obs": directory / "synthetic_next.npz",
    }
    chunk = 100_000
    with h5py.File(paths["hdf5 + next_obs"], "w") as full, h5py.File(paths["hdf5, derived next_obs"], "w") as short:
        files = (full, short)
        for f in files:
            f.create_dataset("observations", (rows, OBS_DIM), np.float32)
            f.create_dataset("actions", (rows, ACT_DIM), np.float32)
            f.create_dataset("rewards", (rows,), np.float32)
            f.create_dataset("terminals", (rows,), bool)
            f.create_dataset("timeouts", (rows,), bool)
            f.attrs["env_id"] = "HalfCheetah-v5"
        full.create_dataset("next_observations", (rows, OBS_DIM), np.float32)
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            index = np.arange(start, stop)
            obs = rng.standard_normal((stop - start + 1, OBS_DIM), dtype=np.float32)
            timeouts = (index + 1) % EPISODE == 0
            terminals = (rng.random(stop - start) < 1e-4) & ~timeouts
            fields = dict(
                observations=obs[:-1],
                actions=rng.uniform(-1, 1, (stop - start, ACT_DIM)).astype(np.float32),
                rewards=rng.standard_normal(stop - start, dtype=np.float32),
                terminals=terminals,
                timeouts=timeouts,
            )
            for f in files:
                for key, value in fields.items():
                    f[key][start:stop] = value
            full["next_observations"][start:stop] = obs[1:]
    with h5py.File(paths["hdf5 + next_obs"], "r") as f:
        arrays = {key: f[key][()] for key in f}
        arrays["env_id"] = np.asarray("HalfCheetah-v5")
    np.savez(paths["npz + next_obs"], **arrays)
    del arrays
    return paths


def measure(reading: str, path: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, reading, str(path), str(OBS_DIM), str(ACT_DIM)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000_000, help="transitions per file")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a new folder under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--cuda", action=argparse.BooleanOptionalAction, default=None, help="measure on CUDA too")
    args = parser.parse_args()

    directory = Path(args.dir or tempfile.mkdtemp(prefix="sb3_offline_memory_", dir="/tmp"))
    directory.mkdir(parents=True, exist_ok=True)
    use_cuda = args.cuda
    if use_cuda is None:
        import torch as th

        use_cuda = th.cuda.is_available()
    paths = write_files(directory, args.rows)
    readings = ["load", "buffer cpu", "buffer cpu+online"] + (["buffer cuda"] if use_cuda else [])
    mib = 2**20
    print(
        f"{args.rows} transitions, obs dim {OBS_DIM}, action dim {ACT_DIM}; peak = host peak RSS - RSS before reading"
    )
    print(f"{'file':<24} {'size MiB':>9} {'reading':<17} {'peak MiB':>9} {'peak / size':>12} {'kept MiB':>9}")
    try:
        for name, path in paths.items():
            size = os.path.getsize(path)
            for reading in readings:
                result = measure(reading, path)
                peak = result["peak"] - result["before"]
                kept = result["after"] - result["before"]
                print(
                    f"{name:<24} {size / mib:>9.0f} {reading:<17} {peak / mib:>9.0f} {peak / size:>12.2f} "
                    f"{kept / mib:>9.0f}",
                    flush=True,
                )
    finally:
        if not args.keep:
            for path in paths.values():
                path.unlink(missing_ok=True)
            if args.dir is None:
                directory.rmdir()


if __name__ == "__main__":
    main()
