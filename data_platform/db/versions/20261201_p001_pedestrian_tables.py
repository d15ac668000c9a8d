"""pedestrian tables: sensor locations, hourly counts, fetch marks

City of Melbourne open data (Opendatasoft): `pedestrian-counting-system-sensor-locations`
and `pedestrian-counting-system-monthly-counts-per-hour`. Registers both tables in
source_tables for the melbourne_pedestrian source.

Revision ID: p001
Revises: 0008
Create Date: 2026-12-01 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "p001"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DB_SCHEMA = "pedestrian"
SOURCE = "melbourne_pedestrian"
PREFIX = "open_data/melbourne_pedestrian/"

source_tables = sa.table(
    "source_tables",
    sa.column("name", sa.Text),
    sa.column("source", sa.Text),
    sa.column("s3_prefix", sa.Text),
    sa.column("db_schema", sa.Text),
    sa.column("db_table", sa.Text),
    sa.column("is_raw", sa.Boolean),
)


def _lineage() -> sa.Column:
    return sa.Column(
        "dp__load_id",
        sa.BigInteger(),
        server_default=sa.text("current_setting('data_platform.load_id')::bigint"),
        nullable=False,
        comment="Lineage: the load (loads.id) that last wrote this row.",
    )


def upgrade() -> None:
    op.execute(sa.schema.CreateSchema(DB_SCHEMA, if_not_exists=True))
    op.execute(
        "COMMENT ON SCHEMA pedestrian IS 'City of Melbourne open data: pedestrian counting "
        "system (CC BY 4.0, City of Melbourne). Loaded by the melbourne_pedestrian source.'"
    )
    op.create_table(
        "sensor_locations",
        sa.Column(
            "location_id",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="The sensor's location id (hourly_counts.location_id).",
        ),
        sa.Column("sensor_description", sa.Text(), comment="Place name, e.g. Melbourne Central."),
        sa.Column("sensor_name", sa.Text(), comment="Sensor code, e.g. Lyg260_T."),
        sa.Column("installation_date", sa.Date(), comment="Day the sensor was installed."),
        sa.Column("note", sa.Text()),
        sa.Column(
            "location_type", sa.Text(), comment="Indoor, Outdoor, Indoor Blix or Outdoor Blix."
        ),
        sa.Column("status", sa.Text(), comment="A = active, I = inactive, R = removed."),
        sa.Column("direction_1", sa.Text(), comment="North, South, East, West, In or Out."),
        sa.Column("direction_2", sa.Text(), comment="North, South, East, West, In or Out."),
        sa.Column("latitude", sa.Double()),
        sa.Column("longitude", sa.Double()),
        sa.Column("location", sa.Text(), comment="'lat, lon' as the portal exports it."),
        _lineage(),
        sa.PrimaryKeyConstraint("location_id"),
        schema=DB_SCHEMA,
        comment="Pedestrian sensor locations, the whole dataset as last fetched "
        f"(source_tables: {SOURCE}__sensor_locations).",
    )
    op.create_table(
        "hourly_counts",
        sa.Column("id", sa.Text(), comment="The portal's record id."),
        sa.Column(
            "location_id",
            sa.Integer(),
            autoincrement=False,
            nullable=False,
            comment="The sensor's location (sensor_locations.location_id; some "
            "sensors have no location row).",
        ),
        sa.Column("sensing_date", sa.Date(), nullable=False, comment="Local (Melbourne) date."),
        sa.Column(
            "hourday",
            sa.SmallInteger(),
            nullable=False,
            comment="Hour of the local day, 0-23: the count of [hour, hour + 1).",
        ),
        sa.Column("direction_1", sa.Integer(), comment="Pedestrians in direction 1."),
        sa.Column("direction_2", sa.Integer(), comment="Pedestrians in direction 2."),
        sa.Column(
            "pedestriancount",
            sa.Integer(),
            nullable=False,
            comment="Pedestrians counted in the hour, both directions.",
        ),
        sa.Column("sensor_name", sa.Text(), comment="Sensor code at the time of the count."),
        sa.Column("location", sa.Text(), comment="'lat, lon' as the portal exports it."),
        _lineage(),
        sa.PrimaryKeyConstraint("location_id", "sensing_date", "hourday"),
        sa.CheckConstraint("hourday BETWEEN 0 AND 23", name="ck_hourly_counts_hourday"),
        schema=DB_SCHEMA,
        comment="Hourly pedestrian counts per sensor; a fetched date window replaces its "
        f"rows (source_tables: {SOURCE}__hourly_counts).",
    )
    op.create_table(
        "fetch_marks",
        sa.Column("dataset", sa.Text(), primary_key=True, comment="The portal's dataset id."),
        sa.Column(
            "next_date",
            sa.Date(),
            nullable=False,
            comment="The next fetch of counts starts at this sensing_date.",
        ),
        sa.Column(
            "last_key",
            sa.Text(),
            nullable=False,
            comment="The incoming key of the last file landed.",
        ),
        sa.Column(
            "fetched_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            comment="When the last file was landed.",
        ),
        schema=DB_SCHEMA,
        comment="Where the incremental fetch of a dataset resumes; advanced only after "
        "its file is in incoming.",
    )
    op.bulk_insert(
        source_tables,
        [
            {
                "name": f"{SOURCE}__{table}",
                "source": SOURCE,
                "s3_prefix": f"{PREFIX}{table}/",
                "db_schema": DB_SCHEMA,
                "db_table": table,
                "is_raw": False,
            }
            for table in ("sensor_locations", "hourly_counts")
        ],
    )


def downgrade() -> None:
    op.execute(source_tables.delete().where(source_tables.c.source == SOURCE))
    op.drop_table("fetch_marks", schema=DB_SCHEMA)
    op.drop_table("hourly_counts", schema=DB_SCHEMA)
    op.drop_table("sensor_locations", schema=DB_SCHEMA)
