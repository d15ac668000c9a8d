"""COPY a CSV stream into a table, with errors that name file, CSV record and column.

Every source loads with this: PostgreSQL's COPY checks each value against the column
type, and its error context (`line N, column C`) is turned into the CSV record (header =
line 1; COPY counts newlines inside quotes, see `locate_record`) and the file's own
column name. Identifiers go through psycopg2.sql; nothing is formatted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import BinaryIO, Protocol

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from data_platform.errors import LoadError
from data_platform.loads.csv_files import CsvDialect, locate_record

_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column ([^:]+))?")
BLOCK = 1 << 20  # bytes COPY pulls per read
NOT_NULL = "NULL in a NOT NULL column"


class CopySource(Protocol):
    """What COPY reads a load's records from (`csv_files.DataFileReader`, a
    `csv_files.ChunkStream` such as `parquet_files.ParquetCsvReader`): `read(n)`, and
    `failure`, the LoadError of a read that broke (COPY itself reports only "error in
    .read() call")."""

    failure: LoadError | None

    def read(self, size: int = -1, /) -> bytes: ...


class ErrorFactory(Protocol):
    def __call__(
        self, message: str, line: int | None = None, column: str | None = None
    ) -> LoadError: ...


def copy_csv(
    cur,
    into: sql.Composable,
    columns: Sequence[str],
    reader: CopySource,
    dialect: CsvDialect,
    *,
    file_columns: Sequence[str],
    error: ErrorFactory,
    reopen: Callable[[], BinaryIO] | None = None,
    freeze: bool = False,
) -> int:
    """COPY the records left in `reader` (its header already read) into `into`, whose
    `columns` take the file's fields in order. Returns the number of records.

    `file_columns` are the file's names for the same fields (for messages); `error`
    builds the LoadError (it knows the file, table and load); `reopen` opens the file
    from its start, only on the error path, to find the CSV record COPY meant.
    `freeze`: COPY FREEZE, for a table created in the current transaction.
    Raises LoadError for a value COPY refuses or a stream that breaks (corrupt gzip)."""
    options = [
        sql.SQL("FORMAT csv"),
        sql.SQL("HEADER false"),
        sql.SQL("ENCODING 'UTF8'"),
        sql.SQL("DELIMITER {}").format(sql.Literal(dialect.delimiter)),
        sql.SQL("QUOTE {}").format(sql.Literal(dialect.quote)),
        sql.SQL("NULL {}").format(sql.Literal(dialect.null_value)),
    ]
    if dialect.escape:
        options.append(sql.SQL("ESCAPE {}").format(sql.Literal(dialect.escape)))
    if freeze:
        options.append(sql.SQL("FREEZE"))
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
        into,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(options),
    )
    try:
        cur.copy_expert(statement, reader, size=BLOCK)
    except psycopg2.Error as exc:
        if reader.failure is not None:
            # The stream broke (COPY only reports it cancelled): the file's fault.
            raise error(reader.failure.reason) from reader.failure
        raise copy_error(exc, columns, file_columns, dialect, error=error, reopen=reopen) from exc
    return cur.rowcount


def copy_error(
    exc: psycopg2.Error,
    columns: Sequence[str],
    file_columns: Sequence[str],
    dialect: CsvDialect,
    *,
    error: ErrorFactory,
    reopen: Callable[[], BinaryIO] | None = None,
) -> LoadError:
    """The LoadError for a COPY failure: the CSV record (header = line 1) and the
    file's column name, when COPY's context tells them."""
    diag = exc.diag
    message = (diag.message_primary or str(exc)).strip()
    match = _COPY_CONTEXT.search(diag.context or "")
    if not match:
        return error(message)
    copy_line = int(match.group(1))
    by_db = dict(zip(columns, file_columns, strict=True))
    # A NOT NULL violation names its column in the diagnostics, not in the context (and
    # its message names the table COPY wrote, which may be a fresh table of a swap).
    column_name = match.group(2) or diag.column_name
    if isinstance(exc, pg_errors.NotNullViolation):
        message = NOT_NULL
    column = by_db.get(column_name, column_name) if column_name else None
    line = copy_line + 1  # COPY counts the records after the header
    if reopen is not None:
        found = locate_record(reopen(), copy_line, dialect)
        line = found.line
        if column is None and found.column is not None:
            column = file_columns[found.column]
        if found.problem:
            message = f"{message} ({found.problem})"
    if "0x00" in message and column:
        message = f"{message}: a NUL byte, which PostgreSQL text cannot hold"
    return error(message, line=line, column=column)
