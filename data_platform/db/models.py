"""Metadata models (SQLAlchemy 2.0). Alembic revisions mirror these; a test checks no drift."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    column,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from data_platform.errors import OnboardingError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LoadStatus(enum.StrEnum):
    READY = "ready"
    INGESTING = "ingesting"
    READY_FOR_ARCHIVING = "ready_for_archiving"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"
    READY_FOR_ERRORING = "ready_for_erroring"
    ERRORING = "erroring"
    ERRORED = "errored"
    SKIPPED = "skipped"  # an operator decided it must never be applied (final)


# A load that failed, or is on its way to the error zone.
ERROR_STATES = (LoadStatus.READY_FOR_ERRORING, LoadStatus.ERRORING, LoadStatus.ERRORED)

# The platform's sources (`loads.source.Source.name`), a closed set: every core column that
# names a source holds one of them, checked by the database (`_source_name_check`, revision
# 0017). A new source is added here and by a core revision that re-creates those checks.
SourceName = Literal["cubic_qlik", "cubic_dmap", "cubic_kafka", "melbourne_pedestrian", "totesys"]
SOURCE_NAMES: tuple[SourceName, ...] = get_args(SourceName)
SOURCE_COMMENT = (
    "The source, one of the platform's: cubic_qlik, cubic_dmap, cubic_kafka, "
    "melbourne_pedestrian, totesys."
)


def _source_name_check() -> CheckConstraint:
    """The CHECK that a table's `source` column holds one of SOURCE_NAMES
    (ck_<table>_source_name)."""
    return CheckConstraint(
        column("source").in_(SOURCE_NAMES),
        name="source_name",
        comment="Source names are a closed set: the sources the platform has.",
    )


def _created() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When the row was created."
    )


def _updated() -> Mapped[datetime]:
    return mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),
        onupdate=func.now(),
        comment="When the row last changed.",
    )


# The table a row belongs to, in every table that has one (revision 0011).
TABLE_ID_COMMENT = "The source table (source_tables.id)."


def _id(comment: str) -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True, comment=comment)


class SourceTable(Base):
    __tablename__ = "source_tables"
    __table_args__ = (
        CheckConstraint(
            "change_mask_order IN ('little_endian', 'big_endian')", name="change_mask_order"
        ),
        _source_name_check(),
        {"comment": "Every source table the platform ingests, one row per table."},
    )

    id: Mapped[int] = _id("The table's id (loads.table_id and the other tables' table_id).")
    name: Mapped[str] = mapped_column(
        Text, unique=True, comment="Platform name, e.g. cubic_ods_qlik__edw_sample."
    )
    source: Mapped[SourceName] = mapped_column(Text, comment=SOURCE_COMMENT)
    s3_prefix: Mapped[str] = mapped_column(
        Text, unique=True, comment="Prefix in the incoming zone, e.g. cubic/ods_qlik/EDW.SAMPLE/."
    )
    db_schema: Mapped[str | None] = mapped_column(
        Text, comment="Postgres schema of the current-state table, if any."
    )
    db_table: Mapped[str | None] = mapped_column(
        Text, comment="Postgres name of the current-state table, if any."
    )
    is_active: Mapped[bool] = mapped_column(
        Boolean, server_default=text("true"), comment="Inactive tables are not scanned."
    )
    is_raw: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), comment="Columns kept as text (types not known)."
    )
    sparse_updates: Mapped[bool] = mapped_column(
        Boolean,
        server_default=text("true"),
        comment="A U row leaves untouched columns as they are: NULL in a LOB column "
        "(CLOB, NCLOB, BLOB), or a clear bit in header__change_mask when the file has one.",
    )
    change_mask_order: Mapped[str | None] = mapped_column(
        Text,
        comment="Byte order of a Qlik header__change_mask longer than one byte, pinned for "
        "the table: little_endian (the first two hex digits are byte 0, bits 7..0) or "
        "big_endian (the hex text is one number, its last digit holds bit 0); NULL: "
        "decided per file from its before and after images.",
    )
    history_table: Mapped[str | None] = mapped_column(
        Text,
        comment="A Qlik table's point-in-time history (<db_table>_history in its schema, one "
        "row per version: doc/qlik-history.md); NULL: none kept. Set by the table's history "
        "revision.",
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    snapshots: Mapped[list[TableSnapshot]] = relationship(back_populates="table")

    @property
    def target(self) -> tuple[str, str]:
        """(db_schema, db_table): its current-state table. Raises OnboardingError for a
        table registered without one (every table the sources onboard has one)."""
        if self.db_schema is None or self.db_table is None:
            raise OnboardingError(f"{self.name} has no current-state table (db_schema, db_table)")
        return self.db_schema, self.db_table


class TableSnapshot(Base):
    __tablename__ = "table_snapshots"
    __table_args__ = (
        UniqueConstraint("table_id", "snapshot"),
        {"comment": "Full loads of a table: a table's state is its latest snapshot plus changes."},
    )

    id: Mapped[int] = _id("The snapshot's id (load_snapshots.snapshot_id).")
    table_id: Mapped[int] = mapped_column(
        ForeignKey("source_tables.id", ondelete="CASCADE"), comment=TABLE_ID_COMMENT
    )
    snapshot: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="When the full load started (its first file's time)."
    )
    snapshot_s3_key: Mapped[str] = mapped_column(Text, comment="Key of the LOAD00000001 file.")
    rebuilds: Mapped[int] = mapped_column(
        Integer,
        server_default=text("0"),
        comment="Times the table was rebuilt from this snapshot's parts and changes "
        "because a part became visible after its changes were applied.",
    )
    rebuilt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="When the last rebuild was committed."
    )
    created_at: Mapped[datetime] = _created()

    table: Mapped[SourceTable] = relationship(back_populates="snapshots")


class Load(Base):
    __tablename__ = "loads"
    __table_args__ = (
        # Qlik rewrites LOAD00000001 under the same key when a task reloads, so a file is
        # its key plus its version: last-modified time and ETag (revision 0004).
        UniqueConstraint("s3_key", "s3_modified", "s3_etag", postgresql_nulls_not_distinct=True),
        Index("ix_loads_table_id_status", "table_id", "status"),
        Index(
            "ix_loads_status_pending",
            "status",
            postgresql_where=text("status <> 'archived'"),
        ),
        {"comment": "Every file that landed in the incoming zone, and where it is in the flow."},
    )

    id: Mapped[int] = _id("The load's id, as `loads show`, `loads retry` and the alerts name it.")
    table_id: Mapped[int] = mapped_column(
        ForeignKey("source_tables.id", ondelete="CASCADE"), comment=TABLE_ID_COMMENT
    )
    status: Mapped[LoadStatus] = mapped_column(
        Enum(
            LoadStatus,
            name="load_status",
            native_enum=False,
            create_constraint=True,
            length=32,
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
        comment="ready -> ingesting -> ready_for_archiving -> archiving -> archived; "
        "on failure ready_for_erroring -> erroring -> errored. "
        "An operator may skip a ready or errored load (skipped).",
    )
    s3_key: Mapped[str] = mapped_column(Text, comment="Key in the incoming zone.")
    s3_modified: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="Last-modified time of the object."
    )
    s3_size: Mapped[int] = mapped_column(BigInteger, comment="Size of the object in bytes.")
    s3_etag: Mapped[str | None] = mapped_column(
        Text,
        comment="Version of the object the load recorded: its S3 ETag (the local store: "
        "modification time in ns and inode). NULL for loads recorded before revision 0004.",
    )
    is_raw: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), comment="Loaded without type casts."
    )
    error: Mapped[str | None] = mapped_column(
        Text, comment="Why the load failed: file, line, column and reason."
    )
    # The parts of `error` (revision 0010): NULL for loads errored before it.
    error_file: Mapped[str | None] = mapped_column(
        Text, comment="The file the error names (an incoming key, or a companion)."
    )
    error_line: Mapped[int | None] = mapped_column(
        Integer, comment="The line (CSV record) of that file, from 1."
    )
    error_column: Mapped[str | None] = mapped_column(Text, comment="The column of that file.")
    error_reason: Mapped[str | None] = mapped_column(
        Text, comment="The reason, without file, line, column and ids."
    )
    rows: Mapped[int | None] = mapped_column(
        BigInteger, comment="Records the load applied; NULL until then."
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    table: Mapped[SourceTable] = relationship()
    snapshot_link: Mapped[LoadSnapshot | None] = relationship(back_populates="load")


class LoadSnapshot(Base):
    __tablename__ = "load_snapshots"
    __table_args__ = {"comment": "The snapshot each load belonged to when it was recorded."}

    load_id: Mapped[int] = mapped_column(
        ForeignKey("loads.id", ondelete="CASCADE"), primary_key=True, comment="The load (loads.id)."
    )
    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("table_snapshots.id", ondelete="CASCADE"),
        index=True,
        comment="The snapshot (table_snapshots.id) the load belonged to.",
    )

    load: Mapped[Load] = relationship(back_populates="snapshot_link")
    snapshot: Mapped[TableSnapshot] = relationship()


class LoadEvent(Base):
    __tablename__ = "load_events"
    __table_args__ = {"comment": "Every status change of every load, in order: its history."}

    id: Mapped[int] = _id("The event's id, in the order the changes were recorded.")
    load_id: Mapped[int] = mapped_column(
        ForeignKey("loads.id", ondelete="CASCADE"),
        index=True,
        comment="The load (loads.id) whose status changed.",
    )
    from_status: Mapped[str] = mapped_column(Text, comment="Status before.")
    to_status: Mapped[str] = mapped_column(Text, comment="Status after.")
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=text("clock_timestamp()"),
        comment="When the status changed.",
    )
    actor: Mapped[str | None] = mapped_column(
        Text,
        comment="Who changed it, for an operator's action (retry, skip); NULL: the platform.",
    )
    reason: Mapped[str | None] = mapped_column(
        Text, comment="Why, when someone said (a skip's reason)."
    )


class DeletedKey(Base):
    __tablename__ = "deleted_keys"
    __table_args__ = (
        # The newest tombstone of a table in one index read (revision 0018).
        Index("ix_deleted_keys_table_id_change_seq", "table_id", "change_seq"),
        {
            "comment": "Keys a change deleted from a current-state table, with the change's "
            "sequence: an older change for the key that arrives later must not bring it "
            "back."
        },
    )

    table_id: Mapped[int] = mapped_column(
        ForeignKey("source_tables.id", ondelete="CASCADE"),
        primary_key=True,
        comment=TABLE_ID_COMMENT,
    )
    key: Mapped[list] = mapped_column(
        JSONB, primary_key=True, comment="The row's key values, as a JSON array in key order."
    )
    change_seq: Mapped[str] = mapped_column(
        String(35, collation="C"), comment="header__change_seq of the delete."
    )
    load_id: Mapped[int] = mapped_column(BigInteger, comment="The load whose file deleted it.")


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (
        # One dead letter per record, however often its file is replayed (revision 0012).
        UniqueConstraint("table_id", "record_key"),
        {
            "comment": "Records a load could not make rows of (each once, by its key at the "
            "source), with the reason; the rest of their file loaded."
        },
    )

    id: Mapped[int] = mapped_column(
        BigInteger, Identity(always=False), primary_key=True, comment="The dead letter's id."
    )
    table_id: Mapped[int] = mapped_column(
        ForeignKey("source_tables.id", ondelete="CASCADE"),
        comment="The table (source_tables.id) the record was meant for.",
    )
    record_key: Mapped[list] = mapped_column(
        JSONB,
        comment="The record's identity at its source, a JSON array: Kafka [topic, "
        "partition, offset]; a line with no identity of its own [file key, line].",
    )
    load_id: Mapped[int] = mapped_column(
        ForeignKey("loads.id", ondelete="CASCADE"),
        index=True,
        comment="The load whose file first carried the record (replays add nothing).",
    )
    line: Mapped[int] = mapped_column(Integer, comment="Its line in that file, from 1.")
    field: Mapped[str | None] = mapped_column(
        Text, comment="The field at fault (e.g. tapId, fare, extra.note); NULL: the record."
    )
    reason: Mapped[str] = mapped_column(Text, comment="Why it is not a row.")
    record: Mapped[str] = mapped_column(
        Text, comment="The record as the file held it (bytes PostgreSQL cannot hold replaced)."
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When it was dead-lettered."
    )


class DmapFeed(Base):
    __tablename__ = "dmap_feeds"
    __table_args__ = {"comment": "DMAP API feeds fetched daily."}

    id: Mapped[int] = _id("The feed's id (dmap_datasets.feed_id).")
    relative_url: Mapped[str] = mapped_column(
        Text, unique=True, comment="e.g. /controlledresearchusersapi/transactional/device_event"
    )
    # The feed's mark (the newest last_updated fetched) is a landing mark since revision
    # 0016: landing_marks, source cubic_dmap, item the relative_url.
    is_active: Mapped[bool] = mapped_column(
        Boolean,
        server_default=text("true"),
        comment="Fetched by `data-platform dmap fetch`; false pauses the feed.",
    )
    last_fetched_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="When a fetch of the feed last ended, with or without error.",
    )
    last_error: Mapped[str | None] = mapped_column(
        Text, comment="Why the last fetch stopped; NULL when it went through."
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class DmapDataset(Base):
    __tablename__ = "dmap_datasets"
    __table_args__ = {"comment": "Datasets a DMAP feed published, one file each."}

    id: Mapped[int] = _id("The dataset's id.")
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("dmap_feeds.id", ondelete="CASCADE"),
        index=True,
        comment="The feed (dmap_feeds.id) that published it.",
    )
    type: Mapped[str] = mapped_column(Text, comment="Dataset type, e.g. device_event.")
    dataset_id: Mapped[str] = mapped_column(
        Text,
        unique=True,
        comment="The vendor's dataset id, <type>_YYYYMMDD, e.g. device_event_20220517.",
    )
    start_date: Mapped[date] = mapped_column(Date, comment="First day the dataset covers.")
    end_date: Mapped[date] = mapped_column(Date, comment="Last day the dataset covers.")
    last_updated: Mapped[datetime] = mapped_column(
        DateTime(timezone=False),
        comment="When the vendor last (re)issued the dataset (the vendor's naive time, as given).",
    )
    s3_key: Mapped[str | None] = mapped_column(
        Text,
        comment="Key of the dataset's file in the incoming zone: cubic/dmap/<type>/<id>.csv.gz.",
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class LandingMark(Base):
    __tablename__ = "landing_marks"
    __table_args__ = (
        _source_name_check(),
        {
            "comment": "Where the next landing of each item of a source resumes (a totesys "
            "table, a DMAP feed, a pedestrian dataset); moved only after the file that "
            "reached it is in incoming."
        },
    )

    source: Mapped[SourceName] = mapped_column(
        Text, primary_key=True, comment="The source (source_tables.source), e.g. totesys."
    )
    item: Mapped[str] = mapped_column(
        Text,
        primary_key=True,
        comment="What of the source the mark is of: a totesys table, a DMAP feed's path, "
        "a pedestrian dataset id.",
    )
    mark: Mapped[dict] = mapped_column(
        JSONB,
        comment="Where the next landing resumes, in the source's own terms (a JSON object "
        "only the source reads and writes): totesys {updated, key, horizon, identity}, "
        "cubic_dmap {last_updated}, melbourne_pedestrian {next_date, portal}: portal, "
        "the address its counts were fetched from, the only one verify compares them with.",
    )
    last_key: Mapped[str | None] = mapped_column(
        Text, comment="Incoming key of the last file that moved the mark; NULL: none yet."
    )
    rows: Mapped[int | None] = mapped_column(
        BigInteger, comment="Rows in that file, where the source counts them."
    )
    marked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),
        comment="When the mark last moved (totesys: its pass's time, which orders passes).",
    )


class Landing(Base):
    __tablename__ = "landings"
    __table_args__ = (
        _source_name_check(),
        {
            "comment": "The last landing of each source (a fetch, an extraction, a topic "
            "consumed into incoming), by `data-platform run` or the source's own command: "
            "when, what it landed, why it failed. `run` lands a source again once its "
            "interval (<SOURCE>_LAND_EVERY) has passed since started_at."
        },
    )

    source: Mapped[SourceName] = mapped_column(
        Text, primary_key=True, comment="The source (source_tables.source), e.g. cubic_dmap."
    )
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="When the last landing started."
    )
    ended_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        comment="When it ended (a landing is recorded when it ends: one killed leaves the "
        "last one's).",
    )
    files: Mapped[int | None] = mapped_column(
        Integer, comment="Files it put into incoming; NULL when it failed as a whole."
    )
    error: Mapped[str | None] = mapped_column(
        Text,
        comment="Why it failed: the whole landing's reason, or one line per failed item "
        "(feed, dataset, table, topic); NULL: it went through.",
    )
    succeeded_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="When a landing of the source last ended without a failure.",
    )


class AlertEvent(Base):
    __tablename__ = "alert_events"
    __table_args__ = (
        # One open alert per failure: a failure with an open row is not sent again; once
        # resolved, its next occurrence is a new row and a new alert (revision 0011).
        Index(
            "uq_alert_events_open_fingerprint",
            "fingerprint",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
        {
            "comment": "Alerts sent, open until their cause clears (resolved_at): a failure "
            "with an open alert is not sent again."
        },
    )

    id: Mapped[int] = _id("The alert's id.")
    fingerprint: Mapped[str] = mapped_column(
        Text,
        comment="What failed, stably named (kind and subject): one open alert per failure.",
    )
    kind: Mapped[str] = mapped_column(
        Text,
        comment="load, land, transform, run, verify, fresh (fetch, extract: landings before "
        "revision 0016).",
    )
    subject: Mapped[str] = mapped_column(Text, comment="What failed: a load id, ...")
    message: Mapped[str] = mapped_column(Text, comment="The alert's text, no secrets.")
    channels: Mapped[str] = mapped_column(Text, comment="Where it was sent, how it went.")
    sent_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When it was sent."
    )
    resolved_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="When its cause cleared (the load retried, skipped or archived; the next "
        "good pass, fetch, extraction or build); NULL: open.",
    )
    load_id: Mapped[int | None] = mapped_column(
        ForeignKey("loads.id", ondelete="CASCADE"),
        index=True,
        comment="The load a load alert is about (loads.id): the load's transitions out of "
        "its failure resolve it; NULL for other kinds.",
    )


class SchemaChange(Base):
    __tablename__ = "schema_changes"
    __table_args__ = (
        CheckConstraint("change IN ('added', 'widened', 'removed')", name="change"),
        {
            "comment": "Columns of source tables changed by evolution revisions (reviewed "
            "schema changes), oldest first."
        },
    )

    id: Mapped[int] = _id("The change's id, in the order the changes were recorded.")
    table_id: Mapped[int] = mapped_column(
        ForeignKey("source_tables.id", ondelete="CASCADE"), index=True, comment=TABLE_ID_COMMENT
    )
    revision: Mapped[str] = mapped_column(
        Text,
        comment="The Alembic revision that made the change (its downgrade removes the row).",
    )
    column_name: Mapped[str] = mapped_column(Text, comment="The table column.")
    change: Mapped[str] = mapped_column(
        Text,
        comment="added, widened, or removed (at the source; the column stays, NULL in new rows).",
    )
    from_type: Mapped[str | None] = mapped_column(
        Text, comment="The column's type before (format_type); NULL when added."
    )
    to_type: Mapped[str | None] = mapped_column(
        Text, comment="The column's type after (format_type); NULL when removed."
    )
    table_version: Mapped[int | None] = mapped_column(
        Integer,
        comment="The source's table version that brought the change (Qlik .dfm "
        "tableVersion); NULL when the source has none.",
    )
    applied_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When the revision was applied."
    )


class Verification(Base):
    __tablename__ = "verifications"
    __table_args__ = (
        _source_name_check(),
        CheckConstraint("verdict IN ('ok', 'mismatch')", name="verdict"),
        Index("ix_verifications_source_check_subject", "source", "check", "subject", "id"),
        {
            "comment": "Each check of a table against its source (`data-platform verify`, and "
            "a Qlik table against each new snapshot before it is swapped in), newest last: "
            "what was compared, the verdict, and the keys that differ (up to a limit)."
        },
    )

    id: Mapped[int] = _id("The check's id, in the order they ran.")
    checked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When it ran."
    )
    source: Mapped[str] = mapped_column(Text, comment=SOURCE_COMMENT)
    check: Mapped[str] = mapped_column(
        Text,
        comment="What was compared: snapshot_drift (a Qlik table against a new snapshot), "
        "dataset_rows (DMAP rows per dataset against its file), key_ranges (a totesys "
        "table against the source database, count and hash per key range).",
    )
    subject: Mapped[str] = mapped_column(
        Text, comment="What it is about: the table (schema.table), or table and dataset."
    )
    table_id: Mapped[int | None] = mapped_column(
        ForeignKey("source_tables.id", ondelete="CASCADE"), comment=TABLE_ID_COMMENT
    )
    load_id: Mapped[int | None] = mapped_column(
        BigInteger, comment="The load it was checked for (a new snapshot's); NULL: none."
    )
    verdict: Mapped[str] = mapped_column(Text, comment="ok, or mismatch.")
    expected: Mapped[int | None] = mapped_column(
        BigInteger, comment="Rows the source says (its file, snapshot or database)."
    )
    actual: Mapped[int | None] = mapped_column(BigInteger, comment="Rows the table holds.")
    differing: Mapped[int] = mapped_column(
        BigInteger, server_default="0", comment="How many keys (or datasets) differ."
    )
    keys: Mapped[list] = mapped_column(
        JSONB,
        server_default=text("'[]'::jsonb"),
        comment="The first differing keys, each {key, kind}: kind missing (in the source, not "
        "the table), extra (in the table, not the source) or different (columns differ).",
    )
    detail: Mapped[str | None] = mapped_column(Text, comment="One line on what differs.")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("trigger IN ('cli', 'watch', 'web')", name="trigger"),
        CheckConstraint("status IN ('running', 'ok', 'failed', 'stopped')", name="status"),
        {
            "comment": "Every pass of `data-platform run` (once, each --watch pass, a table's "
            "run from the page): when, how long, what it landed, loaded, transformed and "
            "verified, what it printed and its log (doc/operations.md, Runs)."
        },
    )

    id: Mapped[int] = _id("The pass's id, in the order they started.")
    trigger: Mapped[str] = mapped_column(
        Text, comment="cli (`run` once), watch (a `run --watch` pass) or web (the page's Run)."
    )
    actor: Mapped[str | None] = mapped_column(Text, comment="Who ran it from the page.")
    subject: Mapped[str | None] = mapped_column(
        Text, comment="The one table it ran (the page's Run); NULL: every source."
    )
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When it started."
    )
    finished_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="When it ended; NULL: running, or killed."
    )
    seconds: Mapped[float | None] = mapped_column(Double, comment="How long it took.")
    status: Mapped[str] = mapped_column(
        Text,
        server_default="running",
        comment="running; ok (exit 0); failed (exit non-zero: an errored load, a failed "
        "landing item, test or verification); stopped (a source or the pass stopped).",
    )
    exit_code: Mapped[int | None] = mapped_column(
        Integer, comment="What `run` exited with (README, Exit codes)."
    )
    landed: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Files landed in incoming."
    )
    recorded: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="New loads recorded by the scans."
    )
    archived: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Loads applied and archived."
    )
    errored: Mapped[int] = mapped_column(Integer, server_default="0", comment="Loads errored.")
    rows: Mapped[int] = mapped_column(BigInteger, server_default="0", comment="Rows applied.")
    dead_letters: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Records dead-lettered."
    )
    transform: Mapped[str | None] = mapped_column(
        Text, comment="The dbt build after it: ok or failed; NULL: none ran."
    )
    failed_tests: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="dbt models and tests that failed or errored."
    )
    verified: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Verifications run after it."
    )
    mismatches: Mapped[int] = mapped_column(
        Integer, server_default="0", comment="Verifications that found a mismatch."
    )
    summary: Mapped[dict] = mapped_column(
        JSONB,
        server_default=text("'{}'::jsonb"),
        comment="What each source did (`run --json`'s object), the failing dbt nodes and "
        "the verifications.",
    )
    output: Mapped[str] = mapped_column(
        Text, server_default="", comment="What `run` printed for the pass."
    )
    log: Mapped[str] = mapped_column(
        Text,
        server_default="",
        comment="The pass's log lines (INFO and up, the first RUN_LOG_LINES), without secrets.",
    )


class RevokedSession(Base):
    __tablename__ = "web_revoked_sessions"
    __table_args__ = {
        "comment": "Login sessions of the operations page ended by Log out: a session cookie "
        "naming one is refused until it would have expired anyway (then the row goes)."
    }

    sid: Mapped[str] = mapped_column(
        Text, primary_key=True, comment="The session's random id, sealed in its cookie."
    )
    revoked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When it logged out."
    )
    expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="When the session would have expired."
    )


class LoginFailure(Base):
    __tablename__ = "web_login_failures"
    __table_args__ = (
        Index("ix_web_login_failures_client_at", "client", "at"),
        {
            "comment": "Failed logins to the operations page, by client address: too many "
            "within a minute and the next attempts are refused (429) until it passes."
        },
    )

    id: Mapped[int] = _id("The failure's id.")
    client: Mapped[str] = mapped_column(Text, comment="The client's address.")
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="When it failed."
    )
