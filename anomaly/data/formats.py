"""File formats: opening CSV/TSV/semicolon text, Parquet and streams, and reading their raw rows.

Everything below the column roles lives here: which bytes make a table, the separator and the
decimal mark, UTF-8, the header, Parquet's record batches, and the one-line
:class:`~anomaly.errors.DataError` for every way a file can fail to be a table (it names the
file, what was expected and what was found). :func:`open_reader` hands out raw pandas frames,
``read(n)`` rows at a time, with the input's bytes hashed and checked as UTF-8 as they pass;
:mod:`anomaly.data.reading` turns them into a validated series.

Memory: CSV text is parsed ``n`` rows at a time; Parquet is decoded page by page (not a row
group at a time) and hashed in a second pass when its fingerprint is asked for.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, BinaryIO, TextIO, Union

import numpy as np
import pandas as pd

from anomaly.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["PARQUET_SUFFIXES", "Reader", "Source", "file_kind", "fingerprint", "open_reader", "read_table"]

PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_SEPARATORS = (",", ";", "\t")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_BLOCK_SIZE = 1 << 20  # 1 MiB: streaming hashes and the UTF-8 check never hold the whole file
_SNIFF_DATA_LINES = 5  # data lines, besides the header, that decide the separator
_DECIMAL_SNIFF_LINES = 50  # data lines searched for decimal commas
_SNIFF_CHARS = 1 << 16  # decoded text kept from the head of the file for sniffing
_MAX_BATCH_ROWS = 1 << 20  # Parquet record batches: bounded also when a whole file is read
_MAX_LISTED_COLUMNS = 10
_MAX_VALUE_CHARS = 40
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*$")
_GROUPED_DECIMAL_COMMA = r"\s*[+-]?\d{1,3}(?:\.\d{3})+,\d+\s*"
_DECIMAL_COMMA_PARTS = r"^(\s*[+-]?\d+),(\d+(?:[eE][+-]?\d+)?\s*)$"
_SEP_LINE = re.compile(r"^sep=([,;\t])[ \t]*\r?\n")
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$")
_DATE_LIKE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:$|[ T]\d)")
_UTF8_BOM = b"\xef\xbb\xbf"
_STDIN_NAME = "<stdin>"
_FRAME_NAME = "<frame>"

Source = Union[str, os.PathLike, BinaryIO, TextIO, pd.DataFrame]  # noqa: UP007 - a runtime alias, also for Python 3.10 isinstance-free use


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
        raise DataError(f"{shown_path(path)}: cannot read the file: {os_reason(err)}") from None
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
    shown = shown_path(path)
    with closing(open_reader(_existing_file(path), shown)) as reader:
        frame = reader.read(None)
        if frame is None or len(frame) == 0:
            raise no_rows_error(shown, reader.columns)
    return frame


def open_reader(source: Source, shown: str, chunk_rows: int = 65536, *, text_columns: Sequence[str] = ()) -> Reader:
    """A :class:`Reader` of the raw rows of a file, of ``"-"`` (standard input) or of a stream.

    Parameters
    ----------
    source : str, PathLike, binary or text stream, or DataFrame
        Paths ending in ``.parquet``/``.pq`` are read as Parquet, everything else as delimited
        UTF-8 text. Streams are not closed. A DataFrame holds the raw rows themselves, as a file
        would (one Spark group, an in-memory table): typed columns stay typed.
    shown : str
        The input's name in messages (see :func:`source_name`).
    chunk_rows : int, default 65536
        The usual ``n`` of :meth:`Reader.read`: the size of Parquet's record batches.
    text_columns : sequence of str
        Columns of delimited text read as text in every chunk, never as numbers: a fleet's
        series ids (``007`` stays ``007``, in a chunk of digits as in one of letters).
    """
    if isinstance(source, str) and source == "-":
        stdin = sys.stdin
        if stdin is None:
            raise DataError(f"{shown}: expected a table on standard input, but there is none")
        return _TextReader(getattr(stdin, "buffer", stdin), shown, owned=None, text_columns=text_columns)
    if isinstance(source, pd.DataFrame):
        return _FrameReader(source)
    if hasattr(source, "read"):
        return _TextReader(source, shown, owned=None, text_columns=text_columns)  # type: ignore[arg-type]
    file = _existing_file(source)  # type: ignore[arg-type]
    kind = file_kind(file, shown)
    if kind == "parquet":
        return _ParquetReader(file, shown, chunk_rows)
    handle = _open_text(file, kind, shown)
    # A compressed file's fingerprint is its own bytes', as for every other file (not the text inside).
    return _TextReader(handle, shown, owned=handle, text_columns=text_columns, hashed_file=file if kind != "text" else None)


# The first bytes of each kind of file read (a file's name may say otherwise, or nothing).
_MAGIC = {"parquet": b"PAR1", "gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00", "zip": b"PK\x03\x04"}


def file_kind(file: Path, shown: str) -> str:
    """``"parquet"`` (by its suffix or first bytes), ``"gzip"``, ``"bz2"``, ``"xz"``, ``"zip"`` or ``"text"``."""
    if file.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    try:
        with open(file, "rb") as probe:
            head = probe.read(6)
    except OSError as err:
        raise DataError(f"{shown}: cannot read the file: {os_reason(err)}") from None
    return next((kind for kind, magic in _MAGIC.items() if head.startswith(magic)), "text")


def _open_text(file: Path, kind: str, shown: str) -> BinaryIO:
    """The file's bytes, through gzip, bz2, xz or zip (one member) as :func:`file_kind` says."""
    import bz2
    import gzip
    import lzma
    import zipfile

    try:
        if kind in ("gzip", "bz2", "xz"):
            return {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[kind](file, "rb")  # type: ignore[return-value]
        if kind == "zip":
            archive = zipfile.ZipFile(file)
            members = [info for info in archive.infolist() if not info.is_dir()]
            if len(members) != 1:
                archive.close()
                raise DataError(
                    f"{shown}: expected a zip archive of one file, but it holds {len(members)}: unpack the one to read"
                )
            return _ZipMember(archive, members[0])  # type: ignore[return-value]
        return open(file, "rb")  # noqa: SIM115 - closed by the reader
    except (OSError, zipfile.BadZipFile) as err:
        raise DataError(f"{shown}: cannot read the file: {condense(err)}") from None


class _ZipMember(io.RawIOBase):
    """The one file of a zip archive, closing the archive with it."""

    def __init__(self, archive: Any, member: Any) -> None:
        super().__init__()
        self._archive, self._member = archive, archive.open(member)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._member.read(size)

    def read1(self, size: int = -1) -> bytes:
        return self._member.read1(size)

    def close(self) -> None:
        self._member.close()
        self._archive.close()
        super().close()


def source_name(source: object) -> str:
    """The input's name as shown in messages: the path as given, ``<stdin>``, ``<frame>`` or the stream's name."""
    if isinstance(source, str) and source == "-":
        return _STDIN_NAME
    if isinstance(source, pd.DataFrame):
        return _FRAME_NAME
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) and name else "<stream>"
    return shown_path(source)  # type: ignore[arg-type]


