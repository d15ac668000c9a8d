"""Database-source watermarks and the alerts sent

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:00:00+00:00

`extract_marks`: where the incremental extraction of each table of a database source
(totesys, and any other) resumes: the (last_updated, key) of the last row landed, moved
only after its file is in incoming. `alert_events`: every failure the platform alerted on,
by fingerprint, so the same failure is not sent twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "extract_marks",
        sa.Column("source", sa.Text(), nullable=False, comment="The source, e.g. totesys."),
        sa.Column("table_name", sa.Text(), nullable=False, comment="The source's table."),
        sa.Column(
            "mark_updated",
            sa.DateTime(timezone=False),
            nullable=False,
            comment="last_updated of the last row landed (the source's own clock).",
        ),
        sa.Column(
            "mark_key",
            sa.Text(),
            nullable=False,
            comment="The key of that row, as text: rows sharing the timestamp are paged by it.",
        ),
        sa.Column("last_key", sa.Text(), nullable=False, comment="Incoming key of the last file."),
        sa.Column("rows", sa.BigInteger(), nullable=False, comment="Rows in the last file."),
        sa.Column(
            "extracted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the last file was landed.",
        ),
        sa.PrimaryKeyConstraint("source", "table_name", name=op.f("pk_extract_marks")),
        comment="Where the incremental extraction of a database source's table resumes; "
        "advanced only after the extracted file is in incoming.",
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "fingerprint",
            sa.Text(),
            nullable=False,
            comment="What failed, stably named (kind and subject): one alert per failure.",
        ),
        sa.Column(
            "kind", sa.Text(), nullable=False, comment="load, fetch, extract, transform, run."
        ),
        sa.Column("subject", sa.Text(), nullable=False, comment="What failed: a load id, ..."),
        sa.Column("message", sa.Text(), nullable=False, comment="The alert's text, no secrets."),
        sa.Column("channels", sa.Text(), nullable=False, comment="Where it was sent, how it went."),
        sa.Column(
            "sent_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When it was sent.",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_alert_events_fingerprint")),
        comment="Alerts sent: a failure already here is not sent again.",
    )


def downgrade() -> None:
    op.drop_table("alert_events")
    op.drop_table("extract_marks")
