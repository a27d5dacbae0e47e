"""Progress on a terminal: a bar for ``score`` (rows, rows/s, time left), batches for ``train``.

The CLI decides whether to show progress (:func:`wanted`: only on a terminal, never with
``--json`` or under ``CI``) and hands these classes the terminal's stream; nothing here decides
to print by itself. Each redraws one line in place (carriage return, erase to the end of the
line), at most every :data:`MIN_INTERVAL` seconds, cut to the terminal's width so that it never
wraps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

MIN_INTERVAL = 0.1
_BAR_WIDTH = 24
_SAMPLE_BYTES = 1 << 20
_COMPRESSED = frozenset({".gz", ".bz2", ".xz", ".zip", ".zst"})
_PARQUET = frozenset({".parquet", ".pq"})


def wanted(stream: TextIO, *, as_json: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    """Whether progress should be drawn on ``stream``: a terminal, no ``--json``, no ``CI`` set."""
    environ = os.environ if environ is None else environ
    if as_json or environ.get("CI"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def expected_rows(path: str | os.PathLike) -> tuple[int | None, bool]:
    """How many data rows a file holds: exact for Parquet, estimated from the size for CSV.

    Returns
    -------
    rows : int or None
        None when it cannot be told cheaply (a compressed file, an unreadable one).
    exact : bool
        True for Parquet (its footer's row count); a CSV estimate is the file size divided by
        the mean length of the data lines in its first MiB.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in _PARQUET:
            import pyarrow.parquet as pq

            return int(pq.read_metadata(path).num_rows), True
        if suffix in _COMPRESSED:
            return None, False
        size = path.stat().st_size
        with open(path, "rb") as handle:
            sample = handle.read(_SAMPLE_BYTES)
    except (OSError, ValueError):
        return None, False
    header_end = sample.find(b"\n") + 1
    lines = sample.count(b"\n", header_end)
    if header_end == 0 or lines == 0:
        return None, False
    if len(sample) >= size:  # the whole file was read: count, do not estimate
        return lines + (0 if sample.endswith(b"\n") else 1), False
    per_line = (len(sample) - header_end) / lines
    return max(1, round((size - header_end) / per_line)), False


def _rate(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def bar(fraction: float, width: int = _BAR_WIDTH) -> str:
    """``[#########...............]`` for a fraction in [0, 1]."""
    filled = int(round(min(max(fraction, 0.0), 1.0) * width))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def rows_line(done: int, total: int | None, exact: bool, elapsed: float, *, final: bool = False) -> str:
    """The text of the scoring bar.

    Examples
    --------
    >>> rows_line(500, 1000, True, 2.0)
    '  scoring [############............]  50%  500/1,000 rows  250 rows/s  0:02 left'
    """
    rate = done / elapsed if elapsed > 0 else 0.0
    speed = f"{_rate(rate)} rows/s" if elapsed > 0 else "- rows/s"
    if total is None:
        tail = f"in {_clock(elapsed)}" if final else ""
        return f"  scoring  {done:,} rows  {speed}  {tail}".rstrip()
    total = max(total, done)  # an estimate that fell short
    if final:
        return f"  scored  {bar(1.0)} 100%  {done:,} rows  {speed}  in {_clock(elapsed)}"
    fraction = done / total if total else 1.0
    left = _clock((total - done) / rate) if rate > 0 else "-:--"
    shown_total = f"{total:,}" if exact else f"~{total:,}"
    return f"  scoring {bar(fraction)} {fraction:4.0%}  {done:,}/{shown_total} rows  {speed}  {left} left"


def _columns(stream: TextIO) -> int | None:
    """The width of the terminal ``stream`` writes to, or None when it is not one or does not say
    (a pseudo-terminal of size 0x0, as ``script`` makes)."""
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return None
    return columns if columns > 0 else None


class Line:
    """One line of a terminal, redrawn in place."""

    def __init__(
        self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic, min_interval: float = MIN_INTERVAL
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._min_interval = min_interval
        self._last = float("-inf")
        self._shown = False

    def show(self, text: str, *, force: bool = False) -> None:
        """Draw ``text`` over the line, unless the last draw was under ``min_interval`` ago."""
        now = self._clock()
        if not force and now - self._last < self._min_interval:
            return
        self._last = now
        columns = _columns(self._stream)
        if columns is not None:
            text = text[: columns - 1]
        self._stream.write("\r" + text + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the line (the next output starts at its beginning)."""
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False

    def keep(self, text: str) -> None:
        """Draw ``text`` one last time and move to the next line."""
        self.show(text, force=True)
        self._stream.write("\n")
        self._stream.flush()
        self._shown = False


class ScoreProgress:
    """The scoring bar: call with the rows scored so far (0 when the pass starts)."""

    def __init__(self, stream: TextIO, total: int | None, exact: bool, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._line = Line(stream, clock=clock)
        self._clock = clock
        self._total, self._exact = total, exact
        self._start: float | None = None
        self._done = 0
        self._elapsed = 0.0

    def __call__(self, rows: int) -> None:
        now = self._clock()
        if rows == 0 or self._start is None:  # a pass starts (again, for a file read whole and sorted)
            self._start = now
        self._done, self._elapsed = rows, now - self._start
        self._line.show(rows_line(rows, self._total, self._exact, self._elapsed), force=rows == 0)

    def close(self, *, completed: bool = True) -> None:
        """Leave the final bar on the screen (``completed``: the rate of the pass itself), or erase
        it (on an error)."""
        if self._start is None:
            return
        if completed:
            self._line.keep(rows_line(self._done, self._total, self._exact, self._elapsed, final=True))
        else:
            self._line.clear()


class TrainProgress:
    """The batches of the epoch under way, redrawn in place; each finished epoch keeps its own line."""

    def __init__(self, stream: TextIO, epochs: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._line = Line(stream, clock=clock)
        self._epochs = epochs

    def batch(self, epoch: int, batch: int, batches: int | None, loss: float) -> None:
        """After batch ``batch`` (from 1) of ``batches`` in epoch ``epoch`` (from 1)."""
        of = f"/{batches}" if batches else ""
        fraction = batch / batches if batches else 0.0
        self._line.show(
            f"  epoch {epoch:3d}/{self._epochs} {bar(fraction)} batch {batch}{of}  loss {loss:.4f}",
            force=batch == batches,
        )

    def clear(self) -> None:
        """Make room for the epoch's line."""
        self._line.clear()
