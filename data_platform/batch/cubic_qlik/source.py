"""Qlik Replicate as a source of the one worker (`data_platform.loads.worker`).

Order within a table: the full-load parts of its current snapshot, then change files in
name (= time) order. Loads of an older snapshot that never ran are archived unapplied: the
newer full load supersedes them. A table with an errored load in its current snapshot
waits until the load is retried (order matters); other tables go on. A full-load part
that arrives after change files of its snapshot were applied rebuilds the table from the
archive. With SPRINGBOARD_ENABLED, the Glue job writes each load's Parquet first.

Where a file's row becomes a table row: `QlikTableLoader.apply` -> `full_load.apply_full_load`
or `change_apply.apply_changes`, over an `ApplyContext` (`context`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Final

from sqlalchemy import Connection, func, select, text, update

from data_platform.batch.cubic_qlik.change_apply import apply_changes
from data_platform.batch.cubic_qlik.context import ApplyContext
from data_platform.batch.cubic_qlik.dfm import dfm_key, parse_dfm
from data_platform.batch.cubic_qlik.files import is_full_load, is_snapshot_start
from data_platform.batch.cubic_qlik.full_load import apply_full_load
from data_platform.batch.cubic_qlik.history import load_history
from data_platform.batch.cubic_qlik.naming import SOURCE
from data_platform.batch.cubic_qlik.scan import QlikScanResult, scan_incoming
from data_platform.batch.cubic_qlik.target import describe_target
from data_platform.db.engine import dbapi_cursor
from data_platform.db.models import (
    ERROR_STATES,
    Load,
    LoadSnapshot,
    LoadStatus,
    SourceName,
    SourceTable,
    TableSnapshot,
)
from data_platform.errors import DataPlatformError, LoadError, StorageError
from data_platform.loads.csv_files import DataFileReader
from data_platform.loads.schema_changes import removed_columns
from data_platform.loads.source import IngestResult, PendingLoad, Source, TableLoader
from data_platform.loads.state import transition
from data_platform.loads.worker import TableWorker, ingest
from data_platform.settings import get_settings
from data_platform.storage import ObjectChangedError, get_zone

log = logging.getLogger(__name__)

S = LoadStatus


def companions(key: str) -> list[str]:
    """Files that travel with a data file: its .dfm."""
    return [dfm_key(key)]


class QlikSource:
    """Qlik Replicate's files as a `Source`: snapshots, springboard hand-offs, rebuilds."""

    name: Final[SourceName] = SOURCE

    def scan(self) -> QlikScanResult:
        return scan_incoming()

    def companions(self, key: str) -> list[str]:
        return companions(key)

    def consequence(self, key: str) -> str:
        if is_snapshot_start(key.rsplit("/", 1)[-1]):
            return "a new load and a new snapshot: the table is reloaded from it"
        return "a new load, applied again"

    def loader(self, worker: TableWorker) -> QlikTableLoader:
        return QlikTableLoader(worker)


QLIK: Source = QlikSource()


def ingest_qlik(tables: list[str] | None = None) -> IngestResult:
    """Apply every ready Qlik load (of `tables`, by platform name, when given)."""
    return ingest(QLIK, tables)


