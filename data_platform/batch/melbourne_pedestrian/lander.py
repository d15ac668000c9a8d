"""The pedestrian open data as a landing of the platform (`data_platform.loads.landing`):
`pedestrian fetch` and `data-platform run` fetch through it (`fetch.fetch_pedestrian`).
Items: the two datasets; one that fails is a failed item, the other goes on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from data_platform.batch.melbourne_pedestrian.fetch import fetch_pedestrian
from data_platform.batch.melbourne_pedestrian.naming import COUNTS, LOCATIONS, SOURCE
from data_platform.db.models import SourceName
from data_platform.loads.landing import LandResult
from data_platform.settings import Settings


@dataclass
class PedestrianLander:
    """Fetch the sensor locations and the counts of [since, until) (None: from the mark,
    to tomorrow; `fetch_pedestrian`) with `settings` (None: the platform's)."""

    since: date | None = None
    until: date | None = None
    settings: Settings | None = None
    source: SourceName = field(default=SOURCE, init=False)

    def every(self, settings: Settings) -> float | None:
        """OPEN_DATA_LAND_EVERY: unset by default, so `run` fetches only when asked."""
        return settings.open_data_land_every

    def land(self) -> LandResult:
        result = fetch_pedestrian(since=self.since, until=self.until, settings=self.settings)
        summary = f"{len(result.landed)} file(s) fetched"
        if result.skipped:
            summary += " (another fetch was running)"
        elif result.new_day is False:
            summary += " (no new day)"
        return LandResult(
            summary=summary,
            files=[landed.key for landed in result.landed],
            items=[] if result.skipped else [LOCATIONS.name, COUNTS.name],
            failures=dict(result.failed_datasets),
            notes=[f"  fetch failed: {message}" for message in result.errors],
            detail=result,
        )

    def position(self, mark: dict[str, Any]) -> str:
        return f"portal's counts end {mark['next_date']}"
