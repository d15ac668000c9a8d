"""End to end against a stand-in portal that behaves as the real one does: it publishes
late, leaves a day out and half-publishes another, then catches up; it has empty counts
and the clock changes. `pedestrian fetch` then `run` (which rebuilds the dbt models) leave
every published row in the table once, and the models' totals agree with them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from data_platform.batch.melbourne_pedestrian.fetch import fetch_pedestrian
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.settings import Settings
from harness.samples import pedestrian as sample
from tests.pedestrian.conftest import Clock, Publication, mark

pytestmark = pytest.mark.slow


def _melbourne_noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)  # 12:00 or 13:00 there


def _run() -> None:
    """`data-platform run`: load what landed, rebuild the models; exit 0."""
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 0, result.output


def _table() -> list[tuple]:
    with get_engine().connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT location_id, sensing_date::text, hourday, pedestriancount, "
                    "portal_records FROM pedestrian.hourly_counts ORDER BY 1, 2, 3"
                )
            )
        ]


def _daily_totals() -> dict[tuple[int, str], tuple[int, int]]:
    with get_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT location_id, sensing_date::text, pedestrian_count, hours_counted "
                "FROM analytics.pedestrian_daily_totals"
            )
        ).all()
    totals = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    assert len(totals) == len(rows), "a sensor-day twice in pedestrian_daily_totals"
    return totals


def _expected_totals(rows: list[dict[str, str]]) -> dict[tuple[int, str], tuple[int, int]]:
    totals: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row["pedestriancount"]:
            total = totals[(int(row["location_id"]), row["sensing_date"])]
            total[0] += int(row["pedestriancount"])
            total[1] += 1
    return {key: (count, hours) for key, (count, hours) in totals.items()}


def test_a_portal_that_publishes_late_then_catches_up_leaves_no_gap_and_no_double(
    portal: Settings, publication: Publication, clock: Clock
) -> None:
    def first_publication(row: dict[str, str]) -> bool:
        day = row["sensing_date"]
        if day == "2026-09-05":  # half published: some sensors only
            return int(row["location_id"]) < 50
        return day <= "2026-09-05" and day != "2026-09-04"  # late, and a day left out

    publication.published = first_publication
    clock.now = _melbourne_noon(date(2026, 9, 8))
    first = fetch_pedestrian()
    assert not first.failed and first.new_day is True
    assert (first.start, first.end) == (date(2026, 7, 10), date(2026, 9, 9))
    assert first.mark == date(2026, 9, 5) and mark()[0] == date(2026, 9, 5)  # type: ignore[index]
    _run()

    # The next day the portal has published nothing new: the fetch says so, exit 0.
    clock.now = _melbourne_noon(date(2026, 9, 9))
    quiet = CliRunner().invoke(cli, ["pedestrian", "fetch"])
    assert quiet.exit_code == 0, quiet.output
    assert "  no new day: the portal had no counts after 2026-09-05" in quiet.stdout.splitlines()
    assert mark()[0] == date(2026, 9, 5)  # type: ignore[index]

    # The portal catches up: the hole, the rest of the half day, and the days since.
    publication.published = lambda row: row["sensing_date"] <= "2026-09-09"
    clock.now = _melbourne_noon(date(2026, 9, 10))
    caught_up = fetch_pedestrian()
    assert not caught_up.failed and caught_up.new_day is True
    assert caught_up.start == date(2026, 8, 29)  # the mark, less the 7-day lookback
    assert mark()[0] == date(2026, 9, 9)  # type: ignore[index]
    _run()

    published = sample.hourly_counts(date(2026, 9, 1), date(2026, 9, 10))
    expected = sorted(
        (int(r["location_id"]), r["sensing_date"], int(r["hourday"]), int(r["pedestriancount"]), 1)
        for r in published
    )
    assert _table() == expected  # every published row, once
    assert _daily_totals() == _expected_totals(published)


def test_empty_counts_and_the_clock_changes_never_stall_the_source(
    portal: Settings, publication: Publication, clock: Clock
) -> None:
    def day_rows(day: str, hours: list[int], count: int = 10) -> list[dict[str, str]]:
        return [
            {
                "id": f"{sensor}-{day}-{hour}-{n}",
                "location_id": str(sensor),
                "sensing_date": day,
                "hourday": str(hour),
                "direction_1": str(count // 2),
                "direction_2": str(count - count // 2),
                "pedestriancount": str(count),
                "sensor_name": f"S{sensor}",
                "location": "",
            }
            for sensor in (1, 2)
            for n, hour in enumerate(hours)
        ]

    every_hour = list(range(24))
    # Clocks go back on 2026-04-05 (03:00 AEDT -> 02:00 AEST): two records for 02:00.
    back = day_rows("2026-04-05", [0, 1, 2, 2, *range(3, 24)])
    # They go forward on 2026-10-04 (02:00 AEST -> 03:00 AEDT): no 02:00 at all.
    forward = day_rows("2026-10-04", [0, 1, *range(3, 24)])
    with_empty = day_rows("2026-04-04", every_hour)
    empty = next(r for r in with_empty if r["location_id"] == "1" and r["hourday"] == "5")
    empty.update(pedestriancount="", direction_1="", direction_2="")
    publication.rows = [*with_empty, *back, *day_rows("2026-04-06", every_hour), *forward]

    clock.now = _melbourne_noon(date(2026, 10, 6))
    result = fetch_pedestrian(since=date(2026, 4, 1))  # a backfill over both changes
    assert not result.failed, result.errors
    assert result.landed[1].empty_counts == 1
    assert "1 empty count(s) kept as NULL" in result.render()
    assert mark()[0] == date(2026, 10, 4)  # type: ignore[index]
    _run()

    table = _table()
    assert (1, "2026-04-04", 5, None, 1) in table  # kept, empty
    assert [r for r in table if r[1] == "2026-04-05" and r[2] == 2] == [
        (1, "2026-04-05", 2, 20, 2),  # the two 02:00 hours, summed
        (2, "2026-04-05", 2, 20, 2),
    ]
    assert len([r for r in table if r[1] == "2026-10-04"]) == 2 * 23
    totals = _daily_totals()
    assert totals[(1, "2026-04-04")] == (230, 23)  # the empty hour left out, not 0
    assert totals[(2, "2026-04-04")] == (240, 24)
    assert totals[(1, "2026-04-05")] == (250, 25)  # a 25-hour day
    assert totals[(1, "2026-10-04")] == (230, 23)  # a 23-hour day
    assert totals[(1, "2026-04-06")] == (240, 24)

    # The same days again (a re-read): loaded, not blocked, and nothing doubles.
    again = fetch_pedestrian(since=date(2026, 4, 4), until=date(2026, 4, 7))
    assert not again.failed, again.errors
    _run()
    assert _table() == table
    with get_engine().connect() as conn:
        statuses = conn.execute(text("SELECT DISTINCT status FROM loads")).scalars().all()
    assert statuses == ["archived"]
