"""A threshold that follows the level of the scored stream. Pure numpy.

A threshold fitted on held-back training data assumes later normal data scores like the
calibration part. On real series the whole score distribution often moves: a server's load
changes, a test bench stays warm after a fault, a season turns. Every ordinary step then sits
above a fixed threshold (on one SMD dev machine a fixed cut flagged 83% of the test rows; 16%
are labelled).

So the fitted threshold is moved up by how far the *median* of the recent scores has risen
above the median calibration score::

    threshold[t] = fitted + max(0, median(last W scores before t) − median(calibration))

where the calibration scores stand for the rows before the first scored one: until ``W``
rows are scored the window holds them all (a short file, or the start of a long one, is judged
by the fitted threshold), and as scored rows fill it the calibration makes way for them. With
``W`` = :data:`WINDOW` (4,096 rows) the threshold catches up with a level shift about 2,000 rows
after it, where a median over everything scored needed about 7,000 on that SMD machine (when
the window was chosen its test part flagged 39% rather than 83% with the median of everything,
16% with the window; F1 0.32, 0.53, 0.74). The median moves with the bulk
of the scores, which are normal, and hardly with anomalies shorter than half the window. The
threshold never drops below the fitted one. This is the "pswin4096" rule of
``benchmarks/explore_defaults.py``; ``benchmarks/DETECTION.md`` has what it was chosen over.

The median is read from a histogram of the window in :data:`N_BINS` geometric bins, updated at
fixed absolute positions every :data:`UPDATE_EVERY` rows, so it is deterministic, causal,
bounded in memory and the same whatever the chunk sizes. Calibration scores leave the window in
proportion (they are stored as a histogram, without their order). ``window=None`` keeps every
score (the rule of detectors saved before the window existed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Geometric bins over [LOW, HIGH]: 256 a decade is a relative width of 0.9%; scores below LOW
# fall in the first bin, above HIGH in the last. Scores are non-negative (aggregated |z|).
LOW, HIGH, PER_DECADE = 1e-4, 1e6, 256
N_BINS = int(round(np.log10(HIGH / LOW) * PER_DECADE))
_EDGES = LOW * 10.0 ** (np.arange(N_BINS + 1) / PER_DECADE)
# The level used for a row is the median of the scores of all rows before the last multiple of
# this position: one histogram update per block, the same for any chunking.
UPDATE_EVERY = 64
# Scores the level is the median of (scored rows, the calibration scores filling the rest).
WINDOW = 4096
# Bins the median may walk per update before it is read afresh from a cumulative sum.
_MAX_WALK = 64


def _bins(scores: np.ndarray) -> np.ndarray:
    """Bin index of each score, shape (n,) -> (n,) int."""
    return np.clip(np.searchsorted(_EDGES, scores, side="right") - 1, 0, N_BINS - 1)


def histogram(scores: np.ndarray) -> np.ndarray:
    """Counts of the non-NaN ``scores`` (n,) in the level bins, shape (N_BINS,) int64."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.bincount(_bins(scores[~np.isnan(scores)]), minlength=N_BINS).astype(np.int64)


def _median_bin(counts: np.ndarray) -> tuple[int, int]:
    """The bin holding the median of a non-empty histogram, and the count in the bins below it."""
    cumulative = np.cumsum(counts)
    k = int(min(np.count_nonzero(cumulative < cumulative[-1] / 2.0), N_BINS - 1))
    return k, int(cumulative[k - 1]) if k > 0 else 0


def _interpolated(k: int, below: int, total: int, in_bin: int) -> float:
    """The median inside bin ``k``, geometrically interpolated by where half the total falls."""
    fraction = min(max((total / 2.0 - below) / max(in_bin, 1), 0.0), 1.0)
    return float(_EDGES[k] * (_EDGES[k + 1] / _EDGES[k]) ** fraction)


def histogram_median(counts: np.ndarray) -> float:
    """Median of a histogram (N_BINS,), interpolated inside the median bin; NaN when empty."""
    counts = np.asarray(counts)
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    k, below = _median_bin(counts)
    return _interpolated(k, below, total, int(counts[k]))


