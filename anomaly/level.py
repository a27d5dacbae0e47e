"""A threshold that follows the level of the scored stream. Pure numpy.

A threshold fitted on held-back training data assumes later normal data scores like the
calibration part. On real series the whole score distribution often moves: a server's load
changes, a test bench stays warm after a fault, a season turns. Every ordinary step then sits
above a fixed threshold (on one SMD dev machine a fixed cut flagged 83% of the test rows, this
rule 39%; 16% are labelled).

So the fitted threshold is moved up by how far the *median* score of everything scored so far
has risen above the median calibration score::

    threshold[t] = fitted + max(0, median(calibration ∪ scores before t) − median(calibration))

The median moves with the bulk of the scores, which are normal, and hardly with anomalies as
long as they are fewer than half of what has been seen; starting from the calibration scores
means a short file, or the start of a long one, is judged by the fitted threshold. The
threshold never drops below the fitted one. This is the "shift5" rule of
``benchmarks/explore_defaults.py``; ``benchmarks/DETECTION.md`` has what it was chosen over.

The running median is read from a histogram of every score seen, in :data:`N_BINS` geometric
bins, and updated at fixed absolute positions every :data:`UPDATE_EVERY` rows, so it is
deterministic, causal, bounded in memory and the same whatever the chunk sizes.
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

    Attributes
    ----------
    position : int
        Absolute position of the next row.
    """

    threshold: float
    calibration_counts: np.ndarray
    position: int = 0
    _counts: np.ndarray = field(init=False, repr=False)
    _current: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.calibration_counts = np.asarray(self.calibration_counts, dtype=np.int64)
        if self.calibration_counts.shape != (N_BINS,) or self.calibration_counts.sum() == 0:
            raise ValueError(f"calibration_counts must be a non-empty histogram of shape ({N_BINS},)")
        self.calibration_median = float(histogram_median(self.calibration_counts))
        self._counts = self.calibration_counts.copy()  # everything before the current block
        self._pending_bins: list[np.ndarray] = []  # bins of the current block's scored rows so far
        self._total = int(self._counts.sum())
        self._k, self._below = _median_bin(self._counts)  # the median bin and the rows below it
        self._current = float(self.threshold)

    def feed(self, scores: np.ndarray) -> np.ndarray:
        """Thresholds of the next rows (NaN scores are not counted), shape (n,) -> (n,)."""
        scores = np.asarray(scores, dtype=np.float64)
        n = len(scores)
        out = np.empty(n)
        start = self.position
        bins = np.where(np.isnan(scores), -1, _bins(np.nan_to_num(scores)))
        # Rows up to the next block boundary take the open block's threshold; at each boundary
        # the block's scores join the histogram and the median bin is walked to its new place
        # (it moves a few bins at most: under 1 s per million rows on a loaded 2-core machine,
        # against 4 s for cumulative histograms per block).
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
        """Add the finished block's scores to the histogram and move the median bin."""
        counts, k = self._counts, self._k
        block = np.concatenate(self._pending_bins)
        np.add.at(counts, block, 1)
        self._below += int(np.count_nonzero(block < k))
        self._total += len(block)
        self._pending_bins = []
        half = self._total / 2.0
        while self._below + counts[k] < half and k < N_BINS - 1:
            self._below += counts[k]
            k += 1
        while k > 0 and self._below >= half:
            k -= 1
            self._below -= counts[k]
        self._k = k
        median = _interpolated(k, self._below, self._total, int(counts[k]))
        self._current = float(self.threshold + max(0.0, median - self.calibration_median))


def counts_to_dict(counts: np.ndarray) -> dict[str, int]:
    """A sparse JSON-friendly form of a histogram: ``{bin: count}`` for non-empty bins."""
    return {str(int(i)): int(counts[i]) for i in np.flatnonzero(counts)}


def counts_from_dict(data: dict[str, int]) -> np.ndarray:
    """Inverse of :func:`counts_to_dict`, shape (N_BINS,)."""
    counts = np.zeros(N_BINS, dtype=np.int64)
    for key, value in data.items():
        counts[int(key)] = int(value)
    return counts
