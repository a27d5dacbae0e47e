"""Tests for anomaly.data.reading: gaps, sorting, resampling, chunks that add up to read_series,
time order, errors, stdin, memory, and reading that only ever raises DataError (fuzzed)."""

from __future__ import annotations

import hashlib
import io
import logging
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anomaly.data import reading as reading_module
from anomaly.data.formats import fingerprint
from anomaly.data.reading import SeriesChunk, SeriesStream, UnsortedError, iter_series, read_series, sampling_note
from anomaly.data.writing import write_table
from anomaly.errors import DataError
from tests.conftest import read_error as _error
from tests.conftest import write_file as _write

# ---------------------------------------------------------------- gaps, sorting, resampling


def test_gap_filling(tmp_path, caplog):
    # a: interior gap of 3 between 1 and 5 -> 2, 3, 4; b: leading gap of 2 -> nearest (10),
    # trailing gap of 1 -> nearest (40).
    text = "a,b\n1,\n,\n,10\n,20\n5,40\n6,\n"
    with caplog.at_level(logging.INFO, logger="anomaly.data"):
        series = read_series(_write(tmp_path, "d.csv", text), max_gap=3)
    np.testing.assert_allclose(series.values[:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(series.values[:, 1], [10, 10, 10, 20, 40, 40])
    assert series.filled == 6
    assert any("interpolated 6" in record.getMessage() for record in caplog.records)


def test_gaps_longer_than_max_gap_stay_missing_and_are_reported(tmp_path):
    text = "time,a,b\n2024-01-01,1,1\n2024-01-02,,2\n2024-01-03,,3\n2024-01-04,4,\n2024-01-05,5,5\n"
    path = _write(tmp_path, "d.csv", text)
    series = read_series(path, max_gap=1)  # a: a run of 2 (too long); b: a run of 1 (filled)
    assert series.gaps == ((1, 2),)
    assert np.isnan(series.values[1:3, 0]).all()
    assert series.values[3, 1] == 4.0 and series.filled == 1
    filled = read_series(path, max_gap=2)
    assert filled.gaps == () and filled.filled == 3
    np.testing.assert_allclose(filled.values[:, 0], [1, 2, 3, 4, 5])


def test_gap_positions_are_rows_of_the_sorted_series(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a\n2024-01-03,3\n2024-01-01,1\n2024-01-02,\n2024-01-04,4\n")
    series = read_series(path, max_gap=0)
    assert series.gaps == ((1, 1),) and series.frame.index[1] == pd.Timestamp("2024-01-02")


def test_resample_puts_rows_on_a_regular_grid_and_reports_empty_bins(tmp_path):
    text = "time,a,label\n2024-01-01 00:00,1,0\n2024-01-01 00:02,3,1\n2024-01-01 00:05,5,0\n2024-01-01 00:30,7,0\n"
    path = _write(tmp_path, "d.csv", text)
    series = read_series(path, label_col="label", resample="5min", max_gap=2)
    assert len(series.frame) == 7 and series.frame.index.freqstr == "5min"
    np.testing.assert_allclose(series.values[:2, 0], [2.0, 5.0])  # mean of 1 and 3; then 5
    assert series.gaps == ((2, 5),)  # 00:10 .. 00:25 are empty: 4 > max_gap
    assert series.labels.tolist() == [True] + [False] * 6
    assert sampling_note(read_series(path).frame.index).startswith("irregular sampling: 2 of 3 intervals")
    assert sampling_note(series.frame.index) is None
    _error(path, "resample", "'5 parsecs'", resample="5 parsecs")
    _error(_write(tmp_path, "n.csv", "a\n1\n2\n"), "resample", "no time column", resample="5min")


def test_unused_columns_are_listed(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a,b,name,label\n2024-01-01,1,2,x,0\n2024-01-02,3,4,y,1\n")
    assert read_series(path, columns=["b"], label_col="label").unused_columns == ("a", "name")


def test_max_gap_zero_without_gaps_and_negative(tmp_path):
    path = _write(tmp_path, "d.csv", "a\n1\n2\n")
    assert read_series(path, max_gap=0).filled == 0
    _error(path, "max_gap", "-1", max_gap=-1)


# ---------------------------------------------------------------- fuzzed tables


CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(
        [
            "",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "true",
            "0",
            "1",
            "1,5",
            "abc",
            '"x"',
            '"',
            "2026-01-01",
            "2026-01-01 00:05:00",
            "2026-13-45",
            "1e309",
            " ",
            "N/A",
            "é",
            "\u00a0",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
)


NAMES = st.sampled_from(["time", "timestamp", "a", "b", "label", "", "a", "é", "x y"])


SEPARATORS = st.sampled_from([",", ";", "\t", "|"])


@st.composite
def tables(draw):
    sep = draw(SEPARATORS)
    n_cols = draw(st.integers(1, 4))
    header = [draw(NAMES) for _ in range(n_cols)]
    rows = draw(st.lists(st.lists(CELLS, min_size=n_cols - 1, max_size=n_cols + 1), max_size=8))
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"])), header


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]),
    choice=st.data(),
    max_gap=st.integers(-1, 4),
)
def test_reader_raises_only_data_errors_and_returns_clean_series(tmp_path, table, encoding, choice, max_gap):
    text, header = table
    path = tmp_path / "fuzz.csv"
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8"))
    options = choice.draw(
        st.fixed_dictionaries(
            {
                "time_col": st.none() | st.sampled_from(header + ["missing"]),
                "label_col": st.none() | st.sampled_from(header + ["missing"]),
                "columns": st.none() | st.lists(st.sampled_from(header + ["missing"]), min_size=1, max_size=3),
            }
        )
    )
    try:
        series = read_series(path, max_gap=max_gap, **options)
    except DataError as err:
        message = str(err)
        assert message and "\n" not in message  # one line, and it says something
        return
    values = series.frame.to_numpy()
    assert values.dtype == np.float64 and values.ndim == 2 and values.shape[1] >= 1
    assert not np.isinf(values).any()
    in_gap = np.zeros(len(values), dtype=bool)
    for first, last in series.gaps:
        in_gap[first : last + 1] = True
    assert np.isfinite(values[~in_gap]).all() and np.isnan(values[in_gap]).any(axis=1).all()  # NaN only in reported gaps
    assert series.frame.index.is_unique and series.frame.index.is_monotonic_increasing
    if series.labels is not None:
        assert len(series.labels) == len(series.frame) and series.labels.dtype == bool


# ---------------------------------------------------------------- the chunked reader


CHUNK_SIZES = (1, 2, 3, 7, 1000)


def _collect(stream: SeriesStream) -> tuple[pd.DataFrame, pd.Series | None, list[SeriesChunk]]:
    """All chunks of ``stream``, and their frames and labels concatenated."""
    chunks = list(stream)
    frame = pd.concat([chunk.frame for chunk in chunks])
    labels = pd.concat([chunk.labels for chunk in chunks]) if chunks[0].labels is not None else None
    return frame, labels, chunks


def _assert_like_read_series(path: Path, chunk_rows: int, **options) -> SeriesStream:
    """Streaming ``path`` gives what read_series gives: same frame, labels, fills, gaps."""
    expected = read_series(path, **options)
    stream = iter_series(path, chunk_rows=chunk_rows, **options)
    frame, labels, chunks = _collect(stream)
    pd.testing.assert_frame_equal(frame, expected.frame, check_exact=True, check_freq=False)
    if expected.labels is None:
        assert labels is None
    else:
        pd.testing.assert_series_equal(labels, expected.labels, check_freq=False)
    assert (stream.filled, stream.gaps, stream.rows) == (expected.filled, expected.gaps, len(expected.frame))
    assert sum(chunk.filled for chunk in chunks) == expected.filled
    assert stream.gap_count == len(expected.gaps)
    assert stream.gap_rows == sum(last - first + 1 for first, last in expected.gaps)
    assert (stream.feature_names, stream.time_col, stream.unused_columns) == (
        expected.feature_names,
        expected.time_col,
        expected.unused_columns,
    )
    # Chunks follow each other, are at most chunk_rows + max_gap long, and their own gaps are
    # positions in their own frame.
    assert [chunk.start for chunk in chunks] == list(np.cumsum([0] + [len(c.frame) for c in chunks[:-1]]))
    assert all(1 <= len(chunk.frame) <= chunk_rows + options.get("max_gap", 3) for chunk in chunks)
    for chunk in chunks:
        missing = chunk.frame.isna().any(axis=1).to_numpy()
        assert missing.sum() == sum(last - first + 1 for first, last in chunk.gaps)
        assert all(missing[first : last + 1].all() for first, last in chunk.gaps)
    return stream


def _cell(value: float | None, decimal: str) -> str:
    if value is None:
        return ""
    text = repr(value) if not float(value).is_integer() else str(int(value))
    return text.replace(".", decimal)


@st.composite
def sorted_tables(draw) -> tuple[str, dict]:
    """A time-sorted delimited table with runs of missing values, and read options for it."""
    n = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 3))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    time_kind = draw(st.sampled_from(["datetime", "datetime_ns", "int", "float", "mixed", "none"]))
    # Decimal commas need a separator in the header to be told apart from it.
    decimal = "," if sep != "," and (n_features > 1 or time_kind != "none") and draw(st.booleans()) else "."
    steps = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n))
    positions = np.cumsum(steps)
    if time_kind.startswith("datetime"):
        unit = "ns" if time_kind == "datetime_ns" else "s"
        times = pd.Timestamp("2024-03-01") + pd.to_timedelta(positions, unit=unit)
        header_time, cells_time = ["time"], [[str(t)] for t in times]
    elif time_kind == "none":
        header_time, cells_time = [], [[] for _ in range(n)]
    else:
        scale = {"int": 1, "float": 0.25, "mixed": 0.5}[time_kind]
        header_time, cells_time = ["step"], [[_cell(float(p * scale), decimal)] for p in positions]
    columns = []
    for _ in range(n_features):
        # Alternate runs of values and runs of missing values, of drawn lengths.
        runs = draw(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 7)), min_size=1, max_size=12))
        column: list[float | None] = []
        for present, missing in runs:
            column += [round(draw(st.floats(-1e3, 1e3)), 3) for _ in range(present)] + [None] * missing
        start = draw(st.integers(0, 2))  # sometimes a leading run of missing values
        column = ([None] * start + column + [None] * n)[:n]
        if all(value is None for value in column):
            column[draw(st.integers(0, n - 1))] = 1.0
        columns.append(column)
    with_labels = draw(st.booleans())
    with_text = draw(st.booleans())
    header = header_time + [f"f{j}" for j in range(n_features)] + (["label"] if with_labels else [])
    header += ["note"] if with_text else []
    lines = [sep.join(header)]
    for i in range(n):
        row = cells_time[i] + [_cell(column[i], decimal) for column in columns]
        row += [draw(st.sampled_from(["0", "1", "true", "False"]))] if with_labels else []
        row += [f"note {i}"] if with_text else []
        lines.append(sep.join(row))
    options = {"max_gap": draw(st.integers(0, 4)), "label_col": "label" if with_labels else None}
    return "\n".join(lines) + "\n", options


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=sorted_tables(), sample=st.sampled_from([1, 3, 4096]))
def test_chunks_add_up_to_read_series(tmp_path, table, sample):
    text, options = table
    path = _write(tmp_path, "sorted.csv", text)
    n_rows = text.count("\n") - 1
    # A small role sample also makes every chunk go through pandas on its own (types inferred
    # per chunk: ints in one, floats in the next).
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", sample):
        for chunk_rows in (*CHUNK_SIZES, n_rows + 1):
            _assert_like_read_series(path, chunk_rows, **options)


