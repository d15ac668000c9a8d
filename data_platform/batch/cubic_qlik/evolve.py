"""Evolve a Qlik table to its source's new shape: one reviewed revision, written from the
`.dfm` of the loads waiting on the change, then (with --apply) applied, and the waiting
loads re-queued so the next pass loads them with no other step.

The rules of what may change are `schema_change`'s; the revision's operations are
`db.evolution_revision`'s. Nothing is written when any difference would lose or
reinterpret stored data (a changed key, a key column gone, a change of kind).
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection

from data_platform.batch.cubic_qlik import naming
from data_platform.batch.cubic_qlik.dfm import Dfm, dfm_key, parse_dfm
from data_platform.batch.cubic_qlik.schema_change import blocking, compare
from data_platform.batch.cubic_qlik.source import companions
from data_platform.batch.cubic_qlik.target import TargetTable, describe_target
from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.db.evolution_revision import ColumnEvolution
from data_platform.db.models import LoadStatus, SourceTable
from data_platform.errors import DataPlatformError, OnboardingError
from data_platform.loads.moves import find_errored
from data_platform.loads.retry import retry_load
from data_platform.loads.schema_changes import (
    ColumnChange,
    EvolveResult,
    WaitingLoad,
    removed_columns,
    waiting_loads,
    write_evolution,
)
from data_platform.loads.tables import resolve_tables, source_name
from data_platform.storage import get_zone

log = logging.getLogger(__name__)


class EvolutionRefused(OnboardingError):
    """The source's change cannot be made by an evolution revision."""


def _read_dfms(waiting: list[WaitingLoad]) -> list[tuple[int, Dfm]]:
    """The .dfm of each waiting load: in the error zone for an errored load, else in
    incoming. Raises OnboardingError for a .dfm found in neither."""
    incoming, error_zone = get_zone("incoming"), get_zone("error")
    found = []
    for load in waiting:
        name = dfm_key(load.key)
        zone, key = incoming, name
        if load.status == LoadStatus.ERRORED and incoming.head(name) is None:
            key = find_errored(name, load.landed) or ""
            zone = error_zone
        if not key or zone.head(key) is None:
            raise OnboardingError(
                f"load {load.id}: its .dfm {name} is in neither incoming nor error"
            )
        with zone.open(key) as body:
            found.append((load.id, parse_dfm(body.read(), key=key)))
    return found


def plan(
    target: TargetTable, dfms: list[Dfm], *, raw: bool, removed: frozenset[str]
) -> list[ColumnChange]:
    """The changes that bring `target` to a shape every one of `dfms` (oldest first)
    loads into: a column added in one and widened in a later one is added wide; a
    column absent from any is removed (kept, NULL in new rows). "kept" entries say
    where the table stays wider than the source. Raises EvolutionRefused."""
    columns = list(target.columns)
    types = dict(target.types)
    gone = set(removed)
    merged: dict[str, ColumnChange] = {}
    refused: list[str] = []
    for dfm in dfms:
        for change in compare(dfm, columns, types, target.key, raw=raw, removed=frozenset(gone)):
            if change.kind == "refused":
                refused.append(change.describe())
                continue
            earlier = merged.get(change.column)
            if change.kind == "added":
                columns.append(change.column)
                types[change.column] = change.to_type or "text"
                merged[change.column] = change
            elif change.kind == "widened":
                types[change.column] = change.to_type or types[change.column]
                if earlier is not None and earlier.kind in ("added", "widened"):
                    change = ColumnChange(
                        earlier.kind,
                        change.column,
                        change.source_name,
                        from_type=earlier.from_type,
                        to_type=change.to_type,
                        declared=change.declared,
                        why=change.why,
                        table_version=change.table_version,
                    )
                merged[change.column] = change
            elif change.kind == "removed":
                gone.add(change.column)
                merged.setdefault(change.column, change)
            elif earlier is None:
                merged[change.column] = change  # kept
    if refused:
        raise EvolutionRefused(
            "cannot evolve the table: "
            + "; ".join(dict.fromkeys(refused))
            + '. Change it by a hand-written revision and load a new snapshot (README, "When '
            'the source changes shape")'
        )
    order = {"added": 0, "widened": 1, "removed": 2, "kept": 3}
    return sorted(merged.values(), key=lambda c: order[c.kind])


def _comments(cur, schema: str, table: str) -> dict[str, str | None]:
    cur.execute(
        "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) "
        "AND a.attnum > 0 AND NOT a.attisdropped",
        (schema, table),
    )
    return dict(cur.fetchall())


