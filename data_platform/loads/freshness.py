"""How far behind each table is: its data's age and its backlog (issue 25).

A table is judged by two figures, not by the age of its last success alone:

- **data age**: since the newest file applied to it landed (the landing time of its
  newest archived load): how old the newest data it holds is;
- **backlog**: the files waiting for it (recorded, not yet archived or errored), their
  bytes, and since when the oldest of them waits.

Its state:

- `stale`: its data is older than its expectation (FRESHNESS_HOURS, or
  FRESHNESS_HOURS_BY_TABLE under any of its names);
- `behind`: not stale, but a file has waited longer than FRESHNESS_BEHIND_MINUTES (a
  backlog the platform is not getting through), or, for totesys, a row the source stamped
  has waited that long without being extracted (its backlog at the source, probed by
  `run`: `batch.totesys.backlog`, `Freshness.with_source_backlog`);
- `never`: nothing applied yet and nothing waiting; `inactive`: paused; else `ok`.

Read by `status`, the operations page, `/metrics` and the alerts
(`data_platform.alerts.freshness`); dbt's source freshness reads the same landing times
(transform/models/pedestrian/_sources.yml, `loaded_at_query`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from data_platform.db.models import SourceTable
from data_platform.loads.tables import names_of
from data_platform.settings import Settings

State = Literal["ok", "behind", "stale", "never", "inactive"]

# Loads recorded and not finished: a table's backlog.
WAITING = (
    "ready",
    "ingesting",
    "ready_for_archiving",
    "archiving",
)


@dataclass(frozen=True)
class Freshness:
    """One table's data age and backlog, and its state (see the module docstring). Ages
    in seconds at `now`; bytes as the store reports them."""

    table: str
    source: str
    state: State
    expected_hours: float
    data_age_seconds: float | None
    backlog_files: int
    backlog_bytes: int
    oldest_waiting_seconds: float | None
    # The backlog at the source, where it is probed (totesys: rows the source stamped
    # later than the newest stamp landed, and the oldest one's wait); None: not probed.
    source_rows_waiting: int | None = None
    source_oldest_waiting_seconds: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "source": self.source,
            "state": self.state,
            "expected_hours": self.expected_hours,
            "data_age_seconds": self.data_age_seconds,
            "backlog_files": self.backlog_files,
            "backlog_bytes": self.backlog_bytes,
            "oldest_waiting_seconds": self.oldest_waiting_seconds,
            "source_rows_waiting": self.source_rows_waiting,
            "source_oldest_waiting_seconds": self.source_oldest_waiting_seconds,
        }

    def line(self) -> str:
        """One line: the state and its figures."""
        age = (
            "nothing applied"
            if self.data_age_seconds is None
            else (
                f"data {self.data_age_seconds / 3600:.1f} h old (expected within "
                f"{self.expected_hours:g} h)"
            )
        )
        backlog = (
            f", {self.backlog_files} file(s) ({self.backlog_bytes:,} bytes) waiting, the oldest "
            f"{(self.oldest_waiting_seconds or 0) / 60:.0f} min"
            if self.backlog_files
            else ", no backlog"
        )
        if self.source_rows_waiting:
            backlog += (
                f", {self.source_rows_waiting:,} row(s) at the source not yet extracted, the "
                f"oldest {(self.source_oldest_waiting_seconds or 0) / 60:.0f} min"
            )
        return f"{self.table}: {self.state}: {age}{backlog}"

    def with_source_backlog(
        self, rows: int, oldest_waiting_seconds: float | None, behind_minutes: float
    ) -> Freshness:
        """This table with its backlog at the source (`rows` waiting there, the oldest for
        `oldest_waiting_seconds`): `behind` when that wait passes FRESHNESS_BEHIND_MINUTES
        (`behind_minutes`), as a file waiting in incoming would make it."""
        waited = oldest_waiting_seconds if rows else None
        state = self.state
        if state in ("ok", "never") and waited is not None and waited > behind_minutes * 60:
            state = "behind"
        return replace(
            self,
            state=state,
            source_rows_waiting=rows,
            source_oldest_waiting_seconds=waited,
        )


def expected_hours(settings: Settings, table: SourceTable) -> float:
    """The table's freshness expectation: FRESHNESS_HOURS_BY_TABLE under any of its
    names (case-insensitive), else FRESHNESS_HOURS."""
    by_name = {name.lower(): hours for name, hours in settings.freshness_hours_by_table.items()}
    for name in names_of(table):
        if name.lower() in by_name:
            return by_name[name.lower()]
    return settings.freshness_hours


def state_of(
    *,
    is_active: bool,
    data_age_seconds: float | None,
    oldest_waiting_seconds: float | None,
    expected: float,
    behind_minutes: float,
) -> State:
    """The state of a table from its figures (see the module docstring)."""
    if not is_active:
        return "inactive"
    if data_age_seconds is not None and data_age_seconds > expected * 3600:
        return "stale"
    waited = oldest_waiting_seconds
    # Nothing applied yet: a file waiting longer than the expectation is stale too.
    if data_age_seconds is None and waited is not None and waited > expected * 3600:
        return "stale"
    if oldest_waiting_seconds is not None and oldest_waiting_seconds > behind_minutes * 60:
        return "behind"
    return "never" if data_age_seconds is None else "ok"


def freshness(session: Session, settings: Settings, now: datetime) -> list[Freshness]:
    """Every registered table's freshness at `now` (timezone-aware), by source and
    name. One query over `loads`."""
    tables = session.scalars(select(SourceTable).order_by(SourceTable.source, SourceTable.name))
    rows = session.execute(
        text(
            "SELECT table_id, max(s3_modified) FILTER (WHERE status = 'archived'), "
            "count(*) FILTER (WHERE status = ANY(:waiting)), "
            "coalesce(sum(s3_size) FILTER (WHERE status = ANY(:waiting)), 0), "
            "min(s3_modified) FILTER (WHERE status = ANY(:waiting)) "
            "FROM loads GROUP BY table_id"
        ),
        {"waiting": list(WAITING)},
    ).all()
    by_table = {row[0]: row[1:] for row in rows}
    found = []
    for table in tables:
        newest, files, size, oldest = by_table.get(table.id, (None, 0, 0, None))
        age = (now - newest).total_seconds() if newest else None
        waiting = (now - oldest).total_seconds() if oldest else None
        expected = expected_hours(settings, table)
        found.append(
            Freshness(
                table=table.name,
                source=table.source,
                state=state_of(
                    is_active=table.is_active,
                    data_age_seconds=age,
                    oldest_waiting_seconds=waiting,
                    expected=expected,
                    behind_minutes=settings.freshness_behind_minutes,
                ),
                expected_hours=expected,
                data_age_seconds=age,
                backlog_files=int(files),
                backlog_bytes=int(size),
                oldest_waiting_seconds=waiting,
            )
        )
    return found
