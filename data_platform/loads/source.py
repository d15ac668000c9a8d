"""What a source tells the one worker (`data_platform.loads.worker`), and what it gets.

A source (Qlik Replicate files, DMAP datasets, ...) is a `Source`: its name (the
`source_tables.source` value, a `SourceName`), how it records new files as loads (`scan`,
whose result is a `ScanResult`), which files travel with a data file (`companions`), what
landing a file again does (`consequence`), and a `TableLoader` per table and run, which
orders the table's ready loads and applies one load inside the load's transaction. The
worker does everything else, the same for every source: table selection, the advisory
lock, recovery of interrupted loads, claim, archive or error, replaced files, retry.
ADR: doc/adr/0007-one-worker-for-every-source.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import Field, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Protocol

from sqlalchemy import Connection, text

from data_platform.db.models import ERROR_STATES, LoadStatus, SourceName
from data_platform.errors import LoadError, StorageError
from data_platform.storage import ObjectChangedError, ObjectInfo

if TYPE_CHECKING:
    from data_platform.loads.worker import TableWorker


@dataclass(frozen=True)
class TableRef:
    """A source table as the worker hands it to its source."""

    id: int
    name: str  # platform name, e.g. cubic_ods_qlik__edw_sample (logs, messages)
    db_schema: str
    db_table: str
    sparse_updates: bool = True
    is_raw: bool = False  # every column text (onboarded with --raw)


@dataclass(frozen=True)
class PendingLoad:
    """A load of a table that is not archived or errored yet."""

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


@dataclass
class IngestResult:
    archived: int = 0
    errored: int = 0
    superseded: int = 0
    replaced: int = 0  # files replaced in incoming after the scan: their new version is a load
    rebuilds: int = 0  # tables rebuilt from their archive (a Qlik late full-load part)
    rows: int = 0
    dead_letters: int = 0  # records the applied loads could not make rows of (new ones)
    busy_tables: list[str] = field(default_factory=list)  # another worker had them
    blocked_tables: list[str] = field(default_factory=list)  # waiting on an errored load
    errors: list[str] = field(default_factory=list)


class TableLoader:
    """How a source loads one table during one run; the defaults suit a source whose
    loads are independent files applied in key order. Subclasses override what differs.

    `worker` gives the shared steps: `claim`, `error`, `replaced`, `supersede`,
    `finish`, `source_file`."""

    def __init__(self, worker: TableWorker) -> None:
        self.worker = worker
        self.table = worker.table
        # New dead letters (rows of dead_letters) the last apply() wrote; the worker adds
        # them to IngestResult.dead_letters once that load's transaction commits.
        self.dead_letters = 0

    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        """Must the table wait? By default while any of its loads failed (order matters
        until an operator retries or fixes it)."""
        return self.worker.has_load_in(ERROR_STATES)

    def prepare(self, ready: Sequence[PendingLoad]) -> bool:
        """A hook before loads are applied (supersede, rebuild, a job hand-off). True when
        it changed loads, so the worker looks at the table again before applying."""
        return False

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        """The order to apply ready loads in: by key, then landing time."""
        return sorted(ready, key=lambda load: (load.key, load.modified))

    def refused(self, load: PendingLoad) -> Exception | None:
        """A LoadError to fail `load` with before it is read (e.g. the Glue job failed
        it), else None."""
        return None

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        """Apply one load inside `conn`'s transaction (the worker commits or rolls back).
        Returns the number of rows read. Raises LoadError for a bad file (the load is
        errored), ObjectChangedError when the recorded version is gone (the load is
        archived unapplied); anything else leaves the load ready and stops the table."""
        raise NotImplementedError

    def not_applied(self, load: PendingLoad) -> None:
        """Called when `load` ends without being applied (errored or replaced)."""

    # --- shared steps of apply() ------------------------------------------------------

    def load_error(self, load: PendingLoad) -> Callable[..., LoadError]:
        """The LoadError factory for `load`: (message, line=None, column=None), naming
        the file, the table and the load."""

        def error(message: str, line: int | None = None, column: str | None = None) -> LoadError:
            return LoadError(
                message,
                key=load.key,
                line=line,
                column=column,
                table=self.table.name,
                load_id=load.id,
            )

        return error

    def open_file(self, conn: Connection, load: PendingLoad) -> tuple[BinaryIO, Callable]:
        """Start applying `load`: its id set for the rows' lineage default (SET LOCAL
        data_platform.load_id), its file opened at the recorded version. Returns (the
        body, a function that opens it again from its start, for error locations).
        Raises ObjectChangedError when the version is gone, LoadError when the file is."""
        conn.execute(
            text("SELECT set_config('data_platform.load_id', :id, true)"), {"id": str(load.id)}
        )
        zone, key, expect = self.worker.source_file(load)
        try:
            body = zone.open(key, expect)
        except ObjectChangedError:
            raise
        except StorageError as exc:
            raise self.load_error(load)(f"file is gone from incoming: {exc}") from exc
        return body, lambda: zone.open(key, expect)


class ScanResult(Protocol):
    """What a source's scan recorded (`loads.scan.FileScanResult`, or a dataclass of the
    source's own with more to say): `run` counts `new_loads`, prints `summary()` then
    `notes()` (indented lines, none when all is well), and `run --json` writes its fields
    (`dataclasses.asdict`), so it is a dataclass."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def new_loads(self) -> int:
        """Loads the scan recorded."""
        ...

    def summary(self) -> str:
        """What it recorded, in one clause: `3 new load(s)`."""
        ...

    def notes(self) -> list[str]:
        """Lines about what it left alone (files waiting for onboarding, ...)."""
        ...


@dataclass(frozen=True)
class FileSource:
    """A `Source` whose data files travel alone: its name, its scan and its loader.
    `transforms`: the dbt models read its tables (`data-platform run` rebuilds them
    after new loads). `relanded`: what landing one of its files again does, in words."""

    name: SourceName
    scan_files: Callable[[], ScanResult]
    loader_class: type[TableLoader]
    transforms: bool = False
    relanded: str = "a new load, applied again"

    def scan(self) -> ScanResult:
        return self.scan_files()

    def companions(self, key: str) -> list[str]:
        return []

    def consequence(self, key: str) -> str:
        return self.relanded

    def loader(self, worker: TableWorker) -> TableLoader:
        return self.loader_class(worker)


class Source(Protocol):
    """A source of the one worker: what it is called, how it scans, which files travel
    together, how it loads a table (ADR 0007)."""

    @property
    def name(self) -> SourceName:
        """Its source_tables.source."""
        ...

    def scan(self) -> ScanResult:
        """Record the new files of every active table as `ready` loads."""
        ...

    def companions(self, key: str) -> list[str]:
        """Keys of the files that move with data file `key` (a .dfm, say)."""
        ...

    def consequence(self, key: str) -> str:
        """What landing `key` again (a file ingested before) does, in words: told before
        `storage upload` lands it (`data_platform.loads.relanding`)."""
        ...

    def loader(self, worker: TableWorker) -> TableLoader:
        """The TableLoader for the worker's table, for one run."""
        ...


if TYPE_CHECKING:
    # mypy checks a protocol only where one is expected: here, that a FileSource (DMAP,
    # Kafka, pedestrian, totesys) is a Source.
    _: type[Source] = FileSource
