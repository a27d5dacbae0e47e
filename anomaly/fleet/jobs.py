"""A fleet's jobs: train one detector per series, score and evaluate every series, in parallel.

Each job is one MLflow run for the fleet. Training nests one child run per series under it and
registers one fleet model (:class:`~anomaly.fleet.model.Fleet`); scoring and evaluating log one
run with a per-series table. The per-series work is :mod:`anomaly.fleet.workers`'s, which is the
single-series code path (the one reader, ``Detector.fit``, the streaming scorer), so each
series gets what ``anomaly train``/``score`` of its own file would give.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.data.fleet import SeriesFile, find_series, fleet_stem, series_table
from anomaly.data.formats import list_names
from anomaly.data.writing import STDOUT, ResultsSink
from anomaly.errors import DataError, SpecError
from anomaly.fleet import workers
from anomaly.fleet.model import Fleet
from anomaly.pipelines import (
    DEFAULT_CHUNK_ROWS,
    EVALUATION_COLUMNS,
    VERBS,
    check_vus_window,
    default_output,
    log_events,
    model_run,
)
from anomaly.spec import Spec, dump_spec
from anomaly.tracking import figures as plots
from anomaly.tracking import runs as tracking

logger = logging.getLogger(__name__)


class _SeriesOutcomes:
    """``failed`` and ``exit_code`` of a fleet job's result, from its ``series`` outcomes."""

    series: list[Any]

    @property
    def failed(self) -> list[Any]:
        """The series that did not succeed."""
        return [s for s in self.series if not s.ok]

    @property
    def exit_code(self) -> int:
        """0 when every series succeeded; else 2 for bad input, 1 when any failure was a bug."""
        return max((s.exit_code for s in self.failed), default=0)


@dataclass(frozen=True)
class FleetTrainResult(_SeriesOutcomes):
    """What training a fleet produced; ``failed`` lists the series that did not train."""

    run_id: str
    experiment_id: str
    model_uri: str | None
    model_version: str | None
    series: list[workers.SeriesTrained]
    seconds: float


@dataclass(frozen=True)
class FleetScoreResult(_SeriesOutcomes):
    """What scoring a fleet produced: one :class:`~anomaly.fleet.workers.SeriesScored` per series."""

    run_id: str
    experiment_id: str
    model_uri: str
    series: list[workers.SeriesScored]
    events: pd.DataFrame = field(repr=False)
    table: pd.DataFrame = field(repr=False)  # per series, most flagged events first
    output: Path | str | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def _check_jobs(jobs: int | None) -> int:
    if jobs is None:
        return workers.default_jobs()
    if not isinstance(jobs, int) or jobs < 1:
        raise DataError(f"--jobs must be an int >= 1; got {jobs!r}")
    return jobs


def train_fleet(
    spec: Spec,
    source: str | Path,
    *,
    jobs: int | None = None,
    on_series: Callable[[workers.SeriesTrained], None] | None = None,
) -> FleetTrainResult:
    """Train one detector per series of a fleet with one spec, log the fleet and register one model.

    Parameters
    ----------
    spec : Spec
        The spec every series is trained with; ``spec.data.series_col`` names the series column
        of a single table.
    source : path, folder or glob
        See :func:`anomaly.data.fleet.find_series`.
    jobs : int, optional
        Worker processes (default: one per core).
    on_series : callable(outcome), optional
        Told each series' outcome as it finishes.

    Returns
    -------
    FleetTrainResult
        ``model_uri`` is None when no series trained.
    """
    start = time.perf_counter()
    spec = _series_col_apart(spec)
    jobs = _check_jobs(jobs)
    with tempfile.TemporaryDirectory(prefix="anomaly-fleet-") as tmp:
        work = Path(tmp)
        series = _find_series(source, spec, work)

        def train(parent_id: str, experiment_id: str) -> list[workers.SeriesTrained]:
            tracking.log_table(series_table(series), "fleet/series.csv")
            (work / "detectors").mkdir()
            tasks = [(spec, s, parent_id, experiment_id, str(work / "detectors")) for s in series]
            return workers.run_tasks(workers.train_series, tasks, jobs, on_series)

        return train_logged(spec, str(source), [s.name for s in series], {"fleet.jobs": jobs}, work, start, train)