@pytest.mark.parametrize("max_gap", [0, 1, 3])
@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("offset", [-4, -1, 0, 1])
def test_missing_run_straddling_a_chunk_boundary(tmp_path, max_gap, length, offset):
    # One feature has a run of `length` missing values starting `offset` rows from the end of the
    # first chunk (5 rows); another has a short run right at the boundary.
    n = 24
    a = np.arange(n, dtype=float) ** 1.5
    b = np.sin(np.arange(n, dtype=float))
    a[5 + offset : 5 + offset + length] = np.nan
    b[4:6] = np.nan
    frame = pd.DataFrame({"a": a, "b": b}, index=pd.RangeIndex(n, name="step"))
    path = write_table(frame, tmp_path / "run.csv")
    for chunk_rows in (1, 2, 5, 6, 50):
        _assert_like_read_series(path, chunk_rows, max_gap=max_gap)


def test_runs_around_the_role_sample_and_long_gap_over_several_chunks(tmp_path):
    n = reading_module.ROLE_SAMPLE_ROWS + 3000
    rng = np.random.default_rng(0)
    values = rng.normal(size=(n, 3)).round(4)
    values[4090:4100, 0] = np.nan  # a gap across the end of the sample
    values[4094:4097, 1] = np.nan  # a short run inside it
    values[5000:6500, 2] = np.nan  # a gap over several chunks
    values[rng.random(values.shape) < 0.02] = np.nan  # and scattered ones
    frame = pd.DataFrame(values, columns=["x", "y", "z"])
    frame.insert(0, "time", pd.date_range("2024-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M"))
    frame.insert(2, "label", (rng.random(n) < 0.1).astype(int))
    path = write_table(frame, tmp_path / "long.csv", index=False)
    for chunk_rows in (1000, 3000, 4096, 5000, n):
        stream = _assert_like_read_series(path, chunk_rows, label_col="label")
    long_gap = next((first, last) for first, last in stream.gaps if first <= 5000 <= last)
    assert long_gap[1] >= 6499
    labels = dict(zip(stream.gaps, stream.gap_labels))
    assert labels[long_gap][0] == pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=long_gap[0])


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_parquet_like_read_series(tmp_path, chunk_rows):
    index = pd.date_range("2024-03-30 22:00", periods=40, freq="15min", tz="Europe/Berlin", name="when")
    values = np.linspace(0, 1, 40)
    values[[3, 10, 11, 12, 13, 30, 31]] = np.nan
    frame = pd.DataFrame(
        {"x": values, "n": pd.array(range(40), dtype="Int64"), "name": ["a"] * 40, "label": [i % 5 == 0 for i in range(40)]},
        index=index,
    )
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    stream = _assert_like_read_series(path, chunk_rows, label_col="label", max_gap=2)
    assert stream.time_col == "when" and stream.unused_columns == ("name",)
    assert stream.fingerprint == fingerprint(path)


