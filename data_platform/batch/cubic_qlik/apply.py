"""Apply one Qlik file to its current-state table, inside the caller's transaction.

Every file is COPYed into a staging table typed like the target (so COPY checks every
value and names its line and column), except DATETIME and binary columns, staged as text
and converted exactly by SQL (`qlik_datetime`, migration 0003; `decode(hex)`). Then
Postgres does the set operations:

- Full load: the first part of a snapshot is loaded into a fresh table beside the live
  one and swapped in at commit (`loads.table_swap`: readers keep the old snapshot,
  unblocked, until then); COPYed straight into it when no column needs converting, its
  key built after the data. A table that cannot be swapped is emptied by DELETE instead
  (never TRUNCATE, which would block readers) and loaded in place. A later part is one
  INSERT ... ON CONFLICT DO UPDATE. The row read last wins when a key appears twice, in
  one part or across parts (Replicate copies rows that change while it reads).
- Change file: staged (a large one in an unlogged table of this transaction, so that
  Postgres's parallel workers can read it); the final change per key (ordered by
  header__change_seq, then file order).
  A `B` row whose `U` (same change number) has another key renamed the key: it counts as
  a delete of the old key. A `U` that left columns untouched (NULL LOBs of an Oracle
  source, or clear bits of `header__change_mask`) keeps their stored values. Then one
  DELETE for deletes (leaving tombstones) and one INSERT ... ON CONFLICT for inserts and
  updates. A row is only overwritten by a newer change, so re-applying a file changes
  nothing.

Key columns may be NULL (a unique index as the key): keys are compared NULL-safely in
every step, and a row whose key is NULL in every part is refused.

Every identifier from a file goes through psycopg2.sql.Identifier; values are bound.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from data_platform.batch.cubic_qlik.dfm import Dfm
from data_platform.batch.cubic_qlik.naming import CHANGE_SEQ_COLUMN, LOAD_ID_COLUMN
from data_platform.batch.cubic_qlik.schema_change import blocking, compare
from data_platform.batch.cubic_qlik.target import TargetTable
from data_platform.batch.cubic_qlik.types import INTEGER_RANGES, LOB_TYPES, RANGE_CHECKED
from data_platform.errors import LoadError
from data_platform.loads import table_swap
from data_platform.loads.copy_csv import NOT_NULL, copy_csv
from data_platform.loads.csv_files import DataFileReader
from data_platform.loads.parallel_copy import ParallelCopyFailed, copy_in_streams, record_chunks
from data_platform.loads.schema_changes import SchemaChangeError, schema_change_message
from data_platform.settings import get_settings

log = logging.getLogger(__name__)

SEQ = "header__change_seq"
OPER = "header__change_oper"
MASK = "header__change_mask"
ORD = "dp__ord"  # record number in the file (1 = first row after the header)
COUNT = "dp__n"  # changes of the key in the file
OPERATIONS = ("I", "U", "D", "B")
_QUOTED_VALUE = re.compile(r'"(.*)"', re.DOTALL)
_EVERY_ROW = sql.SQL("true")
_NOTHING = sql.SQL("")
KEY_NULL = "key column is empty (NULL)"
# Byte orders of a header__change_mask longer than one byte (source_tables.change_mask_order).
LITTLE_ENDIAN = "little_endian"  # a byte array: the first two hex digits are byte 0 (bits 7..0)
BIG_ENDIAN = "big_endian"  # the hex text as one number: its last digit holds bits 3..0
MASK_ORDERS = (LITTLE_ENDIAN, BIG_ENDIAN)


@dataclass(frozen=True)
class ApplyResult:
    rows: int  # rows in the file
    upserted: int = 0
    deleted: int = 0


class FileApplier:
    """Applies one data file; `key`, `load_id` and `table_name` feed every error message.

    `reopen` opens the file again from its start: on the error path, to turn a COPY
    error's physical line into the CSV record and column it belongs to, and to read a
    large new snapshot in several streams, each over a connection from `connect`.
    """

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
        sparse_updates: bool = True,
        reopen: Callable[[], BinaryIO] | None = None,
        raw: bool = False,
        removed: frozenset[str] = frozenset(),
        connect: Callable[[], object] | None = None,
        mask_order: str | None = None,
    ) -> None:
        self.cur = cur
        self.table_id = table_id
        self.target = target
        self.dfm = dfm
        self.key = key
        self.load_id = load_id
        self.table_name = table_name
        self.sparse_updates = sparse_updates
        self.reopen = reopen
        self.raw = raw  # a table onboarded with --raw: every column text
        self.removed = removed  # columns recorded as removed at the source
        self.connect = connect  # opens another connection: a large snapshot in streams
        self._stage: sql.Identifier = sql.Identifier("dp_stage")  # the current staging table
        if mask_order is not None and mask_order not in MASK_ORDERS:
            raise ValueError(f"change mask order must be one of {MASK_ORDERS}, got {mask_order!r}")
        self.mask_order = mask_order  # the table's pinned byte order of header__change_mask
        self._order = LITTLE_ENDIAN  # the byte order this file's masks are read in

    def error(self, message: str, line: int | None = None, column: str | None = None) -> LoadError:
        return LoadError(
            message,
            key=self.key,
            line=line,
            column=column,
            table=self.table_name,
            load_id=self.load_id,
        )

    def _copy_error(
        self, message: str, line: int | None = None, column: str | None = None
    ) -> LoadError:
        """COPY straight into a table refuses a NULL key itself: say it as the staged
        path's key check does."""
        if message == NOT_NULL and column is not None and column.lower() in self.target.key:
            message = KEY_NULL
        return self.error(message, line, column)

    # --- checks before any row is read -------------------------------------------------

    def check_columns(self, header: list[str]) -> list[str]:
        """File header == .dfm columns, and the .dfm's data columns fit the table
        (`schema_change.compare`): the same columns, each declared type holding no value
        the column would store changed. A column the table records as removed at the
        source may be absent: from here on the applier writes the file's columns only, so
        it is NULL in new rows and kept in updated ones.

        Returns the Postgres column of each file column, in file order. Raises LoadError
        (a SchemaChangeError naming every difference and the command that resolves it)."""
        expected = [c.name for c in self.dfm.columns]
        if header != expected:
            raise self.error(_header_difference(header, expected), line=1)
        if self.dfm.is_change_file:
            for required in (SEQ, OPER):
                if required not in header:
                    raise self.error(f"change file has no {required} column", line=1)
        target = self.target
        changes = blocking(
            compare(
                self.dfm,
                target.columns,
                target.types,
                target.key,
                raw=self.raw,
                removed=self.removed,
            )
        )
        if changes:
            columns_differ = any(c.kind in ("added", "removed") for c in changes)
            raise SchemaChangeError(
                schema_change_message(
                    self.dfm.qualified_name,
                    target.qualified,
                    [c.describe() for c in changes],
                    command=None
                    if any(c.kind == "refused" for c in changes)
                    else f"data-platform cubic-qlik evolve-table --table {self.dfm.qualified_name}",
                    version=self.dfm.table_version,
                ),
                key=self.key,
                line=1 if columns_differ else None,
                column=changes[0].source_name or None if len(changes) == 1 else None,
                table=self.table_name,
                load_id=self.load_id,
            )
        in_file = {c.name.lower() for c in self.dfm.data_columns}
        self.target = replace(target, columns=tuple(c for c in target.columns if c in in_file))
        return [c.name if c.is_header else c.name.lower() for c in self.dfm.columns]

    # --- COPY -------------------------------------------------------------------------

    def copy(
        self,
        reader: DataFileReader,
        into: sql.Composable,
        columns: list[str],
        *,
        freeze: bool = False,
    ) -> int:
        """COPY the file's records into `into` and check the .dfm's record count."""
        rows = copy_csv(
            self.cur,
            into,
            columns,
            reader,
            self.dfm.dialect,
            file_columns=[c.name for c in self.dfm.columns],
            error=self._copy_error,
            reopen=self.reopen,
            freeze=freeze,
        )
        if self.dfm.record_count is not None and rows != self.dfm.record_count:
            raise self.error(
                f"file has {rows} record(s) but its .dfm says recordCount {self.dfm.record_count}"
            )
        return rows

    # --- full load ----------------------------------------------------------------------

    def apply_full_load(self, reader: DataFileReader, *, truncate: bool) -> ApplyResult:
        """Apply a full-load part; `truncate`: it starts a new snapshot, which replaces
        every row of the table."""
        columns = self.check_columns(reader.header(self.dfm.dialect))
        if truncate:
            # A new snapshot is the whole truth: earlier deletes no longer matter.
            self.cur.execute("DELETE FROM deleted_keys WHERE table_id = %s", (self.table_id,))
            blocker = table_swap.swap_blocker(self.cur, self.target.schema, self.target.name)
            if blocker is None:
                return self._load_fresh(reader, columns)
            log.info(
                "%s: loading the new snapshot in place, not by a swap: %s",
                self.key,
                blocker,
                extra={"table": self.table_name, "load_id": self.load_id},
            )
            # DELETE, not TRUNCATE: readers keep the old rows, unblocked, until the commit.
            self.cur.execute(sql.SQL("DELETE FROM {}").format(self.target.ident))
        stage = self._create_staging(columns, headers=[])
        rows = self.copy(reader, stage, columns)
        if rows == 0:
            return ApplyResult(rows=0)
        self._check_hex(stage, columns)
        self._check_numeric(stage)
        self._check_keys(stage, where=_EVERY_ROW)
        cols = sql.SQL(", ").join(map(sql.Identifier, self.target.columns))
        values = sql.SQL(", ").join(self._value(c) for c in self.target.columns)
        update = sql.SQL(", ").join(
            [
                *(
                    sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                    for c in self.target.columns
                    if c not in self.target.key
                ),
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(LOAD_ID_COLUMN)),
                sql.SQL("{c} = NULL").format(c=sql.Identifier(CHANGE_SEQ_COLUMN)),
            ]
        )
        conflict = sql.SQL("ON CONFLICT ({}) DO UPDATE SET {}").format(
            sql.SQL(", ").join(map(sql.Identifier, self.target.key)), update
        )
        if truncate:
            # Into the emptied table: a plain INSERT, much cheaper than ON CONFLICT's
            # speculative insertion; a key twice in the file fails it, and then the
            # DISTINCT ON below keeps the row read last.
            conflict = sql.SQL("")
        plain = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} {}").format(
            self.target.ident, cols, values, stage, conflict
        )
        try:
            written = self._run(plain, duplicates=truncate)
        except _DuplicateKeys:
            # The same key twice in this file: keep the row read last.
            last = self._last_of_each_key(self.target.ident, stage, conflict)
            written = self._run(last)
            log.info(
                "%s holds some keys more than once: the row read last was kept",
                self.key,
                extra={"table": self.table_name, "load_id": self.load_id},
            )
        return ApplyResult(rows=rows, upserted=written)

    def _last_of_each_key(
        self, into: sql.Composable, stage: sql.Composable, conflict: sql.Composable = _NOTHING
    ) -> sql.Composable:
        """INSERT the staged rows into `into`, only the one read last of each key."""
        cols = sql.SQL(", ").join(map(sql.Identifier, self.target.columns))
        return sql.SQL(
            "INSERT INTO {into} ({cols}) SELECT {cols} FROM ("
            "SELECT DISTINCT ON ({key}) * FROM (SELECT {values}, {ord} FROM {stage}) s "
            "ORDER BY {key}, {ord} DESC) d {conflict}"
        ).format(
            into=into,
            cols=cols,
            key=sql.SQL(", ").join(map(sql.Identifier, self.target.key)),
            values=sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(self._value(c), sql.Identifier(c))
                for c in self.target.columns
            ),
            ord=sql.Identifier(ORD),
            stage=stage,
            conflict=conflict,
        )

    @property
    def _direct(self) -> bool:
        """Can a new snapshot be COPYed straight into its fresh table? When COPY alone
        checks every value: no converted column, and a NOT NULL key (COPY refuses a NULL
        in it, naming its line)."""
        return not self.target.converted and all(c in self.target.not_null for c in self.target.key)

    @property
    def _large(self) -> bool:
        """Is the file large enough for COPY streams and parallel workers? From
        LOAD_PARALLEL_MIN_ROWS records, as its .dfm counts them: the count checks the
        streams' total (COPY's end-of-data line would end one stream early), so a file
        without one is not large."""
        count = self.dfm.record_count
        return count is not None and count >= get_settings().load_parallel_min_rows

    def _streams(self) -> int:
        """How many COPY streams load this new snapshot: several for a large file when
        the caller can open connections and reopen the file (`loads.parallel_copy`),
        else one."""
        settings = get_settings()
        streams = settings.load_copy_streams or min(os.cpu_count() or 1, 4)
        # Records are cut by counting quotes, which an escape character would break.
        if (
            self.connect is None
            or self.reopen is None
            or self.dfm.dialect.escape
            or not self._large
        ):
            return 1
        return streams

    def _load_fresh(self, reader: DataFileReader, columns: list[str]) -> ApplyResult:
        """A new snapshot's first part into a fresh table, swapped in (module docstring)."""
        streams = self._streams()
        if streams > 1:
            result = self._load_fresh_in_streams(columns, streams)
            if result is not None:
                return result
        fresh = table_swap.create_fresh(
            self.cur, self.target.schema, self.target.name, str(self.table_id)
        )
        direct = self._direct
        if direct:
            self._loosen(self.cur, fresh.ident)
            rows = self.copy(reader, fresh.ident, columns, freeze=True)
            written = rows
            if not self._tighten(fresh.ident):
                raise self._numeric_misfit(columns)
        else:
            stage = self._create_staging(columns, headers=[])
            rows = self.copy(reader, stage, columns)
            written = self._insert_staged(stage, columns, rows, fresh.ident)
        build_key = table_swap.add_key(self.cur, fresh)
        try:
            self._run(build_key, duplicates=True)
        except _DuplicateKeys:
            # The same key twice in this file: keep the row read last.
            if direct:
                # The fresh table holds only this COPY's rows, appended in file order:
                # the later copy of a key is the one at the higher ctid.
                self.cur.execute(
                    sql.SQL(
                        "DELETE FROM {fresh} a USING {fresh} b WHERE {match} AND a.ctid < b.ctid"
                    ).format(fresh=fresh.ident, match=self._key_match("a", "b"))
                )
                written -= self.cur.rowcount
            else:
                # No reader sees the fresh table: emptying it costs nothing.
                self.cur.execute(sql.SQL("TRUNCATE {}").format(fresh.ident))
                written = self._run(self._last_of_each_key(fresh.ident, stage))
            self._run(build_key)
            log.info(
                "%s holds some keys more than once: the row read last was kept",
                self.key,
                extra={"table": self.table_name, "load_id": self.load_id},
            )
        table_swap.swap_in(self.cur, fresh)
        return ApplyResult(rows=rows, upserted=written)

    def _insert_staged(
        self, stage: sql.Composable, columns: list[str], rows: int, into: sql.Composable
    ) -> int:
        """Check the `rows` staged records (hex binary, keys), then insert them converted
        into `into`. Returns the rows inserted; raises LoadError naming the first bad
        record."""
        if rows:
            self._check_hex(stage, columns)
            self._check_numeric(stage)
            self._check_keys(stage, where=_EVERY_ROW)
        return self._run(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                into,
                sql.SQL(", ").join(map(sql.Identifier, self.target.columns)),
                sql.SQL(", ").join(self._value(c) for c in self.target.columns),
                stage,
            )
        )

    def _load_fresh_in_streams(self, columns: list[str], streams: int) -> ApplyResult | None:
        """The new snapshot over `streams` connections at once (`loads.parallel_copy`),
        into a fresh table committed beside the live one, then keyed and swapped in by
        this transaction. Returns None, having dropped that table, when anything fails or
        the file repeats a key: the caller then loads it over this connection alone,
        which names the error or keeps the row read last, as always.

        A process killed meanwhile, or this transaction rolled back after the streams
        committed, leaves the live table as it was and at most the fresh table, which
        the table's next worker run drops (`TableWorker.recover`)."""
        assert self.connect is not None and self.reopen is not None
        extra = {"table": self.table_name, "load_id": self.load_id}

        def fall_back(reason: object) -> None:
            log.info(
                "%s: loading over one connection instead of %d: %s",
                self.key,
                streams,
                reason,
                extra=extra,
            )

        try:
            fresh = self._create_committed_fresh()
        except Exception as exc:  # no connection, a lock wait: not the file's fault
            fall_back(exc)
            return None
        into = fresh.ident
        direct = self._direct
        file_columns = [c.name for c in self.dfm.columns]
        dialect = self.dfm.dialect

        def work(cur, stream) -> int:
            if direct:
                return copy_csv(
                    cur, into, columns, stream, dialect, file_columns=file_columns,
                    error=self._copy_error,
                )  # fmt: skip
            part = copy.copy(self)  # the same checks, over this stream's cursor
            part.cur = cur
            stage = part._create_staging(columns, headers=[])
            rows = copy_csv(
                cur, stage, columns, stream, dialect, file_columns=file_columns,
                error=self._copy_error,
            )  # fmt: skip
            return part._insert_staged(stage, columns, rows, into)

        settings = {
            "data_platform.load_id": str(self.load_id),
            "work_mem": get_settings().load_work_mem.replace(" ", ""),
            # Nothing else touches the fresh table; a wait means something is wrong.
            "lock_timeout": "30s",
        }
        try:
            with self.reopen() as source, DataFileReader(source, self.key) as reader:
                reader.header(dialect)
                rows = copy_in_streams(
                    self.connect,
                    streams,
                    record_chunks(reader, dialect.quote),
                    work,
                    settings=settings,
                )
            if rows != self.dfm.record_count:
                raise ParallelCopyFailed(
                    f"{rows} record(s) loaded, the .dfm says {self.dfm.record_count}"
                )
            if not self._tighten(into):
                raise ParallelCopyFailed("a NUMERIC value does not fit its declared type")
            self._run(table_swap.add_key(self.cur, fresh), duplicates=True)
        except (ParallelCopyFailed, _DuplicateKeys) as exc:
            fall_back(str(exc) or "the file repeats a key")
            self._drop_committed(into, or_here=True)
            return None
        except BaseException:
            # Not the streams' fault (the file changed in incoming, an interrupt): no
            # second try, and no table left behind either, if it can be helped.
            self._drop_committed(into, or_here=False)
            raise
        log.debug("%s: %d rows loaded over %d connections", self.key, rows, streams, extra=extra)
        table_swap.swap_in(self.cur, fresh)
        return ApplyResult(rows=rows, upserted=rows)

    def _create_committed_fresh(self) -> table_swap.FreshTable:
        """The fresh table for the streams, created and committed over a connection of
        its own (the streams can only write into a committed table)."""
        assert self.connect is not None
        setup = self.connect()
        try:
            with setup.cursor() as cur:
                # The live table is only read (LIKE): a wait would mean a lock this very
                # load holds, so give up instead of waiting on ourselves.
                cur.execute("SELECT set_config('lock_timeout', '5s', true)")
                fresh = table_swap.create_fresh(
                    cur, self.target.schema, self.target.name, str(self.table_id)
                )
                self._loosen(cur, fresh.ident)
                cur.execute(
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(
                        fresh.ident,
                        sql.Literal(
                            f"Being loaded with a new snapshot of {self.target.qualified} "
                            f"(load {self.load_id}); left by a stopped load, the table's "
                            "next load drops it."
                        ),
                    )
                )
            setup.commit()
        finally:
            setup.close()
        return fresh

    def _drop_committed(self, table: sql.Composable, *, or_here: bool) -> None:
        """Drop a table the streams committed, at once and for good (this transaction may
        still roll back), over a connection of its own. This transaction holds no lock
        on it, unless a lock wait says otherwise; then, with `or_here`, it drops it
        itself. Never raises: at worst the table's next worker run drops it."""
        assert self.connect is not None
        try:
            conn = self.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT set_config('lock_timeout', '5s', true)")
                    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                conn.commit()
            finally:
                conn.close()
            return
        except Exception:
            log.debug("could not drop %s over its own connection", table, exc_info=True)
        if or_here:
            self.cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))

    # --- change file ------------------------------------------------------------------

    def apply_changes(self, reader: DataFileReader) -> ApplyResult:
        columns = self.check_columns(reader.header(self.dfm.dialect))
        headers = [c.name for c in self.dfm.header_columns]
        # A large file's stage is read by parallel workers; a small one's stays a temp
        # table, which costs less to create than a table of the database.
        stage = self._create_staging(columns, headers=headers, parallel=self._large)
        rows = self.copy(reader, stage, columns)
        if rows == 0:
            self.cur.execute(sql.SQL("DROP TABLE {}").format(stage))
            return ApplyResult(rows=0)
        has_before_images = self._check_changes(stage)
        self._check_hex(stage, columns)
        self._check_numeric(stage)
        final = sql.Identifier("dp_final")
        key = sql.SQL(", ").join(map(sql.Identifier, self.target.key))
        sparse = self._sparse_columns()
        if sparse and self._has_mask:
            self._order = self._decide_mask_order(stage, has_before_images, sparse)
        changes = self._changes_query(stage, has_before_images, sparse)
        # The count of a key's changes serves only the sparse rules: a window over every
        # change is a sort of its own, skipped when no column can be left untouched.
        count = (
            sql.SQL(", count(*) OVER (PARTITION BY {key}) AS {n}").format(
                key=key, n=sql.Identifier(COUNT)
            )
            if sparse
            else sql.SQL("")
        )
        self._run(
            sql.SQL(
                "CREATE TEMP TABLE {final} ON COMMIT DROP AS "
                "SELECT DISTINCT ON ({key}) *{count} "
                "FROM ({changes}) c ORDER BY {key}, {seq} DESC, {ord} DESC"
            ).format(
                final=final,
                key=key,
                count=count,
                changes=changes,
                seq=sql.Identifier(SEQ),
                ord=sql.Identifier(ORD),
            )
        )
        self.cur.execute(sql.SQL("ANALYZE {}").format(final))
        if sparse:
            self._keep_untouched(final, changes, sparse)
        key_json = sql.SQL("jsonb_build_array({})").format(
            sql.SQL(", ").join(sql.SQL("f.{}").format(sql.Identifier(c)) for c in self.target.key)
        )
        ids = {"table_id": self.table_id, "load_id": self.load_id}
        names = {
            "final": final,
            "oper": sql.Identifier(OPER),
            "seq": sql.Identifier(SEQ),
            "key_json": key_json,
            "key_match": self._key_match("t", "f"),
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
        upserted = self._run(
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
                values=sql.SQL(", ").join(
                    sql.SQL("f.{}").format(sql.Identifier(c)) for c in self.target.columns
                ),
                key=key,
                assignments=assignments,
                **names,
            ),
            ids,
        )
        # A key written again by a newer change is alive: its tombstone can go.
        self.cur.execute(
            sql.SQL(
                "DELETE FROM deleted_keys d USING {final} f WHERE d.table_id = %(table_id)s "
                "AND f.{oper} IN ('I', 'U') AND d.key = {key_json} AND d.change_seq < f.{seq}"
            ).format(**names),
            ids,
        )
        self.cur.execute(sql.SQL("DROP TABLE {}").format(stage))
        return ApplyResult(rows=rows, upserted=upserted, deleted=deleted)

    def _changes_query(
        self, stage: sql.Composable, has_before_images: bool, sparse: list[tuple[int, str]]
    ) -> sql.Composable:
        """The file's changes with typed values: its I, U and D rows, plus a D of the old
        key for every B whose U (same change number) carries another key (a key update).
        Columns: operation, sequence, record number, mask, the table's columns, and one
        `dp__def_<i>` flag per sparse column (the row defines its value)."""
        oper, seq, ord_ = sql.Identifier(OPER), sql.Identifier(SEQ), sql.Identifier(ORD)
        has_mask = self._has_mask
        mask = sql.Identifier(MASK) if has_mask else sql.SQL("CAST(NULL AS text)")

        def select(alias: str, operation: sql.Composable) -> sql.Composable:
            a = sql.Identifier(alias)
            items = [
                sql.SQL("{} AS {}").format(operation, oper),
                sql.SQL("{}.{}").format(a, seq),
                sql.SQL("{}.{}").format(a, ord_),
                sql.SQL("{} AS {}").format(
                    sql.SQL("{}.{}").format(a, mask) if has_mask else mask, sql.Identifier(MASK)
                ),
                *(
                    sql.SQL("{} AS {}").format(self._value(c, alias), sql.Identifier(c))
                    for c in self.target.columns
                ),
                *(
                    sql.SQL("{} AS {}").format(
                        self._defines(alias, index, column, has_mask), _def_flag(index)
                    )
                    for index, column in sparse
                ),
            ]
            return sql.SQL(", ").join(items)

        query = sql.SQL("SELECT {} FROM {} s WHERE s.{} <> 'B'").format(
            select("s", sql.SQL("s.{}").format(oper)), stage, oper
        )
        if not has_before_images:
            return query

        def keys(alias: str) -> sql.Composable:
            return sql.SQL("ROW({})").format(
                sql.SQL(", ").join(self._value(c, alias) for c in self.target.key)
            )

        renamed = sql.SQL(
            "SELECT {select} FROM {stage} b WHERE b.{oper} = 'B' AND EXISTS ("
            "SELECT FROM {stage} u WHERE u.{oper} = 'U' AND u.{seq} = b.{seq} "
            "AND {new} IS DISTINCT FROM {old})"
        ).format(
            select=select("b", sql.SQL("'D'")),
            stage=stage,
            oper=oper,
            seq=seq,
            new=keys("u"),
            old=keys("b"),
        )
        return sql.SQL("{} UNION ALL {}").format(query, renamed)

    # --- sparse updates -----------------------------------------------------------------

    @property
    def _has_mask(self) -> bool:
        return any(c.name == MASK for c in self.dfm.header_columns)

    def _sparse_columns(self) -> list[tuple[int, str]]:
        """(data column index, db column) of the columns a U may leave untouched: every
        non-key column when the file has header__change_mask, else its LOB columns."""
        if not self.sparse_updates:
            return []
        has_mask = self._has_mask
        return [
            (index, column.name.lower())
            for index, column in enumerate(self.dfm.data_columns)
            if column.name.lower() not in self.target.key and (has_mask or column.type in LOB_TYPES)
        ]

    def _mask_bit(self, column: str) -> int:
        """The bit of `column` in header__change_mask: its ordinal in the change table less
        one, header columns first (Qlik, "Change Tables"; README "Sparse updates")."""
        for position, dfm_column in enumerate(self.dfm.columns):
            if not dfm_column.is_header and dfm_column.name.lower() == column:
                return position
        raise KeyError(column)

    @staticmethod
    def _bit_set(mask: sql.Composable, bit: int, order: str) -> sql.Composable:
        """Is `bit` set in the hex text `mask` (checked hex, two digits a byte) read in
        `order`? False when the mask is too short to hold the bit (NULL for a NULL mask)."""
        if order == LITTLE_ENDIAN:
            return sql.SQL(
                "(length({m}) >= {n} AND get_bit(('x' || substr({m}, {p}, 2))::bit(8), {b}) = 1)"
            ).format(
                m=mask,
                n=sql.Literal(2 * (bit // 8) + 2),
                p=sql.Literal(2 * (bit // 8) + 1),
                b=sql.Literal(7 - bit % 8),
            )
        return sql.SQL(
            "(length({m}) > {d} AND "
            "get_bit(('x' || substr({m}, length({m}) - {d}, 1))::bit(4), {b}) = 1)"
        ).format(m=mask, d=sql.Literal(bit // 4), b=sql.Literal(3 - bit % 4))

    def _defines(self, alias: str, index: int, column: str, has_mask: bool) -> sql.Composable:
        """Does the row set the column? Every I and D does, and a U with a value in it. A
        U's NULL is a value unless the column was left untouched: for a LOB column when
        the row has no mask or the mask's bit is clear; for another column only when the
        row's mask has its bit clear (read in this file's byte order). A non-NULL value
        is always taken, whatever its bit says: a mask can keep a stored value only where
        the U carries none, so it never drops an update it misreads."""
        a = sql.Identifier(alias)
        not_update = sql.SQL("{}.{} <> 'U'").format(a, sql.Identifier(OPER))
        has_value = sql.SQL("{}.{} IS NOT NULL").format(a, sql.Identifier(column))
        if not has_mask:
            return sql.SQL("({} OR {})").format(not_update, has_value)
        mask = sql.SQL("{}.{}").format(a, sql.Identifier(MASK))
        bit = self._bit_set(mask, self._mask_bit(column), self._order)
        lob = column in {c.name.lower() for c in self.dfm.data_columns if c.type in LOB_TYPES}
        no_mask = sql.SQL("coalesce({}, '') = ''").format(mask)
        if lob:
            return sql.SQL("({nu} OR {v} OR coalesce(NOT {no} AND {bit}, false))").format(
                nu=not_update, v=has_value, no=no_mask, bit=bit
            )
        return sql.SQL("({nu} OR {v} OR {no} OR coalesce({bit}, false))").format(
            nu=not_update, v=has_value, no=no_mask, bit=bit
        )

    def _decide_mask_order(
        self, stage: sql.Composable, has_before_images: bool, sparse: list[tuple[int, str]]
    ) -> str:
        """The byte order this file's header__change_mask values are read in, checked
        against the file's images in one pass over its U rows (README "Sparse updates").

        A U whose B (same change number) holds another non-NULL value than the U in a
        column refutes every byte order that reads that column's bit as clear. (A NULL on
        either side proves nothing: it may be a value the source did not send.) The
        table's pinned order (`mask_order`) is used unless the images refute it; else the
        order the images do not refute; when neither is refuted, either one if they read
        every U's NULLs alike (one-byte masks always do).

        Raises LoadError naming the U's line and the column: the images refute the pinned
        order, or both orders; or neither is refuted but they read a NULL differently
        (the table must pin the order)."""
        oper, seq, ord_ = sql.Identifier(OPER), sql.Identifier(SEQ), sql.Identifier(ORD)
        mask = sql.SQL("u.{}").format(sql.Identifier(MASK))
        data = [
            c.name.lower() for c in self.dfm.data_columns if c.name.lower() in self.target.columns
        ]

        def refuted(order: str) -> sql.Composable:
            if not has_before_images:
                return sql.SQL("false")
            return sql.SQL(" OR ").join(
                self._changed_with_bit_clear(column, order) for column in data
            )

        ambiguous = sql.SQL(" OR ").join(
            sql.SQL("(u.{c} IS NULL AND {le} <> {be})").format(
                c=sql.Identifier(column),
                le=self._bit_set(mask, self._mask_bit(column), LITTLE_ENDIAN),
                be=self._bit_set(mask, self._mask_bit(column), BIG_ENDIAN),
            )
            for _, column in sparse
        )
        join = (
            sql.SQL("LEFT JOIN {stage} b ON b.{oper} = 'B' AND b.{seq} = u.{seq}").format(
                stage=stage, oper=oper, seq=seq
            )
            if has_before_images
            else sql.SQL("")
        )
        self.cur.execute(
            sql.SQL(
                "SELECT min(CASE WHEN {le} THEN u.{ord} END), "
                "min(CASE WHEN {be} THEN u.{ord} END), "
                "min(CASE WHEN {amb} THEN u.{ord} END) FROM {stage} u {join} "
                "WHERE u.{oper} = 'U' AND coalesce({m}, '') <> ''"
            ).format(
                le=refuted(LITTLE_ENDIAN),
                be=refuted(BIG_ENDIAN),
                amb=ambiguous,
                ord=ord_,
                stage=stage,
                join=join,
                oper=oper,
                m=mask,
            )
        )
        *firsts, undecided = self.cur.fetchone()
        refutes = dict(zip(MASK_ORDERS, firsts, strict=True))
        extra = {"table": self.table_name, "load_id": self.load_id}
        if self.mask_order is not None:
            if refutes[self.mask_order] is not None:
                raise self._mask_contradiction(
                    stage, refutes[self.mask_order], self.mask_order, pinned=True
                )
            return self.mask_order
        candidates = [order for order in MASK_ORDERS if refutes[order] is None]
        if not candidates:
            first, other = sorted(MASK_ORDERS, key=lambda order: refutes[order])
            raise self._mask_contradiction(
                stage, refutes[first], first, pinned=False, other_line=refutes[other] + 1
            )
        if len(candidates) == 1:
            log.info(
                "%s: header__change_mask read %s: the before images refute the other order",
                self.key,
                candidates[0],
                extra=extra,
            )
            return candidates[0]
        if undecided is not None:
            raise self._mask_undecided(stage, undecided, sparse)
        return LITTLE_ENDIAN

    def _changed_with_bit_clear(self, column: str, order: str) -> sql.Composable:
        """The B and U rows `b`, `u` hold two different non-NULL values of `column` while
        the U's mask, read in `order`, says it did not change."""
        c = sql.Identifier(column)
        return sql.SQL(
            "(b.{c} IS NOT NULL AND u.{c} IS NOT NULL AND {bv} IS DISTINCT FROM {uv} AND NOT {bit})"
        ).format(
            c=c,
            bv=self._value(column, "b"),
            uv=self._value(column, "u"),
            bit=self._bit_set(
                sql.SQL("u.{}").format(sql.Identifier(MASK)), self._mask_bit(column), order
            ),
        )

    def _mask_row(self, stage: sql.Composable, ord_: int) -> tuple[str, int | None]:
        """The mask of the U at record `ord_`, and its B's record number."""
        self.cur.execute(
            sql.SQL(
                "SELECT u.{m}, (SELECT min(b.{ord}) FROM {stage} b WHERE b.{oper} = 'B' "
                "AND b.{seq} = u.{seq}) FROM {stage} u WHERE u.{ord} = %s"
            ).format(
                m=sql.Identifier(MASK),
                ord=sql.Identifier(ORD),
                stage=stage,
                oper=sql.Identifier(OPER),
                seq=sql.Identifier(SEQ),
            ),
            (ord_,),
        )
        mask, before = self.cur.fetchone()
        return mask, before

    def _mask_contradiction(
        self,
        stage: sql.Composable,
        ord_: int,
        order: str,
        *,
        pinned: bool,
        other_line: int | None = None,
    ) -> LoadError:
        """The error for the U at record `ord_`, whose mask read in `order` says a column
        did not change that its B shows changed: names the first such column."""
        mask, before = self._mask_row(stage, ord_)
        data = [
            c.name.lower() for c in self.dfm.data_columns if c.name.lower() in self.target.columns
        ]
        self.cur.execute(
            sql.SQL(
                "SELECT {flags}, {values} FROM {stage} u JOIN {stage} b ON b.{ord} = %s "
                "WHERE u.{ord} = %s"
            ).format(
                flags=sql.SQL(", ").join(self._changed_with_bit_clear(c, order) for c in data),
                values=sql.SQL(", ").join(
                    sql.SQL("b.{c}::text, u.{c}::text").format(c=sql.Identifier(c)) for c in data
                ),
                stage=stage,
                ord=sql.Identifier(ORD),
            ),
            (before, ord_),
        )
        row = self.cur.fetchone()
        flags, values = row[: len(data)], row[len(data) :]
        if True not in flags:  # another B of the same change number holds the difference
            return self.error(
                f"header__change_mask {mask!r} contradicts the row's before image", ord_ + 1
            )
        index = flags.index(True)
        column = data[index]
        old, new = values[2 * index], values[2 * index + 1]
        other = BIG_ENDIAN if order == LITTLE_ENDIAN else LITTLE_ENDIAN
        how = (
            f"read {order} as the table pins it"
            if pinned
            else f"read {order} (line {other_line} contradicts {other} likewise)"
        )
        return self.error(
            f"header__change_mask {mask!r} contradicts the row's images: bit "
            f"{self._mask_bit(column)} ({self._source_name(column)}) is clear, {how}, but "
            f"the column changed from {old!r} (B, line {before + 1}) to {new!r}; the load "
            "would lose an update",
            ord_ + 1,
            self._source_name(column),
        )

    def _mask_undecided(
        self, stage: sql.Composable, ord_: int, sparse: list[tuple[int, str]]
    ) -> LoadError:
        """The error for the U at record `ord_` whose NULL the two byte orders read
        differently while the file's images refute neither."""
        mask, _ = self._mask_row(stage, ord_)
        u = sql.SQL("u.{}").format(sql.Identifier(MASK))
        self.cur.execute(
            sql.SQL("SELECT {} FROM {} u WHERE u.{} = %s").format(
                sql.SQL(", ").join(
                    sql.SQL("(u.{c} IS NULL AND {le} <> {be})").format(
                        c=sql.Identifier(column),
                        le=self._bit_set(u, self._mask_bit(column), LITTLE_ENDIAN),
                        be=self._bit_set(u, self._mask_bit(column), BIG_ENDIAN),
                    )
                    for _, column in sparse
                ),
                stage,
                sql.Identifier(ORD),
            ),
            (ord_,),
        )
        flags = list(self.cur.fetchone())
        column = sparse[flags.index(True)][1]
        return self.error(
            f"header__change_mask {mask!r} is longer than one byte and the file's before "
            "images do not tell its byte order, which decides whether the NULL is a new value "
            "or the column was left untouched: pin the order for the table "
            "(data-platform cubic-qlik set-table --table <table> --change-mask-order "
            'little_endian or big_endian; README "The mask\'s byte order"), then retry the load',
            ord_ + 1,
            self._source_name(column),
        )

    def _keep_untouched(
        self, final: sql.Composable, changes: sql.Composable, sparse: list[tuple[int, str]]
    ) -> None:
        """A final U that left a column untouched takes the value of the key's latest
        change in the file that set it, else the stored row's."""
        oper, seq, ord_ = sql.Identifier(OPER), sql.Identifier(SEQ), sql.Identifier(ORD)
        key = sql.SQL(", ").join(map(sql.Identifier, self.target.key))
        self.cur.execute(
            sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {} > 1)").format(
                final, sql.Identifier(COUNT)
            )
        )
        if self.cur.fetchone()[0]:
            for index, column in sparse:
                flag, col = _def_flag(index), sql.Identifier(column)
                self._run(
                    sql.SQL(
                        "UPDATE {final} f SET {col} = s.{col}, {flag} = true FROM ("
                        "SELECT DISTINCT ON ({key}) * FROM ({changes}) c WHERE c.{flag} "
                        "ORDER BY {key}, {seq} DESC, {ord} DESC) s "
                        "WHERE f.{n} > 1 AND NOT f.{flag} AND {match}"
                    ).format(
                        final=final,
                        col=col,
                        flag=flag,
                        key=key,
                        changes=changes,
                        seq=seq,
                        ord=ord_,
                        n=sql.Identifier(COUNT),
                        match=self._key_match("f", "s"),
                    )
                )
        self.cur.execute(
            sql.SQL(
                "UPDATE {final} f SET {sets} FROM {target} t WHERE f.{oper} = 'U' AND ({any}) "
                "AND {match}"
            ).format(
                final=final,
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = CASE WHEN f.{flag} THEN f.{c} ELSE t.{c} END").format(
                        c=sql.Identifier(column), flag=_def_flag(index)
                    )
                    for index, column in sparse
                ),
                target=self.target.ident,
                oper=oper,
                any=sql.SQL(" OR ").join(
                    sql.SQL("NOT f.{}").format(_def_flag(index)) for index, _ in sparse
                ),
                match=self._key_match("t", "f"),
            )
        )

    # --- helpers ----------------------------------------------------------------------

    def _key_match(self, left: str, right: str) -> sql.Composable:
        """Key equality, NULL-safe for key columns that may be NULL (`=` where the column
        is NOT NULL, so an index on the key can serve it)."""
        parts = []
        for column in self.target.key:
            op = "=" if column in self.target.not_null else "IS NOT DISTINCT FROM"
            parts.append(
                sql.SQL("{}.{} {} {}.{}").format(
                    sql.Identifier(left),
                    sql.Identifier(column),
                    sql.SQL(op),
                    sql.Identifier(right),
                    sql.Identifier(column),
                )
            )
        return sql.SQL(" AND ").join(parts)

    def _create_staging(
        self, columns: list[str], headers: list[str], *, parallel: bool = False
    ) -> sql.Composable:
        """A table typed like the target (so COPY checks every value), with the change
        headers and the converted columns as text, plus the record number.

        A temp table, dropped at commit; with `parallel`, an unlogged table
        `dp_stage_<table_id>` in the target's schema instead, created in this
        transaction (no reader ever sees it; a rollback removes it) and dropped by the
        caller: Postgres's parallel workers cannot read temp tables, and the statements
        over a change file's stage (the DATETIME rule above all) then use every core."""
        stage: sql.Identifier = sql.Identifier("dp_stage")
        # Several files can apply in one transaction (a snapshot rebuild).
        self.cur.execute("DROP TABLE IF EXISTS pg_temp.dp_stage, pg_temp.dp_final")
        if parallel:
            stage = sql.Identifier(self.target.schema, f"dp_stage_{self.table_id}")
            self.cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
        self._stage = stage
        as_text = set(headers) | self.target.converted
        select_list = []
        for column in columns:
            if column in as_text:
                expr = sql.SQL('CAST(NULL AS text) COLLATE "C" AS {}')
            elif column in self.target.numerics:
                # Unconstrained, so COPY keeps every digit it was given (numeric(p,s)
                # would round them away unseen) for `_check_numeric`.
                expr = sql.SQL("CAST(NULL AS numeric) AS {}")
            else:
                expr = sql.SQL("t.{}")
            select_list.append(expr.format(sql.Identifier(column)))
        self.cur.execute(
            sql.SQL(
                "CREATE {kind} TABLE {stage} {on_commit} AS SELECT {cols} FROM {target} t "
                "WITH NO DATA"
            ).format(
                kind=sql.SQL("UNLOGGED" if parallel else "TEMP"),
                stage=stage,
                on_commit=sql.SQL("" if parallel else "ON COMMIT DROP"),
                cols=sql.SQL(", ").join(select_list),
                target=self.target.ident,
            )
        )
        self.cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint GENERATED ALWAYS AS IDENTITY").format(
                stage, sql.Identifier(ORD)
            )
        )
        return stage

    def _value(self, column: str, alias: str | None = None) -> sql.Composable:
        """The typed value of a staged column."""
        ref = sql.Identifier(alias, column) if alias else sql.Identifier(column)
        if column in self.target.bytea:
            return sql.SQL("decode({}, 'hex')").format(ref)
        if column in self.target.timestamps:
            return sql.SQL("qlik_datetime({})").format(ref)
        if column in self.target.numerics:
            # Checked to fit (`_check_numeric`): the cast changes no digit.
            precision, scale = self.target.numerics[column]
            return sql.SQL("CAST({} AS numeric({}, {}))").format(
                ref, sql.Literal(precision), sql.Literal(scale)
            )
        return ref

    def _run(self, statement: sql.Composable, args=None, *, duplicates: bool = False) -> int:
        """Execute a statement that converts or writes staged values; a value Postgres
        refuses there (a bad DATETIME, a NULL in a NOT NULL column) names its line.

        Returns the statement's row count. Raises _DuplicateKeys when an ON CONFLICT
        statement meets one key twice, or (`duplicates`) a plain INSERT breaks the key's
        uniqueness."""
        self.cur.execute("SAVEPOINT dp_statement")
        try:
            self.cur.execute(statement, args)
        except pg_errors.CardinalityViolation as exc:
            self.cur.execute("ROLLBACK TO SAVEPOINT dp_statement")
            raise _DuplicateKeys() from exc
        except (pg_errors.DataError, pg_errors.IntegrityError) as exc:
            # The staging table was made before the savepoint: it is there to search.
            self.cur.execute("ROLLBACK TO SAVEPOINT dp_statement")
            if duplicates and isinstance(exc, pg_errors.UniqueViolation):
                raise _DuplicateKeys() from exc
            raise self._locate(exc) from exc
        rows = self.cur.rowcount
        self.cur.execute("RELEASE SAVEPOINT dp_statement")
        return rows

    def _locate(self, exc: psycopg2.Error) -> LoadError:
        """The first staged record holding the value Postgres refused: the NULL of a
        NOT NULL column, or the quoted value of a conversion error."""
        stage = self._stage
        message = (exc.diag.message_primary or str(exc)).strip()
        candidates: list[tuple[str, sql.Composable]] = []
        if exc.diag.column_name and exc.diag.column_name in self.target.columns:
            column = exc.diag.column_name
            candidates.append((column, sql.SQL("{} IS NULL").format(sql.Identifier(column))))
            if isinstance(exc, pg_errors.NotNullViolation):
                message = NOT_NULL
        quoted = _QUOTED_VALUE.search(message)
        if quoted:
            for column in sorted(self.target.converted):
                candidates.append(
                    (
                        column,
                        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(quoted[1])),
                    )
                )
        found: tuple[int, str] | None = None
        for column, condition in candidates:
            row = self._first_bad(stage, condition, sql.Identifier(column))
            if row is not None and (found is None or row[0] < found[0]):
                found = (row[0], column)
        if found is None:
            return self.error(message)
        return self.error(message, found[0] + 1, self._source_name(found[1]))

    def _first_bad(self, stage: sql.Composable, condition: sql.Composable, what: sql.Composable):
        self.cur.execute(
            sql.SQL("SELECT {ord}, {what} FROM {stage} WHERE {cond} ORDER BY {ord} LIMIT 1").format(
                ord=sql.Identifier(ORD), what=what, stage=stage, cond=condition
            )
        )
        return self.cur.fetchone()

    def _first_matches(
        self,
        stage: sql.Composable,
        conditions: list[sql.Composable],
        where: sql.Composable = _EVERY_ROW,
    ) -> list[int | None]:
        """The first record number matching each condition (None: no record), in one pass
        over the staged rows."""
        self.cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE {}").format(
                sql.SQL(", ").join(
                    sql.SQL("min(CASE WHEN {} THEN {} END)").format(cond, sql.Identifier(ORD))
                    for cond in conditions
                ),
                stage,
                where,
            )
        )
        return list(self.cur.fetchone())

    def _check_keys(self, stage: sql.Composable, where: sql.Composable) -> None:
        """A key column that is NOT NULL in the table, or a key NULL in every part, is an
        error naming the first such record."""
        conditions = [
            (sql.SQL("{} IS NULL").format(sql.Identifier(c)), c)
            for c in self.target.key
            if c in self.target.not_null
        ]
        if len(self.target.key) > 1 or not conditions:
            conditions.append(
                (
                    sql.SQL("num_nonnulls({}) = 0").format(
                        sql.SQL(", ").join(map(sql.Identifier, self.target.key))
                    ),
                    self.target.key[-1],
                )
            )
        firsts = self._first_matches(stage, [cond for cond, _ in conditions], where)
        bad = [(o, c) for o, (_, c) in zip(firsts, conditions, strict=True) if o is not None]
        if bad:
            ord_, column = min(bad)
            raise self.error(KEY_NULL, ord_ + 1, self._source_name(column))

    def _check_changes(self, stage: sql.Composable) -> bool:
        """Operations and sequences in one pass over the staged rows, then the keys.
        Returns whether the file has B (before-image) rows."""
        oper, seq = sql.Identifier(OPER), sql.Identifier(SEQ)
        checks = [
            (sql.SQL("{o} IS NULL OR {o} NOT IN ('I', 'U', 'D', 'B')").format(o=oper), OPER),
            (sql.SQL("{} IS NULL").format(seq), SEQ),
        ]
        *firsts, first_before_image = self._first_matches(
            stage, [*(cond for cond, _ in checks), sql.SQL("{} = 'B'").format(oper)]
        )
        has_before_images = first_before_image is not None
        bad = [(ord_, column) for ord_, (_, column) in zip(firsts, checks, strict=True) if ord_]
        if bad:
            ord_, column = min(bad)
            line = ord_ + 1
            if column == OPER:
                self.cur.execute(
                    sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
                        oper, stage, sql.Identifier(ORD)
                    ),
                    (ord_,),
                )
                value = self.cur.fetchone()[0]
                raise self.error(f"unknown operation {value!r} (expected I, U, D or B)", line, OPER)
            raise self.error("empty change sequence", line, SEQ)
        self._check_keys(stage, where=sql.SQL("{} <> 'B'").format(oper))
        return has_before_images

    def _check_hex(self, stage: sql.Composable, columns: list[str]) -> None:
        """Staged hex text (binary columns, or header__change_mask) is whole bytes of hex
        digits: else an error naming the first bad record and column."""
        for column in (c for c in columns if c in self.target.bytea or c == MASK):
            bad = self._first_bad(
                stage,
                sql.SQL("{} !~ '^([0-9A-Fa-f]{{2}})*$'").format(sql.Identifier(column)),
                sql.Identifier(column),
            )
            if bad:
                what = "change mask" if column == MASK else "binary data"
                raise self.error(
                    f"not hexadecimal {what}: {bad[1][:40]!r}",
                    bad[0] + 1,
                    self._source_name(column),
                )

    def _numeric_limits(self) -> dict[str, tuple[int, int, str]]:
        """Per checked NUMERIC column: the most digits before the point and after it a
        value may have, and the declared type it would break. Both the table's
        numeric(p,s) and the .dfm's declared type bound it (the .dfm's may be narrower,
        which loads as is: README "Schema changes"; the Glue job checks the .dfm's)."""
        declared = {c.name.lower(): c for c in self.dfm.data_columns}
        limits = {}
        for column, (precision, scale) in self.target.numerics.items():
            digits, places, name = precision - scale, scale, f"numeric({precision},{scale})"
            source = declared.get(column)
            if source is not None and source.type == "NUMERIC" and source.precision > 0:
                source_scale = max(source.scale, 0)
                digits = min(digits, source.precision - source_scale)
                places = min(places, source_scale)
                name = f"NUMERIC({source.precision},{source.scale})"
            elif source is not None:
                name = f"{source.type} (the table's {name})"
            limits[column] = (digits, places, name)
        return limits

    def _loosen(self, cur, table: sql.Composable) -> None:
        """Make the (empty) new snapshot's NUMERIC columns unconstrained, so that a COPY
        straight into it keeps every digit for `_tighten` to check."""
        if self.target.numerics:
            cur.execute(
                sql.SQL("ALTER TABLE {} {}").format(
                    table,
                    sql.SQL(", ").join(
                        sql.SQL("ALTER COLUMN {} TYPE numeric").format(sql.Identifier(c))
                        for c in self.target.numerics
                    ),
                )
            )

    def _tighten(self, table: sql.Composable) -> bool:
        """After `_loosen` and the COPY: check every NUMERIC value in one pass and, when
        all fit, give the columns their declared types back (one rewrite, no digit
        changed). Returns False, changing nothing, when a value does not fit."""
        limits = self._numeric_limits()
        ranges = self._integer_ranges()
        if not limits and not ranges:
            return True
        misfits = [self._misfit(c, d, p) for c, (d, p, _) in limits.items()]
        misfits += [self._out_of_range(c, low, high) for c, (low, high, _) in ranges.items()]
        self.cur.execute(
            sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {})").format(
                table, sql.SQL(" OR ").join(misfits)
            )
        )
        if self.cur.fetchone()[0]:
            return False
        if not self.target.numerics:
            return True
        self.cur.execute(
            sql.SQL("ALTER TABLE {} {}").format(
                table,
                sql.SQL(", ").join(
                    sql.SQL("ALTER COLUMN {} TYPE numeric({}, {})").format(
                        sql.Identifier(c), sql.Literal(p), sql.Literal(s)
                    )
                    for c, (p, s) in self.target.numerics.items()
                ),
            )
        )
        return True

    def _numeric_misfit(self, columns: list[str]) -> LoadError:
        """The error for a new snapshot COPYed straight into its table whose NUMERIC value
        does not fit: the file staged again, to name the record (`_check_numeric`)."""
        if self.reopen is not None:
            with self.reopen() as source, DataFileReader(source, self.key) as reader:
                reader.header(self.dfm.dialect)
                stage = self._create_staging(columns, headers=[])
                self.copy(reader, stage, columns)
                self._check_numeric(stage)
        return self.error("a NUMERIC value does not fit its declared precision and scale")

    def _integer_ranges(self) -> dict[str, tuple[int, int, str]]:
        """Per integer column whose declared Qlik type (the file's .dfm) holds fewer values
        than its Postgres type (`types.RANGE_CHECKED`): the lowest and highest value and
        the type's name. The Glue job refuses the same values (`jobs/casts.py`)."""
        return {
            c.name.lower(): (*INTEGER_RANGES[c.type], c.type)
            for c in self.dfm.data_columns
            if c.type in RANGE_CHECKED and c.name.lower() in self.target.columns
        }

    @staticmethod
    def _out_of_range(column: str, low: int, high: int) -> sql.Composable:
        return sql.SQL("({c} < {low} OR {c} > {high})").format(
            c=sql.Identifier(column), low=sql.Literal(low), high=sql.Literal(high)
        )

    @staticmethod
    def _misfit(column: str, digits: int, places: int) -> sql.Composable:
        """The NUMERIC value has more digits after the point than `places` (other than
        zeros), or more than `digits` before it."""
        return sql.SQL(
            "({c} <> round({c}, {places}) OR abs({c}) >= power(10::numeric, {digits}))"
        ).format(c=sql.Identifier(column), places=sql.Literal(places), digits=sql.Literal(digits))

    def _check_numeric(self, stage: sql.Composable) -> None:
        """Every staged NUMERIC value fits its declared precision and scale, checked in one
        pass over the stage: else an error naming the first bad record and column.
        Postgres would round `9.999` into numeric(8,2) to 10.00 without a word; here it
        is refused, as the Glue job refuses it (`jobs/casts.py`). Digits beyond the scale
        that are zeros (`9.990`) change nothing and are taken."""
        limits = self._numeric_limits()
        ranges = self._integer_ranges()
        if not limits and not ranges:
            return
        conditions = [
            self._misfit(column, digits, places) for column, (digits, places, _) in limits.items()
        ]
        conditions += [self._out_of_range(c, low, high) for c, (low, high, _) in ranges.items()]
        firsts = self._first_matches(stage, conditions)
        # One entry per condition: a UINT8 column is both a NUMERIC and a range.
        checks = [(c, False) for c in limits] + [(c, True) for c in ranges]
        bad = [(o, i) for i, o in enumerate(firsts) if o is not None]
        if not bad:
            return
        ord_, index = min(bad)
        column, is_range = checks[index]
        if is_range:
            low, high, kind = ranges[column]
            self.cur.execute(
                sql.SQL("SELECT {c}::text FROM {stage} WHERE {o} = %s").format(
                    c=sql.Identifier(column), stage=stage, o=sql.Identifier(ORD)
                ),
                (ord_,),
            )
            raise self.error(
                f"{self.cur.fetchone()[0]!r} is not a valid {kind}: outside {low}..{high}",
                ord_ + 1,
                self._source_name(column),
            )
        digits, places, name = limits[column]
        self.cur.execute(
            sql.SQL("SELECT {c}::text, {c} <> round({c}, {p}) FROM {stage} WHERE {o} = %s").format(
                c=sql.Identifier(column), p=sql.Literal(places), stage=stage, o=sql.Identifier(ORD)
            ),
            (ord_,),
        )
        value, too_precise = self.cur.fetchone()
        why = (
            f"more than {places} digit(s) after the decimal point (PostgreSQL would round it)"
            if too_precise
            else f"more than {digits} digit(s) before the decimal point"
        )
        raise self.error(
            f"{value!r} is not a valid {name}: {why}", ord_ + 1, self._source_name(column)
        )

    def _source_name(self, db_column: str) -> str:
        for c in self.dfm.data_columns:
            if c.name.lower() == db_column:
                return c.name
        return db_column


