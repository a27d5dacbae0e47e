"""Reading a long series chunk by chunk, in bounded memory: files or standard input.

:func:`iter_series` reads the same CSV/TSV/semicolon and Parquet files as
:func:`~anomaly.io.read_series`, and also standard input (``"-"``) or any open stream, and hands
out the series as :class:`SeriesChunk` pieces of at most ``chunk_rows + max_gap`` rows. The
concatenation of the chunks equals what ``read_series`` returns for the same time-sorted file:
the same time column, labels and features, the same float64 values, the same interpolation of
short runs of missing values (also across chunk boundaries) and the same gaps. It holds one
chunk, the few trailing rows whose missing values are not decided yet (at most ``max_gap``), and
once a sample of :data:`ROLE_SAMPLE_ROWS` rows at the start.

What a stream cannot do, and ``read_series`` does:

- sort: rows must arrive in strictly increasing time. The first row that does not raises
  :class:`UnsortedError` (a DataError naming both rows and values and suggesting to sort the
  file), on which a caller can fall back to ``read_series``; a repeated time is the same
  DataError as in ``read_series``;
- see the whole file before choosing: the time column (when not given) and the feature columns
  (when ``columns`` is not given) are chosen from the first ``ROLE_SAMPLE_ROWS`` rows, by the
  same rules. A column that is empty or numeric there but text further on is then an error;
- check everything before reporting: the first problem met in reading order is reported
  (``read_series`` checks all times, then all labels, then all features), a count of text
  cells covers that chunk only, and a feature empty in every row is reported at the end;
- unify types after the fact: pandas infers types chunk by chunk. When UTC offsets change in
  the file (a DST change) the times keep the zone of the first chunk (``read_series`` converts
  all of them to UTC); a numeric time column keeps the first chunk's int64 where the values
  allow, and a later chunk with nanoseconds keeps its finer unit;
- resample (the caller reads the whole file with ``read_series`` for that).

Memory: CSV text is parsed ``chunk_rows`` rows at a time, and its bytes are hashed and checked
as UTF-8 as they pass; Parquet is decoded page by page (not a row group at a time) and is
hashed in a second pass when :attr:`SeriesStream.fingerprint` is asked for.

Row numbers in messages are 1-based data rows in file order, as in :mod:`anomaly.io`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO, Union

import numpy as np
import pandas as pd

from anomaly.errors import DataError
from anomaly.io import (
    _BLOCK_SIZE,
    _DECIMAL_SNIFF_LINES,
    _PARQUET_SUFFIXES,
    _SNIFF_CHARS,
    Series,
    _all_empty_error,
    _check_columns_option,
    _check_max_gap,
    _check_parquet_size,
    _clean_column_names,
    _condense,
    _csv_error,
    _empty_input_error,
    _existing_file,
    _feature_columns,
    _feature_values,
    _nan_runs,
    _no_rows_error,
    _os_reason,
    _parse_labels,
    _parse_time,
    _repeated_time_error,
    _resolve_time_column,
    _show_value,
    _shown,
    _sniff_text_format,
    _Utf8Check,
    _whitespace_input_error,
    fingerprint,
)

logger = logging.getLogger(__name__)

__all__ = ["ROLE_SAMPLE_ROWS", "SeriesChunk", "SeriesStream", "UnsortedError", "iter_series"]

#: Rows at the start of the input from which the time and feature columns are chosen (the same
#: for every ``chunk_rows``, so the choice never depends on the chunk size).
ROLE_SAMPLE_ROWS = 4096
#: Gaps listed in :attr:`SeriesStream.gaps`; more are counted in ``gap_count`` only.
MAX_LISTED_GAPS = 1000
_PARQUET_MAGIC = b"PAR1"
_UTF8_BOM = b"\xef\xbb\xbf"
_STDIN_NAME = "<stdin>"

Source = Union[str, os.PathLike, BinaryIO, TextIO]


class UnsortedError(DataError):
    """Rows arrive out of time order: a stream cannot be sorted (a file can be read whole instead).

    Repeated times are a plain :class:`~anomaly.errors.DataError`, as in ``read_series``.
    """


@dataclass(frozen=True)
class SeriesChunk(Series):
    """One chunk of a streamed series: a :class:`~anomaly.io.Series` of n rows plus its place.

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


