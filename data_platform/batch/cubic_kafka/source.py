"""Kafka tap events as a source of the one worker: each consumed batch file is a load.

Scan: the files `cubic/kafka/<topic>/partition=<p>/offsets=<first>-<last>.jsonl.gz` under
each registered table's prefix, not recorded yet. Apply: every line (the consumer's
envelope: topic, partition, offset, timestamp, key, value) is checked against the tap
event's declaration (`schema.py`); good records are COPYed into a staging table typed
like the table (every value checked again by Postgres) and appended, skipping a
(topic, partition, offset) the table holds already: a record delivered twice, a file
replayed or two files with overlapping offsets give one row each.

A record that cannot be a row is a dead letter, never the file's error: one that does
not parse, misses or mistypes a field, or holds text PostgreSQL cannot store (schema.py),
and one whose value PostgreSQL itself refuses in the stage (an integer out of range, or
any other value its type rejects). The rows go to COPY in blocks of about a megabyte,
each under a savepoint; a block COPY refuses is sent again in slices of `_SLICE` records,
and a refused slice is split at the record COPY names (its line) until the refused
records stand alone, each confirmed by a COPY of its own. Dead letters are rows of the
core's `dead_letters` (revision 0012), keyed by [topic, partition, offset] and written
with ON CONFLICT DO NOTHING in the load's transaction: a replayed or overlapping file
gives each bad record one dead letter, as it gives each good record one row. A line
that is not the consumer's envelope has no offset: it is keyed [file key, line]. The rest
of the file loads; files are independent: none waits for another.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg2 import sql
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from data_platform.batch.cubic_kafka import schema
from data_platform.db.engine import dbapi_cursor
from data_platform.db.models import DeadLetter, SourceName
from data_platform.errors import LoadError
from data_platform.loads import dispositions, faults
from data_platform.loads.copy_csv import copy_csv
from data_platform.loads.csv_files import ChunkStream, CsvDialect
from data_platform.loads.scan import FileScanResult, scan_files
from data_platform.loads.source import FileSource, PendingLoad, TableLoader

log = logging.getLogger(__name__)

SOURCE: Final[SourceName] = "cubic_kafka"
DIALECT = CsvDialect()  # what csv.writer below writes
_FILE = re.compile(r"^partition=\d+/offsets=\d+-\d+\.jsonl\.gz$")
_KEY = ["kafka_topic", "kafka_partition", "kafka_offset"]
_BLOCK = 1 << 20  # bytes of CSV per COPY
_SLICE = 100  # records per COPY when a block holds a value PostgreSQL refuses
_DEAD_BATCH = 1000  # dead letters per INSERT
# SQLSTATE classes of a value COPY refuses: 22 data exception (a bad value, out of
# range, bad encoding), 54 program limit exceeded (a value too large to store).
_REFUSED = ("22", "54")


def scan_kafka() -> FileScanResult:
    """Record every new batch file of every topic table as a `ready` load."""
    return scan_files(SOURCE, lambda prefix, key: bool(_FILE.match(key[len(prefix) :])))


@dataclass(frozen=True)
class _Row:
    """A record that parsed: its line in the file, its key, the line itself (for a dead
    letter if PostgreSQL refuses it) and its CSV for COPY."""

    line: int
    key: list[Any]
    record: bytes
    csv: bytes


def _record_text(line: bytes) -> str:
    """A file's line as dead_letters.record holds it: undecodable bytes replaced, a NUL
    byte shown as \\u0000 (the consumer writes neither; another writer's file might)."""
    return schema.printable(line.decode("utf-8", "replace").rstrip("\r\n"))


class _Apply:
    """One load's records: parsed, COPYed in blocks into the stage, bad ones collected
    as dead letters. `good`: records in the stage; `dead`: dead letters met; `dead_new`:
    those recorded now (the others an earlier load carried first)."""

    def __init__(
        self,
        cur,
        conn: Connection,
        load: PendingLoad,
        table_id: int,
        target: sql.Composable,
        error: Callable[..., LoadError],
    ) -> None:
        self.cur = cur
        self.conn = conn
        self.load = load
        self.table_id = table_id
        self.target = target
        self.error = error
        self.stage: sql.Composable | None = None
        self.good = 0
        self.dead = 0
        self.dead_new = 0
        self._pending_dead: list[dict[str, Any]] = []

    # --- reading ---

    def run(self, lines: Iterator[bytes]) -> None:
        """Stage every record of `lines` that PostgreSQL takes (in blocks of about
        `_BLOCK` bytes of CSV) and record the others in dead_letters. Raises LoadError
        for a broken file or a failure that is no record's; a failure that is the
        platform's (`loads.faults`: the connection, a privilege) as it is."""
        self.stage = dispositions.create_stage(self.cur, self.target, schema.COLUMNS)
        block: list[_Row] = []
        size = 0
        for row in self._rows(lines):
            block.append(row)
            size += len(row.csv)
            if size >= _BLOCK:
                self._copy_block(block)
                block, size = [], 0
        if block:
            self._copy_block(block)
        self._flush_dead()

    def _rows(self, lines: Iterator[bytes]) -> Iterator[_Row]:
        """The records that parse, as CSV; the others become dead letters. Raises
        LoadError for a broken gzip stream (the file, not a record, is bad)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        number = 0
        try:
            for line in lines:
                number += 1
                if not line.strip():
                    continue
                try:
                    envelope = schema.parse_envelope(line)
                except schema.BadRecord as exc:
                    self._dead([self.load.key, number], number, exc.field, str(exc), line)
                    continue
                try:
                    values = schema.to_row(envelope)
                except schema.BadRecord as exc:
                    self._dead(envelope.record_key, number, exc.field, str(exc), line)
                    continue
                writer.writerow(["" if v is None else v for v in values])
                text = buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                try:
                    data = text.encode()
                except UnicodeEncodeError as exc:  # schema.to_row checks every text field;
                    # should a new one slip through, it is still this record's fault alone
                    reason = f"not UTF-8: {schema.printable(str(exc))}"
                    self._dead(envelope.record_key, number, None, reason, line)
                    continue
                yield _Row(number, envelope.record_key, line, data)
        except (OSError, EOFError, zlib.error) as exc:
            raise self.error(f"corrupt gzip data after line {number}: {exc}") from exc

    # --- COPY, isolating what PostgreSQL refuses ---

    def _copy_block(self, rows: Sequence[_Row]) -> None:
        if self._try_copy(rows) is None:
            return
        for start in range(0, len(rows), _SLICE):
            self._isolate(rows[start : start + _SLICE])

    def _isolate(self, rows: Sequence[_Row]) -> None:
        """COPY `rows`, dead-lettering each record PostgreSQL refuses: the record COPY's
        error names (its line) is taken out and the rest tried again. When a quoted line
        break comes before it, COPY's line may not be the record's: then the rows before
        it, the record alone (a refusal confirmed on its own, so a good record is never
        dead-lettered on a miscounted line) and the rest are tried in turn."""
        while rows:
            refused = self._try_copy(rows)
            if refused is None:
                return
            if len(rows) == 1:
                self._refused(rows[0], refused)
                return
            # COPY's line counts records from 1 here (no header; copy_csv adds one for
            # it). A quoted line break may shift it: the single tries below correct that.
            at = refused.line - 2 if refused.line is not None else -1
            if not 0 <= at < len(rows):
                for row in rows:  # no usable line: record by record
                    self._isolate([row])
                return
            if not any(b"\r" in row.csv or b"\n" in row.csv[:-1] for row in rows[: at + 1]):
                # No line break up to it: COPY's line is the record's. One COPY per refusal.
                self._refused(rows[at], refused)
                rows = [*rows[:at], *rows[at + 1 :]]
                continue
            if at:
                self._isolate(rows[:at])
            self._isolate(rows[at : at + 1])
            rows = rows[at + 1 :]

    def _try_copy(self, rows: Sequence[_Row]) -> LoadError | None:
        """COPY `rows` into the stage under a savepoint. Returns None when done, the
        LoadError (line, field) when PostgreSQL refused a value (nothing of `rows` is
        kept then). Any other failure is raised."""
        assert self.stage is not None
        self.cur.execute("SAVEPOINT dp_kafka_block")
        try:
            copy_csv(
                self.cur,
                self.stage,
                schema.COLUMNS,
                ChunkStream(iter([b"".join(row.csv for row in rows)])),
                DIALECT,
                file_columns=schema.FIELDS,
                error=lambda message, line=None, column=None: LoadError(
                    message, line=line, column=column
                ),
            )
        except LoadError as exc:
            if not faults.is_file_fault(exc):
                raise  # the platform's (connection, privilege, disk): the worker stops
            cause = exc.__cause__
            self.cur.execute("ROLLBACK TO SAVEPOINT dp_kafka_block")
            code = getattr(cause, "pgcode", None) or ""
            if not code.startswith(_REFUSED):
                raise self.error(exc.reason, column=exc.column) from cause
            return exc
        self.cur.execute("RELEASE SAVEPOINT dp_kafka_block")
        self.good += len(rows)
        return None

    def _refused(self, row: _Row, refused: LoadError) -> None:
        field = refused.column
        reason = f"{field}: {refused.reason}" if field else refused.reason
        self._dead(row.key, row.line, field, f"{reason} (PostgreSQL refused it)", row.record)

    # --- dead letters ---

    def _dead(
        self, key: list[Any], line: int, field: str | None, reason: str, record: bytes
    ) -> None:
        self.dead += 1
        self._pending_dead.append(
            {
                "table_id": self.table_id,
                "record_key": key,
                "load_id": self.load.id,
                "line": line,
                "field": None if field is None else schema.printable(field),
                "reason": schema.printable(reason),
                "record": _record_text(record),
            }
        )
        if len(self._pending_dead) >= _DEAD_BATCH:
            self._flush_dead()

    def _flush_dead(self) -> None:
        """INSERT the pending dead letters; one already recorded for a record key (an
        earlier load carried the record) is left as it is."""
        if not self._pending_dead:
            return
        statement = (
            insert(DeadLetter)
            .on_conflict_do_nothing(index_elements=["table_id", "record_key"])
            .returning(DeadLetter.id)
        )
        self.dead_new += len(self.conn.execute(statement, self._pending_dead).all())
        self._pending_dead = []


class KafkaTableLoader(TableLoader):
    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        return False  # offsets are unique in the table: files apply in any order

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: load.key)  # by partition, then offset

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        """Append the file's good records, dead-letter the others (see the module's
        doc). Returns the records read that are rows (new or held already). Raises
        LoadError for a file that is not gzip JSON lines, never for a record."""
        table = self.table
        error = self.load_error(load)
        target = sql.Identifier(table.db_schema, table.db_table)
        body, _ = self.open_file(conn, load)
        cur = dbapi_cursor(conn)
        work = _Apply(cur, conn, load, table.id, target, error)
        try:
            with gzip.GzipFile(fileobj=body) as lines:
                work.run(iter(lines))
            assert work.stage is not None
            added = dispositions.append(cur, target, work.stage, schema.COLUMNS, unique=_KEY)
        finally:
            # A database error goes on as it is: the worker decides whose fault it is.
            cur.close()
        self.dead_letters = work.dead_new
        extra = {**self.worker.extra, "load_id": load.id}
        if work.dead:
            log.warning(
                "%d record(s) are dead letters (%d new, %d recorded by an earlier load): "
                "`data-platform loads show %d`",
                work.dead,
                work.dead_new,
                work.dead - work.dead_new,
                load.id,
                extra=extra,
            )
        log.info(
            "%d record(s): %d new row(s), %d already loaded",
            work.good,
            added,
            work.good - added,
            extra=extra,
        )
        return work.good


KAFKA = FileSource(SOURCE, scan_kafka, KafkaTableLoader)
