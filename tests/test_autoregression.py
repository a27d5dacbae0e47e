"""The linear autoregression under the network: lag matrix, fit, streaming, persistence."""

import numpy as np
import pytest

from anomaly.detection.autoregression import LinearAR, fit_linear_ar, lagged

NAN = np.nan


def test_lag_matrix_holds_the_previous_rows_newest_first():
    X = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    expected = np.array(
        [
            [NAN, NAN, NAN, NAN],
            [1.0, 10.0, NAN, NAN],
            [2.0, 20.0, 1.0, 10.0],
        ]
    )
    np.testing.assert_array_equal(lagged(X, 2), expected)


def test_an_exact_ar1_recurrence_is_recovered_without_ridge():
    # x[t] = 1 + 0.5 x[t-1] from x[0] = 0: 0, 1, 1.5, 1.75, ... — least squares is exact.
    x = np.zeros(12)
    for t in range(1, len(x)):
        x[t] = 1.0 + 0.5 * x[t - 1]
    model = fit_linear_ar(x[:, None], lags=1, ridge=0.0)
    np.testing.assert_allclose(model.coef, [[0.5]], atol=1e-9)
    np.testing.assert_allclose(model.intercept, [1.0], atol=1e-9)
    predictions = model.predict(x[:, None])[:, 0]
    assert np.isnan(predictions[0])
    np.testing.assert_allclose(predictions[1:], x[1:], atol=1e-9)


def test_a_two_feature_var1_with_a_cross_term_is_estimated():
    A = np.array([[0.9, 0.0], [0.5, 0.2]])  # feature 1 follows feature 0's last value
    rng = np.random.default_rng(0)
    X = np.zeros((5000, 2))
    for t in range(1, len(X)):
        X[t] = A @ X[t - 1] + rng.normal(size=2)
    model = fit_linear_ar(X, lags=1, ridge=0.0)
    # predict() computes lag @ coef, so coef is A transposed.
    np.testing.assert_allclose(model.coef, A.T, atol=0.03)
    assert model.lags == 1 and model.n_features == 2


def test_ridge_shrinks_the_coefficients_towards_the_mean_prediction():
    x = np.sin(np.arange(300) / 5.0)[:, None]
    light = fit_linear_ar(x, lags=2, ridge=1e-6)
    heavy = fit_linear_ar(x, lags=2, ridge=1e6)
    assert np.abs(light.coef).sum() > 1.0
    assert np.abs(heavy.coef).max() < 1e-5
    np.testing.assert_allclose(heavy.intercept, [x[2:].mean()], atol=1e-4)


def test_gap_rows_are_neither_targets_nor_lags():
    x = np.arange(20, dtype=float)[:, None]
    x[8] = NAN
    model = fit_linear_ar(x, lags=2, ridge=0.0)  # exact on the rows that remain: x[t] = x[t-1] + 1
    assert np.all(np.isfinite(model.coef)) and np.all(np.isfinite(model.intercept))
    predictions = model.predict(x)[:, 0]
    # Rows 0-1 have too few lags, 9 and 10 have the missing row 8 among theirs; row 8 itself is
    # predicted from rows 6-7 (its residual is what is missing).
    assert np.isnan(predictions[[0, 1, 9, 10]]).all()
    np.testing.assert_allclose(predictions[[2, 8, 11, 19]], [2.0, 8.0, 11.0, 19.0], atol=1e-6)


def test_too_few_complete_rows_is_an_error():
    with pytest.raises(ValueError, match="3 complete consecutive rows"):
        fit_linear_ar(np.array([[1.0], [2.0], [NAN], [3.0]]), lags=2)


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_streamed_predictions_match_the_whole_series_for_any_chunking(chunk):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    X[20] = NAN
    model = fit_linear_ar(X, lags=3)
    stream = model.stream()
    streamed = np.concatenate([stream.feed(X[i : i + chunk]) for i in range(0, len(X), chunk)])
    np.testing.assert_array_equal(np.isnan(streamed), np.isnan(model.predict(X)))
    np.testing.assert_allclose(streamed, model.predict(X), equal_nan=True, atol=1e-12)


def test_round_trip_through_a_dict():
    model = fit_linear_ar(np.random.default_rng(2).normal(size=(40, 2)), lags=2)
    again = LinearAR.from_dict(model.to_dict())
    np.testing.assert_array_equal(again.coef, model.coef)
    np.testing.assert_array_equal(again.intercept, model.intercept)
