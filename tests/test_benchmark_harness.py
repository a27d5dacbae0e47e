"""Smoke tests of the detection-quality harness in benchmarks/ (not the benchmark itself)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import detection  # noqa: E402


def test_skips_cleanly_when_the_datasets_are_absent(tmp_path, capsys):
    assert detection.main(["all", "--datasets", str(tmp_path / "nowhere"), "--no-mlflow"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("skipped")


def test_pooled_metrics_sum_counts_over_files():
    labels = [np.array([0, 1, 1, 0, 0], bool), np.array([0, 0, 0, 1, 1], bool)]
    flags = [np.array([0, 1, 0, 0, 1], bool), np.array([0, 0, 0, 0, 1], bool)]
    m = detection.pooled_metrics(detection.case_counts(y, f) for y, f in zip(labels, flags))
    # tp 2, fp 1, fn 2, tn 5; events 2 found 2; stretches 3, of which 2 touch an event
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(0.5)
    assert m["far_pct"] == pytest.approx(100 / 6) and m["mar_pct"] == pytest.approx(50.0)
    assert m["event_recall"] == 1.0 and m["event_precision"] == pytest.approx(2 / 3)


def test_threshold_margin_and_gap_filling():
    result = detection.Scores(scores=np.r_[np.linspace(0, 1, 100), [5, 0, 0, 5]], calibration=slice(0, 100))
    _, flags, threshold = detection.postprocess(result, detection.PostProcessing(quantile=0.99, factor=2.0, merge_gap=2))
    assert threshold == pytest.approx(0.5 + 2 * (0.99 - 0.5))
    assert flags[100:].tolist() == [True, True, True, True] and not flags[:100].any()


@pytest.mark.slow
def test_one_skab_file_end_to_end(mlflow_store, tmp_path):
    root = detection.datasets_root(None)
    if not (root / "skab" / "data").is_dir():
        pytest.skip(f"SKAB not found under {root}")
    case = detection.load_skab(root, quick=True)[0]
    params = detection.detector_params(quick=True, seed=0, overrides={"epochs": 2})
    table, per_file = detection.run_dataset("skab", [case], params, detection.POSTPROCESSING, seed=0, log=lambda m: None)
    assert list(table.index) == list(detection.METHODS)
    assert table.loc["flag-all", "recall"] == 1.0 and table.loc["flag-all", "far_pct"] == 100.0
    assert ((table.f1 >= 0) & (table.f1 <= 1)).all()
    assert set(per_file.file) == {case.name}

    output = tmp_path / "out"
    output.mkdir()
    (output / "table.md").write_text("table")
    run_id = detection.log_to_mlflow("skab", True, 0, root, params, detection.POSTPROCESSING, {"skab": table}, output, 1.0)
    import mlflow

    run = mlflow.get_run(run_id)
    assert run.data.params["dataset"] == "skab"
    assert "detector.f1" in run.data.metrics and "detector-pp.f1" not in run.data.metrics
    assert mlflow.get_experiment(run.info.experiment_id).name == detection.EXPERIMENT
