import numpy as np
import pytest

from anomaly.metrics import event_precision, event_recall, point_adjusted_f1, point_metrics

# Hand-checked case: labels mark two events, [2..4] and [8..9].
LABELS = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1], dtype=bool)
FLAGS = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)


def test_point_metrics_by_hand():
    m = point_metrics(LABELS, FLAGS)  # tp = 1 (step 3), fp = 1 (step 0), fn = 4
    assert (m.true_positives, m.false_positives, m.false_negatives) == (1, 1, 4)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(0.2)
    assert m.f1 == pytest.approx(2 * 0.5 * 0.2 / 0.7)


def test_event_recall_and_precision_by_hand():
    recall, found = event_recall(LABELS, FLAGS)
    assert recall == 0.5 and found.tolist() == [True, False]
    assert event_precision(LABELS, FLAGS) == 0.5  # stretches [0] (false) and [3] (true)


def test_point_adjustment_inflates():
    # Adjusted flags: step 0 and all of [2..4] -> tp 3, fp 1, fn 2 -> P 0.75, R 0.6
    assert point_adjusted_f1(LABELS, FLAGS) == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert point_adjusted_f1(LABELS, FLAGS) > point_metrics(LABELS, FLAGS).f1


def test_degenerate_cases():
    none = np.zeros(10, dtype=bool)
    assert point_metrics(LABELS, none).precision == 0.0
    assert np.isnan(event_precision(LABELS, none))
    assert np.isnan(event_recall(none, FLAGS)[0])
    assert point_metrics(LABELS, ~none).recall == 1.0  # flag everything
