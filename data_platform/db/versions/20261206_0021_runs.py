"""Runs: every pass of `data-platform run`

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 02:58:58.585227+00:00

`runs` records each pass of `data-platform run` (once, each `--watch` pass, a table's Run
from the operations page): when it started and ended, its exit code, what it landed,
recorded, archived, errored and applied, the dbt build and verifications after it, what it
printed and its log lines. The page lists them (`/runs`), `/metrics` gives pass durations.
Written by Alembic's autogenerate from `db.models.Run`. Downgrade drops the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column(
            "id",
            sa.BigInteger(),
            sa.Identity(always=False),
            nullable=False,
            comment="The pass's id, in the order they started.",
        ),
        sa.Column(
            "trigger",
            sa.Text(),
            nullable=False,
            comment="cli (`run` once), watch (a `run --watch` pass) or web (the page's Run).",
        ),
        sa.Column("actor", sa.Text(), nullable=True, comment="Who ran it from the page."),
        sa.Column(
            "subject",
            sa.Text(),
            nullable=True,
            comment="The one table it ran (the page's Run); NULL: every source.",
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When it started.",
        ),
        sa.Column(
            "finished_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When it ended; NULL: running, or killed.",
        ),
        sa.Column("seconds", sa.Double(), nullable=True, comment="How long it took."),
        sa.Column(
            "status",
            sa.Text(),
            server_default="running",
            nullable=False,
            comment="running; ok (exit 0); failed (exit non-zero: an errored load, a failed landing item, test or verification); stopped (a source or the pass stopped).",
        ),
        sa.Column(
            "exit_code",
            sa.Integer(),
            nullable=True,
            comment="What `run` exited with (README, Exit codes).",
        ),
        sa.Column(
            "landed",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Files landed in incoming.",
        ),
        sa.Column(
            "recorded",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="New loads recorded by the scans.",
        ),
        sa.Column(
            "archived",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Loads applied and archived.",
        ),
        sa.Column(
            "errored", sa.Integer(), server_default="0", nullable=False, comment="Loads errored."
        ),
        sa.Column(
            "rows", sa.BigInteger(), server_default="0", nullable=False, comment="Rows applied."
        ),
        sa.Column(
            "dead_letters",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Records dead-lettered.",
        ),
        sa.Column(
            "transform",
            sa.Text(),
            nullable=True,
            comment="The dbt build after it: ok or failed; NULL: none ran.",
        ),
        sa.Column(
            "failed_tests",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="dbt models and tests that failed or errored.",
        ),
        sa.Column(
            "verified",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Verifications run after it.",
        ),
        sa.Column(
            "mismatches",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Verifications that found a mismatch.",
        ),
        sa.Column(
            "summary",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment="What each source did (`run --json`'s object), the failing dbt nodes and the verifications.",
        ),
        sa.Column(
            "output",
            sa.Text(),
            server_default="",
            nullable=False,
            comment="What `run` printed for the pass.",
        ),
        sa.Column(
            "log",
            sa.Text(),
            server_default="",
            nullable=False,
            comment="The pass's log lines (INFO and up, the first RUN_LOG_LINES), without secrets.",
        ),
        sa.CheckConstraint(
            "status IN ('running', 'ok', 'failed', 'stopped')", name=op.f("ck_runs_status")
        ),
        sa.CheckConstraint("trigger IN ('cli', 'watch', 'web')", name=op.f("ck_runs_trigger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        comment="Every pass of `data-platform run` (once, each --watch pass, a table's run from the page): when, how long, what it landed, loaded, transformed and verified, what it printed and its log (doc/operations.md, Runs).",
    )


def downgrade() -> None:
    op.drop_table("runs")
