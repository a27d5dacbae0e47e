import numpy as np
import pandas as pd
from matplotlib.patches import Polygon, Rectangle

from anomaly.tracking.figures import scoring_figure, training_figure


def test_a_single_flagged_step_in_a_long_series_is_still_drawn():
    n = 20_000  # thinned 4x for drawing
    index = pd.date_range("2026-01-01", periods=n, freq="min", name="timestamp")
    frame = pd.DataFrame({"a": np.sin(np.arange(n) / 50)}, index=index)
    flags = np.zeros(n, dtype=bool)
    flags[12_345] = True  # not on the drawing grid of every 4th point
    results = pd.DataFrame({"score": np.ones(n), "threshold": 2.0, "is_anomaly": flags, "z_a": 0.0}, index=index)
    fig = scoring_figure(frame, results, [(12_345, 12_345)])
    spans = [p for ax in fig.axes for p in ax.patches if isinstance(p, (Polygon, Rectangle))]
    assert len(spans) == 2  # one shaded span on the feature panel, one on the score panel
    assert "1 flagged in 1 stretch (shaded)" in fig.get_suptitle()


def test_many_features_draw_the_ones_carrying_the_flagged_error():
    n = 100
    frame = pd.DataFrame(np.zeros((n, 8)), columns=[f"f{j}" for j in range(8)])
    z = np.zeros((n, 8))
    z[50, 6] = 9.0
    flags = np.zeros(n, dtype=bool)
    flags[50] = True
    results = pd.DataFrame({"score": 1.0, "threshold": 2.0, "is_anomaly": flags}, index=frame.index)
    results[[f"z_f{j}" for j in range(8)]] = z
    fig = scoring_figure(frame, results, [(50, 50)], max_features=3)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert len(labels) == 4 and labels[0] == "f6" and labels[-1] == "score"


def test_training_figure_marks_the_threshold():
    fig = training_figure({"loss": [1.0, 0.5], "val_loss": [0.9, 0.6]}, np.array([0.1, 0.2, np.nan]), 0.15)
    assert any("threshold 0.150" in t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())


def test_event_close_ups_name_the_top_features_and_give_one_step_events_a_width():
    from anomaly.tracking.figures import events_figure

    n = 200
    index = pd.date_range("2026-01-01", periods=n, freq="5min")
    frame = pd.DataFrame({"a": np.zeros(n), "b": np.zeros(n)}, index=index)
    z = np.zeros((n, 2))
    z[120, 1] = 9.0
    flags = np.zeros(n, dtype=bool)
    flags[120] = True
    results = pd.DataFrame(
        {"score": np.where(flags, 9.0, 1.0), "threshold": 2.0, "is_anomaly": flags, "z_a": z[:, 0], "z_b": z[:, 1]}, index=index
    )
    assert events_figure(frame, results, []) is None
    fig = events_figure(frame, results, [(120, 120)])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "b (100% of the error)"
    span = next(p for p in ax.patches)
    assert span.get_width() > 0


def test_thousands_of_flagged_stretches_are_merged_for_drawing_but_none_is_lost():
    from anomaly.tracking.figures import _MAX_SPANS, _for_drawing

    spans = [(i, i) for i in range(0, 100_000, 20)]  # 5000 one-step flags, 19 steps apart
    drawn = _for_drawing(spans, 100_000)
    assert len(drawn) <= _MAX_SPANS
    covered = np.zeros(100_000, bool)
    for first, last in drawn:
        covered[first : last + 1] = True
    assert all(covered[first] for first, _ in spans)  # every flag is still inside a drawn span
    assert _for_drawing([(5, 6), (50, 50)], 100) == [(5, 6), (50, 50)]  # few spans: untouched
