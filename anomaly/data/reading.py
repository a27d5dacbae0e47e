"""Reading a multivariate time series: chunk by chunk in bounded memory, or whole.

One reader does both. :func:`iter_series` reads a CSV/TSV/semicolon or Parquet file, standard
input (``"-"``) or any open stream and hands out the series as :class:`SeriesChunk` pieces of
at most ``chunk_rows + max_gap`` rows: parsed and validated (:mod:`anomaly.data.columns`), with
short runs of missing values interpolated (also across chunk boundaries) and longer ones
reported as gaps. It holds one chunk, the few trailing rows whose missing values are not
decided yet (at most ``max_gap``), and once a sample of :data:`ROLE_SAMPLE_ROWS` rows at the
start, from which the column roles are chosen.

:func:`read_series` is that stream collected into one :class:`Series`, plus what needs the
whole file: it reads the input as one piece (the column roles then come from every row), sorts
rows that are out of time order, and can put them on a regular grid (``resample``) before the
same gap rule runs. ``iter_series(..., sort=True)`` (or with ``resample``) does the same and
then hands the result out in chunks. The concatenated chunks of a time-sorted file equal what
``read_series`` returns: the same times (timezone-aware ones in UTC), labels, float64 values,
interpolation and gaps.

What a stream cannot do:

- sort: rows must arrive in strictly increasing time. The first row that does not raises
  :class:`UnsortedError` (a DataError naming both rows and values and suggesting to sort the
  file), on which a caller can read the file again with ``sort=True``; a repeated time is the
  same DataError as in ``read_series``;
- see the whole file before choosing: the time column (when not given) and the feature columns
  (when ``columns`` is not given) are chosen from the first ``ROLE_SAMPLE_ROWS`` rows, by the
  same rules. A column that is empty or numeric there but text further on is then an error;
- check everything before reporting: the first problem met in reading order is reported, a
  count of text cells covers that chunk only, and a feature empty in every row is reported at
  the end; pandas infers types chunk by chunk, so a numeric time column keeps the first
  chunk's int64 where the values allow, and a later chunk with nanoseconds keeps its unit.

Every problem with the input or the options is a one-line :class:`~anomaly.errors.DataError`
that names the input, the column or option, what was expected and what was found; no raw
pandas, numpy, pyarrow or OS exception leaves this package. Row numbers in messages are
1-based data rows in file order.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomaly.data.columns import (
    USER_COLUMNS_ROLE,
    DateOrderError,
    TimeColumn,
    UnsortedError,
    all_empty_error,
    check_chunk_rows,
    check_columns_option,
    check_max_gap,
    choose_roles,
    feature_values,
    parse_labels,
)
from anomaly.data.formats import Source, no_rows_error, open_reader, show_value, source_name
from anomaly.errors import DataError

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_LISTED_GAPS",
    "ROLE_SAMPLE_ROWS",
    "Series",
    "SeriesChunk",
    "SeriesStream",
    "DateOrderError",
    "UnsortedError",
    "iter_series",
    "read_series",
    "sampling_note",
]

#: Rows at the start of the input from which the time and feature columns are chosen (the same
#: for every ``chunk_rows``, so the choice never depends on the chunk size).
ROLE_SAMPLE_ROWS = 4096
#: Gaps listed in :attr:`SeriesStream.gaps`; more are counted in ``gap_count`` only.
MAX_LISTED_GAPS = 1000


@dataclass(frozen=True)
class Series:
    """A validated multivariate series.

    Attributes
    ----------
    frame : DataFrame of shape (L, D)
        float64 feature columns, in file order (or in ``columns`` order when given). The index is
        a DatetimeIndex named after the time column (in UTC when the times have a zone), a
        numeric index named after a numeric time column, or a RangeIndex named ``"step"`` when
        there is no time column. Sorted ascending.
    labels : Series of shape (L,), bool, or None
        Ground-truth anomaly labels on the same index, when ``label_col`` was given.
    source : Path
        The file the series was read from.
    time_col : str or None
        The time column used (given or detected), or None.
    filled : int
        How many missing feature values were interpolated.
    gaps : tuple of (first, last)
        Runs of rows (inclusive positions in ``frame``) where some feature is missing for longer
        than ``max_gap`` steps. They stay NaN: not filled, not scored, reported.
    unused_columns : tuple of str
        Columns of the file that are neither features nor the time or label column.
    reordered : int
        Rows that were out of time order and moved by sorting.
    notes : tuple of str
        What the reader chose that the user should know (how it read dates such as
        ``02/01/2026``), without the input's name.
    """

    frame: pd.DataFrame
    labels: pd.Series | None
    source: Path
    time_col: str | None
    filled: int
    gaps: tuple[tuple[int, int], ...] = ()
    unused_columns: tuple[str, ...] = ()
    reordered: int = 0
    notes: tuple[str, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        """Names of the D feature columns, in order."""
        return [str(name) for name in self.frame.columns]

    @property
    def values(self) -> np.ndarray:
        """The features as an ndarray of shape (L, D), float64.

        A view of ``frame`` without a copy; pandas' copy-on-write makes it read-only, so callers
        that want to modify it must copy it first.
        """
        return self.frame.to_numpy(dtype=np.float64, copy=False)

    @property
    def gap_count(self) -> int:
        """How many gaps there are (as :attr:`SeriesStream.gap_count`)."""
        return len(self.gaps)

    @property
    def gap_rows(self) -> int:
        """How many rows the gaps hold."""
        return sum(last - first + 1 for first, last in self.gaps)

    @property
    def gap_labels(self) -> tuple[tuple[Any, Any], ...]:
        """The index labels (times, or steps) of each gap's first and last rows."""
        index = self.frame.index
        return tuple((index[first], index[last]) for first, last in self.gaps)


