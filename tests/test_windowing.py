import numpy as np
import pytest

from anomaly.detection.windowing import make_windows, n_windows, next_step_pairs, windows_to_timesteps


def test_windows_are_views_with_the_documented_layout():
    X = np.arange(30, dtype=float).reshape(10, 3)
    w = make_windows(X, window_size=4, stride=2)
    assert w.shape == (4, 4, 3) == (n_windows(10, 4, 2), 4, 3)
    assert np.shares_memory(w, X)  # no copy of the series
    for n in range(4):
        for k in range(4):
            np.testing.assert_array_equal(w[n, k], X[2 * n + k])


def test_last_partial_window_is_left_out():
    X = np.zeros((11, 2))
    assert make_windows(X, 4, 3).shape[0] == 3  # starts 0, 3, 6; 9 would need rows 9..12
    assert n_windows(3, 4) == 0


def test_next_step_targets_are_inputs_shifted_by_one():
    X = np.arange(20, dtype=float).reshape(10, 2)
    inputs, targets = next_step_pairs(X, window_size=3, stride=1)
    assert inputs.shape == targets.shape == (7, 3, 2)
    np.testing.assert_array_equal(targets[:, :-1], inputs[:, 1:])
    np.testing.assert_array_equal(targets[-1, -1], X[-1])  # the last target is the last row
    np.testing.assert_array_equal(inputs[0, 0], X[0])


def test_next_step_targets_can_come_from_another_aligned_series():
    X = np.arange(20, dtype=float).reshape(10, 2)
    other = -np.arange(10, dtype=float)[:, None]  # one column, e.g. what a linear part leaves
    inputs, targets = next_step_pairs(X, window_size=3, stride=2, targets=other)
    assert inputs.shape == (4, 3, 2) and targets.shape == (4, 3, 1)
    assert np.shares_memory(targets, other) and np.shares_memory(inputs, X)
    np.testing.assert_array_equal(targets[1, :, 0], [-3.0, -4.0, -5.0])  # rows 3..5 after inputs 2..4
    np.testing.assert_array_equal(inputs[1, :, 0], [4.0, 6.0, 8.0])
    with pytest.raises(ValueError, match="targets must have 10 rows like X; got 9"):
        next_step_pairs(X, 3, targets=other[:9])


@pytest.mark.parametrize("bad", [dict(window_size=0), dict(window_size=11), dict(window_size=3, stride=0)])
def test_bad_window_arguments_are_refused(bad):
    with pytest.raises(ValueError):
        make_windows(np.zeros((10, 2)), **bad)


def test_windows_to_timesteps_inverts_make_windows_at_the_edges():
    X = np.arange(12, dtype=float).reshape(12, 1)
    w = make_windows(X, window_size=5, stride=2)  # starts 0, 2, 4, 6 -> covers steps 0..10
    per_step, covered = windows_to_timesteps(w, length=12, stride=2)
    np.testing.assert_array_equal(per_step[:11, 0], X[:11, 0])
    assert covered[:11].all() and not covered[11]
    assert np.isnan(per_step[11, 0])


def test_windows_to_timesteps_mean_and_max_count_each_covering_window():
    # Window n holds the value n at every step; step t is covered by windows max(0, t-2)..min(t, 2).
    values = np.repeat(np.arange(3, dtype=float)[:, None], 3, axis=1)  # (N=3, T=3)
    mean, covered = windows_to_timesteps(values, length=5, stride=1)
    np.testing.assert_allclose(mean, [0, 0.5, 1, 1.5, 2])
    maximum, _ = windows_to_timesteps(values, length=5, stride=1, agg="max")
    np.testing.assert_allclose(maximum, [0, 1, 2, 2, 2])
    assert covered.all()


def test_valid_windows_exclude_every_window_touching_a_bad_row():
    from anomaly.detection.windowing import valid_windows

    bad = np.zeros(10, dtype=bool)
    bad[4] = True
    # windows of 3, stride 1: starts 0..7; those covering row 4 start at 2, 3, 4
    assert valid_windows(bad, 3).tolist() == [True, True, False, False, False, True, True, True]
    assert valid_windows(bad, 3, stride=2).tolist() == [True, False, False, True]  # starts 0, 2, 4, 6
    assert valid_windows(np.zeros(2, dtype=bool), 3).tolist() == []
