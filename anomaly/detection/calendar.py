"""Time of day and time of week as network inputs, where the training series has a daily cycle.

A next-step network sees the last ``window_size`` rows; a daily shape that changes sharply
(traffic at rush hour, a load that steps up each morning) is hard to foresee from them when a
day spans many windows. :class:`Calendar` gives each row the sine and cosine of its place in the
day (and in the week), so the network can learn what each hour usually brings.

Which cycles a series gets is decided once, on its training series (:meth:`Calendar.fit`): the
day where the rows carry times, span at least two days at a step of at most 6 hours and some
feature has an autocorrelation of at least :data:`MIN_AUTOCORRELATION` at the lag of one day;
the week beside it where they span at least two weeks at a step of at most a day. A series
without a daily cycle gets neither: on series whose training part had none the inputs only cost
(``benchmarks/DETECTION.md``, tenth pass). Times are nanoseconds since the Unix epoch: UTC for
times that carried a zone (the readers convert them), wall-clock time for naive ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NANOSECONDS = 1_000_000_000
# name: (period, least span in periods, coarsest median step), in seconds
CYCLES: dict[str, tuple[int, int, int]] = {
    "day": (86_400, 2, 6 * 3_600),
    "week": (7 * 86_400, 2, 86_400),
}
MIN_AUTOCORRELATION = 0.5


def lag_autocorrelation(values: np.ndarray, lag: int) -> float:
    """The largest autocorrelation at ``lag`` rows over the columns of ``values`` (L, D).

    Missing values count as the column's mean. NaN when no column varies or ``lag`` is not
    below half the rows.
    """
    values = np.asarray(values, dtype=np.float64)
    if lag < 1 or lag >= len(values) // 2:
        return float("nan")
    best = float("nan")
    for column in values.T:
        centred = np.nan_to_num(column - np.nanmean(column)) if np.isfinite(column).any() else np.zeros_like(column)
        variance = float(np.mean(centred**2))
        if variance > 0:
            value = float(np.sum(centred[lag:] * centred[:-lag]) / (len(centred) - lag) / variance)
            best = value if np.isnan(best) else max(best, value)
    return best


@dataclass(frozen=True)
class Calendar:
    """The cycles a detector's network gets as inputs (none: no inputs).

    Attributes
    ----------
    cycles : tuple of str
        Names from :data:`CYCLES`, in that order.
    """

    cycles: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Input columns added: a sine and a cosine per cycle."""
        return 2 * len(self.cycles)

    @classmethod
    def fit(cls, times: np.ndarray | None, values: np.ndarray) -> Calendar:
        """The cycles that the training series shows.

        Parameters
        ----------
        times : ndarray of shape (L,), int64, or None
            Each row's time in nanoseconds since the epoch, increasing; None when the rows carry
            no times.
        values : ndarray of shape (L, D)
            The training series' raw values.
        """
        if times is None or len(times) < 4:
            return cls()
        times = np.asarray(times, dtype=np.int64)
        span = (times[-1] - times[0]) / NANOSECONDS
        step = float(np.median(np.diff(times))) / NANOSECONDS
        if step <= 0:
            return cls()
        day = CYCLES["day"][0]
        # The daily cycle decides; the week comes with it where the span allows (as measured).
        if not lag_autocorrelation(values, int(round(day / step))) >= MIN_AUTOCORRELATION:
            return cls()
        fits = [name for name, (period, least, coarsest) in CYCLES.items() if step <= coarsest and span >= least * period]
        return cls(tuple(fits) if "day" in fits else ())

    def columns(self, times: np.ndarray) -> np.ndarray:
        """The inputs of rows at ``times``.

        Parameters
        ----------
        times : ndarray of shape (n,), int64
            Nanoseconds since the epoch.

        Returns
        -------
        ndarray of shape (n, width)
            Per cycle, the sine and cosine of the rows' place in it.
        """
        times = np.asarray(times, dtype=np.int64)
        out = np.empty((len(times), self.width))
        for k, name in enumerate(self.cycles):
            period = CYCLES[name][0] * NANOSECONDS
            phase = 2 * np.pi * (np.mod(times, period) / period)
            out[:, 2 * k] = np.sin(phase)
            out[:, 2 * k + 1] = np.cos(phase)
        return out
