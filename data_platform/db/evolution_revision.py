"""The operations of the reviewed revision that evolves a source table to its source's
new shape (Qlik tables, DMAP types; doc/adr/0008-schema-evolution.md).

It adds columns (nullable, commented with the source and its table version), widens
types, and keeps columns gone from the source (nullable, commented as removed), and it
records each change in `schema_changes` (revision 0009), where loaders find the removed
columns. Its downgrade undoes all of it; narrowing a widened column back fails when a
stored value no longer fits, which is the point of reviewing it.

`migrations.write_revision` writes them into the revision (Alembic renders them).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from alembic.operations import ops

from data_platform.db.revision_ops import sa_type_of

# The tables the revision's change records go to (only the columns it uses).
source_tables = sa.table(
    "source_tables", sa.column("id", sa.BigInteger), sa.column("name", sa.Text)
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


@dataclass(frozen=True)
class ColumnEvolution:
    """One column the revision changes."""

    column: str  # the table column
    change: str  # added | widened | removed
    from_type: str | None  # format_type() text: numeric(10,2)
    to_type: str | None
    comment: str  # the column's comment after the change
    old_comment: str | None = None  # before (restored by the downgrade)
    was_not_null: bool = False  # removed: NOT NULL dropped, restored by the downgrade
    table_version: int | None = None


def _upgrade_step(change: ColumnEvolution, schema: str, table: str) -> ops.MigrateOperation:
    if change.change == "added":
        assert change.to_type
        column = sa.Column(
            change.column, sa_type_of(change.to_type), nullable=True, comment=change.comment
        )
        return ops.AddColumnOp(table, column, schema=schema)
    if change.change == "widened":
        assert change.from_type and change.to_type
        return ops.AlterColumnOp(
            table,
            change.column,
            schema=schema,
            modify_type=sa_type_of(change.to_type),
            existing_type=sa_type_of(change.from_type),
            modify_comment=change.comment,
        )
    return ops.AlterColumnOp(
        table, change.column, schema=schema, modify_nullable=True, modify_comment=change.comment
    )


def _downgrade_step(change: ColumnEvolution, schema: str, table: str) -> ops.MigrateOperation:
    if change.change == "added":
        return ops.DropColumnOp(table, change.column, schema=schema)
    if change.change == "widened":
        assert change.from_type and change.to_type
        return ops.AlterColumnOp(
            table,
            change.column,
            schema=schema,
            modify_type=sa_type_of(change.from_type),
            existing_type=sa_type_of(change.to_type),
            modify_comment=change.old_comment,  # None drops the comment
        )
    return ops.AlterColumnOp(
        table,
        change.column,
        schema=schema,
        # NOT NULL again only where the upgrade dropped it (None: nullable stays as is).
        modify_nullable=False if change.was_not_null else None,
        modify_comment=change.old_comment,
    )


def _record(change: ColumnEvolution, revision: str, table_name: str) -> ops.ExecuteSQLOp:
    """The change's row in schema_changes, for the table registered as `table_name`."""
    values = sa.select(
        source_tables.c.id,
        sa.literal(revision).label("revision"),
        sa.literal(change.column).label("column_name"),
        sa.literal(change.change).label("change"),
        sa.literal(change.from_type, sa.Text).label("from_type"),
        sa.literal(change.to_type, sa.Text).label("to_type"),
        sa.literal(change.table_version, sa.Integer).label("table_version"),
    ).where(source_tables.c.name == table_name)
    return ops.ExecuteSQLOp(schema_changes.insert().from_select(list(schema_changes.c), values))


def evolution_ops(
    changes: list[ColumnEvolution],
    *,
    revision: str,
    table_name: str,
    db_schema: str,
    db_table: str,
    history_table: str | None = None,
) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
    """(upgrade, downgrade) operations of revision `revision` evolving `db_schema.db_table`
    (registered as `table_name`) by `changes`, in order; the downgrade undoes them in
    reverse, after deleting the revision's schema_changes rows.

    `history_table`: the table's point-in-time history (a Qlik table's, in the same
    schema), which takes the same columns added and types widened; its columns are all
    nullable already, so a column gone from the source changes nothing there."""
    mirrored = [c for c in changes if c.change != "removed"] if history_table else []
    upgrade = [_upgrade_step(c, db_schema, db_table) for c in changes]
    if history_table:
        upgrade += [_upgrade_step(c, db_schema, history_table) for c in mirrored]
    upgrade += [_record(c, revision, table_name) for c in changes]
    downgrade: list[ops.MigrateOperation] = [
        ops.ExecuteSQLOp(schema_changes.delete().where(schema_changes.c.revision == revision))
    ]
    if history_table:
        downgrade += [_downgrade_step(c, db_schema, history_table) for c in reversed(mirrored)]
    downgrade += [_downgrade_step(c, db_schema, db_table) for c in reversed(changes)]
    return upgrade, downgrade