def _existing_file(path: str | os.PathLike) -> Path:
    """The path as a Path, after checking that it names an existing regular file."""
    try:
        file = Path(path)
    except TypeError:
        raise DataError(f"{path!r}: expected a file path, but got a {type(path).__name__}") from None
    shown = shown_path(path)
    try:
        if file.is_dir():
            raise DataError(f"{shown}: expected a data file, but this is a directory")
        if not file.exists():
            raise DataError(f"{shown}: file not found (looked in {str(file.resolve().parent)!r})")
    except OSError as err:
        raise DataError(f"{shown}: cannot access the file: {os_reason(err)}") from None
    return file


# --------------------------------------------------------------------------------------------
# Raw readers: pieces of the input as pandas frames
# --------------------------------------------------------------------------------------------


class Reader:
    """Raw rows of the input, ``read(n)`` at a time, with cleaned column names.

    Attributes
    ----------
    columns : list of str
        The column names, known once the header (or the Parquet schema) has been read.
    at_end : bool
        Whether the last row has been handed out.
    text_format : tuple of (str, str), or None
        Delimited text's ``(separator, decimal mark)`` as sniffed; None for Parquet and frames.
    """

    at_end: bool = False
    columns: list[str]
    text_format: tuple[str, str] | None = None

    def read(self, n: int | None) -> pd.DataFrame | None:
        """The next ``n`` rows (all the rest for None) as a frame of shape (<= n, C), or None at the end."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """SHA-256 hex digest of the input's bytes (text: of the bytes read so far)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _ByteFeed:
    """The input's bytes on their way to pandas: hashed and checked as UTF-8 as they pass.

    The head (the first lines, for sniffing the format) is read first and replayed to pandas
    without a UTF-8 BOM. A DataError raised while pandas reads is kept in ``error``, as pandas
    may wrap or swallow it.
    """

    def __init__(self, raw: BinaryIO | TextIO, shown: str) -> None:
        self._raw = raw
        self._read = getattr(raw, "read1", None) or raw.read
        self._shown = shown
        self._hash = hashlib.sha256()
        self._check = _Utf8Check(shown)
        self._replay = b""
        self.bytes_read = 0
        self.eof = False
        self.error: DataError | None = None

    def head(self) -> str:
        """Read the first lines: decoded text, also replayed later by :meth:`read`.

        Reads until more than the lines the sniffing looks at have arrived, or 1 MiB, the
        head ``read_table`` sniffs from; in small pieces, so that a pipe need not fill 1 MiB.
        """
        blocks: list[bytes] = []
        texts: list[str] = []
        size = 0
        has_content = False
        while not self.eof:
            block = self._pull(min(_SNIFF_CHARS, max(_BLOCK_SIZE - size, 1)), first=not blocks)
            blocks.append(block)
            texts.append(self._check.feed(block, final=not block))
            size += len(block)
            has_content = has_content or bool(texts[-1].strip())
            if has_content and size >= _BLOCK_SIZE:
                break
            lines = sum(1 for line in "".join(texts).splitlines() if line.strip())
            if lines > _DECIMAL_SNIFF_LINES + 1:
                break
        if self.bytes_read == 0:
            raise DataError(f"{self._shown}: expected a table, but the file is empty (0 bytes)")
        if not has_content:
            raise DataError(f"{self._shown}: expected a table, but the file holds only whitespace")
        head = b"".join(blocks)
        self._replay = head[len(_UTF8_BOM) :] if head.startswith(_UTF8_BOM) else head
        return "".join(texts)

    def _pull(self, size: int, *, first: bool = False) -> bytes:
        try:
            block = self._read(size)
        except OSError as err:
            raise DataError(f"{self._shown}: cannot read the input: {os_reason(err)}") from None
        if block is None:  # a non-blocking stream with nothing yet
            block = b""
        if isinstance(block, str):
            block = block.encode("utf-8", "surrogatepass")  # lone surrogates then fail the UTF-8 check
        if first and block.startswith(_MAGIC["parquet"]):
            raise DataError(
                f"{self._shown}: this looks like a Parquet file, which cannot be read from a stream "
                f"(it needs random access); pass the file's path instead"
            )
        self._hash.update(block)
        self.bytes_read += len(block)
        self.eof = not block
        return block

    # The file-like interface pandas uses.

    def read(self, size: int = -1) -> bytes:
        if self._replay:
            if size is None or size < 0:
                size = len(self._replay)
            block, self._replay = self._replay[:size], self._replay[size:]
            return block
        if self.eof:
            return b""
        try:
            block = self._pull(size if size and size > 0 else _BLOCK_SIZE)
            self._check.check(block, final=not block)
        except DataError as err:
            self.error = err
            raise
        return block

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False

    def __iter__(self) -> Iterator[bytes]:
        raise io.UnsupportedOperation("read() only")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _TextReader(Reader):
    """Delimited text through pandas' C parser, ``get_chunk`` by ``get_chunk``."""

    def __init__(
        self,
        raw: BinaryIO | TextIO,
        shown: str,
        *,
        owned: BinaryIO | None,
        text_columns: Sequence[str] = (),
        hashed_file: Path | None = None,
    ) -> None:
        self._shown = shown
        self._owned = owned
        self._hashed_file = hashed_file
        self._feed = _ByteFeed(raw, shown)
        self._names: list[str] | None = None
        self.columns = []
        try:
            head = self._feed.head().removeprefix("\ufeff")
            declared = _SEP_LINE.match(head)  # Excel's "sep=;" before the header
            if declared:
                head = head[declared.end() :]
            _check_header_line(head, shown)
            sep, decimal = _sniff_text_format(head, shown, declared.group(1) if declared else None)
            self._sep = sep
            self.text_format = (sep, decimal)
            names = _header_names(head, sep)
            _check_distinct_names(names, shown)  # pandas would rename them a, a.1
            _check_header_names(names, shown, decimal)
            _check_field_counts(head, names, sep, shown, skipped=1 if declared else 0, whole=self._feed.eof)
            self._text_columns = {name.strip() for name in names if name.strip() in set(text_columns)}
            self._decimal_comma = decimal == ","
            text = {name: str for name in names if name.strip() in self._text_columns}
            self._parser = pd.read_csv(
                self._feed,
                sep=sep,
                decimal=decimal,
                encoding="utf-8",
                iterator=True,
                low_memory=False,
                dtype=text or None,
                # Never a row index: a first field without a name in the header is refused above,
                # and one empty field too many (a delimiter ending the data lines) is dropped.
                index_col=False,
                skiprows=1 if declared else None,
            )
        except Exception as err:
            self.close()
            raise self._error(err) from None

    def _error(self, err: Exception) -> DataError:
        if self._feed.error is not None:
            return self._feed.error
        return _csv_error(err, self._shown, getattr(self, "_sep", ","))

    def read(self, n: int | None) -> pd.DataFrame | None:
        if self.at_end:
            return None
        try:
            frame = self._parser.get_chunk(n)  # None: all the rest
        except StopIteration:
            frame = None
        except Exception as err:
            raise self._error(err) from None
        if frame is None or n is None or len(frame) < n:
            self.at_end = True
        if frame is None:
            return None
        if self._names is None:
            self._names = [str(name) for name in _clean_column_names(frame.iloc[:0].copy()).columns]
            self.columns = self._names
        frame.columns = self._names
        if self._decimal_comma:
            _read_decimal_commas(frame, self._text_columns)
        return frame

    def fingerprint(self) -> str:
        return fingerprint(self._hashed_file) if self._hashed_file is not None else self._feed.hexdigest()

    def close(self) -> None:
        parser = getattr(self, "_parser", None)
        if parser is not None:
            parser.close()
        if self._owned is not None:
            self._owned.close()