@dataclass
class LevelFollower:
    """Streaming state of the level-following threshold.

    Parameters
    ----------
    threshold : float
        The fitted threshold.
    calibration_counts : ndarray of shape (N_BINS,)
        :func:`histogram` of the calibration scores the threshold was fitted on.
    window : int or None
        How many of the latest scores the median is taken over (the calibration scores fill
        what the scored rows do not); None: every score so far, calibration included.

    Attributes
    ----------
    position : int
        Absolute position of the next row.
    """

    threshold: float
    calibration_counts: np.ndarray
    window: int | None = WINDOW
    position: int = 0
    _current: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.calibration_counts = np.asarray(self.calibration_counts, dtype=np.int64)
        if self.calibration_counts.shape != (N_BINS,) or self.calibration_counts.sum() == 0:
            raise ValueError(f"calibration_counts must be a non-empty histogram of shape ({N_BINS},)")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be a positive number of rows or None; got {self.window}")
        self.calibration_median = float(histogram_median(self.calibration_counts))
        self._calibration_rows = int(self.calibration_counts.sum())
        self._recent = np.zeros(N_BINS, dtype=np.int64)  # the scored rows in the window
        self._recent_rows = 0
        # The window's scored rows, oldest first, as a ring of bins (only with a window).
        self._ring = np.zeros(self.window or 0, dtype=np.int32)
        self._ring_start = 0
        self._pending_bins: list[np.ndarray] = []  # bins of the current block's scored rows so far
        # Once the window is full: its median bin and the count below it, walked block by block.
        self._median_k: int | None = None
        self._median_below = 0
        self._current = float(self.threshold)

    def feed(self, scores: np.ndarray) -> np.ndarray:
        """Thresholds of the next rows (NaN scores are not counted), shape (n,) -> (n,)."""
        scores = np.asarray(scores, dtype=np.float64)
        n = len(scores)
        out = np.empty(n)
        start = self.position
        bins = np.where(np.isnan(scores), -1, _bins(np.nan_to_num(scores)))
        # Rows up to the next block boundary take the open block's threshold; at each boundary
        # the block's scores join the window and the median is read again.
        i = 0
        while i < n:
            position = start + i
            if position % UPDATE_EVERY == 0 and self._pending_bins:
                self._absorb()
            stop = min(n, i + UPDATE_EVERY - position % UPDATE_EVERY)
            out[i:stop] = self._current
            chunk = bins[i:stop]
            self._pending_bins.append(chunk[chunk >= 0])
            i = stop
        self.position = start + n
        return out

    def _absorb(self) -> None:
        """Add the finished block's scores to the window, drop the oldest, read the median."""
        block = np.concatenate(self._pending_bins)
        self._pending_bins = []
        if len(block) == 0:
            return
        if self.window is None:
            np.add.at(self._recent, block, 1)
            self._recent_rows += len(block)
            calibration_weight, recent_weight = 1, 1
        else:
            arriving = block[-self.window :]
            leaving = self._push(arriving)
            if self._recent_rows == self.window:  # full: the median of the scored rows alone
                k, below = self._walk_median_bin(arriving, leaving)
                scale = self._calibration_rows  # the integer weight the general formula gives them
                self._set_level(k, below * scale, self.window * scale, int(self._recent[k]) * scale)
                return
            # The calibration fills what the scored rows leave of the window, in proportion:
            # weights scaled by the calibration's size so that every count stays an integer.
            calibration_weight = min(self._calibration_rows, self.window - self._recent_rows)
            recent_weight = self._calibration_rows
        counts = self.calibration_counts * calibration_weight + self._recent * recent_weight
        k, below = _median_bin(counts)
        self._set_level(k, below, int(counts.sum()), int(counts[k]))

    def _set_level(self, k: int, below: int, total: int, in_bin: int) -> None:
        """The threshold from the window's median bin ``k`` (see :func:`_interpolated`)."""
        median = _interpolated(k, below, total, in_bin)
        self._current = float(self.threshold + max(0.0, median - self.calibration_median))

    def _walk_median_bin(self, added: np.ndarray, removed: np.ndarray) -> tuple[int, int]:
        """:func:`_median_bin` of the full window's counts, moved from the last one.

        Once the window holds only scored rows, each block changes it by at most a block's
        rows, so the median bin moves a few bins: the count below the last median bin is
        corrected for the rows that came and went, and the bin walks from there (a full
        cumulative sum over the bins costs more than the rest of the scoring step). Gives
        exactly what :func:`_median_bin` gives.
        """
        recent = self._recent
        if self._median_k is None:
            self._median_k, self._median_below = _median_bin(recent)
            return self._median_k, self._median_below
        k = self._median_k
        below = self._median_below + int(np.count_nonzero(added < k)) - int(np.count_nonzero(removed < k))
        half = self.window / 2.0
        for _ in range(_MAX_WALK):
            if k > 0 and below >= half:  # the bin below already holds the median
                k -= 1
                below -= int(recent[k])
            elif k < N_BINS - 1 and below + int(recent[k]) < half:  # the median lies above this bin
                below += int(recent[k])
                k += 1
            else:
                break
        else:  # the level jumped: one cumulative sum is cheaper than walking on
            k, below = _median_bin(recent)
        self._median_k, self._median_below = k, below
        return k, below

    def _push(self, block: np.ndarray) -> np.ndarray:
        """Append bins (m,) with m <= window to the ring, evicting the oldest beyond it.

        Returns
        -------
        ndarray of shape (evicted,)
            The bins of the rows that left the window.
        """
        window, m = int(self.window), len(block)
        overflow = self._recent_rows + m - window
        leaving = np.zeros(0, dtype=np.int32)
        if overflow > 0:  # the oldest rows leave
            leaving = self._ring[(self._ring_start + np.arange(overflow)) % window]
            np.subtract.at(self._recent, leaving, 1)
            self._ring_start = (self._ring_start + overflow) % window
            self._recent_rows -= overflow
        slots = (self._ring_start + self._recent_rows + np.arange(m)) % window
        self._ring[slots] = block
        np.add.at(self._recent, block, 1)
        self._recent_rows += m
        return leaving


def counts_to_dict(counts: np.ndarray) -> dict[str, int]:
    """A sparse JSON-friendly form of a histogram: ``{bin: count}`` for non-empty bins."""
    return {str(int(i)): int(counts[i]) for i in np.flatnonzero(counts)}


def counts_from_dict(data: dict[str, int]) -> np.ndarray:
    """Inverse of :func:`counts_to_dict`, shape (N_BINS,)."""
    counts = np.zeros(N_BINS, dtype=np.int64)
    for key, value in data.items():
        counts[int(key)] = int(value)
    return counts
