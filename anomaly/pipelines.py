"""The two jobs, step by step: ``train_pipeline`` and ``score_pipeline``.

Each reads its data, does the work through :class:`~anomaly.detector.Detector`, and records it
in one MLflow run. Nothing here prints: progress goes to the ``on_epoch_end`` hook and to
``logging``; the CLI decides what the user sees.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.data.columns import detect_time_column
from anomaly.data.formats import fingerprint, list_names, open_reader
from anomaly.data.reading import (
    ROLE_SAMPLE_ROWS,
    Series,
    SeriesStream,
    UnsortedError,
    iter_series,
    read_series,
    sampling_note,
)
from anomaly.data.writing import STDOUT, ResultsSink, write_table, write_text
from anomaly.detection.error_level import MAX_RISE
from anomaly.detection.preprocessing import MIN_SWITCHES
from anomaly.detection.scorer import ScoredChunk
from anomaly.detector import Detector, example_rows, row_times, zone_note
from anomaly.errors import DataError, SpecError
from anomaly.nn.model import BatchCallback, EpochCallback
from anomaly.overlap import BackgroundWriter, Prefetch
from anomaly.results import FULL_ROWS, ResultCollector
from anomaly.spec import Spec, dump_spec
from anomaly.tracking import figures as plots
from anomaly.tracking import runs as tracking

logger = logging.getLogger(__name__)

# Rows of the training data logged with the model as its input example.
_EXAMPLE_ROWS = 20
STDIN = "-"
# Rows read and scored at a time from a file. Standard input goes row by row unless told
# otherwise (a live feed should not wait for 65536 rows before its first score).
DEFAULT_CHUNK_ROWS = 65536
_STDIN_SAMPLE_ROWS = 50
RowsCallback = Callable[[int], None]


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    run_id: str
    experiment_id: str
    model_uri: str
    model_version: str
    threshold: float
    rows: int
    features: list[str]
    epochs_run: int
    best_val_loss: float
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run produced."""

    run_id: str
    experiment_id: str
    model_uri: str
    rows: int
    scored: int
    flagged: int
    threshold: float
    events: pd.DataFrame = field(repr=False)
    output: Path | str
    seconds: float
    gap_rows: int = 0
    notes: list[str] = field(default_factory=list)
    max_threshold: float = float("nan")  # the highest row threshold: above ``threshold`` where the level rose


def data_notes(series: Series | SeriesStream, path: Path | str, max_gap: int, index: pd.Index, *, scoring: bool) -> list[str]:
    """What the user should know about how their file was read: one line each.

    Gaps left missing, irregular sampling of ``index`` (shape (L,)), and columns that were not used.
    """
    notes = [f"{path}: {note}" for note in series.notes]
    if not scoring and series.reordered:  # scoring says so itself (_SORTED_NOTE)
        notes.append(
            f"{path}: the rows are not in time order, so they were sorted by {series.time_col!r} before "
            f"training ({series.reordered} of {len(index)} moved)"
        )
    if series.gap_count:
        first, last = series.gap_labels[0]
        fate = "not scored" if scoring else "left out of training"
        notes.append(
            f"{path}: {series.gap_rows} rows in {series.gap_count} gap(s) of more than max_gap={max_gap} missing "
            f"values were {fate} (first: {first} .. {last})"
        )
    irregular = sampling_note(index)
    if irregular:
        notes.append(f"{path}: {irregular}")
    if series.unused_columns:
        why = "the model was not trained on" if scoring else "not used as features"
        notes.append(f"{path}: ignored column(s) {why}: {list_names(series.unused_columns, quoted=False)}")
    return notes


def read_training_series(spec: Spec, path: Path, shown: str | None = None) -> tuple[Series, list[str]]:
    """The training series as the spec says to read it, and the notes on how it was read."""
    shown = shown or str(path)
    series = read_series(
        path,
        time_col=spec.data.time_col,
        label_col=spec.data.label_col,
        columns=spec.data.columns,
        exclude_columns=spec.data.exclude_columns,
        max_gap=spec.data.max_gap,
        resample=spec.data.resample,
        shown=shown,
    )
    notes = data_notes(series, shown, spec.data.max_gap, series.frame.index, scoring=False)
    if series.labels is not None and series.labels.any():
        notes.append(
            f"{shown}: {int(series.labels.sum())} rows are labelled anomalous in {spec.data.label_col!r}; "
            "they are kept, so the model learns them as normal"
        )
    return series, notes


