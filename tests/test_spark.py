"""Fleets on Spark: a real local[2] session scores and trains as the local fleet command does."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from anomaly.errors import DataError
from tests.conftest import make_series, plant_spike, use_store
from tests.test_cli import TINY_OPTIONS
from tests.test_fleet import NAMES, fleet_table, run

pytestmark = [
    pytest.mark.slow,
    # pyspark 4.x warns on every conversion that it does not "fully support" pandas 3; the
    # scores are checked against the local fleet's to 1e-6, which is what matters here.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark():
    """A local[2] Spark session (Java 17, pyspark from the spark extra); skipped without pyspark
    except under CI, whose set-up installs it."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyspark is not installed; scripts/setup installs the spark extra")
        pytest.skip("pyspark is not installed (pip install 'anomaly[spark]')")
    from anomaly import spark as anomaly_spark

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = anomaly_spark.session("local[2]", app_name="anomaly-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fleet(spark, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with a fleet of three series trained locally (the reference), and its files."""
    directory = tmp_path_factory.mktemp("spark-fleet")
    patch = pytest.MonkeyPatch()
    use_store(patch, directory)
    train = {name: make_series(400, seed) for seed, name in enumerate(NAMES)}
    test = {name: plant_spike(make_series(160, 40 + seed), at=100 + seed) for seed, name in enumerate(NAMES)}
    fleet_table(train).to_csv(directory / "fleet_train.csv", index=False)
    table = fleet_table(test)
    table.to_csv(directory / "fleet_test.csv", index=False)
    # Spark promises no order: the scored table's rows are shuffled before they are grouped.
    table.sample(frac=1.0, random_state=7).to_csv(directory / "shuffled_test.csv", index=False)
    trained = run("train", "fleet_train.csv", "--series-col", "machine", *TINY_OPTIONS, "--jobs", "1", "--json")
    assert trained.exit_code == 0, trained.output
    model = json.loads(trained.stdout.strip().splitlines()[-1])["model_uri"]
    scored = run("score", "fleet_test.csv", "--series-col", "machine", "--model", model, "-o", "local.csv", "--jobs", "1")
    assert scored.exit_code == 0, scored.output
    yield {"dir": directory, "model": model, "local": pd.read_csv(directory / "local.csv", parse_dates=["timestamp"])}
    patch.undo()


@pytest.fixture
def in_fleet(fleet: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    use_store(monkeypatch, fleet["dir"])
    return fleet


def assert_same_scores(mine: pd.DataFrame, local: pd.DataFrame) -> None:
    """Each series' rows, in time order, score as the local fleet scored them (to 1e-6)."""
    mine = mine.sort_values(["machine", "timestamp"], kind="stable").reset_index(drop=True)
    local = local.sort_values(["machine", "timestamp"], kind="stable").reset_index(drop=True)
    assert list(mine.columns) == list(local.columns)
    assert mine.machine.tolist() == local.machine.tolist()
    assert (pd.to_datetime(mine.timestamp) == pd.to_datetime(local.timestamp)).all()
    numbers = [c for c in local.columns if c not in ("machine", "timestamp", "is_anomaly")]
    np.testing.assert_allclose(mine[numbers].to_numpy(float), local[numbers].to_numpy(float), rtol=0, atol=1e-6, equal_nan=True)
    assert mine.is_anomaly.astype(bool).tolist() == local.is_anomaly.astype(bool).tolist()


def test_spark_scores_shuffled_rows_as_the_local_fleet_does(spark, in_fleet: dict):
    from anomaly import spark as anomaly_spark

    frame = anomaly_spark.read_table(spark, "shuffled_test.csv").repartition(3)
    results = anomaly_spark.score(frame, in_fleet["model"], series_col="machine", time_col="timestamp")
    assert results.schema["is_anomaly"].dataType.typeName() == "boolean"
    mine = results.toPandas()
    assert len(mine) == len(in_fleet["local"])
    assert_same_scores(mine, in_fleet["local"])
    flagged = mine[mine.is_anomaly]
    for seed, name in enumerate(NAMES):  # each planted spike is found in its own series
        spike = in_fleet["local"][in_fleet["local"].machine == name].timestamp.iloc[100 + seed]
        assert spike in set(flagged[flagged.machine == name].timestamp)


def test_spark_names_a_series_the_model_does_not_know(spark, in_fleet: dict):
    from anomaly import spark as anomaly_spark

    extra = make_series(60, 99).reset_index().assign(machine="stranger")
    table = pd.concat([pd.read_csv("fleet_test.csv", parse_dates=["timestamp"]), extra], ignore_index=True)
    frame = spark.createDataFrame(table)
    with pytest.raises(Exception, match="stranger"):
        anomaly_spark.score(frame, in_fleet["model"], series_col="machine", time_col="timestamp").toPandas()
    skipped = anomaly_spark.score(
        frame, in_fleet["model"], series_col="machine", time_col="timestamp", skip_unknown=True
    ).toPandas()
    assert set(skipped.machine) == set(NAMES)
    with pytest.raises(DataError, match="'pump'"):
        anomaly_spark.score(frame, in_fleet["model"], series_col="pump", time_col="timestamp")


def test_cli_engine_spark_trains_the_same_fleet_and_scores_it(spark, in_fleet: dict):
    trained = run(
        "train", "fleet_train.csv", "--series-col", "machine", *TINY_OPTIONS,
        "--engine", "spark", "--spark-master", "local[2]", "--model-name", "spark-fleet", "--json",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    assert summary["failed"] == [] and summary["model_uri"].startswith("models:/spark-fleet/")
    # The driver logged the fleet run with one nested child run per series, as the local fleet does.
    children = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`mlflow.parentRunId` = '{summary['run_id']}'",
        output_format="list",
    )
    assert sorted(c.data.tags["anomaly.series"] for c in children) == NAMES
    assert all(c.info.status == "FINISHED" and c.data.tags["anomaly.engine"] == "spark" for c in children)
    # Same seed, same rows: the executors trained the same detectors as the local fleet.
    scored = run(
        "score", "shuffled_test.csv", "--series-col", "machine", "--model", summary["model_uri"],
        "--engine", "spark", "--spark-master", "local[2]", "-o", "spark.csv", "--json",
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout.strip().splitlines()[-1])["rows"] == len(in_fleet["local"])
    assert_same_scores(pd.read_csv("spark.csv", parse_dates=["timestamp"]), in_fleet["local"])


def test_cli_engine_spark_needs_a_series_column_and_a_model(in_fleet: dict):
    result = run("score", "fleet_test.csv", "--engine", "spark", "--model", in_fleet["model"])
    assert result.exit_code == 2 and "--series-col" in result.stderr
    result = run("score", "fleet_test.csv", "--series-col", "machine", "--engine", "spark")
    assert result.exit_code == 2 and "--model" in result.stderr
    # The table is checked before any Spark session starts: one line, exit code 2.
    Path("empty.csv").write_text("machine,timestamp,f0\n")
    result = run("train", "empty.csv", "--series-col", "machine", "--engine", "spark")
    assert result.exit_code == 2 and "empty.csv: expected rows, but the table has none" in result.stderr
    result = run("train", "fleet_train.csv", "--series-col", "pump", "--engine", "spark")
    assert result.exit_code == 2 and "fleet_train.csv: --series-col 'pump' is not a column" in result.stderr
    assert "Traceback" not in result.output


def test_cli_engine_spark_reads_tables_as_the_local_engine_does_and_fails_in_one_line(spark, in_fleet: dict):
    spark_options = ["--engine", "spark", "--spark-master", "local[2]", "--model", in_fleet["model"]]
    test = pd.read_csv("fleet_test.csv")
    # A ;-separated table whose feature names hold dots and spaces scores as the comma one.
    renamed = test.rename(columns={"f0": "temp.in", "f1": "flow rate"})
    renamed.to_csv("semi.csv", sep=";", index=False)
    trained = run("train", "semi.csv", "--series-col", "machine", *TINY_OPTIONS, *spark_options[:4], "--json")
    assert trained.exit_code == 0, trained.output
    model = json.loads(trained.stdout.strip().splitlines()[-1])["model_uri"]
    scored = run("score", "semi.csv", "--series-col", "machine", *spark_options[:4], "--model", model, "-o", "semi_out.csv")
    assert scored.exit_code == 0, scored.output
    assert {"z_temp.in", "z_flow rate"} <= set(pd.read_csv("semi_out.csv").columns)

    def refused(file: str, *fragments: str, extra: tuple[str, ...] = ()) -> None:
        result = run("score", file, "--series-col", "machine", *spark_options, "-o", "kept.csv", *extra)
        assert result.exit_code == 2, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and all(f in last for f in fragments), result.stderr
        assert "Traceback" not in result.stderr
        assert Path("kept.csv").read_text() == "earlier results\n"

    Path("kept.csv").write_text("earlier results\n")
    # An error raised in a task (a series the model does not know, one too short) is one line.
    stranger = pd.concat([test, make_series(60, 99).reset_index().assign(machine="stranger")], ignore_index=True)
    stranger.to_csv("stranger.csv", index=False)
    refused("stranger.csv", "stranger.csv: series 'stranger' not in the fleet model")
    test.groupby("machine").head(2).to_csv("short.csv", index=False)
    refused("short.csv", "short.csv, series 'm", "': 2 rows; scoring needs at least")
    # --skip-unknown leaving nothing to score is an error too, and the earlier results stay.
    stranger[stranger.machine == "stranger"].to_csv("only_stranger.csv", index=False)
    refused("only_stranger.csv", "no series the fleet model knows", extra=("--skip-unknown",))
    # A row without its series id is refused, as the local engine refuses it.
    test.assign(machine=test["machine"].where(test.index != 5)).to_csv("no_id.csv", index=False)
    refused("no_id.csv", "no_id.csv: a row has no series id in column 'machine'")


def test_spark_reads_series_ids_as_text_and_the_separator_the_local_reader_finds(spark, tmp_path: Path):
    from anomaly import spark as anomaly_spark

    path = tmp_path / "ids.csv"
    path.write_text("id;time;x\n007;1;0.5\n010;2;1.5\n")
    rows = anomaly_spark.read_table(spark, path, text_columns=["id"]).toPandas()
    assert rows["id"].tolist() == ["007", "010"] and rows["x"].tolist() == [0.5, 1.5]
    (tmp_path / "comma.csv").write_text("id;x\na;0,5\n")
    with pytest.raises(DataError, match="comma.csv: its numbers use decimal commas, which Spark does not read"):
        anomaly_spark.read_table(spark, tmp_path / "comma.csv")


def test_spark_reads_parquet_by_its_bytes_and_gzip_text_and_refuses_zip(spark, tmp_path: Path):
    import gzip
    import zipfile

    from anomaly import spark as anomaly_spark

    frame = pd.DataFrame({"id": ["a", "b"], "x": [0.5, 1.5]})
    frame.to_parquet(tmp_path / "t.parq", index=False)
    assert anomaly_spark.read_table(spark, tmp_path / "t.parq").toPandas()["x"].tolist() == [0.5, 1.5]
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    assert anomaly_spark.read_table(spark, tmp_path / "t.csv.gz").toPandas()["x"].tolist() == [0.5, 1.5]
    with zipfile.ZipFile(tmp_path / "t.zip", "w") as archive:
        archive.writestr("t.csv", frame.to_csv(index=False))
    with pytest.raises(DataError, match="t.zip: a zip archive, which Spark does not read"):
        anomaly_spark.read_table(spark, tmp_path / "t.zip")
