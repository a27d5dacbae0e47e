"""`anomaly score` in chunks and from stdin, and `anomaly evaluate`, end to end on a real store."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_series, plant_spike, use_store
from tests.test_cli import TINY_OPTIONS, invoke, last_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("stream-store")
    patch = pytest.MonkeyPatch()
    use_store(patch, directory)
    make_series(600, 0).to_csv(directory / "plant.csv")
    test = plant_spike(make_series(300, 50), at=150)
    test.index.name = "timestamp"
    labelled = test.copy()
    labelled["anomaly"] = 0
    labelled.iloc[148:153, -1] = 1
    labelled.iloc[20, 0] = np.nan  # a short gap, interpolated
    labelled.to_csv(directory / "new.csv")
    result = invoke("train", str(directory / "plant.csv"), *TINY_OPTIONS, "--smoothing-span", "2", "--json")
    assert result.exit_code == 0, result.output
    yield directory, last_json(result)
    patch.undo()


def _read(path_or_text) -> pd.DataFrame:
    source = io.StringIO(path_or_text) if isinstance(path_or_text, str) else path_or_text
    return pd.read_csv(source, index_col=0, parse_dates=True)


def test_results_do_not_depend_on_the_chunk_size_or_the_output_format(store):
    directory, _ = store
    outputs = {}
    for rows, name in ((1, "chunks_1.csv"), (7, "chunks_7.parquet"), (65536, "chunks_65536.csv")):
        out = directory / name
        result = invoke("score", str(directory / "new.csv"), "--label-col", "anomaly", "--chunk-rows", str(rows), "-o", str(out))
        assert result.exit_code == 0, result.output
        outputs[rows] = pd.read_parquet(out).set_index("timestamp") if name.endswith(".parquet") else _read(out)
    reference = outputs[65536]
    assert len(reference) == 300 and reference["is_anomaly"].iloc[150]
    for rows, frame in outputs.items():
        assert frame.index.equals(reference.index)
        np.testing.assert_allclose(frame["score"], reference["score"], atol=1e-5, err_msg=f"chunk {rows}")
        assert (frame["is_anomaly"] == reference["is_anomaly"]).all(), rows
    # The events file beside the results names the spiked feature.
    events = json.loads((directory / "chunks_65536_events.json").read_text())
    assert any(e["start_position"] <= 150 <= e["end_position"] and e["top_features"][0]["feature"] == "f1" for e in events)


def test_stdin_to_stdout_gives_the_same_results_as_the_file(store):
    directory, _ = store
    text = (directory / "new.csv").read_text()
    result = invoke("score", "-", "--label-col", "anomaly", input=text)
    assert result.exit_code == 0, result.stderr
    piped = _read(result.stdout)
    assert invoke("score", str(directory / "new.csv"), "--label-col", "anomaly", "-o", str(directory / "f.csv")).exit_code == 0
    from_file = _read(directory / "f.csv")
    assert piped.index.equals(from_file.index)
    np.testing.assert_allclose(piped["score"], from_file["score"], atol=1e-5)
    assert "Scored 300 rows" in result.stderr  # the summary stays off stdout


def test_stdin_is_answered_line_by_line_before_the_input_ends(store):
    """A live feed: each row's result comes out while the writer is still writing."""
    directory, _ = store
    lines = (directory / "new.csv").read_text().splitlines(keepends=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{directory / 'mlflow.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "anomaly", "score", "-", "--label-col", "anomaly"],
        cwd=directory,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # The format is sniffed from the first lines (header + 51 data lines at most).
        head = 80
        process.stdin.write("".join(lines[:head]).encode())
        process.stdin.flush()
        received = b""
        deadline = time.monotonic() + 120
        while received.count(b"\n") < 40 and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                received += os.read(process.stdout.fileno(), 65536)
        # Results arrived while stdin is still open: rows were answered as they came.
        assert received.count(b"\n") >= 40, process.stderr.read1(4096) if process.poll() is not None else received
        assert received.startswith(b"timestamp,score,threshold,is_anomaly")
        process.stdin.write("".join(lines[head:]).encode())
        process.stdin.close()
        rest = process.stdout.read()
        errors = process.stderr.read()
        process.wait(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, errors.decode()
    assert len(_read((received + rest).decode())) == 300


def test_day_first_dates_score_as_their_iso_twin_even_when_the_first_rows_fit_both_orders(store, monkeypatch):
    from anomaly.data import reading

    directory, _ = store
    iso = make_series(300, 50)
    iso.index = pd.date_range("2026-01-12", periods=300, freq="5min", name="timestamp")  # the 13th from row 289
    iso.to_csv(directory / "iso.csv")
    iso.set_axis(iso.index.strftime("%d/%m/%Y %H:%M")).rename_axis("timestamp").to_csv(directory / "dmy.csv")
    # The first 100 rows, all on the 12th, fit both orders alike and are read month-first;
    # the 13th settles it, so the file is read again whole.
    monkeypatch.setattr(reading, "ROLE_SAMPLE_ROWS", 100)
    outputs = {}
    for name in ("iso", "dmy"):
        out = directory / f"{name}_scores.csv"
        result = invoke("score", str(directory / f"{name}.csv"), "--chunk-rows", "50", "-o", str(out))
        assert result.exit_code == 0, result.output
        outputs[name] = _read(out)
    assert "time column 'timestamp' read as day/month/year (%d/%m/%Y %H:%M)" in result.output, result.output
    assert "not in time order" not in result.output
    pd.testing.assert_frame_equal(outputs["dmy"], outputs["iso"])


def test_a_file_out_of_order_past_its_first_rows_is_sorted_to_a_file_and_refused_on_stdout(store, monkeypatch):
    from anomaly.data import reading

    directory, _ = store
    frame = make_series(300, 51)
    frame.index.name = "timestamp"
    frame = frame.iloc[[*range(250), 251, 250, *range(252, 300)]]  # two rows swapped, late in the file
    frame.to_csv(directory / "late_swap.csv")
    monkeypatch.setattr(reading, "ROLE_SAMPLE_ROWS", 100)  # the swap lies past the rows read first
    to_file = invoke("score", str(directory / "late_swap.csv"), "--chunk-rows", "50", "-o", str(directory / "ls.csv"))
    assert to_file.exit_code == 0 and "read whole and sorted" in to_file.output, to_file.output
    to_stdout = invoke("score", str(directory / "late_swap.csv"), "--chunk-rows", "50", "-o", "-")
    assert to_stdout.exit_code == 2, to_stdout.output
    assert "with the results on standard output (-o -)" in to_stdout.stderr and "give -o FILE" in to_stdout.stderr


def test_evaluate_reports_point_metrics_first_and_the_baselines(store):
    directory, trained = store
    result = invoke("evaluate", str(directory / "new.csv"), "--label-col", "anomaly", "--json")
    assert result.exit_code == 0, result.output
    summary = last_json(result)
    metrics = summary["metrics"]
    assert set(metrics) == {"anomaly", "random", "flag_everything"}
    assert metrics["flag_everything"]["point_recall"] == 1.0
    assert metrics["flag_everything"]["point_precision"] == pytest.approx(5 / 300)
    assert metrics["anomaly"]["point_f1"] > metrics["random"]["point_f1"]
    assert "inflated" in result.stderr
    header = next(line for line in result.stderr.splitlines() if "point_precision" in line)
    assert header.split()[0] == "point_precision" and header.split()[-2:] == ["pa_f1", "(inflated)"]
    assert header.split()[2:4] == ["point_f1", "best_f1"]  # the oracle threshold's F1 beside the model's
    assert {"AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC"} <= set(header.split())

    from mlflow.tracking import MlflowClient

    run = MlflowClient().get_run(summary["run_id"])
    assert run.data.tags["anomaly.kind"] == "evaluate"
    assert run.data.tags["anomaly.training_run_id"] == trained["run_id"]
    assert run.data.metrics["point_f1"] == pytest.approx(metrics["anomaly"]["point_f1"])
    assert "flag_everything.point_f1" in run.data.metrics


def test_evaluate_on_a_file_with_nothing_labelled_reports_recall_and_f1_undefined(store):
    directory, _ = store
    pd.read_csv(directory / "new.csv").assign(anomaly=0).to_csv(directory / "quiet.csv", index=False)
    result = invoke("evaluate", str(directory / "quiet.csv"), "--label-col", "anomaly", "--json")
    assert result.exit_code == 0, result.output
    assert "no row is labelled anomalous in 'anomaly': recall and F1 are undefined" in result.stderr
    for method, metrics in last_json(result)["metrics"].items():
        # Undefined is null, not 0.000: nothing labelled is not a detector that missed everything.
        assert metrics["point_recall"] is None and metrics["point_f1"] is None, method
        assert metrics["point_adjusted_f1_inflated"] is None and metrics["point_precision"] == 0.0, method


def test_evaluate_measures_tsb_ad_metrics_on_the_models_scores(store, monkeypatch):
    from anomaly import results
    from anomaly.evaluation.metrics import average_precision, best_f1, find_length_rank, trivial_baselines, vus

    directory, _ = store
    out = directory / "for_metrics.csv"
    assert invoke("score", str(directory / "new.csv"), "--label-col", "anomaly", "-o", str(out)).exit_code == 0
    scored = _read(out)
    labels = pd.read_csv(directory / "new.csv")["anomaly"].to_numpy()
    scores = scored["score"].to_numpy()
    assert np.isnan(scores).any()  # the warm-up: unscored rows take the lowest score

    given = invoke("evaluate", str(directory / "new.csv"), "--label-col", "anomaly", "--vus-window", "7", "--json")
    assert given.exit_code == 0, given.output
    summary = last_json(given)
    assert summary["vus_window"] == 7 and "VUS window 7 (--vus-window)" in given.stderr
    model = summary["metrics"]["anomaly"]
    volumes = vus(labels, scores, window=7)
    assert model["vus_pr"] == pytest.approx(volumes.pr, abs=1e-9)
    assert model["vus_roc"] == pytest.approx(volumes.roc, abs=1e-9)
    assert model["average_precision"] == pytest.approx(average_precision(labels, scores), abs=1e-9)
    assert model["best_f1"] == pytest.approx(best_f1(labels, scores), abs=1e-9)
    expected = trivial_baselines(labels, vus_window=7)["flag_everything"]
    assert summary["metrics"]["flag_everything"]["vus_pr"] == pytest.approx(expected["vus_pr"], abs=1e-12)
    # A window over half the series would give every detector a VUS near 1: refused.
    too_long = invoke("evaluate", str(directory / "new.csv"), "--label-col", "anomaly", "--vus-window", str(len(labels)))
    assert too_long.exit_code == 2 and f"is more than half the {len(labels)} scored rows" in too_long.stderr

    # By default the window is TSB-AD's find_length_rank of the first feature, as scored (the
    # short gap in f0 interpolated), whether the figures' copy of the rows is thinned or not.
    first = pd.read_csv(directory / "new.csv")["f0"].interpolate(limit=3).to_numpy()
    window = find_length_rank(first)
    for full_rows in (results.FULL_ROWS, 64):
        monkeypatch.setattr(results, "FULL_ROWS", full_rows)
        default = invoke("evaluate", str(directory / "new.csv"), "--label-col", "anomaly", "--json")
        assert default.exit_code == 0, default.output
        assert last_json(default)["vus_window"] == window, full_rows
        assert f"VUS window {window} (find_length_rank of the first feature, 'f0'" in default.stderr


def test_evaluate_finds_the_label_column_by_its_name_or_asks_for_it(store, tmp_path):
    directory, _ = store
    found = invoke("evaluate", str(directory / "new.csv"), "--json")
    assert found.exit_code == 0, found.output
    assert "using column 'anomaly' as the labels (--label-col to choose another)" in found.stderr
    named = invoke("evaluate", str(directory / "new.csv"), "--label-col", "anomaly", "--json")
    assert last_json(found)["metrics"] == last_json(named)["metrics"]
    # SKAB's files carry anomaly and changepoint: the anomaly labels are taken, the other named.
    frame = pd.read_csv(directory / "new.csv")
    frame.assign(changepoint=0).to_csv(tmp_path / "two.csv", index=False)
    both = invoke("evaluate", str(tmp_path / "two.csv"), "--json")
    assert "using column 'anomaly' as the labels (--label-col to choose another; also like labels: changepoint)" in both.stderr
    assert last_json(both)["metrics"] == last_json(named)["metrics"]
    frame.drop(columns="anomaly").to_csv(tmp_path / "unlabelled.csv", index=False)
    missing = invoke("evaluate", str(tmp_path / "unlabelled.csv"))
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    assert missing.stderr.strip() == (
        f"error: {tmp_path / 'unlabelled.csv'}: evaluate needs labels: expected a 0/1 column named like labels "
        "(label, anomaly, is_anomaly, ...), found none; give --label-col COLUMN"
    )


def test_flags_follow_the_events_whatever_the_chunk_size(store):
    """With --event-gap / --event-min-length, is_anomaly covers exactly the reported events,
    identically for chunks of 1 row (rows wait for their event) and for one chunk."""
    from anomaly.detection.events import event_flags

    directory, _ = store
    result = invoke(
        "train",
        str(directory / "plant.csv"),
        *TINY_OPTIONS,
        "--threshold-quantile",
        "0.9",
        "--threshold-margin",
        "1.5",
        "--event-gap",
        "4",
        "--event-min-length",
        "3",
        "--model-name",
        "events-model",
        "--json",
    )
    assert result.exit_code == 0, result.output
    outputs = {}
    for rows in (1, 65536):
        out = directory / f"events_{rows}.csv"
        scored = invoke(
            "score",
            str(directory / "new.csv"),
            "--model",
            "models:/events-model/latest",
            "--chunk-rows",
            str(rows),
            "-o",
            str(out),
        )
        assert scored.exit_code == 0, scored.output
        outputs[rows] = _read(out)
    frame = outputs[65536]
    raw = (frame["score"] > frame["threshold"]).to_numpy()
    expected = event_flags(raw, gap=4, min_length=3)
    assert raw.sum() > 0 and not np.array_equal(expected, raw)  # the test exercises filling/dropping
    np.testing.assert_array_equal(frame["is_anomaly"].to_numpy(), expected)
    np.testing.assert_array_equal(outputs[1]["is_anomaly"].to_numpy(), expected)
    # `anomaly evaluate` measures the same flags.
    evaluated = invoke(
        "evaluate", str(directory / "new.csv"), "--label-col", "anomaly", "--model", "models:/events-model/latest", "--json"
    )
    assert evaluated.exit_code == 0, evaluated.output
    flag_rate = last_json(evaluated)["metrics"]["anomaly"]["flag_rate"]
    assert flag_rate == pytest.approx(expected.mean())
    events = json.loads((directory / "events_65536_events.json").read_text())
    covered = np.zeros(len(frame), dtype=bool)
    for event in events:
        covered[event["start_position"] : event["end_position"] + 1] = True
    np.testing.assert_array_equal(covered, expected)
