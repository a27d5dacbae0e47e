import numpy as np
import pytest
from scipy import stats

from anomaly.detection.level import LevelFollower, histogram
from anomaly.detection.thresholds import (
    THRESHOLD_METHODS,
    FixedThreshold,
    ThresholdConfig,
    _gpd_tail_quantile,
    _n_kept_after_pruning,
    apply_threshold,
    dynamic_threshold,
    fit_gpd_grimshaw,
    gpd_log_likelihood,
    pot_threshold,
)


def fit_threshold(scores, method="quantile", quantile=0.99, **settings):
    """The threshold a detector with these ``threshold_*`` settings fits on ``scores``."""
    return ThresholdConfig(method, quantile, **settings).thresholder().fit(scores).threshold_


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


def test_every_method_is_listed_and_returns_a_float():
    rng = np.random.default_rng(0)
    scores = rng.exponential(size=5_000)
    assert set(THRESHOLD_METHODS) == {"quantile", "pot", "dynamic"}
    for method in THRESHOLD_METHODS:
        assert isinstance(fit_threshold(scores, method), float)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(quantile=1.0),
        dict(quantile=0.0),
        dict(method="nope"),
        dict(method="pot", level=1.0),
        dict(method="pot", risk=0.0),
        dict(method="pot", level=0.98, risk=0.05),  # risk must be below 1 - level
        dict(method="dynamic", min_decrease=1.5),
    ],
)
def test_invalid_threshold_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        fit_threshold(np.random.default_rng(0).exponential(size=1000), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(error_buffer=0),
        dict(z_step=0.0),
        dict(z_min=12.0, z_max=2.5),
        dict(max_sequences=0),
        dict(max_anomalous_share=0.0),
    ],
)
def test_invalid_dynamic_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        dynamic_threshold(np.random.default_rng(0).exponential(size=1000), **kwargs)


def test_a_thresholder_streams_the_level_follower_or_its_fitted_cut():
    calibration = np.random.default_rng(1).exponential(size=2_000)
    fitted = ThresholdConfig(margin=1.5).thresholder().fit(calibration)
    np.testing.assert_array_equal(fitted.calibration_counts_, histogram(calibration))
    later = np.random.default_rng(2).exponential(size=3_000) + 1.0
    np.testing.assert_array_equal(
        fitted.stream().feed(later), LevelFollower(fitted.threshold_, histogram(calibration)).feed(later)
    )
    fixed = ThresholdConfig(margin=1.5, follow=False).thresholder(threshold_=fitted.threshold_)
    assert isinstance(fixed.stream(), FixedThreshold)
    assert (fixed.stream().feed(later) == fitted.threshold_).all()


def test_all_nan_calibration_is_refused():
    for method in THRESHOLD_METHODS:
        with pytest.raises(ValueError, match="no calibration scores"):
            fit_threshold(np.full(10, np.nan), method)


# ---- peaks over threshold -------------------------------------------------------------------


def test_gpd_tail_quantile_by_hand():
    # t = 1, sigma = 2, gamma = 0.5, r = q n / N_t = 0.01: 1 + 2 / 0.5 * (0.01 ** -0.5 - 1) = 1 + 4 * 9
    assert _gpd_tail_quantile(1.0, 0.5, 2.0, 0.01) == pytest.approx(37.0)
    # gamma = 0 (exponential): 1 - 2 * log(0.01) = 1 + 2 * 4.60517 = 10.21034
    assert _gpd_tail_quantile(1.0, 0.0, 2.0, 0.01) == pytest.approx(1.0 + 2.0 * np.log(100.0))


def test_gpd_log_likelihood_by_hand():
    # Exponential, sigma 2, y = 1, 2, 3: -3 log 2 - 6 / 2 = -2.07944 - 3
    assert gpd_log_likelihood(np.array([1.0, 2.0, 3.0]), 0.0, 2.0) == pytest.approx(-3 * np.log(2) - 3)
    # gamma = sigma = 1, y = 1, 3: -2 log 1 - (1 + 1) * (log 2 + log 4) = -2 log 8
    assert gpd_log_likelihood(np.array([1.0, 3.0]), 1.0, 1.0) == pytest.approx(-2 * np.log(8))
    # Outside the support (gamma < 0 and y beyond -sigma / gamma = 2):
    assert gpd_log_likelihood(np.array([1.0, 3.0]), -0.5, 1.0) == -np.inf