def train_logged(
    spec: Spec,
    shown: str,
    names: list[str],
    params: dict[str, Any],
    work: Path,
    start: float,
    train: Callable[[str, str], list[workers.SeriesTrained]],
) -> FleetTrainResult:
    """The fleet's training run (the spec logged; its series' runs nest under it) around
    ``train(parent_run_id, experiment_id)``, which trains every series; then the fleet registered."""
    with tracking.run(
        experiment_name=spec.experiment_name,
        run_name=f"train-fleet-{fleet_stem(shown)}",
        tags={tracking.TAG_KIND: "train-fleet", **{f"versions.{k}": v for k, v in tracking.library_versions().items()}},
        description=f"Fleet training on `{shown}`: {len(names)} series, one detector each; the series are the child runs.",
    ) as active:
        tracking.log_params(spec.flat())
        tracking.log_params({"data.file": shown, "fleet.series": len(names), **params})
        tracking.log_text(dump_spec(spec), "spec.yaml")
        parent_id, experiment_id = active.info.run_id, active.info.experiment_id
        outcomes = train(parent_id, experiment_id)
        logged = register_fleet(spec, shown, outcomes, work, start)
    return FleetTrainResult(parent_id, experiment_id, logged.uri, logged.version, outcomes, time.perf_counter() - start)


def _find_series(source: str | Path, spec: Spec, work: Path, **options: Any) -> list[SeriesFile]:
    """The fleet's series (:func:`anomaly.data.fleet.find_series`), a table's parts written under ``work``."""
    (work / "parts").mkdir()
    return find_series(source, spec.data.series_col, work / "parts", **options)


def register_fleet(spec: Spec, shown: str, outcomes: list[workers.SeriesTrained], work: Path, start: float) -> Any:
    """In the fleet's active run: the per-series table and figure, then the one fleet model, registered.

    Raises
    ------
    DataError
        When no series trained (the run is then marked FAILED).
    """
    table = _training_table(outcomes)
    tracking.log_table(table, "fleet/training.csv")
    trained = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    tracking.log_metrics({"series_trained": len(trained), "series_failed": len(failed), "seconds": time.perf_counter() - start})
    if failed:
        tracking.set_tags({"anomaly.failed_series": ", ".join(o.name for o in failed)[:5000]})
    if not trained:
        raise DataError(f"{shown}: no series trained; the first error: {failed[0].name}: {failed[0].error}")
    _log_fleet_figure(
        table,
        "trained",
        [("threshold", "threshold"), ("final_loss", "final loss"), ("rows", "rows")],
        f"Fleet training: {len(trained)} series",
    )
    fleet = Fleet(spec.data.series_col or "series", {o.name: Path(o.detector_dir) for o in trained if o.detector_dir})
    fleet_dir = fleet.save(work / tracking.FLEET_ARTIFACT)
    example = _input_example(fleet, trained)
    logged = tracking.log_detector(
        fleet_dir,
        example,
        Fleet.load(fleet_dir).score(example),
        spec.model_name,
        spec.tracking.alias,
        artifact=tracking.FLEET_ARTIFACT,
    )
    tracking.set_tags({tracking.TAG_MODEL_URI: logged.uri, tracking.TAG_MODEL_VERSION: logged.version})
    return logged


def _log_fleet_figure(table: pd.DataFrame, status: str, panels: list[tuple[str, str]], title: str) -> None:
    """The per-series table's rows of ``status`` drawn as ``plots/fleet.png`` (see :func:`~anomaly.tracking.figures.fleet_figure`)."""
    tracking.log_figure(plots.fleet_figure(table[table.status == status], panels, title), "plots/fleet.png")


