"""Incremental extraction of the totesys tables into the incoming zone as Parquet.

One pass reads every table in ONE read-only REPEATABLE READ transaction on the source (one
snapshot: a payment never lands without its transaction, nor a transaction without its
order), as the reader role, with bound parameters. Passes are serialized by an advisory
lock on the platform's database, and each has a time (`dp__extracted_at`, later than every
earlier pass's) that orders its rows against every other pass's.

Which rows a pass reads (the changes since the table's mark):

- **By the source's transaction horizon** (PostgreSQL 13+). A pass records the snapshot's
  `pg_snapshot_xmin` (xid8: every transaction older is committed or rolled back, none
  still in flight). The next pass reads every row version whose `xmin` (the transaction
  that wrote it) is not older than that horizon, whatever its `last_updated` says: a
  transaction held open for an hour, or one that stamped its rows with an older time, is
  read when it commits. The mark never passes a transaction in flight (an open one holds
  `pg_snapshot_xmin` back), so nothing relies on the overlap window. Rows of transactions
  that committed between the horizon and the snapshot are read again by the next pass;
  the loader drops such repeats (a version is stored once, by content).

  `xmin` is a 32-bit xid; the horizon is 64-bit. A row is read when
  `(xmin - horizon) mod 2^32 < xmax - horizon` (`xmax`: this pass's `pg_snapshot_xmax`):
  the distance from the horizon computed modulo 2^32, so the epoch is never needed and
  xid wraparound is harmless. It is exact for every unfrozen row (PostgreSQL keeps those
  within 2^31 of the next xid). A frozen row keeps its old `xmin` for display, so once
  in 2^32 transactions it aliases into the window and is read again: a repeat, never a
  loss. Subtransactions (savepoints) take xids after their parent's, so their rows are
  caught too, which `pg_visible_in_snapshot` could not promise. Special xids (0-2) are
  never new.
- **Everything** when the horizon cannot be trusted (`_read_all`, with a warning): the
  mark is of another source (`IDENTITY_QUERY`: a restored dump, a new cluster, a promoted
  standby, another database), the source's counter is behind the mark, 2^31 or more
  transactions passed since it, or the mark has no horizon or identity (every mark on the
  first pass after revision 0014). Reading by the horizon there would skip rows never
  read; reading everything only repeats rows, dropped by content.
  Commit timestamps (`pg_xact_commit_timestamp`) need `track_commit_timestamp`, off by
  default and only set with a restart of the source; the horizon needs nothing.
- **By stamp only** (a source without `pg_current_snapshot`): the rows whose
  `last_updated` is at or after the newest one landed minus `overlap` (10 minutes). A
  transaction that commits later than `overlap` after its rows' stamps is lost there;
  that is all such a source gets, and the pass logs a warning.

Deletes: every pass streams the table's key set from the same snapshot (COPY out) into a
temporary table of the platform and compares it with the current-state copy; a key the
copy has and the source lacks lands as a delete row (the key, `dp__deleted` true). One
1M-row table costs about a second (README, "Sales warehouse").

Each table's rows of a pass go into one Parquet file (a row group per page of
`page_rows`), put in incoming as `database/totesys/<table>/extracted=<UTC stamp>.parquet`
(a new name every time) only when complete; then the table's mark moves. A killed
extraction leaves no file, no spool (an unlinked temporary file) and no moved mark. A
table that fails (a source error, a value Parquet cannot hold) is rolled back to its
savepoint and reported with its error; the other tables go on in the same snapshot.
First run: every row.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from sqlalchemy import text

from data_platform.batch.totesys import tables as T
from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.errors import DatabaseError, DataPlatformError
from data_platform.loads import marks as landing_marks
from data_platform.loads.locks import advisory_lock
from data_platform.storage import get_zone

log = logging.getLogger(__name__)

PREFIX = "database/totesys/"
PAGE_ROWS = 50_000
OVERLAP = timedelta(minutes=10)
STAMP = "%Y%m%dT%H%M%S.%fZ"
XID_SPAN = 1 << 32  # xmin is a 32-bit xid
# The pass's transaction horizon and the snapshot's xmax (PostgreSQL 13+).
HORIZON_QUERY = (
    "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint "
    "FROM pg_current_snapshot() AS s"
)
# Which source a horizon is of: the cluster (system identifier; the timeline changes when
# a standby is promoted or a backup restored to a point in time, either of which may hand
# out xids again), and the database in it (its oid: a database dropped and restored under
# the same name is another). pg_control_system/pg_control_checkpoint are executable by
# every role on PostgreSQL 9.6-16 (no REVOKE in the server's catalog setup); a service that
# revokes them gets IDENTITY_FALLBACK, which also changes when the server restarts (a full
# re-read then: a repeat, never a loss).
IDENTITY_QUERY = (
    "SELECT 'pg ' || s.system_identifier::text || ' timeline ' || c.timeline_id::text "
    "|| ' database ' || d.oid::text FROM pg_control_system() AS s, "
    "pg_control_checkpoint() AS c, pg_database AS d WHERE d.datname = current_database()"
)
IDENTITY_FALLBACK = (
    "SELECT 'server ' || coalesce(host(inet_server_addr()), 'local') || ':' "
    "|| coalesce(inet_server_port()::text, '') || ' started ' "
    "|| pg_postmaster_start_time()::text || ' database ' || d.oid::text "
    "FROM pg_database AS d WHERE d.datname = current_database()"
)
LOCK = ("totesys_extract", 1)  # advisory_lock on the platform: one extraction pass at a time

_ARROW = {
    "integer": pa.int32(),
    "text": pa.string(),
    "character(3)": pa.string(),
    "boolean": pa.bool_(),
    "numeric(10,2)": pa.decimal128(10, 2),
    "numeric(12,2)": pa.decimal128(12, 2),
    # Microseconds: a source that keeps them loses none (PostgreSQL's own precision).
    T.TIMESTAMP: pa.timestamp("us"),
}


class ExtractError(DataPlatformError):
    """The source could not be read (exit code 1; the mark did not move)."""


@dataclass
class TableExtract:
    table: str
    rows: int = 0  # rows landed, deletes included
    deleted: int = 0  # of which deletes
    key: str | None = None  # the landed file, None when nothing was new
    error: str | None = None


@dataclass
class ExtractResult:
    tables: list[TableExtract] = field(default_factory=list)
    horizon: int | None = None  # the pass's pg_snapshot_xmin; None: by stamp only

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
                gone = f" ({t.deleted} deleted)" if t.deleted else ""
                lines.append(f"  {t.table}: {t.rows} row(s){gone} -> {t.key}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Mark:
    updated: datetime
    key: str
    horizon: int | None
    identity: str | None = None  # the source the horizon is of; None: written before 0014


@dataclass(frozen=True)
class _Snapshot:
    xmin: int | None  # None: the source has no pg_current_snapshot
    xmax: int | None
    extracted: datetime  # the pass's time, later than any earlier pass's
    identity: str | None = None  # IDENTITY_QUERY's; None: the source cannot say


def schema_of(table: T.TotesysTable) -> pa.Schema:
    """The Parquet schema of a table's extracts: its columns (types from tables.py; all
    but the key nullable, as a delete row holds only the key), then `dp__extracted_at`
    (timestamp us, UTC) and `dp__deleted` (bool). NOT NULL is checked by the loader."""
    fields = [
        pa.field(c.name, _ARROW[c.type], nullable=index != 0)
        for index, c in enumerate(table.columns)
    ]
    fields += [
        pa.field(T.EXTRACTED, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(T.DELETED, pa.bool_(), nullable=False),
    ]
    return pa.schema(fields)


def table_key(table: T.TotesysTable, extracted: datetime) -> str:
    return f"{PREFIX}{table.name}/extracted={extracted.astimezone(UTC).strftime(STAMP)}.parquet"


def extract(
    names: list[str] | None = None,
    *,
    source_url: str | None = None,
    overlap: timedelta = OVERLAP,
    page_rows: int | None = None,
) -> ExtractResult:
    """One pass: every table (or `names`) changed since its mark, all read in one snapshot
    of the source. `source_url` (default the reader role's URL of TOTESYS_DATABASE_URL) is
    a libpq URL; `page_rows` (default PAGE_ROWS) rows per fetch and row group. A table
    that fails is in the result with its error; the others go on.

    Raises DatabaseError (exit 3) when the source cannot be reached."""
    if source_url is None:
        from data_platform.batch.totesys.connection import reader_url

        source_url = reader_url().render_as_string(hide_password=False).replace("+psycopg2", "")
    page_rows = page_rows or PAGE_ROWS
    result = ExtractResult()
    get_zone("incoming").clean_partials(PREFIX)  # what killed extracts left
    chosen = [T.BY_NAME[name] for name in names] if names else list(T.TABLES)
    try:
        # ISO dates: the versions' row text (`_version`) must print as the loader's does.
        source = psycopg2.connect(
            source_url, options="-c default_transaction_read_only=on -c datestyle=ISO,YMD"
        )
    except psycopg2.Error as exc:
        # The source database, not the data: exit 3 like any database that is down.
        raise DatabaseError(f"totesys source unreachable: {_first_line(exc)}") from exc
    try:
        # Two passes at once would compare one snapshot's keys with rows another, later
        # snapshot loaded: the second waits.
        with advisory_lock(get_engine(), *LOCK, wait=True):
            marks = _read_marks()
            snapshot = _begin(source, marks)
            result.horizon = snapshot.xmin
            if snapshot.xmin is None:
                log.warning(
                    "the source has no pg_current_snapshot: changes are read by last_updated "
                    "with an overlap of %s only; a transaction committing later than that "
                    "after its rows' stamps is lost",
                    overlap,
                )
            with source.cursor() as cur:
                for table in chosen:
                    one = TableExtract(table.name)
                    cur.execute("SAVEPOINT dp_table")
                    try:
                        _extract_table(
                            source, table, one, marks.get(table.name), snapshot, overlap, page_rows
                        )
                        cur.execute("RELEASE SAVEPOINT dp_table")
                    except (psycopg2.Error, OSError, pa.ArrowException, ValueError) as exc:
                        # The snapshot stays: the next table reads the same cut.
                        cur.execute("ROLLBACK TO SAVEPOINT dp_table")
                        one.error = _first_line(exc)
                        one.key = None
                        log.error("extraction failed: %s", one.error, extra={"table": table.name})
                    result.tables.append(one)
    finally:
        with contextlib.suppress(psycopg2.Error):
            source.rollback()  # end the read-only snapshot
        source.close()
    return result


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_marks() -> dict[str, _Mark]:
    """Each table's mark (its landing mark, `loads.marks`: {updated, key, horizon,
    identity}, `updated` the source's naive time as ISO text)."""
    with get_engine().connect() as conn:
        found = landing_marks.read_marks(conn, T.SOURCE)
    return {
        name: _Mark(
            datetime.fromisoformat(mark["updated"]),
            mark["key"],
            mark.get("horizon"),
            mark.get("identity"),
        )
        for name, mark in found.items()
    }


