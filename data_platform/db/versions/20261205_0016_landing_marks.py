"""Landing is one protocol: one marks table for every source, one record of each landing

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 09:00:00+00:00

The sources the platform lands itself (DMAP and pedestrian fetch, totesys extraction, Kafka
consumption; `data_platform.loads.landing`) kept where they resume in three places: the
`extract_marks` table (totesys, per table), `pedestrian.fetch_marks` (per dataset) and the
column `dmap_feeds.last_updated` (per feed). They move into `landing_marks`, one row per
(source, item), the source's own position as a JSON object:

- totesys: {"updated", "key", "horizon", "identity"} from mark_updated, mark_key, horizon
  and source_identity; `marked_at` the pass's time (extracted_at);
- melbourne_pedestrian: {"next_date"}; `marked_at` fetched_at;
- cubic_dmap, item the feed's relative_url: {"last_updated"} (the vendor's naive time, to
  the microsecond, as given); `last_key` the key of the feed's newest dataset;
  `marked_at` the feed's last fetch.

`landings` records each source's last landing (when it started and ended, the files it
landed, why it failed): `data-platform run` lands a source again once its interval has
passed. Open alerts of the retired kinds `fetch` and `extract` are resolved: a landing
failure is `land:<source>[:<item>]` from now on, and alerts again if it persists.

Downgrade puts the marks back where they were (a mark of another source than the three
goes to extract_marks, as before) and drops both tables; the resolved alerts stay
resolved.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DMAP, PEDESTRIAN = "cubic_dmap", "melbourne_pedestrian"
KIND = "load, land, transform, run (fetch, extract: landings before revision 0016)."
OLD_KIND = "load, fetch, extract, transform, run."
FEED_MARK = (
    "Newest dataset last_updated fetched (the vendor's naive time, as given); "
    "the next fetch asks after it."
)


def _execute(statement: str) -> None:
    """`statement` with the sources' names bound (:dmap, :pedestrian) where it uses them."""
    names = {"dmap": DMAP, "pedestrian": PEDESTRIAN}
    op.execute(
        sa.text(statement).bindparams(**{k: v for k, v in names.items() if f":{k}" in statement})
    )


