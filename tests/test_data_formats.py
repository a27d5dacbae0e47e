"""Tests for anomaly.data.formats: separators, decimal commas, UTF-8, Parquet, file errors, fingerprints."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest

from anomaly.data.formats import fingerprint, read_table
from anomaly.data.reading import read_series
from anomaly.data.writing import write_table
from anomaly.errors import DataError
from tests.conftest import read_error as _error
from tests.conftest import write_file as _write


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
    # The same instants, in UTC: timezone-aware times become UTC whatever the format.
    pd.testing.assert_index_equal(series.frame.index, index.tz_convert("UTC"), check_exact=True, check_freq=False)
    assert str(series.frame.index.tz) == "UTC"
    # Detected by content too: the first column holds datetimes.
    assert read_series(path).time_col == "when"


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
    _error(path, "expected 2 fields on each line, as the header names 2 columns, but line 8 has 3")
    path = _write(tmp_path, "late.csv", "a,b\n" + "1,2\n" * 100 + "13,14,15\n")  # past the sniffed lines
    _error(path, "Expected 2 fields in line 102")


def test_a_first_field_without_a_name_is_refused_not_taken_for_a_row_index(tmp_path):
    # pandas would make the times a row index and read b's values as a's, a third field as b's.
    rows = "".join(f"2024-01-01 00:0{m}:00,{m}.5,{m}\n" for m in range(6))
    _error(
        _write(tmp_path, "saved.csv", "a,b\n" + rows),
        "expected 2 fields on each line, as the header names 2 columns, but line 2 has 3",
        "a first column without one is a row index saved without its label",
    )
    # One empty field too many (a delimiter ending every data line) is no column: left out.
    series = read_series(_write(tmp_path, "trailing.csv", "time,a,b\n" + rows.replace("\n", ",\n")))
    assert series.time_col == "time" and series.feature_names == ["a", "b"]
    np.testing.assert_array_equal(series.values[:2], [[0.5, 0.0], [1.5, 1.0]])


def test_one_column_of_decimal_commas_reads_as_numbers(tmp_path):
    series = read_series(_write(tmp_path, "one.csv", "value\n5,0063\n-1,5\n\n2,25\n7\n"))
    np.testing.assert_array_equal(series.values[:, 0], [5.0063, -1.5, 2.25, 7.0])


def test_a_typo_in_a_decimal_comma_column_is_the_cell_named(tmp_path):
    rows = "".join(f"2024-01-01 00:0{m}:00;{m},5;{m},25\n" for m in range(6))
    typo = rows.replace("3,5;", "-;")
    # Named as a feature (or taken as one at scoring), the typo is the cell the error names...
    _error(_write(tmp_path, "typo.csv", "time;a;b\n" + typo), "column 'a'", "row 4 holds '-'", columns=["a", "b"])
    # ...and, found by content, the column of numbers with one typo is still a feature.
    _error(_write(tmp_path, "auto.csv", "time;a;b\n" + typo), "column 'a' should be numeric", "row 4 holds '-'")
    clean = read_series(_write(tmp_path, "clean.csv", "time;a;b\n" + rows))
    np.testing.assert_array_equal(clean.values[:2], [[0.5, 0.25], [1.5, 1.25]])


def test_a_header_of_values_or_a_comment_line_is_refused(tmp_path):
    rows = "".join(f"2024-01-01 00:0{m}:00,{m}.5,{m}\n" for m in range(6))
    _error(_write(tmp_path, "headless.csv", rows), "expected a header naming the columns on line 1, but it holds values")
    _error(
        _write(tmp_path, "logger.csv", "# Logger SN 1234\ntime,a,b\n" + rows),
        "expected the header (the column names) on line 1, but it is a comment ('# Logger SN 1234')",
    )
    # Integers are names a frame without names gets (0,1,2); a column may be named "#".
    assert read_series(_write(tmp_path, "ints.csv", "0,1\n1.5,2\n2.5,3\n")).feature_names == ["0", "1"]
    assert read_series(_write(tmp_path, "hash.csv", "#,a\n1,2.5\n2,3.5\n")).feature_names == ["#", "a"]


def test_excel_sep_line_declares_the_separator(tmp_path):
    path = _write(tmp_path, "excel.csv", "\ufeffsep=;\r\ntime;a;b\r\n2024-01-01;1,5;2\r\n2024-01-02;2,5;3\r\n")
    series = read_series(path)
    assert series.time_col == "time" and series.feature_names == ["a", "b"]
    np.testing.assert_array_equal(series.values, [[1.5, 2.0], [2.5, 3.0]])


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zip", "parquet-named-otherwise"])
def test_compressed_text_and_parquet_are_known_by_their_first_bytes(tmp_path, kind):
    import bz2
    import gzip
    import lzma
    import zipfile

    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=5, freq="min"), "a": np.arange(5) + 0.5})
    text = frame.to_csv(index=False).encode()
    path = tmp_path / f"d.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("d.csv", text)
    elif kind == "parquet-named-otherwise":
        frame.to_parquet(path, index=False)
    else:
        path.write_bytes({"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](text))
    series = read_series(path)
    assert series.time_col == "time"
    np.testing.assert_array_equal(series.values[:, 0], frame.a.to_numpy())
    from anomaly.data.reading import iter_series

    with iter_series(path) as stream:  # the data's fingerprint is the file's, compressed or not
        list(stream)
        assert stream.fingerprint == fingerprint(path)


def test_a_zip_of_several_files_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "a\n1\n")
        archive.writestr("b.csv", "a\n2\n")
    _error(path, "expected a zip archive of one file, but it holds 2")


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


def test_read_table_returns_raw(tmp_path):
    path = _write(tmp_path, "d.csv", "time;a;name\n2024-01-01;1;x\n")
    table = read_table(path)
    assert list(table.columns) == ["time", "a", "name"]
    assert table.loc[0, "name"] == "x"


def test_fingerprint(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # more than one 1 MiB block
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert fingerprint(path) == hashlib.sha256(data).hexdigest()
    assert fingerprint(str(path)) == fingerprint(path)
    with pytest.raises(DataError, match="missing.bin"):
        fingerprint(tmp_path / "missing.bin")


@pytest.mark.parametrize(
    "first, missing",
    [("23:00:00", "date"), ("11:00 PM", "date"), ("31-Dec 22:00", "year"), ("Dec 31 10:00 PM", "year")],
)
def test_times_without_a_date_or_a_year_are_refused(tmp_path, first, missing):
    # pandas would fill in today's date or the year 1900 and sort the rows after midnight first.
    path = _write(tmp_path, "night.csv", f"time,a\n{first},1\n" + "".join(f"{first},{i}\n" for i in range(2, 5)))
    _error(path, f"row 1 holds '{first}', a time without a {missing}", "--time-col none")
    # A date without a time, or a month without a day, is a date.
    for cell in ("2024-01-01", "Jan 2024", "1/1/2024 1:00 PM"):
        assert read_series(_write(tmp_path, "ok.csv", f"time,a\n{cell},1\n")).time_col == "time"


def test_grouped_thousands_with_decimal_commas_read_and_text_columns_are_named(tmp_path):
    rows = ["2024-01-01 00:00;987,5;0,5", "2024-01-01 00:01;1.234,5;1,5", "2024-01-01 00:02;-12.345.678,25;2,5"]
    series = read_series(_write(tmp_path, "de.csv", "Zeit;Leistung;b\n" + "\n".join(rows) + "\n"))
    np.testing.assert_array_equal(series.values[:, 0], [987.5, 1234.5, -12345678.25])
    # Quoted thousands in a comma-separated file are text: the note says which column and why.
    text = read_series(_write(tmp_path, "us.csv", 'time,a,b\n2024-01-01,"1,000",1\n2024-01-02,"2,500",2\n'))
    assert text.feature_names == ["b"] and text.unused_columns == ("a",)
    assert text.notes == (
        "column 'a' holds text (first: '1,000'), so it is not a feature; numbers with thousands separators or units read as text",
    )