def _begin(source, marks: dict[str, _Mark]) -> _Snapshot:
    """Read the source's identity, then open the pass's snapshot on `source` (its first
    statement fixes it) and read the transaction horizon; None when the source has no
    pg_current_snapshot."""
    identity = _identity(source)
    source.set_session(isolation_level="REPEATABLE READ", readonly=True)
    xmin = xmax = None
    with source.cursor() as cur:
        try:
            cur.execute(HORIZON_QUERY)
            xmin, xmax = cur.fetchone()
        except pg_errors.UndefinedFunction:
            source.rollback()
            cur.execute("SELECT 1")  # the snapshot of the pass, without a horizon
    with get_engine().connect() as conn:
        last = landing_marks.last_marked(conn, T.SOURCE)  # the last pass's time
    extracted = datetime.now(UTC)
    if last is not None and extracted <= last:  # a clock set back: passes stay in order
        extracted = last + timedelta(microseconds=1)
    return _Snapshot(xmin, xmax, extracted, identity)


def _identity(source) -> str | None:
    """Which server and database `source` is (IDENTITY_QUERY, else IDENTITY_FALLBACK);
    None when neither can be read (the marks' identities are then not checked)."""
    for query in (IDENTITY_QUERY, IDENTITY_FALLBACK):
        with source.cursor() as cur:
            try:
                cur.execute(query)
                (identity,) = cur.fetchone()
                return identity
            except (pg_errors.InsufficientPrivilege, pg_errors.UndefinedFunction) as exc:
                log.info("source identity: %s", _first_line(exc))
            finally:
                source.rollback()
    log.warning("the source's identity cannot be read: a swapped source is not detected")
    return None