class _ParquetReader(Reader):
    """Record batches of a Parquet file through pyarrow, converted as ``pd.read_parquet`` does."""

    def __init__(self, file: Path, shown: str, chunk_rows: int) -> None:
        import pyarrow.parquet as pq

        self._file = file
        self._shown = shown
        try:
            size = file.stat().st_size
        except OSError as err:
            raise DataError(f"{shown}: cannot read the file: {os_reason(err)}") from None
        if size == 0:
            raise DataError(f"{shown}: expected a Parquet file, but the file is empty (0 bytes)")
        try:
            # Without pre-buffering, pyarrow reads a row group's pages as it decodes them, so memory
            # does not grow with the row group (pandas writes 1M-row groups by default).
            self._parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=1 << 16)
            schema = self._parquet.schema_arrow
            self._batches = self._parquet.iter_batches(batch_size=min(max(chunk_rows, 1024), _MAX_BATCH_ROWS))
            empty = _to_pandas(schema.empty_table())
        except Exception as err:  # pyarrow raises many unrelated types (ArrowInvalid, OSError, ...)
            self.close()
            raise DataError(f"{shown}: cannot read as Parquet: {condense(err)}") from None
        if len(empty.columns) == 0:
            self.close()
            raise DataError(f"{shown}: expected at least one column, but the file has none")
        self.columns = [str(name) for name in empty.columns]
        try:
            _check_distinct_names(self.columns, shown)
        except DataError:
            self.close()
            raise
        self._leftover: Any = None  # part of the last record batch not handed out yet

    def read(self, n: int | None) -> pd.DataFrame | None:
        import pyarrow as pa

        n = sys.maxsize if n is None else n
        pieces = []
        rows = 0
        try:
            while rows < n:
                batch = self._leftover if self._leftover is not None else next(self._batches, None)
                self._leftover = None
                if batch is None:
                    self.at_end = True
                    break
                if rows + batch.num_rows > n:
                    batch, self._leftover = batch.slice(0, n - rows), batch.slice(n - rows)
                pieces.append(batch)
                rows += batch.num_rows
            if not pieces:
                return None
            frame = _to_pandas(pa.Table.from_batches(pieces))
        except Exception as err:
            raise DataError(f"{self._shown}: cannot read as Parquet: {condense(err)}") from None
        frame.columns = self.columns
        return frame

    def fingerprint(self) -> str:
        return fingerprint(self._file)

    def close(self) -> None:
        parquet = getattr(self, "_parquet", None)
        if parquet is not None:
            parquet.close()


