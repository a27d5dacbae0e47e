"""Reading multivariate time series from CSV/Parquet files, and writing tables atomically.

``read_series`` turns a user's file into a validated :class:`Series`: a float64 (L, D) feature
frame indexed by time, optional boolean labels, and a count of the short gaps it interpolated.
Everything a user can get wrong in the file or the options ends in a one-line
:class:`~anomaly.errors.DataError` that names the file, the column or option, what was expected
and what was found; no raw pandas, numpy, pyarrow or OS exception leaves this module.

Row numbers in messages are 1-based data rows: "row 1" is the first row after the header (for
Parquet, the first row of the table), always counted in file order, also after sorting by time.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import logging
import numbers
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["Series", "fingerprint", "read_series", "read_table", "write_table"]

_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_SEPARATORS = (",", ";", "\t")
_TIME_NAMES = frozenset({"time", "timestamp", "datetime", "date", "ts", "time_stamp", "step"})
# Names that suggest a column holds labels; only used to warn when such a column becomes a feature.
_LABEL_LIKE_NAMES = frozenset({"label", "labels", "anomaly", "is_anomaly", "anomalous", "target"})
_BLOCK_SIZE = 1 << 20  # 1 MiB: streaming hashes and the UTF-8 check never hold the whole file
_SNIFF_DATA_LINES = 5  # data lines, besides the header, that decide the separator
_DECIMAL_SNIFF_LINES = 50  # data lines searched for decimal commas
_SNIFF_CHARS = 1 << 16  # decoded text kept from the head of the file for sniffing
_MAX_LISTED_COLUMNS = 10
_MAX_VALUE_CHARS = 40
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*$")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$")
_LABEL_TRUE = frozenset({"1", "1.0", "true"})
_LABEL_FALSE = frozenset({"0", "0.0", "false"})


@dataclass(frozen=True)
class Series:
    """A validated multivariate series.

    Attributes
    ----------
    frame : DataFrame of shape (L, D)
        float64 feature columns, in file order (or in ``columns`` order when given). The index is
        a DatetimeIndex named after the time column, a numeric index named after a numeric time
        column, or a RangeIndex named ``"step"`` when there is no time column. Sorted ascending.
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
    """

    frame: pd.DataFrame
    labels: pd.Series | None
    source: Path
    time_col: str | None
    filled: int
    gaps: tuple[tuple[int, int], ...] = ()
    unused_columns: tuple[str, ...] = ()

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


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    str
        The hex digest (64 characters).

    Raises
    ------
    DataError
        If the file does not exist, is a directory or cannot be read.
    """
    file = _existing_file(path)
    digest = hashlib.sha256()
    try:
        with open(file, "rb") as fh:
            while block := fh.read(_BLOCK_SIZE):
                digest.update(block)
    except OSError as err:
        raise DataError(f"{_shown(path)}: cannot read the file: {_os_reason(err)}") from None
    return digest.hexdigest()


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a raw table from a Parquet or delimited text file.

    ``.parquet``/``.pq`` files are read with pyarrow; a non-range index stored in the pandas
    metadata (e.g. a DatetimeIndex) comes back as an ordinary first column. Everything else is
    read as UTF-8 text (a BOM is allowed) whose separator, one of ``,`` ``;`` or tab, is detected
    from the first lines; ``;``- or tab-separated files with decimal commas (``1,5``) are read
    with ``decimal=","``.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    DataFrame of shape (L, C)
        The file's columns as pandas parsed them (no validation beyond "has rows"). Column names
        are strings with surrounding whitespace removed.

    Raises
    ------
    DataError
        If the file is missing, a directory, empty, not UTF-8, not parseable, or has no rows.
    """
    file = _existing_file(path)
    shown = _shown(path)
    if file.suffix.lower() in _PARQUET_SUFFIXES:
        frame = _read_parquet(file, shown)
    else:
        frame = _read_text(file, shown)
    if len(frame.columns) == 0:
        raise DataError(f"{shown}: expected at least one column, but the file has none")
    if len(frame) == 0:
        raise _no_rows_error(shown, frame.columns)
    return _clean_column_names(frame)


def read_series(
    path: str | os.PathLike,
    *,
    time_col: str | None = None,
    label_col: str | None = None,
    columns: Sequence[str] | None = None,
    max_gap: int = 3,
    resample: str | None = None,
    columns_role: str = "columns entry",
) -> Series:
    """Read and validate a multivariate time series.

    Parameters
    ----------
    path : str or PathLike
        A CSV/TSV/semicolon file or a Parquet file (see :func:`read_table`).
    time_col : str, optional
        The time column. Datetime-like text becomes a DatetimeIndex, numbers a numeric index.
        Default: the first column named time, timestamp, datetime, date, ts, time_stamp or step (any
        case), else the first column when it is text that parses as datetimes, else none.
    label_col : str, optional
        A column of 0/1 or true/false anomaly labels, returned as ``Series.labels``.
    columns : sequence of str, optional
        The feature columns, in this order. Default: every numeric column other than the time
        and label columns, in file order (boolean columns only when named here).
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

    Returns
    -------
    Series
        ``frame`` of shape (L, D), float64, sorted by time; ``labels`` of shape (L,) or None.

    Raises
    ------
    DataError
        For every problem with the file or the options, with a one-line message.
    """
    shown = _shown(path)
    max_gap = _check_max_gap(max_gap, shown)
    wanted = _check_columns_option(columns, shown)
    raw = read_table(path)
    available = [str(name) for name in raw.columns]
    time_col = _resolve_time_column(raw, shown, time_col=time_col, label_col=label_col, wanted=wanted,
                                    columns_role=columns_role)
    time_index = _parse_time(raw[time_col], shown, time_col) if time_col is not None else None
    if time_index is not None:
        _check_unique_times(time_index, shown, time_col)

    labels = _parse_labels(raw[label_col], shown, label_col) if label_col is not None else None

    feature_names = _feature_columns(raw, shown, time_col, label_col, wanted)
    values = np.column_stack(
        [_feature_values(raw[name], shown, name, explicit=wanted is not None) for name in feature_names]
    )

    if time_index is not None:
        order = _ascending_order(time_index, shown, time_col)
        if order is not None:
            time_index = time_index.take(order)
            values = values[order]
            labels = labels[order] if labels is not None else None

    if resample is not None:
        values, time_index, labels = _resample(values, time_index, labels, resample, shown)

    filled = _fill_gaps(values, max_gap)
    if filled:
        logger.info("%s: interpolated %d missing value(s) in runs of at most %d", shown, filled, max_gap)
    starts, lengths = _nan_runs(np.isnan(values).any(axis=1))
    gaps = tuple((int(s), int(s + n - 1)) for s, n in zip(starts, lengths))

    index = time_index if time_index is not None else pd.RangeIndex(len(values), name="step")
    frame = pd.DataFrame(values, index=index, columns=list(feature_names), copy=False)
    label_series = pd.Series(labels, index=index, name=label_col, dtype=bool) if labels is not None else None
    used = {time_col, label_col, *feature_names}
    unused = tuple(name for name in available if name not in used)
    return Series(frame=frame, labels=label_series, source=Path(path), time_col=time_col, filled=filled,
                  gaps=gaps, unused_columns=unused)


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
    alias = pd.tseries.frequencies.to_offset(usual).freqstr
    return (
        f"irregular sampling: {int(odd.sum())} of {len(steps)} intervals differ from the usual {usual} "
        f"(from {steps.min()} to {steps.max()}); --resample {alias} puts the rows on a regular grid"
    )


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write a table atomically, as Parquet (``.parquet``/``.pq``) or else CSV.

    The table goes to a temporary file in the target's directory, is fsynced, and then replaces
    the target with ``os.replace``; so readers see either the old file or the complete new one,
    never a half-written one. A new file gets the usual permissions (0666 less the umask); a
    replaced file keeps its permissions.

    Parameters
    ----------
    frame : DataFrame of shape (L, C)
    path : str or PathLike
        The file to create or replace.
    index : bool, default True
        Whether to write the index as a column.

    Returns
    -------
    Path
        The written file, as given.

    Raises
    ------
    DataError
        If the directory does not exist, the file cannot be written, or the frame cannot be
        serialised; the target is then untouched and no temporary file is left behind.
    """
    if not isinstance(frame, pd.DataFrame):
        # A caller bug, not a user input problem: not a DataError.
        raise TypeError(f"write_table expects a pandas DataFrame, got {type(frame).__name__}")
    target = Path(path)
    shown = _shown(path)
    directory = target.parent
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise DataError(f"cannot write {shown}: the directory {str(directory)!r} {what}")
    if target.is_dir():
        raise DataError(f"cannot write {shown}: expected a file path, but it is a directory")
    mode = _mode_for(target)

    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        reason = _os_reason(err, with_file=False)
        raise DataError(f"cannot write {shown}: {reason} in the directory {str(directory)!r}") from None
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        if target.suffix.lower() in _PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=index)
        else:
            frame.to_csv(tmp, index=index)
        _fsync_path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as err:
        _remove_quietly(tmp)
        if not isinstance(err, Exception):
            raise  # KeyboardInterrupt and friends: clean up, but do not disguise them
        # The temporary file's name would only confuse: the message names the target.
        reason = _os_reason(err, with_file=False) if isinstance(err, OSError) else _condense(err)
        raise DataError(f"cannot write {shown}: {reason}") from None
    _fsync_directory(directory)
    return target