class _DuplicateKeys(Exception):
    """An INSERT ... ON CONFLICT met one key twice: the file holds it more than once."""


def _def_flag(index: int) -> sql.Identifier:
    return sql.Identifier(f"dp__def_{index}")


def _visible(name: str) -> str:
    """A column name with invisible characters shown (a byte-order mark, spaces)."""
    shown = ascii(name)[1:-1] if not name.isprintable() or name != name.strip() else name
    return f"'{shown}'" if shown != name or not name else name


def _header_difference(header: list[str], expected: list[str]) -> str:
    """Every position where the header and the .dfm disagree, invisible characters shown."""
    differences = []
    for position in range(max(len(header), len(expected))):
        got = header[position] if position < len(header) else None
        want = expected[position] if position < len(expected) else None
        if got == want:
            continue
        if got is None:
            differences.append(f"column {position + 1}: missing, the .dfm has {_visible(want)}")
        elif want is None:
            differences.append(f"column {position + 1}: {_visible(got)} is not in the .dfm")
        else:
            differences.append(
                f"column {position + 1}: {_visible(got)}, the .dfm has {_visible(want)}"
            )
    return (
        f"header does not match the .dfm ({len(header)} column(s) in the file, "
        f"{len(expected)} in the .dfm): " + "; ".join(differences)
    )
