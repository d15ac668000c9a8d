"""Incremental extraction of the totesys tables into the incoming zone as Parquet.

Per table, in one read-only REPEATABLE READ transaction on the source (a consistent
snapshot; the platform only ever reads, as the reader role): the rows whose
`last_updated` is at or after the stored mark minus an overlap window, paged by
(`last_updated`, key) with bound parameters, so rows sharing one millisecond are neither
lost at a page boundary nor read twice. The overlap catches a row committed late with an
older timestamp; rows of the overlap the platform holds already (same key and
`last_updated` in `totesys_history`, or in a file still waiting in incoming) are dropped,
and any other repeat is removed downstream (history keeps one row per version, the
current state only takes newer rows).

Each page is a row group of one Parquet file written to a temporary file, put in incoming
as `database/totesys/<table>/extracted=<UTC stamp>.parquet` (immutable: a new name every
time) only when complete; then the mark (`extract_marks`: the last row's `last_updated`
and key) advances. A killed extraction leaves no file and no moved mark. A table with no
new rows lands nothing. First run: every row.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg2 import sql
from sqlalchemy import text

from data_platform.batch.totesys import tables as T
from data_platform.db.engine import get_engine
from data_platform.errors import DatabaseError, DataPlatformError
from data_platform.storage import get_zone

log = logging.getLogger(__name__)

PREFIX = "database/totesys/"
PAGE_ROWS = 50_000
OVERLAP = timedelta(minutes=10)
STAMP = "%Y%m%dT%H%M%S.%fZ"

_ARROW = {
    "integer": pa.int32(),
    "text": pa.string(),
    "character(3)": pa.string(),
    "boolean": pa.bool_(),
    "numeric(10,2)": pa.decimal128(10, 2),
    "numeric(12,2)": pa.decimal128(12, 2),
    T.TIMESTAMP: pa.timestamp("ms"),
}


class ExtractError(DataPlatformError):
    """The source could not be read (exit code 1; the mark did not move)."""


@dataclass
class TableExtract:
    table: str
    rows: int = 0
    key: str | None = None  # the landed file, None when nothing was new
    mark: tuple[datetime, int] | None = None
    error: str | None = None


@dataclass
class ExtractResult:
    tables: list[TableExtract] = field(default_factory=list)

    @property
    def failed(self) -> list[TableExtract]:
        return [t for t in self.tables if t.error]

    @property
    def landed(self) -> int:
        return sum(1 for t in self.tables if t.key)

    def render(self) -> str:
        lines = [
            f"extracted {len(self.tables)} table(s): {self.landed} file(s) landed, "
            f"{sum(t.rows for t in self.tables)} row(s), {len(self.failed)} failed"
        ]
        for t in self.tables:
            if t.error:
                lines.append(f"  {t.table}: FAILED: {t.error}")
            elif t.key:
                lines.append(f"  {t.table}: {t.rows} row(s) -> {t.key}")
        return "\n".join(lines)


def schema_of(table: T.TotesysTable) -> pa.Schema:
    """The Parquet schema of a table's extracts (types from tables.py)."""
    return pa.schema([pa.field(c.name, _ARROW[c.type], nullable=c.nullable) for c in table.columns])


def table_key(table: T.TotesysTable, extracted: datetime) -> str:
    return f"{PREFIX}{table.name}/extracted={extracted.astimezone(UTC).strftime(STAMP)}.parquet"


def extract(
    names: list[str] | None = None,
    *,
    source_url: str | None = None,
    overlap: timedelta = OVERLAP,
    page_rows: int = PAGE_ROWS,
) -> ExtractResult:
    """Extract every table (or `names`) changed since its mark. `source_url` (default the
    reader role's URL of TOTESYS_DATABASE_URL) is a libpq URL. A table that fails is in
    the result with its error; the others go on."""
    if source_url is None:
        from data_platform.batch.totesys.connection import reader_url

        source_url = reader_url().render_as_string(hide_password=False).replace("+psycopg2", "")
    result = ExtractResult()
    get_zone("incoming").clean_partials(PREFIX)  # what killed extracts left
    chosen = [T.BY_NAME[name] for name in names] if names else list(T.TABLES)
    try:
        source = psycopg2.connect(source_url, options="-c default_transaction_read_only=on")
    except psycopg2.Error as exc:
        # The source database, not the data: exit 3 like any database that is down.
        raise DatabaseError(f"totesys source unreachable: {_first_line(exc)}") from exc
    try:
        for table in chosen:
            one = TableExtract(table.name)
            try:
                _extract_table(source, table, one, overlap, page_rows)
            except (psycopg2.Error, OSError) as exc:
                source.rollback()
                one.error = _first_line(exc)
                log.error("extraction failed: %s", one.error, extra={"table": table.name})
            result.tables.append(one)
    finally:
        source.close()
    return result


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_mark(table: T.TotesysTable) -> tuple[datetime, int] | None:
    with get_engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT mark_updated, mark_key FROM extract_marks "
                "WHERE source = :source AND table_name = :table"
            ),
            {"source": T.SOURCE, "table": table.name},
        ).first()
    return (row[0], int(row[1])) if row else None