# --------------------------------------------------------------------------------------------
# Reading raw tables
# --------------------------------------------------------------------------------------------


def _existing_file(path: str | os.PathLike) -> Path:
    """The path as a Path, after checking that it names an existing regular file."""
    try:
        file = Path(path)
    except TypeError:
        raise DataError(f"{path!r}: expected a file path, but got a {type(path).__name__}") from None
    shown = _shown(path)
    try:
        if file.is_dir():
            raise DataError(f"{shown}: expected a data file, but this is a directory")
        if not file.exists():
            raise DataError(f"{shown}: file not found (looked in {str(file.resolve().parent)!r})")
    except OSError as err:
        raise DataError(f"{shown}: cannot access the file: {_os_reason(err)}") from None
    return file


def _read_parquet(file: Path, shown: str) -> pd.DataFrame:
    _check_parquet_size(file, shown)
    try:
        frame = pd.read_parquet(file)
    except Exception as err:  # pyarrow raises many unrelated types (ArrowInvalid, OSError, ...)
        raise DataError(f"{shown}: cannot read as Parquet: {_condense(err)}") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas metadata restores e.g. a DatetimeIndex; callers expect it as a column.
        frame = frame.reset_index()
    return frame


def _check_parquet_size(file: Path, shown: str) -> None:
    if _file_size(file, shown) == 0:
        raise DataError(f"{shown}: expected a Parquet file, but the file is empty (0 bytes)")


