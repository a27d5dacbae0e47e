"""Chunked scoring with carried state: the same scores whatever the chunk size."""

import numpy as np
import pytest

from anomaly.detector import Detector
from anomaly.nn.inference import Recurrence
from anomaly.nn.model import build_model
from anomaly.nn.predictor import StreamPredictor
from tests.conftest import make_series, plant_spike

TINY = dict(
    window_size=8,
    stride=2,
    units=(8, 6),
    epochs=2,
    batch_size=16,
    learning_rate=0.01,
    patience=1,
    warmup_steps=2,
    block=16,
    smoothing_span=3.0,
)


@pytest.mark.parametrize("cell,residual", [("lstm", False), ("gru", False), ("simplernn", False), ("gru", True)])
def test_recurrence_matches_keras_and_carries_state_across_calls(cell, residual):
    model = build_model(3, cell=cell, units=(5, 4), residual=residual)
    X = np.random.default_rng(0).normal(size=(2, 30, 3)).astype(np.float32)
    expected = model.predict(X, verbose=0)
    recurrence = Recurrence(model)
    no_reset = np.zeros((2, 30), dtype=bool)
    whole, _ = recurrence(X, no_reset, recurrence.zero_state(2))
    first, state = recurrence(X[:, :11], no_reset[:, :11], recurrence.zero_state(2))
    second, _ = recurrence(X[:, 11:], no_reset[:, 11:], state)
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), expected, atol=1e-5)


def test_xla_and_graph_passes_agree():
    """Large batches run XLA, small ones the plain graph; chunking must not change the scores."""
    model = build_model(4, cell="lstm", units=(8, 8))
    recurrence = Recurrence(model)
    X = np.random.default_rng(3).normal(size=(64, 64, 4)).astype(np.float32)
    args = (X, np.zeros((64, 64), bool), np.ones((64, 64), bool), recurrence.zero_state(64))
    np.testing.assert_allclose(recurrence._xla(*args)[0].numpy(), recurrence._graph(*args)[0].numpy(), atol=1e-5)


def test_reset_and_inactive_padding():
    model = build_model(3, cell="lstm", units=(4,))
    recurrence = Recurrence(model)
    X = np.random.default_rng(1).normal(size=(1, 12, 3)).astype(np.float32)
    reset = np.zeros((1, 12), dtype=bool)
    reset[0, 5] = True  # from step 5 on, the output must equal a fresh run over X[5:]
    out, _ = recurrence(X, reset, recurrence.zero_state(1))
    fresh, fresh_state = recurrence(X[:, 5:], np.zeros((1, 7), bool), recurrence.zero_state(1))
    np.testing.assert_allclose(out[:, 5:], fresh, atol=1e-6)
    # Inactive steps after the end leave the state as it was after the last active step.
    padded = np.concatenate([X[:, 5:], np.zeros((1, 4, 3), np.float32)], axis=1)
    active = np.arange(11)[None, :] < 7
    _, padded_state = recurrence(padded, np.zeros((1, 11), bool), recurrence.zero_state(1), active)
    np.testing.assert_allclose(padded_state, fresh_state, atol=1e-6)


@pytest.fixture(scope="module")
def detector():
    return Detector(random_state=0, **TINY).fit(make_series(400, 0))


def _series_with_gap():
    frame = plant_spike(make_series(203, 3), at=120)
    values = frame.to_numpy().copy()
    values[60:64] = np.nan  # a gap the reader left unfilled: state reset, warm-up again
    values[90, 1] = np.nan
    return values


