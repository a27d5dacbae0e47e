"""Group flagged timesteps into events, whole or streaming. Pure numpy.

An event is a run of flagged steps, where runs separated by at most ``gap`` unflagged steps are
merged into one (a flicker of the score below the threshold does not split an anomaly in two).
Events shorter than ``min_length`` steps, counted from their first to their last flagged step,
are dropped.

Each event carries where it is, its peak score, and each feature's share of the squared
normalised residual summed over its flagged steps: which sensors the anomaly is about.

:class:`EventGrouper` takes the series in chunks and emits each event as soon as it is closed
(more than ``gap`` unflagged steps followed it). It keeps O(D) numbers for the one event that
may be open, whatever its length, and gives the same events as grouping the whole series at
once, for any chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Event:
    """One anomalous event.

    Attributes
    ----------
    start, end : int
        Absolute positions of the first and last flagged step (inclusive).
    peak_score : float
        Largest score over the event's flagged steps (NaN if all of them are NaN).
    peak_position : int
        Absolute position of the first step reaching ``peak_score``.
    n_flagged : int
        Flagged steps in the event (``length`` minus the unflagged steps bridged by ``gap``).
    feature_shares : ndarray of shape (D,)
        Each feature's share of ``sum(z**2)`` over the flagged steps: non-negative, summing to
        1 (all zero if there is no error at all; shape (0,) when no z was given).
    """

    start: int
    end: int
    peak_score: float
    peak_position: int
    n_flagged: int
    feature_shares: np.ndarray

    @property
    def length(self) -> int:
        """Steps from first to last flagged step, inclusive."""
        return self.end - self.start + 1

    def top_features(self, k: int = 3) -> list[tuple[int, float]]:
        """The ``k`` features with the largest shares, as (feature index, share), largest first."""
        order = np.argsort(-self.feature_shares, kind="stable")[:k]
        return [(int(i), float(self.feature_shares[i])) for i in order]

    def to_dict(self, k: int = 3) -> dict:
        """JSON-ready summary, with the ``k`` top features."""
        return {
            "start": self.start,
            "end": self.end,
            "length": self.length,
            "peak_score": self.peak_score,
            "peak_position": self.peak_position,
            "n_flagged": self.n_flagged,
            "top_features": [{"feature": i, "share": s} for i, s in self.top_features(k)],
        }


class _Open:
    """Running sums of the event still open: O(D) memory, whatever its length."""

    __slots__ = ("start", "last", "peak_score", "peak_position", "n_flagged", "energy")

    def __init__(
        self,
        start: int,
        last: int,
        peak_score: float,
        peak_position: int,
        n_flagged: int,
        energy: np.ndarray,
    ) -> None:
        self.start, self.last = start, last
        self.peak_score, self.peak_position = peak_score, peak_position
        self.n_flagged, self.energy = n_flagged, energy

    def absorb(self, other: _Open) -> None:
        """Extend with a later run (``other`` starts after ``self.last``)."""
        self.last = other.last
        # Strictly greater: the first step reaching the peak keeps it.
        if other.peak_score > self.peak_score or (np.isnan(self.peak_score) and not np.isnan(other.peak_score)):
            self.peak_score, self.peak_position = other.peak_score, other.peak_position
        self.n_flagged += other.n_flagged
        self.energy = self.energy + other.energy

    def close(self) -> Event:
        total = self.energy.sum()
        shares = self.energy / total if total > 0 else np.zeros_like(self.energy)
        return Event(
            int(self.start), int(self.last), float(self.peak_score), int(self.peak_position), int(self.n_flagged), shares
        )


class EventGrouper:
    """Streaming event grouping: feed chunks in time order, collect events as they close.

    Parameters
    ----------
    gap : int >= 0
        Runs of flags separated by at most ``gap`` unflagged steps form one event.
    min_length : int >= 1
        Events with ``end - start + 1 < min_length`` are dropped.

    Examples
    --------
    >>> grouper = EventGrouper(gap=1)
    >>> [e.start for e in grouper.feed(np.array([1, 0, 1, 0, 0], bool), np.ones(5))]
    [0]
    >>> grouper.finish()
    []
    """

    def __init__(self, gap: int = 0, min_length: int = 1) -> None:
        if not (isinstance(gap, (int, np.integer)) and gap >= 0):
            raise ValueError(f"gap must be an int >= 0; got {gap!r}")
        if not (isinstance(min_length, (int, np.integer)) and min_length >= 1):
            raise ValueError(f"min_length must be an int >= 1; got {min_length!r}")
        self.gap = int(gap)
        self.min_length = int(min_length)
        self.position_ = 0  # absolute position of the next row expected
        self._open: _Open | None = None
        self._n_features: int | None = None
        self._last_unscored = -1  # absolute position of the latest unscored row: no event spans it

    def feed(
        self,
        flags: np.ndarray,
        scores: np.ndarray,
        z: np.ndarray | None = None,
        start: int | None = None,
    ) -> list[Event]:
        """Take the next chunk; return the events it closed.

        Parameters
        ----------
        flags : ndarray of shape (n,), bool
        scores : ndarray of shape (n,)
        z : ndarray of shape (n, D), optional
            Normalised residuals, for feature shares. Give it on every chunk or on none.
        start : int, optional
            Absolute position of the chunk's first row. Chunks must be contiguous: it must equal
            the previous chunk's end + 1 (0 for the first chunk); None means exactly that.

        Returns
        -------
        events : list of Event
            Events closed by this chunk (more than ``gap`` unflagged steps now follow them),
            in time order.
        """
        flags = np.asarray(flags, dtype=bool).ravel()
        scores = np.asarray(scores, dtype=np.float64).ravel()
        n = len(flags)
        if len(scores) != n:
            raise ValueError(f"flags and scores must have the same length; got {n} and {len(scores)}")
        if start is None:
            start = self.position_
        elif start != self.position_:
            raise ValueError(f"chunks must be contiguous: expected start={self.position_}, got start={start}")
        if z is None:
            n_features = 0
        else:
            z = np.asarray(z, dtype=np.float64)
            if z.ndim != 2 or len(z) != n:
                raise ValueError(f"z must have shape (n, D) with n = {n}; got {z.shape}")
            n_features = z.shape[1]
        if self._n_features is None:
            self._n_features = n_features
        elif n_features != self._n_features:
            raise ValueError(f"z has {n_features} features but earlier chunks had {self._n_features}")
        self.position_ = start + n

        closed: list[Event] = []
        rows = np.flatnonzero(flags)
        unscored = np.flatnonzero(np.isnan(scores))
        if len(rows):
            runs = self._runs_in_chunk(rows, unscored, start, scores, z)
            first = runs.pop(0)
            barrier = _barrier_before(first.start - start, unscored, start, self._last_unscored)
            if self._open is not None and first.start - self._open.last - 1 <= self.gap and barrier < self._open.last:
                self._open.absorb(first)
            else:
                self._emit(closed)
                self._open = first
            for run in runs:  # each later run is more than gap steps, or an unscored row, after the one before
                self._emit(closed)
                self._open = run
        if len(unscored):
            self._last_unscored = start + int(unscored[-1])
        # The open event is closed once more than gap unflagged steps, or an unscored row, have followed it.
        if self._open is not None and (
            (self.position_ - 1) - self._open.last > self.gap or self._last_unscored > self._open.last
        ):
            self._emit(closed)
        return closed

    def finish(self) -> list[Event]:
        """Close the event still open at the end of the series (if any); return it as a list."""
        closed: list[Event] = []
        self._emit(closed)
        return closed

    def _emit(self, closed: list[Event]) -> None:
        if self._open is not None:
            event = self._open.close()
            if event.length >= self.min_length:
                closed.append(event)
        self._open = None

    def _runs_in_chunk(
        self, rows: np.ndarray, unscored: np.ndarray, start: int, scores: np.ndarray, z: np.ndarray | None
    ) -> list[_Open]:
        """Group one chunk's flagged rows by ``gap`` (never across an ``unscored`` row), with their
        sums. Returns runs in time order."""
        breaks = _run_breaks(rows, unscored, self.gap)
        bounds = np.concatenate([[0], breaks, [len(rows)]])
        flagged_scores = scores[rows]
        # NaN never wins the peak (a flagged step should not be unscored, but be safe).
        peak_input = np.where(np.isnan(flagged_scores), -np.inf, flagged_scores)
        if z is not None:
            energy = np.add.reduceat(np.nan_to_num(np.square(z[rows])), bounds[:-1], axis=0)
        runs = []
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            j = lo + int(np.argmax(peak_input[lo:hi]))
            peak = float(flagged_scores[j])
            runs.append(
                _Open(
                    start + int(rows[lo]),
                    start + int(rows[hi - 1]),
                    peak,
                    start + int(rows[j]),
                    int(hi - lo),
                    energy[i] if z is not None else np.zeros(0),
                )
            )
        return runs


def group_events(
    flags: np.ndarray,
    scores: np.ndarray,
    z: np.ndarray | None = None,
    gap: int = 0,
    min_length: int = 1,
    start: int = 0,
) -> list[Event]:
    """Group a whole series' flags into events.

    Parameters
    ----------
    flags : ndarray of shape (L,), bool
    scores : ndarray of shape (L,)
    z : ndarray of shape (L, D), optional
        Normalised residuals, for each event's feature shares.
    gap : int >= 0
        Runs separated by at most ``gap`` unflagged steps are merged.
    min_length : int >= 1
        Events spanning fewer steps (first to last flagged, inclusive) are dropped.
    start : int
        Absolute position of the first row.

    Returns
    -------
    events : list of Event
        In time order.
    """
    grouper = EventGrouper(gap=gap, min_length=min_length)
    grouper.position_ = start
    return grouper.feed(flags, scores, z) + grouper.finish()


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive (starts, ends), each of shape (R,), of the runs of True in ``mask`` (L,)."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool).ravel(), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges[::2], edges[1::2] - 1


def event_ranges(flags: np.ndarray, gap: int = 0, min_length: int = 1) -> list[tuple[int, int]]:
    """Inclusive (start, end) of the events of a flag series, without scores or attributions.

    Parameters
    ----------
    flags : ndarray of shape (L,), bool
    gap, min_length : int
        As for :func:`group_events`.

    Returns
    -------
    list of (start, end)
    """
    flags = np.asarray(flags, dtype=bool).ravel()
    return [(e.start, e.end) for e in group_events(flags, np.zeros(len(flags)), gap=gap, min_length=min_length)]


class EventMask:
    """Streaming per-step flags that follow the events: True exactly on the steps of an event.

    A step is flagged when it lies between the first and last flagged step of an event as
    :class:`EventGrouper` forms them (gaps of up to ``gap`` unflagged steps inside an event are
    flagged too; events shorter than ``min_length`` are not flagged at all). Feed the raw
    threshold crossings chunk by chunk; each call returns the final flags of the steps that are
    decided so far, oldest first, and holds back the rest:

    * after a flagged step, up to ``gap`` following unflagged steps wait: they join the event if
      another flag comes within the gap, and are unflagged once ``gap + 1`` quiet steps passed;
    * the steps of an event still shorter than ``min_length`` wait until it reaches that length
      (then they are flagged) or closes (then they are not).

    So fewer than ``gap + min_length`` steps are held back at any time, and with ``gap=0,
    min_length=1`` none are. Memory is O(1) besides
    the returned arrays. The concatenated output equals :func:`event_flags` of the whole
    series, for any chunking.

    Parameters
    ----------
    gap : int >= 0
    min_length : int >= 1
        As for :class:`EventGrouper`.

    Examples
    --------
    >>> mask = EventMask(gap=2)
    >>> mask.feed(np.array([0, 1, 0, 0], bool))   # the two steps after the flag wait
    array([False,  True])
    >>> mask.feed(np.array([1, 0, 0, 0], bool))   # a flag within the gap: they join the event
    array([ True,  True,  True, False, False, False])
    """

    def __init__(self, gap: int = 0, min_length: int = 1) -> None:
        EventGrouper(gap, min_length)  # the same checks of the arguments
        self.gap = int(gap)
        self.min_length = int(min_length)
        self.position_ = 0  # absolute position of the next step expected
        self.decided_ = 0  # absolute position of the first step not yet returned
        self._open: tuple[int, int] | None = None  # (first, last) flagged step of the open event
        self._last_unscored = -1  # absolute position of the latest unscored step: no event spans it

    def feed(self, flags: np.ndarray, unscored: np.ndarray | None = None) -> np.ndarray:
        """Take the next chunk of raw flags; return the final flags of the steps now decided.

        Parameters
        ----------
        flags : ndarray of shape (n,), bool
        unscored : ndarray of shape (n,), bool, optional
            The steps without a score (a gap, a warm-up): an event ends before one, however
            short the quiet stretch, so that no unscored step is flagged.

        Returns
        -------
        ndarray of shape (k,), bool
            Final flags of steps ``decided_ .. decided_ + k - 1`` (the values of ``decided_``
            before the call); ``k`` may be smaller or larger than ``n``.
        """
        flags = np.asarray(flags, dtype=bool).ravel()
        start = self.position_
        self.position_ += len(flags)
        out = np.zeros(self.position_ - self.decided_, dtype=bool)
        local = np.flatnonzero(flags)
        holes = np.zeros(0, dtype=np.intp) if unscored is None else np.flatnonzero(np.asarray(unscored, dtype=bool).ravel())
        rows = start + local
        if len(rows):
            breaks = _run_breaks(local, holes, self.gap)
            firsts, lasts = rows[np.concatenate([[0], breaks])], rows[np.concatenate([breaks - 1, [len(rows) - 1]])]
            for i, (first, last) in enumerate(zip(firsts.tolist(), lasts.tolist())):
                barrier = _barrier_before(first - start, holes, start, self._last_unscored) if i == 0 else first
                if self._open is not None and first - self._open[1] - 1 <= self.gap and barrier < self._open[1]:
                    self._open = (self._open[0], last)
                else:
                    self._close(out)
                    self._open = (first, last)
        if len(holes):
            self._last_unscored = start + int(holes[-1])
        if self._open is not None and ((self.position_ - 1) - self._open[1] > self.gap or self._last_unscored > self._open[1]):
            self._close(out)
        if self._open is None:
            frontier = self.position_
        else:
            first, last = self._open
            if last - first + 1 >= self.min_length:
                self._mark(out, first, last)  # long enough already: flagged whatever comes next
                frontier = last + 1
            else:
                frontier = first
        # Never take back what an earlier call returned: a confirmed event's steps were final.
        frontier = max(frontier, self.decided_)
        decided = out[: frontier - self.decided_]
        self.decided_ = frontier
        return decided

    def finish(self) -> np.ndarray:
        """The final flags of every step still held (the series has ended)."""
        out = np.zeros(self.position_ - self.decided_, dtype=bool)
        self._close(out)
        self.decided_ = self.position_
        return out

    def _close(self, out: np.ndarray) -> None:
        if self._open is not None:
            first, last = self._open
            if last - first + 1 >= self.min_length:
                self._mark(out, first, last)
        self._open = None

    def _mark(self, out: np.ndarray, first: int, last: int) -> None:
        """Flag absolute steps first..last in ``out`` (which starts at ``decided_``)."""
        lo, hi = max(first - self.decided_, 0), last - self.decided_ + 1
        if hi > lo:
            out[lo:hi] = True


def _run_breaks(rows: np.ndarray, unscored: np.ndarray, gap: int) -> np.ndarray:
    """Where runs of the sorted flagged positions ``rows`` (K,) break: more than ``gap`` steps
    apart, or an ``unscored`` position (sorted) between them. Indices into ``rows``, shape (B,)."""
    apart = np.diff(rows) - 1 > gap
    if len(unscored):
        holes_before = np.searchsorted(unscored, rows)
        apart |= np.diff(holes_before) > 0
    return np.flatnonzero(apart) + 1


def _barrier_before(row: int, unscored: np.ndarray, start: int, earlier: int) -> int:
    """The absolute position of the latest unscored step before chunk position ``row``
    (``unscored`` sorted chunk positions; ``earlier``: the latest of earlier chunks, -1 for none)."""
    k = int(np.searchsorted(unscored, row))
    return start + int(unscored[k - 1]) if k else earlier


def event_flags(flags: np.ndarray, gap: int = 0, min_length: int = 1, unscored: np.ndarray | None = None) -> np.ndarray:
    """Whole-series :class:`EventMask`: True on every step from an event's first to last flag.

    Parameters
    ----------
    flags : ndarray of shape (L,), bool
        Raw threshold crossings.
    gap, min_length : int
        As for :func:`group_events`.
    unscored : ndarray of shape (L,), bool, optional
        Steps without a score, which no event spans (:meth:`EventMask.feed`).

    Returns
    -------
    ndarray of shape (L,), bool

    Examples
    --------
    >>> event_flags(np.array([1, 0, 1, 0, 0, 1], bool), gap=1).astype(int)
    array([1, 1, 1, 0, 0, 1])
    >>> event_flags(np.array([1, 0, 1, 0, 0, 1], bool), gap=1, min_length=2).astype(int)
    array([1, 1, 1, 0, 0, 0])
    """
    mask = EventMask(gap, min_length)
    return np.concatenate([mask.feed(flags, unscored), mask.finish()])