def _read_text(file: Path, shown: str) -> pd.DataFrame:
    head = _check_utf8_text(file, shown)
    sep, decimal = _sniff_text_format(head, shown)
    try:
        return pd.read_csv(file, sep=sep, decimal=decimal, encoding="utf-8-sig", low_memory=False)
    except Exception as err:
        raise _csv_error(err, shown, sep) from None


def _sniff_text_format(head: str, shown: str) -> tuple[str, str]:
    """The separator and the decimal mark of delimited text, from its first lines.

    Parameters
    ----------
    head : str
        Decoded text from the start of the file (the first lines are enough).

    Returns
    -------
    tuple of (str, str)
        ``(sep, decimal)``: sep one of ``,`` ``;`` tab; decimal ``.`` or ``,``.
    """
    lines = [line for line in head.splitlines() if line.strip()]
    sep = _detect_separator(lines[: _SNIFF_DATA_LINES + 1])
    decimal = "," if sep != "," and _uses_decimal_comma(lines[1 : _DECIMAL_SNIFF_LINES + 1], sep) else "."
    if decimal == ",":
        logger.info("%s: numbers use decimal commas; reading with decimal=','", shown)
    return sep, decimal


def _csv_error(err: Exception, shown: str, sep: str) -> DataError:
    """The DataError for an exception raised while pandas parses delimited text."""
    if isinstance(err, DataError):
        return err
    if isinstance(err, pd.errors.EmptyDataError):
        return DataError(f"{shown}: expected a header line, but the file holds no columns")
    if isinstance(err, pd.errors.ParserError):
        return DataError(f"{shown}: cannot parse as {_sep_name(sep)}-separated text: {_condense(err)}")
    # Anything else pandas or the OS raises is still a problem with this file.
    return DataError(f"{shown}: cannot read the file: {_condense(err)}")


def _file_size(file: Path, shown: str) -> int:
    try:
        return file.stat().st_size
    except OSError as err:
        raise DataError(f"{shown}: cannot read the file: {_os_reason(err)}") from None


def _check_utf8_text(file: Path, shown: str) -> str:
    """Stream the file once to check it is non-empty UTF-8 text; return its decoded head.

    Returns
    -------
    str
        Up to about 64 KiB of decoded text from the start of the file.
    """
    if _file_size(file, shown) == 0:
        raise _empty_input_error(shown)
    checker = _Utf8Check(shown)
    head: list[str] = []
    head_chars = 0
    has_content = False
    try:
        with open(file, "rb") as fh:
            while True:
                block = fh.read(_BLOCK_SIZE)
                # A BOM decodes as U+FEFF, which the sniffing ignores; pandas drops it (utf-8-sig).
                text = checker.feed(block, final=not block)
                has_content = has_content or bool(text.strip())
                if head_chars < _SNIFF_CHARS:
                    head.append(text)
                    head_chars += len(text)
                if not block:
                    break
    except OSError as err:
        raise DataError(f"{shown}: cannot read the file: {_os_reason(err)}") from None
    if not has_content:
        raise _whitespace_input_error(shown)
    return "".join(head)