class QlikTableLoader(TableLoader):
    def __init__(self, worker: TableWorker) -> None:
        super().__init__(worker)
        # By load id, not by key: a file landed again under a key (a reload, a re-sent
        # change file) is another load, with a job run and a partition of its own.
        self.springboard_failures: dict[int, str] = {}
        self.springboard_partitions: dict[int, str] = {}
        self.current: int | None = None

    # --- the worker's hooks -----------------------------------------------------------

    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        """Waits on an errored load of the current snapshot only: a newer snapshot makes
        the older snapshot's errors moot."""
        self.current = self.current_snapshot()
        if self.current is None:
            return self.worker.has_load_in(ERROR_STATES)
        return self.worker.has_load_in(ERROR_STATES, snapshot_id=self.current)

    def prepare(self, ready: Sequence[PendingLoad]) -> bool:
        current = self.current
        superseded = [load for load in ready if current is not None and load.snapshot_id != current]
        if superseded:
            for load in superseded:
                self.worker.supersede(load, "it belongs to an older snapshot")
            return True
        if get_settings().springboard_enabled:
            self.springboard(ready)
        late = [load for load in ready if is_full_load(load.key)]
        if late and current is not None:
            applied = self.archived(current)
            if any(not is_full_load(load.key) for load in applied):
                # Applying the part on top would undo changes already applied.
                self.rebuild(current, late, applied)
                return True
        return False

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: (not is_full_load(load.key), load.key, load.modified))

    def refused(self, load: PendingLoad) -> LoadError | None:
        if load.id in self.springboard_failures:
            return LoadError(self.springboard_failures[load.id], load_id=load.id)
        return None

    def not_applied(self, load: PendingLoad) -> None:
        """The job wrote the file's Parquet, but the load does not apply it: drop it, so
        the springboard holds only loads that end archived."""
        self.springboard_failures.pop(load.id, None)
        if load.id in self.springboard_partitions:
            # The load's own partition (it ends in dp__load_id=<id>/): an earlier load of
            # the same file keeps its Parquet.
            springboard = get_zone("springboard")
            for info in springboard.list(self.springboard_partitions.pop(load.id)):
                springboard.delete(info.key)

    def apply(
        self,
        conn: Connection,
        load: PendingLoad,
        zone_name: str = "incoming",
        *,
        truncate: bool | None = None,
    ) -> int:
        """Apply one load's file, read from `zone_name` (the archive when a snapshot is
        rebuilt), inside `conn`'s transaction. A full load truncates the table first when
        `truncate`, by default when it is a LOAD00000001. Returns the file's row count.

        Raises LoadError for a bad file, ObjectChangedError when the file in incoming is no
        longer the version the load recorded; a database error as the database raised it
        (whose fault it is, the worker decides: `data_platform.loads.faults`)."""
        table = self.table
        zone, key, expect = self.worker.source_file(load, zone_name)
        meta_key = dfm_key(key)
        try:
            with zone.open(meta_key) as body:
                dfm = parse_dfm(body.read(), key=meta_key)
        except StorageError as exc:
            raise LoadError(f"missing .dfm ({dfm_key(load.key)})", key=load.key) from exc
        except LoadError as exc:
            raise LoadError(exc.reason, key=meta_key, table=table.name, load_id=load.id) from exc
        full_load = is_full_load(load.key)
        if dfm.is_change_file == full_load:
            kind = "a change file's" if dfm.is_change_file else "a full load's"
            raise LoadError(f"its .dfm is {kind}", key=load.key, table=table.name, load_id=load.id)
        conn.execute(
            text(
                "SELECT set_config('data_platform.load_id', :id, true), "
                "set_config('work_mem', :mem, true)"
            ),
            {"id": str(load.id), "mem": get_settings().load_work_mem.replace(" ", "")},
        )
        cursor = dbapi_cursor(conn)
        try:
            target = describe_target(cursor, table.db_schema, table.db_table)
            ctx = ApplyContext(
                cursor,
                target,
                dfm,
                key=load.key,
                load_id=load.id,
                table_name=table.name,
                table_id=table.id,
                sparse_updates=table.sparse_updates,
                reopen=lambda: zone.open(key, expect),
                raw=table.is_raw,
                removed=removed_columns(conn, table.id),
                connect=self.worker.engine.raw_connection,
                mask_order=conn.scalar(
                    select(SourceTable.change_mask_order).where(SourceTable.id == table.id)
                ),
                history=load_history(cursor, table.id, load.snapshot_id),
            )
            try:
                source = zone.open(key, expect)
            except ObjectChangedError:
                raise
            except StorageError as exc:
                raise ctx.error(f"file is gone from {zone_name}: {exc}") from exc
            with DataFileReader(source, load.key) as reader:
                if full_load:
                    # A rebuild (truncate given) replays the snapshot the table has: only
                    # a new snapshot is compared with what change files made of the table.
                    new_snapshot = truncate is None and is_snapshot_start(load.key)
                    if truncate is None:
                        truncate = new_snapshot
                    result = apply_full_load(
                        ctx, reader, truncate=truncate, compare_drift=new_snapshot
                    )
                else:
                    result = apply_changes(ctx, reader)
        finally:
            # A database error goes on as it is: the worker decides whose fault it is.
            cursor.close()
        return result.rows

    # --- snapshots ----------------------------------------------------------------------

    def current_snapshot(self) -> int | None:
        with self.worker.engine.connect() as conn:
            return conn.scalar(
                select(TableSnapshot.id)
                .where(TableSnapshot.table_id == self.table.id)
                .order_by(TableSnapshot.snapshot.desc())
                .limit(1)
            )

    def archived(self, snapshot_id: int) -> list[PendingLoad]:
        """The snapshot's archived loads (applied, or superseded before it), in key order."""
        with self.worker.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Load.id, Load.s3_key, Load.is_raw, Load.s3_size, Load.s3_modified, Load.s3_etag
                )
                .join(LoadSnapshot, LoadSnapshot.load_id == Load.id)
                .where(
                    Load.table_id == self.table.id,
                    LoadSnapshot.snapshot_id == snapshot_id,
                    Load.status == S.ARCHIVED,
                )
                .order_by(Load.s3_key, Load.s3_modified)
            ).all()
        return [
            PendingLoad(id_, key, S.ARCHIVED, snapshot_id, raw, None, size, modified, etag)
            for id_, key, raw, size, modified, etag in rows
        ]

    def rebuild(
        self, snapshot_id: int, late: list[PendingLoad], applied: list[PendingLoad]
    ) -> None:
        """Full-load parts of the current snapshot became visible (or were fixed) after
        change files of the snapshot were applied: rebuild the table from all the
        snapshot's parts, then re-apply its archived change files in order, in one
        transaction (readers see the old state until it commits; a crash changes nothing).
        The late parts are then archived like any load; the others stay as they were."""
        worker = self.worker
        extra = {**worker.extra, "snapshot_id": snapshot_id}
        parts = sorted(
            [*(load for load in applied if is_full_load(load.key)), *late], key=lambda x: x.key
        )
        changes = [load for load in applied if not is_full_load(load.key)]
        late_ids = {load.id for load in late}
        log.warning(
            "rebuilding: %d full-load part(s) arrived after %d applied change file(s) of the "
            "snapshot (%s); re-applying %d part(s) and the changes from the archive",
            len(late),
            len(changes),
            ", ".join(load.key for load in late),
            len(parts),
            extra=extra,
        )
        worker.claim(late)
        rows = 0
        failed: PendingLoad | None = None
        try:
            with worker.engine.connect() as conn, conn.begin():
                for index, load in enumerate([*parts, *changes]):
                    zone = "incoming" if load.id in late_ids else "archive"
                    try:
                        rows += worker.applying(
                            load,
                            functools.partial(self.apply, conn, load, zone, truncate=index == 0),
                        )
                    except (LoadError, ObjectChangedError) as exc:
                        if load.id in late_ids:
                            failed = load
                            raise
                        if isinstance(exc, ObjectChangedError):
                            raise
                        raise DataPlatformError(
                            f"rebuild of {self.table.name} stopped on archived load {load.id}: "
                            f"{exc.describe()}"
                        ) from exc
                for load in late:
                    transition(conn, load.id, S.INGESTING, S.READY_FOR_ARCHIVING)
                conn.execute(
                    update(TableSnapshot)
                    .where(TableSnapshot.id == snapshot_id)
                    .values(rebuilds=TableSnapshot.rebuilds + 1, rebuilt_at=func.now())
                )
        except (LoadError, ObjectChangedError) as exc:
            if failed is None:
                raise
            worker.release([load for load in late if load is not failed])
            if isinstance(exc, ObjectChangedError):
                worker.replaced(failed)
            else:
                worker.error(failed, exc)
            return
        except BaseException:
            worker.release(late)
            raise
        worker.result.rows += rows
        worker.result.rebuilds += 1
        log.warning(
            "rebuilt from %d part(s) and %d change file(s)", len(parts), len(changes), extra=extra
        )
        for load in late:
            worker.finish(load, S.READY_FOR_ARCHIVING)

    # --- the Glue job -------------------------------------------------------------------

    def springboard(self, ready: Sequence[PendingLoad]) -> None:
        """Hand the ready loads of the current snapshot that the Glue job has not seen yet
        to it, in one run, before they are applied and archived; a load the job fails is
        errored with its message when its turn comes. Runs again in every pass, so a load
        recorded while a job run was in flight (another scan, a reload of a file under
        the same key, a new snapshot) is never archived without its partition: loads are
        told apart by id, and each has its own partition (`JobLoad.load_id`).
        `ready` holds loads of the current snapshot only.

        A job run reads the file a key holds now, so of two ready loads of one key (the
        file replaced in incoming after the first was recorded) only the newest is
        handed over: the older one's version is gone, so its apply finds the file
        replaced and archives it unapplied (`TableWorker.replaced`), without a partition."""
        from data_platform.jobs.job_input import JobLoad
        from data_platform.jobs.springboard import run_springboard

        seen = self.springboard_partitions.keys() | self.springboard_failures.keys()
        newest: dict[str, PendingLoad] = {}
        for load in sorted(ready, key=lambda load: (load.modified, load.id)):
            if load.id not in seen:
                newest[load.key] = load
        loads = list(newest.values())
        if not loads:
            return
        job_loads = {}
        for load in loads:
            assert load.snapshot_time is not None  # TableWorker.pending() always sets it
            job_loads[load.id] = JobLoad.create(
                load.key, self.table.name, load.snapshot_time, is_raw=load.is_raw, load_id=load.id
            )
        # A JobRunError (job not deployed, crashed, timed out) blames no file: it stops this
        # table for this run with every load still ready, and the run ends in an error.
        results = run_springboard(list(job_loads.values()))
        # Failed loads are errored when their turn comes, so the loads before them still
        # apply in order.
        for load_id, job_load in job_loads.items():
            why = results.get(job_load.source_key)
            if why:
                self.springboard_failures[load_id] = why
            else:
                self.springboard_partitions[load_id] = job_load.partition_path
