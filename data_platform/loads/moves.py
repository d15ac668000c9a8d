"""The end of every load: its file (and companions) moved to the archive or error zone.

Each move is bracketed by status changes committed on their own, so a worker killed mid-move
leaves `archiving`/`erroring`, and the next worker repeats the (idempotent) move.

No file ever replaces another in those zones: an archived file is keyed by its load
(`<folder>/load=<load id>/<name>`), an errored one by its landing time
(`<folder>/landed=<YYYYMMDDTHHMMSS.ffffffZ>/<name>`), so a table reloaded under the same
`LOAD00000001` key keeps every snapshot's file. Files moved before this layout sit under
their incoming key; the lookups below fall back to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from data_platform.db.models import LoadStatus
from data_platform.loads.state import transition
from data_platform.storage import ObjectInfo, ZoneStore, get_zone

log = logging.getLogger(__name__)

S = LoadStatus


def _beside(key: str, folder: str) -> str:
    """`a/b/FILE` -> `a/b/<folder>/FILE`: the file and its companions stay side by side."""
    head, _, name = key.rpartition("/")
    return f"{head}/{folder}/{name}" if head else f"{folder}/{name}"


def archive_key(key: str, load_id: int) -> str:
    """Where load `load_id`'s file `key` (or a companion of it) lies in the archive zone."""
    return _beside(key, f"load={load_id}")


def error_key(key: str, landed: datetime) -> str:
    """Where a file that landed in incoming at `landed` lies in the error zone."""
    return _beside(key, f"landed={landed.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}")


def find_archived(key: str, load_id: int) -> str | None:
    """The archive zone key of load `load_id`'s file `key`, or None when it is not there
    (also under its incoming key, as files archived before keys carried the load)."""
    return _first_present(get_zone("archive"), [archive_key(key, load_id), key])


def find_errored(key: str, landed: datetime) -> str | None:
    """The error zone key of the file `key` that landed at `landed`, or None."""
    return _first_present(get_zone("error"), [error_key(key, landed), key])


def _first_present(zone: ZoneStore, keys: list[str]) -> str | None:
    return next((key for key in keys if zone.head(key) is not None), None)


def move_out(names: list[str], zone: str, dest_key: Callable[[str], str]) -> list[str]:
    """Move each of `names` from incoming to `zone` under `dest_key(name)`; safe to repeat
    (a name already moved is left alone). Returns the names found in neither zone."""
    incoming, dest = get_zone("incoming"), get_zone(zone)
    missing = []
    for name in names:
        if incoming.head(name) is not None:
            incoming.move_to(name, dest, dest_key(name))
        elif dest.head(dest_key(name)) is None:
            missing.append(name)
    return missing


def finish_load(
    engine: Engine,
    load_id: int,
    recorded: ObjectInfo,
    status: LoadStatus,
    companions: Callable[[str], list[str]] = lambda key: [],
    table: str | None = None,
) -> LoadStatus:
    """Drive a load from ready_for_archiving/ready_for_erroring (or a stale archiving/
    erroring) to archived/errored, moving the data file and its companions.

    `recorded` is the version of the file the load recorded (key, size, last-modified,
    ETag): a newer file that landed under the same key meanwhile is a load of its own,
    and is left in incoming."""
    dest_key: Callable[[str], str]
    if status in (S.READY_FOR_ARCHIVING, S.ARCHIVING):
        busy, done, zone = S.ARCHIVING, S.ARCHIVED, "archive"
        dest_key = lambda name: archive_key(name, load_id)  # noqa: E731
    elif status in (S.READY_FOR_ERRORING, S.ERRORING):
        busy, done, zone = S.ERRORING, S.ERRORED, "error"
        dest_key = lambda name: error_key(name, recorded.last_modified)  # noqa: E731
    else:
        return status
    if status != busy:
        with engine.begin() as conn:
            transition(conn, load_id, status, busy)
    incoming = get_zone("incoming")
    key = recorded.key
    current = incoming.head(key)
    names = [key, *companions(key)]
    if current is not None and not recorded.same_version(current):
        log.warning(
            "a newer %s landed meanwhile: left in incoming for its own load",
            key,
            extra=_ids(load_id, table),
        )
        names = []
    for name in move_out(names, zone, dest_key):
        # Neither here nor there: e.g. the missing .dfm that failed the load.
        log.warning("%s is not in incoming; nothing to move", name, extra=_ids(load_id, table))
    with engine.begin() as conn:
        transition(conn, load_id, busy, done)
    log.info("load %s %s", load_id, done.value, extra=_ids(load_id, table))
    return done


def _ids(load_id: int, table: str | None) -> dict[str, object]:
    return {"load_id": load_id, "table": table}
