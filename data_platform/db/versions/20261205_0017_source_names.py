"""Source names are a closed set, checked by the database

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 12:00:00+00:00

Every core column that names a source (`source_tables.source`, `landing_marks.source`,
`landings.source`) takes only the platform's sources: a CHECK constraint each,
`ck_<table>_source_name`, commented. Python names them in
`data_platform.db.models.SourceName`; a new source adds its name there and in a core
revision that re-creates these constraints with it. The list is written out here, as it
was when this revision was written.

The upgrade fails, naming the constraint, on a database holding another name (rename or
delete those rows first). `source_tables.source` loses its stale comment ("Source kind:
cubic_qlik, dmap, kafka."). Downgrade drops the constraints and puts the comment back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = ("cubic_qlik", "cubic_dmap", "cubic_kafka", "melbourne_pedestrian", "totesys")
# The core tables with a column `source` naming a source.
TABLES = ("source_tables", "landing_marks", "landings")
CHECK_COMMENT = "Source names are a closed set: the sources the platform has."
SOURCE_COMMENT = (
    "The source, one of the platform's: cubic_qlik, cubic_dmap, cubic_kafka, "
    "melbourne_pedestrian, totesys."
)
OLD_SOURCE_COMMENT = "Source kind: cubic_qlik, dmap, kafka."


def _check(table: str) -> sa.CheckConstraint:
    """The table's constraint, on a table object of its own (the DDL names the table)."""
    check = sa.CheckConstraint(
        sa.column("source").in_(NAMES), name=f"ck_{table}_source_name", comment=CHECK_COMMENT
    )
    sa.Table(table, sa.MetaData(), sa.Column("source", sa.Text()), check)
    return check


def upgrade() -> None:
    for table in TABLES:
        check = _check(table)
        op.execute(sa.schema.AddConstraint(check))
        op.execute(sa.schema.SetConstraintComment(check))
    op.alter_column(
        "source_tables",
        "source",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=SOURCE_COMMENT,
        existing_comment=OLD_SOURCE_COMMENT,
    )


def downgrade() -> None:
    op.alter_column(
        "source_tables",
        "source",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=OLD_SOURCE_COMMENT,
        existing_comment=SOURCE_COMMENT,
    )
    for table in reversed(TABLES):
        op.drop_constraint(op.f(f"ck_{table}_source_name"), table, type_="check")
