"""Fetch DMAP feeds: list each feed after its mark, land every new dataset in the incoming
zone, then record it and advance the mark, one dataset at a time.

Per feed, results are taken oldest first. For each: the file is streamed into the zone
(`put` is atomic: the whole file or nothing), and only then the dataset row is upserted and
the feed's mark (its landing mark, `loads.marks`: item the feed's path) set to its
last_updated, in one transaction. A failure stops the feed (its last_error is recorded;
the next run resumes after the last dataset landed) and the other feeds go on. A crash
between the put and the commit only makes the next run download the same dataset to the
same key again.

A landing of the platform (`lander.DmapLander`, `data_platform.loads.landing`): `dmap fetch`
and `data-platform run` go through it. Also `python -m data_platform.batch.cubic_dmap.fetch
[--feed PATH ...] [--json]`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from data_platform.batch.cubic_dmap.client import (
    DmapClient,
    DmapError,
    DmapResult,
    LinkExpired,
    redact,
)
from data_platform.batch.cubic_dmap.feeds import api_key_for, dataset_type
from data_platform.batch.cubic_dmap.naming import SOURCE
from data_platform.db.engine import get_engine
from data_platform.db.models import DmapDataset, DmapFeed
from data_platform.errors import ConfigError, DataPlatformError
from data_platform.loads import marks
from data_platform.loads.locks import advisory_lock
from data_platform.settings import Settings, get_settings
from data_platform.storage import ZoneStore, get_zone

log = logging.getLogger(__name__)

# Listings again after an expired download link (403) before the feed fails; reset by
# each dataset landed.
MAX_RELISTS = 2


@dataclass(frozen=True)
class LandedDataset:
    feed: str
    dataset_id: str
    key: str  # in the incoming zone
    last_updated: datetime
    replaced: bool  # a re-issue: the file under the same key and the row were replaced


@dataclass
class FeedFetch:
    """What a fetch did with one feed."""

    feed: str
    listed: int = 0  # dataset versions from the mark on not landed yet (each once)
    older: int = 0  # results the server sent that were older than the mark, dropped (first listing)
    landed: int = 0
    relisted: int = 0  # listings again for fresh links after a 403
    mark: datetime | None = None  # the feed's mark afterwards
    error: str | None = None  # why the feed stopped
    skipped: str | None = None  # "inactive" or "busy" (another fetch holds the feed)


@dataclass
class FetchResult:
    feeds: list[FeedFetch] = field(default_factory=list)
    landed: list[LandedDataset] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per failed feed

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO strings."""
        return _jsonable(dataclasses.asdict(self))

    def render(self) -> str:
        """One summary line, then a line per failed or skipped feed."""
        fetched = [f for f in self.feeds if f.skipped is None]
        replaced = sum(d.replaced for d in self.landed)
        line = (
            f"fetched {len(fetched)} feed(s): {len(self.landed)} dataset(s) landed"
            + (f" ({replaced} re-issued)" if replaced else "")
            + f", {len(self.errors)} feed(s) failed"
        )
        lines = [line]
        lines += [f"  error: {message}" for message in self.errors]
        lines += [
            f"  feed {f.feed}: skipped ({_SKIPPED[f.skipped]})" for f in self.feeds if f.skipped
        ]
        return "\n".join(lines)


