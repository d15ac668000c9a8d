"""Evolve a DMAP type's table when its files gain columns: one reviewed revision adding
them (declared types for the aggregation types, text otherwise: `types.DECLARED`),
written from the headers of the loads the change errored; with --apply, upgraded and
those loads re-queued, so the next pass loads them.

A CSV header carries no types, so a DMAP file can only add columns; one that lacks some
of the table's leaves them NULL, as before (the vendor omits empty optional columns).
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_platform.batch.cubic_dmap import naming
from data_platform.batch.cubic_dmap.onboarding import read_header
from data_platform.batch.cubic_dmap.source import DMAP, stored_columns
from data_platform.batch.cubic_dmap.types import column_type
from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.db.evolution_revision import ColumnEvolution
from data_platform.db.models import LoadStatus, SourceTable
from data_platform.errors import OnboardingError
from data_platform.loads.moves import find_errored
from data_platform.loads.schema_changes import (
    ColumnChange,
    EvolveResult,
    WaitingLoad,
    waiting_loads,
    write_evolution,
)
from data_platform.storage import get_zone


def _header(load: WaitingLoad) -> list[str]:
    """The header of an errored load's file, in the error zone (or put back in incoming)."""
    incoming = get_zone("incoming")
    zone, key = incoming, load.key
    if incoming.head(key) is None:
        zone, key = get_zone("error"), find_errored(load.key, load.landed) or ""
    if not key:
        raise OnboardingError(f"load {load.id}: {load.key} is in neither incoming nor error")
    with zone.open(key) as body:
        return read_header(body, key)


def _find(session: Session, dataset_type: str) -> SourceTable:
    naming.check_type(dataset_type)
    table = session.scalar(
        select(SourceTable).where(SourceTable.name == naming.table_name(dataset_type))
    )
    if table is None:
        raise OnboardingError(
            f"DMAP type {dataset_type} is not onboarded: data-platform dmap onboard --type "
            f"{dataset_type} --apply"
        )
    return table


def evolve_type(
    dataset_type: str,
    *,
    apply: bool = False,
    actor: str | None = None,
    versions_dir: Path | None = None,
    config: Config | None = None,
) -> EvolveResult:
    """Write the revision adding the columns the files of `dataset_type` errored by a
    schema change have and its table lacks, into `versions_dir` (default the DMAP version
    location) after the head of `config`'s history. With `apply`: upgrade to head and
    re-queue those loads (recording `actor`).

    Raises OnboardingError (type not onboarded, nothing waits, a file missing)."""
    from data_platform.loads.retry import retry_load

    engine = get_engine()
    with engine.connect() as conn, Session(conn) as session:
        table = _find(session, dataset_type)
        errored = [w for w in waiting_loads(conn, table.id) if w.status == LoadStatus.ERRORED]
        db_schema, db_table = table.target
        cur = dbapi_cursor(conn)
        try:
            existing = set(stored_columns(cur, db_schema, db_table))
        finally:
            cur.close()
    if not errored:
        raise OnboardingError(
            f"no load of {table.name} waits on a schema change: nothing to evolve"
        )
    added: dict[str, str] = {}
    for load in errored:
        for field in _header(load):
            column = naming.column_name(field)
            if column not in existing and column not in added:
                added[column] = column_type(dataset_type, column).lower()
    changes = [
        ColumnChange("added", column, column, to_type=pg, declared=pg)
        for column, pg in added.items()
    ]
    result = EvolveResult(table.name, changes)
    write_evolution(
        result,
        source=naming.SOURCE,
        slug=f"evolve_dmap_{dataset_type}",
        title=f"evolve DMAP {dataset_type} ({db_schema}.{db_table})",
        generated_by=f"data-platform dmap evolve-type --type {dataset_type}",
        db_schema=db_schema,
        db_table=db_table,
        changes=[
            ColumnEvolution(
                column=c.column,
                change="added",
                from_type=None,
                to_type=c.to_type,
                comment=f"DMAP {dataset_type}.{c.column} ({c.to_type}), added later.",
            )
            for c in changes
        ],
        apply=apply,
        versions_dir=versions_dir,
        config=config,
    )
    if apply:
        for load in errored:
            retry_load(load.id, DMAP.companions, actor=actor)
            result.requeued.append(load.id)
    return result
