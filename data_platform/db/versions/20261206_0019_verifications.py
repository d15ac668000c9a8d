"""Verifications: each check of a table against its source

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 01:00:00+00:00

`verifications` holds every check of a table against its source, newest last
(`data-platform verify`; a Qlik table against each new snapshot before the swap): the
check, its subject, the verdict (`ok` or `mismatch`), the rows expected and held, and the
first keys that differ. The `kind` comment of `alert_events` names the new kinds,
`verify` and `fresh`.
Downgrade drops the table and puts the comment back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAMES = ("cubic_qlik", "cubic_dmap", "cubic_kafka", "melbourne_pedestrian", "totesys")
SOURCE_COMMENT = (
    "The source, one of the platform's: cubic_qlik, cubic_dmap, cubic_kafka, "
    "melbourne_pedestrian, totesys."
)
KIND_COMMENT = (
    "load, land, transform, run, verify, fresh (fetch, extract: landings before revision 0016)."
)
OLD_KIND_COMMENT = "load, land, transform, run (fetch, extract: landings before revision 0016)."


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column(
            "id",
            sa.BigInteger(),
            sa.Identity(always=False),
            nullable=False,
            comment="The check's id, in the order they ran.",
        ),
        sa.Column(
            "checked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When it ran.",
        ),
        sa.Column("source", sa.Text(), nullable=False, comment=SOURCE_COMMENT),
        sa.Column(
            "check",
            sa.Text(),
            nullable=False,
            comment="What was compared: snapshot_drift (a Qlik table against a new snapshot), "
            "dataset_rows (DMAP rows per dataset against its file), key_ranges (a totesys "
            "table against the source database, count and hash per key range).",
        ),
        sa.Column(
            "subject",
            sa.Text(),
            nullable=False,
            comment="What it is about: the table (schema.table), or table and dataset.",
        ),
        sa.Column(
            "table_id",
            sa.BigInteger(),
            nullable=True,
            comment="The source table (source_tables.id).",
        ),
        sa.Column(
            "load_id",
            sa.BigInteger(),
            nullable=True,
            comment="The load it was checked for (a new snapshot's); NULL: none.",
        ),
        sa.Column("verdict", sa.Text(), nullable=False, comment="ok, or mismatch."),
        sa.Column(
            "expected",
            sa.BigInteger(),
            nullable=True,
            comment="Rows the source says (its file, snapshot or database).",
        ),
        sa.Column("actual", sa.BigInteger(), nullable=True, comment="Rows the table holds."),
        sa.Column(
            "differing",
            sa.BigInteger(),
            server_default="0",
            nullable=False,
            comment="How many keys (or datasets) differ.",
        ),
        sa.Column(
            "keys",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
            comment="The first differing keys, each {key, kind}: kind missing (in the source, "
            "not the table), extra (in the table, not the source) or different (columns "
            "differ).",
        ),
        sa.Column("detail", sa.Text(), nullable=True, comment="One line on what differs."),
        sa.CheckConstraint(
            sa.column("source").in_(NAMES),
            name=op.f("ck_verifications_source_name"),
            comment="Source names are a closed set: the sources the platform has.",
        ),
        sa.CheckConstraint("verdict IN ('ok', 'mismatch')", name=op.f("ck_verifications_verdict")),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["source_tables.id"],
            name=op.f("fk_verifications_table_id_source_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
        comment="Each check of a table against its source (`data-platform verify`, and a "
        "Qlik table against each new snapshot before it is swapped in), newest last: what "
        "was compared, the verdict, and the keys that differ (up to a limit).",
    )
    # create_table does not comment its constraints.
    op.execute(
        "COMMENT ON CONSTRAINT ck_verifications_source_name ON verifications IS "
        "'Source names are a closed set: the sources the platform has.'"
    )
    op.create_index(
        op.f("ix_verifications_source_check_subject"),
        "verifications",
        ["source", "check", "subject", "id"],
    )
    op.alter_column(
        "alert_events",
        "kind",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=KIND_COMMENT,
        existing_comment=OLD_KIND_COMMENT,
    )


def downgrade() -> None:
    op.alter_column(
        "alert_events",
        "kind",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=OLD_KIND_COMMENT,
        existing_comment=KIND_COMMENT,
    )
    op.drop_index(op.f("ix_verifications_source_check_subject"), table_name="verifications")
    op.drop_table("verifications")