@pytest.mark.parametrize("shape", [0.3, 0.1, -0.2, -0.4])
def test_grimshaw_fit_matches_scipy_maximum_likelihood(shape):
    rng = np.random.default_rng(1)
    excesses = stats.genpareto.rvs(shape, scale=2.0, size=20_000, random_state=rng)
    gamma, sigma = fit_gpd_grimshaw(excesses)
    scipy_gamma, _, scipy_sigma = stats.genpareto.fit(excesses, floc=0)
    assert gamma == pytest.approx(scipy_gamma, abs=1e-3)
    assert sigma == pytest.approx(scipy_sigma, rel=1e-3)
    # Both are the MLE: ours is at least as likely as scipy's optimiser result (to rounding).
    assert gpd_log_likelihood(excesses, gamma, sigma) >= gpd_log_likelihood(excesses, scipy_gamma, scipy_sigma) - 1e-6
    assert gamma == pytest.approx(shape, abs=0.05)


def test_pot_threshold_matches_scipy_fit_on_a_gpd_tail():
    rng = np.random.default_rng(2)
    # Normal body, GPD(0.2, 1) tail above 3 for 2% of the points.
    body = np.abs(rng.normal(size=98_000)) % 3.0
    tail = 3.0 + stats.genpareto.rvs(0.2, scale=1.0, size=2_000, random_state=rng)
    scores = rng.permutation(np.concatenate([body, tail]))
    t = np.quantile(scores, 0.98)
    excesses = scores[scores > t] - t
    c, _, scale = stats.genpareto.fit(excesses, floc=0)
    r = 1e-4 * len(scores) / len(excesses)
    expected = t + scale / c * (r**-c - 1)
    assert pot_threshold(scores, level=0.98, risk=1e-4) == pytest.approx(expected, rel=1e-3)


def test_pot_threshold_on_exponential_scores_is_the_exponential_quantile():
    # Exact exponential quantiles: t = log(1 / 0.02) = 3.912, excesses ~ Exp(1) with mean 1,
    # N_t = 2000 of n = 100000, q = 1e-4: t + 1 * log(2000 / (1e-4 * 1e5)) = log 50 + log 200
    # = log(10 ** 4) = 9.2103.
    n = 100_000
    scores = -np.log(1 - (np.arange(1, n + 1) - 0.5) / n)
    assert pot_threshold(scores, level=0.98, risk=1e-4) == pytest.approx(np.log(1e4), rel=5e-3)


def test_pot_threshold_is_exceeded_at_about_the_risk():
    rng = np.random.default_rng(3)
    threshold = fit_threshold(rng.exponential(size=100_000), "pot", level=0.98, risk=1e-3)
    rate = apply_threshold(rng.exponential(size=1_000_000), threshold).mean()
    assert 0.7e-3 < rate < 1.4e-3


def test_pot_needs_enough_peaks():
    with pytest.raises(ValueError, match="at least"):
        pot_threshold(np.arange(100.0), level=0.98, risk=1e-3)  # only 2 scores above t


# ---- telemanom's dynamic threshold ------------------------------------------------------------


def test_pruning_keeps_sequences_up_to_the_last_big_decrease():
    # [10, 9.5, 5] then non-anomalous max 1: decreases 0.05, 0.47, 0.8 -> last big one is the
    # third -> keep all 3.
    assert _n_kept_after_pruning(np.array([5.0, 10.0, 9.5]), 1.0, 0.13) == 3
    # [10, 5, 4.8] then 4.5: decreases 0.5, 0.04, 0.0625 -> keep only 10.
    assert _n_kept_after_pruning(np.array([4.8, 10.0, 5.0]), 4.5, 0.13) == 1
    # [10, 9.5, 9] then 8.5: decreases 0.05, 0.053, 0.056, none >= 0.13 -> keep none.
    assert _n_kept_after_pruning(np.array([10.0, 9.5, 9.0]), 8.5, 0.13) == 0


def test_dynamic_threshold_single_spike_by_hand():
    scores = np.ones(20)
    scores[5] = 10.0
    # mean = (19 + 10) / 20 = 1.45; var = (19 + 100) / 20 - 1.45**2 = 3.8475; sd = 1.96150.
    # For z = 2.5 .. 4.0, eps = 1.45 + z sd is in (6.35, 9.30): only the 10 is above; with
    # error_buffer 1 it is a one-step run (no sequence), so each z scores the same
    # ((1.45 - 1) / 1.45 + (sd - 0) / sd) / (0 + 1) and ties go to the largest, z = 4.
    # (z = 4.5 gives eps = 10.27: nothing above.) The widened run [4, 6] has max 10, the
    # largest other score is 1: decrease 0.9 >= 0.13, nothing pruned -> threshold = eps.
    expected = 1.45 + 4.0 * np.sqrt(3.8475)  # 9.29602
    assert dynamic_threshold(scores, error_buffer=1) == pytest.approx(expected)