class _FrameReader(Reader):
    """The rows of an in-memory frame, handed out as a file's rows would be (no copy until sliced)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()
        _check_distinct_names([str(name) for name in frame.columns], _FRAME_NAME)
        self._frame = _clean_column_names(frame.reset_index(drop=True))
        self.columns = [str(name) for name in self._frame.columns]
        self._frame.columns = self.columns
        self._at = 0

    def read(self, n: int | None) -> pd.DataFrame | None:
        total = len(self._frame)
        if self._at >= total:
            self.at_end = True
            return None
        end = total if n is None else min(total, self._at + n)
        piece = self._frame.iloc[self._at : end]
        self._at = end
        self.at_end = end >= total
        return piece

    def fingerprint(self) -> str:
        """SHA-256 of the column names and pandas' hash of every row (the frame has no bytes of its own)."""
        digest = hashlib.sha256("\x1f".join(self.columns).encode("utf-8"))
        digest.update(pd.util.hash_pandas_object(self._frame, index=False).to_numpy().tobytes())
        return digest.hexdigest()

    def close(self) -> None:
        pass


def _to_pandas(table: Any) -> pd.DataFrame:
    """A pyarrow table as ``read_table`` gives it: pandas' conversion, index as a first column."""
    try:  # the conversion pd.read_parquet does (time zone normalisation on older pyarrow)
        from pandas.io._util import arrow_table_to_pandas

        frame = arrow_table_to_pandas(table)
    except ImportError:
        frame = table.to_pandas()
    if not isinstance(frame.index, pd.RangeIndex):
        # A named or time index is data (a time column saved as the index); pandas' unnamed
        # row labels are not (those of a concatenated frame repeat 0, 1, ... per part).
        unnamed_labels = frame.index.names == [None] and not isinstance(frame.index, pd.DatetimeIndex)
        frame = frame.reset_index(drop=unnamed_labels)
    return _clean_column_names(frame)


