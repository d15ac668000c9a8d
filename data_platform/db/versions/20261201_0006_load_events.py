"""Load history an operator can read and steer: every transition, rows read, skipped loads

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:00:00+00:00

`load_events` records every status change of every load (from, to, when, who, why);
`loads.rows` the records a load applied; the new final status `skipped` is a load an
operator decided must never be applied (`data-platform loads skip`), its file kept in the
error zone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "ready",
    "ingesting",
    "ready_for_archiving",
    "archiving",
    "archived",
    "ready_for_erroring",
    "erroring",
    "errored",
)
AFTER = (*BEFORE, "skipped")
COMMENT_BEFORE = (
    "ready -> ingesting -> ready_for_archiving -> archiving -> archived; "
    "on failure ready_for_erroring -> erroring -> errored."
)
COMMENT_AFTER = COMMENT_BEFORE + " An operator may skip a ready or errored load (skipped)."


def _status_check(values: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_loads_load_status"), "loads", type_="check")
    listed = ", ".join(f"'{value}'" for value in values)
    op.create_check_constraint(op.f("ck_loads_load_status"), "loads", f"status IN ({listed})")


def upgrade() -> None:
    _status_check(AFTER)
    op.alter_column(
        "loads",
        "status",
        existing_type=sa.String(32),
        existing_nullable=False,
        comment=COMMENT_AFTER,
    )
    op.add_column(
        "loads",
        sa.Column("rows", sa.BigInteger(), comment="Records the load applied; NULL until then."),
    )
    op.create_table(
        "load_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("load_id", sa.BigInteger(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=False, comment="Status before."),
        sa.Column("to_status", sa.Text(), nullable=False, comment="Status after."),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
            comment="When the status changed.",
        ),
        sa.Column(
            "actor",
            sa.Text(),
            comment="Who changed it, for an operator's action (retry, skip); NULL: the platform.",
        ),
        sa.Column("reason", sa.Text(), comment="Why, when someone said (a skip's reason)."),
        sa.ForeignKeyConstraint(
            ["load_id"],
            ["loads.id"],
            name=op.f("fk_load_events_load_id_loads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_events")),
        comment="Every status change of every load, in order: its history.",
    )
    op.create_index(op.f("ix_load_events_load_id"), "load_events", ["load_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_load_events_load_id"), table_name="load_events")
    op.drop_table("load_events")
    op.drop_column("loads", "rows")
    # Skipped loads were final; before this revision errored is the nearest state.
    op.execute("UPDATE loads SET status = 'errored' WHERE status = 'skipped'")
    _status_check(BEFORE)
    op.alter_column(
        "loads",
        "status",
        existing_type=sa.String(32),
        existing_nullable=False,
        comment=COMMENT_BEFORE,
    )