@dataclass(frozen=True)
class SeriesChunk(Series):
    """One chunk of a streamed series: a :class:`Series` of n rows plus its place.

    Attributes
    ----------
    frame : DataFrame of shape (n, D)
        float64 features, indexed like ``read_series``' frame (time, or a RangeIndex named
        ``"step"`` that continues from chunk to chunk).
    labels : Series of shape (n,), bool, or None
    filled : int
        Missing values interpolated in this chunk.
    gaps : tuple of (first, last)
        Runs of rows with a missing feature, as inclusive positions in this chunk's ``frame``
        (a gap that goes on in the next chunk is cut at the chunk's end).
    start : int
        0-based position of the chunk's first row in the whole series.
    """

    start: int = 0

    @property
    def stop(self) -> int:
        """Position after the chunk's last row in the whole series."""
        return self.start + len(self.frame)


def read_series(
    path: str | os.PathLike | pd.DataFrame,
    *,
    time_col: str | None = None,
    label_col: str | None = None,
    columns: Sequence[str] | None = None,
    exclude_columns: Sequence[str] | None = None,
    max_gap: int = 3,
    resample: str | None = None,
    columns_role: str = USER_COLUMNS_ROLE,
    shown: str | None = None,
) -> Series:
    """Read and validate a whole multivariate time series: :func:`iter_series` collected.

    Parameters
    ----------
    path : str, PathLike or DataFrame
        A CSV/TSV/semicolon file or a Parquet file (see :func:`~anomaly.data.formats.read_table`),
        or a frame of the raw rows (named ``<frame>`` unless ``shown``).
    time_col : str, optional
        The time column. Datetime-like text becomes a DatetimeIndex (UTC when the times have a
        zone), numbers a numeric index. Default: the first column named time, timestamp,
        datetime, date, ts, time_stamp or step (any case), else the first column when it is
        text that parses as datetimes, else none. ``"none"`` (unless a column has that name): no
        time column, the rows in file order (steps 0, 1, …).
    label_col : str, optional
        A column of 0/1 or true/false anomaly labels, returned as ``Series.labels``.
    columns : sequence of str, optional
        The feature columns, in this order. Default: every numeric column other than the time
        and label columns, in file order (boolean columns only when named here).
    exclude_columns : sequence of str, optional
        Columns left out of the default features (not with ``columns``), and never detected as
        the time column: an ID, a counter, a clock whose values repeat.
    max_gap : int, default 3
        Longest run of consecutive missing values in a feature that is interpolated linearly
        (by position); longer runs stay missing and are reported in ``Series.gaps``.
    resample : str, optional
        A pandas frequency (``"5min"``, ``"1h"``): put the rows on that regular grid, averaging
        the rows of each bin (labels: any). Empty bins become missing values, filled or reported
        as gaps like any other. Needs a time column of timestamps.
    columns_role : str, default "columns entry"
        What ``columns`` are to the caller, for the message when one is missing (scoring says
        "the model's feature").
    shown : str, optional
        The input's name in messages and notes (default: the path as given); a fleet names the
        series here (``fleet.csv, series 'pump-7'``).

    Returns
    -------
    Series
        ``frame`` of shape (L, D), float64, sorted by time; ``labels`` of shape (L,) or None.

    Raises
    ------
    DataError
        For every problem with the file or the options, with a one-line message.
    """
    with iter_series(
        path,
        time_col=time_col,
        label_col=label_col,
        columns=columns,
        exclude_columns=exclude_columns,
        max_gap=max_gap,
        chunk_rows=sys.maxsize,
        columns_role=columns_role,
        sort=True,
        resample=resample,
        shown=shown,
    ) as stream:
        (chunk,) = list(stream)  # read as one piece, the series comes out as one chunk
    return Series(
        frame=chunk.frame,
        labels=chunk.labels,
        source=Path(shown or source_name(path)) if isinstance(path, pd.DataFrame) else Path(path),
        time_col=chunk.time_col,
        filled=chunk.filled,
        gaps=chunk.gaps,
        unused_columns=chunk.unused_columns,
        reordered=stream.reordered,
        notes=tuple(stream.notes),
    )


