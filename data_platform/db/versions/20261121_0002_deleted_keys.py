"""deleted keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 22:07:26.338475+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deleted_keys",
        sa.Column("table_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "key",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="The row's key values, as a JSON array in key order.",
        ),
        sa.Column(
            "change_seq",
            sa.String(length=35, collation="C"),
            nullable=False,
            comment="header__change_seq of the delete.",
        ),
        sa.Column(
            "load_id", sa.BigInteger(), nullable=False, comment="The load whose file deleted it."
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["source_tables.id"],
            name=op.f("fk_deleted_keys_table_id_source_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("table_id", "key", name=op.f("pk_deleted_keys")),
        comment="Keys a change deleted from a current-state table, with the change's sequence: an older change for the key that arrives later must not bring it back.",
    )


def downgrade() -> None:
    op.drop_table("deleted_keys")
