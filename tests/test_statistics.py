"""sb3_offline.statistics: rliable's IQM, stratified bootstrap intervals and performance profiles."""

from __future__ import annotations

import numpy as np
import pytest

from sb3_offline.statistics import (
    format_interval,
    interval_estimate,
    iqm,
    performance_profile,
    plot_performance_profiles,
    trimmed_mean,
)


def _rliable():
    """rliable's modules, or a skip: rliable 1.2.0 pins arch<8, which fails to import beside pandas 3."""
    try:
        from rliable import library, metrics
    except Exception as error:  # ImportError, or arch's TypeError at import under pandas 3
        pytest.skip(f"rliable does not import here: {type(error).__name__}: {error}")
    return library, metrics


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # 1..8: 3, 4, 5, 6 kept
    # every run and task together: -50, 1, 2, 3, 4, 5, 6, 100 -> 2, 3, 4, 5
    assert iqm([[1.0, 100.0], [2.0, -50.0], [3.0, 4.0], [5.0, 6.0]]) == pytest.approx(3.5)
    assert iqm([3.0, -1.0, 10.0]) == pytest.approx(4.0)  # int(0.25 * 3) = 0: nothing cut below 4 scores
    values = np.random.default_rng(0).normal(size=(7, 13))
    scipy_stats = pytest.importorskip("scipy.stats")
    np.testing.assert_allclose(trimmed_mean(values), scipy_stats.trim_mean(values, 0.25, axis=-1))


def test_bootstrap_keeps_each_task_apart():
    # task 0 scores 0 on every run, task 1 scores 100: every stratified resample holds half of each, so the mean
    # never moves; a plain bootstrap over all 8 scores would give an interval around 50 of width ~70
    scores = np.array([[0.0, 100.0]] * 4)
    point, interval = interval_estimate(scores, lambda x: x.reshape(len(x), -1).mean(axis=1), reps=2000)
    assert point == pytest.approx(50.0)
    np.testing.assert_allclose(interval, [50.0, 50.0])


def test_interval_bounds_and_coverage():
    three_seeds = [-300.0, -150.0, -120.0]
    point, interval = interval_estimate(three_seeds, reps=5000)
    assert point == pytest.approx(np.mean(three_seeds))  # at 3 seeds the IQM is the mean
    assert min(three_seeds) <= interval[0] < point < interval[1] <= max(three_seeds)
    # the percentile interval covers the true centre of a symmetric distribution about 95% of the time
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        _, interval = interval_estimate(rng.normal(10.0, 3.0, size=(30, 1)), reps=500, seed=trial)
        covered += interval[0] <= 10.0 <= interval[1]
    assert 0.85 <= covered / 200 <= 0.99, covered


def test_interval_is_reproducible_and_checks_its_input():
    scores = np.random.default_rng(2).normal(size=(5, 3))
    np.testing.assert_array_equal(interval_estimate(scores, seed=4)[1], interval_estimate(scores, seed=4)[1])
    with pytest.raises(ValueError, match=r"scores: expected finite scores, found nan"):
        interval_estimate([1.0, np.nan])
    with pytest.raises(ValueError, match=r"expected a non-empty \(num_runs, num_tasks\) matrix, found shape \(0,"):
        iqm([])
    with pytest.raises(ValueError, match=r"confidence: expected a value in \(0, 1\), found 95"):
        interval_estimate([1.0, 2.0], confidence=95)


def test_performance_profile_is_a_falling_fraction():
    scores = np.array([[10.0, 40.0], [20.0, 60.0], [30.0, 80.0]])
    taus = np.array([0.0, 15.0, 50.0, 100.0])
    profile, band = performance_profile(scores, taus)
    np.testing.assert_allclose(profile, [1.0, 5 / 6, 2 / 6, 0.0])
    assert band.shape == (2, 4)
    assert np.all(band[0] <= profile + 1e-12) and np.all(profile <= band[1] + 1e-12)


def test_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(3)
    path = plot_performance_profiles(
        {"BCQ": rng.normal(60, 10, size=(3, 4)), "BC": rng.normal(40, 10, size=(3, 4))},
        tmp_path / "profiles" / "pendulum.png",
        title="Pendulum-v1",
        reps=200,
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["pendulum.png"]  # no temporary file left
    assert format_interval(1.234, np.array([0.5, 2.0])) == "1.2 [0.5, 2.0]"


def test_same_numbers_as_rliable():
    library, metrics = _rliable()
    scores = np.random.default_rng(5).normal(50.0, 20.0, size=(5, 4))
    assert iqm(scores) == pytest.approx(metrics.aggregate_iqm(scores))
    points, intervals = library.get_interval_estimates(
        {"x": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=20000
    )
    point, interval = interval_estimate(scores, reps=20000)
    assert point == pytest.approx(points["x"][0])
    np.testing.assert_allclose(interval, intervals["x"][:, 0], atol=0.6)  # two random streams of 20,000 draws
    taus = np.linspace(0, 100, 11)
    profiles, bands = library.create_performance_profile({"x": scores}, taus)
    profile, band = performance_profile(scores, taus)
    np.testing.assert_allclose(profile, profiles["x"])
    np.testing.assert_allclose(band, bands["x"], atol=0.06)
