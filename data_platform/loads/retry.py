"""Re-queue an errored load once its file is put back (fixed) or its cause is fixed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlalchemy import select, update

from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadStatus, SourceTable
from data_platform.errors import DataPlatformError
from data_platform.loads.moves import find_errored
from data_platform.loads.source import Source
from data_platform.loads.state import load_file, transition
from data_platform.storage import get_zone

log = logging.getLogger(__name__)


def recovery(load_id: int, key: str) -> str:
    """How to retry errored load `load_id` of file `key`, as commands that work as given:
    the fixed file goes back under its key (a file put back for an errored load is that
    load's, not a new one: `loads.scan`), then `retry`."""
    folder, _, name = key.rpartition("/")
    prefix = f" --prefix {folder}" if folder else ""
    return (
        f"to retry: put the fixed {name} back under its key (`data-platform storage upload "
        f"DIR --zone incoming{prefix}`, DIR holding it), then `data-platform retry "
        f"{load_id}`; if the fault was elsewhere (a setting, a revision), `data-platform "
        f"retry {load_id}` alone"
    )


def retry_load(
    load_id: int,
    companions: Callable[[str], list[str]] | None = None,
    actor: str | None = None,
    *,
    sources: Iterable[Source] = (),
) -> str:
    """errored -> ready, in the load's own snapshot. Uses the file in incoming if one was
    put back there (a fixed file, also a fixed first part of a full load: the scan holds
    it for this retry instead of starting a snapshot), and then removes the failed copy
    from the error zone (it is stale: the error zone holds only what failed and is not
    fixed); else moves the file (and companions) back from the error zone. Records who
    did it (`actor`, by default the user running the command). Returns what it did.

    `companions` gives the files that travel with the data file; by default the load's
    source's, found among `sources` (the caller's: `data_platform.run.all_sources()`).

    Raises DataPlatformError for an unknown or not errored load, or a file found nowhere."""
    engine = get_engine()
    if companions is None:
        companions = source_of_load(load_id, sources).companions
    with engine.connect() as conn:
        key, status, landed = load_file(conn, load_id)
    if status != LoadStatus.ERRORED:
        raise DataPlatformError(f"load {load_id} is {status}; only errored loads can be retried")
    incoming, error = get_zone("incoming"), get_zone("error")
    errored = find_errored(key, landed)
    if incoming.head(key) is not None:
        how = "using the file put back in incoming"
    elif errored is not None:
        how = "moved the file back from the error zone"
    else:
        raise DataPlatformError(
            f"load {load_id}: {key} is in neither incoming nor error; put it back in incoming"
        )
    for name in [key, *companions(key)]:
        found = find_errored(name, landed)
        if found is None:
            continue
        if incoming.head(name) is None:
            error.move_to(found, incoming, name)
        else:
            error.delete(found)  # replaced by the fixed file put back in incoming
    info = incoming.head(key)
    assert info is not None
    with engine.begin() as conn:
        # The load now stands for the version in incoming (fixed or moved back).
        conn.execute(
            update(Load)
            .where(Load.id == load_id)
            .values(s3_modified=info.last_modified, s3_size=info.size, s3_etag=info.etag)
        )
        transition(
            conn,
            load_id,
            LoadStatus.ERRORED,
            LoadStatus.READY,
            clear_error=True,
            actor=actor or operator(),
            reason=how,
        )
    log.info("load %s re-queued (%s)", load_id, how, extra={"load_id": load_id})
    return how


def operator() -> str:
    """Who runs the command, for the record of an operator's action."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name (a container with an unnamed uid)
        return "unknown"


def source_of_load(load_id: int, sources: Iterable[Source]) -> Source:
    """The Source among `sources` (the platform's: `data_platform.run.all_sources()`, which
    this layer may not import) a load belongs to. Raises DataPlatformError for an unknown
    load or a source not among them."""
    with get_engine().connect() as conn:
        name = conn.scalar(
            select(SourceTable.source)
            .join(Load, Load.table_id == SourceTable.id)
            .where(Load.id == load_id)
        )
    if name is None:
        raise DataPlatformError(f"no load {load_id}")
    by_name = {source.name: source for source in sources}
    if name not in by_name:
        raise DataPlatformError(
            f"load {load_id} belongs to source {name!r}, which this platform does not run"
        )
    return by_name[name]