def test_parquet_without_time_column(tmp_path):
    path = write_table(pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1, 2, 3]}), tmp_path / "d.pq", index=False)
    for chunk_rows in (1, 2, 5):
        _assert_like_read_series(path, chunk_rows)


@pytest.mark.parametrize("sep, decimal", [(";", ","), ("\t", ","), (",", ".")])
def test_separators_and_decimal_commas(tmp_path, sep, decimal):
    rows = [sep.join(["t", "a", "b"])] + [
        sep.join([str(i), f"{i}{decimal}5", "" if i in (3, 4) else f"-{i}{decimal}25"]) for i in range(12)
    ]
    path = _write(tmp_path, "eu.csv", "\n".join(rows) + "\n")
    for chunk_rows in (1, 4, 50):
        _assert_like_read_series(path, chunk_rows, time_col="t")


def test_explicit_columns_order_and_role(tmp_path):
    text = "time,a,b,c,flag,label\n" + "".join(
        f"2024-01-{d:02d},{d},{-d},{d * 2},{'true' if d % 2 else 'false'},{d % 3 == 0:d}\n" for d in range(1, 11)
    )
    path = _write(tmp_path, "d.csv", text)
    stream = _assert_like_read_series(path, 3, columns=["c", "a", "flag"], label_col="label")
    assert stream.feature_names == ["c", "a", "flag"] and stream.unused_columns == ("b",)
    with pytest.raises(DataError, match="the model's feature 'zz' is not a column"):
        iter_series(path, columns=["a", "zz"], columns_role="the model's feature")


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5, 1000])
def test_dst_change_gives_the_same_utc_times_streamed_and_whole(tmp_path, chunk_rows):
    # Europe/Berlin's clocks go from +01:00 to +02:00 at 2024-03-31 02:00 local time: the file's
    # offsets change between rows 4 and 5. Chunks of 1 to 3 rows put chunk boundaries before and
    # after the change; streamed or whole, the times are the same instants, in UTC.
    local = pd.date_range("2024-03-30 23:00", periods=8, freq="30min", tz="UTC").tz_convert("Europe/Berlin")
    cells = [t.isoformat() for t in local]
    assert cells[3].endswith("+01:00") and cells[4].endswith("+02:00")
    path = _write(tmp_path, "dst.csv", "time,a,b\n" + "".join(f"{t},{i},{i * i}\n" for i, t in enumerate(cells)))
    whole = read_series(path)
    expected = pd.DatetimeIndex(local.tz_convert("UTC"), name="time")
    pd.testing.assert_index_equal(whole.frame.index, expected, check_exact=True, exact=False, check_freq=False)
    assert str(whole.frame.index.tz) == "UTC"
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        frame, _, chunks = _collect(iter_series(path, chunk_rows=chunk_rows))
    assert {str(chunk.frame.index.tz) for chunk in chunks} == {"UTC"}
    if chunk_rows <= 3:
        starts = [chunk.start for chunk in chunks]
        assert any(0 < start < 4 for start in starts) and any(start > 4 for start in starts)
    pd.testing.assert_frame_equal(frame, whole.frame, check_exact=True, check_freq=False)
    # A file with one offset throughout is in UTC too: training and scoring see one time zone.
    same = _write(tmp_path, "plus2.csv", "time,a\n" + "".join(f"{t},{i}\n" for i, t in enumerate(cells[4:])))
    assert str(read_series(same).frame.index.tz) == "UTC"
    streamed = pd.concat([chunk.frame for chunk in iter_series(same, chunk_rows=chunk_rows)])
    pd.testing.assert_frame_equal(streamed, read_series(same).frame, check_exact=True, check_freq=False)