# --------------------------------------------------------------------------------------------
# Delimited text: UTF-8, separator, decimal mark, header
# --------------------------------------------------------------------------------------------


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


def _sniff_text_format(head: str, shown: str, declared: str | None = None) -> tuple[str, str]:
    """The separator and the decimal mark of delimited text, from its first lines.

    Parameters
    ----------
    head : str
        Decoded text from the start of the file (the first lines are enough).
    declared : str, optional
        The separator the file declares (Excel's ``sep=;`` line).

    Returns
    -------
    tuple of (str, str)
        ``(sep, decimal)``: sep one of ``,`` ``;`` tab; decimal ``.`` or ``,``.
    """
    lines = [line for line in head.splitlines() if line.strip()]
    data = lines[1 : _DECIMAL_SNIFF_LINES + 1]
    if declared is None and lines and not any(_count_unquoted(lines[0], sep) for sep in _SEPARATORS):
        # One name in the header: one column. Its commas, on every line a number's, are decimal commas.
        if data and all(_DECIMAL_COMMA.match(line) or "," not in line for line in data) and any("," in line for line in data):
            logger.info("%s: one column whose numbers use decimal commas; reading with decimal=','", shown)
            return ";", ","
    sep = declared or _detect_separator(lines[: _SNIFF_DATA_LINES + 1])
    decimal = "," if sep != "," and _uses_decimal_comma(data, sep) else "."
    if decimal == ",":
        logger.info("%s: numbers use decimal commas; reading with decimal=','", shown)
    return sep, decimal


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


