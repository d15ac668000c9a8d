"""Tombstones indexed by table and change sequence

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 00:00:00+00:00

A Qlik change file reads the highest change sequence among its table's tombstones
(`deleted_keys`) before it applies: when none can be newer than the file's changes (after
a new snapshot, or for a file newer than every delete), it skips the tombstone lookup per
changed row, which cost as much as the upsert itself. The index
`ix_deleted_keys_table_id_change_seq` answers that in one index read, however many
tombstones the table has. Downgrade drops it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_deleted_keys_table_id_change_seq"),
        "deleted_keys",
        ["table_id", "change_seq"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deleted_keys_table_id_change_seq"), table_name="deleted_keys")
