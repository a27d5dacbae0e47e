"""Each feature's error level following the scored stream (anomaly.detection.error_level)."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.detection.error_level import MAX_RISE, READ_EVERY, ErrorLevelFollower, calibration_levels
from anomaly.detection.level import WINDOW


def _stream(rows: int = 9000, seed: int = 0) -> np.ndarray:
    """z of four features (rows, 4): at their calibration level, 1.2x and 3x it, and one 5x a
    calibration level of 0 (see LEVELS)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, 4))
    z[:, 1] *= 1.2
    z[:, 2] *= 3.0
    z[:, 3] *= 5.0
    z[:12] = np.nan  # the warm-up rows a scored series starts with
    return z


LEVELS = np.array([0.6745, 0.6745, 0.6745, 0.0])  # the median |z| of a standard normal, and none


def test_nothing_changes_before_a_full_window_is_scored():
    z = _stream()
    out = ErrorLevelFollower(LEVELS).feed(z)
    np.testing.assert_array_equal(out[:WINDOW], z[:WINDOW])


def test_a_grown_error_level_is_divided_out_up_to_the_cap():
    z = _stream()
    divisors = z[WINDOW:] / ErrorLevelFollower(LEVELS).feed(z)[WINDOW:]
    np.testing.assert_allclose(np.nanmedian(divisors, axis=0)[:3], [1.0, 1.2, MAX_RISE], atol=0.03)
    assert np.all(divisors[:, :3] >= 1.0) and np.all(divisors[:, :3] <= MAX_RISE)
    # A feature with no calibration level is never divided.
    np.testing.assert_array_equal(divisors[:, 3], 1.0)


def test_divisors_change_only_at_fixed_positions():
    z = _stream()
    divisors = z / ErrorLevelFollower(LEVELS).feed(z)
    changes = np.flatnonzero(np.any(np.abs(np.diff(divisors[:, 1:3], axis=0)) > 1e-9, axis=1)) + 1
    assert len(changes) > 0 and np.all(changes % READ_EVERY == 0) and changes.min() >= WINDOW


@pytest.mark.parametrize("seed", [0, 1])
def test_any_chunking_gives_the_same_z(seed):
    z = _stream(seed=seed)
    whole = ErrorLevelFollower(LEVELS).feed(z)
    rng = np.random.default_rng(seed)
    follower, parts, i = ErrorLevelFollower(LEVELS), [], 0
    while i < len(z):
        n = int(rng.choice([1, 7, READ_EVERY - 1, READ_EVERY, READ_EVERY + 1, 3000, WINDOW + 5]))
        parts.append(follower.feed(z[i : i + n]))
        i += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert follower.position == len(z)


def test_a_short_anomaly_is_hardly_divided_and_a_long_one_at_most_by_the_cap():
    z = _stream(rows=16_000)[:, :1].copy()
    z[6000:6400, 0] *= 20.0  # a tenth of each window that holds it
    z[10_000:14_000, 0] *= 20.0  # nearly a whole window
    divisors = z / ErrorLevelFollower(LEVELS[:1]).feed(z)
    assert divisors[6000:6400].max() < 1.2
    assert divisors[10_000:14_000].max() == pytest.approx(MAX_RISE)


def test_rows_not_scored_are_left_out_of_the_window():
    z = _stream()[:, :3]
    gappy = z.copy()
    gappy[5000:6000] = np.nan
    out = ErrorLevelFollower(LEVELS[:3]).feed(gappy)
    assert np.all(np.isnan(out[5000:6000]))
    divisors = gappy[6000:] / out[6000:]
    np.testing.assert_allclose(np.nanmedian(divisors, axis=0), [1.0, 1.2, MAX_RISE], atol=0.03)


def test_calibration_levels_are_the_median_absolute_z_of_the_scored_rows():
    z = np.array([[np.nan, np.nan], [1.0, -4.0], [-2.0, 0.5], [3.0, 1.0]])
    np.testing.assert_array_equal(calibration_levels(z), [2.0, 1.0])


def test_a_calibration_that_is_not_one_level_per_feature_is_refused():
    with pytest.raises(ValueError, match=r"shape \(D,\)"):
        ErrorLevelFollower(np.ones((2, 3)))


def test_the_peak_is_each_features_largest_divisor_so_far():
    z = _stream()
    follower = ErrorLevelFollower(LEVELS)
    divisors = z / follower.feed(z)
    np.testing.assert_allclose(follower.peak, np.nanmax(divisors, axis=0))
    assert follower.peak[3] == 1.0 and follower.peak[2] == MAX_RISE
