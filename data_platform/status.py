"""The platform's state in one report: migrations, zones, tables and their loads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from data_platform.batch.cubic_qlik.files import TablePrefixes
from data_platform.db import migrations
from data_platform.db.engine import dbapi_cursor, get_engine, masked, session_factory
from data_platform.loads.freshness import Freshness, freshness
from data_platform.loads.report import (
    FeedStatus,
    LandingStatus,
    TableStatus,
    feed_statuses,
    landing_statuses,
    table_statuses,
)
from data_platform.loads.retry import recovery
from data_platform.loads.verify import Verification
from data_platform.loads.verify import latest as latest_verifications
from data_platform.settings import get_settings
from data_platform.storage import get_zone


@dataclass
class PlatformStatus:
    database: str
    revisions: list[str]
    at_head: bool
    incoming: str
    incoming_objects: int
    tables: list[TableStatus]
    unregistered_keys: list[str]
    error_zone: str = ""  # where errored files lie, ending in "/"
    feeds: list[FeedStatus] = field(default_factory=list)  # DMAP
    landings: list[LandingStatus] = field(default_factory=list)
    verifications: list[Verification] = field(default_factory=list)  # the newest of each
    freshness: list[Freshness] = field(default_factory=list)  # every table's

    def to_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "revisions": self.revisions,
            "at_head": self.at_head,
            "incoming": self.incoming,
            "incoming_objects": self.incoming_objects,
            "tables": [t.to_dict() for t in self.tables],
            "unregistered_keys": self.unregistered_keys,
            "dmap_feeds": [f.to_dict() for f in self.feeds],
            "landings": [landing.to_dict() for landing in self.landings],
            "verifications": [v.to_dict() for v in self.verifications],
            "freshness": [f.to_dict() for f in self.freshness],
        }

    def render(self) -> str:
        head = "at head" if self.at_head else "NOT at head: run `data-platform db upgrade`"
        lines = [
            f"database:  {self.database} ({', '.join(self.revisions) or 'base'}, {head})",
            f"incoming:  {self.incoming} ({self.incoming_objects} objects)",
        ]
        if not self.tables:
            lines.append("tables:    none registered yet")
        source = None
        for table in self.tables:
            if table.source != source:
                source = table.source
                lines.append(f"source {source}:")
            counts = ", ".join(f"{s} {n}" for s, n in sorted(table.counts.items())) or "no loads"
            active = "" if table.is_active else " (inactive)"
            # A snapshot is dated by its LOAD00000001's landing (last-modified) time.
            snapshot = (
                f" [snapshot landed {table.snapshot:%Y-%m-%d %H:%M:%S %Z}]"
                if table.snapshot
                else ""
            )
            lines.append(f"table {table.name}{active}{snapshot}: {counts}")
            if table.rebuilds and table.rebuilt_at:
                lines.append(
                    f"  snapshot rebuilt {table.rebuilds} time(s), last at "
                    f"{table.rebuilt_at:%Y-%m-%d %H:%M:%S %Z}: a full-load part arrived after "
                    "its changes were applied"
                )
            if table.schema_change_loads:
                lines.append(
                    f"  waiting on a schema change ({table.schema_change_loads} load(s)): "
                    f"{table.evolve_command or 'change the table by a reviewed revision'}"
                )
            if table.dead_letters:
                lines.append(
                    f"  dead letters: {table.dead_letters} record(s) no row could hold, with "
                    f"their reasons (`data-platform loads show "
                    f"{table.latest_dead_letter_load_id}`: the newest load's)"
                )
            if table.latest_error:
                lines.append(
                    f"  latest error (load {table.latest_error_load_id}): {table.latest_error}"
                )
                if table.latest_error_file:
                    lines.append(f"  its file: {self.error_zone}{table.latest_error_file}")
                if table.latest_error_load_id is not None and table.latest_error_key:
                    lines.append(
                        f"  {recovery(table.latest_error_load_id, table.latest_error_key)}"
                    )
        for feed in self.feeds:
            state = "" if feed.is_active else " (inactive)"
            mark = f"mark {feed.mark:%Y-%m-%dT%H:%M:%S.%f}" if feed.mark else "nothing fetched"
            fetched = (
                f", last fetch {feed.last_fetched_at:%Y-%m-%d %H:%M:%S %Z}"
                if feed.last_fetched_at
                else ""
            )
            lines.append(f"dmap feed {feed.relative_url}{state}: {mark}{fetched}, "
                         f"{feed.datasets} dataset(s)")  # fmt: skip
            if feed.last_error:
                lines.append(f"  last error: {feed.last_error}")
        for landing in self.landings:
            landed = "failed" if landing.files is None else f"{landing.files} file(s)"
            lines.append(
                f"landing {landing.source}: last {landing.started_at:%Y-%m-%d %H:%M:%S %Z}, "
                f"{landed}"
            )
            lines += [f"  error: {line}" for line in (landing.error or "").splitlines()]
        for fresh in self.freshness:
            if fresh.state in ("behind", "stale"):
                lines.append(f"late: {fresh.line()}")
        for verification in self.verifications:
            checked = (
                f"{verification.checked_at:%Y-%m-%d %H:%M:%S %Z}: "
                if verification.checked_at
                else ""
            )
            lines.append(f"verified {checked}{verification.line()}")
        if self.unregistered_keys:
            lines.append(f"unregistered files in incoming ({len(self.unregistered_keys)}):")
            lines.extend(f"  {key}" for key in self.unregistered_keys[:20])
            if len(self.unregistered_keys) > 20:
                lines.append(f"  ... and {len(self.unregistered_keys) - 20} more")
        return "\n".join(lines)


def shown_path(location: str) -> str:
    """A local directory relative to the working directory when it is under it (as a
    user typed it: `.data/storage/incoming/`); anything else (s3://...) as it is."""
    from pathlib import Path

    if "://" in location:
        return location
    try:
        relative = Path(location).resolve().relative_to(Path.cwd())
    except ValueError:
        return location
    return relative.as_posix() + ("/" if location.endswith("/") else "") or "."


def platform_status() -> PlatformStatus:
    config = migrations.alembic_config()
    url = config.get_main_option("sqlalchemy.url") or ""
    revisions = sorted(migrations.current_revisions(config))
    at_head = set(revisions) == migrations.head_revisions(config)
    incoming = get_zone("incoming")
    tables: list[TableStatus] = []
    feeds: list[FeedStatus] = []
    landings: list[LandingStatus] = []
    checked: list[Verification] = []
    fresh: list[Freshness] = []
    if revisions:
        with session_factory()() as session:
            tables = table_statuses(session)
            feeds = feed_statuses(session)
            landings = landing_statuses(session)
            fresh = freshness(session, get_settings(), datetime.now(UTC))
        with get_engine().connect() as conn, dbapi_cursor(conn) as cur:
            checked = latest_verifications(cur)
    owners = [TablePrefixes(t.s3_prefix) for t in tables]
    # Streamed: only the count and the unregistered keys are kept, however large the zone.
    count, unregistered = 0, []
    for info in incoming.list():
        count += 1
        if not any(owner.owns(info.key) for owner in owners):
            unregistered.append(info.key)
    return PlatformStatus(
        database=masked(url),
        revisions=revisions,
        at_head=at_head,
        incoming=shown_path(incoming.describe()),
        incoming_objects=count,
        tables=tables,
        unregistered_keys=unregistered,
        error_zone=shown_path(get_zone("error").describe()),
        feeds=feeds,
        landings=landings,
        verifications=checked,
        freshness=fresh,
    )