@pytest.mark.parametrize("chunk", [1, 5, 17, 1000])
def test_scores_flags_and_z_do_not_depend_on_the_chunk_size(detector, chunk):
    values = _series_with_gap()
    whole = detector.stream().feed(values)
    scorer = detector.stream()
    parts = [scorer.feed(values[i : i + chunk]) for i in range(0, len(values), chunk)]
    scores = np.concatenate([p.scores for p in parts])
    np.testing.assert_allclose(scores, whole.scores, atol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(np.concatenate([p.flags for p in parts]), whole.flags)
    np.testing.assert_allclose(np.concatenate([p.z for p in parts]), whole.z, atol=1e-4, equal_nan=True)
    assert [p.start for p in parts] == list(range(0, len(values), chunk))


def test_an_empty_feed_changes_nothing_that_follows(detector):
    # A live feed polled when no row has arrived: the network's open block must stay open.
    values = _series_with_gap()
    plain, polled = detector.stream(), detector.stream()
    expected = [plain.feed(values[lo : lo + 7]) for lo in range(0, len(values), 7)]
    parts = []
    for lo in range(0, len(values), 7):
        parts += [polled.feed(values[lo : lo + 7]), polled.feed(values[:0])]
    assert all(len(p) == 0 for p in parts[1::2])
    np.testing.assert_array_equal(np.concatenate([p.scores for p in parts]), np.concatenate([p.scores for p in expected]))
    np.testing.assert_array_equal(np.concatenate([p.flags for p in parts]), np.concatenate([p.flags for p in expected]))


def test_gaps_and_warmup_are_unscored(detector):
    chunk = detector.stream().feed(_series_with_gap())
    unscored = np.flatnonzero(np.isnan(chunk.scores))
    # Rows 0-2 (warm-up), the gap 60-63 and 64-66 after it, row 90 and 91-93 after it.
    assert unscored.tolist() == [0, 1, 2, *range(60, 67), *range(90, 94)]


def test_blocks_rebuild_state_from_the_burn_in():
    """Row t's prediction depends only on rows since the burn-in before its block."""
    model = build_model(2, cell="gru", units=(4,))
    recurrence = Recurrence(model)
    X = np.random.default_rng(2).normal(size=(40, 2))
    predictor = StreamPredictor(recurrence, block=10, burn_in=3, warmup_steps=0)
    predictions, _ = predictor.feed(X)
    # Block [20, 30) of steps owns predictions of rows 21..30, from rows 17.. onward.
    changed = X.copy()
    changed[:17] += 5.0
    again, _ = StreamPredictor(recurrence, block=10, burn_in=3, warmup_steps=0).feed(changed)
    np.testing.assert_allclose(again[21:31], predictions[21:31], atol=1e-6)
    assert not np.allclose(again[18:21], predictions[18:21])


@pytest.mark.parametrize("chunk", [1, 4, 1000])
def test_rows_wait_for_their_event_and_match_the_whole_series(detector, chunk):
    """With event_gap / event_min_length the scorer returns a row once its flag is decided;
    fed in chunks and finished, it gives what score() gives, with flags covering the events."""
    import copy

    from anomaly.detection.events import event_flags

    values = _series_with_gap()
    eventful = copy.copy(detector)
    eventful.event_gap, eventful.event_min_length = 2, 3
    eventful.threshold_ = float(np.nanquantile(detector.stream().feed(values).scores, 0.7))  # many crossings
    scorer = eventful.stream()
    parts = [scorer.feed(values[i : i + chunk]) for i in range(0, len(values), chunk)] + [scorer.finish()]
    assert all(len(p) <= len(values[:chunk]) + 2 + 3 for p in parts) and sum(map(len, parts)) == len(values)
    assert [p.start for p in parts] == np.cumsum([0] + [len(p) for p in parts[:-1]]).tolist()
    crossings = np.concatenate([p.crossings for p in parts])
    flags = np.concatenate([p.flags for p in parts])
    expected = event_flags(crossings, gap=2, min_length=3)
    assert not np.array_equal(expected, crossings)  # gaps bridged or short runs dropped
    np.testing.assert_array_equal(flags, expected)
    whole = eventful.score(_frame(values))
    np.testing.assert_array_equal(whole["is_anomaly"].to_numpy(), flags)
    np.testing.assert_allclose(whole["score"].to_numpy(), np.concatenate([p.scores for p in parts]), atol=1e-5, equal_nan=True)


def _frame(values):
    import pandas as pd

    return pd.DataFrame(values, columns=[f"f{j}" for j in range(values.shape[1])])
