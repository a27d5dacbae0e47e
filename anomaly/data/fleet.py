"""A fleet on disk: many series, from one table with a series column or one file per series.

Each series becomes a file of its own that the one reader (:mod:`anomaly.data.reading`) reads
exactly as it reads a single series: column roles, gaps, the time rule, notes and bad-input
errors all hold per series, and messages name the series (``fleet.csv, series 'pump-7'``).

A table with a series column is split in one pass, ``chunk_rows`` rows at a time, into one CSV
file per series in a working folder: memory stays bounded however long the table is, and a
series' rows keep their order. Values go through ``repr`` (pandas' ``to_csv``), which reads back
to the same float64, so a series trained from the fleet equals the same series trained from its
own file.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from anomaly.data.formats import PARQUET_SUFFIXES, open_reader, shown_path
from anomaly.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["SeriesFile", "find_series", "fleet_stem"]

DATA_SUFFIXES = frozenset({".csv", ".tsv", ".txt"}) | PARQUET_SUFFIXES
_MAX_LISTED = 10
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class SeriesFile:
    """One series of a fleet: its id, the file that holds its rows, its name in messages.

    Attributes
    ----------
    name : str
        The series id: the value in the series column, or the file's stem.
    path : Path
        A file the one reader reads (the user's own file, or the part split off a fleet table).
    shown : str
        How messages name it: ``fleet.csv, series 'pump-7'`` or the file's path.
    source : str
        The user's file it came from.
    """

    name: str
    path: Path
    shown: str
    source: str


def find_series(source: str | os.PathLike, series_col: str | None, workdir: Path, *, chunk_rows: int = 65536) -> list[SeriesFile]:
    """The series of a fleet, in the order they first appear.

    Parameters
    ----------
    source : path, folder or glob
        A CSV/Parquet table with a ``series_col``; or a folder, or a glob pattern
        (``data/pump-*.csv``), of data files with one series each, named by the file's stem.
    series_col : str or None
        The column holding each row's series id; required for a single table, not allowed with
        a folder or glob.
    workdir : Path
        Where the parts of a split table are written (an existing, private folder).
    chunk_rows : int, default 65536
        Rows of the table read at a time while splitting.

    Returns
    -------
    list of SeriesFile

    Raises
    ------
    DataError
        When there is no such file or folder, no data file matches, two files share a stem, the
        series column is missing, or a row has no series id.
    """
    text = str(source)
    if _GLOB_CHARS & set(text) and not Path(text).exists():
        return _one_per_file(sorted(Path(p) for p in glob.glob(text)), text, series_col)
    path = Path(text)
    if path.is_dir():
        return _one_per_file(sorted(p for p in path.iterdir() if p.is_file()), text, series_col)
    if series_col is None:
        raise DataError(
            f"{shown_path(path)}: a fleet in one table needs --series-col COLUMN, the column naming each row's series"
        )
    return _split_table(path, series_col, workdir, chunk_rows)


def _one_per_file(files: Sequence[Path], shown: str, series_col: str | None) -> list[SeriesFile]:
    """One series per data file (hidden files and other suffixes are left out)."""
    if series_col is not None:
        raise DataError(
            f"{shown}: --series-col {series_col!r} splits one table; a folder or glob has one series per file, "
            "named by its stem (give one or the other)"
        )
    data = [p for p in files if _data_name(p) is not None and not p.name.startswith(".")]
    if not data:
        raise DataError(
            f"{shown}: expected data files (.csv, .tsv, .txt, .parquet, .pq; text also .gz, .bz2, .xz), but found none"
        )
    by_stem: dict[str, Path] = {}
    for file in data:
        stem = _data_name(file)
        if stem in by_stem:
            raise DataError(f"{shown}: two files name series {stem!r}: {by_stem[stem].name} and {file.name}")
        by_stem[stem] = file
    return [SeriesFile(stem, file, str(file), str(file)) for stem, file in by_stem.items()]


_COMPRESSED_SUFFIXES = frozenset({".gz", ".bz2", ".xz"})


def _data_name(file: Path) -> str | None:
    """The series a data file names (``pump-7`` for ``pump-7.csv`` or ``pump-7.csv.gz``), or None
    for a file that is not one."""
    inner = file.with_suffix("") if file.suffix.lower() in _COMPRESSED_SUFFIXES else file
    if inner.suffix.lower() not in DATA_SUFFIXES or (inner is not file and inner.suffix.lower() in PARQUET_SUFFIXES):
        return None
    return inner.stem


def _split_table(path: Path, series_col: str, workdir: Path, chunk_rows: int) -> list[SeriesFile]:
    """Split a table into one CSV per series, ``chunk_rows`` rows at a time."""
    shown = shown_path(path)
    parts: dict[str, SeriesFile] = {}
    columns: list[str] | None = None
    rows = 0
    with closing(open_reader(path, shown, chunk_rows, text_columns=[series_col])) as reader:
        while (frame := reader.read(chunk_rows)) is not None:
            if columns is None:
                if series_col not in frame.columns:
                    listed = ", ".join(map(repr, frame.columns[:_MAX_LISTED]))
                    more = f" and {len(frame.columns) - _MAX_LISTED} more" if len(frame.columns) > _MAX_LISTED else ""
                    raise DataError(f"{shown}: --series-col {series_col!r} is not a column; the columns are {listed}{more}")
                columns = [c for c in frame.columns if c != series_col]
                if not columns:
                    raise DataError(f"{shown}: expected columns besides the series column {series_col!r}, but there are none")
            ids = frame[series_col]
            missing = ids.isna().to_numpy()
            if missing.any():
                row = rows + int(missing.argmax()) + 1
                line = f" (line {row + 1})" if reader.text_format is not None else ""  # text has lines, Parquet not
                raise DataError(f"{shown}: row {row}{line} has no series id in column {series_col!r}")
            keys = ids.astype(str).str.strip()
            for name, part in frame[columns].groupby(keys.to_numpy(), sort=False):
                name = str(name)
                target = parts.get(name)
                if target is None:
                    if not name:
                        raise DataError(f"{shown}: a row has an empty series id in column {series_col!r}")
                    target = SeriesFile(name, workdir / f"{len(parts):05d}.csv", f"{shown}, series {name!r}", shown)
                    parts[name] = target
                    part.to_csv(target.path, index=False)
                else:
                    part.to_csv(target.path, index=False, header=False, mode="a")
            rows += len(frame)
    if not parts:
        raise DataError(f"{shown}: expected rows, but the table has none")
    logger.info("%s: %d rows split into %d series by %r", shown, rows, len(parts), series_col)
    return list(parts.values())


def series_table(series: Sequence[SeriesFile]) -> pd.DataFrame:
    """The fleet's series as a table: ``series``, ``file`` (the user's), for the run's artifacts."""
    return pd.DataFrame({"series": [s.name for s in series], "file": [s.source for s in series]})


def fleet_stem(shown: str) -> str:
    """A fleet's name for its results, runs and model: the table's or folder's stem; for a glob,
    that of the folder before its first pattern (``pumps/*.csv``: ``pumps``); else ``fleet``."""
    plain = []
    for part in Path(shown).parts:
        if _GLOB_CHARS & set(part):
            break
        plain.append(part)
    return (Path(*plain).stem if plain else "") or "fleet"
