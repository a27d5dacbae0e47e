"""The per-series work of a fleet and the worker processes that run it.

Each worker process imports TensorFlow once and then trains or scores one series after another,
on its share of the cores (:func:`anomaly.nn.model.use_threads`). Workers are started with
``spawn``: the parent has MLflow's threads running, and forking a process with threads (or with
TensorFlow loaded) is not safe. With one job, the work runs in the calling process.

A task never raises for a bad series: its outcome says what went wrong, so that one bad series
fails alone (its own child run is marked FAILED) and the others go on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from anomaly.data.fleet import SeriesFile
from anomaly.errors import AnomalyError
from anomaly.spec import Spec

logger = logging.getLogger(__name__)

TAG_SERIES = "anomaly.series"
EXAMPLE_ROWS = 10
T = TypeVar("T")


def default_jobs() -> int:
    """One worker per core this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def _init_worker(threads: int, tracking_uri: str, log_level: int) -> None:
    """Set up a fresh worker: the parent's tracking store, logging, its share of the cores, TensorFlow."""
    from anomaly.nn import model as network

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    network.use_threads(threads)


def run_tasks(
    task: Callable[..., T], arguments: Iterable[tuple[Any, ...]], jobs: int, on_done: Callable[[T], None] | None = None
) -> list[T]:
    """Run ``task(*args)`` for each argument tuple on ``jobs`` worker processes.

    Parameters
    ----------
    task : callable
        A module-level function (workers import it by name).
    arguments : iterable of tuples
    jobs : int
        Worker processes; 1 runs every task here, in order.
    on_done : callable(outcome), optional
        Told each outcome as it arrives (in completion order), e.g. to show progress.

    Returns
    -------
    list
        The outcomes, in the order of ``arguments``.
    """
    from anomaly.tracking import runs as tracking

    pending = list(arguments)
    if jobs <= 1 or len(pending) <= 1:
        outcomes = []
        for args in pending:
            outcomes.append(task(*args))
            if on_done is not None:
                on_done(outcomes[-1])
        return outcomes
    workers = min(jobs, len(pending))
    threads = max(1, default_jobs() // workers)
    context = multiprocessing.get_context("spawn")
    log_level = logging.getLogger().getEffectiveLevel()
    results: dict[int, T] = {}
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads, tracking.tracking_uri(), log_level)
    ) as pool:
        futures: dict[Future[T], int] = {pool.submit(task, *args): i for i, args in enumerate(pending)}
        try:
            for future in _as_completed(futures):
                results[futures[future]] = future.result()
                if on_done is not None:
                    on_done(results[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [results[i] for i in range(len(pending))]


def _as_completed(futures: Iterable[Future[T]]) -> Iterator[Future[T]]:
    remaining = set(futures)
    while remaining:
        done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
        yield from done


def failure(err: BaseException, name: str) -> tuple[str, int]:
    """Series ``name``'s error as one line and the exit code it calls for (2: bad input, 1: a bug,
    whose traceback is logged)."""
    if isinstance(err, AnomalyError):
        return " ".join(str(err).split()), err.exit_code
    logger.exception("series %r: unexpected error", name)
    return f"{type(err).__name__}: {' '.join(str(err).split())}", 1


def training_figures(detector: Any) -> dict[str, Any]:
    """A fitted detector's threshold, epochs run, best validation loss and final training loss."""
    history = detector.history_
    return {
        "threshold": detector.threshold_,
        "epochs_run": len(history["loss"]),
        "best_val_loss": history["val_loss"][int(np.argmin(history["val_loss"]))],
        "final_loss": history["loss"][-1],
    }


# ---------------------------------------------------------------------------- training


@dataclass
class SeriesTrained:
    """What training one series of a fleet gave (``ok`` False: ``error`` says why)."""

    name: str
    ok: bool
    run_id: str = ""
    error: str = ""
    exit_code: int = 0
    rows: int = 0
    features: list[str] = field(default_factory=list)
    threshold: float = float("nan")
    epochs_run: int = 0
    best_val_loss: float = float("nan")
    final_loss: float = float("nan")
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    detector_dir: str | None = None
    example: pd.DataFrame | None = None  # the first rows of its features, for the fleet model's input example


def train_series(spec: Spec, series: SeriesFile, parent_run_id: str, experiment_id: str, out_dir: str) -> SeriesTrained:
    """Train one series in its own MLflow run, nested under the fleet's, and save its detector.

    The detector goes to ``out_dir/<its file stem>``; the run holds what a single-series
    training run holds (params, per-epoch losses, the figure) but no model: the fleet registers
    one model for all its series.
    """
    from anomaly import pipelines
    from anomaly.detector import example_rows
    from anomaly.tracking import runs as tracking

    start = time.perf_counter()
    outcome = SeriesTrained(series.name, ok=False)
    try:
        with tracking.run(
            experiment_id=experiment_id,
            run_name=f"train-{series.name}",
            tags={tracking.TAG_KIND: "train-series", TAG_SERIES: series.name},
            description=f"Series `{series.name}` of the fleet in `{series.source}`.",
            parent_run_id=parent_run_id,
        ) as active:
            outcome.run_id = active.info.run_id
            read, notes = pipelines.read_training_series(spec, series.path, series.shown)
            detector = pipelines.fit_logged(spec, read, series.path, series.shown, notes)
            saved = detector.save(Path(out_dir) / series.path.stem)
    except Exception as err:  # noqa: BLE001 - one series' failure is its own (see the module docstring)
        outcome.error, outcome.exit_code = failure(err, series.name)
        outcome.seconds = time.perf_counter() - start
        return outcome
    for key, value in training_figures(detector).items():
        setattr(outcome, key, value)
    outcome.ok = True
    outcome.rows = len(read.frame)
    outcome.features = read.feature_names
    outcome.notes = notes
    outcome.detector_dir = str(saved)
    outcome.example = example_rows(read.frame, EXAMPLE_ROWS, with_times=bool(detector.calendar_.cycles))
    outcome.seconds = time.perf_counter() - start
    return outcome


# ---------------------------------------------------------------------------- scoring


@dataclass
class SeriesScored:
    """What scoring one series of a fleet gave (``ok`` False: ``error`` says why).

    ``labels``, ``scores`` and ``flags`` (each of shape (L,)) are kept only for evaluation.
    """

    name: str
    ok: bool
    error: str = ""
    exit_code: int = 0
    rows: int = 0
    scored: int = 0
    flagged: int = 0
    threshold: float = float("nan")
    max_threshold: float = float("nan")
    max_score: float = float("nan")
    gap_rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    events: pd.DataFrame | None = None
    event_records: list[dict[str, Any]] = field(default_factory=list)
    results: str | None = None
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    flags: np.ndarray | None = None
    vus_window: int | None = None
    event_gap: int = 0


def score_series(
    spec: Spec, series: SeriesFile, detector_dir: str, results: str | None, chunk_rows: int, keep: bool = False
) -> SeriesScored:
    """Score one series chunk by chunk with its detector, as ``anomaly score`` scores one file.

    Parameters
    ----------
    spec : Spec
        How to read the series.
    series : SeriesFile
    detector_dir : str
        The series' saved detector.
    results : str or None
        Where its results table goes (Parquet), or None.
    chunk_rows : int
    keep : bool, default False
        Keep the labels, scores and flags (and TSB-AD's VUS window of the first feature) for
        evaluation.
    """
    from anomaly import pipelines
    from anomaly.detector import Detector

    start = time.perf_counter()
    outcome = SeriesScored(series.name, ok=False)
    try:
        detector = Detector.load(detector_dir)
        opened = pipelines.open_input(spec, series.path, detector, chunk_rows, shown=series.shown)
        source, collector, _ = pipelines.scoring_pass(spec, series.path, detector, chunk_rows, results, opened)
        source.close()
        outcome.notes = source.notes(collector, detector)
        outcome.gap_rows = source.stream.gap_rows
        if keep:
            if collector.labels is None:
                raise pipelines.DataError(f"{series.shown}: no label column {spec.data.label_col!r}")
            outcome.labels, outcome.scores, outcome.flags = collector.labels, collector.scores, collector.flags
            outcome.vus_window, _ = pipelines.first_feature_window(source.spec, series.path, detector, collector)
    except Exception as err:  # noqa: BLE001 - one series' failure is its own
        outcome.error, outcome.exit_code = failure(err, series.name)
        outcome.seconds = time.perf_counter() - start
        return outcome
    scores, flags = collector.scores, collector.flags
    outcome.ok = True
    outcome.rows = collector.rows
    outcome.scored = int(np.sum(~np.isnan(scores)))
    outcome.flagged = int(flags.sum())
    outcome.threshold = detector.threshold_
    outcome.event_gap = int(detector.event_gap)
    outcome.max_threshold = collector.max_threshold
    outcome.max_score = float(np.nanmax(scores)) if outcome.scored else float("nan")
    outcome.events = collector.event_table()
    outcome.event_records = collector.event_records()
    outcome.results = results
    outcome.seconds = time.perf_counter() - start
    return outcome