def _training_table(outcomes: list[workers.SeriesTrained]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series": [o.name for o in outcomes],
            "status": ["trained" if o.ok else "failed" for o in outcomes],
            "rows": [o.rows for o in outcomes],
            "threshold": [o.threshold for o in outcomes],
            "epochs_run": [o.epochs_run for o in outcomes],
            "best_val_loss": [o.best_val_loss for o in outcomes],
            "final_loss": [o.final_loss for o in outcomes],
            "seconds": [o.seconds for o in outcomes],
            "run_id": [o.run_id for o in outcomes],
            "error": [o.error for o in outcomes],
        }
    )


def _input_example(fleet: Fleet, trained: list[workers.SeriesTrained]) -> pd.DataFrame:
    """The first rows of two trained series, with the series column, for the model's signature.

    Its columns are the union of every series' features (NaN where a series has none), so that
    the signature admits the rows of every series. A series whose network gets the time of day
    has its times in its example (example_rows): the first such series for each time column is
    in the example too, whichever its place, so that the signature keeps that column (with its type).
    """
    features = list(dict.fromkeys(f for o in trained for f in o.features))
    shown = list(trained[:2])
    times: list[str] = []
    for outcome in trained:
        for column in outcome.example.columns if outcome.example is not None else ():
            if column not in outcome.features and column not in times:
                times.append(column)
                if outcome not in shown:
                    shown.append(outcome)
    parts = []
    for outcome in shown:
        assert outcome.example is not None
        parts.append(outcome.example.reindex(columns=[*times, *features]).assign(**{fleet.series_col: outcome.name}))
    example = pd.concat(parts, ignore_index=True)[[fleet.series_col, *times, *features]]
    # Rows of a series without times have none there: NaT, so that the column stays datetimes.
    return example.assign(**{column: pd.to_datetime(example[column]) for column in times})


def _resolve_fleet(model_uri: str | None, default_model_name: str | None) -> tuple[Any, Fleet]:
    resolved = tracking.resolve_model(model_uri, default_model_name)
    if not resolved.fleet:
        raise DataError(
            f"--model {resolved.uri} is a one-series model; --series-col and folders need a fleet model "
            "(train one with 'anomaly train FLEET --series-col COLUMN')"
        )
    return resolved, Fleet.load(resolved.detector_dir)


def _known_series(
    source: str | Path, spec: Spec, fleet: Fleet, work: Path, chunk_rows: int, skip_unknown: bool
) -> tuple[list[SeriesFile], list[str]]:
    """The series the fleet has a detector for; the others are an error, or a note with ``skip_unknown``."""
    shown = str(source)
    series = _find_series(source, spec, work, chunk_rows=chunk_rows)
    unknown = [s.name for s in series if s.name not in fleet]
    if not unknown:
        return series, []
    if not skip_unknown:
        raise fleet.unknown(unknown, shown)
    known = [s for s in series if s.name in fleet]
    if not known:
        raise DataError(f"{shown}: no series the fleet model knows (it has {len(fleet)} series; --skip-unknown left none)")
    return known, [f"{shown}: skipped {len(unknown)} series the model does not know: {list_names(unknown, quoted=False)}"]


def _run_scoring(
    spec: Spec,
    fleet: Fleet,
    series: list[SeriesFile],
    work: Path,
    chunk_rows: int,
    jobs: int,
    keep: bool,
    on_series: Callable[[workers.SeriesScored], None] | None,
) -> list[workers.SeriesScored]:
    (work / "results").mkdir(exist_ok=True)
    tasks = []
    for i, s in enumerate(series):
        saved = fleet.detector_dir(s.name)
        assert saved is not None  # a fleet loaded from its folder
        results = None if keep else str(work / "results" / f"{i:05d}.parquet")
        tasks.append((spec, s, str(saved), results, chunk_rows, keep))
    return workers.run_tasks(workers.score_series, tasks, jobs, on_series)


def _series_col_apart(spec: Spec) -> Spec:
    """The spec with the series column out of ``exclude_columns`` (it is never a feature: each
    series' rows are read without it); naming it in ``columns`` is an error."""
    series_col, data = spec.data.series_col, spec.data
    if series_col is None:
        return spec
    if series_col in (data.columns or ()):
        raise DataError(f"--columns names the series column {series_col!r} (--series-col), which is never a feature")
    if series_col in (data.exclude_columns or ()):
        others = tuple(c for c in data.exclude_columns if c != series_col) or None
        return dataclasses.replace(spec, data=dataclasses.replace(data, exclude_columns=others))
    return spec


