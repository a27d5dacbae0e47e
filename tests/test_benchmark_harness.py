"""Smoke tests of the detection-quality harness in benchmarks/ (not the benchmark itself)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection  # noqa: E402
import stream_rules  # noqa: E402


def test_skips_cleanly_when_the_datasets_are_absent(tmp_path, capsys):
    assert detection.main(["all", "--datasets", str(tmp_path / "nowhere"), "--no-mlflow"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("skipped")


def test_best_threshold_counts_pick_the_series_best_f1():
    labels = np.array([0, 1, 1, 0, 0, 1], bool)
    scores = np.array([0.1, 0.9, 0.8, 0.85, np.nan, 0.2])
    # Thresholds: 0.9 -> tp1 fp0 (F1 .5); 0.85 -> tp1 fp1; 0.8 -> tp2 fp1 (F1 .667); 0.2 -> tp3 fp1 (F1 .857)
    assert detection.best_threshold_counts(labels, scores) == {"best_tp": 3, "best_fp": 1, "best_fn": 0}


def test_a_short_training_part_is_the_rows_just_before_the_test_part():
    frame = pd.DataFrame({"a": np.arange(10.0)})
    labels = np.arange(10) >= 8
    case = detection.Case("c", frame, labels, train_end=6)
    short = detection.shorten_training(case, 4)
    assert short.train_end == 4 and short.frame["a"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert short.labels.tolist() == labels[2:].tolist() and short.name == "c"
    whole = detection.shorten_training(case, 50)  # shorter already: kept whole
    assert whole.train_end == 6 and len(whole.frame) == 10


def test_the_scale_following_rule_waits_for_a_full_window_and_is_capped():
    z = np.ones((5000, 3))
    z[:, 1] = 2.0  # twice its calibration size throughout
    z[:, 2] = 9.0
    calibration = np.ones((100, 3))
    scales = stream_rules.follow_scales(z, calibration, cap=1.5, full_only=True)
    np.testing.assert_array_equal(scales[: stream_rules.WINDOW], 1.0)  # a SKAB file never gets further
    np.testing.assert_array_equal(scales[-1], [1.0, 1.5, 1.5])
    # Without `full` the calibration fills the window: half of it scored moves the median.
    early = stream_rules.follow_scales(z, calibration, cap=10.0, full_only=False)
    assert early[64, 1] == 1.0 and early[-1, 1] == 2.0 and early[-1, 2] == 9.0


def test_the_rate_floor_is_the_windows_quantile_once_the_window_is_full():
    scores = np.arange(5000, dtype=np.float64)
    floors = stream_rules.rate_floors(scores, 0.9)
    np.testing.assert_array_equal(floors[: stream_rules.WINDOW], 0.0)
    # Rows from 4,096 on read the scores of rows 0..4,095; from 4,160 those of rows 64..4,159.
    assert floors[stream_rules.WINDOW] == np.quantile(scores[: stream_rules.WINDOW], 0.9)
    assert floors[4160] == np.quantile(scores[64:4160], 0.9)


def test_summaries_pool_counts_over_series_and_average_the_threshold_free_metrics():
    rows = pd.DataFrame(
        [
            {
                "labelled": 2,
                "tp": 2,
                "fp": 1,
                "fn": 0,
                "flagged": 3,
                "events": 1,
                "events_found": 1,
                "auc_pr": 0.8,
                "vus_pr": 0.6,
                "vus_roc": 0.7,
                "best_tp": 2,
                "best_fp": 0,
                "best_fn": 0,
                "series_best_f1": 1.0,
                "seconds": 1.0,
            },
            {
                "labelled": 4,
                "tp": 0,
                "fp": 0,
                "fn": 4,
                "flagged": 0,
                "events": 2,
                "events_found": 0,
                "auc_pr": 0.4,
                "vus_pr": 0.2,
                "vus_roc": 0.5,
                "best_tp": 2,
                "best_fp": 2,
                "best_fn": 2,
                "series_best_f1": 0.5,
                "seconds": 2.0,
            },
        ]
    )
    out = detection.summarise(rows)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 6)
    assert out["f1"] == pytest.approx(4 / 9) and out["best_f1"] == pytest.approx(8 / 12)
    assert out["f1_ratio"] == pytest.approx((4 / 9) / (8 / 12))
    assert out["auc_pr"] == pytest.approx(0.6) and out["vus_pr"] == pytest.approx(0.4)
    assert out["event_recall"] == pytest.approx(1 / 3) and out["silent"] == 1 and out["seconds"] == 3.0


@pytest.mark.slow
def test_one_skab_file_end_to_end_with_the_product_defaults(mlflow_store, tmp_path):
    root = detection.datasets_root(None)
    if not (root / "skab" / "data").is_dir():
        pytest.skip(f"SKAB not found under {root}")
    case = detection.load_skab(root, quick=True)[0]
    params = {**detection.detector_params(quick=True, seed=0), "epochs": 2}
    per_series = detection.run_dataset("skab", [case], params, seed=0, peers="off", log=lambda m: None)
    table = detection.tables(per_series)["skab"]
    assert list(table.index) == ["anomaly", "random", "flag-all"]
    assert table.loc["flag-all", "recall"] == 1.0 and table.loc["flag-all", "f1_ratio"] == pytest.approx(1.0)
    assert 0 <= table.loc["anomaly", "f1"] <= table.loc["anomaly", "best_f1"] <= 1
    assert 0 < table.loc["anomaly", "vus_pr"] <= 1

    output = tmp_path / "out"
    output.mkdir()
    (output / "table.md").write_text("table")
    run_id = detection.log_to_mlflow("skab", True, 0, root, params, {"skab": table}, output, 1.0)
    import mlflow

    run = mlflow.get_run(run_id)
    assert run.data.params["dataset"] == "skab" and run.data.params["detector.smoothing_span"] == "15.0"
    assert "skab.anomaly.f1" in run.data.metrics
    assert mlflow.get_experiment(run.info.experiment_id).name == detection.EXPERIMENT


def _case(seed: int, labels_shift: int = 0) -> detection.Case:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    labels = np.zeros(300, bool)
    labels[200 + labels_shift : 220 + labels_shift] = True
    return detection.Case("series.csv", frame, labels, 100)


def test_peer_figures_come_from_the_record_only_for_the_exact_case(tmp_path, monkeypatch):
    record = tmp_path / "record.json"
    case = _case(0)
    entry = {
        "dataset": "x",
        "series": case.name,
        "method": "TSB-AD PCA",
        "seed": 0,
        "vus_window": 7,
        "rows": 200,
        "labelled": 20,
        "seconds": 3.5,
        "auc_pr": 0.5,
        "vus_pr": 0.4,
        "vus_roc": 0.9,
        "best_tp": 10,
        "best_fp": 5,
        "best_fn": 10,
        "series_best_f1": 0.571,
    }
    detection.write_peer_record({detection.peer_record_key(case, "TSB-AD PCA", 0): entry}, record)
    monkeypatch.setattr(detection, "peer_results", lambda *args: {})  # no score cache on this machine
    rows = detection.peer_rows("x", [case], {case.name: 7}, "cached", 0, lambda m: None, record)
    assert len(rows) == 1 and rows[0]["method"] == "TSB-AD PCA" and rows[0]["vus_pr"] == 0.4 and rows[0]["from_record"]
    table = detection.tables(pd.DataFrame(rows))["x"]
    assert table.loc["TSB-AD PCA", "best_f1"] == pytest.approx(20 / 35)
    # Other data, other labels, another seed, another VUS window, or peers off: not used.
    for other, seed, window in ((_case(1), 0, 7), (_case(0, labels_shift=1), 0, 7), (case, 1, 7), (case, 0, 8)):
        assert detection.peer_rows("x", [other], {other.name: window}, "cached", seed, lambda m: None, record) == []
    assert detection.peer_rows("x", [case], {case.name: 7}, "off", 0, lambda m: None, record) == []


def test_peer_figures_computed_from_scores_are_recorded(tmp_path, monkeypatch):
    record = tmp_path / "record.json"
    case = _case(2)
    test_labels = case.labels[case.train_end :]
    scores = test_labels.astype(float) + np.random.default_rng(0).random(len(test_labels))  # a perfect ranking
    found = {
        (case.name, "TSB-AD CNN"): detection.Result(scores, None, 1.25, info={"function": "run_CNN", "hps": {"window_size": 100}})
    }
    monkeypatch.setattr(detection, "peer_results", lambda *args: found)
    rows = detection.peer_rows("x", [case], {case.name: 10}, "cached", 0, lambda m: None, record)
    assert len(rows) == 1 and rows[0]["auc_pr"] == pytest.approx(1.0)
    stored = detection.read_peer_record(record)[detection.peer_record_key(case, "TSB-AD CNN", 0)]
    assert stored["auc_pr"] == pytest.approx(1.0) and stored["seconds"] == 1.25
    assert stored["tsb_ad"] == {"function": "run_CNN", "hps": {"window_size": 100}}
    # A later run without the cache reads the same figures back.
    monkeypatch.setattr(detection, "peer_results", lambda *args: {})
    again = detection.peer_rows("x", [case], {case.name: 10}, "cached", 0, lambda m: None, record)
    assert again[0]["vus_pr"] == pytest.approx(rows[0]["vus_pr"]) and again[0]["best_tp"] == rows[0]["best_tp"]