def _empty_input_error(shown: str) -> DataError:
    return DataError(f"{shown}: expected a table, but the file is empty (0 bytes)")


def _whitespace_input_error(shown: str) -> DataError:
    return DataError(f"{shown}: expected a table, but the file holds only whitespace")


def _no_rows_error(shown: str, columns: Sequence[object]) -> DataError:
    return DataError(f"{shown}: expected data rows after the header, but found none (columns: {_list_names(columns)})")


class _Utf8Check:
    """Incremental UTF-8 decoding of a byte stream, block by block.

    A DataError names the offset of the first invalid byte in the whole stream and its line.
    """

    def __init__(self, shown: str) -> None:
        self._shown = shown
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._fed = 0  # bytes handed to the decoder so far
        self._newlines = 0

    def feed(self, block: bytes, *, final: bool = False) -> str:
        """Decode the next block (bytes of any length); ``final`` at the end of the stream."""
        pending = self._decoder.getstate()[0]
        try:
            text = self._decoder.decode(block, final=final)
        except UnicodeDecodeError as err:
            # The decoder decodes pending + block; err.start counts from there.
            offset = self._fed - len(pending) + err.start
            line = self._newlines + (pending + block)[: err.start].count(b"\n") + 1
            raise DataError(
                f"{self._shown}: expected UTF-8 text, but byte {offset} (line {line}) is not valid "
                f"UTF-8; re-save the file with UTF-8 encoding"
            ) from None
        self._fed += len(block)
        self._newlines += _count_newlines(block)
        return text

    def check(self, block: bytes, *, final: bool = False) -> None:
        """Like :meth:`feed`, without the text: ASCII blocks are only counted, not decoded."""
        if block.isascii() and not self._decoder.getstate()[0]:
            self._fed += len(block)
            self._newlines += _count_newlines(block)
        else:
            self.feed(block, final=final)


def _count_newlines(block: bytes) -> int:
    # numpy counts about three times faster than bytes.count.
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))


def _count_unquoted(line: str, sep: str) -> int:
    """Occurrences of ``sep`` outside double-quoted fields."""
    count = 0
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            count += 1
    return count


def _detect_separator(lines: list[str]) -> str:
    """Pick the separator from the header and a few data lines.

    A candidate that occurs the same nonzero number of times on every sampled line is
    consistent; among consistent candidates (or, failing any, among all) the one with the most
    occurrences in the header wins. A header without any candidate is a one-column table.
    """
    if not lines:
        return ","
    counts = {sep: [_count_unquoted(line, sep) for line in lines] for sep in _SEPARATORS}
    header = {sep: found[0] for sep, found in counts.items()}
    consistent = [sep for sep, found in counts.items() if found[0] > 0 and len(set(found)) == 1]
    pool = consistent or [sep for sep in _SEPARATORS if header[sep] > 0]
    if not pool:
        return ","
    # max() keeps the first of equals, so ties go to the order of _SEPARATORS.
    return max(pool, key=lambda sep: header[sep])


def _uses_decimal_comma(data_lines: list[str], sep: str) -> bool:
    """Whether any field on the sampled data lines is a number written with a decimal comma."""
    for line in data_lines:
        for field in line.split(sep):
            if _DECIMAL_COMMA.match(field.strip().strip('"')):
                return True
    return False


def _sep_name(sep: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}[sep]