def _none_scored(shown: str, outcomes: list[workers.SeriesScored]) -> DataError:
    return DataError(f"{shown}: no series scored; the first error: {outcomes[0].name}: {outcomes[0].error}")


def _scoring_table(outcomes: list[Any]) -> pd.DataFrame:
    """One row per series, the most flagged events first (then the most flagged rows)."""
    table = pd.DataFrame(
        {
            "series": [o.name for o in outcomes],
            "status": ["scored" if o.ok else "failed" for o in outcomes],
            "events": [0 if o.events is None else len(o.events) for o in outcomes],
            "flagged": [o.flagged for o in outcomes],
            "rows": [o.rows for o in outcomes],
            "scored": [o.scored for o in outcomes],
            "max_score": [o.max_score for o in outcomes],
            "threshold": [o.threshold for o in outcomes],
            "max_threshold": [o.max_threshold for o in outcomes],
            "gap_rows": [o.gap_rows for o in outcomes],
            "seconds": [o.seconds for o in outcomes],
            "error": [o.error for o in outcomes],
        }
    )
    return table.sort_values(["events", "flagged"], ascending=False, kind="stable").reset_index(drop=True)


def score_fleet(
    spec: Spec,
    source: str | Path,
    *,
    model_uri: str | None = None,
    output: str | Path | None = None,
    default_model_name: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    jobs: int | None = None,
    skip_unknown: bool = False,
    on_series: Callable[[workers.SeriesScored], None] | None = None,
) -> FleetScoreResult:
    """Score every series of a fleet with its own detector, write one results table, log one run.

    Each series is scored in time order with its own carried state, chunk by chunk, as
    ``anomaly score`` scores one file; series are scored in parallel on ``jobs`` workers.

    Parameters
    ----------
    spec : Spec
        How to read the series; ``spec.data.series_col`` for a single table.
    source : path, folder or glob
    model_uri, default_model_name
        As for :func:`anomaly.pipelines.score_pipeline`; the model must be a fleet model.
    output : path or "-", optional
        One results table for the whole fleet (CSV or Parquet; ``-`` for CSV on stdout), with
        the series column first, replaced atomically once every series is scored; events beside
        it. Default: :func:`anomaly.pipelines.default_output` of ``source``.
    chunk_rows, jobs
    skip_unknown : bool, default False
        Leave out series the model does not know (a note says which), instead of an error.
    on_series : callable(outcome), optional

    Returns
    -------
    FleetScoreResult
    """
    start = time.perf_counter()
    spec = _series_col_apart(spec)
    jobs = _check_jobs(jobs)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise DataError(f"--chunk-rows must be an int >= 1; got {chunk_rows!r}")
    shown = str(source)
    if output is None:
        output = default_output(Path(fleet_stem(shown)))
    output = STDOUT if str(output) == STDOUT else Path(output)
    resolved, fleet = _resolve_fleet(model_uri, default_model_name)
    with tempfile.TemporaryDirectory(prefix="anomaly-fleet-") as tmp:
        work = Path(tmp)
        series, notes = _known_series(source, spec, fleet, work, chunk_rows, skip_unknown)
        sink = ResultsSink(output)  # checks, before the run starts, that the output can be written
        with fleet_model_run(spec, resolved, "score", shown) as active:
            tracking.log_params(
                {
                    "data.file": shown,
                    "model_uri": resolved.uri,
                    "output": str(output),
                    "chunk_rows": chunk_rows,
                    "fleet.jobs": jobs,
                }
            )
            outcomes = _run_scoring(spec, fleet, series, work, chunk_rows, jobs, False, on_series)
            ok = [o for o in outcomes if o.ok]
            for o in outcomes:
                notes.extend(o.notes)
            if not ok:  # before anything is written: the results of an earlier run stay as they were
                tracking.log_table(_scoring_table(outcomes), "results/series.csv")
                tracking.set_notes(notes, 5000)
                raise _none_scored(shown, outcomes)
            try:
                _merge_results(fleet, ok, sink)
                written = sink.commit()
            finally:
                sink.abort()
            events = _merge_events(fleet, ok)
            table = _scoring_table(outcomes)
            records = [{fleet.series_col: o.name, **r} for o in ok for r in o.event_records]
            log_events(events, json.dumps(records, indent=1, default=str), written)
            tracking.log_table(table, "results/series.csv")
            tracking.set_notes(notes, 5000)
            if ok:
                panels = [("events", "flagged events"), ("flagged", "flagged rows"), ("max_score", "max score")]
                _log_fleet_figure(table, "scored", panels, f"Fleet scoring: {len(ok)} series, most flagged events first")
            rows = sum(o.rows for o in ok)
            flagged = sum(o.flagged for o in ok)
            tracking.log_metrics(
                {
                    "series": len(outcomes),
                    "series_failed": len(outcomes) - len(ok),
                    "rows": rows,
                    "flagged": flagged,
                    "events": len(events),
                    "flagged_fraction": flagged / max(sum(o.scored for o in ok), 1),
                    "seconds": time.perf_counter() - start,
                }
            )
            run_id, experiment_id = active.info.run_id, active.info.experiment_id
    return FleetScoreResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=resolved.uri,
        series=outcomes,
        events=events,
        table=table,
        output=output,
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def fleet_model_run(spec: Spec, resolved: Any, kind: str, shown: str) -> Any:
    """The fleet's scoring (or evaluation) run: in its training run's experiment, linked to it."""
    description = f"{VERBS[kind]} the fleet in `{shown}` with model `{resolved.uri}`."
    return model_run(spec, resolved, f"{kind}-fleet", f"{kind}-fleet-{fleet_stem(shown)}", description)


