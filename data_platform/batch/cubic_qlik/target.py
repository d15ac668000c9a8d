"""A Qlik current-state table as a file is applied to it: its source columns, their
Postgres types and its key, read from the catalog (`describe_target`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from psycopg2 import sql

from data_platform.batch.cubic_qlik.naming import LINEAGE_PREFIX
from data_platform.errors import DatabaseError

TIMESTAMP = "timestamp without time zone"
_NUMERIC_TYPE = re.compile(r"^numeric\((\d+),(\d+)\)$")


@dataclass(frozen=True)
class TargetTable:
    schema: str
    name: str
    columns: tuple[str, ...]  # source columns in table order, lineage excluded
    key: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict)  # column -> format_type()
    not_null: frozenset[str] = frozenset()
    # DATETIME columns a stage holds already converted (on the client, while the file
    # streamed: `staging.stage_file`), which SQL then takes as they are.
    staged_typed: frozenset[str] = frozenset()

    @property
    def ident(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def bytea(self) -> frozenset[str]:
        return frozenset(c for c in self.columns if self.types.get(c) == "bytea")

    @property
    def timestamps(self) -> frozenset[str]:
        return frozenset(c for c in self.columns if self.types.get(c) == TIMESTAMP)

    @property
    def numerics(self) -> dict[str, tuple[int, int]]:
        """NUMERIC columns with a declared precision and scale: column -> (p, s)."""
        found = {}
        for column in self.columns:
            match = _NUMERIC_TYPE.match(self.types.get(column, ""))
            if match:
                found[column] = (int(match[1]), int(match[2]))
        return found

    @property
    def converted(self) -> frozenset[str]:
        """Columns staged as text and converted by SQL."""
        return (self.bytea | self.timestamps) - self.staged_typed

    def key_match(self, left: str, right: str) -> sql.Composable:
        """Key equality of the rows aliased `left` and `right`, NULL-safe for key columns
        that may be NULL (`=` where the column is NOT NULL, so an index on the key can
        serve it)."""
        parts = []
        for column in self.key:
            op = "=" if column in self.not_null else "IS NOT DISTINCT FROM"
            parts.append(
                sql.SQL("{}.{} {} {}.{}").format(
                    sql.Identifier(left),
                    sql.Identifier(column),
                    sql.SQL(op),
                    sql.Identifier(right),
                    sql.Identifier(column),
                )
            )
        return sql.SQL(" AND ").join(parts)


def describe_target(cur, schema: str, table: str) -> TargetTable:
    """Columns, types and key of a current-state table. The key is its primary key, else
    its unique NULLS NOT DISTINCT index (a key whose columns may be NULL).

    Raises DatabaseError when the table does not exist (not the file's fault)."""
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce((SELECT k.ord FROM unnest(key.indkey) WITH ORDINALITY AS k(attnum, ord)
                         WHERE k.attnum = a.attnum), 0)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN LATERAL (
            SELECT i.indkey FROM pg_index i
            WHERE i.indrelid = c.oid AND i.indisunique
            ORDER BY i.indisprimary DESC, i.indexrelid
            LIMIT 1
        ) key ON true
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    )
    rows = cur.fetchall()
    if not rows:
        # Not the file's fault: the load stays ready until the migration is applied.
        raise DatabaseError(
            f"table {schema}.{table} does not exist: run `data-platform db upgrade`"
        )
    source = [r for r in rows if not r[0].startswith(LINEAGE_PREFIX)]
    key = tuple(name for name, _, _, pos in sorted(rows, key=lambda r: r[3]) if pos > 0)
    return TargetTable(
        schema,
        table,
        columns=tuple(r[0] for r in source),
        key=key,
        types={r[0]: r[1] for r in source},
        not_null=frozenset(r[0] for r in source if r[2]),
    )