def iter_series(
    source: Source,
    *,
    time_col: str | None = None,
    label_col: str | None = None,
    columns: Sequence[str] | None = None,
    exclude_columns: Sequence[str] | None = None,
    max_gap: int = 3,
    chunk_rows: int = 65536,
    columns_role: str = USER_COLUMNS_ROLE,
    sample_rows: int | None = None,
    sort: bool = False,
    resample: str | None = None,
    shown: str | None = None,
) -> SeriesStream:
    """Read a multivariate series chunk by chunk.

    The input is opened and its first rows are read at once, so that option and column errors
    come from this call and the column roles are known on the returned stream.

    Parameters
    ----------
    source : str, PathLike, binary or text stream, or DataFrame
        A CSV/TSV/semicolon or Parquet file (see :func:`~anomaly.data.formats.read_table`), or
        ``"-"`` for standard input, or an open stream; streams are read as delimited UTF-8 text
        (Parquet needs random access: pass its path). Open streams are not closed. A DataFrame
        of raw rows is read as a file of those rows would be.
    time_col, label_col, columns, exclude_columns, max_gap, resample, columns_role, shown
        As for :func:`read_series`.
    chunk_rows : int, default 65536
        Rows read at a time. A chunk holds at most ``chunk_rows + max_gap`` rows: up to
        ``max_gap`` rows whose missing values wait for the next value are carried over.
    sample_rows : int, optional
        Rows read first to choose the column roles (default :data:`ROLE_SAMPLE_ROWS`). A live
        stream wants few: nothing is handed out before the sample has arrived.
    sort : bool, default False
        Read the whole input at once (the column roles then come from every row), sort its rows
        by time, and then hand it out in chunks: for a file whose rows are not in time order.
        Implied by ``resample``.

    Returns
    -------
    SeriesStream
        An iterator of :class:`SeriesChunk`; use it as a context manager to close the file
        when stopping early.

    Raises
    ------
    DataError
        For every problem with the input or the options, with a one-line message; problems
        further into the input are raised while iterating. Without ``sort``,
        :class:`UnsortedError` when rows are out of time order.
    """
    return SeriesStream(
        source,
        time_col=time_col,
        label_col=label_col,
        columns=columns,
        exclude_columns=exclude_columns,
        max_gap=max_gap,
        chunk_rows=chunk_rows,
        columns_role=columns_role,
        sample_rows=sample_rows,
        sort=sort,
        resample=resample,
        shown=shown,
    )