@pytest.mark.parametrize("chunk_rows", [2, 5, 1000])
def test_day_first_dates_are_read_with_one_format_for_the_whole_file(tmp_path, chunk_rows):
    # 02/01 .. 12/01 could be month-first; 13/01 on cannot. Read cell by cell, the first twelve
    # days became February to December and the rows were sorted into a scrambled series.
    times = pd.date_range("2024-01-02", periods=60, freq="6h")
    for fmt, order in (("%d/%m/%Y %H:%M", "day/month/year"), ("%m/%d/%Y %H:%M", "month/day/year")):
        path = _write(tmp_path, "dates.csv", "time,a\n" + "".join(f"{t:{fmt}},{i}\n" for i, t in enumerate(times)))
        whole = read_series(path)
        pd.testing.assert_index_equal(whole.frame.index, pd.DatetimeIndex(times, name="time"), exact=False, check_freq=False)
        assert whole.reordered == 0 and whole.notes == (f"time column 'time' read as {order} ({fmt})",)
        # Streamed, the first chunk's format holds for every later one, even a chunk whose
        # dates all fit the other order.
        stream = iter_series(path, chunk_rows=chunk_rows)
        frame, _, _ = _collect(stream)
        pd.testing.assert_frame_equal(frame, whole.frame, check_exact=True, check_freq=False)
        assert stream.notes == list(whole.notes)
    # A first chunk that fits both orders the same (one day's rows) is read month-first; a later
    # day-first date stops the stream with an error callers can catch, to read the file whole.
    path = _write(tmp_path, "dates.csv", "time,a\n" + "".join(f"{t:%d/%m/%Y %H:%M},{i}\n" for i, t in enumerate(times)))
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        with pytest.raises(reading_module.DateOrderError, match="row 45 holds '13/01/2024 00:00'.*fit day/month/year too"):
            list(iter_series(path, chunk_rows=chunk_rows))
    # Only the first rows fit both orders: the evenly stepped reading is taken from them.
    ambiguous = _write(tmp_path, "days.csv", "time,a\n" + "".join(f"{t:%d/%m/%Y},{i}\n" for i, t in enumerate(times[:12:4])))
    assert read_series(ambiguous).frame.index[1] == pd.Timestamp("2024-01-03")
    # A later cell in another format is refused, naming the format the earlier rows set.
    mixed = _write(tmp_path, "mixed.csv", "time,a\n13/01/2024 00:00,1\n14/01/2024 00:00,2\n2024-01-15 00:00,3\n")
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        _stream_error(mixed, "row 3", "'2024-01-15 00:00'", "the format of the rows before (%d/%m/%Y %H:%M)", chunk_rows=2)


