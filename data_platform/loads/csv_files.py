"""Streaming a CSV data file of any source: gzip or plain, header split off, the rest
handed to COPY (see `copy_csv`), and the way back from a COPY error to the CSV record.

Nothing is read into memory beyond a buffer: COPY pulls the body through `read(n)`.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from data_platform import streams
from data_platform.errors import LoadError

log = logging.getLogger(__name__)

BUFFER = 1 << 20
# Log progress on long files every this many bytes of CSV handed to COPY.
PROGRESS_EVERY = 256 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_DECOMPRESS_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, OSError)


@dataclass(frozen=True)
class CsvDialect:
    """How a source writes its CSV (RFC 4180 by default)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None  # None: a quote inside quotes is doubled
    null_value: str = ""
    record_delimiter: str = "\n"


class DataFileReader:
    """`read(n)` for COPY, counting records-ish lines so a read error can name one."""

    def __init__(self, source: BinaryIO, key: str) -> None:
        """`source`: anything with read(n) (a file, a botocore StreamingBody); closed
        with the reader."""
        self.key = key
        buffered = streams.reader(streams.chunks_of(source, BUFFER), BUFFER, on_close=source.close)
        self._compressed = buffered.peek(2)[:2] == _GZIP_MAGIC
        self._stream: gzip.GzipFile | io.BufferedReader = (
            gzip.GzipFile(fileobj=buffered, mode="rb") if self._compressed else buffered
        )
        self._buffered = buffered
        self.newlines = 0
        self.bytes_read = 0
        # Set when a read fails: COPY reports only "error in .read() call".
        self.failure: LoadError | None = None

    def header(self, dialect: CsvDialect) -> list[str]:
        """Read and parse the header record (line 1)."""
        line = self._guard(self._stream.readline)
        if not line:
            raise LoadError("empty file: no header line", key=self.key, line=1)
        self.newlines += 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LoadError(f"header is not UTF-8: {exc}", key=self.key, line=1) from exc
        reader = csv.reader(
            [text.rstrip("\r\n")],
            delimiter=dialect.delimiter,
            quotechar=dialect.quote,
            escapechar=dialect.escape,
            doublequote=dialect.escape is None,
        )
        return next(reader, [])

    def read(self, size: int = -1) -> bytes:
        data = self._guard(lambda: self._stream.read(size))
        self.newlines += data.count(b"\n")
        before, self.bytes_read = self.bytes_read, self.bytes_read + len(data)
        if before // PROGRESS_EVERY != self.bytes_read // PROGRESS_EVERY:
            log.info(
                "%s: %d MB read, about %d lines",
                self.key,
                self.bytes_read >> 20,
                self.newlines,
                extra={"key": self.key},
            )
        return data

    def _guard(self, read):
        try:
            return read()
        except _DECOMPRESS_ERRORS as exc:
            # COPY takes the stream in 1 MB blocks: the break is somewhere after the
            # lines handed over so far, not necessarily on the next one.
            self.failure = LoadError(
                f"corrupt gzip data after line {self.newlines}: {exc}", key=self.key
            )
            raise self.failure from exc

    def close(self) -> None:
        self._stream.close()
        self._buffered.close()

    def __enter__(self) -> DataFileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChunkStream(streams.ChunkReader):
    """`read(n)` over an iterator of byte chunks, for COPY: a source that renders its
    rows as CSV (Parquet, Kafka batch files) yields blocks, COPY pulls them. `failure`
    holds the LoadError of a read that broke (COPY reports only "error in .read()")."""

    failure: LoadError | None = None


@dataclass(frozen=True)
class RecordLocation:
    line: int  # the CSV record (header = line 1)
    column: int | None  # index of the offending field, when one can be told
    problem: str | None = None  # what is wrong with it, when the parser can say


def locate_record(source: BinaryIO, copy_line: int, dialect: CsvDialect) -> RecordLocation:
    """Re-read a file to find the CSV record PostgreSQL's COPY calls `copy_line`, and the
    field in it holding a NUL byte or invalid UTF-8. Only used on the error path; streams
    the file once.

    COPY (fed the records after the header) counts one line per record plus every newline
    inside quotes, except in its first record, where the line ending is not known yet
    (PostgreSQL's copyfromparse.c). An unterminated quoted field is reported at the record
    where it opens."""
    with DataFileReader(source, "<locate>") as raw:
        text = io.TextIOWrapper(raw._stream, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(
            text,
            delimiter=dialect.delimiter,
            quotechar=dialect.quote,
            escapechar=dialect.escape,
            doublequote=dialect.escape is None,
            strict=True,
        )
        record = 0
        try:
            next(reader, None)  # the header
            previous, counted = reader.line_num, 0
            for record, fields in enumerate(reader, start=1):
                spanned, previous = reader.line_num - previous, reader.line_num
                counted += 1 + (spanned - 1 if record > 1 else 0)
                if counted >= copy_line:
                    return RecordLocation(record + 1, _bad_field(fields))
        except csv.Error as exc:
            # Opened in the record after the last complete one (header = line 1).
            return RecordLocation(record + 2, None, f"CSV: {exc}")
        finally:
            text.detach()
    return RecordLocation(copy_line + 1, None)


def _bad_field(fields: list[str]) -> int | None:
    for index, value in enumerate(fields):
        if "\x00" in value or any("\udc80" <= ch <= "\udcff" for ch in value):
            return index
    return None