def _read_all(mark: _Mark, snapshot: _Snapshot) -> str | None:
    """Why the pass must read the whole table although it has a mark, or None. Each case
    is one where reading by the horizon would skip rows never read (a repeat is dropped
    by content; a skipped row is lost for good):

    - the mark is of another source (a restored dump, a new cluster, a promoted standby,
      another database): its rows' xids say nothing about what was read;
    - the mark has no horizon (written by stamp, before revision 0014) while the source
      now has one: the overlap window is not trusted;
    - the source's counter is behind the mark (span < 0), or 2^31 or more ahead (span
      >= 2^31: the 32-bit `xmin` modulo cannot tell old from new)."""
    if snapshot.identity is not None and mark.identity != snapshot.identity:
        if mark.identity is None:
            return "the mark does not say which source it is of (written before revision 0014)"
        return f"the source is not the one the mark is of ({mark.identity} -> {snapshot.identity})"
    if snapshot.xmin is None:
        return None  # by stamp: all such a source gets
    if mark.horizon is None:
        return "the mark has no transaction horizon (written by stamp)"
    assert snapshot.xmax is not None
    span = snapshot.xmax - mark.horizon
    if span < 0:
        return (
            f"the source's transaction counter ({snapshot.xmax}) is behind the mark's "
            f"horizon ({mark.horizon})"
        )
    if span >= XID_SPAN // 2:
        return f"{span} transactions since the mark: 2^31 or more"
    return None