class SeriesStream(Iterator[SeriesChunk]):
    """Chunks of a validated series, with what is known about the series as a whole.

    Create it with :func:`iter_series`.

    Attributes
    ----------
    source : str
        The input's name as shown in messages (the path as given, or ``"<stdin>"``).
    feature_names : list of str
        The D feature columns, in order.
    time_col, label_col : str or None
    unused_columns : tuple of str
        Columns that are neither features nor the time or label column.
    rows : int
        Rows handed out so far; the series' length L once exhausted.
    filled : int
        Missing values interpolated so far.
    gaps : tuple of (first, last)
        The first :data:`MAX_LISTED_GAPS` runs of rows with a missing feature, as inclusive
        positions in the whole series (as ``Series.gaps``), merged across chunks.
    gap_count, gap_rows : int
        All gaps and all rows in them, listed or not.
    gap_labels : tuple of (first, last)
        The index labels (times, or steps) of the listed gaps' first and last rows.
    exhausted : bool
        Whether every chunk has been handed out.
    reordered : int
        Rows moved by sorting (read whole, ``sort``).
    notes : list of str
        What the reader chose that the user should know (as ``Series.notes``).
    """

    def __init__(
        self,
        source: Source,
        *,
        time_col: str | None,
        label_col: str | None,
        columns: Sequence[str] | None,
        exclude_columns: Sequence[str] | None,
        max_gap: int,
        chunk_rows: int,
        columns_role: str,
        sample_rows: int | None = None,
        sort: bool = False,
        resample: str | None = None,
        shown: str | None = None,
    ) -> None:
        self.source = shown or source_name(source)
        shown = self.source
        self._max_gap = check_max_gap(max_gap, shown)
        wanted = check_columns_option(columns, shown)
        excluded = check_columns_option(exclude_columns, shown, option="exclude_columns")
        self._chunk_rows = check_chunk_rows(chunk_rows, shown)
        whole = sort or resample is not None
        self.rows = 0
        self.filled = 0
        self.gap_count = 0
        self.gap_rows = 0
        self.exhausted = False
        self.reordered = 0
        self._gaps: list[list[int]] = []
        self._gap_labels: list[list[Any]] = []
        self._gap_open = False
        self._done = False
        self._reader = open_reader(source, shown, self._chunk_rows)
        try:
            # Read whole, the input is one piece: its column roles come from every row, and a
            # feature's text cells and empty columns are judged over the whole column.
            sample = self._reader.read(None if whole else (sample_rows or ROLE_SAMPLE_ROWS))
            if sample is None or len(sample) == 0:
                raise no_rows_error(shown, self._reader.columns)
            roles = choose_roles(
                sample,
                shown,
                time_col=time_col,
                label_col=label_col,
                columns=wanted,
                columns_role=columns_role,
                exclude_columns=excluded,
            )
            self._roles = roles
            self.time_col, self.label_col = roles.time_col, roles.label_col
            self.feature_names, self.unused_columns = list(roles.features), roles.unused
            self._time = None
            if roles.time_col is not None:
                self._time = TimeColumn(shown, roles.time_col, ordered=not whole, detected=roles.time_detected)
            self._filler = _GapFiller(len(self.feature_names), self._max_gap)
            block = self._convert(sample, 0, partial=not whole)
            self._pending: list[_Block] = [self._arrange(block, resample) if whole else block]
            self._parsed = len(sample)  # rows parsed from the input so far
            self._carry: _Block | None = None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ public

    @property
    def notes(self) -> list[str]:
        """What the reader chose that the user should know, so far (see ``Series.notes``)."""
        text = [
            f"column {name!r} holds text (first: {show_value(cell)}), so it is not a feature; numbers with "
            f"thousands separators or units read as text"
            for name, cell in self._roles.text
        ]
        return text + (list(self._time.notes) if self._time is not None else [])

    @property
    def gaps(self) -> tuple[tuple[int, int], ...]:
        """The first gaps (so far) as inclusive (first, last) positions in the whole series."""
        return tuple((first, last) for first, last in self._gaps)

    @property
    def gap_labels(self) -> tuple[tuple[Any, Any], ...]:
        """The index labels of the rows in :attr:`gaps`: (first, last) times or steps."""
        return tuple((first, last) for first, last in self._gap_labels)

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex digest of the input's bytes, once the stream is exhausted.

        Text input is hashed as it is read (a text stream as its UTF-8 encoding); a Parquet file
        is hashed on first access, in a second pass.
        """
        if not self.exhausted:
            raise RuntimeError("the fingerprint is known once the stream is exhausted")
        return self._reader.fingerprint()

    def __iter__(self) -> SeriesStream:
        return self

    def __next__(self) -> SeriesChunk:
        if self._done:
            raise StopIteration
        try:
            chunk = self._next_chunk()
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self._finish()
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Stop reading and release the file (not a stream that was passed in)."""
        self._done = True
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()

    def __enter__(self) -> SeriesStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def _convert(self, raw: pd.DataFrame, start: int, *, partial: bool = True) -> _Block:
        """Parse and check one raw piece whose first row is at position ``start``.

        ``partial``: the piece is one of several (see :func:`~anomaly.data.columns.feature_values`).
        """
        shown, roles = self.source, self._roles
        index = None
        if self._time is not None:
            index = self._time.parse(raw[roles.time_col], start)
        labels = None
        if roles.label_col is not None:
            labels = parse_labels(raw[roles.label_col], shown, roles.label_col, start=start)
        # Column-major, so that each feature is written (and later filled) contiguously.
        values = np.empty((len(raw), len(roles.features)), dtype=np.float64, order="F")
        for j, name in enumerate(roles.features):
            column = raw[name]
            if name in roles.numeric and pd.api.types.is_bool_dtype(column.dtype):
                column = column.astype(object)  # so that the cells are reported as text
            feature_values(column, shown, name, explicit=roles.explicit, start=start, partial=partial, out=values[:, j])
        return _Block(values, index, labels, start)

    def _arrange(self, block: _Block, resample: str | None) -> _Block:
        """What needs the whole series, before its gaps are filled: sorting by time, resampling."""
        index, values, labels = block.index, block.values, block.labels
        if index is not None and not index.is_monotonic_increasing:
            order = np.asarray(index.argsort(kind="stable"))  # on the int64 values, also for times
            moved = int((order != np.arange(len(order))).sum())
            self.reordered += moved
            logger.info("%s: %d row(s) of time column %r were out of order; sorted ascending", self.source, moved, self.time_col)
            index, values = index.take(order), values[order]
            labels = labels[order] if labels is not None else None
        if resample is not None:
            values, index, labels = _resample(values, index, labels, resample, self.source)
        return _Block(np.asfortranarray(values), index, labels, 0)

    def _next_block(self) -> _Block | None:
        """The next ``chunk_rows`` rows (fewer at the end), or None when the input is done."""
        total = sum(len(block) for block in self._pending)
        while total < self._chunk_rows and not self._reader.at_end:
            raw = self._reader.read(self._chunk_rows - total)
            if raw is None or len(raw) == 0:
                break
            self._pending.append(self._convert(raw, self._parsed))
            self._parsed += len(raw)
            total += len(raw)
        if total == 0:
            return None
        block = _Block.concat(self._pending)
        if len(block) > self._chunk_rows:  # only the sample can be longer than a chunk
            block, rest = block.split(self._chunk_rows)
            self._pending = [rest]
        else:
            self._pending = []
        return block

    def _next_chunk(self) -> SeriesChunk | None:
        while True:
            block = self._next_block()
            final = block is None or (self._reader.at_end and not self._pending)
            if block is None:
                if self._carry is None:
                    return None
                block, self._carry = self._carry, None
            elif self._carry is not None:
                block, self._carry = _Block.concat([self._carry, block]), None
            safe, filled = self._filler.fill(block.values, block.start, final=final)
            if safe < len(block):
                chunk_block, self._carry = block.split(safe)
                self._carry = self._carry.copy()  # a few rows; do not keep the whole block alive
            else:
                chunk_block = block
            if safe > 0:
                return self._emit(chunk_block, filled)
            if final and self._carry is None:
                return None

    def _emit(self, block: _Block, filled: int) -> SeriesChunk:
        n = len(block)
        index = block.index if block.index is not None else pd.RangeIndex(block.start, block.start + n, name="step")
        frame = pd.DataFrame(block.values, index=index, columns=list(self.feature_names), copy=False)
        labels = pd.Series(block.labels, index=index, name=self.label_col, dtype=bool) if block.labels is not None else None
        starts, lengths = _true_runs(np.isnan(block.values).any(axis=1))
        gaps = tuple((int(s), int(s + length - 1)) for s, length in zip(starts, lengths))
        self._record_gaps(gaps, index, block.start, n)
        self.rows += n
        self.filled += filled
        return SeriesChunk(
            frame=frame,
            labels=labels,
            source=Path(self.source),
            time_col=self.time_col,
            filled=filled,
            gaps=gaps,
            unused_columns=self.unused_columns,
            start=block.start,
        )

    def _record_gaps(self, gaps: tuple[tuple[int, int], ...], index: pd.Index, start: int, n: int) -> None:
        for first, last in gaps:
            self.gap_rows += last - first + 1
            if first == 0 and self._gap_open:
                if self.gap_count <= MAX_LISTED_GAPS:
                    self._gaps[-1][1] = start + last
                    self._gap_labels[-1][1] = index[last]
                continue
            self.gap_count += 1
            if len(self._gaps) < MAX_LISTED_GAPS:
                self._gaps.append([start + first, start + last])
                self._gap_labels.append([index[first], index[last]])
        self._gap_open = bool(gaps) and gaps[-1][1] == n - 1

    def _finish(self) -> None:
        self.close()
        empty = self._filler.never_seen()
        if empty.any():
            raise all_empty_error(self.source, self.feature_names[int(np.flatnonzero(empty)[0])])
        self.exhausted = True
        if self.filled:
            logger.info("%s: interpolated %d missing value(s) in runs of at most %d", self.source, self.filled, self._max_gap)
        logger.debug("%s: read %d rows", self.source, self.rows)


