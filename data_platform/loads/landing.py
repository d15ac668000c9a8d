"""Landing a file again: say what it will do before it happens."""

from __future__ import annotations

from sqlalchemy import select

from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadStatus
from data_platform.errors import DataPlatformError


class RelandingError(DataPlatformError):
    """Files about to land in incoming were ingested before; landing them again makes new
    loads. Exit code 1; `--force` lands them."""


def consequence(key: str) -> str:
    """What landing `key` again does, in words."""
    from data_platform.batch.cubic_qlik.files import is_snapshot_start

    name = key.rsplit("/", 1)[-1]
    if key.startswith("cubic/ods_qlik/") and is_snapshot_start(name):
        return "a new load and a new snapshot: the table is reloaded from it"
    if key.startswith("cubic/dmap/"):
        return "a new load: the dataset's rows are replaced by the file's"
    return "a new load, applied again"


def refuse_relanding(keys: list[str]) -> None:
    """Raise RelandingError naming each key that a load recorded before and that is no
    longer in incoming (ingested: archived, errored or skipped), with what landing it
    again would do."""
    if not keys:
        return
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(Load.s3_key, Load.id, Load.status)
            .where(Load.s3_key.in_(keys))
            .where(Load.status.in_([LoadStatus.ARCHIVED, LoadStatus.ERRORED, LoadStatus.SKIPPED]))
            .order_by(Load.s3_key, Load.id.desc())
            .distinct(Load.s3_key)
        ).all()
    if not rows:
        return
    lines = [
        f"{key} (load {load_id}, {LoadStatus(status).value}): {consequence(key)}"
        for key, load_id, status in rows
    ]
    raise RelandingError(
        f"{len(rows)} file(s) were ingested already; landing again makes: "
        + "; ".join(lines)
        + ". Pass --force to land them"
    )