def fit_logged(
    spec: Spec,
    series: Series,
    path: Path,
    shown: str,
    notes: list[str],
    *,
    on_epoch_end: EpochCallback | None = None,
    on_batch_end: BatchCallback | None = None,
) -> Detector:
    """Fit the spec's detector on ``series`` inside the active run, logging what a training run shows.

    Params (the spec, the data's file, fingerprint, rows and features), the dataset, the spec as
    YAML, the notes, per-epoch losses, the threshold and calibration metrics, and the training
    figure. ``path`` is the file read (fingerprinted), ``shown`` its name in messages.
    """
    frame = series.frame
    detector = Detector(**spec.detector_params())

    def report_epoch(epoch: int, logs: dict[str, float]) -> None:
        tracking.log_metrics({k: v for k, v in logs.items() if k in ("loss", "val_loss")}, step=epoch)
        tracking.log_metrics({"epoch_seconds": logs["seconds"]}, step=epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)

    tracking.log_params(spec.flat())
    sha256 = fingerprint(path)
    tracking.log_params(
        {
            "data.file": shown,
            "data.sha256": sha256,
            "data.rows": len(frame),
            "data.features": ",".join(series.feature_names),
            "data.n_features": frame.shape[1],
            "data.filled_values": series.filled,
        }
    )
    tracking.log_dataset(
        frame.iloc[:_EXAMPLE_ROWS], name=Path(shown).name, source=shown, sha256=sha256, rows=len(frame), context="training"
    )
    tracking.log_text(dump_spec(spec), "spec.yaml")
    tracking.set_notes(notes)
    tracking.log_metrics({"gap_rows": series.gap_rows})
    if series.gap_count:  # the rows left out of training, as a scoring run lists those it left unscored
        rows = [(first, last, end - start + 1) for (start, end), (first, last) in zip(series.gaps, series.gap_labels)]
        tracking.log_table(pd.DataFrame(rows, columns=["start", "end", "rows"]), "results/gaps.csv")
    try:
        detector.fit(frame, on_epoch_end=report_epoch, on_batch_end=on_batch_end)
    except DataError as err:
        raise DataError(f"{shown}: {err}") from None  # name the file the problem is in
    detector.read_options_ = reading_options(spec)
    if detector.calendar_.cycles:
        notes.append(
            f"{shown}: the series has a daily cycle, so the network also gets each row's time of "
            f"{' and '.join(detector.calendar_.cycles)} as inputs (scored rows need their times; --calendar false: not)"
        )
        tracking.set_tags({"anomaly.calendar": ",".join(detector.calendar_.cycles)})
        tracking.set_notes(notes)
    if detector.switching_channels_:
        notes.append(
            f"{shown}: measured against their step, as switching channels (two values in training, "
            f"switched {MIN_SWITCHES}+ times): {list_names(detector.switching_channels_, quoted=False)}"
        )
        tracking.set_notes(notes)
    if 0 < len(detector.constant_features_) < detector.n_features_in_:  # the rule needs other features
        notes.append(
            f"{shown}: {len(detector.constant_features_)} feature(s) held one value throughout training, so the "
            f"network's wobble on them is measured against the other features' median scale: {list_names(detector.constant_features_, quoted=False)}"
        )
        tracking.set_notes(notes)
    if detector.monotone_features_:
        notes.append(
            f"{shown}: {len(detector.monotone_features_)} feature(s) only rose or only fell through training, as a "
            "clock or a counter does, so scored values past their training range will be flagged (--exclude-columns "
            f"to leave them out): {list_names(detector.monotone_features_, quoted=False)}"
        )
        tracking.set_notes(notes)
    best = int(np.argmin(detector.history_["val_loss"]))
    tracking.log_metrics(
        {
            "threshold": detector.threshold_,
            "epochs_run": len(detector.history_["loss"]),
            "best_epoch": best + 1,
            "best_val_loss": detector.history_["val_loss"][best],
            **detector.calibration_summary_,
            **{f"residual_scale.{n}": s for n, s in zip(detector.feature_names_in_, detector.residual_stats_.scale)},
        }
    )
    tracking.log_figure(
        plots.training_figure(detector.history_, detector.calibration_scores_, detector.threshold_), "plots/training.png"
    )
    return detector


def train_pipeline(
    spec: Spec,
    *,
    on_epoch_end: EpochCallback | None = None,
    on_batch_end: BatchCallback | None = None,
) -> TrainResult:
    """Read the spec's training series, fit a detector, log and register it in MLflow.

    Parameters
    ----------
    spec : Spec
        ``spec.data.path`` names the training file.
    on_epoch_end : callable(epoch, logs), optional
        Progress hook, also used to log per-epoch metrics.
    on_batch_end : callable(epoch, batch, batches, loss), optional
        Progress hook after each training batch.

    Returns
    -------
    TrainResult
    """
    if not spec.data.path:
        raise SpecError("no training data: give a FILE argument or set data.path in the pipeline spec")
    start = time.perf_counter()
    path = Path(spec.data.path)
    series, notes = read_training_series(spec, path)
    frame = series.frame
    with tracking.run(
        experiment_name=spec.experiment_name,
        run_name=f"train-{path.stem}",
        tags={tracking.TAG_KIND: "train", **{f"versions.{k}": v for k, v in tracking.library_versions().items()}},
        description=f"Training on `{path.name}`: {len(frame)} rows × {frame.shape[1]} features.",
    ) as active:
        detector = fit_logged(spec, series, path, str(path), notes, on_epoch_end=on_epoch_end, on_batch_end=on_batch_end)
        with tempfile.TemporaryDirectory(prefix="anomaly-model-") as tmp:
            detector_dir = detector.save(Path(tmp) / tracking.DETECTOR_ARTIFACT)
            example = example_rows(frame, _EXAMPLE_ROWS, with_times=bool(detector.calendar_.cycles))
            logged = tracking.log_detector(detector_dir, example, detector.score(example), spec.model_name, spec.tracking.alias)
        tracking.set_tags({tracking.TAG_MODEL_URI: logged.uri, tracking.TAG_MODEL_VERSION: logged.version})
        run_id, experiment_id = active.info.run_id, active.info.experiment_id
    best = int(np.argmin(detector.history_["val_loss"]))

    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=logged.uri,
        model_version=logged.version,
        threshold=detector.threshold_,
        rows=len(frame),
        features=series.feature_names,
        epochs_run=len(detector.history_["loss"]),
        best_val_loss=detector.history_["val_loss"][best],
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def default_output(file: Path) -> Path:
    """Where results go when no ``--output`` is given: ``results/<stem>_scores.csv``."""
    return Path("results") / f"{file.stem}_scores.csv"


