"""Smoke tests of the detection-quality harness in benchmarks/ (not the benchmark itself)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection  # noqa: E402


def test_skips_cleanly_when_the_datasets_are_absent(tmp_path, capsys):
    assert detection.main(["all", "--datasets", str(tmp_path / "nowhere"), "--no-mlflow"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("skipped")


def test_best_threshold_counts_pick_the_series_best_f1():
    labels = np.array([0, 1, 1, 0, 0, 1], bool)
    scores = np.array([0.1, 0.9, 0.8, 0.85, np.nan, 0.2])
    # Thresholds: 0.9 -> tp1 fp0 (F1 .5); 0.85 -> tp1 fp1; 0.8 -> tp2 fp1 (F1 .667); 0.2 -> tp3 fp1 (F1 .857)
    assert detection.best_threshold_counts(labels, scores) == {"best_tp": 3, "best_fp": 1, "best_fn": 0}


def test_summaries_pool_counts_over_series_and_average_the_threshold_free_metrics():
    rows = pd.DataFrame([
        {"labelled": 2, "tp": 2, "fp": 1, "fn": 0, "flagged": 3, "events": 1, "events_found": 1, "auc_pr": 0.8,
         "vus_pr": 0.6, "vus_roc": 0.7, "best_tp": 2, "best_fp": 0, "best_fn": 0, "series_best_f1": 1.0, "seconds": 1.0},
        {"labelled": 4, "tp": 0, "fp": 0, "fn": 4, "flagged": 0, "events": 2, "events_found": 0, "auc_pr": 0.4,
         "vus_pr": 0.2, "vus_roc": 0.5, "best_tp": 2, "best_fp": 2, "best_fn": 2, "series_best_f1": 0.5, "seconds": 2.0},
    ])
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
