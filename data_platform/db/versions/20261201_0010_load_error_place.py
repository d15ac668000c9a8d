"""Where a load's error is: file, line, column and reason as columns of their own

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:40:00+00:00

`loads.error` keeps the whole message (`<file>: line 3, column X: <reason> (table t,
load 7)`); the new columns hold its parts, written with it, so the web pages and `loads
show --json` read them instead of taking the text apart. Loads errored before this
revision keep only the message (the parts stay NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("error_file", sa.Text(), "The file the error names (an incoming key, or a companion)."),
    ("error_line", sa.Integer(), "The line (CSV record) of that file, from 1."),
    ("error_column", sa.Text(), "The column of that file."),
    ("error_reason", sa.Text(), "The reason, without file, line, column and ids."),
)


def upgrade() -> None:
    for name, type_, comment in COLUMNS:
        op.add_column("loads", sa.Column(name, type_, nullable=True, comment=comment))


def downgrade() -> None:
    for name, _, _ in reversed(COLUMNS):
        op.drop_column("loads", name)