def _changed(
    table: T.TotesysTable, mark: _Mark | None, snapshot: _Snapshot, overlap: timedelta
) -> tuple[sql.Composable, tuple]:
    """The WHERE clause (and its parameters) of the rows a pass reads: all without a mark
    or when `_read_all` gives a reason; by the transaction horizon when both have one;
    else by stamp with the overlap."""
    if mark is None or _read_all(mark, snapshot) is not None:
        return sql.SQL(""), ()
    if snapshot.xmin is not None:
        assert snapshot.xmax is not None and mark.horizon is not None
        span = snapshot.xmax - mark.horizon  # 0 <= span < 2^31 (`_read_all`)
        xid = sql.SQL("xmin::text::bigint")
        return (
            sql.SQL("WHERE {x} > 2 AND ({x} - %s + %s) %% %s < %s").format(x=xid),
            (mark.horizon % XID_SPAN, XID_SPAN, XID_SPAN, span),
        )
    return (
        sql.SQL("WHERE {} >= %s").format(sql.Identifier(T.UPDATED)),
        (mark.updated - overlap,),
    )


def _extract_table(
    source,
    table: T.TotesysTable,
    one: TableExtract,
    mark: _Mark | None,
    snapshot: _Snapshot,
    overlap: timedelta,
    page_rows: int,
) -> None:
    extra = {"table": table.name}
    why = _read_all(mark, snapshot) if mark is not None else None
    if why:
        log.warning("reading the whole table: %s", why, extra=extra)
    where, params = _changed(table, mark, snapshot, overlap)
    query = sql.SQL("SELECT {c}, {version}::text FROM {t} {where}").format(
        c=sql.SQL(", ").join(map(sql.Identifier, table.names)),
        version=T.version_sql(table),
        t=sql.Identifier(table.name),
        where=where,
    )
    # Rows read again (committed between the last horizon and the last snapshot) that
    # the copy holds as they are need not land again; only known when nothing of the
    # table waits to be loaded (a waiting file may hold another version of the key).
    complete = _copy_complete(table)
    schema = schema_of(table)
    position = table.names.index(T.UPDATED)
    newest: tuple[datetime, int] | None = None
    # Unlinked at creation: a killed process leaves nothing behind (no name to clean).
    with tempfile.TemporaryFile(suffix=".parquet") as spool:
        writer = pq.ParquetWriter(spool, schema)
        try:
            # A server-side cursor: pages of page_rows, memory flat, all in the snapshot.
            with source.cursor(name=f"dp_extract_{table.name}") as cur:
                cur.itersize = page_rows
                cur.execute(query, params)
                while page := cur.fetchmany(page_rows):
                    if complete:
                        page = _not_held(page, table)
                        if not page:
                            continue
                    page = [row[:-1] for row in page]
                    writer.write_table(_to_arrow(page, table, schema, snapshot.extracted))
                    one.rows += len(page)
                    top = max((row[position], row[0]) for row in page)
                    newest = top if newest is None or top > newest else newest
            gone = _deleted_keys(source, table)
            if gone:
                writer.write_table(_deletes(gone, schema, snapshot.extracted))
                one.rows += len(gone)
                one.deleted = len(gone)
        finally:
            writer.close()
        landed = table_key(table, snapshot.extracted) if one.rows else None
        if landed:
            spool.seek(0)
            get_zone("incoming").put(landed, spool)
    _move_mark(table, mark, snapshot, newest, landed, one.rows)
    if landed:
        one.key = landed
        log.info("%d row(s) (%d deleted) landed at %s", one.rows, one.deleted, landed, extra=extra)
    else:
        log.info("no new rows", extra=extra)


