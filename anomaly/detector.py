"""Detector: the whole fitted pipeline — scaling, network, residual statistics, threshold.

``fit`` learns everything from a normal training series; ``score`` turns any later series into
per-timestep scores, flags and per-feature normalised residuals; ``save``/``load`` keep all of it
together in one directory (a ``.keras`` network and a JSON file: no pickle), which is what the
MLflow model ships.

Scoring is a chain of stage objects (:class:`anomaly.detection.scorer.ScoringStages`): ``fit`` fits
them on the held-back tail, and ``score`` is the streaming scorer built from them
(:meth:`Detector.stream`) fed the whole series, so a file scored in chunks gets the same results.
"""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from anomaly import __version__, params
from anomaly.data.formats import list_names
from anomaly.detection.autoregression import LinearAR, fit_linear_ar
from anomaly.detection.calendar import Calendar
from anomaly.detection.error_level import calibration_levels
from anomaly.detection.level import counts_from_dict, counts_to_dict
from anomaly.detection.preprocessing import (
    Scaling,
    chronological_split,
    constant_features,
    fit_scaling,
    monotone_features,
    value_steps,
)
from anomaly.detection.scoring import Aggregator, ResidualNormaliser
from anomaly.detection.smoothing import EwmaSmoother
from anomaly.detection.thresholds import ThresholdConfig, apply_threshold
from anomaly.detection.windowing import next_step_pairs, valid_windows
from anomaly.errors import DataError, NotFittedError
from anomaly.nn.model import BatchCallback, EpochCallback

if TYPE_CHECKING:
    from anomaly.detection.scorer import ScoredChunk, ScoringStages, StreamScorer
    from anomaly.nn.predictor import NetworkPredictor

logger = logging.getLogger(__name__)

SCORE_COLUMN = "score"
THRESHOLD_COLUMN = "threshold"
FLAG_COLUMN = "is_anomaly"
Z_PREFIX = "z_"

_NETWORK_FILE = "network.keras"
_STATE_FILE = "detector.json"
_FORMAT_VERSION = 1
_DEFAULTS: dict[str, Any] = {name: declared.default for name, declared in params.DETECTOR.items()}