def events_paths(output: Path) -> tuple[Path, Path]:
    """The events files beside a results file: ``<stem>_events.csv`` and ``<stem>_events.json``."""
    stem = output.stem[: -len("_scores")] if output.stem.endswith("_scores") else output.stem
    return output.with_name(f"{stem}_events.csv"), output.with_name(f"{stem}_events.json")


def log_events(events: pd.DataFrame, records: str, written: Path | None) -> None:
    """The events table and their records (JSON text) in the active run's ``results``, and beside
    the ``written`` results file (:func:`events_paths`, replaced atomically like it)."""
    tracking.log_table(events, "results/events.csv")
    tracking.log_text(records, "results/events.json")
    if written is not None:
        csv_path, json_path = events_paths(written)
        write_table(events, csv_path, index=False)
        write_text(records, json_path)


@dataclass
class _Input:
    """The scored input as a stream of chunks, and the notes on how it was read (``spec``: the
    spec it was read with, the model's remembered reading options in place)."""

    stream: SeriesStream
    shown: str
    spec: Spec
    extra_notes: list[str] = field(default_factory=list)

    @property
    def chunks(self) -> Iterator[tuple[pd.DataFrame, np.ndarray | None]]:
        return ((c.frame, None if c.labels is None else c.labels.to_numpy(dtype=bool)) for c in self.stream)

    def close(self) -> None:
        self.stream.close()

    def gap_table(self) -> pd.DataFrame:
        """The first :data:`anomaly.data.reading.MAX_LISTED_GAPS` runs of rows left missing:
        ``start``, ``end`` (time labels) and ``rows``."""
        rows = [
            (labels[0], labels[1], last - first + 1) for (first, last), labels in zip(self.stream.gaps, self.stream.gap_labels)
        ]
        return pd.DataFrame(rows, columns=["start", "end", "rows"])

    def notes(self, collector: ResultCollector, detector: Detector) -> list[str]:
        """The notes on how the input was read and scored (``collector``: its scoring pass)."""
        notes = self.extra_notes + data_notes(self.stream, self.shown, self.spec.data.max_gap, collector.index, scoring=True)
        zone = zone_note(detector, collector.index)
        return notes + ([f"{self.shown}: {zone}"] if zone else []) + _error_rise_notes(self.shown, collector)


# Divisors below this are not worth a note: the rule barely moved those features' z.
_NOTED_RISE = 1.05


def _error_rise_notes(shown: str, collector: ResultCollector) -> list[str]:
    """A note naming the features whose z ``scale_follow`` divided, largest divisor first."""
    rises = collector.error_rises
    if rises is None or not (rises >= _NOTED_RISE).any():
        return []
    order = [j for j in np.argsort(-rises, kind="stable") if rises[j] >= _NOTED_RISE]
    names = [f"{collector.feature_names[j]} {rises[j]:.2f}x" for j in order]
    return [
        f"{shown}: {len(order)} feature(s) were predicted worse than in calibration for 4,096 rows and more, so "
        f"their z were divided by up to the factor shown (scale_follow, at most {MAX_RISE}): {list_names(names, quoted=False)}"
    ]


# How a training file was read is remembered by its model: scored otherwise, the network would be
# fed rows unlike those it learned from (another time grid, other gaps filled, rows in another
# order), or a file that training read would be refused.
_REMEMBERED = ("resample", "max_gap", "time_col")


def reading_options(spec: Spec) -> dict[str, Any]:
    """What a model remembers of how ``spec`` read its training file: ``resample``, ``max_gap``
    and ``time_col`` where not at their defaults. Exclusions are not kept: which columns a file
    holds beside the model's features is the scored file's own."""
    defaults = Spec().data
    return {name: getattr(spec.data, name) for name in _REMEMBERED if getattr(spec.data, name) != getattr(defaults, name)}