def upgrade() -> None:
    op.create_table(
        "landing_marks",
        sa.Column(
            "source",
            sa.Text(),
            nullable=False,
            comment="The source (source_tables.source), e.g. totesys.",
        ),
        sa.Column(
            "item",
            sa.Text(),
            nullable=False,
            comment="What of the source the mark is of: a totesys table, a DMAP feed's path, "
            "a pedestrian dataset id.",
        ),
        sa.Column(
            "mark",
            postgresql.JSONB(),
            nullable=False,
            comment="Where the next landing resumes, in the source's own terms (a JSON object "
            "only the source reads and writes): totesys {updated, key, horizon, identity}, "
            "cubic_dmap {last_updated}, melbourne_pedestrian {next_date}.",
        ),
        sa.Column(
            "last_key",
            sa.Text(),
            nullable=True,
            comment="Incoming key of the last file that moved the mark; NULL: none yet.",
        ),
        sa.Column(
            "rows",
            sa.BigInteger(),
            nullable=True,
            comment="Rows in that file, where the source counts them.",
        ),
        sa.Column(
            "marked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the mark last moved (totesys: its pass's time, which orders passes).",
        ),
        sa.PrimaryKeyConstraint("source", "item", name=op.f("pk_landing_marks")),
        comment="Where the next landing of each item of a source resumes (a totesys table, a "
        "DMAP feed, a pedestrian dataset); moved only after the file that reached it is in "
        "incoming.",
    )
    op.create_table(
        "landings",
        sa.Column(
            "source",
            sa.Text(),
            nullable=False,
            comment="The source (source_tables.source), e.g. cubic_dmap.",
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When the last landing started.",
        ),
        sa.Column(
            "ended_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="When it ended (a landing is recorded when it ends: one killed leaves the "
            "last one's).",
        ),
        sa.Column(
            "files",
            sa.Integer(),
            nullable=True,
            comment="Files it put into incoming; NULL when it failed as a whole.",
        ),
        sa.Column(
            "error",
            sa.Text(),
            nullable=True,
            comment="Why it failed: the whole landing's reason, or one line per failed item "
            "(feed, dataset, table, topic); NULL: it went through.",
        ),
        sa.Column(
            "succeeded_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When a landing of the source last ended without a failure.",
        ),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_landings")),
        comment="The last landing of each source (a fetch, an extraction, a topic consumed "
        "into incoming), by `data-platform run` or the source's own command: when, what it "
        "landed, why it failed. `run` lands a source again once its interval "
        "(<SOURCE>_LAND_EVERY) has passed since started_at.",
    )
    op.execute(
        "INSERT INTO landing_marks (source, item, mark, last_key, rows, marked_at) "
        "SELECT source, table_name, jsonb_build_object('updated', mark_updated, 'key', "
        "mark_key, 'horizon', horizon, 'identity', source_identity), nullif(last_key, ''), "
        "rows, extracted_at FROM extract_marks"
    )
    _execute(
        "INSERT INTO landing_marks (source, item, mark, last_key, marked_at) "
        "SELECT :pedestrian, dataset, jsonb_build_object('next_date', next_date), "
        "last_key, fetched_at FROM pedestrian.fetch_marks"
    )
    _execute(
        "INSERT INTO landing_marks (source, item, mark, last_key, marked_at) "
        "SELECT :dmap, f.relative_url, jsonb_build_object('last_updated', f.last_updated), "
        "(SELECT d.s3_key FROM dmap_datasets AS d WHERE d.feed_id = f.id "
        "ORDER BY d.last_updated DESC, d.id DESC LIMIT 1), "
        "coalesce(f.last_fetched_at, f.updated_at) "
        "FROM dmap_feeds AS f WHERE f.last_updated IS NOT NULL"
    )
    op.drop_table("extract_marks")
    op.drop_table("fetch_marks", schema="pedestrian")
    op.drop_column("dmap_feeds", "last_updated")
    op.execute(
        "UPDATE alert_events SET resolved_at = now() "
        "WHERE resolved_at IS NULL AND kind IN ('fetch', 'extract')"
    )
    op.alter_column(
        "alert_events", "kind", existing_type=sa.Text(), existing_nullable=False, comment=KIND
    )


def downgrade() -> None:
    op.alter_column(
        "alert_events", "kind", existing_type=sa.Text(), existing_nullable=False, comment=OLD_KIND
    )
    op.add_column(
        "dmap_feeds",
        sa.Column("last_updated", sa.DateTime(timezone=False), nullable=True, comment=FEED_MARK),
    )
    op.create_table(
        "fetch_marks",
        sa.Column("dataset", sa.Text(), primary_key=True, comment="The portal's dataset id."),
        sa.Column(
            "next_date",
            sa.Date(),
            nullable=False,
            comment="The last sensing_date the portal had counts for: the next fetch re-reads "
            "from it minus OPEN_DATA_LOOKBACK_DAYS.",
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
        schema="pedestrian",
        comment="Where the incremental fetch of a dataset resumes; advanced only after "
        "its file is in incoming.",
    )
    op.create_table(
        "extract_marks",
        sa.Column("source", sa.Text(), nullable=False, comment="The source, e.g. totesys."),
        sa.Column("table_name", sa.Text(), nullable=False, comment="The source's table."),
        sa.Column(
            "mark_updated",
            sa.DateTime(timezone=False),
            nullable=False,
            comment="last_updated of the last row landed (the source's own clock).",
        ),
        sa.Column(
            "mark_key",
            sa.Text(),
            nullable=False,
            comment="The key of that row, as text: rows sharing the timestamp are paged by it.",
        ),
        sa.Column("last_key", sa.Text(), nullable=False, comment="Incoming key of the last file."),
        sa.Column("rows", sa.BigInteger(), nullable=False, comment="Rows in the last file."),
        sa.Column(
            "extracted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="When the last file was landed.",
        ),
        sa.Column(
            "horizon",
            sa.BigInteger(),
            nullable=True,
            comment="The source's transaction horizon at the pass that wrote the mark "
            "(pg_snapshot_xmin, xid8): the next pass reads every row version written by a "
            "transaction from there on. NULL: a source without it (by stamp), or a mark written "
            "before it (the next pass on a source with it reads everything).",
        ),
        sa.Column(
            "source_identity",
            sa.Text(),
            nullable=True,
            comment="Which source the horizon is of (system identifier, timeline and database oid, "
            "or where pg_control_* is not callable the server address, port, start time and "
            "database oid): a mark of another source, or NULL, makes the next pass read "
            "everything.",
        ),
        sa.PrimaryKeyConstraint("source", "table_name", name=op.f("pk_extract_marks")),
        comment="Where the incremental extraction of a database source's table resumes; "
        "advanced only after the extracted file is in incoming.",
    )
    _execute(
        "INSERT INTO extract_marks (source, table_name, mark_updated, mark_key, last_key, rows, "
        "extracted_at, horizon, source_identity) "
        "SELECT source, item, (mark->>'updated')::timestamp, mark->>'key', "
        "coalesce(last_key, ''), coalesce(rows, 0), marked_at, (mark->>'horizon')::bigint, "
        "mark->>'identity' FROM landing_marks WHERE source NOT IN (:dmap, :pedestrian)"
    )
    _execute(
        "INSERT INTO pedestrian.fetch_marks (dataset, next_date, last_key, fetched_at) "
        "SELECT item, (mark->>'next_date')::date, coalesce(last_key, ''), marked_at "
        "FROM landing_marks WHERE source = :pedestrian"
    )
    _execute(
        "UPDATE dmap_feeds AS f SET last_updated = (m.mark->>'last_updated')::timestamp "
        "FROM landing_marks AS m WHERE m.source = :dmap AND m.item = f.relative_url"
    )
    op.drop_table("landings")
    op.drop_table("landing_marks")
