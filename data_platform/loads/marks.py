"""Where each landing resumes: one row per (source, item) in `landing_marks` (revision
0016), for every source the platform lands itself. The position is a JSON object only its
source reads and writes (a totesys table's horizon, a DMAP feed's last_updated, the
pedestrian counts' last day); this module stores it and never looks inside. A mark moves
only after the file that reached it is in incoming, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert

from data_platform.db.models import LandingMark, SourceName


def read_marks(conn: Connection, source: SourceName) -> dict[str, dict[str, Any]]:
    """Every mark of `source`: item -> its position."""
    rows = conn.execute(
        select(LandingMark.item, LandingMark.mark).where(LandingMark.source == source)
    )
    return {item: mark for item, mark in rows}


def read_mark(conn: Connection, source: SourceName, item: str) -> dict[str, Any] | None:
    """The position of `source`'s `item`, or None when it has none yet."""
    return conn.scalar(
        select(LandingMark.mark).where(LandingMark.source == source, LandingMark.item == item)
    )


def last_marked(conn: Connection, source: SourceName) -> datetime | None:
    """When a mark of `source` last moved; None when it has none."""
    return conn.scalar(select(func.max(LandingMark.marked_at)).where(LandingMark.source == source))


def write_mark(
    conn: Connection,
    source: SourceName,
    item: str,
    mark: dict[str, Any],
    *,
    last_key: str | None = None,
    rows: int | None = None,
    marked_at: datetime | None = None,
) -> None:
    """Set the position of `source`'s `item` to `mark` (JSON-ready: times as ISO text),
    inside the caller's transaction. `last_key`/`rows`: the file that moved it; a mark
    moved without a file (None) keeps the last file's key and rows. `marked_at`: when
    (default the transaction's time)."""
    values: dict[str, Any] = {"mark": mark, "last_key": last_key, "rows": rows}
    values["marked_at"] = marked_at if marked_at is not None else func.now()
    statement = insert(LandingMark).values(source=source, item=item, **values)
    moved = ["mark", "marked_at"] if last_key is None else list(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[LandingMark.source, LandingMark.item],
            set_={name: statement.excluded[name] for name in moved},
        )
    )
