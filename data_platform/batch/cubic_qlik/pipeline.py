"""Ingest ready Qlik loads: per table, in order, one worker per table at a time.

Order within a table: the full-load parts of its current snapshot, then change files in
name (= time) order. Loads of an older snapshot that never ran are archived unapplied: the
newer full load supersedes them. A table with an errored load in its current snapshot
waits until the load is retried (order matters); other tables go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import psycopg2
from sqlalchemy import Connection, Engine, func, select, text, update

from data_platform.batch.cubic_qlik.apply import FileApplier, describe_target
from data_platform.batch.cubic_qlik.dfm import dfm_key, parse_dfm
from data_platform.batch.cubic_qlik.files import is_full_load, is_snapshot_start
from data_platform.batch.cubic_qlik.naming import SOURCE
from data_platform.db.engine import get_engine
from data_platform.db.models import (
    ERROR_STATES,
    Load,
    LoadSnapshot,
    LoadStatus,
    SourceTable,
    TableSnapshot,
)
from data_platform.errors import DataPlatformError, LoadError, StorageError, exit_code_for
from data_platform.loads.csv_files import DataFileReader
from data_platform.loads.locks import table_lock
from data_platform.loads.moves import find_archived, finish_load
from data_platform.loads.state import transition
from data_platform.settings import get_settings
from data_platform.storage import ObjectChangedError, ObjectInfo, get_zone

log = logging.getLogger(__name__)

S = LoadStatus
UNFINISHED = (S.READY_FOR_ARCHIVING, S.ARCHIVING, S.READY_FOR_ERRORING, S.ERRORING)


@dataclass
class IngestResult:
    archived: int = 0
    errored: int = 0
    superseded: int = 0
    replaced: int = 0  # files replaced in incoming after the scan: their new version is a load
    rebuilds: int = 0  # tables rebuilt from their snapshot (a late full-load part)
    rows: int = 0
    busy_tables: list[str] = field(default_factory=list)  # another worker had them
    blocked_tables: list[str] = field(default_factory=list)  # waiting on an errored load
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PendingLoad:
    id: int
    key: str
    status: LoadStatus
    snapshot_id: int | None
    is_raw: bool = False
    snapshot_time: datetime | None = None  # the snapshot's time, else the file's
    size: int = 0
    modified: datetime | None = None
    etag: str | None = None

    @property
    def version(self) -> ObjectInfo:
        """The version of the file this load recorded, and applies."""
        assert self.modified is not None
        return ObjectInfo(self.key, self.size, self.modified, self.etag)


def ingest(tables: list[str] | None = None) -> IngestResult:
    """Process every ready load of every active Qlik table (or of `tables`)."""
    engine = get_engine()
    result = IngestResult()
    with engine.connect() as conn:
        query = (
            select(
                SourceTable.id,
                SourceTable.name,
                SourceTable.db_schema,
                SourceTable.db_table,
                SourceTable.sparse_updates,
            )
            .where(SourceTable.source == SOURCE, SourceTable.is_active)
            .where(
                select(Load.id)
                .where(Load.table_id == SourceTable.id, Load.status.not_in([S.ARCHIVED, S.ERRORED]))
                .exists()
            )
            .order_by(SourceTable.name)
        )
        if tables:
            query = query.where(SourceTable.name.in_(tables))
        candidates = conn.execute(query).all()
    failures: list[tuple[str, BaseException]] = []
    for table_id, name, db_schema, db_table, sparse_updates in candidates:
        try:
            with table_lock(engine, table_id) as got:
                if not got:
                    result.busy_tables.append(name)
                    continue
                TableIngest(
                    engine, table_id, name, db_schema, db_table, result, sparse_updates
                ).run()
        except Exception as exc:
            # Not a file's fault (its load went back to ready): the other tables go on,
            # and the run still ends in an error.
            log.exception("ingest of %s stopped: %s", name, exc, extra={"table": name})
            failures.append((name, exc))
    if failures:
        name, first = failures[0]
        error = DataPlatformError(
            f"ingest stopped for {len(failures)} table(s), the others went on; first: "
            f"{name}: {first}"
        )
        # The run exits with the most specific cause (database, storage, job run).
        codes = [exit_code_for(exc) for _, exc in failures]
        error.exit_code = next((code for code in codes if code != 1), 1)
        raise error from first
    return result


class TableIngest:
    def __init__(
        self,
        engine: Engine,
        table_id: int,
        name: str,
        db_schema: str,
        db_table: str,
        result: IngestResult,
        sparse_updates: bool = True,
    ) -> None:
        self.engine = engine
        self.sparse_updates = sparse_updates
        self.table_id = table_id
        self.name = name
        self.db_schema = db_schema
        self.db_table = db_table
        self.result = result
        self.extra = {"table": name}
        self.springboard_failures: dict[str, str] = {}
        self.springboard_partitions: dict[str, str] = {}

    def run(self) -> None:
        self.recover()
        springboard = get_settings().springboard_enabled
        while True:
            loads = self.pending()
            current = self.current_snapshot()
            for load in loads:
                if load.status in UNFINISHED:
                    self.finish(load, load.status)
            if self.blocked(current):
                self.result.blocked_tables.append(self.name)
                log.warning("waiting: an errored load must be retried first", extra=self.extra)
                return
            ready = [load for load in loads if load.status == S.READY]
            if not ready:
                return
            superseded = [
                load for load in ready if current is not None and load.snapshot_id != current
            ]
            if superseded:
                for load in superseded:
                    self.supersede(load)
                continue
            if springboard:
                self.springboard(ready)
            late = [load for load in ready if is_full_load(load.key)]
            if late and current is not None:
                applied = self.archived(current)
                if any(not is_full_load(load.key) for load in applied):
                    # Applying the part on top would undo changes already applied.
                    self.rebuild(current, late, applied)
                    continue
            # One query per pass, not per load: apply in order until a load errors (the
            # table then waits), then look again for what a concurrent scan added.
            in_order = sorted(
                ready, key=lambda load: (not is_full_load(load.key), load.key, load.modified)
            )
            for load in in_order:
                if not self.process(load):
                    break

    # --- queries --------------------------------------------------------------------

    def pending(self) -> list[PendingLoad]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Load.id,
                    Load.s3_key,
                    Load.status,
                    LoadSnapshot.snapshot_id,
                    Load.is_raw,
                    func.coalesce(TableSnapshot.snapshot, Load.s3_modified),
                    Load.s3_size,
                    Load.s3_modified,
                    Load.s3_etag,
                )
                .outerjoin(LoadSnapshot, LoadSnapshot.load_id == Load.id)
                .outerjoin(TableSnapshot, TableSnapshot.id == LoadSnapshot.snapshot_id)
                .where(Load.table_id == self.table_id, Load.status.not_in([S.ARCHIVED, S.ERRORED]))
                .order_by(Load.s3_key, Load.s3_modified)
            ).all()
        return [
            PendingLoad(id_, key, S(status), snap, raw, when, size, modified, etag)
            for id_, key, status, snap, raw, when, size, modified, etag in rows
        ]

    def archived(self, snapshot_id: int) -> list[PendingLoad]:
        """The snapshot's archived loads (applied, or superseded before it), in key order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    Load.id, Load.s3_key, Load.is_raw, Load.s3_size, Load.s3_modified, Load.s3_etag
                )
                .join(LoadSnapshot, LoadSnapshot.load_id == Load.id)
                .where(
                    Load.table_id == self.table_id,
                    LoadSnapshot.snapshot_id == snapshot_id,
                    Load.status == S.ARCHIVED,
                )
                .order_by(Load.s3_key, Load.s3_modified)
            ).all()
        return [
            PendingLoad(id_, key, S.ARCHIVED, snapshot_id, raw, None, size, modified, etag)
            for id_, key, raw, size, modified, etag in rows
        ]

    def current_snapshot(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.scalar(
                select(TableSnapshot.id)
                .where(TableSnapshot.table_id == self.table_id)
                .order_by(TableSnapshot.snapshot.desc())
                .limit(1)
            )

    def blocked(self, current: int | None) -> bool:
        query = (
            select(Load.id)
            .outerjoin(LoadSnapshot, LoadSnapshot.load_id == Load.id)
            .where(Load.table_id == self.table_id, Load.status.in_(ERROR_STATES))
        )
        if current is not None:
            query = query.where(LoadSnapshot.snapshot_id == current)
        with self.engine.connect() as conn:
            return conn.scalar(query.limit(1)) is not None

    # --- state changes ----------------------------------------------------------------

    def recover(self) -> None:
        """We hold the table lock, so loads left in flight belong to a dead worker."""
        with self.engine.begin() as conn:
            stale = conn.execute(
                select(Load.id, Load.status).where(
                    Load.table_id == self.table_id,
                    Load.status.in_([S.INGESTING, S.ARCHIVING, S.ERRORING]),
                )
            ).all()
            for load_id, status in stale:
                back = {S.INGESTING: S.READY, S.ARCHIVING: S.READY_FOR_ARCHIVING}.get(
                    status, S.READY_FOR_ERRORING
                )
                transition(conn, load_id, status, back)
                log.warning(
                    "load %s was left %s by a stopped worker; now %s",
                    load_id,
                    status,
                    back.value,
                    extra={**self.extra, "load_id": load_id},
                )

    def finish(self, load: PendingLoad, status: LoadStatus) -> None:
        done = finish_load(self.engine, load.id, load.version, status, companions, self.name)
        if done == S.ARCHIVED:
            self.result.archived += 1
        elif done == S.ERRORED:
            self.result.errored += 1

    def springboard(self, ready: list[PendingLoad]) -> None:
        """Hand the ready loads of the current snapshot that the Glue job has not seen yet
        to it, in one run, before they are applied and archived; a load the job fails is
        errored with its message when its turn comes. Runs again in every pass, so a load
        recorded while a job run was in flight (another scan, a new snapshot) is never
        archived without its Parquet. `ready` holds loads of the current snapshot only."""
        from data_platform.jobs.job_input import JobLoad
        from data_platform.jobs.springboard import run_springboard

        seen = self.springboard_partitions.keys() | self.springboard_failures.keys()
        loads = [load for load in ready if load.key not in seen]
        if not loads:
            return
        job_loads = [
            JobLoad.create(load.key, self.name, load.snapshot_time, is_raw=load.is_raw)
            for load in loads
        ]
        # A JobRunError (job not deployed, crashed, timed out) blames no file: it stops this
        # table for this run with every load still ready, and the run ends in an error.
        results = run_springboard(job_loads)
        # Failed loads are errored when their turn comes, so the loads before them still
        # apply in order.
        self.springboard_failures.update({key: why for key, why in results.items() if why})
        self.springboard_partitions.update(
            {
                job_load.source_key: job_load.partition_path
                for job_load in job_loads
                if not results.get(job_load.source_key)
            }
        )

    def _drop_partition(self, load: PendingLoad) -> None:
        """The job wrote the file's Parquet, but the load does not apply it: drop it, so
        the springboard holds only loads that end archived."""
        self.springboard_failures.pop(load.key, None)
        if load.key in self.springboard_partitions:
            springboard = get_zone("springboard")
            for info in springboard.list(self.springboard_partitions.pop(load.key)):
                springboard.delete(info.key)

    def _error(self, load: PendingLoad, error: LoadError) -> None:
        message = error.describe()
        self._drop_partition(load)
        log.error("load failed: %s", message, extra={**self.extra, "load_id": load.id})
        with self.engine.begin() as conn:
            transition(conn, load.id, S.INGESTING, S.READY_FOR_ERRORING, error=message)
        self.result.errors.append(message)
        self.finish(load, S.READY_FOR_ERRORING)

    def supersede(self, load: PendingLoad) -> None:
        with self.engine.begin() as conn:
            transition(conn, load.id, S.READY, S.INGESTING)
        with self.engine.begin() as conn:
            transition(conn, load.id, S.INGESTING, S.READY_FOR_ARCHIVING)
        log.warning(
            "load %s (%s) belongs to an older snapshot: archived without applying",
            load.id,
            load.key,
            extra={**self.extra, "load_id": load.id},
        )
        self.result.superseded += 1
        self.finish(load, S.READY_FOR_ARCHIVING)

    def _replaced(self, load: PendingLoad) -> None:
        """The file under the load's key is no longer the version it recorded (replaced in
        incoming after the scan): the load is archived without applying anything, and the
        new version is recorded as a load of its own by the next scan. (The old version is
        gone from the store unless the incoming bucket keeps versions.)"""
        self._drop_partition(load)
        with self.engine.begin() as conn:
            transition(conn, load.id, S.INGESTING, S.READY_FOR_ARCHIVING)
        log.warning(
            "load %s (%s): the file was replaced in incoming after it was recorded; archived "
            "without applying, and the new version becomes a load of its own at the next scan",
            load.id,
            load.key,
            extra={**self.extra, "load_id": load.id},
        )
        self.result.replaced += 1
        self.finish(load, S.READY_FOR_ARCHIVING)

    def process(self, load: PendingLoad) -> bool:
        """Apply one load and archive it (True), or error it (False)."""
        extra = {**self.extra, "load_id": load.id}
        with self.engine.begin() as conn:
            transition(conn, load.id, S.READY, S.INGESTING)
        if load.key in self.springboard_failures:
            self._error(load, LoadError(self.springboard_failures[load.key], load_id=load.id))
            return False
        log.info("ingesting %s", load.key, extra=extra)
        try:
            with self.engine.connect() as conn, conn.begin():
                rows = self.apply(conn, load)
                transition(conn, load.id, S.INGESTING, S.READY_FOR_ARCHIVING)
        except ObjectChangedError:
            self._replaced(load)
            return False  # a new pass: the springboard may owe the key a job run
        except LoadError as exc:
            self._error(load, exc)
            return False
        except BaseException:
            # Not the file's fault (database gone, storage down, a bug): leave the load
            # for the next run instead of erroring it.
            with self.engine.begin() as conn:
                transition(conn, load.id, S.INGESTING, S.READY)
            raise
        self.result.rows += rows
        log.info("applied %d row(s) from %s", rows, load.key, extra=extra)
        self.finish(load, S.READY_FOR_ARCHIVING)
        return True

    def rebuild(
        self, snapshot_id: int, late: list[PendingLoad], applied: list[PendingLoad]
    ) -> None:
        """Full-load parts of the current snapshot became visible (or were fixed) after
        change files of the snapshot were applied: rebuild the table from all the
        snapshot's parts, then re-apply its archived change files in order, in one
        transaction (readers see the old state until it commits; a crash changes nothing).
        The late parts are then archived like any load; the others stay as they were."""
        extra = {**self.extra, "snapshot_id": snapshot_id}
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
        with self.engine.begin() as conn:
            for load in late:
                transition(conn, load.id, S.READY, S.INGESTING)
        rows = 0
        failed: PendingLoad | None = None
        try:
            with self.engine.connect() as conn, conn.begin():
                for index, load in enumerate([*parts, *changes]):
                    zone = "incoming" if load.id in late_ids else "archive"
                    try:
                        rows += self.apply(conn, load, zone, truncate=index == 0)
                    except (LoadError, ObjectChangedError) as exc:
                        if load.id in late_ids:
                            failed = load
                            raise
                        if isinstance(exc, ObjectChangedError):
                            raise
                        raise DataPlatformError(
                            f"rebuild of {self.name} stopped on archived load {load.id}: "
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
            with self.engine.begin() as conn:
                for load in late:
                    if load is not failed:
                        transition(conn, load.id, S.INGESTING, S.READY)
            if isinstance(exc, ObjectChangedError):
                self._replaced(failed)
            else:
                self._error(failed, exc)
            return
        except BaseException:
            with self.engine.begin() as conn:
                for load in late:
                    transition(conn, load.id, S.INGESTING, S.READY)
            raise
        self.result.rows += rows
        self.result.rebuilds += 1
        log.warning(
            "rebuilt from %d part(s) and %d change file(s)", len(parts), len(changes), extra=extra
        )
        for load in late:
            self.finish(load, S.READY_FOR_ARCHIVING)

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
        longer the version the load recorded."""
        zone = get_zone(zone_name)
        if zone_name == "incoming":
            key, expect = load.key, load.version
        else:
            key, expect = find_archived(load.key, load.id) or load.key, None
        meta_key = dfm_key(key)
        try:
            with zone.open(meta_key) as body:
                dfm = parse_dfm(body.read(), key=meta_key)
        except StorageError as exc:
            raise LoadError(f"missing .dfm ({dfm_key(load.key)})", key=load.key) from exc
        except LoadError as exc:
            raise LoadError(exc.reason, key=meta_key, table=self.name, load_id=load.id) from exc
        full_load = is_full_load(load.key)
        if dfm.is_change_file == full_load:
            kind = "a change file's" if dfm.is_change_file else "a full load's"
            raise LoadError(f"its .dfm is {kind}", key=load.key, table=self.name, load_id=load.id)
        conn.execute(
            text(
                "SELECT set_config('data_platform.load_id', :id, true), "
                "set_config('work_mem', :mem, true)"
            ),
            {"id": str(load.id), "mem": get_settings().load_work_mem.replace(" ", "")},
        )
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            target = describe_target(cursor, self.db_schema, self.db_table)
            applier = FileApplier(
                cursor,
                target,
                dfm,
                key=load.key,
                load_id=load.id,
                table_name=self.name,
                table_id=self.table_id,
                sparse_updates=self.sparse_updates,
                reopen=lambda: zone.open(key, expect),
            )
            try:
                source = zone.open(key, expect)
            except ObjectChangedError:
                raise
            except StorageError as exc:
                raise applier.error(f"file is gone from {zone_name}: {exc}") from exc
            with DataFileReader(source, load.key) as reader:
                if full_load:
                    if truncate is None:
                        truncate = is_snapshot_start(load.key)
                    result = applier.apply_full_load(reader, truncate=truncate)
                else:
                    result = applier.apply_changes(reader)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            raise  # the connection, not the file
        except psycopg2.Error as exc:
            message = (exc.diag.message_primary or str(exc)).strip()
            raise LoadError(message, key=load.key, table=self.name, load_id=load.id) from exc
        finally:
            cursor.close()
        return result.rows


def companions(key: str) -> list[str]:
    """Files that travel with a data file: its .dfm."""
    return [dfm_key(key)]
