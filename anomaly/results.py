"""What a scoring pass keeps as it goes: events, counts, and bounded data for the plots.

Scoring writes every row out as soon as it is scored (see :mod:`anomaly.data.writing`); this module
keeps only what the run summary, the events file and the figures need, in memory that stays
bounded however long the series is:

* the time index, scores, flags and labels, at 8 + 8 + 1 + 1 bytes per row (the summary and the
  figures need them at full resolution: 180 MB for 10 million rows);
* the events, grouped as they close (:class:`anomaly.detection.events.EventGrouper`);
* the features and normalised residuals of at most :data:`FULL_ROWS` rows for the figures; a
  longer series is thinned for drawing (every k-th row, k a power of two), and the close-ups of
  single events, which need full resolution, are then left out.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

from anomaly.detection.events import Event, EventGrouper

logger = logging.getLogger(__name__)

# Rows of features and residuals kept at full resolution for the figures.
FULL_ROWS = 200_000

# One "name:share" entry of an event's top_features text. The share is always written with two
# decimals, so a name may itself hold ':' or ';' (pandas names a column with an empty header
# "Unnamed: 0"): the entry ends at the first ":d.dd" followed by ';' or the end.
_TOP_FEATURE = re.compile(r"(.*?):(\d+\.\d\d)(?:;|$)", re.DOTALL)


def parse_top_features(text: str) -> list[tuple[str, float]]:
    """The (feature name, share) pairs of an events table's ``top_features`` text, in order."""
    return [(name, float(share)) for name, share in _TOP_FEATURE.findall(text)]


