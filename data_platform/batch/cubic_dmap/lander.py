"""DMAP as a landing of the platform (`data_platform.loads.landing`): `dmap fetch` and
`data-platform run` fetch the feeds through it (`fetch.fetch_feeds`). Items: the feeds'
paths; a feed that stops is a failed item, the others go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from data_platform.batch.cubic_dmap.fetch import fetch_feeds
from data_platform.batch.cubic_dmap.naming import SOURCE
from data_platform.db.models import SourceName
from data_platform.loads.landing import LandResult
from data_platform.settings import Settings


@dataclass
class DmapLander:
    """Fetch `feeds` (relative URLs; None: every active one) with `settings` (None: the
    platform's). `allow_http_downloads`: the local demo API and tests only."""

    feeds: list[str] | None = None
    settings: Settings | None = None
    allow_http_downloads: bool = False
    source: SourceName = field(default=SOURCE, init=False)

    def every(self, settings: Settings) -> float | None:
        """CUBIC_DMAP_LAND_EVERY, once CUBIC_DMAP_BASE_URL is set."""
        return settings.cubic_dmap_land_every if settings.cubic_dmap_base_url else None

    def land(self) -> LandResult:
        result = fetch_feeds(
            self.feeds, settings=self.settings, allow_http_downloads=self.allow_http_downloads
        )
        fetched = [feed for feed in result.feeds if feed.skipped is None]
        return LandResult(
            summary=f"{len(result.landed)} dataset(s) fetched",
            files=[dataset.key for dataset in result.landed],
            items=[feed.feed for feed in fetched],
            failures={feed.feed: feed.error for feed in fetched if feed.error},
            notes=[f"  fetch failed: {message}" for message in result.errors],
            detail=result,
        )

    def position(self, mark: dict[str, Any]) -> str:
        return f"last_updated {mark['last_updated']} (the vendor's time)"