def read_as_trained(
    spec: Spec, detector: Detector, sample: Callable[[], pd.DataFrame | None] = lambda: None
) -> tuple[Spec, list[str]]:
    """``spec`` with the reading options the model remembers (:func:`reading_options`) in place
    of those its file and options left unset (``spec.given``), and a note naming them (none when
    nothing is taken).

    A remembered time column is taken only where the scored input has it and would not be found
    as its time column anyway (``sample()``: its first rows, None where they cannot be read
    beforehand, as on standard input); ``none`` (rows in file order) always.
    """
    remembered = getattr(detector, "read_options_", {})
    taken = {name: value for name, value in remembered.items() if name in _REMEMBERED and name not in spec.given}
    time_col = taken.get("time_col")
    if time_col is not None and time_col.lower() != "none":
        head = sample()
        if head is None or time_col not in head.columns:
            del taken["time_col"]  # no such column here: this file's time column is found as usual
        elif detect_time_column(head, exclude=_not_time_columns(spec, detector)) == time_col:
            del taken["time_col"]  # found anyway, as a column named "timestamp" is
    if not taken:
        return spec, []
    options = ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in taken.items())
    return spec.override(**taken), [f"read as the model's training file was ({options}); give the option to read otherwise"]


def _not_time_columns(spec: Spec, detector: Detector) -> set[str | None]:
    """The columns scoring never takes as the time column: the label, the exclusions, the features."""
    return {spec.data.label_col, *(spec.data.exclude_columns or ()), *detector.feature_names_in_}


def _first_rows(source: Path | pd.DataFrame | str, shown: str, rows: int = 64) -> pd.DataFrame | None:
    """The first raw rows of a file or frame; None for standard input, which is read only once."""
    if _is_stdin(source):
        return None
    with closing(open_reader(source, shown, rows)) as reader:
        head = reader.read(rows)
        return head if head is not None else pd.DataFrame(columns=reader.columns)