def _evolutions(
    changes: list[ColumnChange],
    source_table: str,
    comments: dict[str, str | None],
    not_null: frozenset[str],
) -> list[ColumnEvolution]:
    result = []
    for change in changes:
        version = (
            f"table version {change.table_version}" if change.table_version else "a new version"
        )
        old = comments.get(change.column)
        base = f"{source_table}.{change.source_name or change.column}"
        if change.kind == "added":
            comment = f"{base} ({change.declared}), added at the source in {version}."
        elif change.kind == "widened":
            comment = f"{base} ({change.declared}), widened from {change.from_type} in {version}."
        elif change.kind == "removed":
            comment = (
                f"{old or base} Removed at the source in {version}: kept, NULL in rows "
                "written since."
            )
        else:
            continue
        result.append(
            ColumnEvolution(
                column=change.column,
                change=change.kind,
                from_type=change.from_type,
                to_type=change.to_type,
                comment=comment,
                old_comment=old,
                was_not_null=change.kind == "removed" and change.column in not_null,
                table_version=change.table_version,
            )
        )
    return result


def evolve_table(
    name: str,
    *,
    dfm_path: Path | None = None,
    apply: bool = False,
    actor: str | None = None,
    versions_dir: Path | None = None,
    config: Config | None = None,
) -> EvolveResult:
    """Write the revision that evolves Qlik table `name` (any of its names) to the shape
    of the `.dfm`s of its loads waiting on a schema change (or of `dfm_path`), into
    `versions_dir` (default the Qlik version location) after the head of `config`'s
    history. With `apply`: upgrade to head, then re-queue every load errored by the
    change that now fits (recording `actor`).

    Raises UnknownTable, EvolutionRefused (nothing written), OnboardingError (nothing
    waits, a .dfm missing), DataPlatformError for a table of another source."""
    engine = get_engine()
    with engine.connect() as conn:
        (table,) = resolve_tables(conn, [name])
        if table.source != naming.SOURCE:
            raise DataPlatformError(f"{table.name} is a {table.source} table, not a Qlik one")
        waiting = waiting_loads(conn, table.id)
        removed = removed_columns(conn, table.id)
        target, comments = _describe(conn, table)
    source_table = source_name(table.s3_prefix) or table.name
    errored = [w for w in waiting if w.status == LoadStatus.ERRORED]
    read: dict[int, Dfm] = {}  # each waiting load's .dfm, read once
    if dfm_path is not None:
        dfms = [parse_dfm(dfm_path.read_bytes(), key=str(dfm_path))]
    else:
        if not errored:
            raise OnboardingError(
                f"no load of {table.name} waits on a schema change: nothing to evolve (pass "
                "--dfm PATH to evolve from a .dfm)"
            )
        read = dict(_read_dfms(waiting))
        dfms = list(read.values())
    changes = plan(target, dfms, raw=table.is_raw, removed=removed)
    result = EvolveResult(table.name, changes)
    evolutions = _evolutions(changes, source_table, comments, target.not_null)
    version = max((d.table_version or 0 for d in dfms), default=0)
    write_evolution(
        result,
        source=naming.SOURCE,
        slug=f"evolve_{naming.revision_slug(source_table)}",
        title=f"evolve {source_table} ({target.qualified}) to table version {version}",
        generated_by=f"data-platform cubic-qlik evolve-table --table {source_table}",
        db_schema=target.schema,
        db_table=target.name,
        changes=evolutions,
        history_table=table.history_table,
        apply=apply,
        versions_dir=versions_dir,
        config=config,
    )
    if apply:
        if dfm_path is not None:
            read = dict(_read_dfms(errored))
        result.requeued = _requeue(table, [(w.id, read[w.id]) for w in errored], actor)
    return result


def _describe(conn: Connection, table: SourceTable) -> tuple[TargetTable, dict[str, str | None]]:
    schema, name = table.target
    cur = dbapi_cursor(conn)
    try:
        return describe_target(cur, schema, name), _comments(cur, schema, name)
    finally:
        cur.close()


def _requeue(table: SourceTable, errored: list[tuple[int, Dfm]], actor: str | None) -> list[int]:
    """Re-queue the loads errored by the change (load id, its .dfm) whose .dfm now fits
    the table; a load that still differs stays errored (its error says why)."""
    engine = get_engine()
    with engine.connect() as conn:
        removed = removed_columns(conn, table.id)
        target, _ = _describe(conn, table)
    requeued = []
    for load_id, dfm in errored:
        differences = compare(
            dfm, target.columns, target.types, target.key, raw=table.is_raw, removed=removed
        )
        left = blocking(differences)
        if left:
            log.warning(
                "load %s still differs from the table: %s",
                load_id,
                "; ".join(c.describe() for c in left),
                extra={"table": table.name, "load_id": load_id},
            )
            continue
        retry_load(load_id, companions, actor=actor)
        requeued.append(load_id)
    return requeued
