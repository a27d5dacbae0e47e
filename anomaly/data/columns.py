"""Column roles and cell parsing: which column is the time, the labels, the features, and their values.

The one place where columns get their roles (:func:`choose_roles`) and where cells become
numbers, labels and times, with a one-line :class:`~anomaly.errors.DataError` naming the file,
the column, the row, what was expected and what was found. :mod:`anomaly.data.reading` applies
these to every chunk of the input, whether it is streamed or read whole.

One time rule (:class:`TimeColumn`): timezone-aware times become UTC, in every chunk and in a
file read whole, so that a file whose UTC offsets change (a daylight-saving change) gives the
same timestamps to training and to scoring.

Row numbers in messages are 1-based data rows: "row 1" is the first row after the header (for
Parquet, the first row of the table), always counted in file order, also after sorting by time.
"""

from __future__ import annotations

import datetime
import difflib
import logging
import numbers
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from anomaly.data.formats import condense, list_names, show_value
from anomaly.errors import DataError

logger = logging.getLogger(__name__)

_TIME_NAMES = frozenset({"time", "timestamp", "datetime", "date", "ts", "time_stamp", "step"})
# time_col "none" (any case, unless a column has that very name): no time column, not even a
# detected one; the rows are read in file order. The way out where a column named like times
# holds something else (a "Time" of seconds that repeat, as in some transaction files).
NO_TIME_COLUMN = "none"
# Names that suggest a column holds labels: such a column of 0/1 is not an automatic feature, and
# one of other values is a feature with a warning. (SKAB's files carry anomaly and changepoint,
# SMD's here anomaly, TSB-AD's Label.)
_LABEL_LIKE_NAMES = frozenset({"label", "labels", "anomaly", "is_anomaly", "anomalous", "changepoint", "target"})
_MAX_LISTED_COLUMNS = 10
# What the ``columns`` option is when the user named the features (a model's features, when
# scoring, are named for the caller with another role).
USER_COLUMNS_ROLE = "columns entry"
# pandas's name for a column whose header cell is empty: where `DataFrame.to_csv()` (or R's
# write.csv) saved the row index, or row names, as a nameless first column.
_NAMELESS_HEADER = re.compile(r"Unnamed: \d+")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$")
_LABEL_TRUE = frozenset({"1", "1.0", "true"})
_LABEL_FALSE = frozenset({"0", "0.0", "false"})


class UnsortedError(DataError):
    """Rows arrive out of time order: a stream cannot be sorted (a file can be read whole instead).

    Repeated times are a plain :class:`~anomaly.errors.DataError`, as in ``read_series``.
    """


class DateOrderError(UnsortedError):
    """A stream's first dates fit day-first and month-first, and a later one settles it the other
    way than the first rows were read: a file can be read whole instead, with every date seen."""


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def check_max_gap(max_gap: object, shown: str) -> int:
    if isinstance(max_gap, bool) or not isinstance(max_gap, numbers.Integral):
        raise DataError(f"{shown}: option max_gap should be a whole number >= 0, but got {max_gap!r}")
    if max_gap < 0:
        raise DataError(f"{shown}: option max_gap should be >= 0, but got {int(max_gap)}")
    return int(max_gap)


