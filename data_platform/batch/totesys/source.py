"""totesys as a source of the one worker: each extracted Parquet file is a load.

Scan: the files under `database/totesys/<table>/` not recorded yet. (The extraction that
puts them there is the source's landing, `lander.TotesysLander`: `data-platform run` lands
it first when the source is in use, `totesys extract` on demand.) Apply (`apply_pass`):
the file's columns must be the table's plus the pass (`dp__extracted_at`) and the delete
flag (`dp__deleted`); its rows are COPYed into a staging table typed like the table (every
value checked, NOT NULL checked with row and column), then in one transaction: deleted
keys leave
`totesys.<table>` and the history records each delete; every distinct version (by
content) goes into `totesys_history.<table>` once; each key's row of the latest pass is
the current state, whatever its `last_updated`. Re-ingesting a file changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from psycopg2 import sql
from sqlalchemy import Connection

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.extract import PREFIX, STAMP
from data_platform.db.engine import dbapi_cursor
from data_platform.db.models import ERROR_STATES
from data_platform.errors import LoadError
from data_platform.loads import dispositions
from data_platform.loads.copy_csv import NOT_NULL, copy_csv
from data_platform.loads.parquet_files import DIALECT, ParquetCsvReader
from data_platform.loads.scan import FileScanResult, record_source_files
from data_platform.loads.source import FileSource, PendingLoad, TableLoader

log = logging.getLogger(__name__)
SUFFIX = ".parquet"


def scan_totesys() -> FileScanResult:
    """Record every new extracted file of the source's active tables as a `ready` load."""
    result = FileScanResult()
    result.new_loads, result.tables = record_source_files(
        T.SOURCE, lambda prefix, key: key.endswith(SUFFIX) and "/" not in key[len(prefix) :]
    )
    return result


class TotesysTableLoader(TableLoader):
    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        return self.worker.has_load_in(ERROR_STATES)

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: load.key)  # extracted=<UTC stamp>: pass order

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        """Apply one extracted file (one pass of one table): deletes, then versions.

        Raises LoadError naming the file (and the row and column where one is at
        fault): not Parquet or damaged, columns not the table's, a value its column
        cannot hold, a NULL in a NOT NULL column."""
        table = T.BY_NAME[self.table.db_table]
        error = self.load_error(load)
        body, _ = self.open_file(conn, load)
        cur = dbapi_cursor(conn)
        try:
            try:
                reader = ParquetCsvReader(body, load.key)
            except LoadError as exc:
                raise error(exc.reason) from exc
            with reader:
                columns = [*table.names, T.EXTRACTED, T.DELETED]
                if reader.columns not in (columns, table.names):
                    raise error(
                        f"columns are not totesys.{table.name}'s: {', '.join(reader.columns)}"
                    )
                stage = _stage(cur, table)
                if reader.columns == table.names:
                    # A file of the extraction before passes and deletes were carried:
                    # its pass from its name, no deletes (defaults keep the file's order).
                    try:
                        extracted = _pass_of(load.key)
                    except ValueError as exc:
                        raise error(f"no pass time in the file's name: {exc}") from exc
                    cur.execute(
                        sql.SQL(
                            "ALTER TABLE {} ALTER {} SET DEFAULT %s, ALTER {} SET DEFAULT false"
                        ).format(stage, sql.Identifier(T.EXTRACTED), sql.Identifier(T.DELETED)),
                        (extracted,),
                    )
                rows = copy_csv(
                    cur,
                    stage,
                    reader.columns,
                    reader,
                    DIALECT,
                    file_columns=reader.columns,
                    error=_rows_from_one(error),
                )
            _check_not_null(cur, stage, table, error)
            deleted, versions, written = apply_pass(cur, table, stage)
        finally:
            # A database error goes on as it is: the worker decides whose fault it is.
            cur.close()
        log.info(
            "%d row(s): %d new version(s), %d current row(s) written, %d deleted",
            rows,
            versions,
            written,
            deleted,
            extra={**self.worker.extra, "load_id": load.id},
        )
        return rows


def _rows_from_one(error):
    """`error` for copy_csv, which counts a CSV header as line 1: a Parquet file has no
    header, so its errors name the row, the file's first being 1 (as `_check_not_null`)."""

    def rows(message: str, line: int | None = None, column: str | None = None) -> LoadError:
        return error(message, line=None if line is None else line - 1, column=column)

    return rows


def _stage(cur, table: T.TotesysTable) -> sql.Composable:
    """A temporary table typed like the current-state table's source columns, plus the
    pass and the delete flag; no constraints (NOT NULL is checked with row and column)."""
    stage = sql.Identifier(dispositions.STAGE)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {}, NULL::timestamptz AS {}, "
            "NULL::boolean AS {} FROM {} WITH NO DATA"
        ).format(
            stage,
            _list(table.names),
            sql.Identifier(T.EXTRACTED),
            sql.Identifier(T.DELETED),
            sql.Identifier(T.DB_SCHEMA, table.name),
        )
    )
    return stage


def _pass_of(key: str) -> datetime:
    """The pass time in a file name `.../extracted=<UTC stamp>[...].parquet`."""
    stamp = key.rsplit("extracted=", 1)[-1][: len("20000101T000000.000000Z")]
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)