def _copy_complete(table: T.TotesysTable) -> bool:
    """Does the current-state copy hold every row landed for `table`: no file waiting in
    incoming, no load of the table that is not archived or skipped?"""
    if any(get_zone("incoming").list(f"{PREFIX}{table.name}/")):
        return False
    with get_engine().connect() as conn:
        return not conn.scalar(
            text(
                "SELECT EXISTS (SELECT FROM loads l JOIN source_tables t ON t.id = l.table_id "
                "WHERE t.source = :source AND t.db_table = :table "
                "AND l.status NOT IN ('archived', 'skipped'))"
            ),
            {"source": T.SOURCE, "table": table.name},
        )


def _not_held(page: list[tuple], table: T.TotesysTable) -> list[tuple]:
    """The rows of `page` (source columns, then the version) whose version is not the
    copy's current row of their key."""
    raw = get_engine().raw_connection()
    try:
        with dbapi_cursor(raw) as cur:
            cur.execute(
                sql.SQL("SELECT {k}, {v}::text FROM {t} WHERE {k} = ANY(%s)").format(
                    k=sql.Identifier(table.key),
                    v=sql.Identifier(T.VERSION),
                    t=sql.Identifier(T.DB_SCHEMA, table.name),
                ),
                ([row[0] for row in page],),
            )
            held = dict(cur.fetchall())
        raw.rollback()
    finally:
        raw.close()
    return [row for row in page if held.get(row[0]) != row[-1]]