def check_columns_option(columns: Sequence[str] | None, shown: str, option: str = "columns") -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        # A bare string would be read as a list of one-letter column names.
        raise DataError(f"{shown}: option {option} should be a list of column names, but got the string {columns!r}")
    names = list(columns)
    if not names:
        raise DataError(f"{shown}: option {option} should name at least one column, but it is empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(f"{shown}: option {option} should name each column once, but {name!r} appears twice")
        seen.add(name)
    return names


def check_chunk_rows(chunk_rows: object, shown: str) -> int:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise DataError(f"{shown}: option chunk_rows should be a whole number >= 1, but got {chunk_rows!r}")
    return int(chunk_rows)


# --------------------------------------------------------------------------------------------
# Column roles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Roles:
    """What each column of the input is, chosen once from the first rows.

    Attributes
    ----------
    time_col, label_col : str or None
    features : list of str
        The D feature columns, in order.
    unused : tuple of str
        Columns that are neither features nor the time or label column.
    explicit : bool
        Whether the features were named (``columns``) rather than detected.
    time_detected : bool
        Whether the time column was found by its name or content rather than named.
    numeric : frozenset of str
        Features that are not true/false in the sample: a later chunk of only true/false cells
        in one of them is reported as text, as it would be in the whole column.
    """

    time_col: str | None
    label_col: str | None
    features: list[str]
    unused: tuple[str, ...]
    explicit: bool
    numeric: frozenset[str]
    time_detected: bool = False
    text: tuple[tuple[str, str], ...] = ()  # columns found holding text, each with its first cell


def choose_roles(
    sample: pd.DataFrame,
    shown: str,
    *,
    time_col: str | None,
    label_col: str | None,
    columns: list[str] | None,
    columns_role: str = USER_COLUMNS_ROLE,
    exclude_columns: list[str] | None = None,
) -> Roles:
    """Check the named columns and detect the others' roles from ``sample`` (C columns).

    The time column, when not named, is the first column named time, timestamp, datetime, date,
    ts, time_stamp or step (any case), else the first column when it is text that parses as
    datetimes, else none. The features, when not named, are every numeric column other than the
    time and label columns, in file order; a text column that is mostly numbers stays a feature
    (its text cells are then reported as errors). ``exclude_columns`` are left out of the
    detected features and are never detected as the time column.
    """
    available = [str(name) for name in sample.columns]
    no_time = time_col is not None and time_col.lower() == NO_TIME_COLUMN and time_col not in available
    if no_time:
        time_col = None
    _check_named_columns(
        shown,
        available,
        time_col=time_col,
        label_col=label_col,
        columns=columns,
        columns_role=columns_role,
        exclude_columns=exclude_columns,
    )
    excluded = _check_excluded_columns(
        shown, exclude_columns, time_col=time_col, label_col=label_col, columns=columns, columns_role=columns_role
    )
    detected = False
    if time_col is None and not no_time:
        time_col = detect_time_column(sample, exclude={label_col, *(columns or []), *excluded}, shown=shown)
        detected = time_col is not None
        if detected:
            logger.info("%s: using column %r as the time column", shown, time_col)
    text: list[tuple[str, str]] = []
    features = list(columns) if columns is not None else _auto_features(sample, shown, {time_col, label_col, *excluded}, text)
    if not features:
        numeric_excluded = [name for name in sample.columns if name in excluded and _is_number_column(sample[name])]
        if numeric_excluded:
            listed = ", ".join(repr(name) for name in numeric_excluded[:_MAX_LISTED_COLUMNS])
            raise DataError(
                f"{shown}: expected at least one numeric feature column, but exclude_columns leaves out every one ({listed})"
            )
        raise DataError(
            f"{shown}: expected at least one numeric feature column, but found only "
            f"{_describe_columns(sample, time_col, label_col)}"
        )
    used = {time_col, label_col, *features}
    return Roles(
        time_col=time_col,
        label_col=label_col,
        features=features,
        unused=tuple(name for name in available if name not in used),
        explicit=columns is not None,
        time_detected=detected,
        numeric=frozenset(name for name in features if not pd.api.types.is_bool_dtype(sample[name].dtype)),
        text=tuple(text),
    )


# The CLI option that sets each role, for messages that reach both Python and the command line.
_ROLE_OPTIONS = {
    "time_col": "--time-col",
    "label_col": "--label-col",
    USER_COLUMNS_ROLE: "--columns",
    "exclude_columns entry": "--exclude-columns",
}


def _check_named_columns(
    shown: str,
    available: list[str],
    *,
    time_col: str | None,
    label_col: str | None,
    columns: list[str] | None,
    columns_role: str = USER_COLUMNS_ROLE,
    exclude_columns: list[str] | None = None,
) -> None:
    """Every explicitly named column must exist, and no column may play two roles."""
    named = [("time_col", time_col), ("label_col", label_col)] + [(columns_role, name) for name in columns or []]
    named += [("exclude_columns entry", name) for name in exclude_columns or []]
    for role, name in named:
        if name is not None and name not in available:
            option = _ROLE_OPTIONS.get(role)
            raise DataError(
                f"{shown}: {role} {name!r}{f' ({option})' if option else ''} is not a column of the file"
                f"{_did_you_mean(name, available)}; "
                f"available columns: {list_names(available)}"
            )
    if time_col is not None and time_col == label_col:
        raise DataError(f"{shown}: time_col and label_col should differ, but both are {time_col!r}")
    for option, name in (("time_col", time_col), ("label_col", label_col)):
        if name is not None and columns is not None and name in columns:
            if columns_role != USER_COLUMNS_ROLE:  # the features are the model's, not an option
                raise DataError(f"{shown}: option {option} should name a column other than {columns_role}s, but {name!r} is one")
            raise DataError(f"{shown}: option columns should list feature columns only, but {name!r} is the {option}")


def _check_excluded_columns(
    shown: str,
    exclude_columns: list[str] | None,
    *,
    time_col: str | None,
    label_col: str | None,
    columns: list[str] | None,
    columns_role: str,
) -> set[str]:
    """The ``exclude_columns`` (each a column of the file, see :func:`_check_named_columns`) as a
    set, once none of them plays a named role.

    With the features named by the caller (a model's, when scoring) rather than the user, the
    exclusions only keep their columns from being taken as the time column."""
    if exclude_columns is None:
        return set()
    if columns is not None and columns_role == USER_COLUMNS_ROLE:
        raise DataError(f"{shown}: give either option columns or option exclude_columns, not both")
    for name in exclude_columns:
        for option, named in (("time_col", time_col), ("label_col", label_col)):
            if name == named:
                raise DataError(f"{shown}: option exclude_columns should list other columns, but {name!r} is the {option}")
        if columns is not None and name in columns:
            raise DataError(f"{shown}: option exclude_columns should list other columns, but {name!r} is {columns_role}")
    return set(exclude_columns)


def detect_time_column(raw: pd.DataFrame, exclude: set[str | None], shown: str = "") -> str | None:
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
        parsed, _ = _to_datetimes(present, shown=shown, name=first)
    except DataError:
        return None
    return first if parsed.notna().all() else None


def _auto_features(raw: pd.DataFrame, shown: str, exclude: set[str | None], text_found: list[tuple[str, str]]) -> list[str]:
    """Numeric columns in file order, applying the mostly-numeric-means-numeric rule to text.

    The columns left out as text are appended to ``text_found`` with their first cell."""
    features = []
    for name in raw.columns:
        name = str(name)
        if name in exclude:
            continue
        column = raw[name]
        if _NAMELESS_HEADER.fullmatch(name) and (_cells_as_text(column) == "").all():
            # What a delimiter at the end of every line makes (a spreadsheet's export): no column.
            logger.info(
                "%s: column %r has no name in the header and no values (a delimiter ends every line?), so it is left out",
                shown,
                name,
            )
            continue
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
                if present.any():
                    text_found.append((name, str(text[present].iloc[0])))
                continue
            # Mostly numbers: the text cells are probably typos, not a text column, so the column
            # stays a feature and feature_values reports its first text cell.
        if _NAMELESS_HEADER.fullmatch(name) and _counts_rows(column):
            # A saved row index taken as a feature would be learned as a ramp: a scored file
            # saved with its own index (restarting at 0) or without one would not fit the model.
            logger.warning(
                "%s: column %r has no name in the header and counts the rows (%d, %d, ...), like a saved row "
                "index, so it is not used as a feature (name it in --columns to use it)",
                shown,
                name,
                column.iloc[0],
                column.iloc[1],
            )
            continue
        if name.strip().lower() in _LABEL_LIKE_NAMES:
            if _holds_only_zeros_and_ones(column):
                # Labels taken as a feature would be learned as a constant 0 and then flag
                # exactly the labelled rows: a leak, not a detection.
                logger.warning(
                    "%s: column %r holds only 0/1 and is named like anomaly labels, so it is not used as a "
                    "feature (--label-col %s uses it as labels, --columns naming it as a feature)",
                    shown,
                    name,
                    name,
                )
                continue
            logger.warning(
                "%s: column %r looks like anomaly labels but is used as a feature; --label-col %s if it is",
                shown,
                name,
                name,
            )
        features.append(name)
    return features


# Which label-like column holds the labels when a file has several (SKAB's files carry anomaly
# and changepoint): the anomaly labels before the change points.
_LABEL_PRIORITY = ("label", "labels", "is_anomaly", "anomaly", "anomalous", "target", "changepoint")


def find_label_column(sample: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The column of ``sample`` that holds anomaly labels, when none is named.

    A label column is named like labels (label, labels, anomaly, is_anomaly, anomalous,
    changepoint or target, any case) and holds only 0/1 or true/false in the sample.

    Returns
    -------
    found : str or None
        The first such column by name (label before anomaly before changepoint), or None.
    others : list of str
        The other such columns, which were not chosen.
    """
    candidates = [
        str(name)
        for name in sample.columns
        if str(name).strip().lower() in _LABEL_LIKE_NAMES
        and (pd.api.types.is_bool_dtype(sample[name].dtype) or _holds_only_zeros_and_ones(sample[name]))
    ]
    candidates.sort(key=lambda name: _LABEL_PRIORITY.index(name.strip().lower()))
    return (candidates[0], candidates[1:]) if candidates else (None, [])


def label_like_columns(sample: pd.DataFrame) -> list[str]:
    """The columns of ``sample`` named like labels, whatever they hold (for messages)."""
    return [str(name) for name in sample.columns if str(name).strip().lower() in _LABEL_LIKE_NAMES]


def _counts_rows(column: pd.Series) -> bool:
    """Whether a sample column holds whole numbers that rise by exactly 1 from row to row (at least two)."""
    if not _is_number_column(column) or len(column) < 2:
        return False
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable Int64 from Parquet included
    return bool(np.isfinite(values).all() and (values == np.round(values)).all() and (np.diff(values) == 1).all())


def _holds_only_zeros_and_ones(column: pd.Series) -> bool:
    """Whether every non-missing cell of a sample column is 0 or 1 (as a number or as text)."""
    text = _cells_as_text(column)
    text = text[text != ""]
    return not text.empty and bool(text.isin(_LABEL_TRUE | _LABEL_FALSE).all())


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


def _did_you_mean(name: str, available: list[str]) -> str:
    folded = {candidate.lower(): candidate for candidate in available}
    if name.lower() in folded:
        return f" (did you mean {folded[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, available, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------
# Time column
# --------------------------------------------------------------------------------------------


class TimeColumn:
    """The time column, chunk by chunk: parsed by one rule, of one kind, and in order.

    Timezone-aware times become UTC, also when the offsets change within the file, so that a
    chunk holds the same times whether the file is streamed or read whole. Every chunk is made
    like the first one (timestamps or numbers, the first chunk's unit and integer dtype where
    the values allow). Streamed (``ordered``), the times must increase strictly from row to
    row and across chunks; read whole (to be sorted), they must only be unique.

    Parameters
    ----------
    shown : str
        The input's name in messages.
    name : str
        The time column.
    ordered : bool
        Whether rows must arrive in increasing time (a stream) or may be sorted afterwards.
    detected : bool
        Whether the column was found by its name or content (not named): its errors then say
        how to read the file without a time column.
    """

    def __init__(self, shown: str, name: str, *, ordered: bool = True, detected: bool = False) -> None:
        self._shown = shown
        self._name = name
        self._ordered = ordered
        self._detected = detected
        self._first: pd.Index | None = None  # an empty index of the first chunk's kind
        self._format: str | None = None  # the first chunk's strftime format, for every later one
        self.notes: list[str] = []  # what the user should know about how the times were read
        self._last: Any = None
        self._last_row = -1

    def parse(self, column: pd.Series, start: int) -> pd.Index:
        """A chunk's raw time column (n,) as a checked Index of shape (n,); its first row is at ``start``."""
        try:
            return self._parse(column, start)
        except DataError as err:
            if not self._detected:
                raise
            hint = (
                f" ({self._name!r} was taken as the time column; to read the rows in file order, without times: "
                f"--exclude-columns {self._name} (exclude_columns) leaves it out, --time-col {NO_TIME_COLUMN} "
                f"(time_col={NO_TIME_COLUMN!r}) keeps it as a feature)"
            )
            raise type(err)(f"{err}{hint}") from None

    def _parse(self, column: pd.Series, start: int) -> pd.Index:
        first = self._first
        if (
            isinstance(first, pd.DatetimeIndex)
            and not pd.api.types.is_datetime64_any_dtype(column.dtype)
            and not pd.api.types.is_string_dtype(column.dtype)
        ):
            # A chunk in which pandas sees only numbers or only empty cells (e.g. one row with an
            # empty time) is parsed, and reported on, as the whole column would be: as text.
            column = column.astype(object)
        index = arrow_times(column, self._name) if self._format is None else None
        if index is None:
            try:
                index, used = parse_time_as(column, self._shown, self._name, start=start, time_format=self._format)
            except DataError as err:
                self._check_date_order(column, err)
                raise
            if first is None and used is not None:
                self._format = used
                if "%d" in used and "%m" in used:  # numeric days and months: say which is which
                    self.notes.append(f"time column {self._name!r} read as {_date_order(used)} ({used})")
        index = self._harmonise(index, column, start)
        if self._ordered:
            self._check_increasing(index, start)
        else:
            duplicated = index.duplicated(keep="first")
            if duplicated.any():
                row = int(np.flatnonzero(duplicated)[0])
                first_row = int(np.flatnonzero(index == index[row])[0])
                raise _repeated_time_error(self._shown, self._name, start + row, index[row], start + first_row)
        return index

    def _check_date_order(self, column: pd.Series, err: DataError) -> None:
        """Raise :class:`DateOrderError` if the chunk that failed the first chunk's format fits
        that format with day and month swapped."""
        fmt = self._format
        if fmt is None or "%d" not in fmt or "%m" not in fmt:
            return
        swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
        text = _cells_as_text(column)
        if (text != "").all() and _parse_as(text, swapped, self._shown, self._name, 0).notna().all():
            raise DateOrderError(f"{err}; its earlier rows fit {_date_order(swapped)} too") from None

    def _check_increasing(self, index: pd.Index, start: int) -> None:
        values = index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy()
        if self._last is not None and not index[0] > self._last:
            self._raise(self._last_row, self._last, start, index[0])
        later = values[1:] > values[:-1]
        if not later.all():
            row = int(np.flatnonzero(~later)[0])
            self._raise(start + row, index[row], start + row + 1, index[row + 1])
        self._last = index[-1]
        self._last_row = start + len(index) - 1

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
                f"but row {start + 1} holds {show_value(column.iloc[0])}"
            )
        if isinstance(index, pd.DatetimeIndex):
            if (first.tz is None) != (index.tz is None):
                found, expected = ("without", "have one") if index.tz is None else ("with", "have none")
                raise DataError(
                    f"{self._shown}: time column {self._name!r} should use time zones consistently, but row "
                    f"{start + 1} holds {show_value(column.iloc[0])} {found} one while earlier rows {expected}"
                )
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


def parse_time(column: pd.Series, shown: str, name: str, *, start: int = 0) -> pd.Index:
    """The time column as a DatetimeIndex (UTC when the times have a zone) or a numeric Index.

    As :func:`parse_time_as`, with the text's format found from this column alone.
    """
    return parse_time_as(column, shown, name, start=start)[0]


def parse_time_as(
    column: pd.Series, shown: str, name: str, *, start: int = 0, time_format: str | None = None
) -> tuple[pd.Index, str | None]:
    """The time column as a DatetimeIndex (UTC when the times have a zone) or a numeric Index.

    Parameters
    ----------
    column : Series of shape (L,)
        Raw cells: text, numbers or datetimes.
    shown, name : str
        The input and the column, for messages.
    start : int, default 0
        The 0-based file position of the column's first cell, for row numbers in messages
        (nonzero when the column is a chunk of a longer file).
    time_format : str, optional
        The strftime format the file's earlier chunks were read with: text cells must follow
        it, so that a chunk of dates whose day is at most 12 is not read month-first after
        earlier ones were read day-first.

    Returns
    -------
    index : Index of shape (L,), named ``name``
        Timezone-aware times are converted to UTC: one zone for the whole file, however its
        offsets change from row to row or from chunk to chunk.
    time_format : str or None
        The strftime format the text was read with (:func:`_to_datetimes`); None for numbers,
        datetimes, ISO 8601 and text of mixed formats.
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
                f"{shown}: time column {name!r} should hold a finite number in every row, but row {start + row + 1} {what}"
            )
        # Plain int64 stays int64; nullable (extension) ints from Parquet become float64.
        return pd.Index(column.to_numpy() if isinstance(column.dtype, np.dtype) else as_float, name=name), None
    used = None
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        parsed = column
    elif time_format is None and (parsed := _iso_times(column)) is not None:
        pass
    else:
        text = _cells_as_text(column)
        empty = text == ""
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{shown}: {_missing_time(name, start + row)}")
        parsed, used = _to_datetimes(text, shown=shown, name=name, start=start, time_format=time_format)
        if time_format is None:
            _check_has_date(text.iloc[0], shown, name)
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            expected = f"a date/time in the format of the rows before ({time_format})" if time_format else "a date/time"
            raise DataError(
                f"{shown}: time column {name!r} should hold timestamps, but row {start + row + 1} holds "
                f"{show_value(text.iloc[row])}, which is not {expected}"
            )
    missing = parsed.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(f"{shown}: {_missing_time(name, start + row)}")
    index = pd.DatetimeIndex(parsed, name=name)
    return (index.tz_convert("UTC") if index.tz is not None else index), used


def _check_has_date(cell: str, shown: str, name: str) -> None:
    """Refuse times without a date or a year (``23:00``, ``31-Dec 22:00``).

    pandas fills in what a time leaves out, today's date or the year 1900 or 1: a night's
    readings from 23:00 to 08:59 would be sorted into one day, their dates changing with the
    day the file is read. Read with two defaults, a cell without those fields reads as two times.
    """
    from dateutil import parser

    try:
        one = parser.parse(cell, default=datetime.datetime(2000, 1, 1))
        other = parser.parse(cell, default=datetime.datetime(2001, 2, 2))
    except (ValueError, OverflowError):
        return  # not dateutil's to read: the format pandas found stands
    missing = "date" if one.month != other.month and one.day != other.day else "year" if one.year != other.year else None
    if missing:
        raise DataError(
            f"{shown}: time column {name!r} should hold dates with their years, but row 1 holds {show_value(cell)}, "
            f"a time without a {missing} (the rows' order across {missing}s is unknown): write the {missing} in, "
            f"or read the rows in file order with --time-col none"
        )


def arrow_times(column: pd.Series, name: str) -> pd.DatetimeIndex | None:
    """Plain ISO 8601 times without zone, parsed by pyarrow; None for anything else.

    The fast path for the usual time column, several times faster than pandas' parser. Arrow
    accepts a subset of what :func:`parse_time` accepts (``YYYY-MM-DD``, then
    optionally ``[T ]hh[:mm[:ss[.ffffff]]]``, all cells present, no blanks, no zone) and gives
    the same times there; everything else, errors included, is left to ``parse_time``.

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


def _to_datetimes(
    text: pd.Series, *, shown: str = "", name: str = "", start: int = 0, time_format: str | None = None
) -> tuple[pd.Series, str | None]:
    """Parse text cells to datetimes; NaT where a cell is not a date/time.

    ISO 8601 first (fast, unambiguous); then one strftime format for every cell
    (:func:`_one_format`, or ``time_format`` when given); ``format="mixed"`` (per element)
    only if no single format reads every cell. Mixed UTC offsets (typically a DST change) are
    converted to UTC.

    Returns
    -------
    parsed : Series of shape (L,), datetimes
    time_format : str or None
        The strftime format used, or None (ISO 8601, or per element).
    """
    if time_format is not None:
        return _parse_as(text, time_format, shown, name, start), time_format
    parsed = _parse_as(text, "ISO8601", shown, name, start)
    if not parsed.isna().any():
        return parsed, None
    found = _one_format(text, shown, name, start)
    if found is not None:
        return found
    return _parse_as(text, "mixed", shown, name, start), None


def _parse_as(text: pd.Series, fmt: str, shown: str, name: str, start: int) -> pd.Series:
    """``text`` parsed with ``fmt``, NaT where a cell does not fit it."""
    with warnings.catch_warnings():
        # The formats are explicit, but dateutil fallbacks can still warn (e.g. dayfirst).
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(text, format=fmt, errors="coerce")
        except (ValueError, TypeError):
            # Raised for mixed time zones, even with errors="coerce".
            return _to_utc(text, fmt, shown, name, start=start)


def _one_format(text: pd.Series, shown: str, name: str, start: int) -> tuple[pd.Series, str] | None:
    """The cells read with one strftime format that fits all of them, and that format; or None.

    The format is guessed from the first cell month-first and day-first (they differ for
    ``02/01/2026``). Reading each cell on its own would take ``02/01`` as February and
    ``13/01`` as January 13 within one file, scrambling the series. Where both formats fit
    every cell, the one under which the times step most evenly is taken (``01/02``,
    ``02/02``, ... hourly rows read month-first jump a month at midnight); month-first, as
    pandas reads such dates, on a tie.
    """
    from pandas.tseries.api import guess_datetime_format

    first = str(text.iloc[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        guesses = (guess_datetime_format(first), guess_datetime_format(first, dayfirst=True))
    fits = {}
    for fmt in dict.fromkeys(guess for guess in guesses if guess):
        parsed = _parse_as(text, fmt, shown, name, start)
        if not parsed.isna().any():
            fits[fmt] = parsed
    if not fits:
        return None
    fmt = min(fits, key=lambda candidate: _unevenness(fits[candidate]))  # the first on a tie
    if len(fits) > 1:
        logger.info("%s: time column %r reads as dates in either order; took %s, whose times step more evenly", shown, name, fmt)
    return fits[fmt], fmt


def _date_order(fmt: str) -> str:
    """The order of a strftime format's date fields, as ``day/month/year``."""
    fields = {"%d": "day", "%m": "month", "%Y": "year", "%y": "year"}
    order = sorted((fmt.find(code), field) for code, field in fields.items() if code in fmt)
    return "/".join(field for _, field in order)


def _unevenness(times: pd.Series) -> tuple[int, int]:
    """How unevenly ``times`` (L,) step: (steps that do not go forward, distinct step lengths)."""
    steps = np.diff(pd.DatetimeIndex(times).asi8)
    return int(np.sum(steps <= 0)), len(np.unique(steps))


def _to_utc(text: pd.Series, fmt: str, shown: str, name: str, *, start: int = 0) -> pd.Series:
    has_zone = text.str.contains(_TZ_SUFFIX, regex=True)
    if has_zone.any() and not has_zone.all():
        row = int(np.flatnonzero(~has_zone.to_numpy())[0])
        raise DataError(
            f"{shown}: time column {name!r} should use time zones consistently, but row {start + row + 1} "
            f"holds {show_value(text.iloc[row])} without one while other rows have one"
        )
    try:
        result = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{shown}: time column {name!r} should hold timestamps, but they cannot be parsed: {condense(err)}"
        ) from None
    if name:
        logger.info("%s: time column %r mixes UTC offsets; converted the timestamps to UTC", shown, name)
    return result


def _repeated_time_error(shown: str, name: str, row: int, value: object, first: int) -> DataError:
    """Row ``row`` (0-based file position) repeats ``value`` from row ``first``."""
    return DataError(
        f"{shown}: time column {name!r} should hold unique times, but row {row + 1} repeats {value} from row {first + 1}"
    )


# --------------------------------------------------------------------------------------------
# Labels and features
# --------------------------------------------------------------------------------------------


def parse_labels(column: pd.Series, shown: str, name: str, *, start: int = 0) -> np.ndarray:
    """The label column as a bool ndarray of shape (L,); ``start`` as for :func:`parse_time`."""
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
        found = "is empty" if text.iloc[row] == "" else f"holds {show_value(column.iloc[row])}"
        raise DataError(f"{shown}: {expected}, but row {start + row + 1} {found}")
    return is_true


def feature_values(
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

    ``start`` as for :func:`parse_time`. ``partial``: the column is one chunk of a longer file,
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
        _raise_first_text_cell(text, present & numeric.isna(), shown, name, mostly=not explicit, start=start, partial=partial)
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    if out is None:
        values = np.array(values, dtype=np.float64)  # own, writable copy: gaps are filled in place
    else:
        out[...] = values
        values = out
    infinite = np.isinf(values)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(f"{shown}: column {name!r} should hold finite numbers, but row {start + row + 1} holds {values[row]}")
    if not partial and np.isnan(values).all():
        raise all_empty_error(shown, name)
    return values


def all_empty_error(shown: str, name: str) -> DataError:
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
    cell = text.iloc[row]
    # Decimal commas are told from the first 50 data lines; a file whose commas start later reads them as text.
    hint = (
        ": a decimal comma? The decimal mark is taken from the first 50 data lines; write them with points"
        if _DECIMAL_COMMA_CELL.match(cell)
        else ""
    )
    raise DataError(
        f"{shown}: column {name!r} should be numeric ({why}used as a feature), but row {start + row + 1} holds "
        f"{show_value(cell)}{extra}{hint}"
    )


_DECIMAL_COMMA_CELL = re.compile(r"^[+-]?\d+,\d+$")


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
