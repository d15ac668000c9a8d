"""Alembic operations of the revisions onboarding and evolution write (Qlik tables, DMAP
types): the table's schema, its row in `source_tables` (core revision 0001), registered
by the upgrade and removed by the downgrade, and the SQLAlchemy type of each column.

The statements are SQLAlchemy constructs; `migrations.write_revision` renders them as SQL
text with their values inline, so the revision is self-contained and runs offline too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic.operations import ops
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeEngine

if TYPE_CHECKING:
    from data_platform.db.models import SourceName

# format_type() text -> SQLAlchemy type, for the types onboarding creates (Qlik's
# `types.pg_type`, DMAP's `types.DECLARED`).
_SA_TYPES: dict[str, TypeEngine] = {
    "smallint": sa.SmallInteger(),
    "integer": sa.Integer(),
    "bigint": sa.BigInteger(),
    "real": sa.REAL(),
    "double precision": sa.Double(),
    "text": sa.Text(),
    "bytea": postgresql.BYTEA(),
    "date": sa.Date(),
    "time without time zone": sa.Time(),
    "timestamp without time zone": sa.DateTime(),
    "boolean": sa.Boolean(),
    "numeric": sa.Numeric(),
}
_NUMERIC_RE = re.compile(r"^numeric\((\d+),(\d+)\)$")
_VARCHAR_RE = re.compile(r"^character varying\((\d+)\)$")

# The metadata table a revision registers its table in (only the columns it writes).
source_tables = sa.table(
    "source_tables",
    sa.column("name", sa.Text),
    sa.column("source", sa.Text),
    sa.column("s3_prefix", sa.Text),
    sa.column("db_schema", sa.Text),
    sa.column("db_table", sa.Text),
    sa.column("is_raw", sa.Boolean),
)


def sa_type_of(pg_type: str) -> TypeEngine:
    """The SQLAlchemy type of a Postgres type as `format_type()` spells it (any case):
    `numeric(12,2)` -> `sa.Numeric(12, 2)`. Raises ValueError for a type no onboarding
    creates."""
    pg_type = pg_type.lower()
    if pg_type in _SA_TYPES:
        return _SA_TYPES[pg_type]
    if match := _NUMERIC_RE.match(pg_type):
        return sa.Numeric(int(match.group(1)), int(match.group(2)))
    if match := _VARCHAR_RE.match(pg_type):
        return sa.String(int(match.group(1)))
    raise ValueError(f"no SQLAlchemy type for {pg_type!r}")


def create_schema(schema: str) -> ops.ExecuteSQLOp:
    """`CREATE SCHEMA IF NOT EXISTS` (several tables share a schema; none drops it)."""
    return ops.ExecuteSQLOp(sa.schema.CreateSchema(schema, if_not_exists=True))


def register(
    *,
    name: str,
    source: SourceName,
    s3_prefix: str,
    db_schema: str,
    db_table: str,
    is_raw: bool,
) -> ops.ExecuteSQLOp:
    """The table's row in source_tables: platform name, source, the prefix its files land
    under, where it lives, and whether it keeps text columns (Qlik's --raw)."""
    return ops.ExecuteSQLOp(
        source_tables.insert().values(
            name=name,
            source=source,
            s3_prefix=s3_prefix,
            db_schema=db_schema,
            db_table=db_table,
            is_raw=is_raw,
        )
    )


def unregister(name: str) -> ops.ExecuteSQLOp:
    """The downgrade of `register`."""
    return ops.ExecuteSQLOp(source_tables.delete().where(source_tables.c.name == name))