def test_sorting_is_counted_for_the_training_note(tmp_path):
    path = _write(tmp_path, "late.csv", "time,a\n2024-01-01,1\n2024-01-03,3\n2024-01-02,2\n2024-01-04,4\n")
    assert read_series(path).reordered == 2


def _stream_error(source, *contains: str, **options) -> str:
    """Iterating over iter_series(source) must fail with a one-line DataError naming ``contains``."""
    with pytest.raises(DataError) as info:
        list(iter_series(source, **options))
    message = str(info.value)
    assert "\n" not in message, message
    for part in contains:
        assert part in message, message
    return message


@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 100])
def test_time_going_back_names_both_rows_and_suggests_sorting(tmp_path, chunk_rows):
    days = [1, 2, 3, 4, 5, 6, 7, 8, 5, 9]
    path = _write(tmp_path, "late.csv", "time,a\n" + "".join(f"2024-01-{d:02d},{i}\n" for i, d in enumerate(days)))
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        message = _stream_error(
            path, "late.csv", "'time'", "row 9", "2024-01-05", "2024-01-08", "row 8", "sort", chunk_rows=chunk_rows
        )
    assert message == _stream_error(path, chunk_rows=chunk_rows)  # the same whatever the role sample
    with pytest.raises(UnsortedError):  # which callers can catch, to read the file whole instead
        list(iter_series(path, chunk_rows=chunk_rows))


