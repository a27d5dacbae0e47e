"""Fleets: many series trained and scored in one command, each as its own single-series run would be."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from anomaly.cli import cli
from anomaly.data.fleet import find_series
from anomaly.errors import DataError
from tests.conftest import make_series, plant_spike, use_store
from tests.test_cli import TINY_OPTIONS

NAMES = ["m1", "m2", "m3"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def fleet_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The series as one table, rows interleaved by time, a ``machine`` column first."""
    parts = [frame.reset_index().assign(machine=name) for name, frame in frames.items()]
    table = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable")
    return table[["machine", *[c for c in table.columns if c != "machine"]]]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with a fleet of three series trained from one table (two workers), and the files."""
    directory = tmp_path_factory.mktemp("fleet")
    patch = pytest.MonkeyPatch()
    use_store(patch, directory)
    train = {name: make_series(500, seed) for seed, name in enumerate(NAMES)}
    test = {name: plant_spike(make_series(160, 40 + seed), at=100 + seed) for seed, name in enumerate(NAMES)}
    (directory / "train").mkdir()
    (directory / "test").mkdir()
    for name in NAMES:
        train[name].to_csv(directory / "train" / f"{name}.csv")
        test[name].to_csv(directory / "test" / f"{name}.csv")
    fleet_table(train).to_csv(directory / "fleet_train.csv", index=False)
    fleet_table(test).to_csv(directory / "fleet_test.csv", index=False)
    trained = run("train", "fleet_train.csv", "--series-col", "machine", *TINY_OPTIONS, "--jobs", "2", "--json")
    assert trained.exit_code == 0, trained.output
    yield {"dir": directory, "model": json.loads(trained.stdout.strip().splitlines()[-1])["model_uri"], "out": trained.output}
    patch.undo()


@pytest.fixture
def in_fleet(fleet: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    use_store(monkeypatch, fleet["dir"])
    return fleet


@pytest.mark.slow
def test_each_series_of_a_fleet_scores_as_its_own_single_series_run(in_fleet: dict):
    scored = run("score", "fleet_test.csv", "--series-col", "machine", "--model", in_fleet["model"], "-o", "fleet_scores.csv")
    assert scored.exit_code == 0, scored.output
    results = pd.read_csv("fleet_scores.csv")
    assert list(results.columns[:5]) == ["machine", "timestamp", "score", "threshold", "is_anomaly"]
    events = pd.read_csv("fleet_events.csv")
    assert set(events.machine) == set(NAMES)
    for seed, name in enumerate(NAMES):
        single = run("train", f"train/{name}.csv", *TINY_OPTIONS, "--model-name", f"single-{name}", "--json")
        assert single.exit_code == 0, single.output
        uri = json.loads(single.stdout.strip().splitlines()[-1])["model_uri"]
        assert run("score", f"test/{name}.csv", "--model", uri, "-o", f"single_{name}.csv").exit_code == 0
        expected = pd.read_csv(f"single_{name}.csv")
        mine = results[results.machine == name].reset_index(drop=True)
        assert mine.timestamp.tolist() == expected.timestamp.tolist()
        np.testing.assert_allclose(mine.score.to_numpy(), expected.score.to_numpy(), rtol=0, atol=1e-6, equal_nan=True)
        np.testing.assert_allclose(mine.threshold.to_numpy(), expected.threshold.to_numpy(), atol=1e-6, equal_nan=True)
        assert mine.is_anomaly.tolist() == expected.is_anomaly.tolist()
        assert bool(mine.is_anomaly.iloc[100 + seed])  # the planted spike


@pytest.mark.slow
def test_a_folder_of_files_is_a_fleet_named_by_the_file_stems(in_fleet: dict):
    scored = run(
        "score", "fleet_test.csv", "--series-col", "machine", "--model", in_fleet["model"], "-o", "table.csv", "--jobs", "1"
    )
    assert scored.exit_code == 0, scored.output
    trained = run("train", "train", *TINY_OPTIONS, "--model-name", "folder-fleet", "--jobs", "1", "--json")
    assert trained.exit_code == 0, trained.output
    uri = json.loads(trained.stdout.strip().splitlines()[-1])["model_uri"]
    scored = run("score", "test/*.csv", "--model", uri, "-o", "folder.csv", "--jobs", "1")
    assert scored.exit_code == 0, scored.output
    by_folder = pd.read_csv("folder.csv").rename(columns={"series": "machine"})
    by_table = pd.read_csv("table.csv")
    # The same seed and the same rows: the same detectors, whichever way the fleet was given.
    by_folder = by_folder.sort_values(["machine", "timestamp"]).reset_index(drop=True)
    by_table = by_table.sort_values(["machine", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(by_folder, by_table, atol=1e-6)


@pytest.mark.slow
def test_the_fleet_run_nests_one_child_run_per_series(in_fleet: dict):
    client = mlflow.MlflowClient()
    parents = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`anomaly.kind` = 'train-fleet'", output_format="list"
    )
    parent = parents[-1]  # the module's fleet, trained first
    children = mlflow.search_runs(
        experiment_ids=[parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        output_format="list",
    )
    assert sorted(c.data.tags["anomaly.series"] for c in children) == NAMES
    assert all(c.info.status == "FINISHED" for c in children)
    assert all("loss" in client.get_metric_history(c.info.run_id, "loss")[0].key for c in children)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "fleet")}
    assert {"fleet/series.csv", "fleet/training.csv"} <= artifacts
    assert parent.data.tags["anomaly.model_uri"] == in_fleet["model"]


@pytest.mark.slow
def test_one_bad_series_fails_alone_and_is_named(in_fleet: dict):
    # One good series is enough to show the others still train (each more would only cost time).
    frames = {"m1": make_series(500, 0), "short": make_series(20, 9)}
    fleet_table(frames).to_csv("with_short.csv", index=False)
    result = run(
        "train", "with_short.csv", "--series-col", "machine", *TINY_OPTIONS, "--model-name", "partial", "--jobs", "1", "--json"
    )
    assert result.exit_code == 2
    assert "short" in result.stderr and "1 of 2 series failed" in result.stderr
    assert "with_short.csv, series 'short'" in result.output  # the error names the table and the series
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["failed"] == ["short"] and summary["model_uri"].startswith("models:/partial/")
    failed = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`anomaly.series` = 'short'", output_format="list"
    )
    assert [r.info.status for r in failed] == ["FAILED"]
    assert "rows" in failed[0].data.tags["anomaly.error"]
    # The other trained and is in the model.
    test = pd.read_csv("fleet_test.csv")
    test[test.machine == "m1"].to_csv("m1_test.csv", index=False)
    scored = run("score", "m1_test.csv", "--series-col", "machine", "--model", summary["model_uri"], "-o", "p.csv", "--jobs", "1")
    assert scored.exit_code == 0, scored.output
    assert set(pd.read_csv("p.csv").machine) == {"m1"}


@pytest.mark.slow
def test_a_series_the_model_does_not_know_is_an_error_or_with_skip_unknown_a_note(in_fleet: dict):
    frames = {name: make_series(160, 40 + seed) for seed, name in enumerate(NAMES)}
    frames["new-machine"] = make_series(160, 77)
    fleet_table(frames).to_csv("with_new.csv", index=False)
    refused = CliRunner().invoke(cli, ["score", "with_new.csv", "--series-col", "machine", "--model", in_fleet["model"]])
    assert refused.exit_code == 2
    assert "with_new.csv" in refused.stderr and "'new-machine'" in refused.stderr and "not in the fleet model" in refused.stderr
    assert "Traceback" not in refused.output
    skipped = run(
        "score", "with_new.csv", "--series-col", "machine", "--model", in_fleet["model"],
        "--skip-unknown", "-o", "s.csv", "--jobs", "1",
    )  # fmt: skip
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 series the model does not know: new-machine" in skipped.output
    assert set(pd.read_csv("s.csv").machine) == set(NAMES)


@pytest.mark.slow
def test_a_fleet_model_given_one_series_says_how_to_give_it_a_fleet(in_fleet: dict):
    refused = CliRunner().invoke(cli, ["score", "test/m1.csv", "--model", in_fleet["model"], "-o", "one.csv"])
    assert refused.exit_code == 2 and not Path("one.csv").exists()
    assert (
        "is a fleet model (one detector per series, by 'machine'): give a table with --series-col machine, or a folder"
        in refused.stderr
    )
    # A table with the fleet's series column is read by it, as if --series-col were given.
    given = run("score", "fleet_test.csv", "--series-col", "machine", "--model", in_fleet["model"], "-o", "given.csv")
    remembered = run("score", "fleet_test.csv", "--model", in_fleet["model"], "-o", "remembered.csv", "--jobs", "1")
    assert given.exit_code == remembered.exit_code == 0, remembered.output
    assert "is a fleet model by 'machine', a column of fleet_test.csv: read as its series (--series-col)" in remembered.output
    assert Path("remembered.csv").read_bytes() == Path("given.csv").read_bytes()
    pd.read_csv("fleet_test.csv").assign(label=0).to_csv("labelled_table.csv", index=False)
    evaluated = run("evaluate", "labelled_table.csv", "--label-col", "label", "--model", in_fleet["model"], "--jobs", "1")
    assert evaluated.exit_code == 0 and "m3" in evaluated.output and "(pooled)" in evaluated.output, evaluated.output


@pytest.mark.slow
def test_a_fleet_score_in_which_no_series_scores_leaves_earlier_results_as_they_were(in_fleet: dict):
    good = run(
        "score", "fleet_test.csv", "--series-col", "machine", "--model", in_fleet["model"], "-o", "kept.csv", "--jobs", "1"
    )
    assert good.exit_code == 0, good.output
    before = {name: Path(name).read_bytes() for name in ("kept.csv", "kept_events.csv", "kept_events.json")}
    pd.read_csv("fleet_test.csv").groupby("machine").head(3).to_csv("too_short.csv", index=False)
    failed = run(
        "score", "too_short.csv", "--series-col", "machine", "--model", in_fleet["model"], "-o", "kept.csv", "--jobs", "1"
    )
    assert failed.exit_code == 2 and "no series scored" in failed.stderr, failed.output
    assert {name: Path(name).read_bytes() for name in before} == before


@pytest.mark.slow
def test_evaluate_measures_each_series_pooled_and_on_average(in_fleet: dict):
    frames = {}
    for seed, name in enumerate(NAMES):
        frame = plant_spike(make_series(160, 40 + seed), at=100 + seed)
        frame["label"] = 0
        frame.iloc[100 + seed, frame.columns.get_loc("label")] = 1
        frames[name] = frame
    fleet_table(frames).to_csv("labelled.csv", index=False)
    result = run(
        "evaluate", "labelled.csv", "--series-col", "machine", "--model", in_fleet["model"], "--jobs", "1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: labelled.csv: using column 'label' as the labels" in result.stderr  # no --label-col needed
    assert all(f"] {n}  160 rows  1 labelled" in result.stderr for n in NAMES), result.stderr  # one line per series
    assert "VUS windows: each series its own (" in result.stderr and "the pooled rows" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 3 * 160 and summary["vus_window"] > 0
    metrics = summary["metrics"]
    assert set(metrics) == {
        *(f"{n}/anomaly" for n in NAMES),
        "(pooled)/anomaly",
        "(pooled)/random",
        "(pooled)/flag_everything",
        "(mean)/anomaly",
    }
    assert all(metrics[f"{n}/anomaly"]["event_recall"] == 1.0 for n in NAMES)
    mean_f1 = np.mean([metrics[f"{n}/anomaly"]["point_f1"] for n in NAMES])
    assert metrics["(mean)/anomaly"]["point_f1"] == pytest.approx(mean_f1)
    assert metrics["(pooled)/anomaly"]["average_precision"] > metrics["(pooled)/random"]["average_precision"]


# ------------------------------------------------------------------ finding the series


def test_a_table_is_split_by_its_series_column_in_order_of_first_appearance(tmp_path: Path):
    pd.DataFrame({"id": ["b", "a", "b", "a"], "time": [1, 1, 2, 2], "x": [0.1, 0.2, 0.3, 0.4]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    (tmp_path / "w").mkdir()
    found = find_series(tmp_path / "t.csv", "id", tmp_path / "w", chunk_rows=1)
    assert [s.name for s in found] == ["b", "a"]
    assert found[0].shown.endswith("t.csv, series 'b'")
    assert pd.read_csv(found[0].path).to_dict("list") == {"time": [1, 2], "x": [0.1, 0.3]}


def test_series_ids_are_text_in_every_chunk_so_zeros_in_front_stay(tmp_path: Path):
    # Read as numbers, 007 became 7 in a chunk of digits and stayed 007 in one with letters.
    ids = ["007"] * 3 + ["zz"] * 3
    pd.DataFrame({"id": ids, "time": [1, 2, 3] * 2, "x": range(6)}).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "w").mkdir()
    for chunk_rows in (2, 100):
        assert [s.name for s in find_series(tmp_path / "t.csv", "id", tmp_path / "w", chunk_rows=chunk_rows)] == ["007", "zz"]


def test_a_fleets_name_is_its_tables_or_folders_not_a_patterns():
    from anomaly.data.fleet import fleet_stem

    names = {"pumps/*.csv": "pumps", "pumps/": "pumps", "servers.parquet": "servers", "*.csv": "fleet", ".": "fleet"}
    assert {given: fleet_stem(given) for given in names} == names


def test_a_parquet_tables_unnamed_pandas_row_labels_are_not_a_column(tmp_path: Path):
    from anomaly.data.reading import read_series

    # pandas saves a concatenated frame's labels (0, 1, ... 0, 1, ...) beside its columns.
    frame = pd.concat([make_series(40, 1), make_series(40, 2)]).reset_index()
    frame.index = [*range(40), *range(40)]
    frame.assign(timestamp=pd.date_range("2026-01-01", periods=80, freq="5min")).to_parquet(tmp_path / "t.parquet")
    assert read_series(tmp_path / "t.parquet").feature_names == ["f0", "f1", "f2"]
    named = make_series(40, 1)  # a time index saved by pandas is the time column
    named.to_parquet(tmp_path / "n.parquet")
    assert read_series(tmp_path / "n.parquet").time_col == "timestamp"


@pytest.mark.parametrize(
    ("content", "series_col", "fragments"),
    [
        ("time,x\n1,2\n", "machine", ["t.csv", "--series-col 'machine' is not a column", "'time', 'x'"]),
        ("machine,time,x\na,1,2\n,2,3\n", "machine", ["t.csv", "row 2 (line 3)", "no series id"]),
        ("time,x\n1,2\n", None, ["t.csv", "needs --series-col"]),
    ],
)
def test_bad_fleet_tables_are_one_line_errors(tmp_path: Path, content: str, series_col: str | None, fragments: list[str]):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(DataError) as caught:
        find_series(tmp_path / "t.csv", series_col, tmp_path)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_parquet_row_without_a_series_id_is_named_by_its_row_alone(tmp_path: Path):
    pd.DataFrame({"machine": ["a", None], "time": [1, 2], "x": [2.0, 3.0]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError) as caught:
        find_series(tmp_path / "t.parquet", "machine", tmp_path)
    assert str(caught.value) == f"{tmp_path / 't.parquet'}: row 2 has no series id in column 'machine'"  # no lines


def test_a_folder_of_compressed_files_names_each_series_by_its_inner_stem(tmp_path: Path):
    import gzip

    from anomaly.data.reading import read_series

    (tmp_path / "f").mkdir()
    make_series(40, 1).to_csv(tmp_path / "f" / "pump-1.csv")
    (tmp_path / "f" / "pump-2.csv.gz").write_bytes(gzip.compress(make_series(40, 2).to_csv().encode()))
    (tmp_path / "f" / "notes.gz").write_bytes(gzip.compress(b"not a table"))  # no data suffix inside: not a series
    found = find_series(tmp_path / "f", None, tmp_path)
    assert [s.name for s in found] == ["pump-1", "pump-2"]
    assert read_series(found[1].path).frame.shape == (40, 3)


def test_bad_fleet_folders_are_one_line_errors(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected data files"):
        find_series(tmp_path / "empty", None, tmp_path)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "a.csv").write_text("x\n1\n")
    (tmp_path / "two" / "a.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="two files name series 'a'"):
        find_series(tmp_path / "two", None, tmp_path)
    with pytest.raises(DataError, match="one or the other"):
        find_series(tmp_path / "two", "machine", tmp_path)


def test_a_fleet_command_on_a_missing_folder_or_an_empty_glob_exits_2(mlflow_store: Path):
    result = CliRunner().invoke(cli, ["train", "nothing/*.csv"])
    assert result.exit_code == 2
    assert "nothing/*.csv: expected data files" in result.stderr
    shutil.rmtree(mlflow_store / "nothing", ignore_errors=True)


def test_the_series_column_left_out_of_the_features_is_taken_as_meant():
    from anomaly.fleet.jobs import _series_col_apart
    from anomaly.spec import Spec

    spec = Spec().override(series_col="machine", exclude_columns=("machine", "id"))
    assert _series_col_apart(spec).data.exclude_columns == ("id",)
    alone = _series_col_apart(Spec().override(series_col="machine", exclude_columns=("machine",)))
    assert alone.data.exclude_columns is None
    with pytest.raises(DataError, match="--columns names the series column 'machine'"):
        _series_col_apart(Spec().override(series_col="machine", columns=("machine", "a")))