def test_dynamic_threshold_prunes_a_weak_sequence_by_hand():
    scores = np.ones(27)
    scores[[7, 18, 23]] = [7.5, 9.8, 8.5]
    # mean = (24 + 25.8) / 27 = 1.84444; E[x^2] = (24 + 56.25 + 96.04 + 72.25) / 27 = 9.20519;
    # sd = sqrt(9.20519 - 1.84444**2) = 2.40899.
    # z = 2.5: eps = 7.867 -> {9.8, 8.5} above (one-step runs: no sequence); the 25 below have
    #   mean 1.26, sd 1.27373: score = ((1.84444 - 1.26) / 1.84444 + (2.40899 - 1.27373) / 2.40899) / 2
    #   = (0.31687 + 0.47126) / 2 = 0.39406.
    # z = 3: eps = 9.071 -> {9.8}; the 26 below have mean 1.53846, sd 1.87043: score
    #   = 0.16589 + 0.22356 = 0.38945 < 0.39406.  z = 3.5: eps = 10.28, nothing above.
    # So eps = 7.867: sequences with maxima 9.8 and 8.5, largest other score 7.5. Decreases
    # (9.8 - 8.5) / 9.8 = 0.133 >= 0.13 and (8.5 - 7.5) / 8.5 = 0.118 < 0.13: the 8.5 sequence
    # is pruned, and the threshold moves up to its max so that only the 9.8 one is flagged.
    threshold = dynamic_threshold(scores, error_buffer=1)
    assert threshold == 8.5
    assert apply_threshold(scores, threshold).nonzero()[0].tolist() == [18]


def test_dynamic_threshold_prunes_everything_by_hand():
    scores = np.ones(20)
    scores[[3, 9, 15]] = [10.0, 9.0, 7.0]
    # mean = (17 + 26) / 20 = 2.15; sd = sqrt((17 + 100 + 81 + 49) / 20 - 2.15**2) = 2.77984.
    # z = 2.5: eps = 9.0996, only 10 above; z = 3: eps = 10.49, nothing. One sequence, max 10;
    # largest other score 9: decrease 0.1 < 0.13 -> pruned. Threshold = its max: flags nothing.
    assert dynamic_threshold(scores, error_buffer=1) == 10.0


def test_dynamic_threshold_falls_back_to_the_max_score():
    scores = np.ones(20)
    scores[5] = 10.0
    # error_buffer 100 widens the spike over all 20 steps: every candidate breaks the "less
    # than half anomalous" check, so eps = mean + 12 sd = 1.45 + 12 * 1.9615 = 24.99, which
    # nothing reaches -> the largest calibration score.
    assert dynamic_threshold(scores, error_buffer=100) == 10.0
    assert dynamic_threshold(np.full(50, 3.0)) == 3.0  # constant scores: sd = 0


def test_dynamic_threshold_on_normal_scores_flags_almost_nothing_but_a_planted_spike():
    rng = np.random.default_rng(4)
    calibration = np.abs(rng.normal(size=5_000))
    threshold = fit_threshold(calibration, "dynamic")
    assert apply_threshold(calibration, threshold).mean() <= 0.001
    test = np.abs(rng.normal(size=5_000))
    test[2_000:2_020] += 8.0
    flags = apply_threshold(test, threshold)
    assert flags[2_000:2_020].all()
    # Normal calibration data has no standout sequence, so the threshold lands at (about) its
    # largest score: fresh normal steps exceed it about 1 / 5000 of the time.
    assert np.delete(flags, np.arange(2_000, 2_020)).mean() < 0.002


def test_margin_scales_the_distance_from_the_median_by_hand():
    scores = np.arange(1.0, 11.0)  # median 5.5; numpy's 0.9 quantile of 1..10 is 9.1
    assert fit_threshold(scores, "quantile", 0.9) == pytest.approx(9.1)
    assert fit_threshold(scores, "quantile", 0.9, margin=2.0) == pytest.approx(5.5 + 2 * 3.6)
    assert fit_threshold(scores, "quantile", 0.9, margin=0.5) == pytest.approx(5.5 + 0.5 * 3.6)
    with pytest.raises(ValueError, match="margin"):
        fit_threshold(scores, "quantile", 0.9, margin=0.0)