def _clean_column_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as stripped strings (``a, b`` headers give ' b'), unless that makes duplicates."""
    names = [str(name).strip() for name in frame.columns]
    if len(set(names)) == len(names):
        frame.columns = names
    else:
        frame.columns = [str(name) for name in frame.columns]
    return frame


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def _check_max_gap(max_gap: object, shown: str) -> int:
    if isinstance(max_gap, bool) or not isinstance(max_gap, numbers.Integral):
        raise DataError(f"{shown}: option max_gap should be a whole number >= 0, but got {max_gap!r}")
    if max_gap < 0:
        raise DataError(f"{shown}: option max_gap should be >= 0, but got {int(max_gap)}")
    return int(max_gap)


def _check_columns_option(columns: Sequence[str] | None, shown: str) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        # A bare string would be read as a list of one-letter column names.
        raise DataError(f"{shown}: option columns should be a list of column names, but got the string {columns!r}")
    names = list(columns)
    if not names:
        raise DataError(f"{shown}: option columns should name at least one feature column, but it is empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{shown}: option columns should name each column once, but {name!r} appears twice")
        seen.add(name)
    return names


def _resolve_time_column(
    raw: pd.DataFrame, shown: str, *, time_col: str | None, label_col: str | None, wanted: list[str] | None,
    columns_role: str,
) -> str | None:
    """Check the explicitly named columns; return ``time_col``, detected when not given."""
    available = [str(name) for name in raw.columns]
    _check_named_columns(
        shown, available, time_col=time_col, label_col=label_col, columns=wanted, columns_role=columns_role
    )
    if time_col is None:
        time_col = _detect_time_column(raw, exclude={label_col, *(wanted or [])})
        if time_col is not None:
            logger.info("%s: using column %r as the time column", shown, time_col)
    return time_col


def _feature_columns(
    raw: pd.DataFrame, shown: str, time_col: str | None, label_col: str | None, wanted: list[str] | None,
) -> list[str]:
    """The feature columns: ``wanted``, else every numeric column besides time and label."""
    features = wanted if wanted is not None else _auto_features(raw, shown, {time_col, label_col})
    if not features:
        raise DataError(
            f"{shown}: expected at least one numeric feature column, but found only "
            f"{_describe_columns(raw, time_col, label_col)}"
        )
    return list(features)


def _check_named_columns(
    shown: str,
    available: list[str],
    *,
    time_col: str | None,
    label_col: str | None,
    columns: list[str] | None,
    columns_role: str = "columns entry",
) -> None:
    """Every explicitly named column must exist, and no column may play two roles."""
    named = [("time_col", time_col), ("label_col", label_col)] + [(columns_role, name) for name in columns or []]
    for role, name in named:
        if name is not None and name not in available:
            raise DataError(
                f"{shown}: {role} {name!r} is not a column of the file"
                f"{_did_you_mean(name, available)}; "
                f"available columns: {_list_names(available)}"
            )
    if time_col is not None and time_col == label_col:
        raise DataError(f"{shown}: time_col and label_col should differ, but both are {time_col!r}")
    for option, name in (("time_col", time_col), ("label_col", label_col)):
        if name is not None and columns is not None and name in columns:
            raise DataError(f"{shown}: option columns should list feature columns only, but {name!r} is the {option}")


# --------------------------------------------------------------------------------------------
# Time column
# --------------------------------------------------------------------------------------------


def _detect_time_column(raw: pd.DataFrame, exclude: set[str | None]) -> str | None:
    """The first column named like a time column, else the first column if it holds datetimes."""
    for name in raw.columns:
        if name not in exclude and str(name).strip().lower() in _TIME_NAMES:
            return str(name)
    first = str(raw.columns[0])
    if first in exclude:
        return None
    column = raw[first]
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return first
    if _is_number_column(column) or pd.api.types.is_bool_dtype(column.dtype):
        return None
    text = _cells_as_text(column)
    present = text[text != ""]
    # Requiring a digit keeps words like "May" or "now", which dateutil accepts, from counting.
    if present.empty or not present.str.contains(r"\d", regex=True).all():
        return None
    try:
        parsed = _to_datetimes(present)
    except DataError:
        return None
    return first if parsed.notna().all() else None


def _parse_time(column: pd.Series, shown: str, name: str, *, start: int = 0) -> pd.Index:
    """The time column as a DatetimeIndex or a numeric Index, shape (L,), named ``name``.

    ``start`` is the 0-based file position of the column's first cell, for row numbers in
    messages (nonzero when the column is a chunk of a longer file).
    """
    if pd.api.types.is_bool_dtype(column.dtype):
        raise DataError(f"{shown}: time column {name!r} should hold timestamps or numbers, but holds true/false values")
    if _is_number_column(column):
        as_float = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(as_float)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "is empty" if np.isnan(as_float[row]) else f"holds {as_float[row]}"
            raise DataError(
                f"{shown}: time column {name!r} should hold a finite number in every row, "
                f"but row {start + row + 1} {what}"
            )
        # Plain int64 stays int64; nullable (extension) ints from Parquet become float64.
        return pd.Index(column.to_numpy() if isinstance(column.dtype, np.dtype) else as_float, name=name)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        parsed = column
    elif (parsed := _iso_times(column)) is not None:
        pass
    else:
        text = _cells_as_text(column)
        empty = text == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{shown}: {_missing_time(name, start + row)}")
        parsed = _to_datetimes(text, shown=shown, name=name, start=start)
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{shown}: time column {name!r} should hold timestamps, but row {start + row + 1} holds "
                f"{_show_value(text.iloc[row])}, which is not a date/time"
            )
    missing = parsed.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(f"{shown}: {_missing_time(name, start + row)}")
    return pd.DatetimeIndex(parsed, name=name)


def _iso_times(column: pd.Series) -> pd.Series | None:
    """A str column in which every cell is an ISO 8601 time, parsed in one go; else None.

    The fast path for the usual time column: it gives what the general path (strip the cells,
    then :func:`_to_datetimes`) gives, and leaves everything else (empty cells, other formats,
    mixed UTC offsets) to it.
    """
    if not isinstance(column.dtype, pd.StringDtype) or column.isna().any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(column, format="ISO8601")  # surrounding blanks are allowed
        except (ValueError, TypeError, OverflowError):
            return None
    if not pd.api.types.is_datetime64_any_dtype(parsed.dtype) or parsed.isna().any():
        return None
    return parsed


def _missing_time(name: str, row: int) -> str:
    return f"time column {name!r} should hold a timestamp in every row, but row {row + 1} is empty"


def _to_datetimes(text: pd.Series, *, shown: str = "", name: str = "", start: int = 0) -> pd.Series:
    """Parse text cells to datetimes; NaT where a cell is not a date/time.

    ISO 8601 first (fast, unambiguous); ``format="mixed"`` (per element) only if that leaves
    cells unparsed. Mixed UTC offsets (typically a DST change) are converted to UTC.
    """
    result: pd.Series | None = None
    for fmt in ("ISO8601", "mixed"):
        with warnings.catch_warnings():
            # Both formats are explicit, but dateutil fallbacks can still warn (e.g. dayfirst).
            warnings.simplefilter("ignore", UserWarning)
            try:
                result = pd.to_datetime(text, format=fmt, errors="coerce")
            except (ValueError, TypeError):
                # Raised for mixed time zones, even with errors="coerce".
                result = _to_utc(text, fmt, shown, name, start=start)
        if not result.isna().any():
            break
    assert result is not None
    return result


def _to_utc(text: pd.Series, fmt: str, shown: str, name: str, *, start: int = 0) -> pd.Series:
    has_zone = text.str.contains(_TZ_SUFFIX, regex=True)
    if has_zone.any() and not has_zone.all():
        row = int(np.flatnonzero(~has_zone.to_numpy())[0])
        raise DataError(
            f"{shown}: time column {name!r} should use time zones consistently, but row {start + row + 1} "
            f"holds {_show_value(text.iloc[row])} without one while other rows have one"
        )
    try:
        result = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{shown}: time column {name!r} should hold timestamps, but they cannot be parsed: {_condense(err)}"
        ) from None
    if name:
        logger.info("%s: time column %r mixes UTC offsets; converted the timestamps to UTC", shown, name)
    return result


def _check_unique_times(index: pd.Index, shown: str, name: str) -> None:
    duplicated = index.duplicated(keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        first = int(np.flatnonzero(index == index[row])[0])
        raise _repeated_time_error(shown, name, row, index[row], first)


def _repeated_time_error(shown: str, name: str, row: int, value: object, first: int) -> DataError:
    """Row ``row`` (0-based file position) repeats ``value`` from row ``first``."""
    return DataError(
        f"{shown}: time column {name!r} should hold unique times, but row {row + 1} repeats "
        f"{value} from row {first + 1}"
    )


def _ascending_order(index: pd.Index, shown: str, name: str) -> np.ndarray | None:
    """The stable sorting permutation of shape (L,), or None when already ascending."""
    if index.is_monotonic_increasing:
        return None
    order = np.asarray(index.argsort(kind="stable"))  # on the int64 values, also for tz-aware times
    moved = int((order != np.arange(len(order))).sum())
    logger.info("%s: %d row(s) of time column %r were out of order; sorted ascending", shown, moved, name)
    return order


# --------------------------------------------------------------------------------------------
# Labels and features
# --------------------------------------------------------------------------------------------


def _parse_labels(column: pd.Series, shown: str, name: str, *, start: int = 0) -> np.ndarray:
    """The label column as a bool ndarray of shape (L,); ``start`` as for :func:`_parse_time`."""
    expected = f"label column {name!r} should hold 0/1 or true/false in every row"
    if pd.api.types.is_bool_dtype(column.dtype):
        missing = column.isna().to_numpy()
        if missing.any():
            raise DataError(f"{shown}: {expected}, but row {start + int(np.flatnonzero(missing)[0]) + 1} is empty")
        return column.to_numpy(dtype=bool)
    text = _cells_as_text(column).str.lower()
    is_true = text.isin(_LABEL_TRUE).to_numpy()
    bad = ~(is_true | text.isin(_LABEL_FALSE).to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        found = "is empty" if text.iloc[row] == "" else f"holds {_show_value(column.iloc[row])}"
        raise DataError(f"{shown}: {expected}, but row {start + row + 1} {found}")
    return is_true


def _auto_features(raw: pd.DataFrame, shown: str, exclude: set[str | None]) -> list[str]:
    """Numeric columns in file order, applying the mostly-numeric-means-numeric rule to text."""
    features = []
    for name in raw.columns:
        name = str(name)
        if name in exclude:
            continue
        column = raw[name]
        if pd.api.types.is_bool_dtype(column.dtype):
            logger.info("%s: column %r holds true/false values; a feature only when named in columns", shown, name)
            continue
        if pd.api.types.is_datetime64_any_dtype(column.dtype) or pd.api.types.is_timedelta64_dtype(column.dtype):
            logger.info("%s: column %r holds times; not used as a feature", shown, name)
            continue
        if not _is_number_column(column):
            text = _cells_as_text(column)
            present = text != ""
            numeric = pd.to_numeric(text.where(present), errors="coerce").notna()
            if present.sum() == 0 or numeric.sum() < 0.5 * present.sum():
                logger.info("%s: column %r holds text; not used as a feature", shown, name)
                continue
            # Mostly numbers: the text cells are probably typos, not a text column, so the column
            # stays a feature and _feature_values reports its first text cell.
        if name.strip().lower() in _LABEL_LIKE_NAMES:
            logger.warning(
                "%s: column %r looks like anomaly labels but is used as a feature; pass label_col=%r if it is",
                shown,
                name,
                name,
            )
        features.append(name)
    return features


def _feature_values(
    column: pd.Series,
    shown: str,
    name: str,
    *,
    explicit: bool,
    start: int = 0,
    partial: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """A feature column as float64 of shape (L,), NaN where missing; DataError on text or ±inf.

    ``start`` as for :func:`_parse_time`. ``partial``: the column is one chunk of a longer file,
    so a chunk of only empty cells is allowed and text cells are counted in this chunk only.
    ``out``: a float64 array of shape (L,) to write the values to (and return), instead of a new one.
    """
    if pd.api.types.is_bool_dtype(column.dtype):
        if column.isna().any():
            values = column.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = column.to_numpy(dtype=np.float64)
    elif _is_number_column(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    elif pd.api.types.is_datetime64_any_dtype(column.dtype):
        raise DataError(f"{shown}: column {name!r} should be numeric, but it holds timestamps")
    else:
        text = _cells_as_text(column)
        present = text != ""
        numeric = pd.to_numeric(text.where(present), errors="coerce")
        _raise_first_text_cell(
            text, present & numeric.isna(), shown, name, mostly=not explicit, start=start, partial=partial
        )
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    if out is None:
        values = np.array(values, dtype=np.float64)  # own, writable copy: gaps are filled in place
    else:
        out[...] = values
        values = out
    infinite = np.isinf(values)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(
            f"{shown}: column {name!r} should hold finite numbers, but row {start + row + 1} holds {values[row]}"
        )
    if not partial and np.isnan(values).all():
        raise _all_empty_error(shown, name)
    return values


def _all_empty_error(shown: str, name: str) -> DataError:
    return DataError(f"{shown}: column {name!r} should hold numbers, but every cell is empty")


def _raise_first_text_cell(
    text: pd.Series, bad: pd.Series, shown: str, name: str, *, mostly: bool, start: int = 0, partial: bool = False
) -> None:
    if not bad.any():
        return
    row = int(np.flatnonzero(bad.to_numpy())[0])
    count = int(bad.sum())
    scope = f"in rows {start + 1}-{start + len(text)}" if partial else "in all"
    extra = f" ({count} text cells {scope})" if count > 1 else ""
    why = "mostly numbers and " if mostly else ""
    raise DataError(
        f"{shown}: column {name!r} should be numeric ({why}used as a feature), but row {start + row + 1} holds "
        f"{_show_value(text.iloc[row])}{extra}"
    )


# --------------------------------------------------------------------------------------------
# Gaps
# --------------------------------------------------------------------------------------------


def _nan_runs(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths, each of shape (R,), of the runs of True in a bool array of shape (L,)."""
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return starts, ends - starts


