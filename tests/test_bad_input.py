"""The bad-input matrix, through the CLI as a user meets it.

Every refusal: exit code 2, one ``error:`` line naming the file, column or option with what was
expected and what was found, no traceback, no output file left behind. Cases that are not
errors show the right result instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from tests.conftest import make_series, use_store
from tests.test_cli import TINY_OPTIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """One store with one tiny trained model (features f0, f1, f2), shared by the scoring cases."""
    directory = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as patch:
        use_store(patch, directory)
        make_series(600, 0).to_csv("plant.csv")
        result = CliRunner().invoke(cli, ["train", "plant.csv", *TINY_OPTIONS])
        assert result.exit_code == 0, result.output
    return directory


@pytest.fixture
def here(store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_store(monkeypatch, store)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def refused(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def series_text(rows: int = 60, seed: int = 5) -> pd.DataFrame:
    return make_series(rows, seed)


# ------------------------------------------------------------------ refused, when training


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("empty.csv", "", ["empty.csv", "empty"]),
        ("header.csv", "timestamp,f0,f1,f2\n", ["header.csv", "no", "rows"]),
        ("words.csv", "timestamp,name\n2026-01-01,a\n2026-01-02,b\n", ["words.csv", "numeric feature column", "'name'"]),
        (
            "text.csv",
            "timestamp,f0,f1\n2026-01-01,1,2\n2026-01-02,1,x\n2026-01-03,1,3\n",
            ["text.csv", "column 'f1'", "row 2", "'x'"],
        ),
        ("allnan.csv", "timestamp,f0,f1\n2026-01-01,1,\n2026-01-02,2,\n", ["allnan.csv", "column 'f1'", "every cell is empty"]),
        ("inf.csv", "timestamp,f0,f1\n2026-01-01,1,2\n2026-01-02,inf,3\n", ["inf.csv", "column 'f0'", "finite", "inf"]),
        (
            "dup.csv",
            "timestamp,f0\n2026-01-01,1\n2026-01-02,2\n2026-01-01,3\n",
            ["dup.csv", "time column 'timestamp'", "unique", "row 3"],
        ),
        ("single.csv", "timestamp,f0\n2026-01-01,1\n", ["single.csv", "1 rows", "window_size 16"]),
        (
            "names.csv",  # pandas alone would read it as f0 and f0.1
            "timestamp,f0,f0\n2026-01-01,1,2\n2026-01-02,2,3\n",
            ["names.csv", "expected distinct column names", "columns 2 and 3 are both named 'f0'"],
        ),
    ],
)
def test_unusable_training_files_are_refused(here, name, content, fragments):
    Path(name).write_text(content)
    refused(run("train", name, *TINY_OPTIONS), *fragments)


def test_a_series_shorter_than_the_window_is_refused(here):
    make_series(30, 1).to_csv("short.csv")
    refused(run("train", "short.csv", *TINY_OPTIONS), "short.csv", "30 rows", "at least 34", "window_size 16")


def test_an_unreadable_encoding_is_refused(here):
    Path("latin.csv").write_bytes("timestamp,température\n2026-01-01,1\n".encode("latin-1"))
    refused(run("train", "latin.csv", *TINY_OPTIONS), "latin.csv", "UTF-8")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--window-size", "0"], ["--window-size must be an int in [2, 10000]; got 0"]),
        (["--epochs", "-1"], ["--epochs must be an int in [1, 100000]; got -1"]),
        (["--dropout", "1.5"], ["--dropout must be a number in [0, 1); got 1.5"]),
        (["--resample", "soon"], ["--resample must be a positive frequency like 5min"]),
        (["--resample", "0min"], ["--resample must be a positive frequency like 5min, 1h or 1D; got '0min'"]),
        (["--resample", "-5min"], ["--resample must be a positive frequency like 5min, 1h or 1D; got '-5min'"]),
        (["--resample", "1ns"], ["plant.csv", "option resample 1ns would put", "rows on a grid of", "median is"]),
        (["--columns", "f0,nope"], ["plant.csv", "'nope'"]),
        (["--time-col", "when"], ["plant.csv", "'when'"]),
    ],
)
def test_out_of_range_options_are_refused(here, args, fragments):
    refused(run("train", "plant.csv", *args), *fragments)


@pytest.mark.parametrize(
    "yaml_text, fragments",
    [
        ("model: {unitz: [4]}\n", ["spec.yaml", "unknown field model.unitz"]),
        ("training: {epochs: ten}\n", ["spec.yaml", "training.epochs must be an int", "'ten'"]),
        ("window: {stride: 0}\n", ["spec.yaml", "window.stride must be an int in [1, 10000]; got 0"]),
    ],
)
def test_invalid_pipeline_specs_are_refused(here, yaml_text, fragments):
    Path("spec.yaml").write_text(yaml_text)
    refused(run("train", "plant.csv", "-p", "spec.yaml"), *fragments)


# ------------------------------------------------------------------- refused, when scoring


def test_a_column_the_model_needs_is_missing(here):
    series_text().drop(columns="f1").to_csv("partial.csv")
    refused(run("score", "partial.csv", "-o", "partial_out.csv"), "partial.csv", "'f1'")
    assert not Path("partial_out.csv").exists()


@pytest.mark.parametrize(
    "uri, fragments",
    [
        ("models:/anomaly-plant/99", ["models:/anomaly-plant/99", "not found"]),
        ("models:/nobody@champion", ["models:/nobody@champion", "not found"]),
        ("runs:/0123456789abcdef/model", ["runs:/0123456789abcdef/model", "not found"]),
        ("plant-model", ["--model must be a URI like", "'plant-model'"]),
    ],
)
def test_wrong_or_unknown_model_uris_are_refused(here, uri, fragments):
    series_text().to_csv("new.csv")
    refused(run("score", "new.csv", "--model", uri, "-o", "never.csv"), *fragments)
    assert not Path("never.csv").exists()


def test_a_corrupted_model_artifact_is_refused(here, tmp_path, monkeypatch):
    # A copy of the store, so the shared model stays intact for the other cases.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(here, copy)
    use_store(monkeypatch, copy)
    # Artifact locations in the store are absolute: corrupt the original's network in place and
    # restore it afterwards.
    networks = list(here.glob("mlruns/**/artifacts/detector/network.keras"))
    assert len(networks) == 1
    saved = networks[0].read_bytes()
    try:
        networks[0].write_bytes(b"PK\x03\x04 not really a zip")
        series_text().to_csv("new.csv")
        refused(run("score", "new.csv", "-o", "out.csv"), "not a readable anomaly detector", "network.keras")
        assert not Path("out.csv").exists()
    finally:
        networks[0].write_bytes(saved)


def test_an_output_path_that_cannot_be_written(here):
    series_text().to_csv("new.csv")
    os.makedirs("a_directory", exist_ok=True)
    refused(run("score", "new.csv", "-o", "a_directory"), "a_directory", "directory")
    refused(run("score", "new.csv", "-o", "/proc/no/such.csv"), "--output /proc/no/such.csv", "cannot create its directory")
    refused(run("score", "new.csv", "-o", "new.csv/out.csv"), "--output new.csv/out.csv", "new.csv is a file")
    # A name that promises another format is refused, not written as CSV under it.
    refused(run("score", "new.csv", "-o", ""), "found an empty name")
    for name, found in (("scores.json", "found '.json'"), ("scores.tsv", "found '.tsv'"), ("scores", "found no extension")):
        refused(run("score", "new.csv", "-o", name), f"{name}: expected a .csv, .parquet or .pq file", found)
        assert not Path(name).exists()


def test_a_parquet_file_with_two_columns_of_one_name_is_refused(here):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = series_text().reset_index()
    table = pa.Table.from_arrays(
        [pa.array(frame[c]) for c in ("timestamp", "f0", "f1", "f2", "f1")], names=["timestamp", "f0", "f1", "f2", "f1"]
    )
    pq.write_table(table, "twice.parquet")
    refused(run("score", "twice.parquet", "-o", "twice_out.csv"), "twice.parquet", "columns 3 and 5 are both named 'f1'")
    assert not Path("twice_out.csv").exists()


def test_scoring_refuses_to_write_its_results_over_the_file_it_scores(here):
    series_text().to_csv("inplace.csv")
    before = Path("inplace.csv").read_bytes()
    refused(run("score", "inplace.csv", "-o", "./inplace.csv"), "--output inplace.csv", "other than the one being scored")
    assert Path("inplace.csv").read_bytes() == before


def test_json_is_refused_where_the_results_themselves_go_to_stdout(here):
    series_text().to_csv("piped.csv")
    refused(run("score", "piped.csv", "-o", "-", "--json"), "--json", "give --output FILE")
    result = CliRunner().invoke(cli, ["score", "-", "--json"], input=Path("piped.csv").read_text())
    refused(result, "--json", "standard output")


def test_a_label_column_holding_other_values_is_named_when_none_is_found(here):
    frame = series_text()
    frame["anomaly"] = 0
    frame.iloc[20, -1] = 2
    frame.to_csv("labels2.csv")
    refused(run("evaluate", "labels2.csv"), "labels2.csv", "found 'anomaly' holding other values too", "--label-col")


def test_a_model_feature_given_as_the_time_or_label_column_is_named_as_such(here):
    series_text().to_csv("roles.csv")
    for option in ("--time-col", "--label-col"):
        refused(
            run("score", "roles.csv", option, "f1", "-o", "roles_out.csv"),
            f"option {option[2:].replace('-', '_')} should name a column other than the model's features, but 'f1' is one",
        )


def test_a_failed_score_leaves_the_previous_results_untouched(here):
    series_text().to_csv("new.csv")
    assert run("score", "new.csv", "-o", "kept.csv").exit_code == 0
    before = Path("kept.csv").read_bytes()
    series_text().drop(columns="f2").to_csv("new.csv")
    refused(run("score", "new.csv", "-o", "kept.csv"), "'f2'")
    assert Path("kept.csv").read_bytes() == before
    assert not [p for p in Path(".").glob(".kept.csv.*")]  # no temporary file left behind


# ------------------------------------------------------------ not errors: the right result


def score_frame(name: str, *extra: str) -> tuple[pd.DataFrame, str]:
    result = run("score", name, "-o", f"{name}.out.csv", *extra)
    assert result.exit_code == 0, result.output
    return pd.read_csv(f"{name}.out.csv", index_col=0, parse_dates=True), result.stdout


def test_unsorted_timestamps_are_sorted(here):
    frame = series_text(80)
    frame.iloc[::-1].to_csv("reversed.csv")
    frame.to_csv("ordered.csv")
    reversed_out, _ = score_frame("reversed.csv")
    ordered_out, _ = score_frame("ordered.csv")
    assert reversed_out.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(reversed_out, ordered_out)


def test_a_time_column_of_repeating_seconds_is_read_as_a_feature_with_time_col_none(here):
    # The model's features are f0..f2: scoring a file whose "Time" repeats is refused with the way
    # out, which then scores its rows in file order, "Time" ignored as a column the model lacks.
    frame = series_text(80).reset_index(drop=True)
    frame.insert(0, "Time", np.arange(80) // 3)
    frame.to_csv("cards.csv", index=False)
    refused(run("score", "cards.csv", "-o", "cards.out.csv"), "cards.csv", "'Time'", "unique", "--time-col none")
    assert not Path("cards.out.csv").exists()
    scored, output = score_frame("cards.csv", "--time-col", "none")
    assert scored.index.name == "step" and len(scored) == 80
    assert "ignored column(s) the model was not trained on: Time" in output
    # Left out, the column is neither the time column nor read: the same rows, the same scores.
    left_out, output = score_frame("cards.csv", "--exclude-columns", "Time")
    pd.testing.assert_frame_equal(left_out, scored)
    assert "ignored column(s) the model was not trained on: Time" in output


def test_columns_in_another_order_and_extra_columns(here):
    frame = series_text(80)
    frame.to_csv("plain.csv")
    frame[["f2", "f0", "f1"]].assign(humidity=1.0, site="north").to_csv("shuffled.csv")
    plain, _ = score_frame("plain.csv")
    shuffled, output = score_frame("shuffled.csv")
    pd.testing.assert_frame_equal(plain, shuffled)
    assert "note: shuffled.csv: ignored column(s) the model was not trained on: humidity, site" in output


def test_short_gaps_are_filled_and_long_gaps_are_reported_and_not_scored(here):
    frame = series_text(120)
    frame.iloc[30:32, 0] = np.nan  # 2 missing: filled (max_gap 3)
    frame.iloc[60:70, 1] = np.nan  # 10 missing: a gap
    frame.to_csv("gappy.csv")
    out, output = score_frame("gappy.csv")
    assert out["score"].iloc[30:32].notna().all()
    assert out["score"].iloc[60:70].isna().all() and not out["is_anomaly"].iloc[60:70].any()
    assert "note: gappy.csv: 10 rows in 1 gap(s) of more than max_gap=3 missing values were not scored" in output
    # The scoring run lists the gap with its times.
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`anomaly.kind` = 'score'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    gaps = pd.read_csv(client.download_artifacts(run.info.run_id, "results/gaps.csv"))
    assert gaps["rows"].tolist() == [10] and gaps["start"].iloc[0] == str(out.index[60])


@pytest.mark.slow
def test_a_training_run_lists_the_gaps_it_left_out(here):
    frame = make_series(400, 3)
    frame.iloc[200:210, 1] = np.nan
    frame.to_csv("gappy_train.csv")
    trained = run("train", "gappy_train.csv", *TINY_OPTIONS, "--model-name", "gappy", "--json")
    assert trained.exit_code == 0, trained.output
    import json

    from mlflow.tracking import MlflowClient

    run_id = json.loads(trained.stdout.strip().splitlines()[-1])["run_id"]
    client = MlflowClient()
    assert client.get_run(run_id).data.metrics["gap_rows"] == 10
    gaps = pd.read_csv(client.download_artifacts(run_id, "results/gaps.csv"))
    assert gaps["rows"].tolist() == [10] and gaps["start"].iloc[0] == str(frame.index[200])


def test_irregular_sampling_is_reported_and_can_be_resampled(here):
    frame = series_text(100)
    frame.drop(index=frame.index[[20, 21, 55]]).to_csv("irregular.csv")
    _, output = score_frame("irregular.csv")
    assert "note: irregular.csv: irregular sampling: 2 of 96 intervals differ from the usual 5min (from 5min to 15min)" in output
    assert "--resample 5min" in output
    resampled, output = score_frame("irregular.csv", "--resample", "5min")
    assert len(resampled) == 100 and (np.diff(resampled.index.values) == np.timedelta64(5, "m")).all()
    assert "irregular sampling" not in output


def test_a_constant_column_trains_and_scores(here):
    frame = series_text(600, 2).assign(f2=3.0)
    frame.to_csv("constant.csv")
    result = run("train", "constant.csv", *TINY_OPTIONS, "--model-name", "constant")
    assert result.exit_code == 0, result.output
    frame.iloc[:100].to_csv("constant_new.csv")
    out, _ = score_frame("constant_new.csv", "--model", "models:/constant/1")
    # No blow-up: the constant column's errors are measured against its own calibration errors
    # (a tiny model's prediction of it wobbles by ~0.03 scaled units), so z stays ordinary.
    assert out["z_f2"].dropna().abs().max() < 6
    assert np.isfinite(out["score"].dropna()).all()


def test_ctrl_c_marks_the_run_killed_and_an_error_marks_it_failed(here):
    from mlflow.tracking import MlflowClient

    from anomaly.errors import Terminated
    from anomaly.tracking import runs as tracking

    cases = (
        (KeyboardInterrupt(), "KILLED", "interrupted (Ctrl-C, SIGINT)"),
        (Terminated(), "KILLED", "stopped by SIGTERM (kill)"),
        (RuntimeError("disk on fire"), "FAILED", "RuntimeError: disk on fire"),
    )
    for exception, status, tag in cases:
        with pytest.raises(type(exception)):
            with tracking.run(experiment_name="interrupts", run_name="victim") as active:
                raise exception
        run_info = MlflowClient().get_run(active.info.run_id)
        assert run_info.info.status == status
        assert run_info.data.tags[tracking.TAG_ERROR] == tag
