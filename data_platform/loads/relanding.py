"""Landing a file again: say what it will do before it happens."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadStatus, SourceName, SourceTable
from data_platform.errors import DataPlatformError
from data_platform.loads.source import Source

# What landing a file again does when its source is not among those given.
AGAIN = "a new load, applied again"


class RelandingError(DataPlatformError):
    """Files about to land in incoming were ingested before; landing them again makes new
    loads. Exit code 1; `--force` lands them."""


def refuse_relanding(keys: list[str], sources: Iterable[Source]) -> None:
    """Raise RelandingError naming each key that a load recorded before and that is no
    longer in incoming (ingested: archived or skipped), with what landing it
    again would do: its source's word (`Source.consequence`, among `sources`, the
    caller's: `data_platform.run.all_sources()`)."""
    if not keys:
        return
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(Load.s3_key, Load.id, Load.status, SourceTable.source)
            .join(SourceTable, SourceTable.id == Load.table_id)
            .where(Load.s3_key.in_(keys))
            # An errored load's file put back is its fix, which `retry` applies (no new
            # load: `loads.scan`): the documented recovery, never refused.
            .where(Load.status.in_([LoadStatus.ARCHIVED, LoadStatus.SKIPPED]))
            .order_by(Load.s3_key, Load.id.desc())
            .distinct(Load.s3_key)
        ).all()
    if not rows:
        return
    by_name = {source.name: source for source in sources}

    def consequence(key: str, name: SourceName) -> str:
        source = by_name.get(name)
        return source.consequence(key) if source is not None else AGAIN

    lines = [
        f"{key} (load {load_id}, {LoadStatus(status).value}): {consequence(key, name)}"
        for key, load_id, status, name in rows
    ]
    raise RelandingError(
        f"{len(rows)} file(s) were ingested already; landing again makes: "
        + "; ".join(lines)
        + ". Pass --force to land them"
    )