def _deleted_keys(source, table: T.TotesysTable) -> list[int]:
    """Keys the platform's current-state copy holds and the source's snapshot does not:
    the source's key set is streamed (COPY) into a temporary table of the platform and
    compared there (a hash anti-join)."""
    with tempfile.SpooledTemporaryFile(max_size=16 << 20) as keys:
        with source.cursor() as cur:
            cur.copy_expert(
                sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
                    sql.Identifier(table.key), sql.Identifier(table.name)
                ),
                keys,
            )
        keys.seek(0)
        raw = get_engine().raw_connection()
        try:
            with dbapi_cursor(raw) as cur:
                cur.execute("CREATE TEMP TABLE dp_source_keys (k integer) ON COMMIT DROP")
                cur.copy_expert("COPY dp_source_keys FROM STDIN", keys, size=1 << 20)
                cur.execute("ANALYZE dp_source_keys")
                cur.execute(
                    sql.SQL(
                        "SELECT c.{k} FROM {t} AS c WHERE NOT EXISTS "
                        "(SELECT FROM dp_source_keys AS s WHERE s.k = c.{k}) ORDER BY 1"
                    ).format(k=sql.Identifier(table.key), t=sql.Identifier(T.DB_SCHEMA, table.name))
                )
                gone = [key for (key,) in cur.fetchall()]
            raw.rollback()
        finally:
            raw.close()
    return gone


def _move_mark(
    table: T.TotesysTable,
    mark: _Mark | None,
    snapshot: _Snapshot,
    newest: tuple[datetime, int] | None,
    landed: str | None,
    rows: int,
) -> None:
    """After the file is in place: the table's mark takes the pass's horizon (every pass,
    so it follows the source) and the newest stamp landed. A table that never had a row
    keeps no mark (the next pass reads it whole, which is nothing)."""
    if newest is None and mark is None:
        return
    candidates = [(mark.updated, mark.key)] if mark is not None else []
    candidates += [(newest[0], str(newest[1]))] if newest is not None else []
    # The newest stamp landed so far (a row committed late may be stamped older).
    updated, key = max(candidates, key=lambda mark: mark[0])
    with get_engine().begin() as conn:
        landing_marks.write_mark(
            conn,
            T.SOURCE,
            table.name,
            {
                "updated": updated.isoformat(),
                "key": str(key),
                "horizon": snapshot.xmin,
                "identity": snapshot.identity,
            },
            last_key=landed,
            rows=rows if landed else None,
            marked_at=snapshot.extracted,
        )


def _to_arrow(
    rows: list[tuple], table: T.TotesysTable, schema: pa.Schema, extracted: datetime
) -> pa.Table:
    """A page of source rows as Arrow; a value the column's type cannot hold raises
    ValueError naming the column (the table's extraction fails, the others go on)."""
    columns = list(zip(*rows, strict=True))
    arrays = []
    for index, column in enumerate(table.columns):
        values: Sequence[Any] = columns[index]
        if column.type.startswith("numeric"):
            values = [v if v is None or isinstance(v, Decimal) else Decimal(v) for v in values]
        try:
            arrays.append(pa.array(values, type=schema.field(index).type))
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            raise ValueError(
                f"column {column.name}: a value {schema.field(index).type} cannot hold: "
                f"{_first_line(exc)}"
            ) from exc
    arrays.append(pa.array([extracted] * len(rows), type=schema.field(T.EXTRACTED).type))
    arrays.append(pa.array([False] * len(rows), type=pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=schema)


def _deletes(keys: list[int], schema: pa.Schema, extracted: datetime) -> pa.Table:
    """Delete rows: the key, the pass, dp__deleted true, every other column NULL."""
    arrays = [pa.array(keys, type=schema.field(0).type)]
    arrays += [pa.nulls(len(keys), type=f.type) for f in list(schema)[1:-2]]
    arrays.append(pa.array([extracted] * len(keys), type=schema.field(T.EXTRACTED).type))
    arrays.append(pa.array([True] * len(keys), type=pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=schema)