_SKIPPED = {"inactive": "inactive", "busy": "another fetch is on it"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def fetch_feeds(
    feeds: list[str] | None = None,
    *,
    settings: Settings | None = None,
    allow_http_downloads: bool = False,
) -> FetchResult:
    """Fetch the given feeds (relative URLs), or every active one when None.

    A named feed that is inactive is skipped; one another process is fetching is skipped
    as busy. `settings` (default: get_settings()) gives the DMAP options and the incoming
    zone; the database is get_engine()'s. `allow_http_downloads`: only for the local demo
    API and tests (see DmapClient).

    Returns a FetchResult; a failed feed is in its `errors`, not raised. Raises DmapError
    for a named feed that is not registered, ConfigError when CUBIC_DMAP_BASE_URL is
    unset and there is a feed to fetch."""
    settings = settings or get_settings()
    engine = get_engine()
    query = select(DmapFeed.id, DmapFeed.relative_url, DmapFeed.is_active).order_by(
        DmapFeed.relative_url
    )
    if feeds is None:
        query = query.where(DmapFeed.is_active)
    else:
        query = query.where(DmapFeed.relative_url.in_(feeds))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if feeds is not None:
        unknown = sorted(set(feeds) - {row.relative_url for row in rows})
        if unknown:
            raise DmapError(
                f"no such feed: {', '.join(unknown)} (add it with `data-platform dmap add-feed`)"
            )
    result = FetchResult()
    todo = []
    for row in rows:
        if row.is_active:
            todo.append(row)
        else:
            result.feeds.append(FeedFetch(row.relative_url, skipped="inactive"))
    if not todo:
        return result
    if not settings.cubic_dmap_base_url:
        raise ConfigError("CUBIC_DMAP_BASE_URL is not set: where is the DMAP API?")
    zone = get_zone("incoming", settings)
    zone.clean_partials(settings.cubic_dmap_prefix)  # what killed fetches left
    client = DmapClient(
        settings.cubic_dmap_base_url,
        timeout=settings.cubic_dmap_timeout_seconds,
        retries=settings.cubic_dmap_retries,
        backoff=settings.cubic_dmap_backoff_seconds,
        allow_http_downloads=allow_http_downloads,
    )
    with client:
        for row in todo:
            with advisory_lock(engine, "dmap_feed", row.id) as got:
                if not got:
                    result.feeds.append(FeedFetch(row.relative_url, skipped="busy"))
                    continue
                outcome = _Feed(engine, zone, client, settings, row.id, row.relative_url).run(
                    result.landed
                )
            result.feeds.append(outcome)
            if outcome.error:
                result.errors.append(outcome.error)
    return result


def read_feed_mark(conn: Connection, relative_url: str) -> datetime | None:
    """A feed's mark: the newest dataset last_updated fetched (the vendor's naive time, to
    the microsecond, as given); None before its first dataset."""
    mark = marks.read_mark(conn, SOURCE, relative_url)
    return datetime.fromisoformat(mark["last_updated"]) if mark else None


class _Feed:
    """One feed's fetch (with its lock held)."""

    def __init__(
        self,
        engine: Engine,
        zone: ZoneStore,
        client: DmapClient,
        settings: Settings,
        feed_id: int,
        relative_url: str,
    ) -> None:
        self.engine = engine
        self.zone = zone
        self.client = client
        self.settings = settings
        self.feed_id = feed_id
        self.url = relative_url
        prefix = settings.cubic_dmap_prefix.strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self.outcome = FeedFetch(relative_url)

    def run(self, landed: list[LandedDataset]) -> FeedFetch:
        with self.engine.connect() as conn:
            self.outcome.mark = read_feed_mark(conn, self.url)
        api_key = ""
        try:
            kind = dataset_type(self.url)
            api_key = api_key_for(self.url, self.settings)
            self._fetch(kind, api_key, landed)
        except DataPlatformError as exc:
            # Ours never hold the key; redact anyway, as the message goes to a column.
            self.outcome.error = redact(str(exc), api_key)
            log.error("feed stopped: %s", self.outcome.error, extra={"feed": self.url})
        except Exception as exc:
            self.outcome.error = redact(f"unexpected {type(exc).__name__}: {exc}", api_key)
            self._record()
            raise
        self._record()
        return self.outcome

    def _fetch(self, kind: str, api_key: str, landed: list[LandedDataset]) -> None:
        seen: set[tuple[str, datetime]] = set()
        expired = 0
        first = True
        while True:
            listing = self.client.list_feed(self.url, kind, api_key, self.outcome.mark)
            if first:
                self.outcome.older = listing.older
                first = False
            results = self._not_landed(listing.results)
            seen.update((r.dataset_id, r.last_updated) for r in results)
            self.outcome.listed = len(seen)
            for result in results:
                try:
                    landed.append(self._land(result))
                except LinkExpired as exc:
                    if expired >= MAX_RELISTS:
                        raise DmapError(
                            f"{exc}; still refused after listing the feed again "
                            f"{MAX_RELISTS} time(s)"
                        ) from None
                    expired += 1
                    self.outcome.relisted += 1
                    log.info(
                        "download link of %s refused (403): listing the feed again",
                        result.dataset_id,
                        extra={"feed": self.url},
                    )
                    break
                expired = 0
                self.outcome.landed += 1
            else:
                return

    def _not_landed(self, results: list[DmapResult]) -> list[DmapResult]:
        """`results` less the dataset versions already landed: the listing includes the
        mark's own stamp (`format_mark`), so the dataset that set the mark comes back."""
        if not results:
            return results
        with self.engine.connect() as conn:
            landed = dict(
                conn.execute(
                    select(DmapDataset.dataset_id, DmapDataset.last_updated).where(
                        DmapDataset.dataset_id.in_([r.dataset_id for r in results])
                    )
                )
                .tuples()
                .all()
            )
        return [
            r
            for r in results
            if r.dataset_id not in landed or r.last_updated > landed[r.dataset_id]
        ]

    def _land(self, result: DmapResult) -> LandedDataset:
        key = f"{self.prefix}{result.type}/{result.dataset_id}.csv.gz"
        with self.engine.connect() as conn:
            replaced = (
                conn.scalar(
                    select(DmapDataset.id).where(DmapDataset.dataset_id == result.dataset_id)
                )
                is not None
            )
        with self.client.download(self.url, result) as body:
            self.zone.put(key, body)
        # The file is in place: now the row and the mark, together.
        values = {
            "feed_id": self.feed_id,
            "type": result.type,
            "start_date": result.start_date,
            "end_date": result.end_date,
            "last_updated": result.last_updated,
            "s3_key": key,
        }
        with self.engine.begin() as conn:
            conn.execute(
                insert(DmapDataset)
                .values(dataset_id=result.dataset_id, **values)
                .on_conflict_do_update(
                    index_elements=[DmapDataset.dataset_id],
                    # onupdate does not apply to an upsert's update: set it here.
                    set_={**values, "updated_at": func.now()},
                )
            )
            marks.write_mark(
                conn,
                SOURCE,
                self.url,
                {"last_updated": result.last_updated.isoformat()},
                last_key=key,
            )
        self.outcome.mark = result.last_updated
        log.info(
            "landed %s%s",
            result.dataset_id,
            " (re-issued: replaced)" if replaced else "",
            extra={"feed": self.url, "key": key},
        )
        return LandedDataset(self.url, result.dataset_id, key, result.last_updated, replaced)

    def _record(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(DmapFeed)
                .where(DmapFeed.id == self.feed_id)
                .values(last_fetched_at=func.now(), last_error=self.outcome.error)
            )