def test_repeated_time_is_reported_like_read_series(tmp_path):
    path = _write(tmp_path, "dup.csv", "t,a\n" + "".join(f"{t},{i}\n" for i, t in enumerate([1, 2, 3, 4, 4, 5])))
    with pytest.raises(DataError) as info:
        read_series(path, time_col="t")
    for chunk_rows in (1, 4, 100):
        assert _stream_error(path, "unique", chunk_rows=chunk_rows, time_col="t") == str(info.value)
        with pytest.raises(DataError) as repeated:
            list(iter_series(path, chunk_rows=chunk_rows, time_col="t"))
        assert not isinstance(repeated.value, UnsortedError)  # reading it whole would not help


def test_time_zone_appearing_in_a_later_chunk(tmp_path):
    text = "time,a\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n2024-01-01T02:00:00+01:00,3\n"
    path = _write(tmp_path, "tz.csv", text)
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        _stream_error(path, "time zones consistently", "row 3", "'2024-01-01T02:00:00+01:00'", chunk_rows=2)


def test_numeric_time_then_text(tmp_path):
    path = _write(tmp_path, "d.csv", "step,a\n1,1\n2,2\n2024-01-01,3\n")
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        _stream_error(path, "'step'", "numbers", "row 3", "'2024-01-01'", chunk_rows=2)


ROWS = "".join(f"2024-01-{d:02d},{d},{d % 2}\n" for d in range(1, 9))


@pytest.mark.parametrize(
    "text, options, contains",
    [
        ("time,a,label\n" + ROWS + "2024-01-09,abc,0\n", {}, "row 9 holds 'abc'"),
        ("time,a,label\n" + ROWS + "2024-01-09,-inf,0\n", {}, "row 9 holds -inf"),
        ("time,a,label\n" + ROWS + "yesterday,3,0\n", {}, "row 9 holds 'yesterday'"),
        ("time,a,label\n" + ROWS + ",3,0\n", {}, "row 9 is empty"),
        ("time,a,label\n" + ROWS + "2024-01-09,3,yes\n", {"label_col": "label"}, "row 9 holds 'yes'"),
        ("time,a,label\n" + ROWS + "2024-01-09,3,\n", {"label_col": "label"}, "row 9 is empty"),
        ("time,a,label\n" + ROWS, {"columns": ["b"]}, "available columns"),
        ("time,a,label\n" + ROWS, {"time_col": "label", "label_col": "label"}, "should differ"),
        ("time,a,label\n" + ROWS, {"max_gap": -1}, "max_gap"),
        ("time,a,label\n" + ROWS, {"columns": "a"}, "list of column names"),
        ("", {}, "empty (0 bytes)"),
        (" \n\t\n", {}, "only whitespace"),
        ("time,a,b\n", {}, "found none (columns: 'time', 'a', 'b')"),
        ("a,b\n1,\n3,\n" + "5,\n" * 10, {}, "every cell is empty"),
        ("a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14,15\n", {}, "names 2 columns, but line 8 has 3"),
        ("a,b\n" + "1,2\n" * 60 + "13,14,15\n", {}, "Expected 2 fields in line 62"),  # past the sniffed lines
        ("time,name\n2024-01-01,x\n2024-01-02,y\n", {}, "'name' (text)"),
    ],
)
def test_bad_input_gives_read_series_message(tmp_path, text, options, contains):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError) as info:
        read_series(path, **options)
    assert contains in str(info.value)
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        for chunk_rows in (1, 3, 100):
            assert _stream_error(path, chunk_rows=chunk_rows, **options) == str(info.value)