def _uses_decimal_comma(data_lines: list[str], sep: str) -> bool:
    """Whether any field on the sampled data lines is a number written with a decimal comma."""
    for line in data_lines:
        for field in line.split(sep):
            if _DECIMAL_COMMA.match(field.strip().strip('"')):
                return True
    return False


def _check_header_line(head: str, shown: str) -> None:
    """Refuse a first line that is a comment (a logger's preamble), not the header.

    A header may name a column ``#`` (``#,a,b``): a comment is a ``#`` line whose delimiters
    do not match the next line's.
    """
    lines = [line for line in head.splitlines() if line.strip()]
    first = lines[0].strip() if lines else ""
    following = lines[1] if len(lines) > 1 else ""
    matching = any(0 < _count_unquoted(first, sep) == _count_unquoted(following, sep) for sep in _SEPARATORS)
    if first.startswith("#") and not matching:
        raise DataError(
            f"{shown}: expected the header (the column names) on line 1, but it is a comment "
            f"({show_value(first)}): remove the lines before the header"
        )


def _check_header_names(names: list[str], shown: str, decimal: str) -> None:
    """Refuse a header that is a line of data (a file saved without its header)."""
    cleaned = [name.strip() for name in names]
    if not cleaned or not all(_looks_like_value(name, decimal) or _INTEGER.match(name) for name in cleaned):
        return
    if any(_looks_like_value(name, decimal) for name in cleaned):  # integers alone can be names: 0,1,2
        raise DataError(
            f"{shown}: expected a header naming the columns on line 1, but it holds values "
            f"({list_names(cleaned)}): the file has no header; add one (e.g. time,a,b)"
        )


def _looks_like_value(name: str, decimal: str) -> bool:
    """Whether a header cell reads as a data value: a number with a fraction, or a date."""
    if _DATE_LIKE.match(name):
        return True
    number = name.replace(",", ".") if decimal == "," else name
    return not _INTEGER.match(name) and _NUMBER.match(number) is not None


def _check_field_counts(head: str, names: list[str], sep: str, shown: str, *, skipped: int, whole: bool) -> None:
    """Refuse data lines with more fields than the header has names (unless the rest are empty).

    pandas would take the first field for a row index and shift every column by one (or, with
    ``index_col=False``, drop the last fields): the values of one column read as another's.
    """
    import csv

    lines = head.splitlines(keepends=True)  # \n, \r\n or \r, as pandas reads them
    if lines and not whole and not lines[-1].endswith(("\n", "\r")):
        lines = lines[:-1]  # the head may end inside a line (``whole``: it is the whole input)
    try:
        records = list(csv.reader(lines[: _DECIMAL_SNIFF_LINES + 1], delimiter=sep))
    except csv.Error:
        return  # pandas' own parser reports what is wrong with the lines
    if not names:
        return
    for number, record in enumerate(records[1:], start=2 + skipped):
        extra = record[len(names) :]
        if extra and any(field.strip() for field in extra):
            hint = (
                ": give every column a name in the header (a first column without one is a row index saved without its label)"
                if number == 2 + skipped
                else ""
            )
            raise DataError(
                f"{shown}: expected {len(names)} fields on each line, as the header names {len(names)} columns, "
                f"but line {number} has {len(record)}{hint}"
            )


