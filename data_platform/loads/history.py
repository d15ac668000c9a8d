"""What an operator sees of loads: a list, one load's whole history, and skipping a load
that must never be applied (`data-platform loads list | show | skip`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data_platform.db.engine import get_engine
from data_platform.db.models import (
    DeadLetter,
    Load,
    LoadEvent,
    LoadSnapshot,
    LoadStatus,
    SourceTable,
)
from data_platform.errors import DataPlatformError
from data_platform.loads.moves import error_key, find_archived, find_errored, move_out
from data_platform.loads.retry import operator, recovery, source_of_load
from data_platform.loads.source import Source
from data_platform.loads.state import ERROR_COLUMNS, LoadErrorParts, load_file, transition

log = logging.getLogger(__name__)

S = LoadStatus


@dataclass(frozen=True)
class LoadRow:
    id: int
    table: str
    status: str
    key: str
    size: int
    rows: int | None
    modified: datetime
    updated_at: datetime
    error: str | None
    error_parts: LoadErrorParts | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "table": self.table,
            "status": self.status,
            "key": self.key,
            "size": self.size,
            "rows": self.rows,
            "modified": self.modified.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "error": self.error,
            "error_parts": self.error_parts.to_dict() if self.error_parts else None,
        }


def list_loads(
    table_ids: list[int] | None = None, statuses: list[str] | None = None, limit: int = 50
) -> list[LoadRow]:
    """The newest `limit` loads (of `table_ids`, in `statuses`), newest first."""
    query = (
        select(
            Load.id,
            SourceTable.name,
            Load.status,
            Load.s3_key,
            Load.s3_size,
            Load.rows,
            Load.s3_modified,
            Load.updated_at,
            *ERROR_COLUMNS,
        )
        .join(SourceTable, SourceTable.id == Load.table_id)
        .order_by(Load.id.desc())
        .limit(limit)
    )
    if table_ids:
        query = query.where(Load.table_id.in_(table_ids))
    if statuses:
        query = query.where(Load.status.in_(statuses))
    with get_engine().connect() as conn:
        return [
            LoadRow(
                row.id,
                row.name,
                row.status,
                row.s3_key,
                row.s3_size,
                row.rows,
                row.s3_modified,
                row.updated_at,
                row.error,
                error_parts=LoadErrorParts.of(row),
            )
            for row in conn.execute(query)
        ]


@dataclass(frozen=True)
class Event:
    at: datetime
    from_status: str
    to_status: str
    actor: str | None
    reason: str | None


@dataclass(frozen=True)
class DeadLetterRow:
    """A record of the load's file that is not a row (dead_letters, revision 0012)."""

    record_key: list
    line: int
    field: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "record_key": self.record_key,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
        }


# The dead letters `loads show` lists of one load (all are counted).
DEAD_LETTERS_SHOWN = 50


@dataclass
class LoadDetail:
    load: LoadRow
    etag: str | None
    snapshot_id: int | None
    file: str  # where the file is now: zone and key
    events: list[Event] = field(default_factory=list)
    dead_letter_count: int = 0  # records this load dead-lettered first
    dead_letters: list[DeadLetterRow] = field(default_factory=list)  # the first, by line

    def to_dict(self) -> dict[str, object]:
        return {
            **self.load.to_dict(),
            "etag": self.etag,
            "snapshot_id": self.snapshot_id,
            "file": self.file,
            "events": [
                {
                    "at": e.at.isoformat(),
                    "from": e.from_status,
                    "to": e.to_status,
                    "actor": e.actor,
                    "reason": e.reason,
                }
                for e in self.events
            ],
            "dead_letter_count": self.dead_letter_count,
            "dead_letters": [d.to_dict() for d in self.dead_letters],
        }

    def render(self) -> str:
        load = self.load
        rows = "not applied" if load.rows is None else f"{load.rows:,} row(s)"
        modified = f"{load.modified:%Y-%m-%d %H:%M:%S %Z}"
        lines = [
            f"load {load.id} ({load.table}): {load.status}",
            f"  file:     {load.key} ({load.size:,} bytes, modified {modified}), {rows}",
            f"  now in:   {self.file}",
        ]
        if self.snapshot_id is not None:
            lines.append(f"  snapshot: {self.snapshot_id}")
        if load.error:
            lines.append(f"  error:    {load.error}")
        if load.status == LoadStatus.ERRORED:
            lines.append(f"  {recovery(load.id, load.key)}")
        if self.dead_letter_count:
            lines.append(
                f"  dead letters: {self.dead_letter_count} record(s) of its file are not rows "
                "(each counted once, by the load that first carried it):"
            )
            for dead in self.dead_letters:
                lines.append(f"    line {dead.line} {dead.record_key}: {dead.reason}")
            if self.dead_letter_count > len(self.dead_letters):
                lines.append(
                    f"    ... and {self.dead_letter_count - len(self.dead_letters)} more "
                    "(table dead_letters)"
                )
        lines.append("  history:")
        for event in self.events:
            who = f" by {event.actor}" if event.actor else ""
            why = f": {event.reason}" if event.reason else ""
            lines.append(
                f"    {event.at:%Y-%m-%d %H:%M:%S.%f %Z}  {event.from_status} -> "
                f"{event.to_status}{who}{why}"
            )
        if not self.events:
            lines.append("    (no recorded transitions)")
        return "\n".join(lines)


