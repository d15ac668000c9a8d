"""The schema changes applied to source tables

Revision ID: 0009
Revises: k001
Create Date: 2026-12-01 14:00:00+00:00

`schema_changes`: one row per column an evolution revision changed (added, widened, or
removed at the source and kept), written by that revision itself. The loaders read the
removed columns (a file may lack them); `status` and the web page show the history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "k001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schema_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "revision",
            sa.Text(),
            nullable=False,
            comment="The Alembic revision that made the change (its downgrade removes the row).",
        ),
        sa.Column("column_name", sa.Text(), nullable=False, comment="The table column."),
        sa.Column(
            "change",
            sa.Text(),
            nullable=False,
            comment="added, widened, or removed (at the source; the column stays, NULL in "
            "new rows).",
        ),
        sa.Column(
            "from_type",
            sa.Text(),
            nullable=True,
            comment="The column's type before (format_type); NULL when added.",
        ),
        sa.Column(
            "to_type",
            sa.Text(),
            nullable=True,
            comment="The column's type after (format_type); NULL when removed.",
        ),
        sa.Column(
            "table_version",
            sa.Integer(),
            nullable=True,
            comment="The source's table version that brought the change (Qlik .dfm "
            "tableVersion); NULL when the source has none.",
        ),
        sa.Column(
            "applied_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the revision was applied.",
        ),
        sa.CheckConstraint(
            "change IN ('added', 'widened', 'removed')", name=op.f("ck_schema_changes_change")
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["source_tables.id"],
            name=op.f("fk_schema_changes_table_id_source_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_changes")),
        comment="Columns of source tables changed by evolution revisions (reviewed schema "
        "changes), oldest first.",
    )
    op.create_index(
        op.f("ix_schema_changes_table_id"), "schema_changes", ["table_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_schema_changes_table_id"), table_name="schema_changes")
    op.drop_table("schema_changes")
