"""Schema changes at a source, as every loader reports them and evolution reads them back.

A file whose columns or types differ from its table errors with a SchemaChangeError: its
message starts with `schema change:`, names each difference and the command that writes
the reviewed revision resolving them. `status` lists the tables whose loads wait on one;
the evolve commands find those loads, and re-queue them once the revision is applied.
The revision itself records what it changed in `schema_changes` (core revision 0009).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, select

from data_platform.db.evolution_revision import ColumnEvolution, render_evolution
from data_platform.db.models import Load, LoadStatus, SchemaChange
from data_platform.errors import LoadError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MARKER = "schema change: "

Kind = Literal["added", "widened", "removed", "kept", "refused"]


class SchemaChangeError(LoadError):
    """A file's shape differs from its table's; nothing of it was loaded."""


@dataclass(frozen=True)
class ColumnChange:
    """One difference between a file and its table."""

    kind: Kind
    column: str  # the table column (the source name, lower-cased)
    source_name: str  # as the .dfm spells it ("" for a column only the table has)
    from_type: str | None = None  # the table's (format_type); None when added
    to_type: str | None = None  # the new type; None when removed, kept or refused
    declared: str = ""  # the .dfm's type as Qlik names it: NUMERIC(12,4)
    why: str = ""
    table_version: int | None = None

    def describe(self) -> str:
        """One clause for an error message or the evolve command's report."""
        name = self.source_name or self.column
        if self.kind == "added":
            return f"{name} ({self.declared}) is new"
        if self.kind == "widened":
            return (
                f"{name} is {self.declared}, which the table's {self.from_type} cannot hold "
                f"({self.why}): widen it to {self.to_type}"
            )
        if self.kind == "removed":
            return f"{name} is gone from the source (it stays in the table, NULL in new rows)"
        if self.kind == "kept":
            return (
                f"{name} is {self.declared}, narrower than the table's {self.from_type}: the "
                "table keeps its type (narrowing would lose stored values)"
            )
        return f"{name}: {self.why}" if name else self.why


@dataclass
class EvolveResult:
    """What an evolve command did (Qlik tables, DMAP types)."""

    table: str  # platform name
    changes: list[ColumnChange]  # what the revision does, then what it keeps ("kept")
    revision: str | None = None  # None: nothing to change
    path: Path | None = None
    written: bool = True  # False: the revision was written by an earlier run, not applied
    applied: bool = False
    requeued: list[int] = field(default_factory=list)


def write_evolution(
    result: EvolveResult,
    *,
    source: str,
    slug: str,
    title: str,
    generated_by: str,
    db_schema: str,
    db_table: str,
    changes: list[ColumnEvolution],
    apply: bool,
    versions_dir: Path | None = None,
    config: Config | None = None,
) -> None:
    """Write the revision evolving `result.table` by `changes` into `versions_dir`
    (default `source`'s version location) after the head of `config`'s history (default
    the main one), unless one written earlier is not applied yet (then that is the one to
    review) or there is nothing to change; with `apply`, upgrade to head. Fills in
    `result`'s revision, path, written and applied."""
    from data_platform.db import migrations

    target_dir = versions_dir or migrations.source_versions_dir(source)
    if config is None:
        config = migrations.alembic_config(extra_version_dirs=[target_dir])
    pending = pending_evolution(config, result.table)
    if pending is not None:
        result.revision, result.path, result.written = pending[0], pending[1], False
    elif changes:
        revision, down, path = migrations.new_revision_file(config, target_dir, slug)
        path.write_text(
            render_evolution(
                title=title,
                generated_by=generated_by,
                summary=[c.describe() for c in result.changes],
                revision=revision,
                down_revision=down,
                table_name=result.table,
                db_schema=db_schema,
                db_table=db_table,
                changes=changes,
            )
        )
        log.info(
            "wrote revision %s evolving %s", revision, result.table, extra={"table": result.table}
        )
        result.revision, result.path = revision, path
    if apply and result.revision is not None:
        migrations.upgrade("head", config)
        result.applied = True


def pending_evolution(config: Config, table_name: str) -> tuple[str, Path] | None:
    """The (revision, path) of an evolution of `table_name` (EVOLVES_TABLE) in
    `config`'s history that the database has not applied yet, if any."""
    from alembic.script import ScriptDirectory

    from data_platform.db import migrations

    script = ScriptDirectory.from_config(config)
    current = migrations.current_revisions(config)
    lower = next(iter(current)) if current else "base"
    for rev in script.iterate_revisions("heads", lower):
        if rev.revision in current:
            continue
        if getattr(rev.module, "EVOLVES_TABLE", None) == table_name:
            return rev.revision, Path(rev.path)
    return None


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
