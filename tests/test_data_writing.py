"""Tests for anomaly.data.writing: the one atomic writer, tables and text."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from anomaly.data.writing import write_table
from anomaly.errors import DataError


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
