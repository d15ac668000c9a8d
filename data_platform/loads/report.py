"""What the platform holds: per source table, loads by status and the latest error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import DateTime, and_, cast, func, select
from sqlalchemy.orm import Session

from data_platform.db.models import (
    DeadLetter,
    DmapDataset,
    DmapFeed,
    Landing,
    LandingMark,
    Load,
    LoadStatus,
    SourceName,
    SourceTable,
    TableSnapshot,
)
from data_platform.loads.moves import error_key
from data_platform.loads.schema_changes import MARKER, evolve_command
from data_platform.loads.state import ERROR_COLUMNS, LoadErrorParts
from data_platform.loads.tables import source_name


@dataclass
class TableStatus:
    name: str
    s3_prefix: str
    is_active: bool
    source: SourceName
    counts: dict[str, int] = field(default_factory=dict)
    latest_error: str | None = None
    latest_error_parts: LoadErrorParts | None = None
    latest_error_load_id: int | None = None
    latest_error_file: str | None = None  # its key in the error zone, once it is errored
    latest_error_key: str | None = None  # its key in incoming, once it is errored
    snapshot: datetime | None = None  # the current snapshot (its LOAD00000001's time)
    rebuilds: int = 0  # times the current snapshot was rebuilt (a late full-load part)
    rebuilt_at: datetime | None = None
    schema_change_loads: int = 0  # loads errored by a schema change: the table waits
    evolve_command: str | None = None  # what resolves it (with --apply)
    dead_letters: int = 0  # records its loads could not make rows of (dead_letters)
    latest_dead_letter_load_id: int | None = None  # the newest load that gave one

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.name,
            "source": self.source,
            "s3_prefix": self.s3_prefix,
            "is_active": self.is_active,
            "loads": self.counts,
            "latest_error": self.latest_error,
            "latest_error_parts": self.latest_error_parts.to_dict()
            if self.latest_error_parts
            else None,
            "latest_error_load_id": self.latest_error_load_id,
            "latest_error_file": self.latest_error_file,
            "snapshot": self.snapshot.isoformat() if self.snapshot else None,
            "snapshot_rebuilds": self.rebuilds,
            "snapshot_rebuilt_at": self.rebuilt_at.isoformat() if self.rebuilt_at else None,
            "schema_change_loads": self.schema_change_loads,
            "evolve_command": self.evolve_command,
            "dead_letters": self.dead_letters,
            "latest_dead_letter_load_id": self.latest_dead_letter_load_id,
        }


def table_statuses(session: Session) -> list[TableStatus]:
    tables = {
        t.id: TableStatus(t.name, t.s3_prefix, t.is_active, t.source)
        for t in session.scalars(select(SourceTable).order_by(SourceTable.source, SourceTable.name))
    }
    rows = session.execute(
        select(Load.table_id, Load.status, func.count()).group_by(Load.table_id, Load.status)
    )
    for table_id, status, count in rows:
        tables[table_id].counts[LoadStatus(status).value] = count
    latest = (
        select(Load.table_id, Load.id, Load.status, Load.s3_key, Load.s3_modified, *ERROR_COLUMNS)
        .where(
            Load.error.is_not(None), Load.status.not_in([LoadStatus.ARCHIVED, LoadStatus.SKIPPED])
        )
        .distinct(Load.table_id)
        .order_by(Load.table_id, Load.updated_at.desc(), Load.id.desc())
    )
    for row in session.execute(latest):
        table = tables[row.table_id]
        table.latest_error = row.error
        table.latest_error_parts = LoadErrorParts.of(row)
        table.latest_error_load_id = row.id
        if row.status == LoadStatus.ERRORED:
            table.latest_error_file = error_key(row.s3_key, row.s3_modified)
            table.latest_error_key = row.s3_key
    waiting = (
        select(Load.table_id, func.count())
        .where(Load.status == LoadStatus.ERRORED, Load.error.contains(MARKER, autoescape=True))
        .group_by(Load.table_id)
    )
    for table_id, count in session.execute(waiting):
        status = tables[table_id]
        status.schema_change_loads = count
        command = evolve_command(status.source, source_name(status.s3_prefix))
        status.evolve_command = f"{command} --apply" if command else None
    dead = select(DeadLetter.table_id, func.count(), func.max(DeadLetter.load_id)).group_by(
        DeadLetter.table_id
    )
    for table_id, count, load_id in session.execute(dead):
        tables[table_id].dead_letters = count
        tables[table_id].latest_dead_letter_load_id = load_id
    snapshots = (
        select(
            TableSnapshot.table_id,
            TableSnapshot.snapshot,
            TableSnapshot.rebuilds,
            TableSnapshot.rebuilt_at,
        )
        .distinct(TableSnapshot.table_id)
        .order_by(TableSnapshot.table_id, TableSnapshot.snapshot.desc())
    )
    for table_id, snapshot, rebuilds, rebuilt_at in session.execute(snapshots):
        tables[table_id].snapshot = snapshot
        tables[table_id].rebuilds = rebuilds
        tables[table_id].rebuilt_at = rebuilt_at
    return list(tables.values())


@dataclass
class FeedStatus:
    relative_url: str
    is_active: bool
    mark: datetime | None  # the newest last_updated fetched (the vendor's naive time)
    last_fetched_at: datetime | None
    last_error: str | None
    datasets: int

    def to_dict(self) -> dict[str, object]:
        return {
            "feed": self.relative_url,
            "is_active": self.is_active,
            "mark": self.mark.isoformat() if self.mark else None,
            "last_fetched_at": self.last_fetched_at.isoformat() if self.last_fetched_at else None,
            "last_error": self.last_error,
            "datasets": self.datasets,
        }


def feed_statuses(session: Session) -> list[FeedStatus]:
    """Every DMAP feed: its mark, last fetch and error, and how many datasets it gave."""
    datasets = (
        select(func.count())
        .where(DmapDataset.feed_id == DmapFeed.id)
        .correlate(DmapFeed)
        .scalar_subquery()
    )
    # The feed's mark is its landing mark (revision 0016): the vendor's naive time.
    mark = cast(LandingMark.mark["last_updated"].astext, DateTime(timezone=False))
    rows = session.execute(
        select(
            DmapFeed.relative_url,
            DmapFeed.is_active,
            mark,
            DmapFeed.last_fetched_at,
            DmapFeed.last_error,
            datasets,
        )
        .outerjoin(
            LandingMark,
            and_(LandingMark.source == "cubic_dmap", LandingMark.item == DmapFeed.relative_url),
        )
        .order_by(DmapFeed.relative_url)
    )
    return [FeedStatus(*row) for row in rows]


@dataclass
class LandingStatus:
    """A source's last landing (`landings`): when, the files it landed, why it failed."""

    source: SourceName
    started_at: datetime
    ended_at: datetime
    files: int | None
    error: str | None
    succeeded_at: datetime | None

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "files": self.files,
            "error": self.error,
            "succeeded_at": self.succeeded_at.isoformat() if self.succeeded_at else None,
        }


def landing_statuses(session: Session) -> list[LandingStatus]:
    """Every source's last landing, by source (none before revision 0016)."""
    if not session.scalar(select(func.to_regclass("landings"))):
        return []
    rows = session.execute(
        select(
            Landing.source,
            Landing.started_at,
            Landing.ended_at,
            Landing.files,
            Landing.error,
            Landing.succeeded_at,
        ).order_by(Landing.source)
    )
    return [LandingStatus(*row) for row in rows]
