"""DMAP fetch bookkeeping: the vendor's naive times kept as given, last fetch per feed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00+00:00

DMAP answers `last_updated` as a naive timestamp (`2022-05-18T13:39:43.546303`) and the
next request sends the stored mark back: keep it as `timestamp` (no zone), to the
microsecond, instead of a time the session's zone would shift. Each feed records when it
was last fetched and the last error; each dataset, its key in the incoming zone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAIVE = "the vendor's naive time, as given"


def upgrade() -> None:
    for table, comment in (
        (
            "dmap_feeds",
            f"Newest dataset last_updated fetched ({NAIVE}); the next fetch asks after it.",
        ),
        ("dmap_datasets", f"When the vendor last (re)issued the dataset ({NAIVE})."),
    ):
        op.alter_column(
            table,
            "last_updated",
            type_=sa.DateTime(timezone=False),
            postgresql_using="last_updated AT TIME ZONE 'UTC'",
            comment=comment,
            existing_nullable=table == "dmap_feeds",
        )
    op.add_column(
        "dmap_feeds",
        sa.Column(
            "last_fetched_at",
            sa.DateTime(timezone=True),
            comment="When a fetch of the feed last ended, with or without error.",
        ),
    )
    op.add_column(
        "dmap_feeds",
        sa.Column(
            "last_error",
            sa.Text(),
            comment="Why the last fetch stopped; NULL when it went through.",
        ),
    )
    op.alter_column(
        "dmap_feeds",
        "is_active",
        existing_type=sa.Boolean(),
        existing_server_default=sa.text("true"),
        existing_nullable=False,
        comment="Fetched by `data-platform dmap fetch`; false pauses the feed.",
    )
    op.alter_column(
        "dmap_datasets",
        "identifier",
        new_column_name="dataset_id",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment="The vendor's dataset id, <type>_YYYYMMDD, e.g. device_event_20220517.",
    )
    op.execute(
        "ALTER TABLE dmap_datasets RENAME CONSTRAINT uq_dmap_datasets_identifier "
        "TO uq_dmap_datasets_dataset_id"
    )
    for column, comment in (
        ("start_date", "First day the dataset covers."),
        ("end_date", "Last day the dataset covers."),
    ):
        op.alter_column(
            "dmap_datasets",
            column,
            existing_type=sa.Date(),
            existing_nullable=False,
            comment=comment,
        )
    op.add_column(
        "dmap_datasets",
        sa.Column(
            "s3_key",
            sa.Text(),
            comment="Key of the dataset's file in the incoming zone: cubic/dmap/<type>/<id>.csv.gz.",
        ),
    )


def downgrade() -> None:
    op.drop_column("dmap_datasets", "s3_key")
    for column in ("start_date", "end_date"):
        op.alter_column(
            "dmap_datasets", column, existing_type=sa.Date(), existing_nullable=False, comment=None
        )
    op.execute(
        "ALTER TABLE dmap_datasets RENAME CONSTRAINT uq_dmap_datasets_dataset_id "
        "TO uq_dmap_datasets_identifier"
    )
    op.alter_column(
        "dmap_datasets",
        "dataset_id",
        new_column_name="identifier",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=None,
    )
    op.alter_column(
        "dmap_feeds",
        "is_active",
        existing_type=sa.Boolean(),
        existing_server_default=sa.text("true"),
        existing_nullable=False,
        comment=None,
    )
    op.drop_column("dmap_feeds", "last_error")
    op.drop_column("dmap_feeds", "last_fetched_at")
    for table, comment in (
        ("dmap_feeds", "Newest dataset last_updated seen; the next fetch asks after it."),
        ("dmap_datasets", None),
    ):
        op.alter_column(
            table,
            "last_updated",
            type_=sa.DateTime(timezone=True),
            postgresql_using="last_updated AT TIME ZONE 'UTC'",
            comment=comment,
            existing_nullable=table == "dmap_feeds",
        )