def _check_not_null(cur, stage: sql.Composable, table: T.TotesysTable, error) -> None:
    """A NULL where the model declares NOT NULL (a delete row holds only the key and the
    pass) errors the load with its row (1 = the file's first) and column."""
    required = [c.name for c in table.columns if not c.nullable]
    always = [table.key, T.EXTRACTED, T.DELETED]
    nulls = sql.SQL(" OR ").join(
        sql.SQL("({} IS NULL{})").format(
            sql.Identifier(name),
            sql.SQL("")
            if name in always
            else sql.SQL(" AND NOT {}").format(sql.Identifier(T.DELETED)),
        )
        for name in [*required, T.EXTRACTED, T.DELETED]
    )
    # A fresh temporary table filled by one COPY is read back in the file's order.
    cur.execute(
        sql.SQL(
            "SELECT n, {cols} FROM (SELECT row_number() OVER () AS n, * FROM {stage}) s "
            "WHERE {nulls} ORDER BY n LIMIT 1"
        ).format(
            cols=sql.SQL(", ").join(
                sql.SQL("{} IS NULL").format(sql.Identifier(n))
                for n in [*required, T.EXTRACTED, T.DELETED]
            ),
            stage=stage,
            nulls=nulls,
        )
    )
    found = cur.fetchone()
    if found is None:
        return
    names = [*required, T.EXTRACTED, T.DELETED]
    column = next(name for name, null in zip(names, found[1:], strict=True) if null)
    raise error(NOT_NULL, line=found[0], column=column)


def apply_pass(cur, table: T.TotesysTable, stage: sql.Composable) -> tuple[int, int, int]:
    """Apply a staged pass of `table` inside the caller's transaction; returns (keys
    deleted, new versions in the history, current rows written).

    The current state is the source's row as of the latest pass: a row of an earlier pass
    never replaces a later one's (`dp__extracted_at`), whatever the rows' `last_updated`
    say, so a version committed late with an older stamp, or a second version within one
    millisecond, is current. A delete removes the key if the stored row is of an earlier
    pass and records the removed row in the history with `dp__deleted_at`; a row of a pass
    not later than a recorded delete of its key is not brought back (a file replayed).
    The history keeps each distinct version once (key, `dp__version`)."""
    current = sql.Identifier(T.DB_SCHEMA, table.name)
    history = sql.Identifier(T.HISTORY_SCHEMA, table.name)
    key = sql.Identifier(table.key)
    extracted, deleted = sql.Identifier(T.EXTRACTED), sql.Identifier(T.DELETED)
    version, deleted_at = sql.Identifier(T.VERSION), sql.Identifier(T.DELETED_AT)
    names = _list(table.names)
    cur.execute("SET LOCAL datestyle = 'ISO, YMD'")
    cur.execute(
        sql.SQL(
            "WITH gone AS (DELETE FROM {current} AS c USING (SELECT {key}, max({ex}) AS {ex} "
            "FROM {stage} WHERE {deleted} GROUP BY {key}) AS s "
            "WHERE c.{key} = s.{key} AND c.{ex} < s.{ex} RETURNING c.*, s.{ex} AS dp__seen) "
            "INSERT INTO {history} ({names}, {version}, {ex}, {deleted_at}) "
            "SELECT {names}, md5({version}::text || '|deleted|' || dp__seen::text)::uuid, "
            "dp__seen, dp__seen FROM gone ON CONFLICT DO NOTHING"
        ).format(
            current=current,
            key=key,
            ex=extracted,
            stage=stage,
            deleted=deleted,
            history=history,
            names=names,
            version=version,
            deleted_at=deleted_at,
        )
    )
    gone = cur.rowcount
    cur.execute(
        sql.SQL(
            "INSERT INTO {history} ({names}, {version}, {ex}) "
            "SELECT {names}, {hash}, {ex} FROM {stage} WHERE NOT {deleted} "
            "ORDER BY {ex} ON CONFLICT DO NOTHING"
        ).format(
            history=history,
            names=names,
            version=version,
            ex=extracted,
            hash=T.version_sql(table),
            stage=stage,
            deleted=deleted,
        )
    )
    versions = cur.rowcount
    others = [n for n in table.names if n != table.key]
    cur.execute(
        sql.SQL(
            "INSERT INTO {current} AS t ({names}, {version}, {ex}) "
            "SELECT DISTINCT ON ({key}) {names}, {hash}, {ex} "
            "FROM (SELECT *, ctid AS dp__ctid FROM {stage}) AS s WHERE NOT {deleted} "
            "AND NOT EXISTS (SELECT FROM {history} AS h WHERE h.{key} = s.{key} "
            "AND h.{deleted_at} >= s.{ex}) "
            "ORDER BY {key}, {ex} DESC, dp__ctid DESC "
            "ON CONFLICT ({key}) DO UPDATE SET {sets}, {version} = EXCLUDED.{version}, "
            "{ex} = EXCLUDED.{ex}, "
            "dp__load_id = current_setting('data_platform.load_id')::bigint "
            "WHERE t.{ex} < EXCLUDED.{ex}"
        ).format(
            current=current,
            names=names,
            version=version,
            ex=extracted,
            key=key,
            hash=T.version_sql(table),
            stage=stage,
            deleted=deleted,
            history=history,
            deleted_at=deleted_at,
            sets=sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in others
            ),
        )
    )
    return gone, versions, cur.rowcount


def _list(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


# The warehouse models read its tables: `data-platform run` rebuilds them after new loads.
TOTESYS = FileSource(T.SOURCE, scan_totesys, TotesysTableLoader, transforms=True)

__all__ = ["PREFIX", "TOTESYS", "scan_totesys"]
