"""Dead letters: records a load could not make rows of, one per record

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 22:40:00+00:00

A record a source cannot carry (it does not parse, misses a field, or holds a value
PostgreSQL refuses: a NUL character, a lone surrogate, a number or time out of range) is
kept here with its reason instead of failing its whole file. The record is keyed by its
identity at the source (Kafka: topic, partition, offset), unique per table, and written
with ON CONFLICT DO NOTHING: a file replayed, or two files with overlapping offsets (a
consumer killed between its put and its commit), give each bad record one dead letter,
as they give each good record one row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger(),
            sa.Identity(always=False),
            nullable=False,
            comment="The dead letter's id.",
        ),
        sa.Column(
            "table_id",
            sa.BigInteger(),
            nullable=False,
            comment="The table (source_tables.id) the record was meant for.",
        ),
        sa.Column(
            "record_key",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            comment="The record's identity at its source, a JSON array: Kafka [topic, "
            "partition, offset]; a line with no identity of its own [file key, line].",
        ),
        sa.Column(
            "load_id",
            sa.BigInteger(),
            nullable=False,
            comment="The load whose file first carried the record (replays add nothing).",
        ),
        sa.Column("line", sa.Integer(), nullable=False, comment="Its line in that file, from 1."),
        sa.Column(
            "field",
            sa.Text(),
            nullable=True,
            comment="The field at fault (e.g. tapId, fare, extra.note); NULL: the record.",
        ),
        sa.Column("reason", sa.Text(), nullable=False, comment="Why it is not a row."),
        sa.Column(
            "record",
            sa.Text(),
            nullable=False,
            comment="The record as the file held it (bytes PostgreSQL cannot hold replaced).",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When it was dead-lettered.",
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["source_tables.id"],
            name=op.f("fk_dead_letters_table_id_source_tables"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["load_id"],
            ["loads.id"],
            name=op.f("fk_dead_letters_load_id_loads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint(
            "table_id", "record_key", name=op.f("uq_dead_letters_table_id_record_key")
        ),
        comment="Records a load could not make rows of (each once, by its key at the "
        "source), with the reason; the rest of their file loaded.",
    )
    op.create_index(op.f("ix_dead_letters_load_id"), "dead_letters", ["load_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dead_letters_load_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