def _merge_results(fleet: Fleet, outcomes: list[workers.SeriesScored], sink: ResultsSink) -> None:
    """Every series' results into one table, series by series, with the series column first."""
    import pyarrow.parquet as pq

    wanted = fleet.result_columns()[1:]
    for o in outcomes:
        assert o.results is not None
        with pq.ParquetFile(o.results) as part:
            for batch in part.iter_batches(batch_size=DEFAULT_CHUNK_ROWS):
                frame = batch.to_pandas()
                first = frame.columns[0]  # the time (or step) column the series' results start with
                frame = frame.set_index(first).reindex(columns=wanted)
                frame.insert(0, fleet.series_col, o.name)
                sink.write(frame.reset_index().set_index(fleet.series_col))


def _merge_events(fleet: Fleet, outcomes: list[workers.SeriesScored]) -> pd.DataFrame:
    parts = []
    for o in outcomes:
        if o.events is not None and len(o.events):
            part = o.events.copy()
            part.insert(0, fleet.series_col, o.name)
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[fleet.series_col, "start", "end", "steps", "peak_score", "top_features"])
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class FleetEvaluateResult(_SeriesOutcomes):
    """Detection quality per series, pooled over the fleet and on average, beside trivial baselines."""

    run_id: str
    experiment_id: str
    model_uri: str
    table: pd.DataFrame = field(repr=False)  # index (series, method), columns EVALUATION_COLUMNS
    series: list[workers.SeriesScored] = field(repr=False)
    seconds: float
    notes: list[str] = field(default_factory=list)
    vus_window: int = 100  # the pooled figures' (each series' own is its find_length_rank)


POOLED = "(pooled)"
MEAN = "(mean)"


