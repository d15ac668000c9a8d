"""A table can pin the byte order of Qlik's header__change_mask

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:30:00+00:00

Qlik's sources disagree on the byte order of a change mask longer than one byte (its
"Change Tables" page: a little-endian byte array; a Qlik engineer's decoder: the hex text
as one number). The applier decides it per file from the `B`/`U` images; a table whose
files carry no evidence (no before images) pins it here. NULL: decided per file.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "source_tables",
        sa.Column(
            "change_mask_order",
            sa.Text(),
            nullable=True,
            comment="Byte order of a Qlik header__change_mask longer than one byte, pinned "
            "for the table: little_endian (the first two hex digits are byte 0, bits 7..0) "
            "or big_endian (the hex text is one number, its last digit holds bit 0); NULL: "
            "decided per file from its before and after images.",
        ),
    )
    op.create_check_constraint(
        op.f("ck_source_tables_change_mask_order"),
        "source_tables",
        "change_mask_order IN ('little_endian', 'big_endian')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_source_tables_change_mask_order"), "source_tables", type_="check")
    op.drop_column("source_tables", "change_mask_order")
