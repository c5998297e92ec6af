"""
``sb3-offline``'s errors and help, run through the real entry point: an error of the input is one line naming the
file or flag, exit status 2 (``--debug``: the traceback); ``--version``; every subcommand's help has a description
and its defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch as th

from sb3_offline import __version__
from sb3_offline.cli import USAGE_ERROR, build_parser, main
from sb3_offline.datasets.files import DatasetNotFoundError


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"sb3-offline {command}: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_missing_dataset_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.hdf5"
    assert main(["train", "--dataset", str(path), "--steps", "1"]) == USAGE_ERROR
    assert _one_line_error(capsys, "train") == f"sb3-offline train: error: dataset '{path}': no such file\n"
    for argv in (["--debug", "train", "--dataset", str(path)], ["train", "--dataset", str(path), "--debug"]):
        with pytest.raises(DatasetNotFoundError, match="no such file"):
            main(argv)


def test_random_bytes_named_hdf5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "random.hdf5"
    path.write_bytes(b"\x80" + np.random.default_rng(0).bytes(999))  # starts like a pickle: still no HDF5 file
    for env in ([], ["--env", "Pendulum-v1"]):
        assert main(["train", "--dataset", str(path), "--steps", "1", *env]) == USAGE_ERROR
        err = _one_line_error(capsys, "train")
        assert str(path) in err and "not an HDF5 file" in err and "pickle" not in err


def test_cuda_without_cuda_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(th.cuda, "is_available", lambda: False)  # a machine without CUDA, on any machine
    argv = ["train", "--device", "cuda", "--steps", "2", "--eval-episodes", "0", "--output", str(tmp_path / "run")]
    with pytest.warns(UserWarning, match="device='cuda': CUDA is not available here"):
        assert main(argv) == 0
    assert "device cpu" in capsys.readouterr().out


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"sb3-offline {__version__}\n"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "sb3-offline zoo enjoy" in " ".join(capsys.readouterr().out.split())  # rl-zoo3's enjoy is listed
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help = " ".join(capsys.readouterr().out.split())
    assert "gradient steps (default: the config's n_timesteps, else 5000)" in help
    assert "--seed SEED (default: 0)" in help
    subcommands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, parser in subcommands.items():
        assert parser.description, f"sb3-offline {name} -h has no description"