def test_true_false_chunk_in_a_numeric_feature(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n3,4\ntrue,5\nfalse,6\n")
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        _stream_error(path, "column 'a' should be numeric", "row 3 holds 'True'", chunk_rows=2)
    _stream_error(path, "column 'a' should be numeric", "row 3 holds 'true'", chunk_rows=2)  # as read_series


def test_text_cells_counted_in_their_chunk(tmp_path):
    path = _write(tmp_path, "d.csv", "a\n" + "1\n" * 6 + "x\ny\n1\nz\n")
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 3):
        _stream_error(path, "row 7 holds 'x' (2 text cells in rows 7-9)", chunk_rows=3)


def test_not_utf8_in_a_later_chunk(tmp_path):
    data = b"a,name\n" + b"1,ok\n" * 100 + b"2,M\xfcller\n"  # past the first lines read for sniffing
    path = _write(tmp_path, "latin.csv", data)
    with pytest.raises(DataError) as info:
        read_series(path)
    with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", 2):
        message = _stream_error(path, "byte {} ".format(data.index(b"\xfc")), "(line 102)", chunk_rows=2)
    assert message == str(info.value)


def test_file_errors(tmp_path):
    _stream_error(tmp_path / "nope.csv", "nope.csv", "not found")
    (tmp_path / "dir.csv").mkdir()
    _stream_error(tmp_path / "dir.csv", "directory")
    _stream_error(_write(tmp_path, "bad.parquet", "not parquet"), "cannot read as Parquet")
    _stream_error(_write(tmp_path, "empty.parquet", b""), "empty (0 bytes)")
    empty = tmp_path / "rows.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(empty)
    _stream_error(empty, "found none (columns: 'a')")
    for bad in (0, -3, 2.5, True, "10"):
        _stream_error(_write(tmp_path, "ok.csv", "a\n1\n"), "chunk_rows", chunk_rows=bad)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), choice=st.data(), chunk_rows=st.integers(1, 4), sample=st.integers(1, 3))
def test_fuzzed_input_raises_only_data_errors_and_gives_clean_chunks(tmp_path, table, choice, chunk_rows, sample):
    text, header = table
    path = _write(tmp_path, "fuzz.csv", text)
    options = choice.draw(
        st.fixed_dictionaries(
            {
                "time_col": st.none() | st.sampled_from(header + ["missing"]),
                "label_col": st.none() | st.sampled_from(header + ["missing"]),
                "columns": st.none() | st.lists(st.sampled_from(header + ["missing"]), min_size=1, max_size=3),
                "max_gap": st.integers(0, 3),
            }
        )
    )
    try:
        with mock.patch.object(reading_module, "ROLE_SAMPLE_ROWS", sample):
            frame, labels, chunks = _collect(iter_series(path, chunk_rows=chunk_rows, **options))
    except DataError as err:
        assert str(err) and "\n" not in str(err)
        return
    values = frame.to_numpy()
    assert values.dtype == np.float64 and not np.isinf(values).any()
    assert frame.index.is_unique and frame.index.is_monotonic_increasing
    in_gap = np.zeros(len(values), dtype=bool)
    for chunk in chunks:
        for first, last in chunk.gaps:
            in_gap[chunk.start + first : chunk.start + last + 1] = True
    assert np.isfinite(values[~in_gap]).all() and np.isnan(values[in_gap]).any(axis=1).all()
    assert labels is None or (labels.dtype == bool and len(labels) == len(frame))


def test_stdin_dash(tmp_path, monkeypatch):
    data = ("\ufefftime;a;b\n" + "".join(f"2024-01-01 00:{m:02d};{m},5;{'' if m in (3, 4) else m}\n" for m in range(30))).encode()
    path = _write(tmp_path, "same.csv", data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)), encoding="utf-8"))
    stream = iter_series("-", chunk_rows=4)
    frame, _, chunks = _collect(stream)
    assert stream.source == "<stdin>" and all(str(chunk.source) == "<stdin>" for chunk in chunks)
    expected = read_series(path)
    pd.testing.assert_frame_equal(frame, expected.frame, check_exact=True, check_freq=False)
    assert stream.filled == expected.filled == 2
    assert stream.fingerprint == hashlib.sha256(data).hexdigest() == fingerprint(path)


