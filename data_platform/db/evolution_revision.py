"""The reviewed revision that evolves a source table to its source's new shape (Qlik
tables, DMAP types; doc/adr/0008-schema-evolution.md).

It adds columns (nullable, commented with the source and its table version), widens
types, and keeps columns gone from the source (nullable, commented as removed), and it
records each change in `schema_changes` (revision 0009), where loaders find the removed
columns. Its downgrade undoes all of it; narrowing a widened column back fails when a
stored value no longer fits, which is the point of reviewing it.

The source text is ruff-clean and ruff-formatted as written (`revision_text`).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime

from data_platform.db.revision_text import py_literal

_py = py_literal

# format_type() text -> SQLAlchemy type expression, for the types onboarding creates.
_SA_TYPES = {
    "smallint": "sa.SmallInteger()",
    "integer": "sa.Integer()",
    "bigint": "sa.BigInteger()",
    "real": "sa.REAL()",
    "double precision": "sa.Double()",
    "text": "sa.Text()",
    "bytea": "postgresql.BYTEA()",
    "date": "sa.Date()",
    "time without time zone": "sa.Time()",
    "timestamp without time zone": "sa.DateTime()",
    "boolean": "sa.Boolean()",
    "numeric": "sa.Numeric()",
}
_NUMERIC_RE = re.compile(r"^numeric\((\d+),(\d+)\)$")
_VARCHAR_RE = re.compile(r"^character varying\((\d+)\)$")


def sa_type_of(pg_type: str) -> str:
    """The SQLAlchemy type, as source code, for a `format_type()` text. Raises
    ValueError for a type no onboarding creates."""
    if pg_type in _SA_TYPES:
        return _SA_TYPES[pg_type]
    if match := _NUMERIC_RE.match(pg_type):
        return f"sa.Numeric({match.group(1)}, {match.group(2)})"
    if match := _VARCHAR_RE.match(pg_type):
        return f"sa.String({match.group(1)})"
    raise ValueError(f"no SQLAlchemy type for {pg_type!r}")


@dataclass(frozen=True)
class ColumnEvolution:
    """One column the revision changes."""

    column: str  # the table column
    change: str  # added | widened | removed
    from_type: str | None
    to_type: str | None
    comment: str  # the column's comment after the change
    old_comment: str | None = None  # before (restored by the downgrade)
    was_not_null: bool = False  # removed: NOT NULL dropped, restored by the downgrade
    table_version: int | None = None


def _call(function: str, args: list[str], indent: int = 4) -> str:
    inner = "".join(f"    {arg},\n" for arg in args)
    return textwrap.indent(f"{function}(\n{inner})", " " * indent)


def _upgrade_step(change: ColumnEvolution) -> str:
    name = _py(change.column)
    if change.change == "added":
        assert change.to_type
        column = _call(
            "sa.Column",
            [name, sa_type_of(change.to_type), "nullable=True", f"comment={_py(change.comment)}"],
            4,
        )
        return _call("op.add_column", ["DB_TABLE", column.strip(), "schema=DB_SCHEMA"])
    args = ["DB_TABLE", name]
    if change.change == "widened":
        assert change.from_type and change.to_type
        args += [
            f"type_={sa_type_of(change.to_type)}",
            f"existing_type={sa_type_of(change.from_type)}",
        ]
    else:
        args.append("nullable=True")
    args += [f"comment={_py(change.comment)}", "schema=DB_SCHEMA"]
    return _call("op.alter_column", args)


def _downgrade_step(change: ColumnEvolution) -> str:
    name = _py(change.column)
    if change.change == "added":
        return _call("op.drop_column", ["DB_TABLE", name, "schema=DB_SCHEMA"])
    old = _py(change.old_comment) if change.old_comment is not None else "None"
    args = ["DB_TABLE", name]
    if change.change == "widened":
        assert change.from_type and change.to_type
        args += [
            f"type_={sa_type_of(change.from_type)}",
            f"existing_type={sa_type_of(change.to_type)}",
        ]
    elif change.was_not_null:
        args.append("nullable=False")
    args += [f"comment={old}", "schema=DB_SCHEMA"]
    return _call("op.alter_column", args)


def render_evolution(
    *,
    title: str,
    generated_by: str,
    summary: list[str],
    revision: str,
    down_revision: str | None,
    table_name: str,
    db_schema: str,
    db_table: str,
    changes: list[ColumnEvolution],
) -> str:
    """The revision's source. `summary` lines go into its docstring, one per change."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    down = _py(down_revision) if down_revision else "None"
    upgrade = "\n".join(_upgrade_step(c) for c in changes)
    downgrade = "\n".join(_downgrade_step(c) for c in reversed(changes))
    records = "\n".join(
        f"    ({_py(c.column)}, {_py(c.change)}, "
        f"{_py(c.from_type) if c.from_type else 'None'}, "
        f"{_py(c.to_type) if c.to_type else 'None'}, {c.table_version!r}),"
        for c in changes
    )
    uses_postgresql = "postgresql." in upgrade + downgrade
    dialect_import = "from sqlalchemy.dialects import postgresql\n" if uses_postgresql else ""
    listed = "\n".join(f"- {line}" for line in summary)
    return f'''"""{title}

Generated by `{generated_by}`.
{listed}

Revision ID: {revision}
Revises: {down_revision}
Create Date: {now}
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
{dialect_import}
revision: str = {_py(revision)}
down_revision: str | Sequence[str] | None = {down}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Read by the evolve commands and the status report: the table this revision changes.
EVOLVES_TABLE = {_py(table_name)}
DB_SCHEMA = {_py(db_schema)}
DB_TABLE = {_py(db_table)}

# (column, change, from_type, to_type, table_version), recorded in schema_changes.
CHANGES = [
{records}
]

source_tables = sa.table(
    "source_tables",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.Text),
)
schema_changes = sa.table(
    "schema_changes",
    sa.column("table_id", sa.BigInteger),
    sa.column("revision", sa.Text),
    sa.column("column_name", sa.Text),
    sa.column("change", sa.Text),
    sa.column("from_type", sa.Text),
    sa.column("to_type", sa.Text),
    sa.column("table_version", sa.Integer),
)


def upgrade() -> None:
{upgrade}
    table_id = (
        sa.select(source_tables.c.id).where(source_tables.c.name == EVOLVES_TABLE).scalar_subquery()
    )
    op.execute(
        schema_changes.insert().values(
            [
                {{
                    "table_id": table_id,
                    "revision": revision,
                    "column_name": column,
                    "change": change,
                    "from_type": from_type,
                    "to_type": to_type,
                    "table_version": version,
                }}
                for column, change, from_type, to_type, version in CHANGES
            ]
        )
    )


def downgrade() -> None:
    op.execute(schema_changes.delete().where(schema_changes.c.revision == revision))
    # Narrowing a widened column back fails if a stored value no longer fits it.
{downgrade}
'''
