"""Writing files atomically: tables, text, and per-timestep results as they are produced.

Every file goes through :class:`AtomicFile`, the one atomic writer: the content is written to a
temporary file in the target's directory, fsynced, given the target's permissions (those of
the file it replaces, else 0666 less the umask) and renamed into place with ``os.replace``,
after which the directory is fsynced (best effort). Readers see either the old file or the
complete new one, never a half-written one; an error or an interrupt removes the temporary
file and leaves the target as it was.

:class:`ResultsSink` appends result chunks to one such file as they are scored (or writes them
to standard output at once, for pipes). Rows go through pyarrow's writers, which format numbers
about ten times faster than ``DataFrame.to_csv`` (the difference between scoring and writing
being the bottleneck).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from anomaly.data.formats import PARQUET_SUFFIXES, condense, os_reason, shown_path
from anomaly.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["STDOUT", "AtomicFile", "ResultsSink", "write_table", "write_text"]

STDOUT = "-"


class AtomicFile:
    """A file written under a temporary name beside its target and renamed into place.

    Parameters
    ----------
    target : Path
        The file to create or replace; its directory must exist.

    Attributes
    ----------
    tmp : Path or None
        The temporary file, once :meth:`create` has made it, until :meth:`commit` or :meth:`abort`.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.tmp: Path | None = None

    def create(self) -> Path:
        """Make the (empty) temporary file in the target's directory. Raises OSError."""
        fd, name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".tmp")
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def commit(self) -> Path:
        """fsync the written temporary file, move it into place, fsync the directory. Raises OSError."""
        assert self.tmp is not None, "commit() before create()"
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(self.tmp, _mode_for(self.target))
        os.replace(self.tmp, self.target)
        self.tmp = None
        _fsync_directory(self.target.parent)
        return self.target

    def abort(self) -> None:
        """Remove the temporary file, if any; the target stays as it was."""
        if self.tmp is None:
            return
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("could not remove the temporary file %s: %s", self.tmp, err)
        self.tmp = None


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = True) -> Path:
    """Write a table atomically, as Parquet (``.parquet``/``.pq``) or else CSV.

    A new file gets the usual permissions (0666 less the umask); a replaced file keeps its
    permissions (see :class:`AtomicFile`).

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
    if Path(path).suffix.lower() in PARQUET_SUFFIXES:
        return _write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=index))
    return _write_atomically(path, lambda tmp: frame.to_csv(tmp, index=index))


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write a UTF-8 text file atomically, as :func:`write_table` writes a table.

    Parameters
    ----------
    text : str
    path : str or PathLike
        The file to create or replace.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        As for :func:`write_table`.
    """
    return _write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` into an :class:`AtomicFile` for ``path``, with write_table's messages."""
    target = Path(path)
    shown = shown_path(path)
    directory = target.parent
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise DataError(f"cannot write {shown}: the directory {str(directory)!r} {what}")
    if target.is_dir():
        raise DataError(f"cannot write {shown}: expected a file path, but it is a directory")
    atomic = AtomicFile(target)
    try:
        tmp = atomic.create()
    except OSError as err:
        reason = os_reason(err, with_file=False)
        raise DataError(f"cannot write {shown}: {reason} in the directory {str(directory)!r}") from None
    try:
        write(tmp)
        return atomic.commit()
    except BaseException as err:
        atomic.abort()
        if not isinstance(err, Exception):
            raise  # KeyboardInterrupt and friends: clean up, but do not disguise them
        # The temporary file's name would only confuse: the message names the target.
        reason = os_reason(err, with_file=False) if isinstance(err, OSError) else condense(err)
        raise DataError(f"cannot write {shown}: {reason}") from None


class ResultsSink:
    """Append result chunks to one table, as they are scored.

    A file is written to its :class:`AtomicFile` and moved into place only when the whole series
    has been scored (:meth:`commit`); an error or an interrupt removes the temporary file
    (:meth:`abort`), so an existing results file is never half overwritten. Standard output gets
    each chunk as CSV lines as soon as it is scored, for pipes.

    Parameters
    ----------
    target : path or "-"
        ``.parquet``/``.pq`` for Parquet, ``-`` for CSV on standard output, anything else CSV.
    """

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = str(target)
        self.to_stdout = self.target == STDOUT
        self.parquet = not self.to_stdout and Path(self.target).suffix.lower() in PARQUET_SUFFIXES
        self.rows = 0
        self._writer: Any = None
        self._schema: Any = None
        self._file = AtomicFile(Path(self.target))
        self._handle: IO[bytes] | None = None
        if not self.to_stdout:
            path = Path(self.target)
            if path.is_dir():
                raise DataError(f"--output {self.target}: expected a file path, but it is a directory")
            blocking = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
            if blocking is not None:
                raise DataError(f"--output {self.target}: cannot create its directory: {blocking} is a file")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise DataError(f"--output {self.target}: cannot create its directory ({err.strerror or err})") from None
            if not os.access(path.parent, os.W_OK | os.X_OK):
                raise DataError(f"--output {self.target}: cannot write in its directory (permission denied)")

    def _temporary(self) -> Path:
        """The temporary twin of the target, created on the first write."""
        if self._file.tmp is None:
            try:
                self._file.create()
            except OSError as err:
                raise DataError(f"--output {self.target}: cannot write it ({err.strerror or err})") from None
        assert self._file.tmp is not None
        return self._file.tmp

    def write(self, chunk: pd.DataFrame) -> None:
        """Append rows: the index becomes the first column.

        Parameters
        ----------
        chunk : DataFrame of shape (n, C)
            Every chunk must have the same columns.
        """
        import pyarrow.csv as pa_csv

        table = _to_arrow(chunk, exact_times=self.parquet)
        try:
            if self.parquet:
                if self._writer is None:
                    import pyarrow.parquet as pq

                    self._schema = table.schema
                    # Dictionary encoding is tried per column by default and never pays off for
                    # scores and residuals (all distinct floats): without it writing is ~6x faster.
                    self._writer = pq.ParquetWriter(self._temporary(), self._schema, use_dictionary=False)
                self._writer.write_table(table.cast(self._schema))
            else:
                if self._handle is None:
                    # stdout: straight to the byte stream, flushed per chunk for a reader at the
                    # other end of a pipe. A file: its temporary twin.
                    self._handle = sys.stdout.buffer if self.to_stdout else open(self._temporary(), "wb")  # noqa: SIM115
                if self.rows == 0:
                    # pyarrow quotes every header name; write it as pandas would, quoted only if needed.
                    self._handle.write((",".join(_csv_name(n) for n in table.column_names) + "\n").encode())
                # One write per chunk, each with its own formatting of times (see _to_arrow).
                pa_csv.write_csv(
                    table, self._handle, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed")
                )
                if self.to_stdout:
                    self._handle.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise DataError(f"--output {self.target}: cannot write it ({err.strerror or err})") from None
        self.rows += len(chunk)

    def commit(self) -> Path | None:
        """Finish the table and move it into place (atomically). Returns the file, or None for stdout."""
        if self._writer is not None:
            self._writer.close()
        if self.to_stdout:
            sys.stdout.flush()
            return None
        if self._handle is not None:
            self._handle.close()
        self._temporary()  # an empty series still replaces the target with an empty table
        try:
            return self._file.commit()
        except OSError as err:
            raise DataError(f"--output {self.target}: cannot write it ({err.strerror or err})") from None

    def abort(self) -> None:
        """Drop what was written to the temporary file; the target stays as it was."""
        for closer in (self._writer, self._handle if not self.to_stdout else None):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001 - cleaning up after another error
                pass
        self._file.abort()


def _to_arrow(chunk: pd.DataFrame, *, exact_times: bool) -> Any:
    """The chunk as an Arrow table with its index as the first column.

    For CSV, times (the index's and any time column's, such as a fleet's) are stored at the
    coarsest unit that keeps them exact (seconds, else milliseconds, else nanoseconds), so that
    ``2026-01-01 00:05:00`` is not written with nine zeros of fraction; Parquet keeps nanoseconds.
    """
    import pyarrow as pa

    if not exact_times:
        times = [
            name for name, kind in chunk.dtypes.items() if isinstance(kind, (np.dtype, pd.DatetimeTZDtype)) and kind.kind == "M"
        ]
        if times:
            chunk = chunk.assign(**{name: _coarsest(pd.DatetimeIndex(chunk[name])) for name in times})
    table = pa.Table.from_pandas(chunk, preserve_index=False)
    index = chunk.index
    if isinstance(index, pd.DatetimeIndex):
        if not exact_times:
            index = _coarsest(index)
        column = pa.array(index.asi8, type=pa.timestamp(index.unit, tz=str(index.tz) if index.tz else None))
    else:
        column = pa.array(np.asarray(index))
    return table.add_column(0, index.name or "step", column)


def _coarsest(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``times`` at the coarsest unit that keeps them exact: seconds, milliseconds or nanoseconds."""
    nanos = times.as_unit("ns").asi8
    unit = "s" if not np.any(nanos % 1_000_000_000) else "ms" if not np.any(nanos % 1_000_000) else "ns"
    return times.as_unit(unit)


def _csv_name(name: str) -> str:
    if any(ch in name for ch in ',"\n\r') or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name


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
