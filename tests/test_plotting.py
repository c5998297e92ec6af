"""The learning-curve picture: the ± std band in the legend, every line a colour of its own."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from sb3_offline.plotting import draw_curves, plot_curves


def test_band_labelled_and_baselines_in_their_own_colours(tmp_path: Path) -> None:
    curves = {"bcq": ([0, 10, 20], [-900.0, -500.0, -300.0], [50.0, 40.0, 30.0])}
    baselines = {"behaviour (dataset episodes)": -400.0, "random policy": -1200.0}
    fig, ax = plt.subplots()
    draw_curves(ax, curves, baselines)
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["bcq", "bcq ± 1 std", "behaviour (dataset episodes)", "random policy"]
    colours = {label: to_hex(handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()[0])
               for handle, label in zip(handles, labels, strict=True)}  # fmt: skip
    assert colours["bcq ± 1 std"] == colours["bcq"]  # the band is the curve's
    assert len({colours["bcq"], colours["behaviour (dataset episodes)"], colours["random policy"]}) == 3
    assert colours["random policy"] == to_hex("gray")
    plt.close(fig)
    assert plot_curves(curves, tmp_path / "curve.png", baselines=baselines).stat().st_size > 1000