def sampling_note(index: pd.Index) -> str | None:
    """A one-line note when a time index is not regularly sampled, else None.

    Parameters
    ----------
    index : Index of shape (L,)
        Only a DatetimeIndex is examined.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return None
    steps = pd.Series(index[1:] - index[:-1])
    usual = steps.median()
    odd = steps != usual
    if not odd.any():
        return None
    alias = pd.tseries.frequencies.to_offset(_round_step(usual)).freqstr
    return (
        f"irregular sampling: {int(odd.sum())} of {len(steps)} intervals differ from the usual {duration_text(usual)} "
        f"(from {duration_text(steps.min())} to {duration_text(steps.max())}); --resample {alias} puts the rows on a "
        f"regular grid"
    )


def _round_step(step: pd.Timedelta) -> pd.Timedelta:
    """``step`` in the coarsest whole unit within 5% of it (5 min 4 s: 5 min), a grid worth suggesting."""
    for unit in ("1D", "1h", "1min", "1s", "1ms"):
        rounded = step.round(unit)
        if rounded > pd.Timedelta(0) and abs(rounded - step) <= 0.05 * step:
            return rounded
    return step


def duration_text(step: pd.Timedelta) -> str:
    """A time span as people write it: ``5min 4s``, ``1h``, ``2d 3h``, ``250ms``."""
    if step <= pd.Timedelta(0):
        return str(step)
    parts, rest = [], step
    for unit, name in (("1D", "d"), ("1h", "h"), ("1min", "min"), ("1s", "s"), ("1ms", "ms"), ("1us", "us")):
        count = rest // pd.Timedelta(unit)
        if count:
            parts.append(f"{count}{name}")
            rest -= count * pd.Timedelta(unit)
    return " ".join(parts) or str(step)


# --------------------------------------------------------------------------------------------
# Blocks of parsed rows
# --------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """Parsed rows: values (n, D) float64, index (n,) or None, labels (n,) bool or None."""

    values: np.ndarray
    index: pd.Index | None
    labels: np.ndarray | None
    start: int

    def __len__(self) -> int:
        return len(self.values)

    def split(self, at: int) -> tuple[_Block, _Block]:
        head = _Block(
            self.values[:at],
            None if self.index is None else self.index[:at],
            None if self.labels is None else self.labels[:at],
            self.start,
        )
        tail = _Block(
            self.values[at:],
            None if self.index is None else self.index[at:],
            None if self.labels is None else self.labels[at:],
            self.start + at,
        )
        return head, tail

    def copy(self) -> _Block:
        return _Block(
            self.values.copy(order="F"),
            None if self.index is None else self.index.copy(),
            None if self.labels is None else self.labels.copy(),
            self.start,
        )

    @staticmethod
    def concat(blocks: list[_Block]) -> _Block:
        if len(blocks) == 1:
            return blocks[0]
        index = blocks[0].index
        if index is not None:
            index = index.append([block.index for block in blocks[1:]])
        labels = blocks[0].labels
        if labels is not None:
            labels = np.concatenate([block.labels for block in blocks])
        values = np.empty((sum(len(block) for block in blocks), blocks[0].values.shape[1]), order="F")
        np.concatenate([block.values for block in blocks], out=values)
        return _Block(values, index, labels, blocks[0].start)


# --------------------------------------------------------------------------------------------
# Gaps: the one gap rule, block by block
# --------------------------------------------------------------------------------------------


class _GapFiller:
    """Interpolates short runs of missing values block by block: the gap rule.

    A run of at most ``max_gap`` missing values is filled linearly between its neighbours, by
    position, not time: windows see steps, not seconds (with the nearest value at the ends of
    the series). Longer runs stay NaN: filling them would invent data the detector would then
    vouch for. The result does not depend on how the series is cut into blocks. A run at
    the end of a block is undecided while it could still end within ``max_gap`` rows: the rows
    from its start are held back and come first in the next block. Per feature, the state
    between blocks is the last value seen (and its position) and how many missing values
    directly precede the next block.
    """

    def __init__(self, n_features: int, max_gap: int) -> None:
        self._max_gap = max_gap
        self._anchor_value = np.full(n_features, np.nan)
        self._anchor_pos = np.full(n_features, -1, dtype=np.int64)
        self._nan_before = np.zeros(n_features, dtype=np.int64)

    def never_seen(self) -> np.ndarray:
        """Bool (D,): features without a single value so far."""
        return self._anchor_pos < 0

    def fill(self, values: np.ndarray, start: int, *, final: bool) -> tuple[int, int]:
        """Fill the decided short runs of the first rows of ``values`` in place.

        Parameters
        ----------
        values : ndarray of shape (n, D)
            Raw rows (NaN where missing) at positions ``start`` to ``start + n - 1``, following
            the rows of the previous call.
        final : bool
            Whether these are the last rows of the series.

        Returns
        -------
        tuple of (int, int)
            ``safe``: the first ``safe`` rows are final (filled where decided to be filled) and
            the rest stay raw, to come again first in the next call; and how many values were
            filled in the final rows.
        """
        n, _ = values.shape
        missing = np.isnan(values)
        if not missing.any():
            if n:
                self._anchor_value = values[-1].copy()
                self._anchor_pos[:] = start + n - 1
                self._nan_before[:] = 0
            return n, 0
        safe = n if final else self._safe_rows(missing)
        filled = 0
        for j in np.flatnonzero(missing[:safe].any(axis=0)):
            filled += self._fill_column(values[:, j], missing[:, j], j, start, safe, final)
        if safe:
            self._advance(values[:safe], missing[:safe], start)
        return safe, filled

    def _safe_rows(self, missing: np.ndarray) -> int:
        """Rows before the first undecided trailing run (all rows when there is none)."""
        n = len(missing)
        safe = n
        for j in np.flatnonzero(missing[-1]):
            present = np.flatnonzero(~missing[:, j])
            run_start = int(present[-1]) + 1 if len(present) else 0
            length = n - run_start + (int(self._nan_before[j]) if run_start == 0 else 0)
            if length <= self._max_gap:
                safe = min(safe, run_start)
        return safe

    def _fill_column(self, column: np.ndarray, missing: np.ndarray, j: int, start: int, safe: int, final: bool) -> int:
        """Fill feature ``j``'s decided short runs that start before row ``safe``, in place.

        One ``np.interp`` over the runs' rows, between their neighbouring values (the anchors),
        which gives the same numbers as interpolating over the whole series at once.
        """
        n = len(column)
        rows = np.flatnonzero(missing)
        cut = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = rows[np.r_[0, cut]]
        ends = rows[np.r_[cut - 1, len(rows) - 1]] + 1  # exclusive
        totals = ends - starts
        if starts[0] == 0:
            totals[0] += self._nan_before[j]  # the run began in rows already handed out
        take = (starts < safe) & (totals <= self._max_gap)
        if not take.any():
            return 0
        starts, ends = starts[take], ends[take]
        assert final or ends[-1] < n, "an undecided run before the safe rows"
        stops = np.minimum(ends, safe)
        counts = stops - starts
        # The rows of all taken runs, concatenated: starts[i], starts[i] + 1, ..., stops[i] - 1.
        offsets = np.cumsum(counts) - counts
        fill_rows = np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()))
        anchors = np.unique(np.concatenate([starts[starts > 0] - 1, ends[ends < n]]))
        xp = (start + anchors).astype(np.float64)
        fp = column[anchors]
        if starts[0] == 0 and self._anchor_pos[j] >= 0:
            xp = np.concatenate([[float(self._anchor_pos[j])], xp])
            fp = np.concatenate([[self._anchor_value[j]], fp])
        if len(xp) == 0:
            return 0  # no value at all yet: the feature is empty (reported at the end)
        # Outside the anchors np.interp takes the nearest one: the ends of the series.
        column[fill_rows] = np.interp((start + fill_rows).astype(np.float64), xp, fp)
        return int(counts.sum())

    def _advance(self, values: np.ndarray, missing: np.ndarray, start: int) -> None:
        """Remember the last value and the trailing missing count of the final rows."""
        n = len(values)
        present = ~missing
        has = present.any(axis=0)
        last = n - 1 - np.argmax(present[::-1], axis=0)
        columns = np.flatnonzero(has)
        self._anchor_value[columns] = values[last[columns], columns]
        self._anchor_pos[columns] = start + last[columns]
        self._nan_before[columns] = n - 1 - last[columns]
        self._nan_before[~has] += n


def _true_runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths, each of shape (R,), of the runs of True in a bool array of shape (L,)."""
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return starts, ends - starts


