"""cubic_kafka.taps: tap events of the `taps` topic (tap event version 1)

One row per Kafka record: (kafka_topic, kafka_partition, kafka_offset) is the key, so a
record delivered twice, or a file replayed, is one row. Registers the table in
source_tables for the cubic_kafka source (files under cubic/kafka/taps/).

Revision ID: k001
Revises: t001
Create Date: 2026-12-01 13:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "k001"
down_revision: str | Sequence[str] | None = "t001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DB_SCHEMA = "cubic_kafka"
DB_TABLE = "taps"
TABLE_NAME = "cubic_kafka__taps"

source_tables = sa.table(
    "source_tables",
    sa.column("name", sa.Text),
    sa.column("source", sa.Text),
    sa.column("s3_prefix", sa.Text),
    sa.column("db_schema", sa.Text),
    sa.column("db_table", sa.Text),
    sa.column("is_raw", sa.Boolean),
)


def upgrade() -> None:
    op.execute(sa.schema.CreateSchema(DB_SCHEMA, if_not_exists=True))
    op.create_table(
        DB_TABLE,
        sa.Column("kafka_topic", sa.Text(), nullable=False, comment="Lineage: the topic."),
        sa.Column("kafka_partition", sa.Integer(), nullable=False, comment="Lineage: partition."),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False, comment="Lineage: offset."),
        sa.Column(
            "kafka_timestamp",
            sa.DateTime(timezone=True),
            comment="Lineage: the record's Kafka timestamp (producer or broker time).",
        ),
        sa.Column("tap_id", sa.Text(), nullable=False, comment="tapId: the tap's id."),
        sa.Column("token_id", sa.Text(), nullable=False, comment="tokenId: the fare media."),
        sa.Column("stop_id", sa.Text(), nullable=False, comment="stopId: where the tap was."),
        sa.Column("device_id", sa.Text(), nullable=False, comment="deviceId: the validator."),
        sa.Column("tap_time", sa.DateTime(timezone=True), nullable=False, comment="tapTime: when."),
        sa.Column("fare_cents", sa.Integer(), comment="fare: charged, in cents (optional)."),
        sa.Column("mode", sa.Text(), comment="mode: bus, subway, ... (optional)."),
        sa.Column(
            "extra",
            postgresql.JSONB(),
            comment="Fields the declaration does not know yet, as sent (NULL: none).",
        ),
        sa.Column(
            "dp__load_id",
            sa.BigInteger(),
            server_default=sa.text("current_setting('data_platform.load_id')::bigint"),
            nullable=False,
            comment="Lineage: the load (loads.id) that wrote this row.",
        ),
        sa.PrimaryKeyConstraint("kafka_topic", "kafka_partition", "kafka_offset"),
        schema=DB_SCHEMA,
        comment="Tap events from the Kafka topic taps, one row per record (version 1 of "
        "the tap event, data_platform/batch/cubic_kafka/schema.py).",
    )
    op.create_index("ix_taps_stop_id_tap_time", DB_TABLE, ["stop_id", "tap_time"], schema=DB_SCHEMA)
    op.bulk_insert(
        source_tables,
        [
            {
                "name": TABLE_NAME,
                "source": "cubic_kafka",
                "s3_prefix": "cubic/kafka/taps/",
                "db_schema": DB_SCHEMA,
                "db_table": DB_TABLE,
                "is_raw": False,
            }
        ],
    )


def downgrade() -> None:
    op.execute(source_tables.delete().where(source_tables.c.name == TABLE_NAME))
    op.drop_table(DB_TABLE, schema=DB_SCHEMA)
