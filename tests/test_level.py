"""The level-following threshold (anomaly.level): histogram median, chunk invariance, the rule."""

import numpy as np
import pandas as pd
import pytest

from anomaly.level import (
    N_BINS,
    UPDATE_EVERY,
    LevelFollower,
    counts_from_dict,
    counts_to_dict,
    histogram,
    histogram_median,
)


def test_histogram_median_is_within_a_bin_of_the_exact_median():
    rng = np.random.default_rng(0)
    for scores in (rng.gamma(2.0, 1.0, 5001), rng.lognormal(0.0, 2.0, 999), np.full(10, 3.0)):
        exact = float(np.median(scores))
        assert histogram_median(histogram(scores)) == pytest.approx(exact, rel=0.01)


def test_an_empty_histogram_has_no_median_and_nan_scores_are_not_counted():
    assert np.isnan(histogram_median(np.zeros(N_BINS, dtype=np.int64)))
    assert histogram(np.array([np.nan, 1.0, np.nan])).sum() == 1


def test_scores_like_the_calibration_keep_the_fitted_threshold():
    rng = np.random.default_rng(1)
    follower = LevelFollower(4.0, histogram(rng.gamma(2.0, 1.0, 2000)))
    thresholds = follower.feed(rng.gamma(2.0, 1.0, 3000))
    assert thresholds.min() == 4.0
    assert thresholds.max() < 4.0 + 0.15  # the running median wobbles about the calibration one


def test_a_raised_level_raises_the_threshold_by_the_rise_of_the_running_median():
    rng = np.random.default_rng(2)
    calibration = rng.gamma(2.0, 1.0, 2000)
    stream = np.concatenate([rng.gamma(2.0, 1.0, 1000), rng.gamma(2.0, 1.0, 9000) + 5.0])
    thresholds = LevelFollower(6.0, histogram(calibration)).feed(stream)
    # Each block's threshold: 6 + rise of the median of calibration plus every earlier row.
    for i in (0, 1000, 2000, 4000, 9999):
        before = (i // UPDATE_EVERY) * UPDATE_EVERY
        seen = np.concatenate([calibration, stream[:before]])
        expected = 6.0 + max(0.0, np.median(seen) - np.median(calibration))
        assert thresholds[i] == pytest.approx(expected, abs=0.05 * max(1.0, np.median(seen)))
    assert thresholds[-1] > 10.0
    assert np.all(np.diff(thresholds) >= -0.2)  # it moves with the median, not with single scores


def test_the_thresholds_do_not_depend_on_the_chunk_sizes():
    rng = np.random.default_rng(3)
    calibration = rng.gamma(2.0, 1.0, 500)
    stream = np.concatenate([rng.gamma(2.0, 1.0, 700), rng.gamma(3.0, 2.0, 1300)])
    stream[100:140] = np.nan  # a gap: unscored rows count for the positions, not the histogram
    whole = LevelFollower(5.0, histogram(calibration)).feed(stream)
    for size in (1, 2, 63, 64, 65, 999):
        follower = LevelFollower(5.0, histogram(calibration))
        parts = [follower.feed(stream[i : i + size]) for i in range(0, len(stream), size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert LevelFollower(5.0, histogram(calibration)).feed(np.zeros(0)).shape == (0,)


def test_a_histogram_survives_its_json_form():
    counts = histogram(np.random.default_rng(4).gamma(2.0, 1.0, 300))
    np.testing.assert_array_equal(counts_from_dict(counts_to_dict(counts)), counts)


def test_the_follower_refuses_an_empty_calibration():
    with pytest.raises(ValueError, match="non-empty histogram"):
        LevelFollower(1.0, np.zeros(N_BINS, dtype=np.int64))


def test_the_rule_matches_the_expanding_median_it_approximates():
    # The harness explored the exact expanding median (explore_defaults.py rule shift5); the
    # product reads it from a histogram every UPDATE_EVERY rows: the two stay within 2%.
    rng = np.random.default_rng(5)
    calibration = rng.gamma(2.0, 1.0, 1000)
    stream = rng.gamma(2.0, 1.0, 4000) * np.linspace(1.0, 3.0, 4000)
    got = LevelFollower(5.0, histogram(calibration)).feed(stream)
    running = pd.Series(np.concatenate([calibration, stream])).expanding().median().to_numpy()[len(calibration) - 1 : -1]
    exact = 5.0 + np.maximum(0.0, running - np.median(calibration))
    assert np.max(np.abs(got - exact) / exact) < 0.02
