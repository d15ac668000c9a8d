"""The one worker: ingest the ready loads of a source's tables, one worker per table.

Per table, under its advisory lock: loads left in flight by a dead worker are recovered,
unfinished moves are finished, and while the source's loader says the table may go on,
its ready loads are claimed and applied in the loader's order, each in one transaction,
then archived; a bad file is errored (file, line, column) and the table waits for a
retry; a file replaced after the scan is archived unapplied (its new version is a load
of its own). A failure that is not the file's (database, storage, a bug) puts the load
back to `ready` and stops that table; the other tables go on. Whose fault a failure is,
the worker decides, the same for every source (`data_platform.loads.faults`).

Where a row of a file becomes a table row: `TableLoader.apply` of the source
(`data_platform/batch/<source>/source.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy import Engine, func, select, update

from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.db.models import Load, LoadSnapshot, LoadStatus, SourceTable, TableSnapshot
from data_platform.errors import DataPlatformError, LoadError, exit_code_for
from data_platform.loads import faults, hooks, table_swap
from data_platform.loads.locks import table_lock
from data_platform.loads.moves import find_archived, finish_load
from data_platform.loads.source import IngestResult, PendingLoad, Source, TableLoader, TableRef
from data_platform.loads.state import transition
from data_platform.storage import ObjectChangedError, ObjectInfo, ZoneStore, get_zone

log = logging.getLogger(__name__)

S = LoadStatus
UNFINISHED = (S.READY_FOR_ARCHIVING, S.ARCHIVING, S.READY_FOR_ERRORING, S.ERRORING)
FINAL = (S.ARCHIVED, S.ERRORED, S.SKIPPED)  # nothing to do (errored waits for a retry)


def ingest(source: Source, tables: list[str] | None = None) -> IngestResult:
    """Apply every ready load of every active table of `source` (or of `tables`, by
    platform name). Safe to run in several processes at once.

    Raises DataPlatformError (with the most specific exit code of the causes) when a
    table stopped for a reason that is not a file's; the other tables went on."""
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
                SourceTable.is_raw,
            )
            .where(SourceTable.source == source.name, SourceTable.is_active)
            .where(
                select(Load.id)
                .where(Load.table_id == SourceTable.id, Load.status.not_in(FINAL))
                .exists()
            )
            .order_by(SourceTable.name)
        )
        if tables:
            query = query.where(SourceTable.name.in_(tables))
        candidates = [TableRef(*row) for row in conn.execute(query)]
    failures: list[tuple[str, BaseException]] = []
    for table in candidates:
        try:
            with table_lock(engine, table.id) as got:
                if not got:
                    result.busy_tables.append(table.name)
                    continue
                TableWorker(engine, source, table, result).run()
        except Exception as exc:
            # Not a file's fault (its load went back to ready): the other tables go on,
            # and the run still ends in an error.
            log.exception("ingest of %s stopped: %s", table.name, exc, extra={"table": table.name})
            failures.append((table.name, exc))
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


