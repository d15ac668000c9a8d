"""Recording new files as loads: the part of every source's scan that is the same.

A file is its key plus its version (size, last-modified, ETag; revision 0004): a version
not recorded before becomes a `ready` load, inserted in batches. A new version of a key
whose load failed is the fixed file for that load (`retry` applies it), not a new load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from data_platform.db.engine import get_engine
from data_platform.db.models import (
    ERROR_STATES,
    Load,
    LoadSnapshot,
    LoadStatus,
    SourceName,
    SourceTable,
)
from data_platform.loads.tables import source_name
from data_platform.storage import ObjectInfo, get_zone

BATCH_SIZE = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """A load already recorded for a key."""

    version: ObjectInfo
    status: LoadStatus
    snapshot_id: int | None

    @property
    def failed(self) -> bool:
        return self.status in ERROR_STATES


def batches(infos: Iterable[ObjectInfo], size: int = BATCH_SIZE) -> Iterator[list[ObjectInfo]]:
    """A listing in lists of `size`, so memory stays flat however many files land."""
    batch: list[ObjectInfo] = []
    for info in infos:
        batch.append(info)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def recorded_versions(conn: Connection, keys: Sequence[str]) -> dict[str, list[Recorded]]:
    """Every load recorded for `keys`, by key."""
    rows = conn.execute(
        select(
            Load.s3_key,
            Load.s3_size,
            Load.s3_modified,
            Load.s3_etag,
            Load.status,
            LoadSnapshot.snapshot_id,
        )
        .outerjoin(LoadSnapshot, LoadSnapshot.load_id == Load.id)
        .where(Load.s3_key.in_(keys))
    )
    found: dict[str, list[Recorded]] = {}
    for key, size, modified, etag, status, snapshot_id in rows:
        info = ObjectInfo(key, size, modified, etag)
        found.setdefault(key, []).append(Recorded(info, LoadStatus(status), snapshot_id))
    return found


def unrecorded(
    batch: Sequence[ObjectInfo], recorded: dict[str, list[Recorded]]
) -> list[ObjectInfo]:
    """The files of `batch` whose version no load recorded yet."""
    return [
        info
        for info in batch
        if not any(info.same_version(seen.version) for seen in recorded.get(info.key, ()))
    ]


def insert_loads(
    conn: Connection, table: SourceTable, infos: Sequence[ObjectInfo]
) -> list[tuple[int, datetime]]:
    """Record `infos` as `ready` loads of `table` (a version recorded meanwhile by
    another scan is skipped). Returns (load id, last-modified) of each new load."""
    if not infos:
        return []
    rows = [
        {
            "table_id": table.id,
            "status": LoadStatus.READY,
            "s3_key": info.key,
            "s3_modified": info.last_modified,
            "s3_size": info.size,
            "s3_etag": info.etag,
            "is_raw": table.is_raw,
        }
        for info in infos
    ]
    return [
        (load_id, modified)
        for load_id, modified in conn.execute(
            insert(Load).values(rows).on_conflict_do_nothing().returning(Load.id, Load.s3_modified)
        )
    ]


def record_new_files(conn: Connection, table: SourceTable, batch: Sequence[ObjectInfo]) -> int:
    """The whole scan step for a source of independent files (no snapshots): record the
    new versions in `batch`, except the fixed file of a failed load. Returns how many
    loads were recorded."""
    recorded = recorded_versions(conn, [info.key for info in batch])
    new = [
        info
        for info in unrecorded(batch, recorded)
        if not any(seen.failed for seen in recorded.get(info.key, ()))
    ]
    return len(insert_loads(conn, table, new))


@dataclass
class FileScanResult:
    """What a scan of a file source recorded, a `loads.source.ScanResult` (`run` prints
    `summary()` and `notes()`); sources with more to say extend it."""

    new_loads: int = 0
    tables: int = 0

    def summary(self) -> str:
        return f"{self.new_loads} new load(s)"

    def notes(self) -> list[str]:
        return []


def scan_files(source: SourceName, is_load_key: Callable[[str, str], bool]) -> FileScanResult:
    """`record_source_files` as a scan result."""
    return FileScanResult(*record_source_files(source, is_load_key))


def record_source_files(
    source: SourceName, is_load_key: Callable[[str, str], bool]
) -> tuple[int, int]:
    """Record the new files of every active table of `source`: the objects under each
    table's prefix for which `is_load_key(prefix, key)` holds. Returns (loads recorded,
    tables scanned). Each table is scanned under its source_tables row lock, so two scans
    never record one file twice."""
    engine = get_engine()
    with engine.connect() as conn, Session(conn) as session:
        tables = list(
            session.scalars(
                select(SourceTable)
                .where(SourceTable.source == source, SourceTable.is_active)
                .order_by(SourceTable.name)
            )
        )
    incoming = get_zone("incoming")
    recorded_in_all = 0
    for table in tables:
        prefix = table.s3_prefix
        files = (info for info in incoming.list(prefix) if is_load_key(prefix, info.key))
        with engine.begin() as conn:
            conn.execute(select(SourceTable.id).where(SourceTable.id == table.id).with_for_update())
            recorded = sum(record_new_files(conn, table, batch) for batch in batches(files))
        if recorded:
            log.info("recorded %d new load(s)", recorded, extra={"table": table.name})
        recorded_in_all += recorded
    return recorded_in_all, len(tables)


def waiting_folders(
    conn: Connection, source: SourceName, root: str, owner_of: Callable[[str], str]
) -> dict[str, int]:
    """Files under a source's `root` prefix in incoming that no onboarded table of
    `source` (active or not) owns, counted by the table they would belong to
    (`owner_of(key)`, e.g. `EDW.NEW` or `agg_new_type`). What `run` and `scan` report
    as waiting for onboarding. Lists the incoming files of the source once."""
    onboarded = {
        source_name(prefix)
        for (prefix,) in conn.execute(
            select(SourceTable.s3_prefix).where(SourceTable.source == source)
        )
    }
    waiting: dict[str, int] = {}
    for info in get_zone("incoming").list(root):
        owner = owner_of(info.key)
        if owner and owner not in onboarded:
            waiting[owner] = waiting.get(owner, 0) + 1
    return waiting