def evaluate_fleet(
    spec: Spec,
    source: str | Path,
    *,
    model_uri: str | None = None,
    default_model_name: str | None = None,
    seed: int = 0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    vus_window: int | None = None,
    jobs: int | None = None,
    skip_unknown: bool = False,
    on_series: Callable[[workers.SeriesScored], None] | None = None,
) -> FleetEvaluateResult:
    """Measure detection quality on a labelled fleet: per series, pooled and on average.

    Each series is measured as :func:`anomaly.pipelines.evaluate_pipeline` measures one file
    (its own VUS window unless ``vus_window`` is given). ``(pooled)`` measures every series'
    rows together (the VUS window: ``vus_window``, else the median of the series' windows) beside
    the random and flag-everything baselines on the same rows; ``(mean)`` is the mean over
    series of each metric, as TSB-AD reports a benchmark.

    Returns
    -------
    FleetEvaluateResult
        ``table`` has one row per (series, method): ``anomaly`` for each series, then
        ``(pooled)`` with ``anomaly``, ``random``, ``flag_everything``, then ``(mean)``.
    """
    from anomaly.evaluation.metrics import evaluate_scores, trivial_baselines

    start = time.perf_counter()
    spec = _series_col_apart(spec)
    jobs = _check_jobs(jobs)
    if not spec.data.label_col:
        raise SpecError("evaluate needs labels: give --label-col COLUMN (a column of 0/1 or true/false)")
    shown = str(source)
    resolved, fleet = _resolve_fleet(model_uri, default_model_name)
    with tempfile.TemporaryDirectory(prefix="anomaly-fleet-") as tmp:
        work = Path(tmp)
        series, notes = _known_series(source, spec, fleet, work, chunk_rows, skip_unknown)
        with fleet_model_run(spec, resolved, "evaluate", shown) as active:
            tracking.log_params(
                {"data.file": shown, "model_uri": resolved.uri, "label_col": spec.data.label_col, "baseline_seed": seed}
            )
            outcomes = _run_scoring(spec, fleet, series, work, chunk_rows, jobs, True, on_series)
            ok = [o for o in outcomes if o.ok]
            if not ok:
                raise _none_scored(shown, outcomes)
            rows: dict[tuple[str, str], dict[str, float]] = {}
            windows = []
            for o in ok:
                notes.extend(o.notes)
                if vus_window is not None:
                    check_vus_window(vus_window, len(o.labels), f"{shown}, series {o.name!r}")
                window = vus_window if vus_window is not None else (o.vus_window or 100)
                windows.append(window)
                rows[(o.name, "anomaly")] = evaluate_scores(o.labels, o.scores, o.flags, gap=o.event_gap, vus_window=window)
            labels = np.concatenate([o.labels for o in ok])
            scores = np.concatenate([o.scores for o in ok])
            flags = np.concatenate([o.flags for o in ok])
            pooled_window = vus_window if vus_window is not None else int(np.median(windows))
            options = dict(gap=ok[0].event_gap, vus_window=pooled_window, segments=[len(o.labels) for o in ok])
            rows[(POOLED, "anomaly")] = evaluate_scores(labels, scores, flags, **options)
            for method, row in trivial_baselines(labels, rng_seed=seed, flag_rate=float(flags.mean()), **options).items():
                rows[(POOLED, method)] = row
            per_series = pd.DataFrame([rows[(o.name, "anomaly")] for o in ok])[EVALUATION_COLUMNS]
            rows[(MEAN, "anomaly")] = per_series.mean().to_dict()
            table = pd.DataFrame.from_dict(rows, orient="index")[EVALUATION_COLUMNS]
            table.index = pd.MultiIndex.from_tuples(table.index, names=["series", "method"])
            # Pooled figures under their plain names (as a one-series evaluation logs them),
            # the baselines and the mean over series prefixed.
            prefix = {(POOLED, "anomaly"): "", (POOLED, "random"): "random.", (POOLED, "flag_everything"): "flag_everything."}
            prefix[(MEAN, "anomaly")] = "mean."
            tracking.log_metrics(
                {
                    f"{prefix[key]}{metric}": float(value)
                    for key, row in table.iterrows()
                    if key in prefix
                    for metric, value in row.items()
                    if np.isfinite(value)
                }
            )
            tracking.log_params({"vus_window": pooled_window, "series": len(ok)})
            tracking.set_notes(notes, 5000)
            tracking.log_table(table.reset_index(), "evaluation/evaluation.csv")
            run_id, experiment_id = active.info.run_id, active.info.experiment_id
    return FleetEvaluateResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=resolved.uri,
        table=table,
        series=outcomes,
        seconds=time.perf_counter() - start,
        notes=notes,
        vus_window=pooled_window,
    )
