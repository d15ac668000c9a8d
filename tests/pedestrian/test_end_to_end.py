"""From the portal to the tables: `pedestrian fetch` through a local server playing the
Opendatasoft API (the sample), then `run`; fetching again re-brings only the last day and
never doubles a row."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from data_platform.batch.melbourne_pedestrian.fetch import fetch_pedestrian
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.settings import Settings, get_settings
from harness.samples import pedestrian as sample
from harness.stand_ins.pedestrian_api import demo_api


def _table_counts() -> tuple[int, int, int]:
    with get_engine().connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM pedestrian.hourly_counts), "
                    "(SELECT coalesce(sum(pedestriancount), 0) FROM pedestrian.hourly_counts), "
                    "(SELECT count(*) FROM pedestrian.sensor_locations)"
                )
            ).one()
        )


def test_fetch_then_run_loads_the_portals_rows_once(platform: Settings) -> None:
    counts = sample.hourly_counts(sample.FIRST_DAY, date(2026, 9, 8))
    expected = (len(counts), sum(int(r["pedestriancount"]) for r in counts))
    with demo_api() as base_url:
        settings = get_settings().model_copy(update={"open_data_base_url": base_url})
        first = fetch_pedestrian(since=sample.FIRST_DAY, until=date(2026, 9, 8), settings=settings)
        assert not first.failed, first.render()
        run_once()
        assert _table_counts() == (*expected, len(sample.sensor_locations()))
        # The same window again (the portal re-issued it): its rows are replaced, not added.
        again = fetch_pedestrian(since=sample.FIRST_DAY, until=date(2026, 9, 8), settings=settings)
        assert not again.failed, again.render()
        summary = run_once().source("melbourne_pedestrian")
    assert summary.ingest.archived == 2  # the counts window and the locations
    assert _table_counts() == (*expected, len(sample.sensor_locations()))
