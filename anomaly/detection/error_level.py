"""Each feature's error scale following the scored stream, a little. Pure numpy.

A feature's z is its residual over its typical calibration error. Where a series is trained on
a short stretch, its later normal rows are often predicted worse than the calibration tail was,
feature by feature: on SMD's machine-1-2 trained on its last 1,000 training rows, the test
part's normal rows scored a median 3.5 where calibration scored 1.9. The level follower
(:mod:`anomaly.detection.level`) raises the threshold by the rise of the median score, but the
spread of the score grows with it, and the grown spread crosses the cut throughout.

So once :data:`~anomaly.detection.level.WINDOW` (4,096) rows have been scored, each feature's z
is divided by the rise of its own error level::

    z'[t, j] = z[t, j] / clip(median(|z[s, j]|, last W rows s before t) / median(|z_cal[:, j]|), 1, MAX_RISE)

read at fixed absolute positions every :data:`READ_EVERY` rows, so it is causal and the same
whatever the chunk sizes. A feature's median over 4,096 rows moves little while a small share of
them is anomalous in it (a tenth of them raises the median of Gaussian errors by 13%), and the
cap keeps even a lasting anomaly from being divided by more than 1.5. Before the window is full
nothing changes: a short file, or the start of a long one, is judged as trained (SKAB's files,
most of whose test parts are anomalous, lost F1 0.10-0.16 when the calibration filled the window
instead).

Chosen on the dev data (``benchmarks/DETECTION.md``, thirteenth and fourteenth passes, emulated
with ``benchmarks/stream_rules.py``): caps of 3 and 10, and following from the first scored row,
cost SKAB or the full SMD; 1.5 raised pooled F1 on every dev set long enough to reach 4,096 rows
and left their AUC-PR within 0.01.

The medians come from a per-feature histogram of the ratios ``|z| / median(|z_cal|)`` in
:data:`N_STEPS` bins over [1, MAX_RISE], with one bin below and one above: only the clipped
median matters, so the bins outside that range need not be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anomaly.detection.level import WINDOW

# The most a feature's z is divided by, however far its error level has risen.
MAX_RISE = 1.5
# Bins of the ratio inside [1, MAX_RISE] (a width of 0.01); bin 0 is below 1, bin N_STEPS + 1
# at or above MAX_RISE, and _MISSING marks a row that was not scored.
N_STEPS = 50
_WIDTH = (MAX_RISE - 1.0) / N_STEPS
_N_BINS = N_STEPS + 2
_MISSING = _N_BINS
# Rows between two readings of the medians, at absolute positions. The medians of 4,096 rows
# move slowly: read every 256 rows rather than every 64, as the level follower reads, SMD's
# pooled F1 was 0.553 rather than 0.555 and the other dev sets' the same to 0.001
# (benchmarks/DETECTION.md, fourteenth pass), and the rule costs half as much (0.39 against
# 0.71 us a row of 38 features).
READ_EVERY = 256
# The window, WINDOW rows, in blocks of READ_EVERY.
_BLOCKS = WINDOW // READ_EVERY


def calibration_levels(z: np.ndarray) -> np.ndarray:
    """Each feature's median |z| over calibration rows (K, D), unscored rows (NaN) aside: (D,)."""
    return np.nanmedian(np.abs(np.asarray(z, dtype=np.float64)), axis=0)


