"""The two jobs, step by step: ``train_pipeline`` and ``score_pipeline``.

Each reads its data, does the work through :class:`~anomaly.detector.Detector`, and records it
in one MLflow run. Nothing here prints: progress goes to the ``on_epoch_end`` hook and to
``logging``; the CLI decides what the user sees.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly import plots, tracking
from anomaly.detector import FLAG_COLUMN, SCORE_COLUMN, Z_PREFIX, Detector
from anomaly.errors import DataError, SpecError
from anomaly.io import Series, fingerprint, read_series, sampling_note, write_table
from anomaly.model import EpochCallback
from anomaly.scoring import feature_shares, find_events
from anomaly.spec import Spec, dump_spec

logger = logging.getLogger(__name__)

# Rows of the training data logged with the model as its input example.
_EXAMPLE_ROWS = 20


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
    output: Path
    seconds: float
    gap_rows: int = 0
    notes: list[str] = field(default_factory=list)


def data_notes(series: Series, path: Path, max_gap: int, *, scoring: bool) -> list[str]:
    """What the user should know about how their file was read: one line each.

    Gaps left missing, irregular sampling, and columns that were not used.
    """
    notes = []
    if series.gaps:
        rows = sum(last - first + 1 for first, last in series.gaps)
        first, last = series.gaps[0]
        index = series.frame.index
        fate = "not scored" if scoring else "left out of training"
        notes.append(
            f"{path}: {rows} rows in {len(series.gaps)} gap(s) of more than max_gap={max_gap} missing values "
            f"were {fate} (first: {index[first]} .. {index[last]})"
        )
    irregular = sampling_note(series.frame.index)
    if irregular:
        notes.append(f"{path}: {irregular}")
    if series.unused_columns:
        why = "the model was not trained on" if scoring else "not used as features"
        notes.append(f"{path}: ignored column(s) {why}: {', '.join(series.unused_columns)}")
    return notes


def train_pipeline(spec: Spec, *, on_epoch_end: EpochCallback | None = None) -> TrainResult:
    """Read the spec's training series, fit a detector, log and register it in MLflow.

    Parameters
    ----------
    spec : Spec
        ``spec.data.path`` names the training file.
    on_epoch_end : callable(epoch, logs), optional
        Progress hook, also used to log per-epoch metrics.

    Returns
    -------
    TrainResult
    """
    if not spec.data.path:
        raise SpecError("no training data: give a FILE argument or set data.path in the pipeline spec")
    start = time.perf_counter()
    path = Path(spec.data.path)
    series = read_series(
        path, time_col=spec.data.time_col, label_col=spec.data.label_col,
        columns=spec.data.columns, max_gap=spec.data.max_gap, resample=spec.data.resample,
    )
    notes = data_notes(series, path, spec.data.max_gap, scoring=False)
    if series.labels is not None and series.labels.any():
        notes.append(
            f"{path}: {int(series.labels.sum())} rows are labelled anomalous in {spec.data.label_col!r}; "
            "they are kept, so the model learns them as normal"
        )
    frame = series.frame
    detector = Detector(**spec.detector_params())

    def report_epoch(epoch: int, logs: dict[str, float]) -> None:
        tracking.log_metrics({k: v for k, v in logs.items() if k in ("loss", "val_loss")}, step=epoch)
        tracking.log_metrics({"epoch_seconds": logs["seconds"]}, step=epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch, logs)

    with tracking.run(
        experiment_name=spec.experiment_name,
        run_name=f"train-{path.stem}",
        tags={tracking.TAG_KIND: "train", **{f"versions.{k}": v for k, v in tracking.library_versions().items()}},
        description=f"Training on `{path.name}`: {len(frame)} rows × {frame.shape[1]} features.",
    ) as active:
        tracking.log_params(spec.flat())
        tracking.log_params({
            "data.file": str(path),
            "data.sha256": fingerprint(path),
            "data.rows": len(frame),
            "data.features": ",".join(series.feature_names),
            "data.n_features": frame.shape[1],
            "data.filled_values": series.filled,
        })
        tracking.log_text(dump_spec(spec), "spec.yaml")
        if notes:
            tracking.set_tags({tracking.TAG_NOTES: "\n".join(notes)})

        try:
            detector.fit(frame, on_epoch_end=report_epoch)
        except DataError as err:
            raise DataError(f"{path}: {err}") from None  # name the file the problem is in

        best = int(np.argmin(detector.history_["val_loss"]))
        tracking.log_metrics({
            "threshold": detector.threshold_,
            "epochs_run": len(detector.history_["loss"]),
            "best_epoch": best + 1,
            "best_val_loss": detector.history_["val_loss"][best],
            **detector.calibration_summary_,
            **{f"residual_scale.{n}": s for n, s in zip(detector.feature_names_in_, detector.residual_stats_.scale)},
        })
        tracking.log_figure(
            plots.training_figure(detector.history_, detector.calibration_scores_, detector.threshold_),
            "plots/training.png",
        )
        with tempfile.TemporaryDirectory(prefix="anomaly-model-") as tmp:
            detector_dir = detector.save(Path(tmp) / tracking.DETECTOR_ARTIFACT)
            example = frame.iloc[:_EXAMPLE_ROWS]
            logged = tracking.log_detector(
                detector_dir, example, detector.score(example), spec.model_name, spec.tracking.alias
            )
        tracking.set_tags({tracking.TAG_MODEL_URI: logged.uri, tracking.TAG_MODEL_VERSION: logged.version})
        run_id, experiment_id = active.info.run_id, active.info.experiment_id

    return TrainResult(
        run_id=run_id, experiment_id=experiment_id, model_uri=logged.uri, model_version=logged.version,
        threshold=detector.threshold_, rows=len(frame), features=series.feature_names,
        epochs_run=len(detector.history_["loss"]), best_val_loss=detector.history_["val_loss"][best],
        seconds=time.perf_counter() - start, notes=notes,
    )


def event_table(
    results: pd.DataFrame, feature_names: list[str], spans: list[tuple[int, int]], top_k: int = 3
) -> pd.DataFrame:
    """Stretches of consecutive flagged timesteps, with their top contributing features.

    Parameters
    ----------
    results : DataFrame of shape (L, 3 + D)
        Output of :meth:`Detector.score`, indexed by time.
    feature_names : list of str
        The D features, in the order of the ``z_`` columns.
    spans : list of (first, last)
        The flagged stretches as inclusive positions (:func:`anomaly.scoring.find_events`).
    top_k : int
        How many features to name per event.

    Returns
    -------
    DataFrame with one row per event
        ``start``, ``end`` (index labels, inclusive), ``steps``, ``peak_score``, ``peak_at``,
        ``top_features`` (``"name:share;..."``, largest share first).
    """
    scores = results[SCORE_COLUMN].to_numpy()
    z = results[[Z_PREFIX + n for n in feature_names]].to_numpy()
    rows = []
    for first, last in spans:
        shares = feature_shares(z[first : last + 1])
        order = np.argsort(-shares)[:top_k]
        peak = first + int(np.nanargmax(scores[first : last + 1]))
        rows.append({
            "start": results.index[first],
            "end": results.index[last],
            "steps": last - first + 1,
            "peak_score": float(scores[peak]),
            "peak_at": results.index[peak],
            "top_features": ";".join(f"{feature_names[j]}:{shares[j]:.2f}" for j in order if shares[j] > 0),
        })
    columns = ["start", "end", "steps", "peak_score", "peak_at", "top_features"]
    return pd.DataFrame(rows, columns=columns)


def default_output(file: Path) -> Path:
    """Where results go when no ``--output`` is given: ``results/<stem>_scores.csv``."""
    return Path("results") / f"{file.stem}_scores.csv"


def score_pipeline(
    spec: Spec,
    file: str | Path,
    *,
    model_uri: str | None = None,
    output: str | Path | None = None,
    default_model_name: str | None = None,
) -> ScoreResult:
    """Score a series with a logged model, write the results, and log a scoring run.

    Parameters
    ----------
    spec : Spec
        Supplies how to read the file (time and label columns, gap policy).
    file : path
    model_uri : str, optional
        See :func:`anomaly.tracking.resolve_model`; default: the latest registered version of
        ``default_model_name`` (or of any model).
    output : path, optional
        CSV or Parquet results file; default :func:`default_output`. Replaced atomically.
    default_model_name : str, optional

    Returns
    -------
    ScoreResult
    """
    start = time.perf_counter()
    file = Path(file)
    output = Path(output) if output is not None else default_output(file)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"--output {output}: cannot create its directory ({err.strerror})") from None
    resolved = tracking.resolve_model(model_uri, default_model_name)
    detector = Detector.load(resolved.detector_dir)
    series = read_series(
        file, time_col=spec.data.time_col, label_col=spec.data.label_col,
        columns=detector.feature_names_in_, max_gap=spec.data.max_gap, resample=spec.data.resample,
        columns_role="the model's feature",
    )
    notes = data_notes(series, file, spec.data.max_gap, scoring=True)
    minimum = detector.warmup_steps + 2
    if len(series.frame) < minimum:
        raise DataError(
            f"{file}: {len(series.frame)} rows; scoring needs at least {minimum} "
            f"(the first {detector.warmup_steps + 1} only give the network context)"
        )
    description = f"Scored `{file.name}` with model `{resolved.uri}`"
    if resolved.training_run_id and resolved.experiment_id:
        description += (
            f" from training run [{resolved.training_run_id}]"
            f"(#/experiments/{resolved.experiment_id}/runs/{resolved.training_run_id})"
        )
    tags = {tracking.TAG_KIND: "score", tracking.TAG_MODEL_URI: resolved.uri}
    if resolved.training_run_id:
        tags[tracking.TAG_TRAINING_RUN] = resolved.training_run_id
    if resolved.version:
        tags[tracking.TAG_MODEL_VERSION] = resolved.version

    if notes:
        tags[tracking.TAG_NOTES] = "\n".join(notes)
    with tracking.run(
        experiment_id=resolved.experiment_id,
        experiment_name=None if resolved.experiment_id else spec.experiment_name,
        run_name=f"score-{file.stem}",
        tags=tags,
        description=description + ".",
    ) as active:
        tracking.log_params({
            "data.file": str(file), "data.sha256": fingerprint(file), "data.rows": len(series.frame),
            "model_uri": resolved.uri, "output": str(output),
        })
        results = detector.score(series.frame)
        spans = find_events(results[FLAG_COLUMN].to_numpy())
        events = event_table(results, detector.feature_names_in_, spans)
        write_table(results, output)
        tracking.log_artifact(output, "results")
        gaps = pd.DataFrame(
            [(series.frame.index[a], series.frame.index[b], b - a + 1) for a, b in series.gaps],
            columns=["start", "end", "rows"],
        )
        gap_rows = sum(b - a + 1 for a, b in series.gaps)
        with tempfile.TemporaryDirectory(prefix="anomaly-events-") as tmp:
            tracking.log_artifact(write_table(events, Path(tmp) / "events.csv", index=False), "results")
            if gap_rows:
                tracking.log_artifact(write_table(gaps, Path(tmp) / "gaps.csv", index=False), "results")
        tracking.log_figure(
            plots.scoring_figure(series.frame, results, spans, labels=series.labels),
            "plots/scores.png",
        )
        close_ups = plots.events_figure(series.frame, results, spans)
        if close_ups is not None:
            tracking.log_figure(close_ups, "plots/events.png")
        scored = int(results[SCORE_COLUMN].notna().sum())
        flagged = int(results[FLAG_COLUMN].sum())
        tracking.log_metrics({
            "rows": len(results), "scored_rows": scored, "flagged": flagged, "events": len(events),
            "gap_rows": gap_rows,
            "flagged_fraction": flagged / max(scored, 1), "max_score": float(np.nanmax(results[SCORE_COLUMN])),
        })
        run_id, experiment_id = active.info.run_id, active.info.experiment_id

    return ScoreResult(
        run_id=run_id, experiment_id=experiment_id, model_uri=resolved.uri, rows=len(results), scored=scored,
        flagged=flagged, threshold=detector.threshold_, events=events, output=output,
        seconds=time.perf_counter() - start, gap_rows=gap_rows, notes=notes,
    )
