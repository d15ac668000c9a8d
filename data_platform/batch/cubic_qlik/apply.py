"""Apply one Qlik file to its current-state table, inside the caller's transaction.

Full load: the file is COPYed straight into the table (the first part of a snapshot
truncates it first). Change file: COPY into a typed staging table, then Postgres does the
set operations: the final change per key (B rows ignored, ordered by header__change_seq),
one DELETE for deletes and one INSERT ... ON CONFLICT for inserts and updates. A row is
only overwritten by a newer change, so re-applying a file changes nothing.

Every identifier from a file goes through psycopg2.sql.Identifier.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from data_platform.batch.cubic_qlik.dfm import Dfm
from data_platform.batch.cubic_qlik.naming import CHANGE_SEQ_COLUMN, LINEAGE_PREFIX, LOAD_ID_COLUMN
from data_platform.batch.cubic_qlik.reader import DataFileReader
from data_platform.errors import DatabaseError, LoadError

log = logging.getLogger(__name__)

SEQ = "header__change_seq"
OPER = "header__change_oper"
ORD = "dp__ord"  # record number in the file (1 = first row after the header)
OPERATIONS = ("I", "U", "D", "B")
_COPY_CONTEXT = re.compile(r"line (\d+)(?:, column ([^:]+))?")


@dataclass(frozen=True)
class TargetTable:
    schema: str
    name: str
    columns: tuple[str, ...]  # source columns in table order, lineage excluded
    key: tuple[str, ...]
    bytea: frozenset[str]

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ApplyResult:
    rows: int  # rows in the file
    upserted: int = 0
    deleted: int = 0


def describe_target(cur, schema: str, table: str) -> TargetTable:
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               coalesce((SELECT k.ord FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                         WHERE k.attnum = a.attnum), 0)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    )
    rows = cur.fetchall()
    if not rows:
        # Not the file's fault: the load stays ready until the migration is applied.
        raise DatabaseError(
            f"table {schema}.{table} does not exist: run `data-platform db upgrade`"
        )
    columns = tuple(name for name, _, _ in rows if not name.startswith(LINEAGE_PREFIX))
    key = tuple(name for name, _, pos in sorted(rows, key=lambda r: r[2]) if pos > 0)
    bytea = frozenset(name for name, type_, _ in rows if type_ == "bytea")
    return TargetTable(schema, table, columns, key, bytea)


class FileApplier:
    """Applies one data file; `key`, `load_id` and `table_name` feed every error message."""

    def __init__(
        self,
        cur,
        target: TargetTable,
        dfm: Dfm,
        *,
        key: str,
        load_id: int,
        table_name: str,
        table_id: int,
    ) -> None:
        self.cur = cur
        self.table_id = table_id
        self.target = target
        self.dfm = dfm
        self.key = key
        self.load_id = load_id
        self.table_name = table_name

    def error(self, message: str, line: int | None = None, column: str | None = None) -> LoadError:
        return LoadError(
            message,
            key=self.key,
            line=line,
            column=column,
            table=self.table_name,
            load_id=self.load_id,
        )

    # --- checks before any row is read -------------------------------------------------

    def check_columns(self, header: list[str]) -> list[str]:
        """File header == .dfm columns, and .dfm data columns == table columns.

        Returns the Postgres column of each file column, in file order.
        """
        expected = [c.name for c in self.dfm.columns]
        if header != expected:
            raise self.error(
                f"header has {len(header)} column(s) {_short(header)}, the .dfm lists "
                f"{len(expected)}: {_short(expected)}",
                line=1,
            )
        if self.dfm.is_change_file:
            for required in (SEQ, OPER):
                if required not in header:
                    raise self.error(f"change file has no {required} column", line=1)
        data = [c.name.lower() for c in self.dfm.data_columns]
        missing = [c for c in self.target.columns if c not in data]
        extra = [c for c in data if c not in self.target.columns]
        if missing or extra:
            parts = []
            if extra:
                parts.append(f"not in the table: {', '.join(extra)}")
            if missing:
                parts.append(f"missing from the file: {', '.join(missing)}")
            raise self.error(
                f"columns differ from table {self.target.qualified} ({'; '.join(parts)})", line=1
            )
        return [c.name if c.is_header else c.name.lower() for c in self.dfm.columns]

    # --- COPY -------------------------------------------------------------------------

    def copy(self, reader: DataFileReader, into: sql.Composable, columns: list[str]) -> int:
        d = self.dfm.dialect
        options = [
            sql.SQL("FORMAT csv"),
            sql.SQL("HEADER false"),
            sql.SQL("ENCODING 'UTF8'"),
            sql.SQL("DELIMITER {}").format(sql.Literal(d.delimiter)),
            sql.SQL("QUOTE {}").format(sql.Literal(d.quote)),
            sql.SQL("NULL {}").format(sql.Literal(d.null_value)),
        ]
        if d.escape:
            options.append(sql.SQL("ESCAPE {}").format(sql.Literal(d.escape)))
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
            into,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(options),
        )
        try:
            self.cur.copy_expert(statement, reader, size=1 << 20)
        except psycopg2.Error as exc:
            if reader.failure is not None:
                raise self.error(reader.failure.reason) from exc
            raise self._copy_error(exc, columns) from exc
        rows = self.cur.rowcount
        if self.dfm.record_count is not None and rows != self.dfm.record_count:
            raise self.error(
                f"file has {rows} record(s) but its .dfm says recordCount {self.dfm.record_count}"
            )
        return rows

    def _copy_error(self, exc: psycopg2.Error, columns: list[str]) -> LoadError:
        diag = exc.diag
        message = (diag.message_primary or str(exc)).strip()
        match = _COPY_CONTEXT.search(diag.context or "")
        if not match:
            return self.error(message)
        line = int(match.group(1)) + 1  # COPY counts records after the header
        column = match.group(2)
        by_db = {db: c.name for db, c in zip(columns, self.dfm.columns, strict=True)}
        return self.error(message, line=line, column=by_db.get(column, column))

    # --- full load ----------------------------------------------------------------------

    def apply_full_load(self, reader: DataFileReader, *, truncate: bool) -> ApplyResult:
        columns = self.check_columns(reader.header(self.dfm.dialect))
        if truncate:
            self.cur.execute(sql.SQL("TRUNCATE {}").format(self.target.ident))
            # A new snapshot is the whole truth: earlier deletes no longer matter.
            self.cur.execute("DELETE FROM deleted_keys WHERE table_id = %s", (self.table_id,))
        if not self.target.bytea:
            # Lineage comes from the column default: current_setting('data_platform.load_id').
            rows = self.copy(reader, self.target.ident, columns)
            return ApplyResult(rows=rows, upserted=rows)
        stage = self._create_staging(columns, headers=[])
        rows = self.copy(reader, stage, columns)
        self._check_hex(stage, columns)
        self.cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                self.target.ident,
                sql.SQL(", ").join(map(sql.Identifier, self.target.columns)),
                sql.SQL(", ").join(self._value(c) for c in self.target.columns),
                stage,
            )
        )
        return ApplyResult(rows=rows, upserted=self.cur.rowcount)

    # --- change file ------------------------------------------------------------------

    def apply_changes(self, reader: DataFileReader) -> ApplyResult:
        columns = self.check_columns(reader.header(self.dfm.dialect))
        headers = [c.name for c in self.dfm.header_columns]
        stage = self._create_staging(columns, headers=headers)
        rows = self.copy(reader, stage, columns)
        if rows == 0:
            return ApplyResult(rows=0)
        self._check_changes(stage)
        self._check_hex(stage, columns)
        final = sql.Identifier("dp_final")
        key = sql.SQL(", ").join(map(sql.Identifier, self.target.key))
        self.cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE {final} ON COMMIT DROP AS "
                "SELECT DISTINCT ON ({key}) * FROM {stage} WHERE {oper} <> 'B' "
                "ORDER BY {key}, {seq} DESC, {ord} DESC"
            ).format(
                final=final,
                key=key,
                stage=stage,
                oper=sql.Identifier(OPER),
                seq=sql.Identifier(SEQ),
                ord=sql.Identifier(ORD),
            )
        )
        self.cur.execute(sql.SQL("ANALYZE {}").format(final))
        key_match = sql.SQL(" AND ").join(
            sql.SQL("t.{c} = f.{c}").format(c=sql.Identifier(c)) for c in self.target.key
        )
        key_json = sql.SQL("jsonb_build_array({})").format(
            sql.SQL(", ").join(sql.SQL("f.{}").format(sql.Identifier(c)) for c in self.target.key)
        )
        ids = {"table_id": self.table_id, "load_id": self.load_id}
        names = {
            "final": final,
            "oper": sql.Identifier(OPER),
            "seq": sql.Identifier(SEQ),
            "key_json": key_json,
            "key_match": key_match,
            "target": self.target.ident,
            "lseq": sql.Identifier(CHANGE_SEQ_COLUMN),
        }
        # Deletes leave a tombstone, so an older I/U for the key arriving later is ignored.
        self.cur.execute(
            sql.SQL(
                "INSERT INTO deleted_keys AS d (table_id, key, change_seq, load_id) "
                "SELECT %(table_id)s, {key_json}, f.{seq}, %(load_id)s FROM {final} f "
                "WHERE f.{oper} = 'D' "
                "ON CONFLICT (table_id, key) DO UPDATE SET change_seq = EXCLUDED.change_seq, "
                "load_id = EXCLUDED.load_id WHERE d.change_seq < EXCLUDED.change_seq"
            ).format(**names),
            ids,
        )
        self.cur.execute(
            sql.SQL(
                "DELETE FROM {target} t USING {final} f "
                "WHERE f.{oper} = 'D' AND {key_match} AND (t.{lseq} IS NULL OR t.{lseq} < f.{seq})"
            ).format(**names)
        )
        deleted = self.cur.rowcount
        non_key = [c for c in self.target.columns if c not in self.target.key]
        assignments = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
            for c in [*non_key, LOAD_ID_COLUMN, CHANGE_SEQ_COLUMN]
        )
        self.cur.execute(
            sql.SQL(
                "INSERT INTO {target} AS t ({cols}, {lid}, {lseq}) "
                "SELECT {values}, %(load_id)s, f.{seq} FROM {final} f "
                "WHERE f.{oper} IN ('I', 'U') AND NOT EXISTS ("
                "SELECT FROM deleted_keys d WHERE d.table_id = %(table_id)s "
                "AND d.key = {key_json} AND d.change_seq > f.{seq}) "
                "ON CONFLICT ({key}) DO UPDATE SET {assignments} "
                "WHERE t.{lseq} IS NULL OR t.{lseq} < EXCLUDED.{lseq}"
            ).format(
                cols=sql.SQL(", ").join(map(sql.Identifier, self.target.columns)),
                lid=sql.Identifier(LOAD_ID_COLUMN),
                values=sql.SQL(", ").join(self._value(c, alias="f") for c in self.target.columns),
                key=key,
                assignments=assignments,
                **names,
            ),
            ids,
        )
        upserted = self.cur.rowcount
        # A key written again by a newer change is alive: its tombstone can go.
        self.cur.execute(
            sql.SQL(
                "DELETE FROM deleted_keys d USING {final} f WHERE d.table_id = %(table_id)s "
                "AND f.{oper} IN ('I', 'U') AND d.key = {key_json} AND d.change_seq < f.{seq}"
            ).format(**names),
            ids,
        )
        return ApplyResult(rows=rows, upserted=upserted, deleted=deleted)

    # --- helpers ----------------------------------------------------------------------

    def _create_staging(self, columns: list[str], headers: list[str]) -> sql.Composable:
        """A temp table typed like the target (so COPY checks every value), plus the
        change headers as text and the record number."""
        stage = sql.Identifier("dp_stage")
        header_set = set(headers)
        select_list = []
        for column in columns:
            if column in header_set or column in self.target.bytea:
                expr = sql.SQL('CAST(NULL AS text) COLLATE "C" AS {}')
            else:
                expr = sql.SQL("t.{}")
            select_list.append(expr.format(sql.Identifier(column)))
        self.cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {target} t "
                "WITH NO DATA"
            ).format(stage=stage, cols=sql.SQL(", ").join(select_list), target=self.target.ident)
        )
        self.cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint GENERATED ALWAYS AS IDENTITY").format(
                stage, sql.Identifier(ORD)
            )
        )
        return stage

    def _value(self, column: str, alias: str | None = None) -> sql.Composable:
        ref = sql.Identifier(alias, column) if alias else sql.Identifier(column)
        if column in self.target.bytea:
            return sql.SQL("decode({}, 'hex')").format(ref)
        return ref

    def _first_bad(self, stage: sql.Composable, condition: sql.Composable, what: sql.Composable):
        self.cur.execute(
            sql.SQL("SELECT {ord}, {what} FROM {stage} WHERE {cond} ORDER BY {ord} LIMIT 1").format(
                ord=sql.Identifier(ORD), what=what, stage=stage, cond=condition
            )
        )
        return self.cur.fetchone()

    def _check_changes(self, stage: sql.Composable) -> None:
        """Operations, sequences and keys in one pass over the staged rows."""
        oper, seq = sql.Identifier(OPER), sql.Identifier(SEQ)
        checks = [
            (sql.SQL("{o} IS NULL OR {o} NOT IN ('I', 'U', 'D', 'B')").format(o=oper), OPER),
            (sql.SQL("{} IS NULL").format(seq), SEQ),
            *(
                (sql.SQL("{} <> 'B' AND {} IS NULL").format(oper, sql.Identifier(c)), c)
                for c in self.target.key
            ),
        ]
        self.cur.execute(
            sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(
                    sql.SQL("min(CASE WHEN {} THEN {} END)").format(cond, sql.Identifier(ORD))
                    for cond, _ in checks
                ),
                stage,
            )
        )
        firsts = self.cur.fetchone()
        bad = [(ord_, column) for ord_, (_, column) in zip(firsts, checks, strict=True) if ord_]
        if not bad:
            return
        ord_, column = min(bad)
        line = ord_ + 1
        if column == OPER:
            self.cur.execute(
                sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(oper, stage, sql.Identifier(ORD)),
                (ord_,),
            )
            value = self.cur.fetchone()[0]
            raise self.error(f"unknown operation {value!r} (expected I, U, D or B)", line, OPER)
        if column == SEQ:
            raise self.error("empty change sequence", line, SEQ)
        raise self.error("key column is empty (NULL)", line, self._source_name(column))

    def _check_hex(self, stage: sql.Composable, columns: list[str]) -> None:
        for column in (c for c in columns if c in self.target.bytea):
            bad = self._first_bad(
                stage,
                sql.SQL("{} !~ '^([0-9A-Fa-f]{{2}})*$'").format(sql.Identifier(column)),
                sql.Identifier(column),
            )
            if bad:
                raise self.error(
                    f"not hexadecimal binary data: {bad[1][:40]!r}",
                    bad[0] + 1,
                    self._source_name(column),
                )

    def _source_name(self, db_column: str) -> str:
        for c in self.dfm.data_columns:
            if c.name.lower() == db_column:
                return c.name
        return db_column


def _short(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"
