"""Writing per-timestep results as they are produced: to a CSV or Parquet file, or to stdout.

A file is written to a temporary file beside the target and renamed into place only when the
whole series has been scored (:meth:`ResultsSink.commit`); an error or an interrupt removes the
temporary file (:meth:`ResultsSink.abort`), so an existing results file is never half
overwritten. Standard output gets each chunk as CSV lines as soon as it is scored, for pipes.

Rows go through pyarrow's writers, which format numbers about ten times faster than
``DataFrame.to_csv`` (the difference between scoring and writing being the bottleneck).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from anomaly.errors import DataError
from anomaly.io import _umask

logger = logging.getLogger(__name__)

STDOUT = "-"
_PARQUET_SUFFIXES = (".parquet", ".pq")


class ResultsSink:
    """Append result chunks to one table.

    Parameters
    ----------
    target : path or "-"
        ``.parquet``/``.pq`` for Parquet, ``-`` for CSV on standard output, anything else CSV.
    """

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = str(target)
        self.to_stdout = self.target == STDOUT
        self.parquet = not self.to_stdout and Path(self.target).suffix.lower() in _PARQUET_SUFFIXES
        self.rows = 0
        self._writer: Any = None
        self._schema: Any = None
        self._tmp: Path | None = None
        self._handle: IO[bytes] | None = None
        if not self.to_stdout:
            path = Path(self.target)
            if path.is_dir():
                raise DataError(f"--output {self.target}: expected a file path, but it is a directory")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise DataError(f"--output {self.target}: cannot create its directory ({err.strerror or err})") from None
            if not os.access(path.parent, os.W_OK | os.X_OK):
                raise DataError(f"--output {self.target}: cannot write in its directory (permission denied)")

    def _temporary(self) -> Path:
        """The temporary twin of the target, created on the first write."""
        if self._tmp is None:
            path = Path(self.target)
            try:
                fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            except OSError as err:
                raise DataError(f"--output {self.target}: cannot write it ({err.strerror or err})") from None
            os.close(fd)
            self._tmp = Path(name)
        return self._tmp

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
                pa_csv.write_csv(table, self._handle, write_options=pa_csv.WriteOptions(
                    include_header=False, quoting_style="needed"))
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
        if self._handle is not None and not self.to_stdout:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        if self.to_stdout:
            sys.stdout.flush()
            return None
        self._temporary()  # an empty series still replaces the target with an empty table
        target = Path(self.target)
        mode = (target.stat().st_mode & 0o777) if target.exists() else (0o666 & ~_umask())
        os.chmod(self._tmp, mode)
        os.replace(self._tmp, target)
        self._tmp = None
        return target

    def abort(self) -> None:
        """Drop what was written to the temporary file; the target stays as it was."""
        for closer in (self._writer, self._handle if not self.to_stdout else None):
            try:
                if closer is not None:
                    closer.close()
            except Exception:  # noqa: BLE001 - cleaning up after another error
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def _to_arrow(chunk: pd.DataFrame, *, exact_times: bool) -> Any:
    """The chunk as an Arrow table with its index as the first column.

    For CSV, times are stored at the coarsest unit that keeps them exact (seconds, else
    milliseconds, else nanoseconds), so that ``2026-01-01 00:05:00`` is not written with nine
    zeros of fraction; Parquet keeps nanoseconds.
    """
    import pyarrow as pa

    table = pa.Table.from_pandas(chunk, preserve_index=False)
    index = chunk.index
    if isinstance(index, pd.DatetimeIndex):
        if not exact_times:
            nanos = index.as_unit("ns").asi8
            unit = "s" if not np.any(nanos % 1_000_000_000) else "ms" if not np.any(nanos % 1_000_000) else "ns"
            index = index.as_unit(unit)
        column = pa.array(index.asi8, type=pa.timestamp(index.unit, tz=str(index.tz) if index.tz else None))
    else:
        column = pa.array(np.asarray(index))
    return table.add_column(0, index.name or "step", column)


def _csv_name(name: str) -> str:
    if any(ch in name for ch in ',"\n\r') or name != name.strip():
        return '"' + name.replace('"', '""') + '"'
    return name
