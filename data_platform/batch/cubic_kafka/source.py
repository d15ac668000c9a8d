"""Kafka tap events as a source of the one worker: each consumed batch file is a load.

Scan: the files `cubic/kafka/<topic>/partition=<p>/offsets=<first>-<last>.jsonl.gz` under
each registered table's prefix, not recorded yet. Apply: every line (the consumer's
envelope: topic, partition, offset, timestamp, key, value) is checked against the tap
event's declaration (`schema.py`); good records are COPYed into a staging table typed
like the table (every value checked again by Postgres) and appended, skipping a
(topic, partition, offset) the table holds already: a record delivered twice, a file
replayed or two files with overlapping offsets give one row each. Records that do not
parse or miss a required field go to a dead-letter file in the error zone
(`dead_letter/load=<id>/<key>`, one JSON line each: the envelope, its line and the
reason); the rest of the file loads. Files are independent: none waits for another.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
import tempfile
import zlib
from collections.abc import Iterator, Sequence

import psycopg2
from psycopg2 import sql
from sqlalchemy import Connection

from data_platform.batch.cubic_kafka import schema
from data_platform.errors import LoadError
from data_platform.loads import dispositions
from data_platform.loads.copy_csv import copy_csv
from data_platform.loads.csv_files import ChunkStream, CsvDialect
from data_platform.loads.scan import FileScanResult, scan_files
from data_platform.loads.source import FileSource, PendingLoad, TableLoader
from data_platform.storage import get_zone

log = logging.getLogger(__name__)

SOURCE = "cubic_kafka"
DIALECT = CsvDialect()  # what csv.writer below writes
_FILE = re.compile(r"^partition=\d+/offsets=\d+-\d+\.jsonl\.gz$")
_KEY = ["kafka_topic", "kafka_partition", "kafka_offset"]
_BLOCK = 1 << 20


def dead_letter_key(key: str, load_id: int) -> str:
    """Where a load's unparsable records go in the error zone."""
    return f"dead_letter/load={load_id}/{key}"


def scan_kafka() -> FileScanResult:
    """Record every new batch file of every topic table as a `ready` load."""
    return scan_files(SOURCE, lambda prefix, key: bool(_FILE.match(key[len(prefix) :])))


class _Rows(ChunkStream):
    """`read(n)` of a batch file's good records as CSV rows of schema.COLUMNS, for COPY;
    the bad ones are written to `dead` (gzip JSON lines) as they are met."""

    def __init__(self, lines: Iterator[bytes], dead: gzip.GzipFile) -> None:
        self._lines = lines
        self._dead = dead
        self.good = 0
        self.bad = 0
        self.line = 0
        super().__init__(self._csv_blocks())

    def _csv_blocks(self) -> Iterator[bytes]:
        """About a block of CSV at a time; a broken gzip stream is kept as `failure`."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        try:
            for line in self._lines:
                self.line += 1
                if not line.strip():
                    continue
                try:
                    row = schema.to_row(schema.parse_envelope(line))
                except schema.BadRecord as exc:
                    self.bad += 1
                    record = line.decode("utf-8", "replace").rstrip("\n")
                    entry = {"line": self.line, "reason": str(exc), "record": record}
                    self._dead.write((json.dumps(entry, ensure_ascii=False) + "\n").encode())
                    continue
                self.good += 1
                writer.writerow(["" if v is None else v for v in row])
                if buffer.tell() >= _BLOCK:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
        except (OSError, EOFError, zlib.error) as exc:
            # COPY only says "error in .read() call": keep the reason for copy_csv.
            self.failure = LoadError(f"corrupt gzip data after line {self.line}: {exc}")
            raise
        if buffer.tell():
            yield buffer.getvalue().encode()


class KafkaTableLoader(TableLoader):
    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        return False  # offsets are unique in the table: files apply in any order

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: load.key)  # by partition, then offset

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        table = self.table
        error = self.load_error(load)
        target = sql.Identifier(table.db_schema, table.db_table)
        body, _ = self.open_file(conn, load)
        cur = conn.connection.dbapi_connection.cursor()
        try:
            with (
                gzip.GzipFile(fileobj=body) as lines,
                tempfile.TemporaryFile() as spool,
            ):
                with gzip.GzipFile(fileobj=spool, mode="wb") as dead:
                    rows = _Rows(iter(lines), dead)
                    stage = dispositions.create_stage(cur, target, schema.COLUMNS)
                    copy_csv(
                        cur,
                        stage,
                        schema.COLUMNS,
                        rows,
                        DIALECT,
                        file_columns=schema.COLUMNS,
                        error=error,
                    )
                added = dispositions.append(cur, target, stage, schema.COLUMNS, unique=_KEY)
                if rows.bad:
                    spool.seek(0)
                    get_zone("error").put(dead_letter_key(load.key, load.id), spool)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            raise
        except psycopg2.Error as exc:
            raise error((exc.diag.message_primary or str(exc)).strip()) from exc
        finally:
            cur.close()
        extra = {**self.worker.extra, "load_id": load.id}
        if rows.bad:
            log.warning(
                "%d record(s) did not parse: in the error zone at %s",
                rows.bad,
                dead_letter_key(load.key, load.id),
                extra=extra,
            )
        log.info(
            "%d record(s): %d new row(s), %d already loaded",
            rows.good,
            added,
            rows.good - added,
            extra=extra,
        )
        return rows.good


KAFKA = FileSource(SOURCE, scan_kafka, KafkaTableLoader)