def _seen(table: T.TotesysTable, since: datetime) -> set[tuple[int, datetime]]:
    """(key, last_updated) of the versions the platform holds from `since` on: loaded
    (in the history table) or landed and waiting in incoming."""
    return _loaded(table, since) | _landed(table, since)


def _landed(table: T.TotesysTable, since: datetime) -> set[tuple[int, datetime]]:
    incoming = get_zone("incoming")
    found: set[tuple[int, datetime]] = set()
    for info in incoming.list(f"{PREFIX}{table.name}/"):
        if not info.key.endswith(".parquet"):
            continue
        with incoming.open(info.key) as body, tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(body, spool, 1 << 20)
            spool.seek(0)
            versions = pq.read_table(spool, columns=[table.key, T.UPDATED]).to_pydict()
        found.update(
            (key, updated)
            for key, updated in zip(versions[table.key], versions[T.UPDATED], strict=True)
            if updated >= since
        )
    return found


def _loaded(table: T.TotesysTable, since: datetime) -> set[tuple[int, datetime]]:
    statement = sql.SQL("SELECT {k}, {u} FROM {t} WHERE {u} >= %s").format(
        k=sql.Identifier(table.key),
        u=sql.Identifier(T.UPDATED),
        t=sql.Identifier(T.HISTORY_SCHEMA, table.name),
    )
    raw = get_engine().raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute(statement, (since,))
            return {(key, updated) for key, updated in cur.fetchall()}
    finally:
        raw.close()


def _extract_table(
    source, table: T.TotesysTable, one: TableExtract, overlap: timedelta, page_rows: int
) -> None:
    extra = {"table": table.name}
    mark = _read_mark(table)
    since = mark[0] - overlap if mark else None
    seen = _seen(table, since) if since is not None else set()
    columns = sql.SQL(", ").join(map(sql.Identifier, table.names))
    key, updated = sql.Identifier(table.key), sql.Identifier(T.UPDATED)
    first = sql.SQL("SELECT {c} FROM {t} {where} ORDER BY {u}, {k} LIMIT %s").format(
        c=columns,
        t=sql.Identifier(table.name),
        where=sql.SQL("WHERE {u} >= %s").format(u=updated) if since else sql.SQL(""),
        u=updated,
        k=key,
    )
    after = sql.SQL(
        "SELECT {c} FROM {t} WHERE ({u}, {k}) > (%s, %s) ORDER BY {u}, {k} LIMIT %s"
    ).format(c=columns, t=sql.Identifier(table.name), u=updated, k=key)
    schema = schema_of(table)
    position = table.names.index(T.UPDATED)
    extracted = datetime.now(UTC)
    newest = mark
    with tempfile.NamedTemporaryFile(suffix=".parquet") as spool:
        writer: pq.ParquetWriter | None = None
        source.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with source.cursor() as cur:
            cur.execute(first, (since, page_rows) if since else (page_rows,))
            while True:
                page = cur.fetchall()
                if not page:
                    break
                last = page[-1]
                # A row past the mark is new; one of the overlap is new unless the
                # platform holds that version already.
                rows = [row for row in page if (row[0], row[position]) not in seen]
                if rows:
                    if writer is None:
                        writer = pq.ParquetWriter(spool.name, schema)
                    writer.write_table(_to_arrow(rows, table, schema))
                    one.rows += len(rows)
                    top = max((r[position], r[0]) for r in rows)
                    newest = top if newest is None or top > newest else newest
                if len(page) < page_rows:
                    break
                cur.execute(after, (last[position], last[0], page_rows))
        source.rollback()  # end the read-only snapshot
        if writer is None:
            log.info("no new rows", extra=extra)
            return
        writer.close()
        landed = table_key(table, extracted)
        with open(spool.name, "rb") as body:
            get_zone("incoming").put(landed, body)
    assert newest is not None
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO extract_marks (source, table_name, mark_updated, mark_key, "
                "last_key, rows) VALUES (:source, :table, :updated, :key, :landed, :rows) "
                "ON CONFLICT (source, table_name) DO UPDATE SET "
                "mark_updated = EXCLUDED.mark_updated, mark_key = EXCLUDED.mark_key, "
                "last_key = EXCLUDED.last_key, rows = EXCLUDED.rows, extracted_at = now()"
            ),
            {
                "source": T.SOURCE,
                "table": table.name,
                "updated": newest[0],
                "key": str(newest[1]),
                "landed": landed,
                "rows": one.rows,
            },
        )
    one.key, one.mark = landed, newest
    log.info("%d row(s) landed at %s", one.rows, landed, extra=extra)


def _to_arrow(rows: list[tuple], table: T.TotesysTable, schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for index, column in enumerate(table.columns):
        values = columns[index]
        if column.type.startswith("numeric"):
            values = [v if v is None or isinstance(v, Decimal) else Decimal(v) for v in values]
        arrays.append(pa.array(values, type=schema.field(index).type))
    return pa.Table.from_arrays(arrays, schema=schema)
