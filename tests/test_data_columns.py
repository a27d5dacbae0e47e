"""Tests for anomaly.data.columns: column roles, the time column (one time rule), labels, features."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomaly.data.columns import arrow_times, parse_time
from anomaly.data.reading import Series, read_series
from tests.conftest import read_error as _error
from tests.conftest import write_file as _write


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
    path = _write(tmp_path, "d.csv", "time,a,label\n2024-01-03,3,1\n2024-01-01,1,0\n2024-01-02,2,0\n2024-01-04,4,0\n")
    with caplog.at_level(logging.INFO, logger="anomaly.data"):
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


def test_a_column_taken_as_the_time_column_says_how_to_read_without_one(tmp_path):
    # Transaction files carry a "Time" of seconds that repeat: taken by its name, it cannot be
    # a time index, and the error says how to read the rows in file order instead.
    text = "Time,V1,Amount\n0,1.5,10\n0,1.7,12\n1,1.6,9\n"
    path = _write(tmp_path, "cards.csv", text)
    message = _error(path, "'Time'", "unique", "row 2")
    assert message.endswith(
        "('Time' was taken as the time column; to read the rows in file order, without times: "
        "--exclude-columns Time (exclude_columns) leaves it out, --time-col none (time_col='none') keeps it as a feature)"
    )
    series = read_series(path, time_col="None")
    assert series.time_col is None and series.feature_names == ["Time", "V1", "Amount"]
    pd.testing.assert_index_equal(series.frame.index, pd.RangeIndex(3, name="step"))
    assert read_series(path, time_col="none", columns=["V1", "Amount"]).unused_columns == ("Time",)
    left_out = read_series(path, exclude_columns=["Time"])  # neither the time column nor a feature
    assert left_out.time_col is None and left_out.feature_names == ["V1", "Amount"] and left_out.unused_columns == ("Time",)
    pd.testing.assert_index_equal(left_out.frame.index, pd.RangeIndex(3, name="step"))
    # Named explicitly, the column's own error stands alone; a column named "none" is a column.
    assert "--time-col none" not in _error(path, "unique", time_col="Time")
    named = _write(tmp_path, "named.csv", "none,a\n1,2\n2,3\n")
    assert read_series(named, time_col="none").time_col == "none"


def test_excluded_columns_are_left_out_of_the_default_features_and_checked(tmp_path):
    path = _write(tmp_path, "d.csv", "timestamp,id,a,b\n2026-01-01 00:00,7,1,2\n2026-01-01 00:05,9,3,4\n")
    series = read_series(path, exclude_columns=["id", "b"])
    assert series.time_col == "timestamp" and series.feature_names == ["a"] and series.unused_columns == ("id", "b")
    _error(
        path,
        "exclude_columns entry 'idd' (--exclude-columns) is not a column of the file",
        "did you mean 'id'",
        exclude_columns=["idd"],
    )
    _error(path, "give either option columns or option exclude_columns, not both", columns=["a"], exclude_columns=["id"])
    _error(
        path,
        "exclude_columns should list other columns, but 'timestamp' is the time_col",
        time_col="timestamp",
        exclude_columns=["timestamp"],
    )
    _error(path, "exclude_columns should name each column once, but 'id' appears twice", exclude_columns=["id", "id"])
    _error(
        path,
        "expected at least one numeric feature column, but exclude_columns leaves out every one ('id', 'a', 'b')",
        exclude_columns=["b", "id", "a"],
    )


def test_the_label_column_is_found_by_its_name_and_its_zeros_and_ones():
    from anomaly.data.columns import find_label_column

    sample = pd.DataFrame(
        {
            "changepoint": [0, 1, 0],
            "Anomaly": [0.0, 0.0, 1.0],
            "target": [0, 3, 1],
            "x": [0, 1, 0],
            "is_anomaly": [False, True, False],
        }
    )
    assert find_label_column(sample) == ("is_anomaly", ["Anomaly", "changepoint"])  # target holds a 3
    assert find_label_column(sample[["x", "target"]]) == (None, [])
    assert find_label_column(pd.DataFrame({"Label": ["0", "1", ""]})) == ("Label", [])


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


def test_explicit_columns_order(tmp_path):
    path = _write(tmp_path, "d.csv", "a,b,c,flag\n1,2,3,true\n4,5,6,false\n")
    series = read_series(path, columns=["c", "a", "flag"])
    assert series.feature_names == ["c", "a", "flag"]
    np.testing.assert_array_equal(series.values, [[3, 1, 1], [6, 4, 0]])


def test_boolean_and_text_columns_are_not_auto_features(tmp_path, caplog):
    path = _write(tmp_path, "d.csv", "a,flag,name,b\n1,true,x,2\n3,false,y,4\n5,true,z,6\n")
    with caplog.at_level(logging.INFO, logger="anomaly.data"):
        series = read_series(path)
    assert series.feature_names == ["a", "b"]
    assert series.values.dtype == np.float64
    assert any("'name'" in record.getMessage() and "text" in record.getMessage() for record in caplog.records)


def test_a_0_1_column_named_like_labels_is_not_a_feature_unless_named(tmp_path, caplog):
    # TSB-AD's files end in a "Label" column, SMD's and SKAB's in "anomaly": taken as a feature,
    # labels all 0 in training would flag exactly the labelled rows later.
    path = _write(tmp_path, "d.csv", "a,Label,b,target\n1,0,2,0.5\n3,1,4,7\n5,0,6,1\n")
    with caplog.at_level(logging.WARNING, logger="anomaly.data"):
        series = read_series(path)
    assert series.feature_names == ["a", "b", "target"]  # a "target" of other values stays a feature
    assert series.unused_columns == ("Label",)
    assert any("'Label'" in r.getMessage() and "not used as a feature" in r.getMessage() for r in caplog.records)
    assert read_series(path, columns=["a", "Label"]).feature_names == ["a", "Label"]
    labelled = read_series(path, label_col="Label")
    assert labelled.feature_names == ["a", "b", "target"] and labelled.labels.tolist() == [False, True, False]


def test_a_nameless_column_that_counts_the_rows_is_a_saved_index_not_a_feature(tmp_path, caplog):
    # DataFrame.to_csv() writes the row index under an empty header (pandas reads it back as
    # "Unnamed: 0"), R's write.csv the row names 1, 2, ...: a ramp, not a measurement.
    path = _write(tmp_path, "d.csv", ",a,b\n0,1,2\n1,3,4\n2,5,6\n")
    with caplog.at_level(logging.WARNING, logger="anomaly.data"):
        series = read_series(path)
    assert series.feature_names == ["a", "b"] and series.unused_columns == ("Unnamed: 0",)
    assert any("counts the rows (0, 1, ...), like a saved row index" in r.getMessage() for r in caplog.records)
    assert read_series(path, columns=["Unnamed: 0", "a"]).feature_names == ["Unnamed: 0", "a"]
    assert read_series(_write(tmp_path, "r.csv", ",a\n1,1\n2,3\n3,5\n")).feature_names == ["a"]
    # A nameless column of other values, and a named counter, are features as before.
    assert read_series(_write(tmp_path, "v.csv", ",a\n0,1\n2,3\n3,5\n")).feature_names == ["Unnamed: 0", "a"]
    assert read_series(_write(tmp_path, "n.csv", "id,a\n0,1\n1,3\n2,5\n")).feature_names == ["id", "a"]


def test_a_delimiter_ending_every_line_makes_no_column(tmp_path):
    # A spreadsheet's export: "a,b," on every line gives pandas an empty column "Unnamed: 2".
    path = _write(tmp_path, "d.csv", "time,a,b,\n2024-01-01,1,2,\n2024-01-02,3,4,\n2024-01-03,5,6,\n")
    series = read_series(path)
    assert series.feature_names == ["a", "b"] and series.unused_columns == ("Unnamed: 3",)
    # A named column that is empty is still an error: the user may have meant it as a feature.
    message = _error(_write(tmp_path, "e.csv", "time,a,c\n2024-01-01,1,\n2024-01-02,3,\n"))
    assert "'c' should hold numbers, but every cell is empty" in message, message


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


def test_unknown_column_suggests_close_name(tmp_path):
    path = _write(tmp_path, "d.csv", "time,pressure\n2024-01-01,1\n")
    _error(path, "columns entry 'presure'", "did you mean 'pressure'", columns=["presure"])


# ---------------------------------------------------------------- the time fast path


PLAIN_TIME = st.builds(
    lambda y, m, d, time, frac: f"{y:04d}-{m:02d}-{d:02d}{time}{frac if time.count(':') == 2 else ''}",
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.sampled_from(["", "T00", " 23:59", "T12:30:45", " 01:02:03"]),
    st.sampled_from(["", ".5", ".123456", ".1234567", ".000000000"]),
)


ODD_TIME = st.builds(
    lambda y, m, d, sep, time, frac, zone, pad: f"{pad}{y:04d}-{m:02d}-{d:02d}{sep}{time}{frac}{zone}{pad}",
    st.integers(1, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.sampled_from(["", "T", " ", "t"]),
    st.sampled_from(["", "00", "23:59", "12:30:45", "24:00:00", "23:59:60", "7:05", "12:3"]),
    st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".000000000", ",5"]),
    st.sampled_from(["", "Z", "+01:00", "-0530", "+02"]),
    st.sampled_from(["", " "]),
) | st.sampled_from(["2024", "2024-01", "20240101", "", "x", "2024-1-1"])


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(PLAIN_TIME, min_size=1, max_size=5) | st.lists(PLAIN_TIME | ODD_TIME, min_size=1, max_size=5))
def test_arrow_time_fast_path_agrees_with_parse_time(cells):
    column = pd.Series(cells, dtype="str")
    fast = arrow_times(column, "time")
    if fast is None:
        return
    pd.testing.assert_index_equal(fast, parse_time(column, "x.csv", "time"), exact=True)
