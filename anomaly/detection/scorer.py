"""Scoring a series chunk by chunk, every stage's state carried from one chunk to the next.

:class:`StreamScorer` runs a row through a fitted detector's :class:`ScoringStages`, each stage
with its own carried state: the :class:`anomaly.nn.predictor.NetworkPredictor` (its
:class:`~anomaly.nn.predictor.StreamPredictor`), the residual normaliser and aggregator
(:mod:`anomaly.detection.scoring`, stateless), the features' error levels
(:mod:`anomaly.detection.error_level`), the EWMA (:mod:`anomaly.detection.smoothing`), the
thresholder (:mod:`anomaly.detection.thresholds`, its level follower) and the event mask that
makes the final flags (:mod:`anomaly.detection.events`). Batch scoring is the same scorer fed
the whole series.

How the network's pass stays the same whatever the chunk size is in :mod:`anomaly.nn.predictor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from anomaly.detection.calendar import Calendar
from anomaly.detection.error_level import ErrorLevelFollower
from anomaly.detection.events import EventMask
from anomaly.detection.preprocessing import Scaling
from anomaly.detection.scoring import Aggregator, ResidualNormaliser
from anomaly.detection.smoothing import EwmaSmoother
from anomaly.detection.thresholds import Thresholder, apply_threshold
from anomaly.errors import DataError

if TYPE_CHECKING:
    from anomaly.nn.predictor import NetworkPredictor


@dataclass(frozen=True)
class ScoredChunk:
    """Scored rows: consecutive rows of a series, from absolute position ``start`` on.

    Attributes
    ----------
    start : int
        Absolute position of the first row.
    scores : ndarray of shape (n,)
        NaN for rows that are not scored.
    thresholds : ndarray of shape (n,)
        Each row's threshold: the fitted one, or above it where the level has risen (see
        :mod:`anomaly.detection.level`).
    crossings : ndarray of shape (n,), bool
        ``scores > thresholds`` (NaN scores never cross): what events are grouped from.
    flags : ndarray of shape (n,), bool
        The final flags: True on every step of an event, bridged gaps included, False on
        crossings that form no event (see :class:`anomaly.detection.events.EventMask`); with
        ``event_gap`` 0 and ``event_min_length`` 1, the crossings.
    z : ndarray of shape (n, D)
        Each feature's signed normalised residual (NaN where not scored), divided by the
        rise of its error level where the stages follow it (what the score is made of).
    """

    start: int
    scores: np.ndarray
    thresholds: np.ndarray
    crossings: np.ndarray
    flags: np.ndarray
    z: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def rows(self, lo: int, hi: int | None = None) -> ScoredChunk:
        """Rows ``lo .. hi - 1`` of the chunk (views, not copies)."""
        part = slice(lo, hi)
        return ScoredChunk(
            self.start + lo, self.scores[part], self.thresholds[part], self.crossings[part], self.flags[part], self.z[part]
        )

    @staticmethod
    def concat(chunks: Sequence[ScoredChunk]) -> ScoredChunk:
        """Consecutive chunks as one; no copy when at most one of them has rows."""
        parts = [c for c in chunks if len(c)]
        if len(parts) <= 1:
            return parts[0] if parts else chunks[0]
        return ScoredChunk(
            parts[0].start,
            *(np.concatenate([getattr(c, name) for c in parts]) for name in ("scores", "thresholds", "crossings", "flags", "z")),
        )


@dataclass(frozen=True)
class ScoringStages:
    """A fitted detector's scoring stages, in the order a row passes them.

    Attributes
    ----------
    scaling : Scaling
        Raw values to the network's units.
    calendar : Calendar
        The time-of-day (and week) inputs the network gets after the features (none: only
        the features).
    predictor : NetworkPredictor
        Each row's prediction from the rows before it.
    normaliser : ResidualNormaliser
        Residuals to per-feature z.
    aggregator : Aggregator
        z to one score per row.
    smoothing_span : float
        Span of the EWMA of the score (:class:`anomaly.detection.smoothing.EwmaSmoother`).
    thresholder : Thresholder
        Each row's threshold.
    event_gap, event_min_length : int
        How crossings become the final flags (:class:`anomaly.detection.events.EventMask`).
    error_levels : ndarray of shape (D,), optional
        Each feature's median calibration |z|, where z follows the rise of each feature's
        error level (:mod:`anomaly.detection.error_level`); None: z as normalised.
    feature_names : tuple of str
        The D features' names, for messages about the rows fed (default: ``feature 1`` ...).
    """

    scaling: Scaling
    predictor: NetworkPredictor
    normaliser: ResidualNormaliser
    aggregator: Aggregator
    smoothing_span: float
    thresholder: Thresholder
    event_gap: int = 0
    event_min_length: int = 1
    calendar: Calendar = Calendar()
    error_levels: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()


class StreamScorer:
    """Scoring of one series fed chunk by chunk: the stages, each with its carried state.

    Every score, threshold and flag depends only on the data and absolute positions, so
    feeding the series whole or in chunks of any size gives the same results
    (:meth:`anomaly.detector.Detector.score` feeds it whole).

    Parameters
    ----------
    stages : ScoringStages
    """

    def __init__(self, stages: ScoringStages) -> None:
        self.stages = stages
        self._predictor = stages.predictor.stream()
        self._smoother = EwmaSmoother(stages.smoothing_span)
        self._thresholds = stages.thresholder.stream()
        self._levels = None if stages.error_levels is None else ErrorLevelFollower(stages.error_levels)
        self._mask = EventMask(stages.event_gap, stages.event_min_length)
        # Scored rows whose final flags wait for their event to be decided, oldest first.
        d = len(stages.normaliser.scale)
        self._held = ScoredChunk(0, np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), np.zeros((0, d)))

    @property
    def position(self) -> int:
        """Absolute position of the next row."""
        return self._predictor.position

    @property
    def error_rises(self) -> np.ndarray | None:
        """The largest divisor of each feature's z so far, shape (D,) (see
        :mod:`anomaly.detection.error_level`); None where the stages do not follow them."""
        return None if self._levels is None else self._levels.peak.copy()

    def feed(self, values: np.ndarray, times: np.ndarray | None = None) -> ScoredChunk:
        """Score the next rows of the series.

        Parameters
        ----------
        values : ndarray of shape (n, D)
            Raw (unscaled) feature values in the detector's feature order; NaN marks a gap.
        times : ndarray of shape (n,), int64, optional
            The rows' times in nanoseconds since the epoch (:func:`anomaly.detector.row_times`):
            needed where the stages have a calendar.

        Returns
        -------
        ScoredChunk
            The rows whose flags are decided, oldest first: with ``event_gap`` 0 and
            ``event_min_length`` 1 exactly the rows fed. Otherwise fewer than
            ``event_gap + event_min_length`` rows wait for their event to be decided and come
            with a later call or :meth:`finish`.
        """
        stages = self.stages
        start = self._predictor.position
        scaled = stages.scaling.transform(checked_rows(values, stages.feature_names or len(stages.scaling.mean), start))
        if not len(scaled):  # a live feed polled with nothing new: no stage moves (the network's open block stays open)
            return self._held.rows(0, 0)
        inputs = scaled
        if stages.calendar.cycles:
            if times is None or len(times) != len(scaled):
                raise DataError(
                    f"this model gives its network the time of {' and '.join(stages.calendar.cycles)}: "
                    f"expected the times of the {len(scaled)} rows, got {'none' if times is None else len(times)}"
                )
            inputs = np.hstack([scaled, stages.calendar.columns(times)])
        predictions, scored = self._predictor.feed(inputs)
        z = stages.normaliser.transform(scaled - predictions[:, : scaled.shape[1]])
        z[~scored] = np.nan
        if self._levels is not None:
            z = self._levels.feed(z)
        scores = self._smoother.feed(stages.aggregator.transform(z))
        thresholds = self._thresholds.feed(scores)
        crossings = apply_threshold(scores, thresholds)
        return self._decide(
            ScoredChunk(start, scores, thresholds, crossings, crossings, z), self._mask.feed(crossings, np.isnan(scores))
        )

    def finish(self) -> ScoredChunk:
        """The rows still waiting for their flags, once the series has ended."""
        return self._decide(self._held.rows(0, 0), self._mask.finish())

    def _decide(self, chunk: ScoredChunk, flags: np.ndarray) -> ScoredChunk:
        """The oldest ``len(flags)`` rows not yet returned, with these final flags; hold the rest."""
        rows = ScoredChunk.concat([self._held, chunk])
        self._held = rows.rows(len(flags))
        return replace(rows.rows(0, len(flags)), flags=flags)


def checked_rows(values: object, features: Sequence[str] | int | None, start: int = 0) -> np.ndarray:
    """Rows of raw feature values as float64, (n, D), or a DataError saying what is wrong.

    Parameters
    ----------
    values : array-like of shape (n, D)
        NaN marks a missing value (a gap); infinities, text and other widths are refused, since
        one infinity would leave every later row of a stream unscored.
    features : sequence of str, int or None
        The D features' names, or D (the features are then named by position), or None for
        rows of any width D >= 1.
    start : int
        The 0-based position of the first row in its series, for row numbers in messages.
    """
    try:
        rows = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError) as err:
        raise DataError(f"expected rows of numeric features, but {err}") from None
    if features is None:
        features = rows.shape[1] if rows.ndim == 2 and rows.shape[1] else 1
    names = [f"feature {j + 1}" for j in range(features)] if isinstance(features, int) else list(features)
    if rows.ndim != 2 or rows.shape[1] != len(names):
        raise DataError(
            f"expected rows of {len(names)} features, an array of shape (n, {len(names)}), but got shape {rows.shape}"
        )
    infinite = np.isinf(rows)
    if infinite.any():
        row, column = (int(i[0]) for i in np.nonzero(infinite))
        raise DataError(
            f"feature {names[column]!r} should hold finite numbers (NaN for a missing value), but row "
            f"{start + row + 1} holds {rows[row, column]}"
        )
    return rows
