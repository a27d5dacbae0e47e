"""The CLI end to end: real training, a real MLflow store in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from anomaly.data.formats import fingerprint
from tests.conftest import make_series, plant_spike

TINY_OPTIONS = [
    "--window-size",
    "16",
    "--stride",
    "2",
    "--units",
    "8",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--learning-rate",
    "0.01",
    "--warmup-steps",
    "2",
    "--seed",
    "3",
    # The tests find single-step spikes at their exact step; the default EWMA (span 15)
    # spreads a spike over the steps after it.
    "--smoothing-span",
    "1",
]


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def files(mlflow_store: Path) -> dict[str, Path]:
    train = mlflow_store / "plant.csv"
    make_series(600, 0).to_csv(train)
    test = mlflow_store / "new.csv"
    plant_spike(make_series(200, 50), at=120).to_csv(test)
    return {"train": train, "test": test}


@pytest.fixture
def trained(files):
    result = invoke("train", str(files["train"]), *TINY_OPTIONS, "--json")
    assert result.exit_code == 0, result.output
    return last_json(result)


@pytest.mark.slow
def test_train_logs_a_complete_run_and_registers_the_model(files, trained, mlflow_store):
    from mlflow.tracking import MlflowClient

    assert trained["model_uri"] == "models:/anomaly-plant/1"
    client = MlflowClient()
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["window.window_size"] == "16" and params["model.units"] == "8" and params["training.seed"] == "3"
    assert params["data.sha256"] == fingerprint(files["train"])
    assert params["data.rows"] == "600" and params["data.features"] == "f0,f1,f2"
    assert run.data.tags["versions.tensorflow-cpu"] or run.data.tags["versions.tensorflow"]
    losses = client.get_metric_history(trained["run_id"], "val_loss")
    assert [m.step for m in losses] == list(range(1, len(losses) + 1)) and len(losses) >= 1
    assert {"threshold", "calibration_score_p99", "best_val_loss"} <= set(run.data.metrics)
    assert "spec.yaml" in {a.path for a in client.list_artifacts(trained["run_id"])}
    assert [a.path for a in client.list_artifacts(trained["run_id"], "plots")] == ["plots/training.png"]
    assert client.get_model_version("anomaly-plant", "1").run_id == trained["run_id"]
    # The default store, in the working directory: what a bare `mlflow ui` there finds.
    assert (mlflow_store / "mlflow.db").exists() and (mlflow_store / "mlruns").is_dir()


@pytest.mark.slow
def test_score_writes_results_flags_the_spike_and_links_the_training_run(files, trained, mlflow_store):
    from mlflow.tracking import MlflowClient

    out = mlflow_store / "out" / "scores.csv"
    result = invoke("score", str(files["test"]), "--output", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = last_json(result)
    assert summary["rows"] == 200 and summary["output"] == str(out) and summary["flagged"] >= 1
    assert "flagged" in result.stderr and "stretches" in result.stderr  # human summary, off stdout

    results = pd.read_csv(out, index_col=0, parse_dates=True)
    assert list(results.columns) == ["score", "threshold", "is_anomaly", "z_f0", "z_f1", "z_f2"]
    assert results.index.name == "timestamp" and len(results) == 200
    assert int(results["score"].idxmax() == results.index[120]) and bool(results["is_anomaly"].iloc[120])
    assert int(results["is_anomaly"].sum()) == summary["flagged"]

    run = MlflowClient().get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["anomaly.training_run_id"] == trained["run_id"]
    assert run.data.tags["anomaly.model_version"] == "1"
    assert trained["run_id"] in run.data.tags["mlflow.note.content"]
    assert run.info.experiment_id == MlflowClient().get_run(trained["run_id"]).info.experiment_id
    artifacts = {a.path for a in MlflowClient().list_artifacts(summary["run_id"], "results")}
    assert artifacts == {"results/scores.csv", "results/events.csv", "results/events.json"}
    # The events files beside the results: one row / record per flagged stretch.
    events = pd.read_csv(out.parent / "scores_events.csv")
    records = json.loads((out.parent / "scores_events.json").read_text())
    assert len(events) == len(records) >= 1
    spike = next(r for r in records if r["start_position"] <= 120 <= r["end_position"])
    assert spike["top_features"][0]["feature"] == "f1" and spike["peak_score"] > summary.get("threshold", 0)
    plots = {a.path for a in MlflowClient().list_artifacts(summary["run_id"], "plots")}
    assert plots == {"plots/scores.png", "plots/events.png"}


@pytest.mark.slow
def test_every_model_uri_form_gives_the_same_scores_as_the_pyfunc_model(files, trained, mlflow_store):
    import mlflow

    outputs = {}
    for uri in (None, trained["model_uri"], f"runs:/{trained['run_id']}/model", "models:/anomaly-plant/latest"):
        out = mlflow_store / f"s{len(outputs)}.csv"
        args = ["score", str(files["test"]), "-o", str(out)] + (["--model", uri] if uri else [])
        assert invoke(*args).exit_code == 0
        outputs[uri] = pd.read_csv(out, index_col=0)
    first = outputs[None]
    for frame in outputs.values():
        pd.testing.assert_frame_equal(frame, first)
    # The registered MLflow model itself (what `mlflow models serve` runs) agrees.
    served = mlflow.pyfunc.load_model(trained["model_uri"]).predict(pd.read_csv(files["test"], index_col=0))
    np.testing.assert_allclose(served["score"].to_numpy(), first["score"].to_numpy(), rtol=1e-6)
    assert served["is_anomaly"].tolist() == first["is_anomaly"].tolist()


@pytest.mark.slow
def test_an_autoregressive_model_trains_logs_and_scores_from_the_cli(files, mlflow_store):
    import mlflow
    from mlflow.tracking import MlflowClient

    result = invoke("train", str(files["train"]), *TINY_OPTIONS, "--autoregressive", "3", "--json")
    assert "lstm 8 on a linear VAR(3), windows of 16" in result.stderr
    trained = last_json(result)
    assert MlflowClient().get_run(trained["run_id"]).data.params["model.autoregressive"] == "3"
    out = mlflow_store / "ar.csv"
    assert invoke("score", str(files["test"]), "-o", str(out)).exit_code == 0
    scores = pd.read_csv(out, index_col=0)["score"]
    assert scores.index[int(np.nanargmax(scores))] == scores.index[120]
    # The linear part travels inside the MLflow model: the served model scores the same.
    served = mlflow.pyfunc.load_model(trained["model_uri"]).predict(pd.read_csv(files["test"], index_col=0))
    np.testing.assert_allclose(served["score"].to_numpy(), scores.to_numpy(), rtol=1e-6)


def test_training_names_the_switching_channels_constant_features_and_counters_it_found(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    frame = make_series(400, 0)
    command = np.zeros(len(frame))
    command[[40, 41, 150, 260, 261, 262, 330]] = 1.0  # four pulses: eight switches
    rare = np.zeros(len(frame))
    rare[200] = 1.0  # switched twice: not a switching channel
    path = tmp_path / "commands.csv"
    total = np.arange(len(frame)) // 3  # a counter: it only rises, so scored values past 133 are new
    frame.assign(command=command, rare=rare, stuck=7.0, total=total).to_csv(path)
    result = invoke("train", str(path), *TINY_OPTIONS, "--json")
    note = "measured against their step, as switching channels (two values in training, switched 4+ times): command"
    [line] = [line for line in result.stderr.splitlines() if "switching channels" in line]
    assert line.endswith(note)  # the command, not the flag that switched twice
    [constant] = [line for line in result.stderr.splitlines() if "held one value" in line]
    assert constant.endswith(
        "1 feature(s) held one value throughout training, so the network's wobble on them is "
        "measured against the other features' median scale: stuck"
    )
    [counter] = [line for line in result.stderr.splitlines() if "only rose" in line]
    assert counter.endswith(
        "1 feature(s) only rose or only fell through training, as a clock or a counter does, so scored values past "
        "their training range will be flagged (--exclude-columns to leave them out): total"
    )
    tags = MlflowClient().get_run(last_json(result)["run_id"]).data.tags
    assert note in tags["anomaly.notes"]


def test_a_saved_row_index_is_left_out_and_a_name_with_a_colon_is_shown_whole(tmp_path, mlflow_store, caplog):
    # DataFrame.to_csv() saves the row index as a nameless first column, which pandas reads back
    # as "Unnamed: 0": a ramp the model would learn, and a name holding the ':' that the events
    # table puts between a name and its share (the score summary raised a ValueError on it).
    names = {"f0": "inlet: pressure", "f1": "outlet: pressure", "f2": "flow"}
    train = tmp_path / "saved.csv"
    make_series(400, 0).rename(columns=names).reset_index().to_csv(train)
    result = invoke("train", str(train), *TINY_OPTIONS)
    assert result.exit_code == 0, result.output
    assert "column 'Unnamed: 0' has no name in the header and counts the rows (0, 1, ...)" in caplog.text
    assert "x 3 features (inlet: pressure, outlet: pressure, flow) in" in result.output
    test = tmp_path / "saved_new.csv"
    plant_spike(make_series(200, 50), at=120).rename(columns=names).reset_index().to_csv(test)
    result = invoke("score", str(test), "--output", str(tmp_path / "scores.csv"))
    assert result.exit_code == 0, result.output
    events = pd.read_csv(tmp_path / "scores_events.csv")
    spike = events.loc[events["peak_score"].idxmax()]
    # The other features' shares round to 0.00, and the table leaves out what would read 0.00.
    assert spike["peak_at"] == "2026-01-01 10:00:00" and spike["top_features"] == "outlet: pressure:1.00"
    [line] = [line for line in result.output.splitlines() if line.strip().startswith(spike["start"])]
    assert line.endswith("peak " + f"{spike['peak_score']:6.2f}" + "  outlet: pressure 100%")  # f1, renamed; 0% shares left out
    result = invoke("train", str(train), *TINY_OPTIONS, "--exclude-columns", "flow,timestamp")
    assert result.exit_code == 0, result.output
    assert "x 2 features (inlet: pressure, outlet: pressure) in" in result.output  # and no time column
    assert "ignored column(s) not used as features: Unnamed: 0, timestamp, flow" in result.output


def test_a_wide_series_is_summarised_in_lines_a_terminal_can_show(tmp_path, mlflow_store):
    # TSB-AD's OPPORTUNITY files have 248 features: naming each one in a note made lines of
    # thousands of characters. Ten names and a count stay readable.
    frame = make_series(400, 0)
    stuck = pd.DataFrame(7.0, index=frame.index, columns=[f"stuck{i:02d}" for i in range(12)])
    path = tmp_path / "wide.csv"
    pd.concat([frame, stuck], axis=1).to_csv(path)
    result = invoke("train", str(path), *TINY_OPTIONS)
    assert result.exit_code == 0, result.output
    [trained] = [line for line in result.output.splitlines() if line.startswith("Trained on")]
    assert f"x {frame.shape[1] + 12} features (" in trained and f", ... ({frame.shape[1] + 2} more)) in " in trained
    [constant] = [line for line in result.output.splitlines() if "held one value" in line]
    assert constant.endswith(
        "stuck00, stuck01, stuck02, stuck03, stuck04, stuck05, stuck06, stuck07, stuck08, stuck09, ... (2 more)"
    )
    assert max(len(line) for line in result.output.splitlines()) < 400


@pytest.mark.slow
def test_train_without_file_runs_the_bundled_demo_pipeline(mlflow_store):
    # The demo spec with tiny overrides: the same code path as `anomaly train`, in seconds.
    result = invoke("train", "--units", "4", "--epochs", "1", "--stride", "64", "--json")
    assert result.exit_code == 0, result.output
    assert last_json(result)["model_uri"] == "models:/anomaly-demo/1"
    assert "Training 'demo' on" in result.stderr and "demo_train.csv" in result.stderr


@pytest.mark.slow
def test_a_failure_inside_a_run_marks_it_failed_with_the_error(mlflow_store):
    from mlflow.tracking import MlflowClient

    short = mlflow_store / "short.csv"
    make_series(20, 0).to_csv(short)
    result = invoke("train", str(short), *TINY_OPTIONS)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {short}: the training series has 20 rows; at least 34 are needed")
    runs = MlflowClient().search_runs([MlflowClient().get_experiment_by_name("anomaly-short").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "at least 34 are needed" in runs[0].data.tags["anomaly.error"]


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 2, one line on stderr naming what is wrong, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "missing.csv"], ["'missing.csv' does not exist"]),
        (["train", "plant.csv", "--window-size", "0"], ["--window-size must be an int in [2, 10000]; got 0"]),
        (["train", "plant.csv", "--epochs", "-1"], ["--epochs must be an int in [1, 100000]; got -1"]),
        (["train", "plant.csv", "--units", "a,b"], ["--units", "expected comma-separated integers"]),
        (["train", "plant.csv", "--autoregressive", "-1"], ["--autoregressive must be an int in [0, 64]; got -1"]),
        (
            ["train", "plant.csv", "--autoregressive", "2", "--residual", "true"],
            ["--autoregressive must be 0 when --residual is true"],
        ),
        (["train", "plant.csv", "--cell", "cnn"], ["--cell", "'cnn' is not one of"]),
        (["train", "plant.csv", "--columns", "f0,nope"], ["plant.csv", "'nope'"]),
        (["train", "-p", "nope.yaml"], ["nope.yaml: pipeline spec not found"]),
        (["train", "-p", "pathless.yaml"], ["no training data: give a FILE argument or set data.path in pathless.yaml"]),
        (["train", "text.csv"], ["text.csv", "column 'f1'", "row 3 holds 'oops'"]),
        (["train", "empty.csv"], ["empty.csv", "empty"]),
        (["score", "plant.csv", "--model", "models:/nothing/1"], ["models:/nothing/1", "not found"]),
        (["score", "plant.csv", "--model", "just-a-name"], ["--model must be a URI like"]),
        (["score", "plant.csv"], ["no registered model", "anomaly train"]),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(files, args, fragments):
    frame = make_series(50, 0).astype(object)
    frame.iloc[2, 1] = "oops"
    frame.to_csv("text.csv")
    Path("empty.csv").write_text("")
    Path("pathless.yaml").write_text("name: plant\nmodel: {units: [4]}\n")
    assert_user_error(CliRunner().invoke(cli, args), *fragments)


@pytest.mark.slow
def test_scoring_a_file_without_a_trained_column_names_it(files, trained):
    make_series(60, 1).drop(columns="f2").to_csv("partial.csv")
    result = CliRunner().invoke(cli, ["score", "partial.csv"])
    assert_user_error(result, "partial.csv", "'f2'")
    assert not Path("results/partial_scores.csv").exists()


def test_help_is_fast_because_nothing_heavy_is_imported():
    code = "import sys, anomaly.cli; heavy = {'tensorflow', 'keras', 'mlflow', 'pandas', 'sklearn'} & set(sys.modules); assert not heavy, heavy"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = invoke("--help")
    assert result.exit_code == 0 and "train" in result.output and "score" in result.output


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", ["SIGINT", "SIGTERM"])
def test_ui_serves_this_store_on_loopback_and_stops_cleanly(files, trained, mlflow_store, stop_signal):
    import signal
    import urllib.request

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "anomaly", "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        cwd=mlflow_store,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    try:
        line = process.stdout.readline()  # printed once the server answers
        assert line.startswith(f"MLflow UI: http://127.0.0.1:{port}"), line
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/get?run_id={trained['run_id']}")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["run"]["info"]["status"] == "FINISHED"
        process.send_signal(getattr(signal, stop_signal))
        assert process.wait(timeout=30) == 0
        with pytest.raises(OSError):  # nothing left listening: the whole server tree stopped
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        if process.poll() is None:
            import os

            os.killpg(process.pid, signal.SIGKILL)


def test_ui_refuses_a_busy_port(mlflow_store):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_user_error(CliRunner().invoke(cli, ["ui", "--port", str(port)]), f"--port {port}", "choose another port")


def test_scoring_reads_a_file_as_its_training_file_was_read_unless_told_otherwise(tmp_path, mlflow_store):
    # Trained in file order (its "Time" repeats, as the seconds of a transaction export do) with
    # longer gaps filled, then scored with no option: read the same way, and told so.
    def cards(rows: int, seed: int, gap: slice) -> Path:
        frame = make_series(rows, seed).reset_index(drop=True)
        frame.insert(0, "Time", np.arange(rows) // 3)
        frame.iloc[gap, 1] = np.nan
        path = tmp_path / f"cards_{seed}.csv"
        frame.to_csv(path, index=False)
        return path

    train, test = cards(400, 0, slice(100, 106)), cards(200, 50, slice(50, 56))
    result = invoke("train", str(train), *TINY_OPTIONS, "--time-col", "none", "--max-gap", "8")
    assert result.exit_code == 0, result.output
    result = invoke("score", str(test), "--output", str(tmp_path / "as_trained.csv"))
    assert result.exit_code == 0, result.output
    assert f"note: {test}: read as the model's training file was (--max-gap 8, --time-col none)" in result.output
    as_trained = pd.read_csv(tmp_path / "as_trained.csv", index_col=0)
    assert as_trained["score"].iloc[50:56].notna().all()  # the 6 missing values filled, as in training
    result = invoke("score", str(test), "--time-col", "none", "--max-gap", "8", "--output", str(tmp_path / "told.csv"))
    assert result.exit_code == 0 and "read as the model's training file was" not in result.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "told.csv", index_col=0), as_trained)
    # Told otherwise, scoring reads otherwise: a gap longer than --max-gap 4 is left unscored.
    result = invoke("score", str(test), "--max-gap", "4", "--output", str(tmp_path / "other.csv"))
    assert result.exit_code == 0 and "(--time-col none)" in result.output
    assert pd.read_csv(tmp_path / "other.csv", index_col=0)["score"].iloc[50:56].isna().all()
    # Told the default itself, too: --max-gap 3 is asked for, not left open.
    result = invoke("score", str(test), "--max-gap", "3", "--output", str(tmp_path / "default.csv"))
    assert result.exit_code == 0 and "(--time-col none)" in result.output
    assert pd.read_csv(tmp_path / "default.csv", index_col=0)["score"].iloc[50:56].isna().all()


def test_a_model_remembers_only_the_reading_options_that_do_not_depend_on_the_files_columns():
    from anomaly.pipelines import reading_options
    from anomaly.spec import Spec

    assert reading_options(Spec()) == {}
    spec = Spec().override(resample="5min", max_gap=3, time_col="None", exclude_columns=("id",))
    assert reading_options(spec) == {"resample": "5min", "time_col": "None"}  # max_gap 3 is the default
    assert reading_options(Spec().override(time_col="ts", max_gap=0)) == {"max_gap": 0, "time_col": "ts"}


def test_a_named_time_column_is_remembered_where_the_scored_file_has_it(tmp_path, mlflow_store):
    # "recorded" is named like no time column and is not the first column: found only when named.
    def plant(rows: int, seed: int, time_name: str) -> Path:
        frame = make_series(rows, seed).reset_index()
        frame = frame.rename(columns={"timestamp": time_name})[["f0", time_name, "f1", "f2"]]
        path = tmp_path / f"plant_{seed}_{time_name}.csv"
        frame.to_csv(path, index=False)
        return path

    result = invoke("train", str(plant(400, 0, "recorded")), *TINY_OPTIONS, "--time-col", "recorded")
    assert result.exit_code == 0, result.output
    test = plant(200, 50, "recorded")
    result = invoke("score", str(test), "--output", str(tmp_path / "remembered.csv"))
    assert result.exit_code == 0, result.output
    assert f"note: {test}: read as the model's training file was (--time-col recorded)" in result.output
    scored = pd.read_csv(tmp_path / "remembered.csv", index_col=0)
    assert scored.index.name == "recorded" and scored.index[0] == "2026-01-01 00:00:00"
    # A file whose time column has another name has its own found as usual, with no note.
    other = plant(200, 50, "timestamp")
    result = invoke("score", str(other), "--output", str(tmp_path / "found.csv"))
    assert result.exit_code == 0 and "read as the model's training file was" not in result.output
    found = pd.read_csv(tmp_path / "found.csv", index_col=0)
    assert found.index.name == "timestamp"
    np.testing.assert_allclose(found["score"].to_numpy(), scored["score"].to_numpy(), equal_nan=True)


def test_a_model_trained_with_resample_refuses_standard_input_in_one_line(tmp_path, mlflow_store):
    train = tmp_path / "plant.csv"
    make_series(400, 0).to_csv(train)
    result = invoke("train", str(train), *TINY_OPTIONS, "--resample", "5min")
    assert result.exit_code == 0, result.output
    result = invoke("score", "-", input=make_series(100, 50).to_csv())
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line == "error: the model, trained with --resample 5min, needs the whole series: give a file, not standard input"


def test_a_remembered_time_column_is_taken_only_where_it_changes_how_the_file_is_read():
    from types import SimpleNamespace

    from anomaly.pipelines import read_as_trained
    from anomaly.spec import Spec

    def taken(time_col: str, head: pd.DataFrame | None) -> str | None:
        model = SimpleNamespace(read_options_={"time_col": time_col}, feature_names_in_=["f0", "f1"])
        spec, notes = read_as_trained(Spec(), model, lambda: head)
        assert (spec.data.time_col is None) == (not notes)
        return spec.data.time_col

    stamps = ["2026-01-01 00:00", "2026-01-01 00:05"]
    found_anyway = pd.DataFrame({"timestamp": stamps, "f0": [1.0, 2.0], "f1": [3.0, 4.0]})
    assert taken("timestamp", found_anyway) is None  # the demo's own: no note on every scoring
    hidden = pd.DataFrame({"f0": [1.0, 2.0], "recorded": stamps, "f1": [3.0, 4.0]})
    assert taken("recorded", hidden) == "recorded"
    assert taken("recorded", found_anyway) is None  # this file has none: found as usual
    assert taken("recorded", None) is None  # standard input: its first rows cannot be read twice
    assert taken("none", None) == "none"


def test_the_features_whose_grown_errors_were_divided_are_named_in_a_note(tmp_path, mlflow_store):
    train = tmp_path / "plant.csv"
    make_series(600, 0).to_csv(train)
    assert invoke("train", str(train), *TINY_OPTIONS).exit_code == 0
    noisier = make_series(6000, 9)
    noisier["f1"] += 0.3 * np.random.default_rng(1).normal(size=len(noisier))  # f1 alone, for good
    test = tmp_path / "noisier.csv"
    noisier.to_csv(test)
    result = invoke("score", str(test), "--output", str(tmp_path / "scores.csv"))
    assert result.exit_code == 0, result.output
    [note] = [line for line in result.output.splitlines() if "scale_follow" in line]
    assert note.startswith(f"note: {test}: ") and "were predicted worse than in calibration for 4,096 rows" in note
    # f1 first, at the cap; the others are predicted from its noisy values, so somewhat worse too.
    assert "(scale_follow, at most 1.5): f1 1.50x" in note
    # A file shorter than the window is scored as trained: no note.
    make_series(3000, 9).to_csv(tmp_path / "short.csv")
    result = invoke("score", str(tmp_path / "short.csv"), "--output", str(tmp_path / "short_scores.csv"))
    assert result.exit_code == 0 and "scale_follow" not in result.output


def test_the_packages_warnings_read_as_the_cli_writes_notes_and_errors():
    import logging

    from anomaly.cli import _UserFormatter

    own = logging.LogRecord("anomaly.data.columns", logging.WARNING, __file__, 1, "x.csv: column %r", ("a",), None)
    other = logging.LogRecord("mlflow.store", logging.WARNING, __file__, 1, "slow", (), None)
    assert _UserFormatter(0).format(own) == "warning: x.csv: column 'a'"
    assert _UserFormatter(0).format(other) == "WARNING mlflow.store: slow"
    assert _UserFormatter(1).format(own) == "WARNING anomaly.data.columns: x.csv: column 'a'"  # -v: where it came from
