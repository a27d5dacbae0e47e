import numpy as np
import pytest

from anomaly.thresholds import apply_threshold, fit_threshold


def test_quantile_threshold_matches_hand_computed_value():
    scores = np.arange(1.0, 101.0)  # 1..100
    # numpy's default (linear) quantile: position 0.9 * 99 = 89.1 -> 90 + 0.1 * (91 - 90)
    assert fit_threshold(scores, "quantile", 0.9) == pytest.approx(90.1)


def test_nan_scores_are_ignored_when_fitting_and_never_flagged():
    scores = np.array([np.nan, 1.0, 2.0, 3.0, np.nan])
    assert fit_threshold(scores, quantile=0.5) == 2.0
    np.testing.assert_array_equal(apply_threshold(scores, 2.0), [False, False, False, True, False])


def test_about_one_minus_quantile_of_normal_scores_are_flagged():
    rng = np.random.default_rng(0)
    threshold = fit_threshold(np.abs(rng.normal(size=20_000)), quantile=0.99)
    flagged = apply_threshold(np.abs(rng.normal(size=20_000)), threshold).mean()
    assert 0.005 < flagged < 0.015


@pytest.mark.parametrize("kwargs", [dict(quantile=1.0), dict(quantile=0.0), dict(method="nope")])
def test_invalid_threshold_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        fit_threshold(np.ones(10), **kwargs)