class Detector:
    """Next-step recurrent anomaly detector for multivariate series.

    Follows scikit-learn's conventions: the constructor only stores its keyword parameters
    (validated by :meth:`fit`), ``get_params``/``set_params`` make it clonable
    (``sklearn.base.clone``), and ``decision_function``/``predict`` give the scores and the 0/1
    flags as PyOD's detectors do, beside :meth:`score`'s whole result frame.

    Parameters
    ----------
    {parameters}
    Each is a field of a pipeline spec (:mod:`anomaly.params`, the one declaration of its type,
    range and default), named as its CLI option without dashes; the spec's ``training.seed`` is
    ``random_state`` here. ``autoregressive`` (:mod:`anomaly.detection.autoregression`) and ``residual``
    (:func:`anomaly.nn.model.build_model`) are two ways of predicting the level, so not combined.
    ``is_anomaly`` follows the events that ``event_gap`` and ``event_min_length`` group (see
    :class:`anomaly.detection.events.EventMask`); with the defaults it is ``score > threshold``.

    Attributes
    ----------
    feature_names_in_ : list of str
    n_features_in_ : int
    scaling_ : Scaling
    autoregression_ : LinearAR or None
        The linear part of the prediction (``autoregressive > 0``).
    calendar_ : anomaly.detection.calendar.Calendar
        The time-of-day (and week) inputs the network gets beside the features: none unless
        ``calendar`` is on and the training series has times and a daily cycle.
    times_zoned_ : bool or None
        With calendar inputs: whether the training times had a zone (the time of day learnt is
        UTC's) or not (the wall clock's); :func:`zone_note` names a scored series of the other kind.
    model_ : keras.Model
    residual_stats_ : ResidualNormaliser
    threshold_ : float
    history_ : dict of str to list of float
        ``loss`` and ``val_loss`` per epoch (with ``members`` > 1, the members' mean).
    calibration_summary_ : dict of str to float
    calibration_scores_ : ndarray of shape (K,)
        Scores of the held-back calibration part (only after ``fit``; not saved).
    switching_channels_ : list of str
        Features measured against their step: two values in training, switched between at
        least ``MIN_SWITCHES`` times (only after ``fit``; their scale is saved).
    constant_features_ : list of str
        Features that held one value throughout training, measured against at least the
        median scale of the features that did not (only after ``fit``; their scale is saved).
    monotone_features_ : list of str
        Features that only rose or only fell through training, like a clock or a counter, whose
        later values the model has not seen (only after ``fit``; for the training note).
    calibration_histogram_ : ndarray of shape (anomaly.detection.level.N_BINS,)
        Histogram of the calibration scores, where the level follower starts.
    level_window_ : int or None
        The level follower's window (None in detectors saved before it had one: the median
        of everything scored).
    read_options_ : dict of str to value
        How the training file was read, where scoring reads a file the same way unless told
        otherwise (``resample``, ``max_gap``, ``time_col``; set by the pipelines that read files,
        :func:`anomaly.pipelines.reading_options`; empty after ``fit`` on a frame and in
        detectors saved before it existed).
    error_levels_ : ndarray of shape (D,) or None
        Each feature's median |z| over the calibration part, from which ``scale_follow``
        measures the rise of its error level (None in detectors saved before it existed: z
        is not followed).
    """

    def __init__(self, **params: Any) -> None:
        self.set_params(**{**_DEFAULTS, **params})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (``deep`` is scikit-learn's: no parameter is an estimator)."""
        return {name: getattr(self, name) for name in _DEFAULTS}

    def set_params(self, **params: Any) -> Detector:
        """Set parameters by name (validated by the next :meth:`fit`); returns ``self``."""
        for name, value in params.items():
            if name not in _DEFAULTS:
                raise ValueError(f"Invalid parameter {name!r} for Detector; valid parameters are {sorted(_DEFAULTS)}")
            # A list given for a tuple setting (units) is kept as the tuple a spec holds.
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        return self

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.get_params().items() if v != _DEFAULTS[k]}
        return f"Detector({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: pd.DataFrame,
        y: Any = None,
        *,
        on_epoch_end: EpochCallback | None = None,
        on_batch_end: BatchCallback | None = None,
    ) -> Detector:
        """Learn scaling, network, residual statistics and threshold from normal data.

        Parameters
        ----------
        X : DataFrame of shape (L, D)
            A normal training series: numeric feature columns, time-ordered rows.
        y : None
            Ignored: the detector learns from normal data alone (accepted as scikit-learn's
            ``fit`` signature asks).
        on_epoch_end : callable(epoch, logs), optional
            Progress hook called after each training epoch.
        on_batch_end : callable(epoch, batch, batches, loss), optional
            Progress hook called after each training batch.

        Returns
        -------
        self
        """
        from anomaly.nn import model as network  # TensorFlow: only when fitting or scoring

        params.check_detector(self.get_params())
        values = _feature_rows(X)
        times = row_times(X)
        length = len(values)
        # The held-back tail must hold at least one window for early stopping, and the
        # training part at least one window to learn from.
        min_holdout = self.window_size + 1
        needed = 2 * (self.window_size + 1)
        if length < needed:
            raise DataError(
                f"the training series has {length} rows; at least {needed} are needed for "
                f"window_size {self.window_size} (one window to train on, one held back); a smaller "
                f"--window-size needs fewer"
            )
        cut = chronological_split(length, self.validation_fraction, min_holdout)
        if cut < self.window_size + 1:
            cut = self.window_size + 1
        if self.warmup_steps + 1 >= length:  # checked before training: calibration needs a scored row
            raise DataError(
                f"warmup_steps {self.warmup_steps} leaves no row of the {length}-row training series scored "
                f"(the first warmup_steps + 1 rows never are), so nothing calibrates the threshold; "
                f"give at most {length - 2} (--warmup-steps)"
            )
        logger.info("training on rows [0, %d), holding back rows [%d, %d)", cut, cut, length)

        self.feature_names_in_ = [str(c) for c in getattr(X, "columns", range(values.shape[1]))]
        self.n_features_in_ = values.shape[1]
        self.scaling_ = fit_scaling(values[:cut])
        self.calendar_ = Calendar.fit(times, values) if self.calendar else Calendar()
        # Whether the time of day it learnt is UTC's (times with a zone) or the wall clock's.
        self.times_zoned_ = _is_zoned(X) if self.calendar_.cycles else None
        if self.calendar_.cycles:
            logger.info("the network also gets the time of %s as inputs", " and ".join(self.calendar_.cycles))
        scaled = self._network_inputs(values, times)
        # The network's targets: the scaled series itself, or what the linear part leaves of it.
        if self.autoregressive:
            try:
                self.autoregression_: LinearAR | None = fit_linear_ar(scaled[:cut], self.autoregressive)
            except ValueError as err:
                raise DataError(
                    f"the training part of the series is too short for autoregressive {self.autoregressive}: {err}"
                ) from None
            target = scaled - self.autoregression_.predict(scaled)
        else:
            self.autoregression_ = None
            target = scaled

        network.seed_everything(self.random_state)
        # Windows that touch a gap (rows left missing, see anomaly.data.reading) are not learned from, nor
        # those whose targets the linear part cannot predict (its first p rows, after gaps).
        gap_rows = np.isnan(values).any(axis=1) | np.isnan(target).any(axis=1)
        inputs, targets = next_step_pairs(scaled[:cut], self.window_size, self.stride, targets=target[:cut])
        usable = np.flatnonzero(valid_windows(gap_rows[:cut], self.window_size + 1, self.stride))
        val_inputs, val_targets = next_step_pairs(scaled[cut:], self.window_size, self.stride, targets=target[cut:])
        val_usable = valid_windows(gap_rows[cut:], self.window_size + 1, self.stride)
        for part, count in (("training part", len(usable)), ("held-back part", int(val_usable.sum()))):
            if count == 0:
                raise DataError(
                    f"the {part} of the series has no {self.window_size + 1} consecutive complete rows "
                    f"(window_size {self.window_size} + 1) between its gaps"
                )
        validation = (val_inputs[val_usable], val_targets[val_usable])
        logger.info(
            "%d training windows, %d validation windows of %d x %d",
            len(usable),
            len(validation[0]),
            self.window_size,
            scaled.shape[1],
        )
        shape = dict(cell=self.cell, units=self.units, residual=self.residual)
        # members > 1: the members side by side, trained in one pass, then one network averaging them.
        self.model_ = network.build_model(
            scaled.shape[1], dropout=self.dropout, learning_rate=self.learning_rate, members=self.members, **shape
        )
        self._recurrence_ = None  # a new network needs a new compiled pass
        self.history_ = network.fit_model(
            self.model_,
            inputs,
            targets,
            validation=validation,
            epochs=self.epochs,
            batch_size=self.batch_size,
            patience=self.patience,
            seed=self.random_state,
            usable=usable,
            on_epoch_end=on_epoch_end,
            on_batch_end=on_batch_end,
            members=self.members,
        )
        if self.members > 1:
            self.model_ = network.fold_members(self.model_, self.members, **shape)

        # Calibrate on the held-back tail, through the stages scoring uses. The pass starts at
        # the beginning of the series, so the tail is seen with warm state, as any step after
        # the warm-up of a scored series is.
        residuals = self._residuals(scaled)
        calibration = residuals[cut:]
        steps = value_steps(values, self.scaling_)
        self.switching_channels_ = [name for name, step in zip(self.feature_names_in_, steps) if step > 0]
        constant = constant_features(values)
        self.constant_features_ = [name for name, fixed in zip(self.feature_names_in_, constant) if fixed]
        self.monotone_features_ = [name for name, one_way in zip(self.feature_names_in_, monotone_features(values)) if one_way]
        try:
            self.residual_stats_ = ResidualNormaliser.fit(calibration, min_scale=steps, constant=constant)
        except ValueError as err:  # every held-back row unscored: the warm-up and gaps cover it
            raise DataError(f"cannot calibrate on the held-back part: {err} (the warm-up and gaps leave none scored)") from None
        # The score is smoothed from the start of the series, as scoring smooths it, so each
        # calibration score carries the EWMA history a scored step has (not a cold start).
        z = self.residual_stats_.transform(residuals)
        calibration_scores = EwmaSmoother(self.smoothing_span).feed(Aggregator(self.aggregation).transform(z))[cut:]
        self.calibration_scores_ = calibration_scores  # (K,) kept for plots; not saved
        # The calibration part itself is scored without the rule: its own levels are the baseline.
        self.error_levels_: np.ndarray | None = calibration_levels(z[cut:])
        self.read_options_: dict[str, Any] = {}
        try:
            thresholder = self._threshold_config().thresholder().fit(calibration_scores)
        except ValueError as err:  # e.g. too few calibration scores for a tail fit
            raise DataError(f"cannot fit the {self.threshold_method!r} threshold on the held-back part: {err}") from None
        self.threshold_ = thresholder.threshold_
        self.calibration_histogram_ = thresholder.calibration_counts_  # where the level follower starts
        self.level_window_: int | None = thresholder.window_
        self.calibration_summary_ = {
            "calibration_rows": float(len(calibration)),
            "calibration_score_median": float(np.nanmedian(calibration_scores)),
            "calibration_score_p99": float(np.nanquantile(calibration_scores, 0.99)),
            "calibration_score_max": float(np.nanmax(calibration_scores)),
            "calibration_flagged_fraction": float(apply_threshold(calibration_scores, self.threshold_).mean()),
        }
        logger.info(
            "threshold %.4f (%s, fitted on %d calibration scores)",
            self.threshold_,
            self.threshold_method,
            int(np.sum(~np.isnan(calibration_scores))),
        )
        return self

    # ---------------------------------------------------------------- score
    def _check_is_fitted(self) -> None:
        if not hasattr(self, "threshold_"):
            raise NotFittedError(
                "this Detector is not fitted yet: call fit() on a training series first, or Detector.load() a saved one"
            )

    def score(self, X: pd.DataFrame) -> pd.DataFrame:
        """Score every timestep of a series.

        Parameters
        ----------
        X : DataFrame of shape (L, D'), or array of shape (L, D)
            Must hold every column the detector was trained on (matched by name, in any
            order); other columns are ignored. An array holds the training columns in order.

        Returns
        -------
        DataFrame of shape (L, 3 + D), same index as ``X``
            ``score`` (float; NaN for the first ``warmup_steps`` + 1 steps, which have no or
            too little context), ``threshold`` (the fitted threshold, raised where the stream's
            level has risen: see ``threshold_follow``), ``is_anomaly`` (bool: the step lies in an event,
            see ``event_gap``; with the defaults, ``score > threshold``), and ``z_<feature>``:
            each feature's signed normalised residual (from row 4,096 on, divided by the rise of
            its error level: see ``scale_follow``).
        """
        from anomaly.detection.scorer import ScoredChunk

        if not isinstance(X, pd.DataFrame):  # an array: the training columns, in order
            X = pd.DataFrame(_feature_rows(X, self.feature_names_in_), columns=self.feature_names_in_)
        scorer = self.stream()
        chunk = scorer.feed(self._select_features(X), times=self._scoring_times(X))
        return self.result_frame(ScoredChunk.concat([chunk, scorer.finish()]), X.index)

    def result_frame(self, chunk: ScoredChunk, index: pd.Index) -> pd.DataFrame:
        """The results of scored rows as a frame: what :meth:`score` returns and ``score`` writes.

        Parameters
        ----------
        chunk : anomaly.detection.scorer.ScoredChunk
            n rows, as :meth:`stream` scores them.
        index : Index of shape (n,)
            The rows' labels (times).

        Returns
        -------
        DataFrame of shape (n, 3 + D)
            ``score``, ``threshold``, ``is_anomaly`` (the final flags) and ``z_<feature>``.
        """
        out = pd.DataFrame(
            {SCORE_COLUMN: chunk.scores, THRESHOLD_COLUMN: chunk.thresholds, FLAG_COLUMN: chunk.flags},
            index=index,
        )
        z = pd.DataFrame(chunk.z, index=index, columns=[Z_PREFIX + name for name in self.feature_names_in_])
        return pd.concat([out, z], axis=1)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """The anomaly score of every row, higher more anomalous (PyOD's convention).

        Returns
        -------
        ndarray of shape (L,)
            :meth:`score`'s ``score`` column: NaN where a row is not scored (warm-up, gaps).
        """
        return self.score(X)[SCORE_COLUMN].to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The flag of every row: 1 anomalous, 0 normal (PyOD's convention).

        Returns
        -------
        ndarray of shape (L,), int
            :meth:`score`'s ``is_anomaly`` column as 0/1.
        """
        return self.score(X)[FLAG_COLUMN].to_numpy().astype(np.int64)

    def _select_features(self, X: pd.DataFrame) -> np.ndarray:
        columns = [str(c) for c in X.columns]
        missing = [c for c in self.feature_names_in_ if c not in columns]
        if missing:
            raise DataError(
                f"column(s) {list_names(missing)} that the model was trained on are missing; "
                f"expected {list_names(self.feature_names_in_)}, found {list_names(columns)}"
            )
        extra = [c for c in columns if c not in self.feature_names_in_]
        if extra:
            logger.info("ignoring column(s) the model was not trained on: %s", list_names(extra, quoted=False))
        X = X.set_axis(columns, axis=1)
        return _feature_rows(X[self.feature_names_in_], self.feature_names_in_)

    def _scoring_times(self, X: pd.DataFrame) -> np.ndarray | None:
        """The rows' times where the network needs them (:attr:`calendar_`): from a time index,
        else from the one datetime column of ``X``."""
        if not self.calendar_.cycles:
            return None
        times = row_times(X)
        zone = zone_note(self, X.index) if times is not None else None  # a served model's column times are UTC's
        if zone:
            logger.warning("%s", zone)
        if times is None:
            stamps = [c for c in X.columns if pd.api.types.is_datetime64_any_dtype(X[c])]
            if len(stamps) == 1:
                timed = X.set_index(stamps[0])
                _check_time_order(timed.index)  # a served model gets its times as a column
                times = row_times(timed)
        if times is None:
            raise DataError(
                f"this model gives its network the time of {' and '.join(self.calendar_.cycles)}, so the rows need "
                f"their times: expected a time index or one datetime column, found columns {[str(c) for c in X.columns]}"
            )
        return times

    def _network_inputs(self, values: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """Raw values (L, D) as the network sees them: scaled, with :attr:`calendar_`'s inputs
        after them, (L, D + calendar_.width)."""
        scaled = self.scaling_.transform(values)
        if not self.calendar_.cycles:
            return scaled
        return np.hstack([scaled, self.calendar_.columns(times)])

    def stream(self) -> StreamScorer:
        """A scorer to feed a long series chunk by chunk (see :mod:`anomaly.detection.scorer`).

        Feeding the whole series at once gives the same results as :meth:`score` (which does
        just that); so does feeding it in chunks of any size.
        """
        from anomaly.detection.scorer import StreamScorer

        self._check_is_fitted()
        return StreamScorer(self._stages())

    def _stages(self) -> ScoringStages:
        """The fitted scoring stages, built from the fitted attributes and current parameters."""
        from anomaly.detection.scorer import ScoringStages

        thresholder = self._threshold_config().thresholder(
            # The histogram and window are absent in detectors saved before the level follower
            # or its window existed.
            threshold_=self.threshold_,
            calibration_counts_=getattr(self, "calibration_histogram_", None),
            window_=getattr(self, "level_window_", None),
        )
        return ScoringStages(
            scaling=self.scaling_,
            calendar=self.calendar_,
            predictor=self._network_predictor(),
            normaliser=self.residual_stats_,
            aggregator=Aggregator(self.aggregation),
            smoothing_span=self.smoothing_span,
            thresholder=thresholder,
            event_gap=self.event_gap,
            event_min_length=self.event_min_length,
            error_levels=getattr(self, "error_levels_", None) if getattr(self, "scale_follow", False) else None,
            feature_names=tuple(self.feature_names_in_),
        )

    def _threshold_config(self) -> ThresholdConfig:
        return ThresholdConfig(
            method=self.threshold_method,
            quantile=self.threshold_quantile,
            level=self.threshold_level,
            risk=self.threshold_risk,
            min_decrease=self.threshold_min_decrease,
            margin=self.threshold_margin,
            follow=getattr(self, "threshold_follow", False),
        )

    def _network_predictor(self) -> NetworkPredictor:
        from anomaly.nn.inference import Recurrence
        from anomaly.nn.predictor import NetworkPredictor

        if getattr(self, "_recurrence_", None) is None:
            # Compiled once per fitted network; every scorer of this detector shares it.
            self._recurrence_ = Recurrence(self.model_, self.cell)
        return NetworkPredictor(
            self._recurrence_,
            block=self.block,
            burn_in=self.window_size if self.burn_in is None else self.burn_in,
            warmup_steps=self.warmup_steps,
            linear=getattr(self, "autoregression_", None),
        )

    def _residuals(self, scaled: np.ndarray) -> np.ndarray:
        """Next-step residuals of the features of a series as the network sees it (L, D + C,
        :meth:`_network_inputs`), as scoring computes them.

        Returns
        -------
        ndarray of shape (L, D)
            NaN in gaps (rows with a missing value) and in the first ``warmup_steps`` + 1 rows
            of every gap-free stretch: its step 0 has no prediction, and after it the network
            runs from a blank state. On the demo the first prediction of a cold start scored
            above the threshold in every case measured and later ones were normal, so a few
            more steps are left out for margin.
        """
        predictions, scored = self._network_predictor().stream().feed(scaled)
        out = (scaled - predictions)[:, : self.n_features_in_]
        out[~scored] = np.nan
        return out

    # ------------------------------------------------------------ save/load
    def save(self, path: str | Path) -> Path:
        """Write the fitted detector to a directory: ``network.keras`` and ``detector.json``.

        Returns
        -------
        Path
            The directory.
        """
        from anomaly.nn import model as network

        self._check_is_fitted()
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        network.save_model(self.model_, directory / _NETWORK_FILE)
        state = {
            "format_version": _FORMAT_VERSION,
            "anomaly_version": __version__,
            "params": {**self.get_params(), "units": list(self.units)},
            "feature_names_in": self.feature_names_in_,
            "scaling": self.scaling_.to_dict(),
            "autoregression": None if self.autoregression_ is None else self.autoregression_.to_dict(),
            "calendar": list(self.calendar_.cycles),
            "times_zoned": getattr(self, "times_zoned_", None),
            "residual_stats": self.residual_stats_.to_dict(),
            "threshold": self.threshold_,
            "calibration_histogram": counts_to_dict(self.calibration_histogram_),
            "level_window": self.level_window_,
            "error_levels": None if self.error_levels_ is None else self.error_levels_.tolist(),
            "read_options": getattr(self, "read_options_", {}),
            "calibration_summary": self.calibration_summary_,
            "history": self.history_,
        }
        (directory / _STATE_FILE).write_text(json.dumps(state, indent=2))
        return directory

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """Read a detector written by :meth:`save`.

        Raises
        ------
        DataError
            When the directory does not hold a readable detector.
        """
        from anomaly.nn import model as network

        directory = Path(path)
        try:
            state = read_state(directory / _STATE_FILE, _FORMAT_VERSION)
            # Saved before members existed: one network.
            detector = cls(**{"members": 1, **state["params"], "units": tuple(state["params"]["units"])})
            detector.feature_names_in_ = list(state["feature_names_in"])
            detector.n_features_in_ = len(detector.feature_names_in_)
            detector.scaling_ = Scaling.from_dict(state["scaling"])
            linear = state.get("autoregression")  # absent in detectors saved before it existed
            detector.autoregression_ = None if linear is None else LinearAR.from_dict(linear)
            detector.calendar_ = Calendar(tuple(state.get("calendar", ())))  # none before it existed
            detector.times_zoned_ = state.get("times_zoned")
            detector.residual_stats_ = ResidualNormaliser.from_dict(state["residual_stats"])
            detector.threshold_ = float(state["threshold"])
            if "calibration_histogram" in state:
                detector.calibration_histogram_ = counts_from_dict(state["calibration_histogram"])
                # Saved before the window existed: the median of everything scored, as then.
                detector.level_window_ = state.get("level_window")
            elif detector.threshold_follow:  # saved before the level follower existed: fixed threshold
                detector.threshold_follow = False
            levels = state.get("error_levels")
            detector.error_levels_ = None if levels is None else np.asarray(levels, dtype=np.float64)
            if levels is None:  # saved before scale_follow existed: z as normalised, as then
                detector.scale_follow = False
            detector.read_options_ = dict(state.get("read_options", {}))  # none before it existed
            detector.calibration_summary_ = dict(state["calibration_summary"])
            detector.history_ = dict(state["history"])
            detector.model_ = network.load_model(directory / _NETWORK_FILE)
        except Exception as err:  # noqa: BLE001 - any failure here means "not a usable detector"
            raise DataError(f"{directory}: not a readable anomaly detector ({type(err).__name__}: {err})") from err
        return detector


def _feature_rows(X: Any, features: list[str] | None = None) -> np.ndarray:
    """``X``'s values as float64, (L, D), checked as :func:`anomaly.detection.scorer.checked_rows`
    checks them (``features``: the D names expected; default: ``X``'s own columns, any number);
    a frame's columns must hold numbers and its time index must increase."""
    from anomaly.detection.scorer import checked_rows

    if isinstance(X, pd.DataFrame):
        _check_time_order(X.index)
        values = np.empty(X.shape, dtype=np.float64)
        for j, (name, column) in enumerate(X.items()):
            is_number = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_complex_dtype(column.dtype)
            numbers = column if is_number else pd.to_numeric(column, errors="coerce")  # numbers held as objects too
            text = np.flatnonzero((numbers.isna() & column.notna()).to_numpy())
            if len(text):
                raise DataError(f"column {str(name)!r} should hold numbers, but row {text[0] + 1} holds {column.iloc[text[0]]!r}")
            values[:, j] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        features, X = features or [str(c) for c in X.columns], values
    return checked_rows(X, features)


def _check_time_order(index: pd.Index) -> None:
    """A time index (times, or numbers under a name such as the reader's ``step``) must increase
    strictly from row to row: the rows are a series. Unnamed row labels are not times: a frame
    sorted by a time column keeps its old labels in another order."""
    is_time = isinstance(index, pd.DatetimeIndex) or (index.name is not None and pd.api.types.is_numeric_dtype(index.dtype))
    if isinstance(index, pd.RangeIndex) or not is_time:
        return
    values = index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy()
    later = values[1:] > values[:-1]
    if not later.all():
        row = int(np.flatnonzero(~later)[0])
        what = "repeats" if values[row + 1] == values[row] else "is earlier than"
        raise DataError(
            f"the rows should be in time order, each after the one before, but row {row + 2} ({index[row + 1]}) "
            f"{what} row {row + 1} ({index[row]}): sort them first (X.sort_index()), and drop repeated times"
        )


def _is_zoned(X: Any) -> bool:
    index = getattr(X, "index", None)
    return isinstance(index, pd.DatetimeIndex) and index.tz is not None


def zone_note(detector: Detector, index: pd.Index) -> str | None:
    """Why the time of day a calendar model gets from ``index`` is not the one it learnt, or None.

    A model learns the time of day from its training file's times: the wall clock's for times
    without a zone, UTC's for times with one. Scored with the other kind, its daily cycle is
    read shifted by the zone's offset, silently (the same readings score otherwise).
    """
    learnt = getattr(detector, "times_zoned_", None)
    if learnt is None or not detector.calendar_.cycles or not isinstance(index, pd.DatetimeIndex):
        return None
    zoned = index.tz is not None
    if zoned == learnt:
        return None
    if learnt:
        return (
            "the model learnt the time of day in UTC (its training times had a zone), but these times have none, "
            "so they are taken as UTC: give them their UTC offsets, as the training file had"
        )
    return (
        "the model learnt the time of day from the wall clock (its training times had no zone), but these times "
        "have UTC offsets and are read in UTC, so the time of day it gets is UTC's: give local times without "
        "offsets, as the training file had"
    )


def row_times(X: Any) -> np.ndarray | None:
    """The times of ``X``'s rows as nanoseconds since the epoch, (L,) int64: UTC for times with
    a zone, wall-clock time for naive ones; None unless ``X`` has a time index."""
    index = getattr(X, "index", None)
    if not isinstance(index, pd.DatetimeIndex):
        return None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)  # pandas 3 parses text to microseconds


def example_rows(frame: pd.DataFrame, rows: int, with_times: bool) -> pd.DataFrame:
    """The first rows of a series as a model's input example, with a default index.

    Parameters
    ----------
    frame : DataFrame of shape (L, D)
        A series as read: features, indexed by time or step.
    rows : int
    with_times : bool
        Put the times (naive, in UTC where they had a zone) first, as a column named after the
        index: the input of a model whose network gets the time of day (:attr:`Detector.calendar_`).

    Returns
    -------
    DataFrame of shape (rows, D) or (rows, 1 + D)
        The features as float64.
    """
    head = frame.iloc[:rows].astype("float64")
    times = row_times(head)
    out = head.reset_index(drop=True)
    if with_times and times is not None:
        out.insert(0, str(head.index.name or "time"), pd.to_datetime(times, unit="ns"))
    return out


def example_to_json(example: pd.DataFrame) -> str:
    """:func:`example_rows`' frame as JSON text that :func:`example_from_json` reads back."""
    times = [str(c) for c in example.columns if pd.api.types.is_datetime64_any_dtype(example[c])]
    frame = example.assign(**{c: row_times(example.set_index(c)) for c in times})
    return json.dumps({"times": times, "frame": json.loads(frame.to_json(orient="split"))})


def example_from_json(text: str) -> pd.DataFrame:
    """The frame that :func:`example_to_json` wrote."""
    data = json.loads(text)
    frame = pd.DataFrame(data["frame"]["data"], columns=data["frame"]["columns"])
    features = [c for c in frame.columns if c not in data["times"]]
    frame[features] = frame[features].astype("float64")
    for column in data["times"]:
        frame[column] = pd.to_datetime(frame[column].astype("int64"), unit="ns")
    return frame


def read_state(file: Path, format_version: int) -> dict[str, Any]:
    """A saved JSON state (a detector's or a fleet's); ValueError unless it has ``format_version``."""
    state = json.loads(file.read_text())
    if state.get("format_version") != format_version:
        raise ValueError(f"format_version {state.get('format_version')!r}, expected {format_version}")
    return state


def saved_state(path: str | Path) -> dict[str, Any]:
    """What :meth:`Detector.save` wrote to ``detector.json`` (features, threshold, history, ...),
    read without loading the network."""
    return json.loads((Path(path) / _STATE_FILE).read_text())


def _document(cls: type) -> None:
    """Give the class the schema's parameters: a signature (for help() and IDEs) and their docs."""
    declared = params.DETECTOR.items()
    keyword = inspect.Parameter.KEYWORD_ONLY
    cls.__init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, keyword, default=s.default, annotation=s.hint) for name, s in declared]
    )
    docs = "".join(f"{name} : {s.expected}, default {s.default!r}\n        {s.help}\n    " for name, s in declared)
    cls.__doc__ = cls.__doc__.replace("{parameters}\n    ", docs)


_document(Detector)
