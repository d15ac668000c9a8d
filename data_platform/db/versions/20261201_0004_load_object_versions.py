"""Loads record the object version they apply: the ETag beside size and last-modified

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 09:00:00+00:00

A file replaced under the same key after the scan is a new load, never read under the
old one. S3 gives every version its own ETag; the local store gives one made of the
file's modification time in nanoseconds and its inode (a replace writes a new inode).
Loads recorded before this revision have no ETag: they compare by size and time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "loads",
        sa.Column(
            "s3_etag",
            sa.Text(),
            nullable=True,
            comment="Version of the object the load recorded: its S3 ETag (the local store: "
            "modification time in ns and inode). NULL for loads recorded before revision 0004.",
        ),
    )
    op.drop_constraint("uq_loads_s3_key_s3_modified", "loads", type_="unique")
    op.create_unique_constraint(
        "uq_loads_s3_key_s3_modified_s3_etag",
        "loads",
        ["s3_key", "s3_modified", "s3_etag"],
        postgresql_nulls_not_distinct=True,
    )


def downgrade() -> None:
    op.drop_constraint("uq_loads_s3_key_s3_modified_s3_etag", "loads", type_="unique")
    # Fails (unique violation) if two loads differ only in ETag: resolve those by hand
    # rather than have a downgrade delete load history.
    op.create_unique_constraint("uq_loads_s3_key_s3_modified", "loads", ["s3_key", "s3_modified"])
    op.drop_column("loads", "s3_etag")
