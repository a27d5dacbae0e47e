"""Fleets on Spark: score and train every series of a Spark DataFrame with ``applyInPandas``.

Needs the optional extra: ``pip install 'anomaly[spark]'`` (pyspark).

- :func:`score` groups the rows by series (``groupBy(series_col).applyInPandas``); each group is
  sorted by time inside the function (Spark promises no order), read by the one reader (the same
  column roles, gaps and time rule as a file) and scored by its series' detector with the
  streaming scorer, so each series scores exactly as ``anomaly score`` scores it. The fleet
  model is loaded once per Python worker, by URI, from the tracking store (it is not shipped in
  the closure): executors need the model URI and the store reachable.
- :func:`train` is the "many models" pattern: each group's detector is trained on an executor
  and comes back as the bytes of its saved folder; the driver logs the fleet's run with one
  child run per series and registers the one fleet model, as ``anomaly train --series-col``.

Results are Spark DataFrames with a declared schema: the series column, the time column, then
``score``, ``threshold``, ``is_anomaly`` and ``z_<feature>`` (the union of the fleet's features).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.errors import AnomalyError, DataError
from anomaly.spec import Spec

logger = logging.getLogger(__name__)

__all__ = ["read_table", "score", "score_to_file", "session", "train"]

# The fleets a Python worker has loaded, by (tracking URI, model URI): each worker loads a model
# once, however many groups (and tasks) it scores.
_FLEETS: dict[tuple[str, str], Any] = {}
_SCORE_CHUNK_ROWS = 65536


def _pyspark() -> Any:
    try:
        import pyspark
    except ImportError:
        raise AnomalyError("the Spark engine needs pyspark: pip install 'anomaly[spark]'") from None
    return pyspark


def session(master: str = "local[*]", app_name: str = "anomaly", *, quiet: bool = False) -> Any:
    """A SparkSession for ``anomaly``'s own use (the CLI's ``--engine spark``).

    Times are handled in UTC (``spark.sql.session.timeZone``), as ``anomaly`` reads them, and
    pandas groups travel as Arrow batches. A session that already exists is reused, with its
    own settings. ``quiet`` (the CLI): the JVM logs only fatal errors, since a task's error
    reaches the user as the CLI's one line, and pyspark's warning about pandas 3 is not shown.
    """
    _pyspark()
    import sys
    import warnings

    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if quiet:
        # The Python workers inherit the filter through the environment.
        os.environ.setdefault("PYTHONWARNINGS", f"ignore:{_PANDAS_WARNING}:FutureWarning")
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING, category=FutureWarning)
    spark = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    if quiet:
        spark.sparkContext.setLogLevel("FATAL")
    return spark


_PANDAS_WARNING = "PySpark does not yet fully support pandas"


def read_table(spark: Any, path: str | os.PathLike, *, text_columns: Sequence[str] = ()) -> Any:
    """A CSV (header, types inferred) or Parquet file as a Spark DataFrame.

    CSV is read with the separator the local reader finds (``,``, ``;`` or tab); the
    ``text_columns`` (a fleet's series column) are read as text, so that ``007`` stays ``007``.
    """
    from contextlib import closing

    from anomaly.data.formats import file_kind, open_reader

    if not Path(path).exists():
        raise DataError(f"{path}: file not found")
    # Absolute, because the JVM resolves a relative path against its own start-up directory.
    text = str(Path(path).resolve())
    kind = file_kind(Path(text), str(path))
    if kind == "parquet":
        return spark.read.parquet(text)
    if kind in ("zip", "xz"):  # Spark reads gzip and bz2 text, not these
        shown = "a zip archive" if kind == "zip" else "xz-compressed"
        raise DataError(f"{path}: {shown}, which Spark does not read: unpack it, or gzip the file instead")
    with closing(open_reader(path, str(path), 64)) as reader:
        sep, decimal = reader.text_format or (",", ".")
    if decimal != ".":
        raise DataError(f"{path}: its numbers use decimal commas, which Spark does not read: convert it to Parquet first")
    csv = spark.read.option("header", True).option("sep", sep)
    inferred = csv.option("inferSchema", True).csv(text)
    if not set(text_columns) & set(inferred.columns):
        return inferred
    from pyspark.sql import types as T

    fields = [T.StructField(f.name, T.StringType()) if f.name in text_columns else f for f in inferred.schema.fields]
    return csv.schema(T.StructType(fields)).csv(text)


def _column(name: str) -> Any:
    """A column by its name, quoted, so that ``temp.in`` is not read as a field of ``temp``."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _plain_names(df: Any) -> tuple[Any, list[str]]:
    """``df`` with its columns renamed ``c0``, ``c1``, ... and their names, in order.

    ``applyInPandas`` resolves every column by name, where ``temp.in`` means a field of
    ``temp``: the groups travel under plain names and get theirs back inside the function.
    """
    names = list(df.columns)
    return df.toDF(*(f"c{i}" for i in range(len(names)))), names


def _check_series_ids(df: Any, series_col: str, shown: str) -> None:
    """Every row must name its series (the local reader refuses a row without one too)."""
    if df.filter(_column(series_col).isNull()).limit(1).count():
        raise DataError(f"{shown}: a row has no series id in column {series_col!r}")


@contextmanager
def _task_errors(shown: str) -> Iterator[None]:
    """An input error raised in a Spark task as the one-line error it was, not a JVM traceback."""
    import warnings

    try:
        with warnings.catch_warnings():
            # toPandas retries a failed Arrow collection without Arrow, warning with the traceback.
            warnings.filterwarnings("ignore", message="toPandas attempted Arrow optimization", category=UserWarning)
            yield
    except Exception as err:
        found = _TASK_ERROR.findall(str(err)) if type(err).__module__.startswith(("pyspark", "py4j")) else []
        if not found:
            raise
        raise DataError(found[-1]) from None


# The last line of a Python traceback that Spark passes on: "anomaly.errors.DataError: <message>"
# (every error of anomaly's own is an input error, exit code 2).
_TASK_ERROR = re.compile(r"^anomaly\.[\w.]+Error: (.+)$", re.MULTILINE)


# ---------------------------------------------------------------------------- scoring


def _fleet_for(model_uri: str, tracking_uri: str) -> Any:
    """The fleet of ``model_uri``, loaded once per Python worker from the tracking store."""
    key = (tracking_uri, model_uri)
    if key not in _FLEETS:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        from anomaly.fleet.model import Fleet
        from anomaly.tracking import runs as tracking

        resolved = tracking.resolve_model(model_uri)
        if not resolved.fleet:
            raise DataError(f"model {model_uri} is a one-series model; Spark scoring needs a fleet model")
        _FLEETS[key] = Fleet.load(resolved.detector_dir)
    return _FLEETS[key]


def _in_time_order(group: pd.DataFrame, time_col: str) -> pd.DataFrame:
    """The group's rows sorted by time (stable): parsed times for text, the values otherwise."""
    from anomaly.data.columns import parse_time

    times = group[time_col].to_numpy()
    if group[time_col].dtype == object or pd.api.types.is_string_dtype(group[time_col]):
        try:  # parsed as the reader will parse them (one format for every cell: 02/01 and 13/01 alike)
            times = parse_time(group[time_col], "", time_col).to_numpy()
        except DataError:
            pass  # the reader says what is wrong with them, in their order
    order = np.argsort(times, kind="stable")
    return group.iloc[order].reset_index(drop=True)


def score_group(
    group: pd.DataFrame,
    *,
    spec: Spec,
    model_uri: str,
    tracking_uri: str,
    series_col: str,
    time_col: str,
    columns: list[str],
    skip_unknown: bool = False,
    shown: str = "Spark DataFrame",
) -> pd.DataFrame:
    """Score one series (one Spark group) with its detector, as ``anomaly score`` scores a file.

    Parameters
    ----------
    group : DataFrame of shape (L, C)
        The series' rows in any order, with ``series_col`` and ``time_col``.
    columns : list of str
        The result columns after the series column (the declared schema's order).

    Returns
    -------
    DataFrame of shape (L, 1 + len(columns))
    """
    from anomaly import pipelines

    fleet = _fleet_for(model_uri, tracking_uri)
    name = str(group[series_col].iloc[0])
    if name not in fleet:
        if skip_unknown:
            logger.warning("series %r is not in the fleet model %s: skipped", name, model_uri)
            return pd.DataFrame(columns=[series_col, *columns])
        raise fleet.unknown([name], shown)
    raw = _in_time_order(group, time_col).drop(columns=[series_col])
    detector = fleet.detector(name)
    shown = f"{shown}, series {name!r}"
    spec = spec.override(time_col=time_col)
    opened = pipelines.open_input(spec, raw, detector, _SCORE_CHUNK_ROWS, shown=shown)
    with tempfile.TemporaryDirectory(prefix="anomaly-spark-") as tmp:
        target = Path(tmp) / "results.parquet"
        source, _, _ = pipelines.scoring_pass(spec, raw, detector, _SCORE_CHUNK_ROWS, target, opened)
        source.close()
        results = pd.read_parquet(target)
    results = results.rename(columns={results.columns[0]: time_col}).reindex(columns=columns)
    results.insert(0, series_col, name)
    return results


def _time_type(df: Any, time_col: str) -> Any:
    """The results' time column type: numbers stay numbers, everything else is a timestamp."""
    from pyspark.sql import types as T

    kind = df.schema[time_col].dataType
    if isinstance(kind, (T.IntegerType, T.LongType, T.ShortType)):
        return T.LongType()
    if isinstance(kind, (T.FloatType, T.DoubleType, T.DecimalType)):
        return T.DoubleType()
    return T.TimestampType()


def score(
    df: Any,
    model_uri: str,
    *,
    series_col: str,
    time_col: str,
    spec: Spec | None = None,
    skip_unknown: bool = False,
    shown: str = "Spark DataFrame",
) -> Any:
    """Score every series of a Spark DataFrame with its detector from a fleet model.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Rows of many series in any order: ``series_col``, ``time_col`` and each series' features.
    model_uri : str
        A fleet model (``models:/<name>/<version>``, ``runs:/<id>/model``) in the tracking store
        in effect (``MLFLOW_TRACKING_URI``), which executors must reach too.
    series_col, time_col : str
    spec : Spec, optional
        How to read the series (gaps, label column); default: the defaults.
    skip_unknown : bool, default False
        Leave out series the model does not know (logged) instead of failing.
    shown : str
        The data's name in messages (the file the CLI read).

    Returns
    -------
    pyspark.sql.DataFrame
        One row per input row: ``series_col`` (string), ``time_col``, ``score``, ``threshold``,
        ``is_anomaly`` (boolean) and ``z_<feature>`` (doubles).
    """
    _pyspark()
    from pyspark.sql import types as T

    from anomaly.tracking import runs as tracking

    for column in (series_col, time_col):
        if column not in df.columns:
            raise DataError(f"{shown}: expected a column {column!r}, but it has {df.columns}")
    _check_series_ids(df, series_col, shown)
    tracking_uri = tracking.tracking_uri()
    fleet = _fleet_for(model_uri, tracking_uri)  # checked here, on the driver: a clear error before any task
    result_columns = fleet.result_columns()[1:]
    fields = [T.StructField(series_col, T.StringType()), T.StructField(time_col, _time_type(df, time_col))]
    for name in result_columns:
        fields.append(T.StructField(name, T.BooleanType() if name == "is_anomaly" else T.DoubleType()))
    schema = T.StructType(fields)
    options = dict(
        spec=spec or Spec(),
        model_uri=model_uri,
        tracking_uri=tracking_uri,
        series_col=series_col,
        time_col=time_col,
        columns=[time_col, *result_columns],
        skip_unknown=skip_unknown,
        shown=shown,
    )

    plain, names = _plain_names(df)

    def scored(group: pd.DataFrame) -> pd.DataFrame:
        return score_group(group.set_axis(names, axis=1), **options)

    return plain.groupBy(plain.columns[names.index(series_col)]).applyInPandas(scored, schema=schema)


@dataclass(frozen=True)
class SparkScoreResult:
    """What :func:`score_to_file` produced."""

    run_id: str
    experiment_id: str
    output: str
    series: int
    rows: int
    flagged: int
    seconds: float


def score_to_file(
    df: Any,
    model_uri: str,
    output: str | os.PathLike,
    *,
    series_col: str,
    time_col: str,
    spec: Spec | None = None,
    skip_unknown: bool = False,
    shown: str = "Spark DataFrame",
) -> SparkScoreResult:
    """:func:`score`, collected to the driver into one results file, in one scoring run.

    What ``anomaly score --engine spark`` does: the results table (CSV or Parquet, replaced
    atomically) has the series column first, each series' rows in time order, series by name.
    For data that does not fit on the driver, call :func:`score` and write with Spark instead.
    """
    from anomaly.data.writing import ResultsSink
    from anomaly.fleet import jobs
    from anomaly.tracking import runs as tracking

    start = time.perf_counter()
    spec = spec or Spec()
    resolved = tracking.resolve_model(model_uri)
    sink = ResultsSink(output)
    with jobs.fleet_model_run(spec, resolved, "score", shown) as active:
        tracking.log_params({"data.file": shown, "model_uri": resolved.uri, "output": str(output), "fleet.engine": "spark"})
        results = score(
            df, model_uri, series_col=series_col, time_col=time_col, spec=spec, skip_unknown=skip_unknown, shown=shown
        )
        with _task_errors(shown):
            frame = results.toPandas().sort_values([series_col, time_col], kind="stable")
        if frame.empty:  # before anything is written: the results of an earlier run stay as they were
            known = len(_fleet_for(model_uri, tracking.tracking_uri()))
            why = "--skip-unknown left none" if skip_unknown else "the table has no rows"
            raise DataError(f"{shown}: no series the fleet model knows (it has {known} series; {why})")
        try:
            sink.write(frame.set_index(series_col))
            sink.commit()
        finally:
            sink.abort()
        per_series = (
            frame.groupby(series_col, sort=False)
            .agg(rows=("score", "size"), flagged=("is_anomaly", "sum"), max_score=("score", "max"))
            .sort_values("flagged", ascending=False, kind="stable")
            .reset_index()
        )
        tracking.log_table(per_series, "results/series.csv")
        flagged = int(frame["is_anomaly"].sum())
        tracking.log_metrics(
            {"series": len(per_series), "rows": len(frame), "flagged": flagged, "seconds": time.perf_counter() - start}
        )
        run_id, experiment_id = active.info.run_id, active.info.experiment_id
    return SparkScoreResult(
        run_id=run_id,
        experiment_id=experiment_id,
        output=str(output),
        series=len(per_series),
        rows=len(frame),
        flagged=flagged,
        seconds=time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------- training

_TRAINED_FIELDS = [
    ("series", "string"),
    ("ok", "boolean"),
    ("error", "string"),
    ("exit_code", "long"),
    ("rows", "long"),
    ("features", "string"),
    ("threshold", "double"),
    ("epochs_run", "long"),
    ("best_val_loss", "double"),
    ("final_loss", "double"),
    ("seconds", "double"),
    ("notes", "string"),
    ("example", "string"),
    ("detector", "binary"),
]


def train_group(
    group: pd.DataFrame, *, spec: Spec, series_col: str, time_col: str, shown: str = "Spark DataFrame"
) -> pd.DataFrame:
    """Train one series (one Spark group) as ``anomaly train`` trains a file; one row back.

    Returns
    -------
    DataFrame of shape (1, len(_TRAINED_FIELDS))
        The outcome, with the saved detector folder as the bytes of a gzipped tar.
    """
    from anomaly import pipelines
    from anomaly.detector import Detector, example_rows, example_to_json
    from anomaly.fleet.workers import EXAMPLE_ROWS, failure, training_figures

    name = str(group[series_col].iloc[0])
    start = time.perf_counter()
    row: dict[str, Any] = {field: None for field, _ in _TRAINED_FIELDS}
    row.update(series=name, ok=False, error="", exit_code=0, notes="[]")
    try:
        raw = _in_time_order(group, time_col).drop(columns=[series_col])
        series, notes = pipelines.read_training_series(spec.override(time_col=time_col), raw, f"{shown}, series {name!r}")
        detector = Detector(**spec.detector_params())
        try:
            detector.fit(series.frame)
        except DataError as err:
            raise DataError(f"series {name!r}: {err}") from None
        detector.read_options_ = pipelines.reading_options(spec)
        with tempfile.TemporaryDirectory(prefix="anomaly-spark-") as tmp:
            saved = detector.save(Path(tmp) / "detector")
            packed = io.BytesIO()
            with tarfile.open(fileobj=packed, mode="w:gz") as archive:
                archive.add(saved, arcname="detector")
        row.update(
            training_figures(detector),
            ok=True,
            rows=len(series.frame),
            features=json.dumps(series.feature_names),
            notes=json.dumps(notes),
            example=example_to_json(example_rows(series.frame, EXAMPLE_ROWS, with_times=bool(detector.calendar_.cycles))),
            detector=packed.getvalue(),
        )
    except Exception as err:  # noqa: BLE001 - one series' failure is its own
        row["error"], row["exit_code"] = failure(err, name)
    row["seconds"] = time.perf_counter() - start
    return pd.DataFrame([row])


def train(df: Any, spec: Spec, *, series_col: str, time_col: str, shown: str = "Spark DataFrame") -> Any:
    """Train one detector per series of a Spark DataFrame on the executors; log and register the fleet.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        Rows of many (normal) series in any order: ``series_col``, ``time_col`` and features.
    spec : Spec
        The spec every series is trained with (its seed included).
    series_col, time_col : str
    shown : str
        The data's name in the runs.

    Returns
    -------
    anomaly.fleet.jobs.FleetTrainResult
        The fleet run (one child run per series, logged by the driver) and the registered model.
    """
    _pyspark()
    from anomaly.detector import example_from_json
    from anomaly.fleet import jobs
    from anomaly.fleet.workers import TAG_SERIES, SeriesTrained

    start = time.perf_counter()
    for column in (series_col, time_col):
        if column not in df.columns:
            raise DataError(f"{shown}: expected a column {column!r}, but it has {df.columns}")
    _check_series_ids(df, series_col, shown)
    spec = spec.override(series_col=series_col, time_col=time_col)
    schema = ", ".join(f"{name} {kind}" for name, kind in _TRAINED_FIELDS)

    plain, names = _plain_names(df)

    def trained(group: pd.DataFrame) -> pd.DataFrame:
        return train_group(group.set_axis(names, axis=1), spec=spec, series_col=series_col, time_col=time_col, shown=shown)

    with _task_errors(shown):
        rows = plain.groupBy(plain.columns[names.index(series_col)]).applyInPandas(trained, schema=schema).collect()
    rows.sort(key=lambda r: r["series"])
    with tempfile.TemporaryDirectory(prefix="anomaly-fleet-") as tmp:
        work = Path(tmp)

        def unpack(parent_id: str, experiment_id: str) -> list[SeriesTrained]:
            outcomes = []
            for i, r in enumerate(rows):
                outcome = SeriesTrained(r["series"], ok=bool(r["ok"]), error=r["error"] or "", exit_code=int(r["exit_code"] or 0))
                outcome.seconds = float(r["seconds"])
                if outcome.ok:
                    folder = work / "detectors" / f"{i:05d}"
                    folder.mkdir(parents=True)
                    with tarfile.open(fileobj=io.BytesIO(r["detector"]), mode="r:gz") as archive:
                        archive.extractall(folder, filter="data")
                    outcome.detector_dir = str(folder / "detector")
                    outcome.rows, outcome.threshold = int(r["rows"]), float(r["threshold"])
                    outcome.epochs_run = int(r["epochs_run"])
                    outcome.best_val_loss, outcome.final_loss = float(r["best_val_loss"]), float(r["final_loss"])
                    outcome.features, outcome.notes = json.loads(r["features"]), json.loads(r["notes"])
                    outcome.example = example_from_json(r["example"])
                outcome.run_id = _log_series_run(spec, shown, outcome, parent_id, experiment_id, TAG_SERIES)
                outcomes.append(outcome)
            return outcomes

        return jobs.train_logged(spec, shown, [r["series"] for r in rows], {"fleet.engine": "spark"}, work, start, unpack)


def _log_series_run(spec: Spec, shown: str, outcome: Any, parent_id: str, experiment_id: str, tag_series: str) -> str:
    """A series' child run, logged by the driver from what its executor sent back (FAILED with its error)."""
    from anomaly.detector import saved_state
    from anomaly.tracking import runs as tracking

    run_id = ""
    try:
        with tracking.run(
            experiment_id=experiment_id,
            run_name=f"train-{outcome.name}",
            tags={tracking.TAG_KIND: "train-series", tag_series: outcome.name, "anomaly.engine": "spark"},
            description=f"Series `{outcome.name}` of the fleet in `{shown}`, trained on a Spark executor.",
            parent_run_id=parent_id,
        ) as active:
            run_id = active.info.run_id
            tracking.log_params(spec.flat())
            if not outcome.ok:
                raise DataError(outcome.error)
            state = saved_state(outcome.detector_dir)  # the history without loading the network
            for epoch, (loss, val_loss) in enumerate(zip(state["history"]["loss"], state["history"]["val_loss"]), start=1):
                tracking.log_metrics({"loss": loss, "val_loss": val_loss}, step=epoch)
            tracking.log_params({"data.file": f"{shown}, series {outcome.name!r}", "data.rows": outcome.rows})
            tracking.log_params({"data.features": ",".join(outcome.features), "data.n_features": len(outcome.features)})
            tracking.log_metrics(
                {
                    "threshold": outcome.threshold,
                    "epochs_run": outcome.epochs_run,
                    "best_val_loss": outcome.best_val_loss,
                    **state["calibration_summary"],
                }
            )
            tracking.set_notes(outcome.notes)
    except DataError:
        pass  # the run is marked FAILED with the series' error; the fleet goes on
    return run_id
