"""pedestrian counts: empty counts kept, the repeated hour summed, the mark follows the data

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 22:40:00+00:00

The real portal has counts whose `pedestriancount` is empty, and two records for the
local hour 02:00 on the day clocks go back (Australia/Melbourne, first Sunday of April).
Refusing either stalled the source for good (issue 22, item 13). Now:
- `hourly_counts.pedestriancount` may be NULL (the portal left it empty): kept, left out
  of the models' totals, reported by a warning-level dbt test;
- `hourly_counts.portal_records` (1 or 2) says how many portal records a row holds: 2 for
  the repeated hour, whose counts the load sums under the one key.
`fetch_marks.next_date` now holds the last sensing_date the portal had counts for (the
fetch re-reads from it minus OPEN_DATA_LOOKBACK_DAYS): its comment says so.

Downgrade fails while a count is NULL (the column cannot be NOT NULL again): delete or
fill those rows first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "pedestrian"


def upgrade() -> None:
    op.alter_column(
        "hourly_counts",
        "pedestriancount",
        schema=SCHEMA,
        nullable=True,
        comment="Pedestrians counted in the hour, both directions; NULL when the portal "
        "left the count empty (left out of totals).",
        existing_type=sa.Integer(),
    )
    op.add_column(
        "hourly_counts",
        sa.Column(
            "portal_records",
            sa.SmallInteger(),
            sa.CheckConstraint(
                "portal_records BETWEEN 1 AND 2", name="ck_hourly_counts_portal_records"
            ),
            nullable=False,
            server_default="1",
            comment="Portal records the row holds: 2 for the local hour 02:00 repeated when "
            "clocks go back (their counts summed; id lists both), else 1.",
        ),
        schema=SCHEMA,
    )
    op.alter_column(
        "hourly_counts",
        "id",
        schema=SCHEMA,
        comment="The portal's record id; both, space-separated, when portal_records is 2.",
        existing_type=sa.Text(),
    )
    op.create_table_comment(
        "hourly_counts",
        "Hourly pedestrian counts per sensor; a fetched file replaces the sensor-days it "
        "holds (source_tables: melbourne_pedestrian__hourly_counts).",
        schema=SCHEMA,
    )
    op.alter_column(
        "fetch_marks",
        "next_date",
        schema=SCHEMA,
        comment="The last sensing_date the portal had counts for: the next fetch re-reads "
        "from it minus OPEN_DATA_LOOKBACK_DAYS.",
        existing_type=sa.Date(),
        existing_nullable=False,
    )


def downgrade() -> None:
    op.alter_column(
        "fetch_marks",
        "next_date",
        schema=SCHEMA,
        comment="The next fetch of counts starts at this sensing_date.",
        existing_type=sa.Date(),
        existing_nullable=False,
    )
    op.create_table_comment(
        "hourly_counts",
        "Hourly pedestrian counts per sensor; a fetched date window replaces its rows "
        "(source_tables: melbourne_pedestrian__hourly_counts).",
        schema=SCHEMA,
    )
    op.alter_column(
        "hourly_counts",
        "id",
        schema=SCHEMA,
        comment="The portal's record id.",
        existing_type=sa.Text(),
    )
    op.drop_column("hourly_counts", "portal_records", schema=SCHEMA)
    op.alter_column(
        "hourly_counts",
        "pedestriancount",
        schema=SCHEMA,
        nullable=False,
        comment="Pedestrians counted in the hour, both directions.",
        existing_type=sa.Integer(),
    )
