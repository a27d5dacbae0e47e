"""Scaling, the chronological split and the steps of two-valued features."""

import numpy as np

from anomaly.detection.preprocessing import (
    MIN_SWITCHES,
    chronological_split,
    constant_features,
    fit_scaling,
    monotone_features,
    value_steps,
)


def test_scaling_is_fitted_per_feature_and_round_trips():
    X = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    scaling = fit_scaling(X)
    np.testing.assert_allclose(scaling.transform(X)[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    np.testing.assert_array_equal(scaling.transform(X)[:, 1], 0.0)  # a constant feature: scale 1
    again = type(scaling).from_dict(scaling.to_dict())
    np.testing.assert_array_equal(again.transform(X), scaling.transform(X))


def test_constant_features_hold_one_value_missing_rows_aside():
    X = np.array([[0.0, 10.0, 1.0, np.nan], [2.0, np.nan, 1.0 + 1e-12, np.nan], [4.0, 10.0, 1.0, np.nan]])
    # A value that differs in its last digits is not constant; an all-missing column has no value.
    np.testing.assert_array_equal(constant_features(X), [False, True, False, False])


def test_monotone_features_are_clocks_and_counters_not_levels_or_a_single_switch():
    t = np.arange(200, dtype=np.float64)
    counter = t // 3  # repeats, never falls
    counter[50:60] = np.nan  # a gap is stepped over
    countdown = 1000.0 - 2 * t
    level = np.sin(t / 10)
    switched_once = (t >= 100).astype(float)  # only rose, but holds two values
    few = np.minimum(t, 8.0)  # rose through 9 values, then stayed
    X = np.stack([counter, countdown, level, switched_once, few, np.full(200, np.nan)], axis=1)
    np.testing.assert_array_equal(monotone_features(X), [True, True, False, False, False, False])


def test_the_held_back_tail_is_the_end_of_the_series_and_at_least_min_holdout():
    assert chronological_split(1000, 0.2, 10) == 800
    assert chronological_split(100, 0.05, 20) == 80


def test_value_steps_of_a_command_a_rare_flag_a_constant_and_a_continuous_feature():
    rng = np.random.default_rng(0)
    command = (rng.random(500) < 0.05).astype(float) * 5.0  # 0 or 5, switching dozens of times
    rare = np.zeros(500)
    rare[100:103] = 1.0  # two-valued, but switched only twice: its changes are not ordinary
    constant = np.full(500, 20.0)
    continuous = rng.normal(size=500)
    X = np.column_stack([command, rare, constant, continuous])
    X[7, 0] = np.nan  # missing values do not make a feature many-valued
    scaling = fit_scaling(np.nan_to_num(X))
    steps = value_steps(X, scaling)
    np.testing.assert_allclose(steps, [5.0 / scaling.scale[0], 0.0, 0.0, 0.0])


def test_a_flag_is_a_switching_channel_from_min_switches_on():
    flag = np.zeros(200)
    for k in range(MIN_SWITCHES // 2):
        flag[10 * k + 5] = 1.0  # each pulse: two switches
    scaling = fit_scaling(flag[:, None])
    assert value_steps(flag[:, None], scaling)[0] == 1.0 / scaling.scale[0]
    flag[10 * (MIN_SWITCHES // 2 - 1) + 5] = 0.0
    assert value_steps(flag[:, None], scaling)[0] == 0.0


def test_an_all_missing_column_has_no_step():
    X = np.column_stack([np.full(10, np.nan), np.arange(10.0)])
    scaling = fit_scaling(np.nan_to_num(X))
    np.testing.assert_array_equal(value_steps(X, scaling), [0.0, 0.0])