# A grid may be finer than the rows (empty bins are gaps), but not absurdly: this many bins per row.
MAX_BINS_PER_ROW = 100


def _check_grid_size(time_index: pd.DatetimeIndex, offset: pd.DateOffset, rule: str, shown: str) -> None:
    """Refuse a fixed-length grid with over :data:`MAX_BINS_PER_ROW` bins per row of the file."""
    if not isinstance(offset, pd.tseries.offsets.Tick) or len(time_index) < 2:
        return  # calendar offsets (months, business days) are never finer than a day
    bins = (time_index.max() - time_index.min()) // pd.Timedelta(offset) + 1
    if bins > MAX_BINS_PER_ROW * len(time_index):
        spacing = str(pd.Series(time_index).diff().median()).removeprefix("0 days ")
        raise DataError(
            f"{shown}: option resample {rule} would put {len(time_index):,} rows on a grid of {bins:,} steps; "
            f"expected a frequency near the rows' spacing (their median is {spacing})"
        )


def _resample(
    values: np.ndarray, time_index: pd.Index | None, labels: np.ndarray | None, rule: str, shown: str
) -> tuple[np.ndarray, pd.DatetimeIndex, np.ndarray | None]:
    """Put a sorted series on a regular grid: bin means for features, any() for labels."""
    if not isinstance(time_index, pd.DatetimeIndex):
        found = "no time column" if time_index is None else "a numeric time column"
        raise DataError(f"{shown}: option resample needs a time column of timestamps, but the file has {found}")
    try:
        offset = pd.tseries.frequencies.to_offset(rule)
    except (ValueError, TypeError):
        offset = None
    if offset is None or offset.n <= 0:
        raise DataError(f"{shown}: option resample should be a positive frequency like '5min' or '1h', but got {rule!r}")
    # Nanoseconds: a grid finer than the index's own unit (seconds, say) makes pandas divide by zero.
    try:
        time_index = time_index.as_unit("ns")
    except (ValueError, OverflowError):  # times outside 1677-2262 have no nanoseconds: kept as they are
        pass
    _check_grid_size(time_index, offset, rule, shown)
    binned = pd.DataFrame(values, index=time_index).resample(offset)
    means = binned.mean()
    if labels is not None:
        # A bin is anomalous when any row in it is; an empty bin holds no labelled row.
        per_bin = pd.Series(labels.astype(np.float64), index=time_index).resample(offset).max()
        labels = per_bin.reindex(means.index).fillna(0.0).to_numpy() > 0
    logger.info("%s: resampled %d rows to %d at %s", shown, len(values), len(means), offset.freqstr)
    # A writable copy: gap filling works in place, and pandas' copy-on-write arrays are read-only.
    return means.to_numpy(dtype=np.float64, copy=True), means.index.rename(time_index.name), labels