def iter_series(
    source: Source,
    *,
    time_col: str | None = None,
    label_col: str | None = None,
    columns: Sequence[str] | None = None,
    max_gap: int = 3,
    chunk_rows: int = 65536,
    columns_role: str = "columns entry",
    sample_rows: int | None = None,
) -> SeriesStream:
    """Read a time-sorted multivariate series chunk by chunk.

    The input is opened and its first rows are read at once, so that option and column errors
    come from this call and the column roles are known on the returned stream.

    Parameters
    ----------
    source : str, PathLike, binary or text stream
        A CSV/TSV/semicolon or Parquet file (see :func:`~anomaly.io.read_table`), or ``"-"`` for
        standard input, or an open stream; streams are read as delimited UTF-8 text (Parquet
        needs random access: pass its path). Open streams are not closed.
    time_col, label_col, columns, max_gap, columns_role
        As for :func:`~anomaly.io.read_series`.
    sample_rows : int, optional
        Rows read first to choose the column roles (default :data:`ROLE_SAMPLE_ROWS`). A live
        stream wants few: nothing is handed out before the sample has arrived.
    chunk_rows : int, default 65536
        Rows read at a time. A chunk holds at most ``chunk_rows + max_gap`` rows: up to
        ``max_gap`` rows whose missing values wait for the next value are carried over.

    Returns
    -------
    SeriesStream
        An iterator of :class:`SeriesChunk`; use it as a context manager to close the file
        when stopping early.

    Raises
    ------
    DataError
        For every problem with the input or the options, with a one-line message; problems
        further into the input are raised while iterating.
    """
    return SeriesStream(
        source, time_col=time_col, label_col=label_col, columns=columns, max_gap=max_gap,
        chunk_rows=chunk_rows, columns_role=columns_role, sample_rows=sample_rows,
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
    """

    def __init__(
        self,
        source: Source,
        *,
        time_col: str | None,
        label_col: str | None,
        columns: Sequence[str] | None,
        max_gap: int,
        chunk_rows: int,
        columns_role: str,
        sample_rows: int | None = None,
    ) -> None:
        self.source = _source_name(source)
        shown = self.source
        self._max_gap = _check_max_gap(max_gap, shown)
        wanted = _check_columns_option(columns, shown)
        self._chunk_rows = _check_chunk_rows(chunk_rows, shown)
        self.rows = 0
        self.filled = 0
        self.gap_count = 0
        self.gap_rows = 0
        self.exhausted = False
        self._gaps: list[list[int]] = []
        self._gap_labels: list[list[Any]] = []
        self._gap_open = False
        self._done = False
        self._reader = _open_reader(source, shown, self._chunk_rows)
        try:
            sample = self._reader.read(sample_rows or ROLE_SAMPLE_ROWS)
            if sample is None or len(sample) == 0:
                raise _no_rows_error(shown, self._reader.columns)
            self._choose_columns(sample, time_col, label_col, wanted, columns_role)
            self._time = _TimeChecker(shown, self.time_col) if self.time_col is not None else None
            self._filler = _GapFiller(len(self.feature_names), self._max_gap)
            self._pending: list[_Block] = [self._convert(sample, 0)]
            self._parsed = len(sample)  # rows parsed from the input so far
            self._carry: _Block | None = None
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ public

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

    # ------------------------------------------------------------------ set-up

    def _choose_columns(
        self,
        sample: pd.DataFrame,
        time_col: str | None,
        label_col: str | None,
        wanted: list[str] | None,
        columns_role: str,
    ) -> None:
        """Column roles from the sample, by read_series' rules."""
        shown = self.source
        available = [str(name) for name in sample.columns]
        time_col = _resolve_time_column(sample, shown, time_col=time_col, label_col=label_col, wanted=wanted,
                                        columns_role=columns_role)
        features = _feature_columns(sample, shown, time_col, label_col, wanted)
        used = {time_col, label_col, *features}
        self.time_col = time_col
        self.label_col = label_col
        self.feature_names = list(features)
        self.unused_columns = tuple(name for name in available if name not in used)
        self._explicit = wanted is not None
        # pandas infers types chunk by chunk: a chunk of only true/false cells in a numeric
        # feature becomes a bool column, which read_series (seeing the whole column) reports.
        self._numeric = {name for name in features if not pd.api.types.is_bool_dtype(sample[name].dtype)}

    # ------------------------------------------------------------------ reading

    def _convert(self, raw: pd.DataFrame, start: int) -> _Block:
        """Parse and check one raw piece whose first row is at position ``start``."""
        shown = self.source
        index = None
        if self.time_col is not None:
            assert self._time is not None
            column = self._time.as_text_if_times(raw[self.time_col])
            index = _arrow_times(column, self.time_col)
            if index is None:
                index = _parse_time(column, shown, self.time_col, start=start)
            index = self._time.check(index, column, start)
        labels = None
        if self.label_col is not None:
            labels = _parse_labels(raw[self.label_col], shown, self.label_col, start=start)
        # Column-major, so that each feature is written (and later filled) contiguously.
        values = np.empty((len(raw), len(self.feature_names)), dtype=np.float64, order="F")
        for j, name in enumerate(self.feature_names):
            column = raw[name]
            if name in self._numeric and pd.api.types.is_bool_dtype(column.dtype):
                column = column.astype(object)  # so that the cells are reported as text
            _feature_values(column, shown, name, explicit=self._explicit, start=start, partial=True, out=values[:, j])
        return _Block(values, index, labels, start)

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
        labels = (
            pd.Series(block.labels, index=index, name=self.label_col, dtype=bool) if block.labels is not None else None
        )
        starts, lengths = _nan_runs(np.isnan(block.values).any(axis=1))
        gaps = tuple((int(s), int(s + length - 1)) for s, length in zip(starts, lengths))
        self._record_gaps(gaps, index, block.start, n)
        self.rows += n
        self.filled += filled
        return SeriesChunk(
            frame=frame, labels=labels, source=Path(self.source), time_col=self.time_col, filled=filled,
            gaps=gaps, unused_columns=self.unused_columns, start=block.start,
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
            raise _all_empty_error(self.source, self.feature_names[int(np.flatnonzero(empty)[0])])
        self.exhausted = True
        if self.filled:
            logger.info(
                "%s: interpolated %d missing value(s) in runs of at most %d", self.source, self.filled, self._max_gap
            )
        logger.debug("%s: read %d rows", self.source, self.rows)


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
            self.values[:at], None if self.index is None else self.index[:at],
            None if self.labels is None else self.labels[:at], self.start,
        )
        tail = _Block(
            self.values[at:], None if self.index is None else self.index[at:],
            None if self.labels is None else self.labels[at:], self.start + at,
        )
        return head, tail

    def copy(self) -> _Block:
        return _Block(
            self.values.copy(order="F"), None if self.index is None else self.index.copy(),
            None if self.labels is None else self.labels.copy(), self.start,
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
# Time order across chunks
# --------------------------------------------------------------------------------------------


class _TimeChecker:
    """Keeps the time index of every chunk like the first one's, and strictly increasing."""

    def __init__(self, shown: str, name: str) -> None:
        self._shown = shown
        self._name = name
        self._first: pd.Index | None = None  # an empty index of the first chunk's kind
        self._last: Any = None
        self._last_row = -1

    def as_text_if_times(self, column: pd.Series) -> pd.Series:
        """A chunk's raw time column, as text when the times so far were parsed from text.

        A chunk in which pandas sees only numbers or only empty cells (e.g. one row with an
        empty time) is then parsed, and reported on, as the whole column would be.
        """
        first = self._first
        if (
            isinstance(first, pd.DatetimeIndex)
            and not pd.api.types.is_datetime64_any_dtype(column.dtype)
            and not pd.api.types.is_string_dtype(column.dtype)
        ):
            return column.astype(object)
        return column

    def check(self, index: pd.Index, column: pd.Series, start: int) -> pd.Index:
        """``index`` (n,) made like the first chunk's and checked to increase; rows from ``start``."""
        index = self._harmonise(index, column, start)
        values = index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy()
        if self._last is not None and not index[0] > self._last:
            self._raise(self._last_row, self._last, start, index[0])
        later = values[1:] > values[:-1]
        if not later.all():
            row = int(np.flatnonzero(~later)[0])
            self._raise(start + row, index[row], start + row + 1, index[row + 1])
        self._last = index[-1]
        self._last_row = start + len(index) - 1
        return index

    def _raise(self, before_row: int, before: Any, row: int, value: Any) -> None:
        if value == before:
            raise _repeated_time_error(self._shown, self._name, row, value, before_row)
        raise UnsortedError(
            f"{self._shown}: time column {self._name!r} should increase from row to row when read as a "
            f"stream, but row {row + 1} holds {value}, earlier than {before} in row {before_row + 1}; "
            f"sort the file by {self._name!r} first"
        )

    def _harmonise(self, index: pd.Index, column: pd.Series, start: int) -> pd.Index:
        first = self._first
        if first is None:
            self._first = index[:0]
            return index
        if isinstance(first, pd.DatetimeIndex) != isinstance(index, pd.DatetimeIndex):
            kind = "timestamps" if isinstance(first, pd.DatetimeIndex) else "numbers"
            raise DataError(
                f"{self._shown}: time column {self._name!r} should hold {kind} in every row, as in row 1, "
                f"but row {start + 1} holds {_show_value(column.iloc[0])}"
            )
        if isinstance(index, pd.DatetimeIndex):
            if (first.tz is None) != (index.tz is None):
                found, expected = ("without", "have one") if index.tz is None else ("with", "have none")
                raise DataError(
                    f"{self._shown}: time column {self._name!r} should use time zones consistently, but row "
                    f"{start + 1} holds {_show_value(column.iloc[0])} {found} one while earlier rows {expected}"
                )
            if index.tz is not None and str(index.tz) != str(first.tz):
                index = index.tz_convert(first.tz)
            if index.unit != first.unit:
                index = _as_unit_if_exact(index, first.unit)
            return index
        if index.dtype != first.dtype:
            if pd.api.types.is_integer_dtype(first.dtype):
                as_int = index.to_numpy(dtype=np.float64)
                if np.all(np.abs(as_int) < 2**53) and np.all(as_int == np.round(as_int)):
                    return pd.Index(as_int.astype(first.dtype), name=index.name)
            elif pd.api.types.is_float_dtype(first.dtype):
                return pd.Index(index.to_numpy(dtype=first.dtype), name=index.name)
        return index


def _arrow_times(column: pd.Series, name: str) -> pd.DatetimeIndex | None:
    """Plain ISO 8601 times without zone, parsed by pyarrow; None for anything else.

    The fast path for the usual time column, several times faster than pandas' parser. Arrow
    accepts a subset of what :func:`~anomaly.io._parse_time` accepts (``YYYY-MM-DD``, then
    optionally ``[T ]hh[:mm[:ss[.ffffff]]]``, all cells present, no blanks, no zone) and gives
    the same times there; everything else, errors included, is left to ``_parse_time``.

    Returns
    -------
    DatetimeIndex of shape (n,) or None
        In the unit pandas gives the same text.
    """
    dtype = column.dtype
    if not isinstance(dtype, pd.StringDtype) or dtype.storage != "pyarrow" or len(column) == 0:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        text = pa.array(column.array)
        if text.null_count:
            return None
        parsed = pc.cast(text, pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    # The unit pandas infers from such text (microseconds in pandas 3, nanoseconds before).
    unit = pd.to_datetime(column.iloc[:1], format="ISO8601").dt.unit
    return pd.DatetimeIndex(parsed.to_numpy(), name=name).as_unit(unit)


def _as_unit_if_exact(index: pd.DatetimeIndex, unit: str) -> pd.DatetimeIndex:
    """``index`` in ``unit`` when no precision is lost (else unchanged)."""
    try:
        converted = index.as_unit(unit)
    except (ValueError, OverflowError):
        return index
    return converted if converted.equals(index) else index


# --------------------------------------------------------------------------------------------
# Gaps across chunks
# --------------------------------------------------------------------------------------------


class _GapFiller:
    """Interpolates short runs of missing values block by block, exactly as ``_fill_gaps``.

    A run of at most ``max_gap`` missing values is filled linearly between its neighbours, by
    position (with the nearest value at the ends of the series); longer runs stay NaN. A run at
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

    def _fill_column(
        self, column: np.ndarray, missing: np.ndarray, j: int, start: int, safe: int, final: bool
    ) -> int:
        """Fill feature ``j``'s decided short runs that start before row ``safe``, in place.

        As ``_fill_gaps``: one ``np.interp`` over the runs' rows, between their neighbouring
        values (the anchors), which gives the same numbers as interpolating over the whole series.
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


# --------------------------------------------------------------------------------------------
# Raw readers: pieces of the input as pandas frames
# --------------------------------------------------------------------------------------------


class _Reader:
    """Raw rows of the input, ``read(n)`` at a time, with cleaned column names."""

    at_end: bool = False
    columns: list[str]

    def read(self, n: int) -> pd.DataFrame | None:
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _source_name(source: object) -> str:
    if isinstance(source, str) and source == "-":
        return _STDIN_NAME
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) and name else "<stream>"
    return _shown(source)  # type: ignore[arg-type]


def _check_chunk_rows(chunk_rows: object, shown: str) -> int:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise DataError(f"{shown}: option chunk_rows should be a whole number >= 1, but got {chunk_rows!r}")
    return int(chunk_rows)


def _open_reader(source: Source, shown: str, chunk_rows: int) -> _Reader:
    if isinstance(source, str) and source == "-":
        stdin = sys.stdin
        if stdin is None:
            raise DataError(f"{shown}: expected a table on standard input, but there is none")
        return _TextReader(getattr(stdin, "buffer", stdin), shown, owned=None)
    if hasattr(source, "read"):
        return _TextReader(source, shown, owned=None)  # type: ignore[arg-type]
    file = _existing_file(source)  # type: ignore[arg-type]
    if file.suffix.lower() in _PARQUET_SUFFIXES:
        return _ParquetReader(file, shown, chunk_rows)
    try:
        handle = open(file, "rb")
    except OSError as err:
        raise DataError(f"{shown}: cannot read the file: {_os_reason(err)}") from None
    return _TextReader(handle, shown, owned=handle)


class _ByteFeed:
    """The input's bytes on their way to pandas: hashed and checked as UTF-8 as they pass.

    The head (the first lines, for sniffing the format) is read first and replayed to pandas
    without a UTF-8 BOM. A DataError raised while pandas reads is kept in ``error``, as pandas
    may wrap or swallow it.
    """

    def __init__(self, raw: BinaryIO | TextIO, shown: str) -> None:
        self._raw = raw
        self._read = getattr(raw, "read1", None) or raw.read
        self._shown = shown
        self._hash = hashlib.sha256()
        self._check = _Utf8Check(shown)
        self._replay = b""
        self.bytes_read = 0
        self.eof = False
        self.error: DataError | None = None

    def head(self) -> str:
        """Read the first lines: decoded text, also replayed later by :meth:`read`.

        Reads until more than the lines the sniffing looks at have arrived, or 1 MiB, the
        head ``read_table`` sniffs from; in small pieces, so that a pipe need not fill 1 MiB.
        """
        blocks: list[bytes] = []
        texts: list[str] = []
        size = 0
        has_content = False
        while not self.eof:
            block = self._pull(min(_SNIFF_CHARS, max(_BLOCK_SIZE - size, 1)), first=not blocks)
            blocks.append(block)
            texts.append(self._check.feed(block, final=not block))
            size += len(block)
            has_content = has_content or bool(texts[-1].strip())
            if has_content and size >= _BLOCK_SIZE:
                break
            lines = sum(1 for line in "".join(texts).splitlines() if line.strip())
            if lines > _DECIMAL_SNIFF_LINES + 1:
                break
        if self.bytes_read == 0:
            raise _empty_input_error(self._shown)
        if not has_content:
            raise _whitespace_input_error(self._shown)
        head = b"".join(blocks)
        self._replay = head[len(_UTF8_BOM):] if head.startswith(_UTF8_BOM) else head
        return "".join(texts)

    def _pull(self, size: int, *, first: bool = False) -> bytes:
        try:
            block = self._read(size)
        except OSError as err:
            raise DataError(f"{self._shown}: cannot read the input: {_os_reason(err)}") from None
        if block is None:  # a non-blocking stream with nothing yet
            block = b""
        if isinstance(block, str):
            block = block.encode("utf-8", "surrogatepass")  # lone surrogates then fail the UTF-8 check
        if first and block.startswith(_PARQUET_MAGIC):
            raise DataError(
                f"{self._shown}: this looks like a Parquet file, which cannot be read from a stream "
                f"(it needs random access); pass the file's path instead"
            )
        self._hash.update(block)
        self.bytes_read += len(block)
        self.eof = not block
        return block

    # The file-like interface pandas uses.

    def read(self, size: int = -1) -> bytes:
        if self._replay:
            if size is None or size < 0:
                size = len(self._replay)
            block, self._replay = self._replay[:size], self._replay[size:]
            return block
        if self.eof:
            return b""
        try:
            block = self._pull(size if size and size > 0 else _BLOCK_SIZE)
            self._check.check(block, final=not block)
        except DataError as err:
            self.error = err
            raise
        return block

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False

    def __iter__(self) -> Iterator[bytes]:
        raise io.UnsupportedOperation("read() only")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _TextReader(_Reader):
    """Delimited text through pandas' C parser, ``get_chunk`` by ``get_chunk``."""

    def __init__(self, raw: BinaryIO | TextIO, shown: str, *, owned: BinaryIO | None) -> None:
        self._shown = shown
        self._owned = owned
        self._feed = _ByteFeed(raw, shown)
        self._names: list[str] | None = None
        self.columns = []
        try:
            sep, decimal = _sniff_text_format(self._feed.head(), shown)
            self._sep = sep
            self._parser = pd.read_csv(
                self._feed, sep=sep, decimal=decimal, encoding="utf-8", iterator=True, low_memory=False
            )
        except Exception as err:
            self.close()
            raise self._error(err) from None

    def _error(self, err: Exception) -> DataError:
        if self._feed.error is not None:
            return self._feed.error
        return _csv_error(err, self._shown, getattr(self, "_sep", ","))

    def read(self, n: int) -> pd.DataFrame | None:
        if self.at_end:
            return None
        try:
            frame = self._parser.get_chunk(n)
        except StopIteration:
            frame = None
        except Exception as err:
            raise self._error(err) from None
        if frame is None or len(frame) < n:
            self.at_end = True
        if frame is None:
            return None
        if self._names is None:
            self._names = [str(name) for name in _clean_column_names(frame.iloc[:0].copy()).columns]
            self.columns = self._names
        frame.columns = self._names
        return frame

    def fingerprint(self) -> str:
        return self._feed.hexdigest()

    def close(self) -> None:
        parser = getattr(self, "_parser", None)
        if parser is not None:
            parser.close()
        if self._owned is not None:
            self._owned.close()


class _ParquetReader(_Reader):
    """Record batches of a Parquet file through pyarrow, converted as ``pd.read_parquet`` does."""

    def __init__(self, file: Path, shown: str, chunk_rows: int) -> None:
        import pyarrow.parquet as pq

        self._file = file
        self._shown = shown
        _check_parquet_size(file, shown)
        try:
            # Without pre-buffering, pyarrow reads a row group's pages as it decodes them, so memory
            # does not grow with the row group (pandas writes 1M-row groups by default).
            self._parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 16)
            schema = self._parquet.schema_arrow
            self._batches = self._parquet.iter_batches(batch_size=max(chunk_rows, 1024))
            empty = _to_pandas(schema.empty_table())
        except Exception as err:  # pyarrow raises many unrelated types (ArrowInvalid, OSError, ...)
            self.close()
            raise DataError(f"{shown}: cannot read as Parquet: {_condense(err)}") from None
        if len(empty.columns) == 0:
            self.close()
            raise DataError(f"{shown}: expected at least one column, but the file has none")
        self.columns = [str(name) for name in empty.columns]
        self._leftover: Any = None  # part of the last record batch not handed out yet

    def read(self, n: int) -> pd.DataFrame | None:
        import pyarrow as pa

        pieces = []
        rows = 0
        try:
            while rows < n:
                batch = self._leftover if self._leftover is not None else next(self._batches, None)
                self._leftover = None
                if batch is None:
                    self.at_end = True
                    break
                if rows + batch.num_rows > n:
                    batch, self._leftover = batch.slice(0, n - rows), batch.slice(n - rows)
                pieces.append(batch)
                rows += batch.num_rows
            if not pieces:
                return None
            frame = _to_pandas(pa.Table.from_batches(pieces))
        except Exception as err:
            raise DataError(f"{self._shown}: cannot read as Parquet: {_condense(err)}") from None
        frame.columns = self.columns
        return frame

    def fingerprint(self) -> str:
        return fingerprint(self._file)

    def close(self) -> None:
        parquet = getattr(self, "_parquet", None)
        if parquet is not None:
            parquet.close()


def _to_pandas(table: Any) -> pd.DataFrame:
    """A pyarrow table as ``read_table`` gives it: pandas' conversion, index as a first column."""
    try:  # the conversion pd.read_parquet does (time zone normalisation on older pyarrow)
        from pandas.io._util import arrow_table_to_pandas

        frame = arrow_table_to_pandas(table)
    except ImportError:
        frame = table.to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    return _clean_column_names(frame)
