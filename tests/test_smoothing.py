import numpy as np
import pytest

from anomaly.detection.smoothing import EwmaSmoother, ewma, span_to_alpha


def _loop_ewma(x: np.ndarray, alpha: float) -> np.ndarray:
    """The definition, one step at a time: NaN stays NaN and restarts the average."""
    out = np.full(len(x), np.nan)
    s = np.nan
    for i, v in enumerate(x):
        if np.isnan(v):
            s = np.nan
            continue
        s = v if np.isnan(s) else alpha * v + (1 - alpha) * s
        out[i] = s
    return out


def test_span_to_alpha():
    assert span_to_alpha(1) == 1.0
    assert span_to_alpha(3) == 0.5  # 2 / (3 + 1)
    assert span_to_alpha(19) == pytest.approx(0.1)


def test_ewma_by_hand():
    # span 3 -> alpha 0.5: s0 = 4; s1 = 0.5 * 8 + 0.5 * 4 = 6; s2 = 0.5 * 0 + 0.5 * 6 = 3;
    # s3 = 0.5 * 3 + 0.5 * 3 = 3
    smoothed, state = ewma(np.array([4.0, 8.0, 0.0, 3.0]), span=3)
    np.testing.assert_allclose(smoothed, [4.0, 6.0, 3.0, 3.0])
    assert state == 3.0


def test_nan_stays_nan_and_restarts_the_average_by_hand():
    # alpha 0.5: [2, 4 -> 0.5*4 + 0.5*2 = 3], NaN, restart at 10, then 0.5*20 + 0.5*10 = 15
    smoothed, state = ewma(np.array([np.nan, 2.0, 4.0, np.nan, 10.0, 20.0]), span=3)
    np.testing.assert_allclose(smoothed, [np.nan, 2.0, 3.0, np.nan, 10.0, 15.0])
    assert state == 15.0
    # Trailing NaN: the state says "no average to continue".
    _, state = ewma(np.array([1.0, np.nan]), span=3)
    assert np.isnan(state)


def test_state_carries_into_the_next_chunk_by_hand():
    # Continue from 6 with alpha 0.5: 0.5 * 2 + 0.5 * 6 = 4
    smoothed, state = ewma(np.array([2.0]), span=3, state=6.0)
    assert smoothed.tolist() == [4.0] and state == 4.0
    # An empty chunk passes the state through.
    smoothed, state = ewma(np.array([]), span=3, state=6.0)
    assert len(smoothed) == 0 and state == 6.0


def test_span_one_is_no_smoothing():
    x = np.array([3.0, np.nan, 1.0, 7.0])
    np.testing.assert_array_equal(ewma(x, span=1)[0], x)


@pytest.mark.parametrize("span", [1, 1.5, 4, 50, 1e6])
def test_matches_the_step_by_step_definition(span):
    rng = np.random.default_rng(0)
    x = rng.random(2_000)
    x[rng.random(2_000) < 0.1] = np.nan
    x[:7] = np.nan  # warm-up
    x[900:950] = np.nan  # a data gap
    np.testing.assert_allclose(ewma(x, span)[0], _loop_ewma(x, span_to_alpha(span)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 2, 7, 333, 5_000])
@pytest.mark.parametrize("span", [1, 5, 200])
def test_chunked_equals_whole(chunk, span):
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, size=5_000)
    x[rng.random(5_000) < 0.05] = np.nan
    x[1_000:1_100] = np.nan
    whole, whole_state = ewma(x, span)
    smoother = EwmaSmoother(span)
    chunked = np.concatenate([smoother.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)
    assert np.array_equal(np.isnan(chunked), np.isnan(x))
    assert smoother.state_ == pytest.approx(whole_state, rel=1e-12)


def test_smoothing_damps_a_one_step_spike_more_than_a_sustained_shift():
    x = np.zeros(100)
    x[20] = 10.0  # one-step spike
    x[60:80] = 10.0  # sustained
    smoothed = ewma(x, span=9)[0]  # alpha 0.2
    assert smoothed[20] == pytest.approx(2.0)
    assert smoothed[79] > 9.0


@pytest.mark.parametrize("span", [0.5, 0, -1, np.nan, np.inf, "3"])
def test_bad_span_is_refused(span):
    with pytest.raises(ValueError, match="span"):
        ewma(np.ones(3), span)


def test_two_dimensional_input_is_refused():
    with pytest.raises(ValueError, match="1-D"):
        ewma(np.ones((3, 2)), 3)


def test_ten_million_values_with_gaps_are_smoothed_like_the_reference():
    # Timing belongs in benchmarks (a wall-clock bound here failed on a loaded machine); what a
    # test can check is that the vectorised path gives the reference recursion's values.
    rng = np.random.default_rng(2)
    x = rng.random(10_000_000)
    x[rng.random(10_000_000) < 0.01] = np.nan
    smoothed, _ = ewma(x, span=20)
    head = x[:5000]
    alpha, state, expected = 2.0 / 21.0, np.nan, np.empty(len(head))
    for i, value in enumerate(head):
        if np.isnan(value):
            state = np.nan
        else:
            state = value if np.isnan(state) else alpha * value + (1 - alpha) * state
        expected[i] = np.nan if np.isnan(value) else state
    np.testing.assert_allclose(smoothed[:5000], expected, rtol=1e-12, equal_nan=True)
