"""The seasonal part of each feature's residual: a scoring stage tried for issue 12, not taken.

Built into the product as ``anomaly/detection/seasonal.py`` (between the predictor and the
normaliser, on by default) and taken out again before it was committed: two of
``tests/test_detector.py``'s tests failed (benchmarks/DETECTION.md, ninth pass). Kept here so
that the sweep (``explore_defaults.py sweep ... --grid seasres=stage[:tolerance[:min_acf]]``)
reruns it as it was last built (its second version). What it does:

A next-step network sees ``window_size`` rows. A pattern that recurs once a period longer than
that (a CPU job every day at 3 am, the edges of a daily square wave, a weekly peak) cannot be
foreseen from them, so the network errs at the same moment of every period, and those ordinary
errors rank with the anomalies. Where a feature's training residuals repeat with a period P,
each residual is lowered by a seasonal autoregression of the residuals themselves::

    r'[t] = r[t] - b * x[t],   x[t] = m[t - P] - mean(m[t - P - H .. t - P + H]),  H = P // 2

``b`` is fitted by least squares (lightly ridged) on the training residuals. ``x`` is how the
moment one period earlier stood out from the period around it, so what recurs at every lag — a
bias the network keeps while a level drifts past its training range, a lasting level change —
cancels out of ``x`` and is not explained away; only a recurring *shape* is. The residuals are signed: noise that grows
or a pattern that changes keeps its residual, and a daily spike that fails to come leaves
``-b * x[t]``.

``m`` is the *pattern memory*: the residual as observed, except that one row moves it by at
most ``tolerance`` typical deviations (more where a pattern is expected: by as much again as
the pattern's own size), so a spike today comes back at the same moment tomorrow as a negative
"echo" of at most that size, not of its own. Features with no period, or too little training data to see two, are left as
they are.

Pure numpy. Causal and chunk-invariant: a stream carries the last ``P + H`` memory rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# A feature's period is kept where the autocorrelation of its training residuals peaks at
# least this high at a lag of at least MIN_PERIOD rows (shorter lags are the network's own job).
MIN_ACF = 0.3
MIN_PERIOD = 12
# Ridge penalty as a share of the regressor's sum of squares: shrinks b towards 0 by 1 %.
RIDGE = 0.01
# How far (in robust standard deviations of the corrected training residuals) one row may move
# the pattern memory away from what was expected.
TOLERANCE = 3.0
# Least number of (r[t], x[t]) pairs in the training residuals to fit b from.
MIN_PAIRS = 8

_MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class SeasonalResidual:
    """Fitted seasonal autoregressions of residuals, one per feature.

    Attributes
    ----------
    periods : ndarray of shape (D,), int
        Each feature's period P in rows; 0 where its residuals are left as they are.
    coef : ndarray of shape (D,)
        ``b`` per feature (0 where the period is 0).
    center : ndarray of shape (D,)
        Median corrected training residual: where the memory's tolerance is measured from.
    limit : ndarray of shape (D,)
        The largest deviation one row brings into the pattern memory where nothing stands out
        (``tolerance`` robust standard deviations of the corrected training residuals).
    bound : ndarray of shape (D,)
        The largest |residual| taken into the memory where nothing is expected yet (the first
        period of a stream): the training residuals' largest.
    unseen_offset, unseen_gain : ndarray of shape (D,)
        Where nothing is expected yet, the residual comes out as ``offset + gain * r``: moved
        onto the corrected residuals' calibration scale (:meth:`calibrated`), so that the
        first period of a scored stream, which cannot be corrected, is measured against the
        calibration of uncorrected residuals and not against the smaller corrected ones.
    """

    periods: np.ndarray
    coef: np.ndarray
    center: np.ndarray
    limit: np.ndarray
    bound: np.ndarray
    unseen_offset: np.ndarray | None = None
    unseen_gain: np.ndarray | None = None

    def calibrated(
        self, raw_center: np.ndarray, raw_scale: np.ndarray, center: np.ndarray, scale: np.ndarray
    ) -> SeasonalResidual:
        """The same correction, with uncorrectable rows mapped from the uncorrected calibration
        residuals' (center, scale) onto the corrected ones' (each of shape (D,))."""
        gain = np.where(self.periods > 0, np.asarray(scale) / np.asarray(raw_scale), 1.0)
        offset = np.where(self.periods > 0, np.asarray(center) - gain * np.asarray(raw_center), 0.0)
        return replace(self, unseen_offset=offset, unseen_gain=gain)

    @property
    def active(self) -> bool:
        """Whether any feature has a period."""
        return bool(np.any(self.periods > 0))

    @classmethod
    def fit(
        cls,
        residuals: np.ndarray,
        *,
        min_acf: float = MIN_ACF,
        min_period: int = MIN_PERIOD,
        ridge: float = RIDGE,
        tolerance: float = TOLERANCE,
    ) -> SeasonalResidual:
        """Find each feature's period and fit its coefficient.

        Parameters
        ----------
        residuals : ndarray of shape (L, D)
            The training series' residuals in one pass (NaN where not scored).
        min_acf, min_period, ridge, tolerance : float, int, float, float
            As the module's constants.

        Returns
        -------
        SeasonalResidual
        """
        R = np.asarray(residuals, dtype=np.float64)
        D = R.shape[1]
        periods = np.zeros(D, dtype=np.int64)
        coef, center, limit, bound = np.zeros(D), np.zeros(D), np.zeros(D), np.zeros(D)
        for f in range(D):
            r = R[:, f]
            period = _period(r, min_acf, min_period)
            if not period:
                continue
            x = _regressor(r, period)
            pairs = np.isfinite(x) & np.isfinite(r)
            if pairs.sum() < MIN_PAIRS:
                continue
            x, y = x[pairs], r[pairs]
            b = float(x @ y / ((1.0 + ridge) * (x @ x))) if x @ x > 0 else 0.0
            if not b > 0:  # a moment that errs the other way a period later is no pattern
                continue
            corrected = y - b * x
            middle = float(np.median(corrected))
            spread = _MAD_TO_STD * np.median(np.abs(corrected - middle))
            # A noise-free pattern corrects to almost nothing: keep the memory able to follow it.
            spread = max(spread, 0.1 * float(np.std(corrected)), 1e-12)
            periods[f], coef[f], center[f] = period, b, middle
            limit[f], bound[f] = tolerance * spread, float(np.nanmax(np.abs(r)))
        return cls(periods, coef, center, limit, bound)

    def stream(self) -> SeasonalStream:
        """The correction of a series fed in chunks (see :class:`SeasonalStream`)."""
        return SeasonalStream(self)

    def to_dict(self) -> dict[str, list | None]:
        return {name: None if getattr(self, name) is None else getattr(self, name).tolist() for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, list | None]) -> SeasonalResidual:
        values = [None if data.get(name) is None else np.asarray(data[name], dtype=np.float64) for name in _FIELDS]
        return cls(values[0].astype(np.int64), *values[1:])


_FIELDS = ("periods", "coef", "center", "limit", "bound", "unseen_offset", "unseen_gain")


def _period(r: np.ndarray, min_acf: float, min_period: int) -> int:
    """The lag (rows) of the highest local peak of ``r``'s autocorrelation, or 0.

    Lags from ``min_period`` to half the series (two whole periods at least: one to learn the
    pattern from, one to fit ``b`` on); each lag's sum of products divided by its own number of
    products, so that long lags are not shrunk towards 0. NaN counts as the mean. 0 when the
    peak is below ``min_acf``.
    """
    finite = np.isfinite(r)
    if finite.sum() < 2:
        return 0
    v = np.where(finite, r - r[finite].mean(), 0.0)
    n = len(v)
    top = n // 2
    if top < min_period + 2 or not v.any():
        return 0
    acf = autocorrelation(v, top)
    peaks = local_peaks(acf, np.arange(max(min_period, 2), top))
    if not len(peaks):
        return 0
    best = int(peaks[np.argmax(acf[peaks])])
    return best if acf[best] >= min_acf else 0


def autocorrelation(v: np.ndarray, top: int, per_lag: bool = True) -> np.ndarray:
    """The autocorrelation (top + 1,) of a centred series ``v`` (n,) at lags 0 .. top, 1 at lag 0.

    By FFT. ``per_lag``: each lag's sum of products divided by its own number of products
    (n - lag), so that long lags are not shrunk towards 0; else all by n (the usual estimate).
    """
    n = len(v)
    spectrum = np.fft.rfft(v, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[: top + 1]
    if per_lag:
        acf = acf / (n - np.arange(top + 1))
    return acf / acf[0]


def local_peaks(acf: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """The lags (of ``lags``, each at least 1 and below ``len(acf) - 1``) where ``acf`` peaks:
    above the lag before, at least the lag after — a peak, not the start of a decay."""
    return lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1])]


def _regressor(m: np.ndarray, period: int) -> np.ndarray:
    """``x[t] = m[t - P] - mean(m[t - P - H .. t - P + H])`` along one series (L,), H = P // 2.

    The mean skips NaN and rows before the series' start; x is NaN where ``m[t - P]`` is.
    """
    half = period // 2
    known = np.isfinite(m)
    sums = np.concatenate([[0.0], np.cumsum(np.where(known, m, 0.0))])
    counts = np.concatenate([[0], np.cumsum(known)])
    centres = np.arange(len(m)) - period  # the moment a period earlier
    lo, hi = np.clip(centres - half, 0, len(m)), np.clip(centres + half + 1, 0, len(m))
    with np.errstate(invalid="ignore", divide="ignore"):
        local = (sums[hi] - sums[lo]) / (counts[hi] - counts[lo])
    out = np.full(len(m), np.nan)
    ok = centres >= 0
    out[ok] = m[centres[ok]] - local[ok]
    return out


class SeasonalStream:
    """A :class:`SeasonalResidual` applied to a series fed chunk by chunk.

    The pattern memory of the last ``max(P + H)`` rows is carried from one chunk to the next,
    so the corrected residuals do not depend on where chunks end. A gap (NaN residual) leaves
    a gap in the memory, which the period's mean skips.
    """

    def __init__(self, model: SeasonalResidual) -> None:
        self._model = model
        self._features = np.flatnonzero(model.periods > 0)
        periods = model.periods[self._features]
        self._reach = int((periods + periods // 2).max()) if self._features.size else 0
        self._memory = np.full((self._reach, self._features.size), np.nan)  # the rows before the chunk

    def feed(self, residuals: np.ndarray) -> np.ndarray:
        """Corrected residuals of the chunk's rows.

        Parameters
        ----------
        residuals : ndarray of shape (n, D)
            The next rows' residuals; NaN where not scored.

        Returns
        -------
        ndarray of shape (n, D)
            The residuals less their seasonal part; unchanged for features with no period and
            where nothing is expected yet.
        """
        R = np.array(residuals, dtype=np.float64)
        if not self._features.size or not len(R):
            return R
        model, cols = self._model, self._features
        periods, coef = model.periods[cols], model.coef[cols]
        center, limit, bound = model.center[cols], model.limit[cols], model.bound[cols]
        offset = 0.0 if model.unseen_offset is None else model.unseen_offset[cols]
        gain = 1.0 if model.unseen_gain is None else model.unseen_gain[cols]
        half = periods // 2
        reach, n, width = self._reach, len(R), cols.size
        memory = np.concatenate([self._memory, np.full((n, width), np.nan)])
        known = np.isfinite(memory)
        sums = np.zeros((len(memory) + 1, width))
        counts = np.zeros((len(memory) + 1, width))
        sums[1 : reach + 1] = np.cumsum(np.where(known[:reach], memory[:reach], 0.0), axis=0)
        counts[1 : reach + 1] = np.cumsum(known[:reach], axis=0)
        observed = R[:, cols]
        corrected = observed.copy()
        index = np.arange(width)
        # x[t] needs the memory up to row t - P + H only, so rows in steps of the shortest
        # P - H are independent of one another.
        step = int((periods - half).min())
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            at = reach + np.arange(lo, hi)[:, None] - periods  # memory row a period earlier
            first, last = np.maximum(at - half, 0), at + half + 1
            with np.errstate(invalid="ignore", divide="ignore"):
                local = (sums[last, index] - sums[first, index]) / (counts[last, index] - counts[first, index])
            x = memory[at, index] - local
            expected = coef * x
            r = observed[lo:hi]
            seen = np.isfinite(x)
            deviation = r - expected - center
            room = limit + np.abs(expected)
            take = np.where(seen, r - deviation + np.clip(deviation, -room, room), np.clip(r, -bound, bound))
            rows = slice(reach + lo, reach + hi)
            memory[rows] = take  # NaN where r is: a gap in the memory
            finite = np.isfinite(take)
            sums[reach + lo + 1 : reach + hi + 1] = sums[reach + lo] + np.cumsum(np.where(finite, take, 0.0), axis=0)
            counts[reach + lo + 1 : reach + hi + 1] = counts[reach + lo] + np.cumsum(finite, axis=0)
            corrected[lo:hi] = np.where(seen, r - expected, offset + gain * r)
        R[:, cols] = corrected
        self._memory = memory[len(memory) - reach :]
        return R