def _fill_gaps(values: np.ndarray, max_gap: int) -> int:
    """Interpolate runs of at most ``max_gap`` NaN in ``values`` (shape (L, D)) in place.

    Interpolation is linear in position, not in time: windows see steps, not seconds. Leading
    and trailing runs take the nearest value (which ``np.interp`` does at the ends). Longer runs
    are left NaN: filling them would invent data the detector would then vouch for.

    Returns
    -------
    int
        How many values were filled.
    """
    positions = np.arange(len(values))
    filled = 0
    for j in range(values.shape[1]):
        missing = np.isnan(values[:, j])
        if not missing.any():
            continue
        starts, lengths = _nan_runs(missing)
        short = np.zeros(len(values), dtype=bool)
        for start, length in zip(starts, lengths):
            if length <= max_gap:
                short[start : start + length] = True
        if short.any():
            values[short, j] = np.interp(positions[short], positions[~missing], values[~missing, j])
            filled += int(short.sum())
    return filled


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
        raise DataError(f"{shown}: option resample should be a frequency like '5min' or '1h', but got {rule!r}") from None
    binned = pd.DataFrame(values, index=time_index).resample(offset)
    means = binned.mean()
    if labels is not None:
        # A bin is anomalous when any row in it is; an empty bin holds no labelled row.
        per_bin = pd.Series(labels.astype(np.float64), index=time_index).resample(offset).max()
        labels = per_bin.reindex(means.index).fillna(0.0).to_numpy() > 0
    logger.info("%s: resampled %d rows to %d at %s", shown, len(values), len(means), offset.freqstr)
    # A writable copy: gap filling works in place, and pandas' copy-on-write arrays are read-only.
    return means.to_numpy(dtype=np.float64, copy=True), means.index.rename(time_index.name), labels


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _shown(path: str | os.PathLike) -> str:
    """The path as the user gave it, for messages."""
    try:
        return os.fspath(path) if not isinstance(path, bytes) else os.fsdecode(path)
    except TypeError:
        return repr(path)


