"""Load status: every change goes through `transition`, which refuses illegal moves and
records the change in `load_events` (the load's history: `data-platform loads show`), and
resolves the load's open alerts when the load leaves its failure.

A transition is a compare-and-set on the row (`WHERE status = <from>`), so two workers can
never both move the same load: the second one's update matches no row and raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from data_platform.db.models import AlertEvent, Load, LoadEvent, LoadStatus
from data_platform.errors import DataPlatformError, InvalidTransition, LoadError

log = logging.getLogger(__name__)

S = LoadStatus

ALLOWED: dict[LoadStatus, frozenset[LoadStatus]] = {
    # Skipped: an operator decided the file must never be applied.
    S.READY: frozenset({S.INGESTING, S.SKIPPED}),
    # Back to ready: a worker died mid-load and its transaction rolled back.
    S.INGESTING: frozenset({S.READY_FOR_ARCHIVING, S.READY_FOR_ERRORING, S.READY}),
    S.READY_FOR_ARCHIVING: frozenset({S.ARCHIVING}),
    # Back to ready_for_archiving: a worker died mid-move; the move is repeated.
    S.ARCHIVING: frozenset({S.ARCHIVED, S.READY_FOR_ARCHIVING}),
    S.ARCHIVED: frozenset(),
    S.READY_FOR_ERRORING: frozenset({S.ERRORING}),
    S.ERRORING: frozenset({S.ERRORED, S.READY_FOR_ERRORING}),
    # Retry: the file was put back or fixed.
    S.ERRORED: frozenset({S.READY, S.SKIPPED}),
    S.SKIPPED: frozenset(),
}

# Where a load's failure ends: retried (errored -> ready), skipped, or archived. The alert
# of the failure is resolved by the same transaction, so a retried load that fails again
# is a new failure and alerts again, and no alert stays open for a load that is done.
ENDS_FAILURE = frozenset({S.READY, S.SKIPPED, S.ARCHIVED})

# States a live worker holds a load in; found under the table lock, they are stale.
IN_FLIGHT = frozenset({S.INGESTING, S.ARCHIVING, S.ERRORING})


def load_file(conn: Connection, load_id: int) -> tuple[str, LoadStatus, datetime]:
    """A load's incoming key, status and landing time (the recorded last-modified).
    Raises DataPlatformError for an unknown load."""
    row = conn.execute(
        select(Load.s3_key, Load.status, Load.s3_modified).where(Load.id == load_id)
    ).first()
    if row is None:
        raise DataPlatformError(f"no load {load_id}")
    return row[0], LoadStatus(row[1]), row[2]


def check_transition(current: LoadStatus, new: LoadStatus) -> None:
    if new not in ALLOWED[current]:
        raise InvalidTransition(f"load status cannot go from {current.value} to {new.value}")


@dataclass(frozen=True)
class LoadErrorParts:
    """A load's error as stored by `transition`: the whole message and its parts. The
    parts are None for a load errored before revision 0010 (the message alone), and
    line/column where the error names none."""

    text: str
    file: str | None = None
    line: int | None = None
    column: str | None = None
    reason: str | None = None

    @classmethod
    def of(cls, row: Any) -> LoadErrorParts | None:
        """From anything with the attributes of ERROR_COLUMNS (a `Load`, or a result row
        that selected them); None when there is no error."""
        if row.error is None:
            return None
        return cls(row.error, row.error_file, row.error_line, row.error_column, row.error_reason)

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "column": self.column, "reason": self.reason}


# What `LoadErrorParts.of` reads: select(..., *ERROR_COLUMNS).
ERROR_COLUMNS = (Load.error, Load.error_file, Load.error_line, Load.error_column, Load.error_reason)


def transition(
    conn: Connection,
    load_id: int,
    current: LoadStatus,
    new: LoadStatus,
    *,
    error: LoadError | None = None,
    clear_error: bool = False,
    actor: str | None = None,
    reason: str | None = None,
) -> None:
    """Move one load from `current` to `new` inside the caller's transaction, and record
    the move (with `actor` and `reason` for an operator's action).

    `error`: the load failed: its message goes to `loads.error` and its parts (file,
    line, column, reason) to the error_* columns. `clear_error`: empties all of them (a
    retry). A move into ENDS_FAILURE resolves the load's open alerts (alert_events rows
    with its load_id, revision 0011): done here, in SQL against the core table, rather
    than by calling `data_platform.alerts`, a layer above this one; and in the move's own
    transaction, so no path (worker, `loads retry`, `loads skip`) can forget it.

    Raises InvalidTransition for a move the state machine does not allow, or when the
    load is no longer `current` (another worker moved it)."""
    check_transition(current, new)
    values: dict[str, object] = {"status": new, "updated_at": func.now()}
    if error is not None:
        values.update(
            error=error.describe(),
            error_file=error.key,
            error_line=error.line,
            error_column=error.column or None,
            error_reason=error.reason,
        )
    elif clear_error:
        values.update(
            error=None, error_file=None, error_line=None, error_column=None, error_reason=None
        )
    result = conn.execute(
        update(Load).where(Load.id == load_id, Load.status == current).values(**values)
    )
    if result.rowcount != 1:
        raise InvalidTransition(
            f"load {load_id} is no longer {current.value}: another worker moved it"
        )
    conn.execute(
        insert(LoadEvent).values(
            load_id=load_id,
            from_status=current.value,
            to_status=new.value,
            actor=actor,
            reason=reason,
        )
    )
    if new in ENDS_FAILURE:
        conn.execute(
            update(AlertEvent)
            .where(AlertEvent.load_id == load_id, AlertEvent.resolved_at.is_(None))
            .values(resolved_at=func.now())
        )
    log.debug("load %s: %s -> %s", load_id, current.value, new.value, extra={"load_id": load_id})
