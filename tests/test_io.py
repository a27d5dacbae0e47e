"""Tests for anomaly.io: reading series (formats, time, labels, features, gaps), errors, writing."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomaly.errors import DataError
from anomaly.io import Series, fingerprint, read_series, read_table, sampling_note, write_table


def _write(tmp_path: Path, name: str, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _error(path: Path, *contains: str, **kwargs) -> str:
    """read_series must fail with a one-line DataError naming the file and ``contains``."""
    with pytest.raises(DataError) as info:
        read_series(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert path.name in message, message
    for part in contains:
        assert part in message, message
    return message


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_each_separator(tmp_path, sep):
    lines = ["time", "a", "b"], ["2024-01-01 00:00", "1.5", "-2"], ["2024-01-01 00:01", "2.5", "3e2"]
    path = _write(tmp_path, "data.txt", "\n".join(sep.join(line) for line in lines) + "\n")
    series = read_series(path)
    assert series.feature_names == ["a", "b"]
    np.testing.assert_array_equal(series.values, [[1.5, -2.0], [2.5, 300.0]])
    assert series.time_col == "time"
    assert isinstance(series.frame.index, pd.DatetimeIndex)


def test_semicolon_decimal_comma(tmp_path):
    path = _write(tmp_path, "eu.csv", "a;b\n1,5;2,25\n3;-0,125\n")
    series = read_series(path)
    np.testing.assert_array_equal(series.values, [[1.5, 2.25], [3.0, -0.125]])


def test_tab_decimal_comma(tmp_path):
    path = _write(tmp_path, "eu.tsv", "a\tb\n1,5\t2\n3\t4,75\n")
    np.testing.assert_array_equal(read_series(path).values, [[1.5, 2.0], [3.0, 4.75]])


def test_consistent_separator_beats_header_count(tmp_path):
    # The header holds more commas than semicolons, but only ';' splits every line alike.
    path = _write(tmp_path, "units.csv", "pressure (bar, abs);temp (C, K)\n1;2\n3;4\n")
    table = read_table(path)
    assert list(table.columns) == ["pressure (bar, abs)", "temp (C, K)"]
    assert table["temp (C, K)"].tolist() == [2, 4]


def test_comma_file_with_quoted_commas_keeps_comma_separator(tmp_path):
    path = _write(tmp_path, "q.csv", 'a,note,b\n1,"x, y",2\n3,"z; w",4\n')
    table = read_table(path)
    assert list(table.columns) == ["a", "note", "b"]
    assert table["note"].tolist() == ["x, y", "z; w"]
    # Semicolons inside quotes do not count either, even when they are regular.
    path = _write(tmp_path, "q2.csv", 'id,"note; extra; more"\n1,"a; b; c"\n2,"d; e; f"\n')
    assert list(read_table(path).columns) == ["id", "note; extra; more"]


def test_utf8_bom_and_padded_header(tmp_path):
    path = _write(tmp_path, "bom.csv", "\ufefftime, a, b\n2024-01-01,1,2\n2024-01-02,3,4\n")
    series = read_series(path)
    assert series.time_col == "time"  # the BOM does not stick to the first name
    assert series.feature_names == ["a", "b"]  # and the spaces after commas do not stick either


def test_single_column_without_separator(tmp_path):
    path = _write(tmp_path, "one.csv", "x\n1\n2\n4\n")
    series = read_series(path)
    np.testing.assert_array_equal(series.values[:, 0], [1.0, 2.0, 4.0])


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6], "name": ["x", "y", "z"]})
    path = write_table(frame, tmp_path / "d.parquet", index=False)
    pd.testing.assert_frame_equal(read_table(path), frame)
    series = read_series(path)
    assert series.feature_names == ["a", "b"]
    assert isinstance(series.frame.index, pd.RangeIndex) and series.frame.index.name == "step"
    np.testing.assert_array_equal(series.values, [[1, 4], [2, 5], [3, 6]])


def test_parquet_datetime_index_becomes_time_column(tmp_path):
    index = pd.date_range("2024-03-01", periods=4, freq="h", tz="Europe/Berlin", name="when")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}, index=index)
    path = tmp_path / "d.pq"
    frame.to_parquet(path)
    table = read_table(path)
    assert list(table.columns) == ["when", "x"]
    series = read_series(path, time_col="when")
    pd.testing.assert_index_equal(series.frame.index, index, check_exact=True, check_freq=False)
    assert str(series.frame.index.tz) == "Europe/Berlin"
    # Detected by content too: the first column holds datetimes.
    assert read_series(path).time_col == "when"


# ---------------------------------------------------------------- time column


def test_time_column_detected_by_name_case_insensitive(tmp_path):
    path = _write(tmp_path, "d.csv", "a,TimeStamp,b\n1,2024-01-01T00:00:00,2\n3,2024-01-01T00:00:10,4\n")
    series = read_series(path)
    assert series.time_col == "TimeStamp"
    assert series.feature_names == ["a", "b"]
    assert series.frame.index.name == "TimeStamp"
    assert list(series.frame.index) == [pd.Timestamp("2024-01-01 00:00:00"), pd.Timestamp("2024-01-01 00:00:10")]


def test_time_column_detected_by_content(tmp_path):
    path = _write(tmp_path, "d.csv", "when,a\n01/02/2024 10:00,1\n01/02/2024 11:30,2\n")
    series = read_series(path)
    assert series.time_col == "when"
    assert series.frame.index[1] == pd.Timestamp("2024-01-02 11:30")


def test_text_first_column_is_not_a_time_column(tmp_path):
    path = _write(tmp_path, "d.csv", "site,a\nMay,1\nJune,2\n")  # words dateutil would accept
    series = read_series(path)
    assert series.time_col is None
    assert series.feature_names == ["a"]


def test_named_numeric_time_column_is_kept_numeric(tmp_path):
    path = _write(tmp_path, "d.csv", "ts,a\n10,1\n20,2\n30,3\n")
    series = read_series(path)
    assert series.time_col == "ts"
    assert list(series.frame.index) == [10, 20, 30]
    assert series.frame.index.dtype == np.int64


def test_explicit_numeric_time_column(tmp_path):
    path = _write(tmp_path, "d.csv", "a,sec,b\n1,0.5,2\n3,1.5,4\n")
    series = read_series(path, time_col="sec")
    assert series.frame.index.name == "sec"
    assert list(series.frame.index) == [0.5, 1.5]
    assert series.feature_names == ["a", "b"]


def test_no_time_column_gives_range_index_step(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n3,4\n5,6\n")
    series = read_series(path)
    assert series.time_col is None
    pd.testing.assert_index_equal(series.frame.index, pd.RangeIndex(3, name="step"))


def test_unsorted_times_are_sorted_with_a_note(tmp_path, caplog):
    path = _write(
        tmp_path, "d.csv", "time,a,label\n2024-01-03,3,1\n2024-01-01,1,0\n2024-01-02,2,0\n2024-01-04,4,0\n"
    )
    with caplog.at_level(logging.INFO, logger="anomaly.io"):
        series = read_series(path, label_col="label")
    assert series.frame.index.is_monotonic_increasing
    np.testing.assert_array_equal(series.values[:, 0], [1, 2, 3, 4])
    assert series.labels.tolist() == [False, False, True, False]  # labels travel with their rows
    assert any("3 row(s)" in record.getMessage() and "out of order" in record.getMessage() for record in caplog.records)


def test_timezone_aware_times_are_kept(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a\n2024-01-01T00:00:00+02:00,1\n2024-01-01T01:00:00+02:00,2\n")
    index = read_series(path).frame.index
    assert index.tz is not None
    assert index[0] == pd.Timestamp("2023-12-31T22:00:00Z")


def test_mixed_utc_offsets_are_converted_to_utc(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a\n2024-03-31T01:00:00+01:00,1\n2024-03-31T03:00:00+02:00,2\n")
    index = read_series(path).frame.index
    assert str(index.tz) == "UTC"
    assert list(index) == [pd.Timestamp("2024-03-31T00:00Z"), pd.Timestamp("2024-03-31T01:00Z")]


def test_duplicate_timestamps(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a\n2024-01-01,1\n2024-01-02,2\n2024-01-01,3\n")
    message = _error(path, "'time'", "row 3", "row 1", "2024-01-01")
    assert "unique" in message


def test_unparseable_time(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a\n2024-01-01,1\n2024-01-02,2\nyesterday,3\n")
    _error(path, "'time'", "row 3", "'yesterday'")


def test_empty_time_cell(tmp_path):
    path = _write(tmp_path, "d.csv", "time,a\n2024-01-01,1\n,2\n")
    _error(path, "'time'", "row 2", "empty")


def test_missing_numeric_time_value(tmp_path):
    path = _write(tmp_path, "d.csv", "t,a\n1,1\n,2\n")
    _error(path, "'t'", "row 2 is empty", time_col="t")
    _error(_write(tmp_path, "e.csv", "t,a\n1,1\ninf,2\n"), "'t'", "row 2 holds inf", time_col="t")


# ---------------------------------------------------------------- features


def test_explicit_columns_order(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b,c,flag\n1,2,3,true\n4,5,6,false\n")
    series = read_series(path, columns=["c", "a", "flag"])
    assert series.feature_names == ["c", "a", "flag"]
    np.testing.assert_array_equal(series.values, [[3, 1, 1], [6, 4, 0]])


def test_boolean_and_text_columns_are_not_auto_features(tmp_path, caplog):
    path = _write(tmp_path, "d.csv", "a,flag,name,b\n1,true,x,2\n3,false,y,4\n5,true,z,6\n")
    with caplog.at_level(logging.INFO, logger="anomaly.io"):
        series = read_series(path)
    assert series.feature_names == ["a", "b"]
    assert series.values.dtype == np.float64
    assert any("'name'" in record.getMessage() and "text" in record.getMessage() for record in caplog.records)


def test_mostly_text_column_with_some_numbers_is_ignored(tmp_path):
    path = _write(tmp_path, "d.csv", "a,status\n1,ok\n2,ok\n3,5\n")
    assert read_series(path).feature_names == ["a"]


def test_mostly_numeric_column_with_text_is_an_error(tmp_path):
    path = _write(tmp_path, "d.csv", "a,pressure\n1,2.0\n2,3.0\n3,abc\n4,5\n")
    message = _error(path, "'pressure'", "row 3", "'abc'")
    assert "numeric" in message


def test_explicit_column_with_text_is_an_error(tmp_path):
    path = _write(tmp_path, "d.csv", "a,name\n1,x\n2,y\n")
    _error(path, "'name'", "row 1", "'x'", columns=["a", "name"])


def test_values_are_float64_and_a_view(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n3,4\n")
    series = read_series(path)
    assert series.values.dtype == np.float64 and series.values.shape == (2, 2)
    assert np.shares_memory(series.values, series.frame.to_numpy(copy=False))


def test_series_is_frozen(tmp_path):
    series = read_series(_write(tmp_path, "d.csv", "a\n1\n"))
    assert isinstance(series, Series)
    with pytest.raises(AttributeError):
        series.filled = 3  # type: ignore[misc]


def test_infinite_value(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n3,-inf\n")
    _error(path, "'b'", "row 2", "-inf")


def test_all_nan_feature(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b\n1,\n3,\n")
    _error(path, "'b'", "empty")


def test_no_numeric_feature(tmp_path):
    path = _write(tmp_path, "d.csv", "time,name\n2024-01-01,x\n2024-01-02,y\n")
    _error(path, "numeric feature", "'time' (time)", "'name' (text)")


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "cells, expected",
    [
        (["0", "1", "0"], [False, True, False]),
        (["True", "False", "TRUE"], [True, False, True]),
        (["true", "0", "FALSE"], [True, False, False]),
    ],
)
def test_labels(tmp_path, cells, expected):
    rows = "".join(f"{i},{cell}\n" for i, cell in enumerate(cells))
    series = read_series(_write(tmp_path, "d.csv", "a,label\n" + rows), label_col="label")
    assert series.labels.dtype == bool
    assert series.labels.tolist() == expected
    assert series.labels.name == "label"
    assert series.labels.index.equals(series.frame.index)
    assert series.feature_names == ["a"]


def test_bad_label_value(tmp_path):
    path = _write(tmp_path, "d.csv", "a,label\n1,0\n2,yes\n")
    _error(path, "'label'", "row 2", "'yes'", label_col="label")


def test_label_value_two(tmp_path):
    path = _write(tmp_path, "d.csv", "a,label\n1,0\n2,1\n3,2\n")
    _error(path, "'label'", "row 3", "'2'", label_col="label")


def test_missing_label(tmp_path):
    path = _write(tmp_path, "d.csv", "a,label\n1,0\n2,\n")
    _error(path, "'label'", "row 2", "empty", label_col="label")


# ---------------------------------------------------------------- gaps


def test_gap_filling(tmp_path, caplog):
    # a: interior gap of 3 between 1 and 5 -> 2, 3, 4; b: leading gap of 2 -> nearest (10),
    # trailing gap of 1 -> nearest (40).
    text = "a,b\n1,\n,\n,10\n,20\n5,40\n6,\n"
    with caplog.at_level(logging.INFO, logger="anomaly.io"):
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
    text = ("time,a,label\n2024-01-01 00:00,1,0\n2024-01-01 00:02,3,1\n2024-01-01 00:05,5,0\n"
            "2024-01-01 00:30,7,0\n")
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


# ---------------------------------------------------------------- file errors


def test_file_not_found(tmp_path):
    _error(tmp_path / "nope.csv", "not found")


def test_directory(tmp_path):
    directory = tmp_path / "dir.csv"
    directory.mkdir()
    _error(directory, "directory")


@pytest.mark.parametrize("content", ["", "  \n\n\t\n"])
def test_empty_file(tmp_path, content):
    _error(_write(tmp_path, "d.csv", content), "empty" if not content else "whitespace")


def test_header_without_rows(tmp_path):
    _error(_write(tmp_path, "d.csv", "time,a,b\n"), "no", "rows", "'a'")


def test_unparseable_csv(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n13,14,15\n")
    _error(path, "Expected 2 fields")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name,a\nM\u00fcller,1\n".encode("latin-1"))
    message = _error(path, "UTF-8", "byte 8", "line 2")
    assert "re-save" in message


def test_not_utf8_offset_past_a_block_boundary(tmp_path):
    # A two-byte character straddles the 1 MiB read boundary; the bad byte comes after it.
    head = b"a,name\n1,"
    data = head + b"x" * ((1 << 20) - len(head) - 1) + "\u00e9".encode() + b"\n2,ok\n3,\xff\n"
    assert data[(1 << 20) - 1 : (1 << 20) + 1] == "\u00e9".encode()
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    bad = data.index(b"\xff")
    _error(path, f"byte {bad} ", "(line 4)")


def test_bad_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"this is not parquet at all")
    _error(path, "Parquet")
    with pytest.raises(DataError, match="bad.parquet"):
        read_table(path)


def test_empty_parquet(tmp_path):
    path = tmp_path / "e.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(path)
    _error(path, "no", "rows")


@pytest.mark.parametrize(
    "kwargs, name",
    [({"time_col": "tme"}, "'tme'"), ({"label_col": "lbl"}, "'lbl'"), ({"columns": ["a", "zz"]}, "'zz'")],
)
def test_unknown_column(tmp_path, kwargs, name):
    path = _write(tmp_path, "d.csv", "time,a,b\n2024-01-01,1,2\n")
    message = _error(path, name, "available columns", "'time', 'a', 'b'", **kwargs)
    assert next(iter(kwargs)) in message


def test_unknown_column_list_is_truncated(tmp_path):
    header = ",".join(f"c{i}" for i in range(25))
    path = _write(tmp_path, "d.csv", header + "\n" + ",".join(["1"] * 25) + "\n")
    message = _error(path, "'nope'", "'c9'", "15 more", columns=["nope"])
    assert "'c10'" not in message


def test_column_roles_conflict(tmp_path):
    path = _write(tmp_path, "d.csv", "t,a,label\n1,2,0\n")
    _error(path, "'label'", label_col="label", columns=["a", "label"])
    _error(path, "'t'", time_col="t", label_col="t")


def test_columns_option_as_string(tmp_path):
    _error(_write(tmp_path, "d.csv", "a\n1\n"), "columns", columns="a")


def test_read_table_returns_raw(tmp_path):
    path = _write(tmp_path, "d.csv", "time;a;name\n2024-01-01;1;x\n")
    table = read_table(path)
    assert list(table.columns) == ["time", "a", "name"]
    assert table.loc[0, "name"] == "x"


# ---------------------------------------------------------------- fingerprint


def test_fingerprint(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB block
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert fingerprint(path) == hashlib.sha256(data).hexdigest()
    assert fingerprint(str(path)) == fingerprint(path)
    with pytest.raises(DataError, match="missing.bin"):
        fingerprint(tmp_path / "missing.bin")


# ---------------------------------------------------------------- write_table


def test_write_table_csv_round_trip(tmp_path):
    frame = pd.DataFrame({"a": [0.1, 1 / 3, -2e-300], "b": [1, 2, 3]}, index=pd.RangeIndex(3, name="step"))
    path = write_table(frame, tmp_path / "out.csv")
    assert path == tmp_path / "out.csv"
    back = pd.read_csv(path, index_col="step")
    pd.testing.assert_frame_equal(back, frame, check_index_type=False, check_exact=True)
    assert list(tmp_path.iterdir()) == [path]


def test_write_table_parquet_keeps_datetime_index(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0]}, index=pd.date_range("2024-01-01", periods=2, name="time"))
    path = write_table(frame, tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame, check_freq=False)


def test_write_table_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    target.write_text("old,content\n1,2\n")

    def partial_then_fail(self, path_or_buf=None, *args, **kwargs):
        with open(path_or_buf, "w") as fh:
            fh.write("a,b\n1,")
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(pd.DataFrame, "to_csv", partial_then_fail)
    with pytest.raises(DataError) as info:
        write_table(pd.DataFrame({"a": [1], "b": [2]}), target)
    message = str(info.value)
    assert "\n" not in message and "out.csv" in message and "disk on fire" in message
    assert target.read_text() == "old,content\n1,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no .tmp left behind


def test_write_table_unformattable_column_keeps_old_file(tmp_path):
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("cannot format me")

        __repr__ = __str__

    target = tmp_path / "out.csv"
    target.write_bytes(b"previous")
    frame = pd.DataFrame({"a": [1.0, 2.0], "bad": [Unprintable(), Unprintable()]})
    with pytest.raises(DataError, match="out.csv"):
        write_table(frame, target)
    assert target.read_bytes() == b"previous"
    assert not list(tmp_path.glob("*.tmp"))


def test_write_table_missing_directory(tmp_path):
    target = tmp_path / "no" / "such" / "out.csv"
    with pytest.raises(DataError) as info:
        write_table(pd.DataFrame({"a": [1]}), target)
    message = str(info.value)
    assert str(target) in message and "does not exist" in message and "\n" not in message


def test_write_table_new_file_permissions(tmp_path):
    path = write_table(pd.DataFrame({"a": [1]}), tmp_path / "p.csv")
    mask = os.umask(0o022)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_write_table_permission_denied(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(DataError, match="permission denied"):
            write_table(pd.DataFrame({"a": [1]}), locked / "out.csv")
    finally:
        locked.chmod(0o700)


def test_write_table_replace_fails_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")

    def deny(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", deny)
    with pytest.raises(DataError) as info:
        write_table(pd.DataFrame({"a": [1.0]}), target)
    message = str(info.value)
    assert "permission denied" in message and "out.parquet" in message and "\n" not in message
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_write_table_keeps_permissions_of_replaced_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("x\n")
    target.chmod(0o640)
    write_table(pd.DataFrame({"a": [1]}), target, index=False)
    assert target.stat().st_mode & 0o777 == 0o640
    assert target.read_text() == "a\n1\n"


def test_unknown_column_suggests_close_name(tmp_path):
    path = _write(tmp_path, "d.csv", "time,pressure\n2024-01-01,1\n")
    _error(path, "columns entry 'presure'", "did you mean 'pressure'", columns=["presure"])
