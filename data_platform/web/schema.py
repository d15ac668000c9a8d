"""A table's schema as the page shows it: its columns with their PostgreSQL comments, the
Alembic revisions that made it, and the schema changes evolution revisions recorded.

Revisions are found by the constants onboarding writes into them (`SOURCE_TABLE` or
`DMAP_TYPE` with `DB_SCHEMA`/`DB_TABLE`, see `batch/cubic_qlik/onboarding.py` and
`batch/cubic_dmap/onboarding.py`), `TABLE_NAME`, or, for the hand-written revisions of a
whole source (totesys, pedestrian), their schema constant and the table's name quoted in
the revision's source. Both histories are searched: the main one and, when the database
has it, the demo's (`alembic_version_demo`).
"""

from __future__ import annotations

import inspect as pyinspect
import logging
from pathlib import Path

from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.exc import NoSuchTableError
from sqlalchemy.orm import Session

from data_platform.db import migrations
from data_platform.db.engine import rows_within
from data_platform.db.models import SchemaChange, SourceTable
from data_platform.web.model import ColumnView, RevisionView, SchemaChangeView

log = logging.getLogger(__name__)


def columns(
    conn: Connection, schema: str | None, table: str | None
) -> tuple[str | None, list[ColumnView]]:
    """The table's comment and its columns in order (name, type, nullable, key, comment);
    (None, []) when the table does not exist."""
    if not schema or not table:
        return None, []
    inspector = inspect(conn)
    try:
        found = inspector.get_columns(table, schema=schema)
    except NoSuchTableError:
        return None, []
    if not found:
        return None, []
    keys = set(inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or [])
    comment = inspector.get_table_comment(table, schema=schema).get("text")
    return comment, [
        ColumnView(
            name=col["name"],
            type=str(col["type"]),
            nullable=bool(col["nullable"]),
            primary_key=col["name"] in keys,
            comment=col.get("comment"),
        )
        for col in found
    ]


def _histories(conn: Connection) -> list[tuple[Config, str]]:
    histories = [(migrations.alembic_config(), migrations.VERSION_TABLE)]
    demo_table = "alembic_version_demo"
    if conn.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": demo_table}):
        from data_platform.db.demo_history import demo_config

        histories.append((demo_config(), demo_table))
    return histories


def _is_about(script: Script, table: SourceTable, source_name: str) -> bool:
    module = script.module
    names = (getattr(module, "SOURCE_TABLE", None), getattr(module, "DMAP_TYPE", None))
    schema = getattr(module, "DB_SCHEMA", None) or getattr(module, "CURRENT", None)
    if table.name in (getattr(module, "TABLE_NAME", None), getattr(module, "EVOLVES_TABLE", None)):
        return True
    if getattr(module, "DB_TABLE", None) is not None and schema is not None:
        return (schema, module.DB_TABLE) == (table.db_schema, table.db_table) or (
            source_name in names
        )
    if schema is not None and schema == table.db_schema and table.db_table:
        try:
            source = pyinspect.getsource(module)
        except (OSError, TypeError):
            return False
        return f'"{table.db_table}"' in source or f"'{table.db_table}'" in source
    return False


def _applied(conn: Connection, script_dir: ScriptDirectory, version_table: str) -> set[str] | None:
    """Revisions the database has applied in a history; None when that cannot be told
    (a version the checkout does not hold)."""
    if not conn.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": version_table}):
        return set()
    versions = sa_table(version_table, sa_column("version_num"))
    heads = tuple(conn.scalars(select(versions.c.version_num)))
    try:
        return {rev.revision for rev in script_dir.iterate_revisions(heads, "base")}
    except Exception as exc:  # alembic's errors for a revision it cannot locate
        log.warning("cannot resolve %s of %s: %s", heads, version_table, exc)
        return None


def revisions(conn: Connection, table: SourceTable) -> list[RevisionView]:
    """The revisions that made or changed the table, oldest first."""
    from data_platform.loads.tables import source_name

    found: list[RevisionView] = []
    for config, version_table in _histories(conn):
        try:
            script_dir = ScriptDirectory.from_config(config)
            scripts = list(script_dir.walk_revisions())
        except Exception as exc:  # a broken history must not take the page down
            log.warning("cannot read the Alembic history of %s: %s", version_table, exc)
            continue
        applied = _applied(conn, script_dir, version_table)
        mine = [s for s in scripts if _is_about(s, table, source_name(table.s3_prefix))]
        for script in reversed(mine):
            down = script.down_revision
            if down is not None and not isinstance(down, str):
                down = ", ".join(down)  # a merge revision
            found.append(
                RevisionView(
                    revision=script.revision,
                    down_revision=down,
                    message=(script.doc or "").strip().splitlines()[0] if script.doc else "",
                    file=Path(script.path).name,
                    history=version_table,
                    applied=None if applied is None else script.revision in applied,
                )
            )
    return found


def schema_changes(conn: Connection, table_id: int) -> list[SchemaChangeView]:
    """The column changes evolution revisions recorded for the table (schema_changes,
    core revision 0009), oldest first; empty on a database before that revision."""
    if not conn.scalar(text("SELECT to_regclass('schema_changes') IS NOT NULL")):
        return []
    with Session(conn) as session:
        changes = session.scalars(
            select(SchemaChange).where(SchemaChange.table_id == table_id).order_by(SchemaChange.id)
        )
        return [
            SchemaChangeView(
                revision=change.revision,
                column=change.column_name,
                change=change.change,
                from_type=change.from_type,
                to_type=change.to_type,
                table_version=change.table_version,
                applied_at=change.applied_at,
            )
            for change in changes
        ]


PREVIEW_ROWS = 20  # rows a table's page shows
PREVIEW_TIMEOUT_MS = 2000
_CELL_CHARS = 200  # a longer value is cut, with an ellipsis


def preview(
    conn: Connection, schema: str | None, table: str | None, columns: list[ColumnView]
) -> list[list[str | None]]:
    """The table's newest PREVIEW_ROWS rows (by the load that wrote them, `dp__load_id`,
    when it has that column), each value as text cut to _CELL_CHARS; [] when the table
    does not exist or the read outlasts PREVIEW_TIMEOUT_MS. Runs inside `conn`'s
    transaction, in a savepoint with its own timeout (the page's one connection)."""
    if not schema or not table or not columns:
        return []
    names = [c.name for c in columns]
    target = sa_table(table, *(sa_column(n) for n in names), schema=schema)
    query = select(*(target.c[n] for n in names)).limit(PREVIEW_ROWS)
    if "dp__load_id" in names:
        query = query.order_by(target.c["dp__load_id"].desc().nulls_last())
    rows = rows_within(conn, query, PREVIEW_TIMEOUT_MS)
    if rows is None:
        return []
    return [[_cell(value) for value in row] for row in rows]


def _cell(value: object) -> str | None:
    """A value as the preview shows it: text, bytes as hex, cut to _CELL_CHARS."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        value = bytes(value)
    shown = value.hex() if isinstance(value, bytes) else str(value)
    return shown if len(shown) <= _CELL_CHARS else shown[: _CELL_CHARS - 1] + "…"
