"""The read model of the operations page: what the HTML pages show and /api returns.

Times are timezone-aware (UTC from the database); the pages show them in the operator's
zone (DATA_PLATFORM_TIMEZONE), the API as ISO 8601 with their offset. Vendor marks that
the vendor gave without a zone (DMAP's last_updated, totesys' own clock) stay naive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# Why a table is where it is in the overview, worst first.
TableState = Literal["failed", "late", "behind", "never", "ok", "inactive"]
STATE_ORDER: dict[str, int] = {
    "failed": 0,
    "late": 1,
    "behind": 2,
    "never": 3,
    "ok": 4,
    "inactive": 5,
}


class LoadErrorText(BaseModel):
    """A load's error: the whole message (loads.error, `<file>: line <n>, column <c>:
    <reason> (table t, load 7)`) and its parts as stored beside it (revision 0010)."""

    text: str = Field(description="The whole message, as stored.")
    file: str | None = Field(None, description="The file (incoming key) it names.")
    line: int | None = Field(None, description="The line of the file, from 1.")
    column: str | None = Field(None, description="The column of the file.")
    reason: str = Field(description="The reason, without file, line, column and ids.")


class RowCount(BaseModel):
    value: int
    exact: bool = Field(description="False: PostgreSQL's estimate (a large table).")


class TableSummary(BaseModel):
    """One source table in the overview."""

    name: str = Field(description="Platform name, e.g. cubic_ods_qlik__edw_sample.")
    source: str
    source_name: str = Field(description="The source's own name, e.g. EDW.SAMPLE.")
    db_name: str | None = Field(None, description="schema.table of the current-state table.")
    s3_prefix: str
    is_active: bool
    loads: dict[str, int] = Field(description="Loads by status.")
    rows_applied: int = Field(description="Records the table's archived loads applied.")
    rows: RowCount | None = Field(None, description="Rows in the current-state table now.")
    last_success_at: datetime | None = Field(
        None, description="When a load of the table was last archived."
    )
    last_landed_at: datetime | None = Field(None, description="Newest file's landing time.")
    expected_hours: float = Field(description="Freshness expectation (FRESHNESS_HOURS...).")
    age_seconds: float | None = Field(
        None, description="Data age: seconds since the newest file applied to it landed."
    )
    backlog_files: int = Field(0, description="Files waiting (recorded, not yet applied).")
    backlog_bytes: int = Field(0, description="Their bytes.")
    oldest_waiting_seconds: float | None = Field(
        None, description="Seconds the oldest of them has waited since it landed."
    )
    state: TableState
    latest_error: LoadErrorText | None = None
    latest_error_load_id: int | None = None
    latest_error_file: str | None = Field(None, description="Its key in the error zone.")
    snapshot: datetime | None = Field(None, description="The current snapshot's time (Qlik).")
    snapshot_rebuilds: int = 0
    schema_change_loads: int = Field(0, description="Loads errored by a schema change.")
    evolve_command: str | None = Field(None, description="The command that resolves it.")
    dead_letters: int = Field(
        0, description="Records of its loads that are not rows (dead_letters), each once."
    )
    latest_dead_letter_load_id: int | None = Field(
        None, description="The newest load that gave a dead letter."
    )


class SourceSummary(BaseModel):
    name: str
    tables: int
    state: TableState | None = Field(None, description="Its worst table's; None: no tables.")
    loads: dict[str, int]


class FeedMark(BaseModel):
    """A DMAP feed: where its next fetch resumes."""

    feed: str
    is_active: bool
    mark: datetime | None = Field(None, description="Newest last_updated fetched (vendor time).")
    last_fetched_at: datetime | None = None
    last_error: str | None = None
    datasets: int


class Mark(BaseModel):
    """Where an incremental fetch or extraction resumes (totesys, pedestrian counts)."""

    source: str
    subject: str = Field(description="The source's table or dataset.")
    position: str = Field(description="The mark itself, as the source keeps it.")
    last_key: str | None = Field(None, description="The incoming key of the last file.")
    at: datetime | None = Field(None, description="When the last file landed.")
    rows: int | None = None


class OpenAlert(BaseModel):
    """A failure alerted and not cleared yet (alert_events)."""

    kind: str
    subject: str
    message: str
    channels: str
    sent_at: datetime


class VerificationView(BaseModel):
    """The newest result of one check of a table against its source (verifications)."""

    source: str
    check: str
    subject: str
    verdict: str = Field(description="ok, or mismatch.")
    expected: int | None = Field(description="Rows the source says, where the check counts.")
    actual: int | None = Field(description="Rows the table holds, where the check counts.")
    differing: int = Field(description="Keys (or datasets) that differ.")
    keys: list[dict] = Field(description="The first differing keys: {key, kind}.")
    checked_at: datetime | None


class Activity(BaseModel):
    """Loads finished and rows applied per hour, in the operator's zone, oldest first."""

    hours: list[str] = Field(description="Hour labels, YYYY-MM-DD HH:00 in the zone.")
    archived: list[int]
    errored: list[int]
    rows: list[int]

    @property
    def empty(self) -> bool:
        return not any(self.archived) and not any(self.errored)


class Overview(BaseModel):
    generated_at: datetime
    timezone: str
    database: str = Field(description="The metadata database, password masked.")
    revisions: list[str]
    at_head: bool
    sources: list[SourceSummary]
    tables: list[TableSummary] = Field(description="Failed and late tables first.")
    feeds: list[FeedMark]
    marks: list[Mark]
    alerts: list[OpenAlert]
    verifications: list[VerificationView] = Field(
        default_factory=list, description="The newest result of each check, mismatches first."
    )
    activity: Activity
    unknown_freshness_tables: list[str] = Field(
        description="Names in FRESHNESS_HOURS_BY_TABLE that no table goes by."
    )


class LoadView(BaseModel):
    """A load in a table's list: durations from its load_events."""

    id: int
    status: str
    key: str
    size: int
    rows: int | None
    landed_at: datetime = Field(description="The file's last-modified time.")
    recorded_at: datetime = Field(description="When the scan recorded it.")
    started_at: datetime | None = Field(None, description="Last ready -> ingesting.")
    applied_at: datetime | None = Field(None, description="Last move out of ingesting.")
    finished_at: datetime | None = Field(None, description="archived, errored or skipped.")
    apply_seconds: float | None = Field(None, description="started_at to applied_at.")
    total_seconds: float | None = Field(None, description="recorded_at to finished_at.")
    error: LoadErrorText | None = None
    error_file: str | None = Field(None, description="Its key in the error zone (errored).")
    last_actor: str | None = Field(None, description="Who last acted on it (retry, skip).")


class ColumnView(BaseModel):
    name: str
    type: str
    nullable: bool
    primary_key: bool
    comment: str | None


class RevisionView(BaseModel):
    revision: str
    down_revision: str | None
    message: str = Field(description="The revision's first docstring line.")
    file: str
    history: str = Field(description="Its version table (alembic_version, or the demo's).")
    applied: bool | None = Field(None, description="None: the database's state is unknown.")


class SchemaChangeView(BaseModel):
    revision: str
    column: str
    change: str
    from_type: str | None
    to_type: str | None
    table_version: int | None
    applied_at: datetime | None


class TablePage(BaseModel):
    table: TableSummary
    table_comment: str | None
    columns: list[ColumnView] = Field(description="Empty: no current-state table.")
    revisions: list[RevisionView]
    schema_changes: list[SchemaChangeView]
    loads: list[LoadView] = Field(description="The newest loads, newest first.")
    errored: list[LoadView] = Field(description="Its errored loads, newest first.")
    preview: list[list[str | None]] = Field(
        default_factory=list,
        description="Its newest rows (by the load that wrote them), values as text, in the "
        "order of `columns`.",
    )
    marks: list[Mark]
    activity: Activity


class EventView(BaseModel):
    at: datetime
    from_status: str
    to_status: str
    actor: str | None
    reason: str | None
    after_seconds: float | None = Field(None, description="Since the previous event.")


class DeadLetterView(BaseModel):
    """A record of a load's file that is not a row, and why (dead_letters)."""

    record_key: list = Field(description="Its key at the source: Kafka [topic, partition, offset].")
    line: int = Field(description="Its line in the load's file, from 1.")
    field: str | None = Field(None, description="The field at fault; None: the record.")
    reason: str


class LoadPage(BaseModel):
    id: int
    table: str
    source: str
    status: str
    key: str
    size: int
    rows: int | None
    landed_at: datetime
    updated_at: datetime
    etag: str | None
    snapshot_id: int | None
    file: str = Field(description="Where its file is now: zone and key.")
    companions: list[str] = Field(description="Files that travel with it (a .dfm).")
    error: LoadErrorText | None
    events: list[EventView]
    total_seconds: float | None = Field(None, description="First event to last.")
    dead_letter_count: int = Field(
        0, description="Records of its file this load dead-lettered (first to carry them)."
    )
    dead_letters: list[DeadLetterView] = Field(
        default_factory=list, description="The first of them, by line."
    )


class DbtNode(BaseModel):
    unique_id: str
    name: str
    kind: str = Field(description="model, test, seed, snapshot, ...")
    status: str
    failures: int | None
    message: str | None
    execution_seconds: float | None
    test_type: str | None = Field(None, description="not_null, unique, ... or singular.")
    column: str | None = None
    attached_to: str | None = Field(None, description="The model a test tests.")
    fed_by: list[str] = Field(
        default_factory=list,
        description="A test that did not pass: the platform tables upstream of it (lineage).",
    )
    failing_rows: list[dict[str, str | None]] = Field(
        default_factory=list,
        description="A test that did not pass: its first failing rows (dbt store_failures).",
    )
    failures_relation: str | None = Field(
        None, description="schema.view holding all its failing rows (dbt store_failures)."
    )


class TransformPage(BaseModel):
    found: bool = Field(description="False: no dbt build ran on this data home yet.")
    project: str
    command: str | None = None
    generated_at: datetime | None = None
    elapsed_seconds: float | None = None
    dbt_version: str | None = None
    ok: bool | None = None
    summary: str | None = None
    full_build: bool = Field(
        False, description="True: the last build of every model (a --select run never hides it)."
    )
    later_run: str | None = Field(
        None, description="A run after that build on part of the models (--select), in one line."
    )
    later_run_at: datetime | None = None
    models: list[DbtNode] = Field(default_factory=list)
    tests: list[DbtNode] = Field(default_factory=list)
    other: list[DbtNode] = Field(default_factory=list)


class ActionResult(BaseModel):
    """What an action did (the CLI's output lines), and who did it."""

    ok: bool
    action: Literal["retry", "skip", "run"]
    subject: str
    actor: str
    lines: list[str]


class ApiError(BaseModel):
    error: str
    exit_code: int | None = Field(None, description="The CLI's exit code for this error.")


class RunView(BaseModel):
    """One pass of `data-platform run` (`runs`), as the runs list shows it."""

    id: int
    trigger: str = Field(description="cli, watch (a --watch pass) or web (the page's Run).")
    actor: str | None
    subject: str | None = Field(None, description="The one table it ran; None: every source.")
    started_at: datetime
    finished_at: datetime | None = Field(None, description="None: running, or killed.")
    seconds: float | None
    status: str = Field(description="running, ok, failed or stopped.")
    exit_code: int | None
    landed: int
    recorded: int
    archived: int
    errored: int
    rows: int
    dead_letters: int
    transform: str | None = Field(None, description="The dbt build: ok, failed; None: none.")
    failed_tests: int
    verified: int
    mismatches: int


class RunsPage(BaseModel):
    runs: list[RunView]
    older: int | None = Field(None, description="The id to list from for older passes.")


class RunPage(RunView):
    summary: dict = Field(description="What each source did, the failing dbt nodes, the checks.")
    output: str = Field(description="What `run` printed.")
    log: str = Field(description="Its log lines, INFO and up.")


class SkipRequest(BaseModel):
    reason: str = Field(description="Why the load is never to be applied (recorded).")


class LineageNodeView(BaseModel):
    id: str = Field(description="source:<name>, table:<name>, or dbt's unique id.")
    kind: str = Field(description="source, table, model or test (one that did not pass).")
    name: str
    state: str
    url: str
    layer: int = Field(description="Its column, left to right: sources 0, tables 1, models.")
    detail: str = ""
    fed_by: list[str] = Field(
        default_factory=list, description="A test's: the platform tables upstream of it."
    )


class LineageGraph(BaseModel):
    built: bool = Field(description="False: no dbt build yet, so no models.")
    nodes: list[LineageNodeView]
    edges: list[list[str]] = Field(description="[from id, to id] pairs.")
