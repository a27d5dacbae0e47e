import numpy as np
import pytest

from anomaly.detection.scoring import (
    MIN_SCALE,
    STD_SHARE,
    Aggregator,
    ResidualNormaliser,
    feature_shares,
    find_events,
)


def test_residual_stats_are_median_and_scaled_mad():
    R = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0], [5.0, 0.0], [np.nan, 5.0]])
    stats = ResidualNormaliser.fit(R)  # the NaN row is ignored
    np.testing.assert_allclose(stats.center, [3.0, 0.0])
    np.testing.assert_allclose(stats.scale, [1.4826 * 1.0, MIN_SCALE])  # |R-3| = 2,1,0,1,2 -> MAD 1


def test_a_mostly_constant_feature_is_scaled_by_its_spread_not_its_zero_mad():
    # A command flag: 0 most of the time, a unit step now and then. Its MAD is 0, so by MAD alone
    # (floored at MIN_SCALE) each ordinary step would be a z of 100.
    rng = np.random.default_rng(0)
    noise = rng.normal(size=1000)
    flag = np.zeros(1000)
    flag[rng.choice(1000, size=20, replace=False)] = 1.0
    stats = ResidualNormaliser.fit(np.column_stack([noise, flag]))
    np.testing.assert_allclose(stats.scale[1], STD_SHARE * np.std(flag))
    assert stats.scale[0] == pytest.approx(1.4826 * np.median(np.abs(noise - np.median(noise))))  # MAD rules
    z = stats.transform(np.array([[0.0, 1.0]]))
    assert 5 < z[0, 1] < 100  # large, as a step that the model did not foresee is, not overwhelming


def test_a_feature_constant_in_training_is_scaled_at_least_as_the_others_median():
    rng = np.random.default_rng(0)
    R = np.column_stack([rng.normal(0, s, 2000) for s in (1.0, 2.0, 4.0)] + [rng.normal(0, 1e-3, 2000)] * 2)
    constant = np.array([False, False, False, True, True])
    plain = ResidualNormaliser.fit(R)
    floored = ResidualNormaliser.fit(R, constant=constant)
    np.testing.assert_array_equal(floored.scale[:3], plain.scale[:3])
    np.testing.assert_allclose(floored.scale[3:], np.median(plain.scale[:3]))  # about 2, not 1e-3
    assert plain.scale[3] == MIN_SCALE
    # Every feature constant: no other feature to measure against, so the general rule.
    np.testing.assert_array_equal(ResidualNormaliser.fit(R[:, 3:], constant=constant[3:]).scale, plain.scale[3:])


def test_score_is_rms_of_normalised_residuals_and_ranks_a_planted_spike_first():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 4))
    X_hat = X + 0.1 * rng.normal(size=X.shape)
    X[321, 2] += 2.0  # 20 typical errors on one feature
    stats = ResidualNormaliser.fit(X[:200] - X_hat[:200])
    z = stats.transform(X - X_hat)
    np.testing.assert_array_equal(ResidualNormaliser.from_dict(stats.to_dict()).transform(X - X_hat), z)
    scores = Aggregator().transform(z)
    assert scores.shape == (500,)
    assert int(np.argmax(scores)) == 321
    np.testing.assert_allclose(scores[5], np.sqrt(np.mean(z[5] ** 2)))


def test_nan_prediction_gives_nan_score():
    z = np.array([[np.nan, np.nan], [1.0, 3.0]])
    scores = Aggregator().transform(z)
    assert np.isnan(scores[0]) and scores[1] == np.sqrt(5.0)


def test_aggregations_by_hand_and_an_unknown_one_is_refused():
    z = np.array([[1.0, -3.0]])
    assert Aggregator("mean_abs").transform(z)[0] == 2.0 and Aggregator("max_abs").transform(z)[0] == 3.0
    with pytest.raises(ValueError, match="unknown aggregation"):
        Aggregator("median")


def test_find_events_returns_inclusive_runs_including_the_edges():
    flags = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert find_events(flags) == [(0, 1), (4, 4), (6, 8)]
    assert find_events(np.zeros(5, dtype=bool)) == []


def test_feature_shares_sum_to_one_and_follow_squared_error():
    z = np.array([[3.0, 1.0, 0.0], [np.nan, 1.0, 0.0]])
    np.testing.assert_allclose(feature_shares(z), [9 / 11, 2 / 11, 0.0])
    np.testing.assert_array_equal(feature_shares(np.zeros((2, 2))), [0.0, 0.0])