def test_text_stream_and_binary_stream(tmp_path):
    text = "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(10))
    expected = read_series(_write(tmp_path, "d.csv", text)).frame
    for source in (io.StringIO(text), io.BytesIO(text.encode())):
        stream = iter_series(source, chunk_rows=3)
        frame, _, _ = _collect(stream)
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
        assert stream.source == "<stream>" and stream.fingerprint == hashlib.sha256(text.encode()).hexdigest()
        assert not source.closed  # streams passed in stay open


def test_stream_errors_name_the_stream(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    _stream_error("-", "<stdin>: expected a table, but the file is empty")
    data = b"a,b\n" + b"1,2\n" * 80 + b"3,\xff\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    _stream_error("-", "<stdin>", "byte {} ".format(data.index(b"\xff")), "(line 82)", chunk_rows=4)
    _stream_error(io.BytesIO(b"PAR1\x15\x04"), "Parquet", "pass the file's path")


class _CountingReader:
    """A binary stream that counts the bytes handed out."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by the test
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.consumed += len(data)
        return data


def test_bounded_chunks_on_a_long_file(tmp_path):
    n, chunk_rows, max_gap = 200_000, 10_000, 3
    rng = np.random.default_rng(1)
    values = rng.normal(size=(n, 4)).round(3)
    for start in range(9_998, n, 10_000):  # short runs at (nearly) every boundary
        values[start : start + 3, 0] = np.nan
    values[rng.random(values.shape) < 0.001] = np.nan
    path = write_table(pd.DataFrame(values, columns=list("abcd")), tmp_path / "long.csv", index=False)
    source = _CountingReader(path)
    stream = iter_series(source, chunk_rows=chunk_rows, max_gap=max_gap)
    first = next(stream)
    # Only the first chunk's bytes (and the parser's read-ahead) have been read.
    assert source.consumed < path.stat().st_size / 4
    lengths = [len(first.frame)] + [len(chunk.frame) for chunk in stream]
    assert max(lengths) <= chunk_rows + max_gap and sum(lengths) == stream.rows == n
    assert len(lengths) <= n // chunk_rows + 2
    assert stream.fingerprint == fingerprint(path)
    source._file.close()


def test_gap_list_is_bounded(tmp_path, monkeypatch):
    values = np.ones(40)
    for start in range(2, 40, 8):
        values[start : start + 3] = np.nan  # 5 gaps of 3 rows
    path = write_table(pd.DataFrame({"a": values}), tmp_path / "g.csv", index=False)
    monkeypatch.setattr(reading_module, "MAX_LISTED_GAPS", 2)
    stream = iter_series(path, chunk_rows=4, max_gap=1)
    list(stream)
    assert stream.gaps == ((2, 4), (10, 12)) and stream.gap_count == 5 and stream.gap_rows == 15
    assert stream.gap_labels == ((2, 4), (10, 12))  # steps, without a time column


def test_fingerprint_only_when_exhausted_and_close(tmp_path):
    path = _write(tmp_path, "d.csv", "a\n" + "1\n" * 50)
    with iter_series(path, chunk_rows=5) as stream:
        next(stream)
        with pytest.raises(RuntimeError, match="exhausted"):
            _ = stream.fingerprint
    assert list(stream) == []  # closed: no more chunks
    assert not stream.exhausted


def test_chunk_is_a_series(tmp_path, caplog):
    path = _write(tmp_path, "d.csv", "time,a,b\n2024-01-01,1,\n2024-01-02,2,5\n2024-01-03,,6\n")
    with caplog.at_level(logging.INFO, logger="anomaly"):
        chunks = list(iter_series(path, chunk_rows=2, max_gap=1))
    assert [type(chunk) for chunk in chunks] == [SeriesChunk, SeriesChunk]
    assert chunks[0].values.dtype == np.float64 and chunks[0].feature_names == ["a", "b"]
    assert chunks[1].stop == 3 and chunks[1].time_col == "time"
    assert any("interpolated 2" in record.getMessage() for record in caplog.records)