class TableWorker:
    """Works one table, holding its lock. The source's loader calls back into the shared
    steps below (claim, error, replaced, supersede, finish, source_file)."""

    def __init__(self, engine: Engine, source: Source, table: TableRef, result: IngestResult):
        self.engine = engine
        self.source = source
        self.table = table
        self.result = result
        self.extra: dict[str, object] = {"table": table.name, "source": source.name}
        self.loader: TableLoader = source.loader(self)

    def run(self) -> None:
        self.recover()
        while True:
            loads = self.pending()
            for load in loads:
                if load.status in UNFINISHED:
                    self.finish(load, load.status)
            if self.loader.blocked(loads):
                self.result.blocked_tables.append(self.table.name)
                log.warning("waiting: an errored load must be retried first", extra=self.extra)
                return
            ready = [load for load in loads if load.status == S.READY]
            if not ready:
                return
            if self.loader.prepare(ready):
                continue
            # Apply in order until a load does not apply (the table then waits, or the
            # pass starts again), then look again for what a concurrent scan added.
            for load in self.loader.order(ready):
                if not self.process(load):
                    break

    # --- queries ------------------------------------------------------------------------

    def pending(self) -> list[PendingLoad]:
        """The table's loads that are not archived or errored, by key and landing time."""
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
                .where(Load.table_id == self.table.id, Load.status.not_in(FINAL))
                .order_by(Load.s3_key, Load.s3_modified)
            ).all()
        return [
            PendingLoad(id_, key, S(status), snap, raw, when, size, modified, etag)
            for id_, key, status, snap, raw, when, size, modified, etag in rows
        ]

    def has_load_in(self, statuses: Iterable[LoadStatus], snapshot_id: int | None = None) -> bool:
        """Does the table have a load in one of `statuses` (in snapshot `snapshot_id`)?"""
        query = (
            select(Load.id)
            .outerjoin(LoadSnapshot, LoadSnapshot.load_id == Load.id)
            .where(Load.table_id == self.table.id, Load.status.in_(list(statuses)))
        )
        if snapshot_id is not None:
            query = query.where(LoadSnapshot.snapshot_id == snapshot_id)
        with self.engine.connect() as conn:
            return conn.scalar(query.limit(1)) is not None

    def source_file(
        self, load: PendingLoad, zone_name: str = "incoming"
    ) -> tuple[ZoneStore, str, ObjectInfo | None]:
        """Where to read `load`'s file: (zone, key, version to insist on). In incoming,
        the version the load recorded; in the archive, the copy filed under the load."""
        zone = get_zone(zone_name)
        if zone_name == "incoming":
            return zone, load.key, load.version
        return zone, find_archived(load.key, load.id) or load.key, None

    # --- state changes ------------------------------------------------------------------

    def recover(self) -> None:
        """We hold the table lock, so loads left in flight belong to a dead worker, and
        so does a fresh table its COPY streams committed before their swap."""
        with self.engine.begin() as conn:
            with dbapi_cursor(conn) as cur:
                if table_swap.drop_leftover(cur, self.table.db_schema, str(self.table.id)):
                    log.warning(
                        "dropped dp_new_%s, a new snapshot's table left by a stopped load",
                        self.table.id,
                        extra=self.extra,
                    )
            stale = conn.execute(
                select(Load.id, Load.status).where(
                    Load.table_id == self.table.id,
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

    def claim(self, loads: Iterable[PendingLoad]) -> None:
        """ready -> ingesting, committed: a worker killed from here on leaves the loads for
        `recover`."""
        with self.engine.begin() as conn:
            for load in loads:
                transition(conn, load.id, S.READY, S.INGESTING)

    def release(self, loads: Iterable[PendingLoad]) -> None:
        """ingesting -> ready: not applied, for a reason that is not the file's."""
        with self.engine.begin() as conn:
            for load in loads:
                transition(conn, load.id, S.INGESTING, S.READY)

    def finish(self, load: PendingLoad, status: LoadStatus) -> None:
        done = finish_load(
            self.engine, load.id, load.version, status, self.source.companions, self.table.name
        )
        if done == S.ARCHIVED:
            self.result.archived += 1
        elif done == S.ERRORED:
            self.result.errored += 1

    def error(self, load: PendingLoad, error: LoadError) -> None:
        """ingesting -> errored, with the error's message (file, line, column)."""
        message = error.describe()
        self.loader.not_applied(load)
        log.error("load failed: %s", message, extra={**self.extra, "load_id": load.id})
        with self.engine.begin() as conn:
            transition(conn, load.id, S.INGESTING, S.READY_FOR_ERRORING, error=error)
        self.result.errors.append(message)
        # Published before the load can reach `errored`: only from there can it be retried
        # or skipped (which resolves an alert on it), so a listener's alert is recorded
        # before its resolution, never after it.
        hooks.publish(hooks.LoadErrored(load.id, self.table.name, message))
        self.finish(load, S.READY_FOR_ERRORING)

    def replaced(self, load: PendingLoad) -> None:
        """The file under the load's key is no longer the version it recorded (replaced in
        incoming after the scan): the load is archived without applying anything, and the
        new version is recorded as a load of its own by the next scan. (The old version is
        gone from the store unless the incoming bucket keeps versions.)"""
        self.loader.not_applied(load)
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

    def supersede(self, load: PendingLoad, why: str) -> None:
        """ready -> archived without applying: a newer load makes it moot (`why`)."""
        self.claim([load])
        with self.engine.begin() as conn:
            transition(conn, load.id, S.INGESTING, S.READY_FOR_ARCHIVING)
        log.warning(
            "load %s (%s): %s; archived without applying",
            load.id,
            load.key,
            why,
            extra={**self.extra, "load_id": load.id},
        )
        self.result.superseded += 1
        self.finish(load, S.READY_FOR_ARCHIVING)

    def process(self, load: PendingLoad) -> bool:
        """Apply one load and archive it (True), or error or replace it (False)."""
        extra = {**self.extra, "load_id": load.id}
        self.claim([load])
        refused = self.loader.refused(load)
        if isinstance(refused, LoadError):
            self.error(load, refused)
            return False
        log.info("ingesting %s", load.key, extra=extra)
        try:
            self.loader.dead_letters = 0
            with self.engine.connect() as conn, conn.begin():
                rows = self.applying(load, lambda: self.loader.apply(conn, load))
                conn.execute(update(Load).where(Load.id == load.id).values(rows=rows))
                transition(conn, load.id, S.INGESTING, S.READY_FOR_ARCHIVING)
        except ObjectChangedError:
            self.replaced(load)
            return False  # a new pass: the loader may owe the key a fresh start
        except LoadError as exc:  # the file's fault (`applying`)
            self.error(load, exc)
            return False
        except BaseException:
            # Not the file's fault (database gone, permission denied, storage down, a
            # bug): leave the load for the next run instead of erroring it.
            self.release([load])
            raise
        self.result.rows += rows
        self.result.dead_letters += self.loader.dead_letters
        log.info("applied %d row(s) from %s", rows, load.key, extra=extra)
        self.finish(load, S.READY_FOR_ARCHIVING)
        return True

    def applying(self, load: PendingLoad, apply: Callable[[], int]) -> int:
        """Run `apply` (the loader applying `load`; Qlik's rebuild calls it for each file
        it applies again) and classify its failure, once for every source
        (`faults.is_file_fault`): the file's fault is raised as a LoadError naming file,
        table and load (the load is errored); the platform's as what stops the pass (a
        database failure as DatabaseError, exit code 3, raised from it; anything else as
        it is). ObjectChangedError passes through. Only what the loader raised is
        classified: a failure of the worker's own bookkeeping is never the file's."""
        try:
            return apply()
        except ObjectChangedError:
            raise
        except Exception as exc:
            if faults.is_file_fault(exc):
                error = faults.as_load_error(exc, self.loader.load_error(load))
                if error is exc:
                    raise
                raise error from exc
            stop = faults.platform_error(exc, f"{load.key} (load {load.id})")
            if stop is None:
                raise
            raise stop from exc
