"""The level-following threshold (anomaly.detection.level): histogram median, chunk invariance, the rule."""

import numpy as np
import pandas as pd
import pytest

from anomaly.detection import level
from anomaly.detection.level import (
    N_BINS,
    UPDATE_EVERY,
    WINDOW,
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


def test_without_a_window_the_threshold_rises_with_the_median_of_everything_scored():
    rng = np.random.default_rng(2)
    calibration = rng.gamma(2.0, 1.0, 2000)
    stream = np.concatenate([rng.gamma(2.0, 1.0, 1000), rng.gamma(2.0, 1.0, 9000) + 5.0])
    thresholds = LevelFollower(6.0, histogram(calibration), window=None).feed(stream)
    # Each block's threshold: 6 + rise of the median of calibration plus every earlier row.
    for i in (0, 1000, 2000, 4000, 9999):
        before = (i // UPDATE_EVERY) * UPDATE_EVERY
        seen = np.concatenate([calibration, stream[:before]])
        expected = 6.0 + max(0.0, np.median(seen) - np.median(calibration))
        assert thresholds[i] == pytest.approx(expected, abs=0.05 * max(1.0, np.median(seen)))
    assert thresholds[-1] > 10.0
    assert np.all(np.diff(thresholds) >= -0.2)  # it moves with the median, not with single scores


@pytest.mark.parametrize("window", [None, 300, WINDOW])
def test_the_thresholds_do_not_depend_on_the_chunk_sizes(window):
    rng = np.random.default_rng(3)
    calibration = rng.gamma(2.0, 1.0, 500)
    stream = np.concatenate([rng.gamma(2.0, 1.0, 700), rng.gamma(3.0, 2.0, 1300)])
    stream[100:140] = np.nan  # a gap: unscored rows count for the positions, not the histogram
    whole = LevelFollower(5.0, histogram(calibration), window).feed(stream)
    assert whole[-1] > 5.5  # the level rose, so the threshold moved: the comparison below is not vacuous
    for size in (1, 2, 63, 64, 65, 999):
        follower = LevelFollower(5.0, histogram(calibration), window)
        parts = [follower.feed(stream[i : i + size]) for i in range(0, len(stream), size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert LevelFollower(5.0, histogram(calibration), window).feed(np.zeros(0)).shape == (0,)


def _window_reference(threshold, calibration, stream, window):
    """The windowed rule computed directly: a weighted median per block (test reference)."""
    out = np.full(len(stream), threshold)
    base = np.median(calibration)
    for b in range(UPDATE_EVERY, len(stream), UPDATE_EVERY):
        recent = stream[:b][~np.isnan(stream[:b])][-window:]
        room = min(len(calibration), window - len(recent))
        values = np.concatenate([calibration, recent])
        weights = np.concatenate([np.full(len(calibration), room / len(calibration)), np.ones(len(recent))])
        order = np.argsort(values, kind="stable")
        cumulative = np.cumsum(weights[order])
        median = values[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
        out[b : b + UPDATE_EVERY] = threshold + max(0.0, median - base)
    return out


def test_the_windowed_rule_matches_a_direct_weighted_median():
    rng = np.random.default_rng(6)
    calibration = rng.gamma(2.0, 1.0, 1500)
    stream = np.concatenate([rng.gamma(2.0, 1.0, 3000), rng.gamma(2.0, 1.0, 5000) + 6.0, rng.gamma(2.0, 1.0, 4000)])
    stream[5000:5100] = np.nan
    got = LevelFollower(5.0, histogram(calibration), 2048).feed(stream)
    expected = _window_reference(5.0, calibration, stream, 2048)
    assert np.max(np.abs(got - expected) / expected) < 0.02


def test_the_window_catches_up_with_a_level_shift_and_lets_go_of_it():
    rng = np.random.default_rng(7)
    calibration = rng.gamma(2.0, 1.0, 4000)
    shift_at, shift = 3000, 8.0
    stream = np.concatenate([rng.gamma(2.0, 1.0, shift_at), rng.gamma(2.0, 1.0, 9000) + shift, rng.gamma(2.0, 1.0, 8000)])
    windowed = LevelFollower(6.0, histogram(calibration), WINDOW).feed(stream)
    everything = LevelFollower(6.0, histogram(calibration), None).feed(stream)
    half_way = shift_at + WINDOW // 2 + 2 * UPDATE_EVERY
    assert windowed[half_way] > 6.0 + 0.8 * shift  # caught up about half a window after the shift
    assert everything[half_way] < 6.0 + 0.2 * shift  # the calibration still holds the median down
    assert windowed[-1] < 6.5  # the level fell back and so did the threshold (never below 6)
    assert windowed.min() == 6.0


def test_a_window_not_yet_full_gives_the_rule_without_a_window():
    rng = np.random.default_rng(8)
    calibration = rng.gamma(2.0, 1.0, 1000)
    stream = rng.gamma(2.0, 1.0, 2000) * 2.0  # 1000 + 2000 scores fit in a window of 4096
    np.testing.assert_array_equal(
        LevelFollower(4.0, histogram(calibration), WINDOW).feed(stream),
        LevelFollower(4.0, histogram(calibration), None).feed(stream),
    )


def test_a_histogram_survives_its_json_form():
    counts = histogram(np.random.default_rng(4).gamma(2.0, 1.0, 300))
    np.testing.assert_array_equal(counts_from_dict(counts_to_dict(counts)), counts)


def test_the_follower_refuses_an_empty_calibration_and_an_empty_window():
    with pytest.raises(ValueError, match="non-empty histogram"):
        LevelFollower(1.0, np.zeros(N_BINS, dtype=np.int64))
    with pytest.raises(ValueError, match="window"):
        LevelFollower(1.0, histogram(np.ones(5)), 0)


def test_the_rule_matches_the_expanding_median_it_approximates():
    # The harness explored the exact expanding median (explore_defaults.py rule shift5); the
    # product reads it from a histogram every UPDATE_EVERY rows: the two stay within 2%.
    rng = np.random.default_rng(5)
    calibration = rng.gamma(2.0, 1.0, 1000)
    stream = rng.gamma(2.0, 1.0, 4000) * np.linspace(1.0, 3.0, 4000)
    got = LevelFollower(5.0, histogram(calibration), window=None).feed(stream)
    running = pd.Series(np.concatenate([calibration, stream])).expanding().median().to_numpy()[len(calibration) - 1 : -1]
    exact = 5.0 + np.maximum(0.0, running - np.median(calibration))
    assert np.max(np.abs(got - exact) / exact) < 0.02


class _FreshMedian(LevelFollower):
    """The follower reading every full-window median from a whole cumulative sum (reference)."""

    def _walk_median_bin(self, added, removed):
        return level._median_bin(self._recent)


@pytest.mark.parametrize("window", [5, 300, WINDOW])
def test_walking_the_median_bin_gives_what_a_fresh_cumulative_sum_gives(window):
    rng = np.random.default_rng(8)
    calibration = rng.gamma(2.0, 1.0, 800)
    # Drifts (short walks), a jump of three decades (the walk gives up and sums afresh), ties
    # (a constant stretch fills one bin) and a gap.
    stream = np.concatenate(
        [
            rng.gamma(2.0, 1.0, 6000) * np.linspace(1.0, 3.0, 6000),
            rng.gamma(2.0, 1.0, 6000) * 1000.0,
            np.full(3000, 2.5),
            rng.gamma(2.0, 1.0, 5000),
        ]
    )
    stream[9000:9300] = np.nan
    walked = LevelFollower(5.0, histogram(calibration), window).feed(stream)
    fresh = _FreshMedian(5.0, histogram(calibration), window).feed(stream)
    assert walked[-1] != walked[len(stream) // 2]  # the level moved: the comparison is not vacuous
    np.testing.assert_array_equal(walked, fresh)
