"""The end of every load: its file (and companions) moved to the archive or error zone.

Each move is bracketed by status changes committed on their own, so a worker killed mid-move
leaves `archiving`/`erroring`, and the next worker repeats the (idempotent) move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from data_platform.db.models import LoadStatus
from data_platform.loads.state import transition
from data_platform.storage import ObjectInfo, get_zone

log = logging.getLogger(__name__)

S = LoadStatus


def same_file(info: ObjectInfo, size: int, modified: datetime) -> bool:
    """Is `info` the object a load recorded? HEAD answers last-modified to the second,
    listings to the millisecond, so times within a second count as equal."""
    return info.size == size and abs((info.last_modified - modified).total_seconds()) < 1


def finish_load(
    engine: Engine,
    load_id: int,
    key: str,
    status: LoadStatus,
    companions: Callable[[str], list[str]] = lambda key: [],
    table: str | None = None,
    recorded: tuple[int, datetime] | None = None,
) -> LoadStatus:
    """Drive a load from ready_for_archiving/ready_for_erroring (or a stale archiving/
    erroring) to archived/errored, moving the data file and its companions.

    `recorded` (size, last-modified) guards against moving a newer file that landed under
    the same key meanwhile: that one is left in incoming for the next scan."""
    if status in (S.READY_FOR_ARCHIVING, S.ARCHIVING):
        busy, done, zone = S.ARCHIVING, S.ARCHIVED, "archive"
    elif status in (S.READY_FOR_ERRORING, S.ERRORING):
        busy, done, zone = S.ERRORING, S.ERRORED, "error"
    else:
        return status
    if status != busy:
        with engine.begin() as conn:
            transition(conn, load_id, status, busy)
    incoming, dest = get_zone("incoming"), get_zone(zone)
    current = incoming.head(key)
    names = [key, *companions(key)]
    if current is not None and recorded is not None and not same_file(current, *recorded):
        log.warning(
            "a newer %s landed meanwhile: left in incoming for the next scan",
            key,
            extra=_ids(load_id, table),
        )
        names = []
    for name in names:
        if incoming.head(name) is not None:
            incoming.move_to(name, dest)
        elif dest.head(name) is None:
            # Neither here nor there: e.g. the missing .dfm that failed the load.
            log.warning("%s is not in incoming; nothing to move", name, extra=_ids(load_id, table))
    with engine.begin() as conn:
        transition(conn, load_id, busy, done)
    log.info("load %s %s", load_id, done.value, extra=_ids(load_id, table))
    return done


def _ids(load_id: int, table: str | None) -> dict[str, object]:
    return {"load_id": load_id, "table": table}