def load_detail(load_id: int) -> LoadDetail:
    """One load with every transition. Raises DataPlatformError for an unknown load."""
    with get_engine().connect() as conn, Session(conn) as session:
        load = session.get(Load, load_id)
        if load is None:
            raise DataPlatformError(f"no load {load_id}")
        table = session.get(SourceTable, load.table_id)
        assert table is not None
        snapshot_id = session.scalar(
            select(LoadSnapshot.snapshot_id).where(LoadSnapshot.load_id == load_id)
        )
        events = [
            Event(e.at, e.from_status, e.to_status, e.actor, e.reason)
            for e in session.scalars(
                select(LoadEvent).where(LoadEvent.load_id == load_id).order_by(LoadEvent.id)
            )
        ]
        dead_count = session.scalar(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.load_id == load_id)
        )
        dead = [
            DeadLetterRow(d.record_key, d.line, d.field, d.reason)
            for d in session.scalars(
                select(DeadLetter)
                .where(DeadLetter.load_id == load_id)
                .order_by(DeadLetter.line, DeadLetter.id)
                .limit(DEAD_LETTERS_SHOWN)
            )
        ]
        row = LoadRow(
            load.id,
            table.name,
            LoadStatus(load.status).value,
            load.s3_key,
            load.s3_size,
            load.rows,
            load.s3_modified,
            load.updated_at,
            load.error,
            LoadErrorParts.of(load),
        )
        return LoadDetail(
            row, load.s3_etag, snapshot_id, _where(load), events, dead_count or 0, dead
        )


def _where(load: Load) -> str:
    """The zone and key the load's file is in now, as far as the stores tell."""
    status = LoadStatus(load.status)
    if status == S.ARCHIVED:
        key = find_archived(load.s3_key, load.id)
        return f"archive: {key}" if key else "archive: (not found)"
    if status in (S.ERRORED, S.SKIPPED):
        key = find_errored(load.s3_key, load.s3_modified)
        return f"error: {key}" if key else "error: (not found)"
    return f"incoming: {load.s3_key}"


def skip_load(
    load_id: int, reason: str, actor: str | None = None, *, sources: Iterable[Source] = ()
) -> str:
    """Mark a ready or errored load `skipped`: it is never applied, its file stays (or is
    moved) in the error zone, and the table's later loads proceed. Records who and why.
    A ready load's file moves with its companions, those of its source among `sources`
    (the caller's: `data_platform.run.all_sources()`).

    Raises DataPlatformError for an unknown load, one in another state, or no reason."""
    if not reason.strip():
        raise DataPlatformError("a skip needs a reason (--reason)")
    actor = actor or operator()
    engine = get_engine()
    with engine.connect() as conn:
        key, status, landed = load_file(conn, load_id)
    if status not in (S.READY, S.ERRORED):
        raise DataPlatformError(
            f"load {load_id} is {status.value}; only ready or errored loads can be skipped"
        )
    if status == S.READY:
        # Into the error zone first (keyed by its landing time, as an errored file).
        names = [key, *source_of_load(load_id, sources).companions(key)]
        move_out(names, "error", lambda name: error_key(name, landed))
    with engine.begin() as conn:
        transition(conn, load_id, status, S.SKIPPED, actor=actor, reason=reason.strip())
    log.warning(
        "load %s skipped by %s: %s", load_id, actor, reason.strip(), extra={"load_id": load_id}
    )
    if status == S.ERRORED:
        return "its file stays in the error zone"
    return "its file moved to the error zone"
