"""Schema changes at a source, as every loader reports them and evolution reads them back.

A file whose columns or types differ from its table errors with a SchemaChangeError: its
message starts with `schema change:`, names each difference and the command that writes
the reviewed revision resolving them. `status` lists the tables whose loads wait on one;
the evolve commands find those loads, and re-queue them once the revision is applied.
The revision itself records what it changed in `schema_changes` (core revision 0009).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from data_platform.db.models import Load, LoadStatus, SchemaChange
from data_platform.errors import LoadError

MARKER = "schema change: "


class SchemaChangeError(LoadError):
    """A file's shape differs from its table's; nothing of it was loaded."""


def schema_change_message(
    source_table: str,
    table: str,
    differences: Sequence[str],
    *,
    command: str | None,
    version: int | None = None,
) -> str:
    """`schema change: the file (table version 3) differs from table s.t: A is new; ...;
    nothing was loaded. Resolve it by a reviewed revision: <command> --apply`. With no
    `command` the differences cannot be evolved (a changed key, a reinterpreted type)."""
    version_text = f" (table version {version})" if version is not None else ""
    text = (
        f"{MARKER}{source_table}{version_text} differs from table {table}: "
        f"{'; '.join(differences)}; nothing was loaded. "
    )
    if command is None:
        return text + (
            "This cannot be evolved safely: change the table by a hand-written revision and "
            'load a new snapshot (README, "When the source changes shape")'
        )
    return text + f"Resolve it by a reviewed revision: {command} --apply"


# The command that writes the evolution revision, per source (`status` prints it).
EVOLVE_COMMANDS = {
    "cubic_qlik": "data-platform cubic-qlik evolve-table --table {name}",
    "cubic_dmap": "data-platform dmap evolve-type --type {name}",
}


def evolve_command(source: str, name: str) -> str | None:
    """The evolve command for table `name` (the source's own name: EDW.SAMPLE, a DMAP
    type) of `source`, without `--apply`; None for a source whose tables do not evolve."""
    template = EVOLVE_COMMANDS.get(source)
    return template.format(name=name) if template else None


@dataclass(frozen=True)
class WaitingLoad:
    """A load of a table that waits on its schema change (errored by one), or queued
    behind it (ready)."""

    id: int
    key: str
    status: LoadStatus
    landed: datetime  # the file's last-modified time: where the error zone keeps it
    error: str | None


def waiting_loads(conn: Connection, table_id: int) -> list[WaitingLoad]:
    """The table's loads errored by a schema change, then its ready loads, each group
    in key order (Qlik keys sort by time)."""
    rows = conn.execute(
        select(Load.id, Load.s3_key, Load.status, Load.s3_modified, Load.error)
        .where(
            Load.table_id == table_id,
            (
                (Load.status == LoadStatus.ERRORED) & Load.error.contains(MARKER, autoescape=True)
                | (Load.status == LoadStatus.READY)
            ),
        )
        .order_by(Load.status != LoadStatus.ERRORED, Load.s3_key, Load.id)
    ).all()
    return [WaitingLoad(*row) for row in rows]


def removed_columns(conn: Connection, table_id: int) -> frozenset[str]:
    """Columns a reviewed revision recorded as removed at the source: files may lack
    them (they stay in the table, NULL in new rows)."""
    return frozenset(
        conn.scalars(
            select(SchemaChange.column_name).where(
                SchemaChange.table_id == table_id, SchemaChange.change == "removed"
            )
        )
    )