def _is_number_column(column: pd.Series) -> bool:
    """int/float (not bool, not complex) dtype."""
    dtype = column.dtype
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _cells_as_text(column: pd.Series) -> pd.Series:
    """Cells as stripped str, "" for missing ones, shape (L,)."""
    if isinstance(column.dtype, pd.StringDtype):
        # Already str: skip the per-cell str() (a third of the time for a long time column).
        text = pd.Series(column.to_numpy(dtype=object, na_value=""), index=column.index)
    else:
        text = column.astype(object).where(column.notna(), "").map(str)
    return text.str.strip()


def _show_value(value: object) -> str:
    """A cell value for a message: quoted, one line, at most ~40 characters."""
    text = repr(str(value).strip())
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 4] + "...'"


def _list_names(names: Sequence[object]) -> str:
    names = [str(name) for name in names]
    shown = ", ".join(repr(name) for name in names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        shown += f", ... ({len(names) - _MAX_LISTED_COLUMNS} more)"
    return shown


def _did_you_mean(name: str, available: list[str]) -> str:
    folded = {candidate.lower(): candidate for candidate in available}
    if name.lower() in folded:
        return f" (did you mean {folded[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, available, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe_columns(raw: pd.DataFrame, time_col: str | None, label_col: str | None) -> str:
    """e.g. "'time' (time), 'name' (text)", for the no-feature message."""
    parts = []
    for name in list(raw.columns)[:_MAX_LISTED_COLUMNS]:
        column = raw[name]
        if name == time_col:
            kind = "time"
        elif name == label_col:
            kind = "labels"
        elif pd.api.types.is_bool_dtype(column.dtype):
            kind = "true/false"
        elif _is_number_column(column):
            kind = "numeric"
        elif pd.api.types.is_datetime64_any_dtype(column.dtype):
            kind = "timestamps"
        else:
            kind = "text"
        parts.append(f"{str(name)!r} ({kind})")
    if len(raw.columns) > _MAX_LISTED_COLUMNS:
        parts.append(f"... ({len(raw.columns) - _MAX_LISTED_COLUMNS} more)")
    return ", ".join(parts)


def _condense(err: BaseException) -> str:
    """An exception's message on one line, never empty."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _os_reason(err: OSError, *, with_file: bool = True) -> str:
    """e.g. "permission denied (data/x.csv)", one line."""
    reason = (err.strerror or _condense(err)).lower()
    return f"{reason} ({err.filename})" if with_file and err.filename else reason


def _mode_for(target: Path) -> int:
    """Permissions for the new file: those of the file it replaces, else 0666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Reading the umask via os.umask briefly changes it for all threads; Linux shows it in /proc.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_path(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself; best effort (not possible on Windows and some filesystems)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as err:
        logger.warning("could not remove the temporary file %s: %s", path, err)
