"""Point-in-time history for Qlik tables: where a table's history lives, and change
sequences at a time

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 03:00:00+00:00

`source_tables.history_table` names a Qlik table's `<table>_history` (doc/qlik-history.md),
NULL for a table that keeps none. The history table itself comes with the table's own
reviewed revision (`data-platform cubic-qlik keep-history`, or `process-new-table
--history`), which sets the column.

`qlik_change_seq_at(at, last)` turns a time into a Qlik header__change_seq bound: the
seq's first 16 characters are the commit time `YYYYMMDDHHmmSShh` in UTC
(qlik-replicate-files.md), then a 19-digit change number; `last` gives the highest seq
of that hundredth of a second (every change committed by `at`), else the lowest. A
history row is valid at `at` when `dp__valid_from <= qlik_change_seq_at(at)` and
`dp__valid_to` is NULL or greater.

Downgrade drops both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTORY_COMMENT = (
    "A Qlik table's point-in-time history (<db_table>_history in its schema, one row per "
    "version: doc/qlik-history.md); NULL: none kept. Set by the table's history revision."
)


def upgrade() -> None:
    op.add_column("source_tables", sa.Column("history_table", sa.Text(), comment=HISTORY_COMMENT))
    op.execute(
        """
CREATE FUNCTION qlik_change_seq_at(at timestamptz, last boolean DEFAULT true) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSFF2')
        || CASE WHEN last THEN '9999999999999999999' ELSE '0000000000000000000' END
$$
"""
    )
    op.execute(
        "COMMENT ON FUNCTION qlik_change_seq_at(timestamptz, boolean) IS 'The Qlik "
        "header__change_seq bound of a time: its UTC YYYYMMDDHHmmSShh, then the highest "
        "change number (last) or the lowest. History rows valid at a time T: dp__valid_from "
        "<= qlik_change_seq_at(T) AND (dp__valid_to IS NULL OR dp__valid_to > "
        "qlik_change_seq_at(T)).'"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION qlik_change_seq_at(timestamptz, boolean)")
    op.drop_column("source_tables", "history_table")