class ResultCollector:
    """Accumulates a scoring pass chunk by chunk.

    Parameters
    ----------
    feature_names : list of str
        The D features, in the order of the residual columns.
    event_gap, event_min_length : int
        See :class:`anomaly.detection.events.EventGrouper`.
    """

    def __init__(self, feature_names: list[str], *, event_gap: int = 0, event_min_length: int = 1) -> None:
        self.feature_names = list(feature_names)
        self._grouper = EventGrouper(gap=event_gap, min_length=event_min_length)
        self._events: list[Event] = []
        self._index_parts: list[pd.Index] = []
        self._scores: list[np.ndarray] = []
        self._flags: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._plot_parts: list[pd.DataFrame] = []
        self._plot_rows = 0
        self.thin = 1  # every thin-th row is kept for the figures
        self.rows = 0
        self.max_threshold = float("-inf")  # the highest row threshold (the level follower raises it)
        self.flagged_error = np.zeros(len(self.feature_names))  # sum of z² over flagged rows
        # Each feature's largest divisor for the rise of its errors (StreamScorer.error_rises),
        # once the pass is over; None where the model does not follow them.
        self.error_rises: np.ndarray | None = None

    def add(
        self,
        frame: pd.DataFrame,
        results: pd.DataFrame,
        labels: np.ndarray | None,
        raw_flags: np.ndarray | None = None,
    ) -> None:
        """Take one scored chunk.

        Parameters
        ----------
        frame : DataFrame of shape (n, D)
            The chunk's features, in their own units.
        results : DataFrame of shape (n, 3 + D)
            The chunk's results (``score``, ``threshold``, ``is_anomaly``, ``z_*``), same index.
        labels : ndarray of shape (n,), bool, optional
        raw_flags : ndarray of shape (n,), bool, optional
            The threshold crossings the events are grouped from, when ``is_anomaly`` already
            follows the events (bridged gaps flagged); default: ``is_anomaly``.
        """
        scores = results["score"].to_numpy(dtype=np.float64)
        flags = results["is_anomaly"].to_numpy(dtype=bool)
        if len(results):
            self.max_threshold = max(self.max_threshold, float(np.max(results["threshold"].to_numpy(dtype=np.float64))))
        z = results.iloc[:, 3:].to_numpy(dtype=np.float64)
        raw = flags if raw_flags is None else np.asarray(raw_flags, dtype=bool)
        self._events.extend(self._grouper.feed(raw, scores, z, start=self.rows))
        if flags.any():
            self.flagged_error += np.nansum(np.square(z[flags]), axis=0)
        self._index_parts.append(results.index)
        self._scores.append(scores)
        self._flags.append(flags)
        if labels is not None:
            self._labels.append(np.asarray(labels, dtype=bool))
        positions = self.rows + np.arange(len(results))
        keep = positions % self.thin == 0
        part = pd.concat([frame, results], axis=1)
        self._plot_parts.append(part if keep.all() else part[keep])
        self._plot_rows += int(keep.sum())
        self.rows += len(results)
        while self._plot_rows > FULL_ROWS:
            self._thin_plot_rows()

    def _thin_plot_rows(self) -> None:
        self.thin *= 2
        kept = pd.concat(self._plot_parts)
        # Rows kept so far sit at multiples of thin/2; keep those at multiples of thin.
        on_grid = (np.arange(len(kept)) % 2) == 0
        self._plot_parts = [kept[on_grid]]
        self._plot_rows = int(on_grid.sum())
        logger.debug("figures: keeping every %d-th row", self.thin)

    def finish(self) -> None:
        """Close the last event; call once after the last chunk."""
        self._events.extend(self._grouper.finish())

    # ------------------------------------------------------------------ results
    @property
    def index(self) -> pd.Index:
        """The full time index, shape (L,)."""
        return self._index_parts[0].append(self._index_parts[1:]) if self._index_parts else pd.Index([])

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate(self._scores) if self._scores else np.zeros(0)

    @property
    def flags(self) -> np.ndarray:
        return np.concatenate(self._flags) if self._flags else np.zeros(0, dtype=bool)

    @property
    def labels(self) -> np.ndarray | None:
        return np.concatenate(self._labels) if self._labels else None

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def plot_data(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The features (m, D) and results (m, 3 + D) kept for the figures (every ``thin``-th row)."""
        part = pd.concat(self._plot_parts) if self._plot_parts else pd.DataFrame()
        d = len(self.feature_names)
        return part.iloc[:, :d], part.iloc[:, d:]

    def event_table(self, top_k: int = 3) -> pd.DataFrame:
        """One row per event: ``start``, ``end`` (time labels, inclusive), ``steps``, ``flagged_steps``,
        ``peak_score``, ``peak_at``, ``top_features`` (``"name:share;..."``, largest first)."""
        index = self.index
        rows = []
        for event in self._events:
            # Two decimals, as written: a share that would read 0.00 says nothing, so it is left out.
            top = [(self.feature_names[j], share) for j, share in event.top_features(top_k) if round(share, 2) > 0]
            rows.append(
                {
                    "start": index[event.start],
                    "end": index[event.end],
                    "steps": event.length,
                    "flagged_steps": event.n_flagged,
                    "peak_score": float(event.peak_score),
                    "peak_at": index[event.peak_position],
                    "top_features": ";".join(f"{name}:{share:.2f}" for name, share in top),
                }
            )
        columns = ["start", "end", "steps", "flagged_steps", "peak_score", "peak_at", "top_features"]
        return pd.DataFrame(rows, columns=columns)

    def event_records(self, top_k: int = 3) -> list[dict]:
        """Events as JSON-ready dicts, with every feature share of the top ``top_k``."""
        index = self.index
        out = []
        for event in self._events:
            out.append(
                {
                    "start": _json_label(index[event.start]),
                    "end": _json_label(index[event.end]),
                    "start_position": int(event.start),
                    "end_position": int(event.end),
                    "steps": int(event.length),
                    "flagged_steps": int(event.n_flagged),
                    "peak_score": float(event.peak_score),
                    "peak_at": _json_label(index[event.peak_position]),
                    "top_features": [
                        {"feature": self.feature_names[j], "share": round(float(share), 4)}
                        for j, share in event.top_features(top_k)
                        if share > 0
                    ],
                }
            )
        return out


def _json_label(label: object) -> object:
    if isinstance(label, pd.Timestamp):
        return label.isoformat()
    if isinstance(label, (np.integer, np.floating)):
        return label.item()
    return label
