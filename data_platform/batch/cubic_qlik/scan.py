"""Scan the incoming zone: record every new Qlik data file as a `ready` load.

Per active table, lists its prefix and its `__ct` prefix page by page, and inserts the
files not seen before in batches. A LOAD00000001 newer than the table's current snapshot
starts a new snapshot; each load is linked to the snapshot it belongs to: the newest one
whose LOAD00000001 is not newer than the file.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from data_platform.batch.cubic_qlik.dfm import dfm_key
from data_platform.batch.cubic_qlik.files import (
    CHANGE_SUFFIX,
    FileKind,
    TablePrefixes,
    classify,
    is_full_load,
    is_snapshot_start,
)
from data_platform.batch.cubic_qlik.naming import SOURCE
from data_platform.db.engine import get_engine
from data_platform.db.models import (
    Load,
    LoadSnapshot,
    LoadStatus,
    SourceTable,
    TableSnapshot,
)
from data_platform.loads.moves import find_archived
from data_platform.loads.scan import (
    batches,
    insert_loads,
    recorded_versions,
    unrecorded,
    waiting_folders,
)
from data_platform.settings import get_settings
from data_platform.storage import ObjectInfo, get_zone

log = logging.getLogger(__name__)


@dataclass
class QlikScanResult:
    """What a Qlik scan recorded (a `loads.source.ScanResult`): loads, snapshots, and the
    files it left alone."""

    new_loads: int = 0
    new_snapshots: int = 0
    tables: int = 0
    unrecognised_keys: list[str] = field(default_factory=list)
    # Files under the Qlik prefix of tables not onboarded yet, by source table.
    waiting: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{self.new_loads} new load(s), {self.new_snapshots} new snapshot(s)"

    def notes(self) -> list[str]:
        lines = [f"  not a Qlik data file, left in place: {k}" for k in self.unrecognised_keys]
        lines += [
            f"  {table}: {count} file(s) wait for onboarding: "
            f"data-platform cubic-qlik process-new-table --table {table}"
            for table, count in sorted(self.waiting.items())
        ]
        return lines


def active_tables(conn: Connection) -> list[SourceTable]:
    query = (
        select(SourceTable)
        .where(SourceTable.source == SOURCE, SourceTable.is_active)
        .order_by(SourceTable.name)
    )
    with Session(conn) as session:
        return list(session.scalars(query))


def scan_incoming() -> QlikScanResult:
    result = QlikScanResult()
    engine = get_engine()
    with engine.connect() as conn:
        tables = active_tables(conn)
    for table in tables:
        with engine.begin() as conn:
            scan_table(conn, table, result)
        result.tables += 1
    root = get_settings().cubic_qlik_prefix
    with engine.connect() as conn:
        result.waiting = waiting_folders(conn, SOURCE, root, lambda key: _table_of(root, key))
    return result


def _table_of(root: str, key: str) -> str:
    """`cubic/ods_qlik/EDW.NEW__ct/x.csv` -> `EDW.NEW`; "" for a key with no table folder."""
    folder, _, rest = key[len(root) :].partition("/")
    return folder.removesuffix(CHANGE_SUFFIX) if rest and "." in folder else ""


def scan_table(conn: Connection, table: SourceTable, result: QlikScanResult) -> None:
    """Record the table's new files. Runs in the caller's transaction, which holds the
    table row lock, so two scans of one table never race on its snapshots."""
    conn.execute(select(SourceTable.id).where(SourceTable.id == table.id).with_for_update())
    incoming = get_zone("incoming")
    prefixes = TablePrefixes(table.s3_prefix)
    snapshots = _snapshots(conn, table.id)
    recorded = 0
    # The full-load prefix is listed first, and its files recorded before the changes are
    # listed: a new LOAD00000001 becomes a snapshot before the change files that follow
    # it are linked, and a new snapshot may queue change files again (see
    # _requeue_applied_changes), which must then be listed.
    for prefix in (prefixes.full_load, prefixes.changes):
        data_files = (
            info
            for info in incoming.list(prefix)
            if _is_data_file(prefixes, info.key, result.unrecognised_keys)
        )
        for batch in batches(data_files):
            recorded += _record(conn, table, batch, snapshots, result)
    if recorded:
        log.info("recorded %d new load(s)", recorded, extra={"table": table.name})


def _is_data_file(prefixes: TablePrefixes, key: str, unrecognised: list[str]) -> bool:
    kind = classify(prefixes, key)
    if kind is FileKind.UNKNOWN:
        unrecognised.append(key)
    return kind not in (FileKind.METADATA, FileKind.UNKNOWN)


def _record(
    conn: Connection,
    table: SourceTable,
    batch: list[ObjectInfo],
    snapshots: list[tuple[datetime, int]],
    result: QlikScanResult,
) -> int:
    recorded = recorded_versions(conn, [info.key for info in batch])
    # A key whose load failed: a file landing there again is the fixed file for that load
    # (`retry` applies it), unless it is a full-load part of a newer snapshot (a reload).
    # Any other new version of a key is a load of its own: a load applies the version it
    # recorded, never one that replaced it.
    failed = {key: r.snapshot_id for key, rs in recorded.items() for r in rs if r.failed}
    current = snapshots[-1][1] if snapshots else None
    # A first part landing again while the current snapshot's first part is errored is
    # the fixed file for that load (`retry` applies it in the same snapshot, and the
    # snapshot's waiting loads after it), not a reload that would supersede them.
    held = {key for key, snap in failed.items() if snap == current and is_snapshot_start(key)}
    candidates = unrecorded(batch, recorded)
    if not candidates:
        return 0
    for info in sorted(candidates, key=lambda i: (i.last_modified, i.key)):
        if info.key in held:
            log.warning(
                "%s landed again while its load is errored: kept for `data-platform cubic-qlik "
                "retry` (applied in the same snapshot), not started as a new snapshot",
                info.key,
                extra={"table": table.name},
            )
            continue
        if is_snapshot_start(info.key) and (not snapshots or info.last_modified > snapshots[-1][0]):
            _start_snapshot(conn, table, info, snapshots)
            result.new_snapshots += 1
    times = [t for t, _ in snapshots]
    new = []
    for info in candidates:
        if info.key in failed:
            newer_snapshot = _snapshot_for(times, snapshots, info.last_modified)
            if not (is_full_load(info.key) and newer_snapshot != failed[info.key]):
                continue
        new.append(info)
    inserted = insert_loads(conn, table, new)
    links = []
    for load_id, modified in inserted:
        snapshot_id = _snapshot_for(times, snapshots, modified)
        if snapshot_id is not None:
            links.append({"load_id": load_id, "snapshot_id": snapshot_id})
    if links:
        conn.execute(insert(LoadSnapshot).values(links))
    result.new_loads += len(inserted)
    return len(inserted)


def _start_snapshot(
    conn: Connection, table: SourceTable, info: ObjectInfo, snapshots: list[tuple[datetime, int]]
) -> None:
    """Record a new snapshot, and move the table's loads that have not run and are not
    older than it into it: a change file can be listed before the LOAD00000001 that
    precedes it becomes visible (S3 shows a multipart upload when it completes)."""
    snapshot_id = conn.execute(
        insert(TableSnapshot)
        .values(table_id=table.id, snapshot=info.last_modified, snapshot_s3_key=info.key)
        .returning(TableSnapshot.id)
    ).scalar_one()
    snapshots.append((info.last_modified, snapshot_id))
    not_run = select(Load.id).where(
        Load.table_id == table.id,
        Load.status == LoadStatus.READY,
        Load.s3_modified >= info.last_modified,
    )
    moved = conn.execute(
        update(LoadSnapshot)
        .where(LoadSnapshot.load_id.in_(not_run))
        .values(snapshot_id=snapshot_id)
    ).rowcount
    unlinked = not_run.where(
        ~select(LoadSnapshot.load_id).where(LoadSnapshot.load_id == Load.id).exists()
    )
    conn.execute(
        insert(LoadSnapshot).from_select(
            ["load_id", "snapshot_id"],
            select(Load.id, literal(snapshot_id)).where(Load.id.in_(unlinked)),
        )
    )
    log.info(
        "new snapshot %s from %s (%d waiting load(s) moved into it)",
        info.last_modified.isoformat(),
        info.key,
        moved,
        extra={"table": table.name},
    )
    _requeue_applied_changes(conn, table, info)


def _requeue_applied_changes(conn: Connection, table: SourceTable, info: ObjectInfo) -> None:
    """Change files not older than the new snapshot that were applied already (their
    LOAD00000001 became visible late) would be wiped by the snapshot's truncate: copy them
    back from the archive to incoming, where this scan records them as new loads of the new
    snapshot, applied after its full load. The archived loads stay as they were."""
    applied = conn.execute(
        select(Load.id, Load.s3_key).where(
            Load.table_id == table.id,
            Load.status == LoadStatus.ARCHIVED,
            Load.s3_modified >= info.last_modified,
        )
    ).all()
    changes = [(load_id, key) for load_id, key in applied if not is_full_load(key)]
    if not changes:
        return
    archive, incoming = get_zone("archive"), get_zone("incoming")
    for load_id, key in changes:
        for name in (key, dfm_key(key)):
            found = find_archived(name, load_id)
            if found is not None and incoming.head(name) is None:
                archive.copy_to(found, incoming, name)
    log.warning(
        "%d change file(s) applied before %s became visible are queued again after it",
        len(changes),
        info.key,
        extra={"table": table.name},
    )


def _snapshots(conn: Connection, table_id: int) -> list[tuple[datetime, int]]:
    return [
        (snapshot, snapshot_id)
        for snapshot, snapshot_id in conn.execute(
            select(TableSnapshot.snapshot, TableSnapshot.id)
            .where(TableSnapshot.table_id == table_id)
            .order_by(TableSnapshot.snapshot)
        )
    ]


def _snapshot_for(
    times: list[datetime], snapshots: list[tuple[datetime, int]], modified: datetime
) -> int | None:
    index = bisect.bisect_right(times, modified)
    return snapshots[index - 1][1] if index else None