def _read_decimal_commas(frame: pd.DataFrame, text_columns: set[str]) -> None:
    """Text columns of a decimal-comma file with their numbers' commas made points, in place
    (and the points of ``1.234,5``, which group thousands, dropped).

    pandas reads a column with decimal commas as numbers only if every cell is one; in a column
    with one typo (``-``, ``x``) the numbers stay text. Made ``0.5``, they read as numbers
    where a column's cells are checked, and the typo is the cell named in the error.
    """
    for name in frame.columns:
        column = frame[name]
        if name in text_columns or not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)):
            continue
        cells = column.astype("string")
        if not cells.str.contains(",", regex=False).any():
            continue
        grouped = cells.str.fullmatch(_GROUPED_DECIMAL_COMMA).fillna(False)  # 1.234,5: points group thousands
        cells = cells.where(~grouped, cells.str.replace(".", "", regex=False))
        converted = cells.str.replace(_DECIMAL_COMMA_PARTS, r"\1.\2", regex=True)
        frame[name] = converted.astype(object).where(column.notna(), column)


def _header_names(head: str, sep: str) -> list[str]:
    """The names on the header line of delimited text, as written; none when the head holds no whole line."""
    import csv

    text = head.removeprefix("\ufeff")
    if "\n" not in text and "\r" not in text:
        return []
    try:
        return next(csv.reader(text.splitlines(keepends=True), delimiter=sep), [])
    except csv.Error:
        return []  # pandas' own parser reports what is wrong with the line


def _check_distinct_names(names: list[str], shown: str) -> None:
    """Refuse a table whose columns are not told apart by name (scoring matches columns by name)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            continue  # unnamed columns (trailing separators) get distinct names, "Unnamed: 3"
        if name in seen:
            raise DataError(
                f"{shown}: expected distinct column names, but columns {seen[name]} and {position} are both named {name!r}"
            )
        seen[name] = position


def _clean_column_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as stripped strings (``a, b`` headers give ' b'), unless that makes duplicates."""
    names = [str(name).strip() for name in frame.columns]
    if len(set(names)) == len(names):
        frame.columns = names
    else:
        frame.columns = [str(name) for name in frame.columns]
    return frame


def _csv_error(err: Exception, shown: str, sep: str) -> DataError:
    """The DataError for an exception raised while pandas parses delimited text."""
    if isinstance(err, DataError):
        return err
    if isinstance(err, pd.errors.EmptyDataError):
        return DataError(f"{shown}: expected a header line, but the file holds no columns")
    if isinstance(err, pd.errors.ParserError):
        return DataError(f"{shown}: cannot parse as {_SEP_NAMES[sep]}-separated text: {condense(err)}")
    # Anything else pandas or the OS raises is still a problem with this file.
    return DataError(f"{shown}: cannot read the file: {condense(err)}")


def no_rows_error(shown: str, columns: Sequence[object]) -> DataError:
    return DataError(f"{shown}: expected data rows after the header, but found none (columns: {list_names(columns)})")


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def shown_path(path: str | os.PathLike) -> str:
    """The path as the user gave it, for messages."""
    try:
        return os.fspath(path) if not isinstance(path, bytes) else os.fsdecode(path)
    except TypeError:
        return repr(path)


def show_value(value: object) -> str:
    """A cell value for a message: quoted, one line, at most ~40 characters."""
    text = repr(str(value).strip())
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 4] + "...'"


def list_names(names: Sequence[object], *, quoted: bool = True) -> str:
    """``"'a', 'b'"`` (``quoted``) or ``"a, b"``; past ten names, how many more: messages stay one line."""
    names = [str(name) for name in names]
    shown = ", ".join(repr(name) if quoted else name for name in names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        shown += f", ... ({len(names) - _MAX_LISTED_COLUMNS} more)"
    return shown


def condense(err: BaseException) -> str:
    """An exception's message on one line, never empty."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


def os_reason(err: OSError, *, with_file: bool = True) -> str:
    """e.g. "permission denied (data/x.csv)", one line."""
    reason = (err.strerror or condense(err)).lower()
    return f"{reason} ({err.filename})" if with_file and err.filename else reason
