"""Alerts live as long as their cause; every column carries a comment

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:40:00+00:00

`alert_events` keeps resolved alerts instead of deleting them: `resolved_at` (NULL while
open) and a unique index on the fingerprint of the open ones only, so a failure that
recurs after its alert was resolved is a new row and a new alert, while an open one is not
sent twice. `load_id` ties a load's alert to its load: the load's transition out of its
failure (retried, skipped, archived) resolves it in the same transaction.

The 19 columns created without a comment get one: the identity and foreign-key columns of
the core tables, and pedestrian.sensor_locations' note, latitude and longitude.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_ID = "The source table (source_tables.id)."
# (schema, table, column, type, comment): the columns revisions 0001-0010 and p001 left
# without a comment.
COMMENTS: tuple[tuple[str | None, str, str, sa.types.TypeEngine[Any], str], ...] = (
    (None, "source_tables", "id", sa.BigInteger(), "The table's id (loads.table_id and the "
     "other tables' table_id)."),
    (None, "table_snapshots", "id", sa.BigInteger(),
     "The snapshot's id (load_snapshots.snapshot_id)."),
    (None, "table_snapshots", "table_id", sa.BigInteger(), TABLE_ID),
    (None, "loads", "id", sa.BigInteger(),
     "The load's id, as `loads show`, `loads retry` and the alerts name it."),
    (None, "loads", "table_id", sa.BigInteger(), TABLE_ID),
    (None, "load_snapshots", "load_id", sa.BigInteger(), "The load (loads.id)."),
    (None, "load_snapshots", "snapshot_id", sa.BigInteger(),
     "The snapshot (table_snapshots.id) the load belonged to."),
    (None, "load_events", "id", sa.BigInteger(),
     "The event's id, in the order the changes were recorded."),
    (None, "load_events", "load_id", sa.BigInteger(), "The load (loads.id) whose status changed."),
    (None, "deleted_keys", "table_id", sa.BigInteger(), TABLE_ID),
    (None, "dmap_feeds", "id", sa.BigInteger(), "The feed's id (dmap_datasets.feed_id)."),
    (None, "dmap_datasets", "id", sa.BigInteger(), "The dataset's id."),
    (None, "dmap_datasets", "feed_id", sa.BigInteger(),
     "The feed (dmap_feeds.id) that published it."),
    (None, "alert_events", "id", sa.BigInteger(), "The alert's id."),
    (None, "schema_changes", "id", sa.BigInteger(),
     "The change's id, in the order the changes were recorded."),
    (None, "schema_changes", "table_id", sa.BigInteger(), TABLE_ID),
    ("pedestrian", "sensor_locations", "note", sa.Text(),
     "Free-text note of the portal, e.g. that the sensor was relocated."),
    ("pedestrian", "sensor_locations", "latitude", sa.Double(),
     "Latitude of the sensor, decimal degrees (WGS 84)."),
    ("pedestrian", "sensor_locations", "longitude", sa.Double(),
     "Longitude of the sensor, decimal degrees (WGS 84)."),
)  # fmt: skip

OLD_TABLE_COMMENT = "Alerts sent: a failure already here is not sent again."
TABLE_COMMENT = (
    "Alerts sent, open until their cause clears (resolved_at): a failure with an open alert "
    "is not sent again."
)
OLD_FINGERPRINT = "What failed, stably named (kind and subject): one alert per failure."
FINGERPRINT = "What failed, stably named (kind and subject): one open alert per failure."


def upgrade() -> None:
    for schema, table, column, type_, comment in COMMENTS:
        op.alter_column(table, column, schema=schema, existing_type=type_, comment=comment)

    op.add_column(
        "alert_events",
        sa.Column(
            "resolved_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When its cause cleared (the load retried, skipped or archived; the next "
            "good pass, fetch, extraction or build); NULL: open.",
        ),
    )
    op.add_column(
        "alert_events",
        sa.Column(
            "load_id",
            sa.BigInteger(),
            nullable=True,
            comment="The load a load alert is about (loads.id): the load's transitions out of "
            "its failure resolve it; NULL for other kinds.",
        ),
    )
    op.create_foreign_key(
        op.f("fk_alert_events_load_id_loads"),
        "alert_events",
        "loads",
        ["load_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(op.f("ix_alert_events_load_id"), "alert_events", ["load_id"])
    # A load alert recorded before this revision names its load in the fingerprint only.
    op.execute(
        "UPDATE alert_events a SET load_id = l.id FROM loads l "
        "WHERE a.kind = 'load' AND a.fingerprint = 'load:' || l.id"
    )
    # ... and stays open after its load was retried, skipped or archived (the fault this
    # revision mends): resolved now, as the transition would have.
    op.execute(
        "UPDATE alert_events a SET resolved_at = now() FROM loads l WHERE a.load_id = l.id "
        "AND l.status NOT IN ('ready_for_erroring', 'erroring', 'errored')"
    )
    op.drop_constraint(op.f("uq_alert_events_fingerprint"), "alert_events", type_="unique")
    op.create_index(
        "uq_alert_events_open_fingerprint",
        "alert_events",
        ["fingerprint"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.alter_column(
        "alert_events",
        "fingerprint",
        existing_type=sa.Text(),
        comment=FINGERPRINT,
        existing_comment=OLD_FINGERPRINT,
    )
    op.create_table_comment("alert_events", TABLE_COMMENT, existing_comment=OLD_TABLE_COMMENT)


def downgrade() -> None:
    # Before this revision an alert's row was deleted when it was resolved.
    op.execute("DELETE FROM alert_events WHERE resolved_at IS NOT NULL")
    op.create_table_comment("alert_events", OLD_TABLE_COMMENT, existing_comment=TABLE_COMMENT)
    op.alter_column(
        "alert_events",
        "fingerprint",
        existing_type=sa.Text(),
        comment=OLD_FINGERPRINT,
        existing_comment=FINGERPRINT,
    )
    op.drop_index("uq_alert_events_open_fingerprint", table_name="alert_events")
    op.create_unique_constraint(
        op.f("uq_alert_events_fingerprint"), "alert_events", ["fingerprint"]
    )
    op.drop_index(op.f("ix_alert_events_load_id"), table_name="alert_events")
    op.drop_constraint(op.f("fk_alert_events_load_id_loads"), "alert_events", type_="foreignkey")
    op.drop_column("alert_events", "load_id")
    op.drop_column("alert_events", "resolved_at")
    for schema, table, column, type_, comment in reversed(COMMENTS):
        op.alter_column(
            table, column, schema=schema, existing_type=type_, comment=None,
            existing_comment=comment,
        )  # fmt: skip