def _same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one existing file (through links and relative paths too)."""
    try:
        return one.exists() and other.exists() and os.path.samefile(one, other)
    except OSError:
        return False


def open_input(
    spec: Spec,
    source: str | Path | pd.DataFrame,
    detector: Detector,
    chunk_rows: int,
    *,
    whole: bool = False,
    shown: str | None = None,
) -> _Input:
    """Chunks of the input, with ``detector``'s features, read as its training file was where
    ``spec`` leaves it open (:func:`read_as_trained`): streamed from the file, stdin or an
    in-memory frame of raw rows (a Spark group), or read whole (and sorted by time) when
    resampling, when ``whole`` or when the rows turn out not to be in time order. ``shown``
    names the input in messages (default: the path, or ``<stdin>``)."""
    features = detector.feature_names_in_
    from_stdin = _is_stdin(source)
    shown = shown or ("<stdin>" if from_stdin else "<frame>" if isinstance(source, pd.DataFrame) else str(source))
    data = source if isinstance(source, pd.DataFrame) else STDIN if from_stdin else Path(source)
    given_resample = spec.data.resample
    spec, read_notes = read_as_trained(spec, detector, lambda: _first_rows(data, shown))
    if from_stdin and spec.data.resample is not None:
        told = "--resample" if given_resample is not None else f"the model, trained with --resample {spec.data.resample},"
        raise DataError(f"{told} needs the whole series: give a file, not standard input")
    options = dict(
        time_col=spec.data.time_col,
        label_col=spec.data.label_col,
        columns=features,
        exclude_columns=spec.data.exclude_columns,
        max_gap=spec.data.max_gap,
        chunk_rows=chunk_rows,
        columns_role="the model's feature",
        resample=spec.data.resample,
        # A live feed on stdin should get its first scores once the format is known (the
        # reader has ~50 lines by then), not after 4096 rows.
        sample_rows=min(max(chunk_rows, _STDIN_SAMPLE_ROWS), ROLE_SAMPLE_ROWS) if from_stdin else None,
        shown=shown,
    )
    read_notes = [f"{shown}: {note}" for note in read_notes]
    if not whole:
        try:
            return _Input(iter_series(data, **options), shown, spec, read_notes)
        except UnsortedError as err:
            if from_stdin:
                raise
            logger.info("%s; reading it whole and sorting it instead", err)
    stream = iter_series(data, sort=True, **options)  # read whole on opening: its reordering is known
    sorted_note = [_SORTED_NOTE.format(shown=shown)] if stream.reordered else []
    return _Input(stream, shown, spec, [*read_notes, *sorted_note])


def check_vus_window(window: int, rows: int, shown: str) -> None:
    """Refuse a given VUS window over half the series: its buffers would cover every row, giving any
    detector, flag-everything too, a VUS near 1 (and the computation grows with the window)."""
    if window > rows // 2:
        raise DataError(
            f"--vus-window {window} is more than half the {rows} scored rows of {shown}: every detector's VUS "
            f"would be near 1; give at most {rows // 2}, or leave it out for TSB-AD's own window"
        )


def _is_stdin(source: object) -> bool:
    return isinstance(source, (str, Path)) and str(source) == STDIN


_SORTED_NOTE = (
    "{shown}: rows are not in time order, so the file was read whole and sorted "
    "(sorted files are scored in chunks, in bounded memory)"
)


class FleetModelGiven(DataError):
    """A fleet model (``uri``) given for one series; ``series_col`` is the fleet's series column,
    and ``in_file`` whether the scored file has that column (then it can be scored as a fleet)."""

    def __init__(self, message: str, uri: str, series_col: str, in_file: bool) -> None:
        super().__init__(message)
        self.uri, self.series_col, self.in_file = uri, series_col, in_file


def _single_detector(resolved: Any, file: str | Path) -> Detector:
    """The detector of a one-series model; a fleet model needs ``--series-col``.

    Raises
    ------
    FleetModelGiven
        For a fleet model.
    """
    if resolved.fleet:
        from anomaly.fleet.model import Fleet

        series_col = Fleet.load(resolved.detector_dir).series_col
        try:
            readable = isinstance(file, (str, Path)) and not _is_stdin(file)
            head = _first_rows(Path(file), str(file), rows=1) if readable else None
        except DataError:
            head = None  # an unreadable file: the fleet model is the error to name
        in_file = head is not None and series_col in head.columns
        raise FleetModelGiven(
            f"--model {resolved.uri} is a fleet model (one detector per series, by {series_col!r}): give a table with "
            f"--series-col {series_col}, or a folder or quoted glob of files, one series each",
            resolved.uri,
            series_col,
            in_file,
        )
    return Detector.load(resolved.detector_dir)


VERBS = {"score": "Scored", "evaluate": "Evaluated"}


def model_run(spec: Spec, resolved: Any, kind: str, run_name: str, description: str) -> Any:
    """An MLflow run that uses a logged model (a one-series or a fleet model): in its training
    run's experiment, linked to it. ``kind`` is the run's ``anomaly.kind`` tag."""
    tags = {tracking.TAG_KIND: kind, tracking.TAG_MODEL_URI: resolved.uri}
    if resolved.training_run_id:
        tags[tracking.TAG_TRAINING_RUN] = resolved.training_run_id
    if resolved.version:
        tags[tracking.TAG_MODEL_VERSION] = resolved.version
    return tracking.run(
        experiment_id=resolved.experiment_id,
        experiment_name=None if resolved.experiment_id else spec.experiment_name,
        run_name=run_name,
        tags=tags,
        description=description,
    )


def _model_run(spec: Spec, resolved: Any, kind: str, shown: str, name: str) -> Any:
    """:func:`model_run` for one series, its description linking the training run."""
    description = f"{VERBS[kind]} `{shown}` with model `{resolved.uri}`"
    if resolved.training_run_id and resolved.experiment_id:
        description += (
            f" from training run [{resolved.training_run_id}]"
            f"(#/experiments/{resolved.experiment_id}/runs/{resolved.training_run_id})"
        )
    return model_run(spec, resolved, kind, f"{kind}-{name}", description + ".")


def scoring_pass(
    spec: Spec,
    file: str | Path,
    detector: Detector,
    chunk_rows: int,
    output: str | Path | None,
    opened: _Input,
    on_rows: RowsCallback | None = None,
) -> tuple[_Input, ResultCollector, Path | None]:
    """Read, score, collect and (with an ``output``) write the whole series.

    A file whose rows are not in time order cannot be streamed; it is then read whole, sorted
    and scored again from the start (a note says so). Standard input must arrive in order.

    ``opened`` is the input as opened by the caller (before its run, so that problems with the
    file's columns come before any run is started).

    Returns
    -------
    source, collector, written
        ``written`` is the results file, or None for stdout or without ``output``.
    """
    for whole in (False, True):
        source = opened if not whole else open_input(spec, file, detector, chunk_rows, whole=True, shown=opened.shown)
        collector = ResultCollector(
            detector.feature_names_in_, event_gap=detector.event_gap, event_min_length=detector.event_min_length
        )
        sink = ResultsSink(output) if output is not None else None
        try:
            _score_chunks(detector, source, collector, sink, on_rows)
            written = sink.commit() if sink is not None else None
        except UnsortedError as err:
            if str(output) == STDOUT and not _is_stdin(file) and not whole:
                # What went to stdout cannot be taken back, so the file cannot be sorted and scored again.
                raise DataError(
                    f"{err}; with the results on standard output (-o -) a file must be in time order past its first "
                    f"rows: give -o FILE (the file is then read whole and sorted), or sort the file first"
                ) from None
            if _is_stdin(file) or whole:
                raise
            logger.info("%s; reading it whole and sorting it instead", err)
            source.close()
            continue
        finally:
            if sink is not None:
                sink.abort()  # after a commit, nothing is left to remove
        return source, collector, written
    raise AssertionError("unreachable")


class _Waiting:
    """Input rows (features and labels) whose flags the scorer still holds back, oldest first.

    Whether a step is in an event can depend on up to ``event_gap + event_min_length`` later
    steps, so the scorer returns rows once that is known (see :class:`anomaly.detection.events.EventMask`);
    with the defaults (gap 0, min length 1) every chunk comes back whole at once.
    """

    def __init__(self) -> None:
        self._frames: list[pd.DataFrame] = []
        self._labels: list[np.ndarray | None] = []

    def push(self, frame: pd.DataFrame, labels: np.ndarray | None) -> None:
        self._frames.append(frame)
        self._labels.append(labels)

    def take(self, n: int) -> tuple[pd.DataFrame, np.ndarray | None]:
        """The oldest ``n`` rows: features (n, D) and labels (n,) or None."""
        frame = self._frames[0] if len(self._frames) == 1 else pd.concat(self._frames)
        labels = None if self._labels[0] is None else np.concatenate(self._labels)
        if n == len(frame):
            self._frames, self._labels = [], []
            return frame, labels
        self._frames, self._labels = [frame.iloc[n:]], [None if labels is None else labels[n:]]
        return frame.iloc[:n], None if labels is None else labels[:n]


def _found_instead_of_times(index: pd.Index) -> str:
    """What a calendar model's input has where its times should be, for the error saying so."""
    if isinstance(index, pd.RangeIndex):  # the reader's step count: the file has no time column
        return "found none (name it with --time-col)"
    first = ", ".join(str(value) for value in index[:3])
    return f"found {index.name!r} holding {index.dtype} values ({first}, ...), not times"


def _discard(results: pd.DataFrame) -> None:
    """A results writer that writes nothing (scoring without an output file)."""


def _score_chunks(
    detector: Detector,
    source: _Input,
    collector: ResultCollector,
    sink: ResultsSink | None,
    on_rows: RowsCallback | None = None,
) -> None:
    """The scoring pass: each chunk scored with carried state, written out, and collected.

    ``on_rows(n)`` is told the rows scored so far: 0 as the pass starts, then after each chunk.
    """
    scorer = detector.stream()
    rows = 0
    if on_rows is not None:
        on_rows(0)
    # The next chunk is read and the last one written in background threads while this one is
    # scored (see anomaly.overlap); the sink is committed by the caller, after flush().
    with (
        Prefetch(source.chunks, name="anomaly-read") as chunks,
        BackgroundWriter(sink.write if sink is not None else _discard, name="anomaly-write") as writer,
    ):
        waiting = _Waiting()

        def release(scored: ScoredChunk) -> None:
            if len(scored):
                frame, labels = waiting.take(len(scored))
                results = detector.result_frame(scored, frame.index)
                writer.submit(results)
                collector.add(frame, results, labels, raw_flags=scored.crossings)

        for frame, labels in chunks:
            times = row_times(frame)
            if times is None and detector.calendar_.cycles:
                raise DataError(
                    f"{source.shown}: the model gives its network the time of {' and '.join(detector.calendar_.cycles)}, "
                    f"so the rows need their times: expected a time column, {_found_instead_of_times(frame.index)}"
                )
            waiting.push(frame, labels)
            release(scorer.feed(frame.to_numpy(dtype=np.float64), times=times))
            rows += len(frame)
            if on_rows is not None:
                on_rows(rows)
        release(scorer.finish())
        writer.flush()
    collector.finish()
    collector.error_rises = scorer.error_rises
    minimum = detector.warmup_steps + 2
    if collector.rows < minimum:
        raise DataError(
            f"{source.shown}: {collector.rows} rows; scoring needs at least {minimum} "
            f"(the first {detector.warmup_steps + 1} only give the network context)"
        )


def _log_scored(
    source: _Input, collector: ResultCollector, shown: str, context: str
) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[int, int]]]:
    """In the active run: the scored data's fingerprint and rows, the data in the run's Datasets
    panel (its schema from the first rows kept for the figures: the file is not read again), and
    the scores figure (with the labels, if any).

    Returns
    -------
    plot_frame, plot_results, spans
        :meth:`~anomaly.results.ResultCollector.plot_data`, and the events as positions in it.
    """
    sha256 = source.stream.fingerprint
    tracking.log_params({"data.sha256": sha256, "data.rows": collector.rows})
    plot_frame, plot_results = collector.plot_data()
    name = shown if shown == "<stdin>" else Path(shown).name
    sample = plot_frame.iloc[:_EXAMPLE_ROWS]
    tracking.log_dataset(sample, name=name, source=shown, sha256=sha256, rows=collector.rows, context=context)
    thin = collector.thin
    spans = [(e.start // thin, e.end // thin) for e in collector.events]
    labels = None if collector.labels is None else pd.Series(collector.labels[::thin], index=plot_frame.index)
    figure = plots.scoring_figure(
        plot_frame, plot_results, spans, labels=labels, flagged=int(collector.flags.sum()), total_rows=collector.rows
    )
    tracking.log_figure(figure, "plots/scores.png")
    return plot_frame, plot_results, spans


def score_pipeline(
    spec: Spec,
    file: str | Path,
    *,
    model_uri: str | None = None,
    output: str | Path | None = None,
    default_model_name: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_rows: RowsCallback | None = None,
) -> ScoreResult:
    """Score a series chunk by chunk with a logged model, write the results, log a scoring run.

    Parameters
    ----------
    spec : Spec
        Supplies how to read the file (time and label columns, gap policy).
    file : path or "-"
        The series; ``-`` reads CSV from standard input.
    model_uri : str, optional
        See :func:`anomaly.tracking.runs.resolve_model`; default: the latest registered version of
        ``default_model_name`` (or of any model).
    output : path or "-", optional
        CSV or Parquet results file, replaced atomically once the whole series is scored; ``-``
        writes CSV to standard output as each chunk is scored. Default: ``-`` for standard
        input, else :func:`default_output`.
    default_model_name : str, optional
    chunk_rows : int
        Rows read and scored at a time. The scores do not depend on it.
    on_rows : callable(rows), optional
        Progress hook: the rows scored so far, 0 when the pass starts, then after each chunk.

    Returns
    -------
    ScoreResult
    """
    start = time.perf_counter()
    from_stdin = str(file) == STDIN
    if output is None:
        output = STDOUT if from_stdin else default_output(Path(file))
    to_stdout = str(output) == STDOUT
    output = STDOUT if to_stdout else Path(output)
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise DataError(f"--chunk-rows must be an int >= 1; got {chunk_rows!r}")
    if not to_stdout and not from_stdin and _same_file(output, Path(file)):
        raise DataError(f"--output {output}: expected a file other than the one being scored; give another path")
    resolved = tracking.resolve_model(model_uri, default_model_name)
    detector = _single_detector(resolved, file)
    opened = open_input(spec, file, detector, chunk_rows)
    ResultsSink(output)  # checks, before any run starts, that the output can be written
    shown = "<stdin>" if from_stdin else str(file)
    with _model_run(spec, resolved, "score", shown, "stdin" if from_stdin else Path(file).stem) as active:
        tracking.log_params({"data.file": shown, "model_uri": resolved.uri, "output": str(output), "chunk_rows": chunk_rows})
        source, collector, written = scoring_pass(spec, file, detector, chunk_rows, output, opened, on_rows)
        scores, flags = collector.scores, collector.flags
        notes = source.notes(collector, detector)
        tracking.set_notes(notes)
        events = collector.event_table()
        if written is not None:
            tracking.log_artifact(written, "results")
        log_events(events, json.dumps(collector.event_records(), indent=1), written)
        gaps = source.gap_table()
        if len(gaps):
            tracking.log_table(gaps, "results/gaps.csv")
        plot_frame, plot_results, spans = _log_scored(source, collector, shown, "scoring")
        if collector.thin == 1:
            close_ups = plots.events_figure(plot_frame, plot_results, spans)
            if close_ups is not None:
                tracking.log_figure(close_ups, "plots/events.png")
        else:
            logger.info(
                "series of %d rows: event close-ups (plots/events.png) are drawn only up to %d rows", collector.rows, FULL_ROWS
            )
        scored = int(np.sum(~np.isnan(scores)))
        flagged = int(flags.sum())
        gap_rows = source.stream.gap_rows
        tracking.log_metrics(
            {
                "rows": collector.rows,
                "scored_rows": scored,
                "flagged": flagged,
                "events": len(events),
                "gap_rows": gap_rows,
                "flagged_fraction": flagged / max(scored, 1),
                "max_score": float(np.nanmax(scores)) if scored else float("nan"),
                "max_threshold": collector.max_threshold,
                "seconds": time.perf_counter() - start,
            }
        )
        run_id, experiment_id = active.info.run_id, active.info.experiment_id

    return ScoreResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=resolved.uri,
        rows=collector.rows,
        scored=scored,
        flagged=flagged,
        threshold=detector.threshold_,
        events=events,
        output=output,
        max_threshold=collector.max_threshold,
        seconds=time.perf_counter() - start,
        gap_rows=gap_rows,
        notes=notes,
    )


def first_feature_window(spec: Spec, file: str | Path, detector: Detector, collector: ResultCollector) -> tuple[int, str]:
    """TSB-AD's VUS window as its benchmark picks it, and how it was chosen (``spec``: the one
    the scoring pass read ``file`` with, :attr:`_Input.spec`).

    :func:`anomaly.evaluation.metrics.find_length_rank` of the detector's first feature (missing
    values dropped, as TSB-AD's benchmark drops rows with NaN); 100, ``get_metrics``' default,
    when that feature has no value at all.
    """
    from anomaly.evaluation.metrics import find_length_rank

    first = detector.feature_names_in_[0]
    if collector.thin == 1:  # the figures' copy of the features still holds every row
        plot_frame, _ = collector.plot_data()
        channel = plot_frame.to_numpy(dtype=np.float64)[:, :1].ravel()
    else:  # read the first feature again, as the scoring pass read it
        again = read_series(
            file,
            time_col=spec.data.time_col,
            label_col=spec.data.label_col,
            columns=[first],
            exclude_columns=spec.data.exclude_columns,
            max_gap=spec.data.max_gap,
            resample=spec.data.resample,
            columns_role="the model's feature",
        )
        channel = again.frame.iloc[:, 0].to_numpy(dtype=np.float64)
    channel = channel[~np.isnan(channel)]
    if len(channel):
        return int(find_length_rank(channel, rank=1)), f"find_length_rank of the first feature, {first!r}, as TSB-AD's benchmark"
    return 100, f"get_metrics' default: the first feature, {first!r}, has no values"


@dataclass(frozen=True)
class EvaluateResult:
    """What an evaluation run measured: one row of metrics per method."""

    run_id: str
    experiment_id: str
    model_uri: str
    rows: int
    labelled: int
    table: pd.DataFrame = field(repr=False)
    seconds: float
    notes: list[str] = field(default_factory=list)
    vus_window: int = 100
    vus_window_from: str = "given"  # or what find_length_rank measured


# Metric columns of the evaluation table: point-wise at the model's threshold first, the best
# threshold's F1 beside it; TSB-AD's threshold-free metrics; the inflated one last.
EVALUATION_COLUMNS = [
    "point_precision",
    "point_recall",
    "point_f1",
    "best_f1",
    "event_recall",
    "event_precision",
    "event_f1",
    "average_precision",
    "auc_roc",
    "vus_pr",
    "vus_roc",
    "far",
    "mar",
    "flag_rate",
    "point_adjusted_f1_inflated",
]


def evaluate_pipeline(
    spec: Spec,
    file: str | Path,
    *,
    model_uri: str | None = None,
    default_model_name: str | None = None,
    seed: int = 0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    vus_window: int | None = None,
) -> EvaluateResult:
    """Score a labelled series and measure detection quality beside trivial baselines.

    Every row counts: rows the detector does not score (warm-up, gaps) count as not flagged,
    and get the lowest score in the threshold-free metrics (TSB-AD's AUC-PR, AUC-ROC, VUS-PR,
    VUS-ROC and best-threshold F1; see :mod:`anomaly.evaluation.metrics`). The threshold is the model's,
    fitted without labels; labels are only read here.

    Parameters
    ----------
    spec : Spec
        ``spec.data.label_col`` names the label column (0/1 or true/false); required.
    file : path
    model_uri, default_model_name, chunk_rows
        As for :func:`score_pipeline`.
    seed : int
        Seed of the random-scores baseline.
    vus_window : int >= 0, optional
        TSB-AD's ``slidingWindow`` for VUS. Default: as TSB-AD's benchmark picks it,
        :func:`anomaly.evaluation.metrics.find_length_rank` of the first feature (its first 20 000
        scored rows, missing values dropped); 100 (``get_metrics``' default) if that feature
        has no value at all.

    Returns
    -------
    EvaluateResult
        ``table`` has rows ``anomaly``, ``random``, ``flag_everything`` and the columns
        :data:`EVALUATION_COLUMNS`; ``vus_window`` the window used, ``vus_window_from`` how
        it was chosen.
    """
    from anomaly.evaluation.metrics import evaluate_scores, trivial_baselines

    start = time.perf_counter()
    if not spec.data.label_col:
        raise DataError("evaluate needs labels: give --label-col COLUMN (a column of 0/1 or true/false)")
    resolved = tracking.resolve_model(model_uri, default_model_name)
    detector = _single_detector(resolved, file)
    opened = open_input(spec, file, detector, chunk_rows)
    with _model_run(spec, resolved, "evaluate", str(file), Path(file).stem) as active:
        tracking.log_params(
            {"data.file": str(file), "model_uri": resolved.uri, "label_col": spec.data.label_col, "baseline_seed": seed}
        )
        source, collector, _ = scoring_pass(spec, file, detector, chunk_rows, None, opened)
        labels, scores, flags = collector.labels, collector.scores, collector.flags
        notes = source.notes(collector, detector)
        if not labels.any():
            notes.append(f"{source.shown}: no row is labelled anomalous in {spec.data.label_col!r}: recall and F1 are undefined")
        tracking.set_notes(notes)
        _log_scored(source, collector, str(file), "evaluation")
        window_from = "given"
        if vus_window is None:
            vus_window, window_from = first_feature_window(source.spec, file, detector, collector)
        else:
            check_vus_window(vus_window, len(labels), source.shown)
        tracking.log_params({"vus_window": vus_window, "vus_window_from": window_from})
        # Unscored rows (NaN) get the lowest score, so ranking metrics see them as "not anomalous".
        options = dict(gap=detector.event_gap, vus_window=vus_window)
        measured = {"anomaly": evaluate_scores(labels, scores, flags, **options)}
        measured.update(trivial_baselines(labels, rng_seed=seed, flag_rate=float(flags.mean()), **options))
        table = pd.DataFrame.from_dict(measured, orient="index")[EVALUATION_COLUMNS]
        table.index.name = "method"
        tracking.log_metrics(
            {
                f"{metric}" if method == "anomaly" else f"{method}.{metric}": float(value)
                for method, row in table.iterrows()
                for metric, value in row.items()
                if np.isfinite(value)
            }
        )
        tracking.log_metrics({"rows": collector.rows, "labelled_rows": int(labels.sum())})
        tracking.log_table(table.reset_index(), "evaluation/evaluation.csv")
        run_id, experiment_id = active.info.run_id, active.info.experiment_id
    return EvaluateResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_uri=resolved.uri,
        rows=collector.rows,
        labelled=int(labels.sum()),
        table=table,
        seconds=time.perf_counter() - start,
        notes=notes,
        vus_window=int(vus_window),
        vus_window_from=window_from,
    )
