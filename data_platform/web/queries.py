"""The read model from the metadata database: the overview, a table's loads, a load.

What `data-platform status` and `loads show` already compute is reused from
`data_platform.loads.report` (loads by status, latest error, snapshot, DMAP feeds) and
`data_platform.loads.history` (a load's detail); this module adds what a page needs
besides: freshness, row counts, durations from load_events, marks, open alerts and the
hourly activity. Every free text that comes from outside (errors, alert messages) is
scrubbed of secrets here (`data_platform.alerts.scrub`); the renderer masks the known
secrets once more in every value it prints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, text
from sqlalchemy import table as sa_table
from sqlalchemy.orm import Session

from data_platform.alerts.scrub import scrub, secrets
from data_platform.db import migrations
from data_platform.db.engine import (
    dbapi_cursor,
    get_engine,
    masked,
    rows_within,
    session_factory,
)
from data_platform.db.models import (
    AlertEvent,
    LandingMark,
    Load,
    LoadEvent,
    LoadStatus,
    SourceTable,
)
from data_platform.errors import DataPlatformError
from data_platform.loads.freshness import Freshness, freshness
from data_platform.loads.moves import error_key
from data_platform.loads.report import TableStatus, feed_statuses, table_statuses
from data_platform.loads.state import ERROR_COLUMNS, LoadErrorParts
from data_platform.loads.tables import names_of, resolve_tables, source_name
from data_platform.loads.verify import latest as latest_verifications
from data_platform.settings import Settings, get_settings
from data_platform.web.model import (
    STATE_ORDER,
    Activity,
    DeadLetterView,
    EventView,
    FeedMark,
    LoadErrorText,
    LoadPage,
    LoadView,
    Mark,
    OpenAlert,
    Overview,
    RowCount,
    SourceSummary,
    TablePage,
    TableState,
    TableSummary,
    VerificationView,
)

# Below this estimate a table's rows are counted exactly (a count(*) of a few ms).
EXACT_COUNT_BELOW = 1_000_000
COUNT_TIMEOUT_MS = 2000
ACTIVITY_HOURS = 48
FINAL = (LoadStatus.ARCHIVED.value, LoadStatus.ERRORED.value, LoadStatus.SKIPPED.value)


class NotFound(DataPlatformError):
    """No such table or load (HTTP 404; the CLI's exit code 2)."""

    exit_code = 2


# --- errors ---------------------------------------------------------------------------------


def error_text(parts: LoadErrorParts | None, clean: Scrubber) -> LoadErrorText | None:
    """A load's stored error for a page, secrets masked: its parts as `transition` wrote
    them; a load errored before revision 0010 shows its whole message as the reason."""
    if parts is None:
        return None
    text = clean(parts.text) or ""
    return LoadErrorText(
        text=text,
        file=clean(parts.file),
        line=parts.line,
        column=clean(parts.column),
        reason=clean(parts.reason) if parts.reason is not None else text,
    )


class Scrubber:
    """Masks secrets in free text (the alert scrub: known secrets, URL passwords and
    query strings)."""

    def __init__(self, settings: Settings) -> None:
        self.known = secrets(settings)

    def __call__(self, value: str | None) -> str | None:
        return None if value is None else scrub(value, self.known)


# --- the overview ---------------------------------------------------------------------------


def unknown_freshness_names(settings: Settings, tables: Iterable[SourceTable]) -> list[str]:
    known = {name.lower() for table in tables for name in names_of(table)}
    return sorted(n for n in settings.freshness_hours_by_table if n.lower() not in known)


def table_state(status: TableStatus, fresh: Freshness) -> TableState:
    """inactive; failed (an error not archived or skipped); else the table's freshness
    (`loads.freshness`): late (stale: its data older than its expectation), behind (a
    file waiting longer than FRESHNESS_BEHIND_MINUTES), never (nothing applied), ok."""
    if not status.is_active:
        return "inactive"
    if status.latest_error:
        return "failed"
    return "late" if fresh.state == "stale" else fresh.state


def row_count(conn: Connection, schema: str | None, table: str | None) -> RowCount | None:
    """Rows in `schema.table`: exact below EXACT_COUNT_BELOW estimated rows (within
    COUNT_TIMEOUT_MS), else PostgreSQL's estimate. None when there is no such table.

    Runs inside `conn`'s transaction (the page's one connection): the exact count in a
    savepoint with its own statement timeout, the timeout put back after it."""
    if not schema or not table:
        return None
    found = conn.execute(
        text(
            "SELECT c.reltuples::bigint, coalesce(s.n_live_tup, 0) FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
            "WHERE c.oid = to_regclass(format('%I.%I', :schema, :table))"
        ),
        {"schema": schema, "table": table},
    ).first()
    if found is None:
        return None
    estimate = int(found[0]) if found[0] >= 0 else int(found[1])
    if estimate >= EXACT_COUNT_BELOW:
        return RowCount(value=estimate, exact=False)
    counted = rows_within(
        conn, select(func.count()).select_from(sa_table(table, schema=schema)), COUNT_TIMEOUT_MS
    )
    if counted is None:
        return RowCount(value=estimate, exact=False)
    return RowCount(value=int(counted[0][0] or 0), exact=True)


def _table_facts(conn: Connection) -> dict[int, tuple[datetime | None, datetime | None, int]]:
    """Per table id: last archived (its load's last status change), newest landing, rows
    applied by archived loads."""
    archived = Load.status == LoadStatus.ARCHIVED
    rows = conn.execute(
        select(
            Load.table_id,
            func.max(Load.updated_at).filter(archived),
            func.max(Load.s3_modified),
            func.coalesce(func.sum(Load.rows).filter(archived), 0),
        ).group_by(Load.table_id)
    )
    return {table_id: (last, landed, int(applied)) for table_id, last, landed, applied in rows}


def summaries(
    session: Session, settings: Settings, now: datetime, count_rows: bool = True
) -> tuple[list[TableSummary], list[SourceTable]]:
    """Every table's summary, failed and late first; and the tables."""
    clean = Scrubber(settings)
    statuses = {status.name: status for status in table_statuses(session)}
    tables = list(session.scalars(select(SourceTable).order_by(SourceTable.name)))
    conn = session.connection()
    facts = _table_facts(conn)
    fresh = {f.table: f for f in freshness(session, settings, now)}
    found = []
    for table in tables:
        status = statuses[table.name]
        last, landed, applied = facts.get(table.id, (None, None, 0))
        backlog = fresh[table.name]
        state = table_state(status, backlog)
        found.append(
            TableSummary(
                name=table.name,
                source=table.source,
                source_name=source_name(table.s3_prefix),
                db_name=f"{table.db_schema}.{table.db_table}" if table.db_table else None,
                s3_prefix=table.s3_prefix,
                is_active=table.is_active,
                loads=dict(sorted(status.counts.items())),
                rows_applied=applied,
                rows=row_count(conn, table.db_schema, table.db_table) if count_rows else None,
                last_success_at=last,
                last_landed_at=landed,
                expected_hours=backlog.expected_hours,
                age_seconds=backlog.data_age_seconds,
                backlog_files=backlog.backlog_files,
                backlog_bytes=backlog.backlog_bytes,
                oldest_waiting_seconds=backlog.oldest_waiting_seconds,
                state=state,
                latest_error=error_text(status.latest_error_parts, clean),
                latest_error_load_id=status.latest_error_load_id,
                latest_error_file=status.latest_error_file,
                snapshot=status.snapshot,
                snapshot_rebuilds=status.rebuilds,
                schema_change_loads=status.schema_change_loads,
                evolve_command=status.evolve_command,
                dead_letters=status.dead_letters,
                latest_dead_letter_load_id=status.latest_dead_letter_load_id,
            )
        )
    found.sort(key=lambda t: (STATE_ORDER[t.state], -(t.age_seconds or 0), t.source, t.name))
    return found, tables


def source_summaries(tables: Sequence[TableSummary]) -> list[SourceSummary]:
    """Every source the platform runs (`data_platform.run.all_sources`), in run order,
    then any other source that has tables."""
    from data_platform.run import all_sources

    names: list[str] = [source.name for source in all_sources()]
    names += sorted({t.source for t in tables} - set(names))
    found = []
    for name in names:
        mine = [t for t in tables if t.source == name]
        loads: dict[str, int] = {}
        for table in mine:
            for status, n in table.loads.items():
                loads[status] = loads.get(status, 0) + n
        worst = min((t.state for t in mine), key=STATE_ORDER.__getitem__, default=None)
        found.append(SourceSummary(name=name, tables=len(mine), state=worst, loads=loads))
    return found


def marks(session: Session) -> list[Mark]:
    """Where the sources the platform lands itself resume (`landing_marks`): totesys'
    tables, the pedestrian counts; each mark in its source's words (`Lander.position`).
    DMAP's feeds have a table of their own (`feed_statuses`)."""
    from data_platform.run import all_landers

    landers = {lander.source: lander for lander in all_landers()}
    found = session.scalars(
        select(LandingMark)
        .where(LandingMark.source != "cubic_dmap")
        .order_by(LandingMark.source, LandingMark.item)
    )
    return [
        Mark(
            source=mark.source,
            subject=mark.item,
            position=landers[mark.source].position(mark.mark)
            if mark.source in landers
            else json.dumps(mark.mark),
            last_key=mark.last_key,
            at=mark.marked_at,
            rows=mark.rows,
        )
        for mark in found
    ]


def open_alerts(session: Session, settings: Settings, limit: int = 50) -> list[OpenAlert]:
    """Failures alerted and not cleared yet, newest first."""
    clean = Scrubber(settings)
    return [
        OpenAlert(
            kind=alert.kind,
            subject=clean(alert.subject) or "",
            message=clean(alert.message) or "",
            channels=alert.channels,
            sent_at=alert.sent_at,
        )
        for alert in session.scalars(
            select(AlertEvent)
            .where(AlertEvent.resolved_at.is_(None))  # resolved ones stay, as history
            .order_by(AlertEvent.sent_at.desc(), AlertEvent.id.desc())
            .limit(limit)
        )
    ]


def activity(
    conn: Connection,
    zone: ZoneInfo,
    now: datetime,
    hours: int = ACTIVITY_HOURS,
    table_id: int | None = None,
) -> Activity:
    """Loads archived and errored, and rows applied, per hour of the last `hours` hours
    (of one table), labelled in `zone`."""
    since = now - timedelta(hours=hours)
    hour = func.date_trunc("hour", func.timezone(zone.key, LoadEvent.at)).label("hour")
    archived = LoadEvent.to_status == LoadStatus.ARCHIVED.value
    errored = LoadEvent.to_status == LoadStatus.ERRORED.value
    query = (
        select(
            hour,
            func.count().filter(archived),
            func.count().filter(errored),
            func.coalesce(func.sum(Load.rows).filter(archived), 0),
        )
        .join(Load, Load.id == LoadEvent.load_id)
        .where(
            LoadEvent.at > since,
            LoadEvent.to_status.in_([LoadStatus.ARCHIVED.value, LoadStatus.ERRORED.value]),
        )
        .group_by(hour)
    )
    if table_id is not None:
        query = query.where(Load.table_id == table_id)
    counted = {row[0]: row[1:] for row in conn.execute(query)}
    labels: dict[datetime, None] = {}
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for back in range(hours - 1, -1, -1):
        local = (start - timedelta(hours=back)).astimezone(zone).replace(tzinfo=None)
        labels[local] = None
    result = Activity(hours=[], archived=[], errored=[], rows=[])
    for local in labels:
        done, failed, rows = counted.get(local, (0, 0, 0))
        result.hours.append(f"{local:%Y-%m-%d %H}:00")
        result.archived.append(int(done))
        result.errored.append(int(failed))
        result.rows.append(int(rows))
    return result


def verification_views(conn: Connection) -> list[VerificationView]:
    """The newest result of each check (`verifications`), mismatches first."""
    with dbapi_cursor(conn) as cur:
        found = latest_verifications(cur)
    views = [
        VerificationView(
            source=v.source,
            check=v.check,
            subject=v.subject,
            verdict=v.verdict,
            expected=v.expected,
            actual=v.actual,
            differing=v.differing,
            keys=v.keys[:20],
            checked_at=v.checked_at,
        )
        for v in found
    ]
    return sorted(views, key=lambda v: v.verdict == "ok")


def database_state(conn: Connection) -> tuple[str, list[str], bool]:
    """The database (masked URL), its revisions (read over `conn`: a page uses one pooled
    connection, never a second), and whether it is at head."""
    config = migrations.alembic_config()
    url = config.get_main_option("sqlalchemy.url") or ""
    revisions = sorted(migrations.current_revisions(config, conn))
    try:
        at_head = set(revisions) == migrations.head_revisions(config)
    except Exception:  # a history the checkout cannot resolve: not at a known head
        at_head = False
    return masked(url), revisions, at_head


def overview(settings: Settings | None = None, now: datetime | None = None) -> Overview:
    """Everything the overview shows."""
    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    zone = ZoneInfo(settings.data_platform_timezone)
    clean = Scrubber(settings)
    with session_factory()() as session:
        database, revisions, at_head = database_state(session.connection())
        tables, rows = summaries(session, settings, now)
        feeds = [
            FeedMark(
                feed=feed.relative_url,
                is_active=feed.is_active,
                mark=feed.mark,
                last_fetched_at=feed.last_fetched_at,
                last_error=clean(feed.last_error),
                datasets=feed.datasets,
            )
            for feed in feed_statuses(session)
        ]
        return Overview(
            generated_at=now,
            timezone=zone.key,
            database=database,
            revisions=revisions,
            at_head=at_head,
            sources=source_summaries(tables),
            tables=tables,
            feeds=feeds,
            marks=marks(session),
            alerts=open_alerts(session, settings),
            verifications=verification_views(session.connection()),
            activity=activity(session.connection(), zone, now),
            unknown_freshness_tables=unknown_freshness_names(settings, rows),
        )


# --- a table --------------------------------------------------------------------------------


def find_table(conn: Connection, name: str) -> SourceTable:
    """The table `name` names (any of its names). Raises NotFound with close matches."""
    from data_platform.loads.tables import UnknownTable

    try:
        (table,) = resolve_tables(conn, [name])
    except UnknownTable as exc:
        raise NotFound(str(exc)) from None
    return table


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def load_views(conn: Connection, settings: Settings, where: Sequence, limit: int) -> list[LoadView]:
    """Loads matching `where`, newest first, with their durations from load_events."""
    clean = Scrubber(settings)
    rows = conn.execute(
        select(
            Load.id,
            Load.status,
            Load.s3_key,
            Load.s3_size,
            Load.rows,
            Load.s3_modified,
            Load.created_at,
            *ERROR_COLUMNS,
        )
        .where(*where)
        .order_by(Load.id.desc())
        .limit(limit)
    ).all()
    ids = [row.id for row in rows]
    timing: dict[int, tuple] = {}
    actors: dict[int, str | None] = {}  # the SQL leaves out the NULLs
    if ids:
        finished = LoadEvent.to_status.in_(FINAL)
        timing = {
            load_id: (started, applied, done)
            for load_id, started, applied, done in conn.execute(
                select(
                    LoadEvent.load_id,
                    func.max(LoadEvent.at).filter(LoadEvent.to_status == "ingesting"),
                    func.max(LoadEvent.at).filter(LoadEvent.from_status == "ingesting"),
                    func.max(LoadEvent.at).filter(finished),
                )
                .where(LoadEvent.load_id.in_(ids))
                .group_by(LoadEvent.load_id)
            )
        }
        actors = dict(
            conn.execute(
                select(LoadEvent.load_id, LoadEvent.actor)
                .where(LoadEvent.load_id.in_(ids), LoadEvent.actor.is_not(None))
                .distinct(LoadEvent.load_id)
                .order_by(LoadEvent.load_id, LoadEvent.id.desc())
            )
            .tuples()
            .all()
        )
    views = []
    for row in rows:
        started, applied, done = timing.get(row.id, (None, None, None))
        if applied and started and applied < started:
            applied = None  # the last attempt has not left ingesting yet
        status = LoadStatus(row.status)
        views.append(
            LoadView(
                id=row.id,
                status=status.value,
                key=row.s3_key,
                size=row.s3_size,
                rows=row.rows,
                landed_at=row.s3_modified,
                recorded_at=row.created_at,
                started_at=started,
                applied_at=applied,
                finished_at=done if status.value in FINAL else None,
                apply_seconds=_seconds(started, applied),
                total_seconds=_seconds(row.created_at, done) if status.value in FINAL else None,
                error=error_text(LoadErrorParts.of(row), clean),
                error_file=error_key(row.s3_key, row.s3_modified)
                if status == LoadStatus.ERRORED
                else None,
                last_actor=actors.get(row.id),
            )
        )
    return views


def table_page(name: str, settings: Settings | None = None, limit: int = 50) -> TablePage:
    """A table's page: its summary, schema and revisions, recent and errored loads.
    Raises NotFound."""
    from data_platform.web import schema

    settings = settings or get_settings()
    now = datetime.now(UTC)
    zone = ZoneInfo(settings.data_platform_timezone)
    clean = Scrubber(settings)
    with session_factory()() as session:
        conn = session.connection()
        table = find_table(conn, name)
        summary = next(
            s
            for s in summaries(session, settings, now, count_rows=False)[0]
            if s.name == table.name
        )
        summary.rows = row_count(conn, table.db_schema, table.db_table)
        recent = load_views(conn, settings, [Load.table_id == table.id], limit)
        errored = load_views(
            conn,
            settings,
            [Load.table_id == table.id, Load.status == LoadStatus.ERRORED],
            limit,
        )
        comment, columns = schema.columns(conn, table.db_schema, table.db_table)
        rows = schema.preview(conn, table.db_schema, table.db_table, columns)
        changes = schema.schema_changes(conn, table.id)
        table_marks = [m for m in marks(session) if _mark_of(m, table)]
        return TablePage(
            table=summary,
            table_comment=comment,
            columns=columns,
            revisions=schema.revisions(conn, table),
            schema_changes=changes,
            loads=recent,
            errored=errored,
            preview=[[clean(value) for value in row] for row in rows],
            marks=table_marks,
            activity=activity(conn, zone, now, table_id=table.id),
        )


def _mark_of(mark: Mark, table: SourceTable) -> bool:
    if mark.source != table.source:
        return False
    return mark.source != "totesys" or mark.subject == table.db_table


# --- a load ---------------------------------------------------------------------------------


def load_page(load_id: int, settings: Settings | None = None) -> LoadPage:
    """One load: `loads show`'s detail (where its file is now, every transition), its
    error in its parts, the files that travel with it. Raises NotFound."""
    from data_platform.loads.history import load_detail
    from data_platform.loads.retry import source_of_load
    from data_platform.run import all_sources

    settings = settings or get_settings()
    clean = Scrubber(settings)
    with get_engine().connect() as conn:
        source = conn.scalar(
            select(SourceTable.source)
            .join(Load, Load.table_id == SourceTable.id)
            .where(Load.id == load_id)
        )
    if source is None:
        raise NotFound(f"no load {load_id}")
    detail = load_detail(load_id)
    load = detail.load
    try:
        companions = source_of_load(load_id, all_sources()).companions(load.key)
    except DataPlatformError:  # a source this platform does not run
        companions = []
    events, previous = [], None
    for event in detail.events:
        events.append(
            EventView(
                at=event.at,
                from_status=event.from_status,
                to_status=event.to_status,
                actor=event.actor,
                reason=clean(event.reason),
                after_seconds=_seconds(previous, event.at),
            )
        )
        previous = event.at
    return LoadPage(
        id=load.id,
        table=load.table,
        source=source,
        status=load.status,
        key=load.key,
        size=load.size,
        rows=load.rows,
        landed_at=load.modified,
        updated_at=load.updated_at,
        etag=detail.etag,
        snapshot_id=detail.snapshot_id,
        file=detail.file,
        companions=companions,
        error=error_text(load.error_parts, clean),
        events=events,
        total_seconds=_seconds(events[0].at, events[-1].at) if events else None,
        dead_letter_count=detail.dead_letter_count,
        dead_letters=[
            DeadLetterView(
                record_key=d.record_key, line=d.line, field=d.field, reason=clean(d.reason) or ""
            )
            for d in detail.dead_letters
        ],
    )