@dataclass
class ErrorLevelFollower:
    """Streaming state of the per-feature error-level rule (see the module docstring).

    The window is kept as the bin counts of its :data:`_BLOCKS` blocks of ``READ_EVERY``
    rows, so that a stretch of up to that many blocks is handled in a few array operations: the
    window at each block boundary is the last one plus the blocks that came, less those that
    left. It costs 0.3-0.5 CPU-seconds per million rows of 38 features, 6-10% of the scoring's
    CPU time (``benchmarks/versus_commit.py``, this rule's commit against the one before).

    Parameters
    ----------
    calibration : ndarray of shape (D,)
        :func:`calibration_levels` of the calibration z. A feature whose level is 0 (or not
        finite) is never divided.

    Attributes
    ----------
    position : int
        Absolute position of the next row.
    peak : ndarray of shape (D,)
        The largest divisor each feature's z has had so far (1: never divided).
    """

    calibration: np.ndarray
    position: int = 0
    peak: np.ndarray = field(init=False)
    _divisors: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        calibration = np.asarray(self.calibration, dtype=np.float64)
        if calibration.ndim != 1:
            raise ValueError(f"calibration must be one level per feature, shape (D,); got shape {calibration.shape}")
        self.calibration = calibration
        # |z| to its bin's position: / level / _WIDTH; 0 where a feature has no level, whose
        # ratios then all fall below 1, so that it is never divided.
        usable = np.isfinite(calibration) & (calibration > 0)
        self._bin_scale = np.where(usable, 1.0 / np.where(usable, calibration, 1.0) / _WIDTH, 0.0).astype(np.float32)
        d = len(calibration)
        self._ring = np.zeros((_BLOCKS, d, _N_BINS + 1), dtype=np.int64)  # block b's counts at b % _BLOCKS
        self._window = np.zeros((d, _N_BINS + 1), dtype=np.int64)  # the blocks before the open one
        self._open = np.zeros((d, _N_BINS + 1), dtype=np.int64)  # the open block's rows so far
        self._offsets = np.arange(d) * (_N_BINS + 1)  # each feature's bin 0 in a flat count
        self._divisors = np.ones(d)
        self.peak = np.ones(d)

    def feed(self, z: np.ndarray) -> np.ndarray:
        """The next rows' z, each feature divided by its divisor: shape (n, D) -> (n, D).

        A row with a NaN is not scored: it is left out of the window whole.
        """
        z = np.asarray(z, dtype=np.float64)
        # Each |z| / level as its bin: below 1 -> 0, [1, MAX_RISE) in steps of _WIDTH, at or
        # above -> N_STEPS + 1; truncation is the floor, every position being >= 0. In float32:
        # bins need no more, and float64 temporaries of this size cost more than the rest.
        position = np.abs(z, dtype=np.float32)
        position *= self._bin_scale
        position += np.float32(1.0 - 1.0 / _WIDTH)
        np.clip(position, 0, N_STEPS + 1, out=position)
        with np.errstate(invalid="ignore"):  # NaN casts to garbage, overwritten here
            bins = position.astype(np.uint8)
        bins[np.isnan(z).any(axis=1)] = _MISSING
        out = np.empty_like(z)
        i = 0
        while i < len(z):  # stretches that end at most _BLOCKS blocks after the open one starts
            stop = min(len(z), i + (self.position // READ_EVERY + _BLOCKS) * READ_EVERY - self.position)
            self._stretch(z[i:stop], bins[i:stop], out[i:stop])
            i = stop
        return out

    def _stretch(self, z: np.ndarray, bins: np.ndarray, out: np.ndarray) -> None:
        """Divide rows ``z`` (m, D), spanning at most _BLOCKS blocks, into ``out``; ``bins`` (m, D)."""
        m, d = z.shape
        first = self.position // READ_EVERY
        # Each block's rows in this stretch: [edges[j], edges[j + 1]).
        edges = [0, *range((first + 1) * READ_EVERY - self.position, m, READ_EVERY), m]
        n_blocks, width = len(edges) - 1, _N_BINS + 1
        counts = np.stack(
            [np.bincount((bins[a:b] + self._offsets).ravel(), minlength=d * width) for a, b in zip(edges, edges[1:])]
        ).reshape(n_blocks, d, width)
        counts[0] += self._open
        # The window at the start of block j: the one before the first block, plus the blocks
        # before j, less the blocks _BLOCKS before them (which the ring holds: j < _BLOCKS).
        slots = (first + np.arange(n_blocks)) % _BLOCKS
        change = counts - self._ring[slots]
        windows = self._window + np.concatenate([np.zeros((1, d, width), np.int64), np.cumsum(change[:-1], axis=0)])
        # A block is read at its start, once the window is full: the first one only if this
        # stretch starts it (otherwise its divisors are the ones carried).
        fresh = (first + np.arange(n_blocks)) >= _BLOCKS
        fresh[0] &= self.position % READ_EVERY == 0
        divisors = np.ones((n_blocks, d))
        divisors[0] = self._divisors
        if fresh.any():
            divisors[fresh] = _clipped_medians(windows[fresh][..., :_N_BINS])
        for j, (a, b) in enumerate(zip(edges, edges[1:])):
            np.divide(z[a:b], divisors[j], out=out[a:b])
        self.peak = np.maximum(self.peak, divisors.max(axis=0))
        # Blocks this stretch completes join the window; an unfinished last one stays open.
        done = n_blocks if (self.position + m) % READ_EVERY == 0 else n_blocks - 1
        self._ring[slots[:done]] = counts[:done]
        if done:
            self._window = windows[done - 1] + change[done - 1]
        self._open = np.zeros_like(self._open) if done == n_blocks else counts[-1]
        self._divisors = divisors[-1]
        self.position += m


def _clipped_medians(counts: np.ndarray) -> np.ndarray:
    """Each feature's median ratio, clipped to [1, MAX_RISE], from bin counts (J, D, _N_BINS): (J, D).

    Interpolated linearly inside the median's bin; bin 0 (below 1) and the top bin (at or above
    the cap) are read as their bounds, and a feature with no scored row in the window gives 1.
    """
    half = counts.sum(axis=-1) / 2.0
    cumulative = np.cumsum(counts, axis=-1)
    k = np.minimum(np.count_nonzero(cumulative < half[..., None], axis=-1), _N_BINS - 1)
    below = np.where(k > 0, np.take_along_axis(cumulative, np.maximum(k - 1, 0)[..., None], axis=-1)[..., 0], 0)
    in_bin = np.take_along_axis(counts, k[..., None], axis=-1)[..., 0]
    median = 1.0 + _WIDTH * (k - 1 + np.clip((half - below) / np.maximum(in_bin, 1), 0.0, 1.0))
    median = np.where(k == 0, 1.0, np.where(k == N_STEPS + 1, MAX_RISE, median))
    return np.where(half > 0, np.clip(median, 1.0, MAX_RISE), 1.0)
