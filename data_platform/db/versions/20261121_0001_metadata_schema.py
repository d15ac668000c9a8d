"""metadata schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 21:19:21.435033+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dmap_feeds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "relative_url",
            sa.Text(),
            nullable=False,
            comment="e.g. /controlledresearchusersapi/transactional/device_event",
        ),
        sa.Column(
            "last_updated",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="Newest dataset last_updated seen; the next fetch asks after it.",
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row was created.",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row last changed.",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmap_feeds")),
        sa.UniqueConstraint("relative_url", name=op.f("uq_dmap_feeds_relative_url")),
        comment="DMAP API feeds fetched daily.",
    )
    op.create_table(
        "source_tables",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "name",
            sa.Text(),
            nullable=False,
            comment="Platform name, e.g. cubic_ods_qlik__edw_sample.",
        ),
        sa.Column(
            "source", sa.Text(), nullable=False, comment="Source kind: cubic_qlik, dmap, kafka."
        ),
        sa.Column(
            "s3_prefix",
            sa.Text(),
            nullable=False,
            comment="Prefix in the incoming zone, e.g. cubic/ods_qlik/EDW.SAMPLE/.",
        ),
        sa.Column(
            "db_schema",
            sa.Text(),
            nullable=True,
            comment="Postgres schema of the current-state table, if any.",
        ),
        sa.Column(
            "db_table",
            sa.Text(),
            nullable=True,
            comment="Postgres name of the current-state table, if any.",
        ),
        sa.Column(
            "is_active",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
            comment="Inactive tables are not scanned.",
        ),
        sa.Column(
            "is_raw",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="Columns kept as text (types not known).",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row was created.",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row last changed.",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_tables")),
        sa.UniqueConstraint("name", name=op.f("uq_source_tables_name")),
        sa.UniqueConstraint("s3_prefix", name=op.f("uq_source_tables_s3_prefix")),
        comment="Every source table the platform ingests, one row per table.",
    )
    op.create_table(
        "dmap_datasets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("feed_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False, comment="Dataset type, e.g. device_event."),
        sa.Column(
            "identifier",
            sa.Text(),
            nullable=False,
            comment="Dataset id, e.g. device_event_20220517.",
        ),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row was created.",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row last changed.",
        ),
        sa.ForeignKeyConstraint(
            ["feed_id"],
            ["dmap_feeds.id"],
            name=op.f("fk_dmap_datasets_feed_id_dmap_feeds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dmap_datasets")),
        sa.UniqueConstraint("identifier", name=op.f("uq_dmap_datasets_identifier")),
        comment="Datasets a DMAP feed published, one file each.",
    )
    op.create_index(op.f("ix_dmap_datasets_feed_id"), "dmap_datasets", ["feed_id"], unique=False)
    op.create_table(
        "loads",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ready",
                "ingesting",
                "ready_for_archiving",
                "archiving",
                "archived",
                "ready_for_erroring",
                "erroring",
                "errored",
                name="load_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
            comment="ready -> ingesting -> ready_for_archiving -> archiving -> archived; on failure ready_for_erroring -> erroring -> errored.",
        ),
        sa.Column("s3_key", sa.Text(), nullable=False, comment="Key in the incoming zone."),
        sa.Column(
            "s3_modified",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="Last-modified time of the object.",
        ),
        sa.Column(
            "s3_size", sa.BigInteger(), nullable=False, comment="Size of the object in bytes."
        ),
        sa.Column(
            "is_raw",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="Loaded without type casts.",
        ),
        sa.Column(
            "error",
            sa.Text(),
            nullable=True,
            comment="Why the load failed: file, line, column and reason.",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row was created.",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row last changed.",
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["source_tables.id"],
            name=op.f("fk_loads_table_id_source_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loads")),
        sa.UniqueConstraint("s3_key", "s3_modified", name=op.f("uq_loads_s3_key_s3_modified")),
        comment="Every file that landed in the incoming zone, and where it is in the flow.",
    )
    op.create_index(
        "ix_loads_status_pending",
        "loads",
        ["status"],
        unique=False,
        postgresql_where=sa.text("status <> 'archived'"),
    )
    op.create_index("ix_loads_table_id_status", "loads", ["table_id", "status"], unique=False)
    op.create_table(
        "table_snapshots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("table_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "snapshot",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the full load started (its first file's time).",
        ),
        sa.Column(
            "snapshot_s3_key", sa.Text(), nullable=False, comment="Key of the LOAD00000001 file."
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the row was created.",
        ),
        sa.ForeignKeyConstraint(
            ["table_id"],
            ["source_tables.id"],
            name=op.f("fk_table_snapshots_table_id_source_tables"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_table_snapshots")),
        sa.UniqueConstraint(
            "table_id", "snapshot", name=op.f("uq_table_snapshots_table_id_snapshot")
        ),
        comment="Full loads of a table: a table's state is its latest snapshot plus changes.",
    )
    op.create_table(
        "load_snapshots",
        sa.Column("load_id", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["load_id"],
            ["loads.id"],
            name=op.f("fk_load_snapshots_load_id_loads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["table_snapshots.id"],
            name=op.f("fk_load_snapshots_snapshot_id_table_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("load_id", name=op.f("pk_load_snapshots")),
        comment="The snapshot each load belonged to when it was recorded.",
    )
    op.create_index(
        op.f("ix_load_snapshots_snapshot_id"), "load_snapshots", ["snapshot_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_load_snapshots_snapshot_id"), table_name="load_snapshots")
    op.drop_table("load_snapshots")
    op.drop_table("table_snapshots")
    op.drop_index("ix_loads_table_id_status", table_name="loads")
    op.drop_index(
        "ix_loads_status_pending",
        table_name="loads",
        postgresql_where=sa.text("status <> 'archived'"),
    )
    op.drop_table("loads")
    op.drop_index(op.f("ix_dmap_datasets_feed_id"), table_name="dmap_datasets")
    op.drop_table("dmap_datasets")
    op.drop_table("source_tables")
    op.drop_table("dmap_feeds")
