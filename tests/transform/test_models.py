"""The models on small data, against values computed independently here in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest

from data_platform.transform import run_transform
from tests.transform.conftest import Count, fetch, insert_counts, insert_location

JAN_15, JAN_31, FEB_1 = date(2024, 1, 15), date(2024, 1, 31), date(2024, 2, 1)
MID_2023 = date(2023, 6, 10)
NO_LOCATION = 99  # counted, but no row in sensor_locations
ONLY_BEFORE = 12  # counted in the earlier yearly window only
YEARLY_VARS = {"footfall_before_start": "2023-01-01", "footfall_after_start": "2024-01-01"}


def sample_counts() -> list[Count]:
    counts: list[Count] = []
    # 31 January: 13 sensors; 50 three times at places 10-12 (sensors 11, 4, 99): the
    # tie at rank 10 goes to the lowest location_id, 4.
    jan31 = {1: 500, 2: 450, 3: 400, 5: 350, 6: 300, 7: 250, 8: 200, 9: 150, 10: 100}
    jan31 |= {11: 50, 4: 50, NO_LOCATION: 50, 13: 10}
    for lid, total in jan31.items():
        # Two hours: 23:00 on the 31st is still January.
        counts += [(lid, JAN_31, 9, total - total // 5), (lid, JAN_31, 23, total // 5)]
    # 1 February, 00:00: the next month. The sensor without a location is busiest.
    counts += [(NO_LOCATION, FEB_1, 0, 900), (1, FEB_1, 0, 20), (4, FEB_1, 0, 20)]
    # 15 January: sensor 13, last on the 31st, counts a lot: its January total ranks it in
    # the monthly top 10, although it is in no daily top 10 of the month but this one.
    counts += [(13, JAN_15, hour, 100) for hour in range(24)]
    counts += [(lid, JAN_15, 8, 5) for lid in range(1, 12)]
    # 2023: the earlier yearly window (sensors 1, 2, 99 and 12; 12 is never counted after).
    counts += [(1, MID_2023, 8, 1000), (2, MID_2023, 8, 40), (NO_LOCATION, MID_2023, 8, 300)]
    counts += [(ONLY_BEFORE, MID_2023, 8, 70)]
    # 1 January 2024 00:00 belongs to the later window, 31 December 2022 to neither.
    counts += [(2, date(2024, 1, 1), 0, 60), (1, date(2022, 12, 31), 23, 7)]
    return counts


def top10(totals: dict[tuple[int, date], int]) -> dict[date, list[tuple[int, int, int]]]:
    """Per period: (rank, location_id, total), higher total first, then lower id."""
    by_period: dict[date, list[tuple[int, int]]] = defaultdict(list)
    for (lid, period), total in totals.items():
        by_period[period].append((lid, total))
    ranked = {}
    for period, rows in by_period.items():
        ordered = sorted(rows, key=lambda row: (-row[1], row[0]))[:10]
        ranked[period] = [(i + 1, lid, total) for i, (lid, total) in enumerate(ordered)]
    return ranked


@pytest.mark.slow
def test_totals_rankings_and_yearly_change_match_python(pg) -> None:
    for lid in range(1, 14):
        insert_location(pg, lid)
    counts = sample_counts()
    insert_counts(pg, counts)

    result = run_transform(vars=YEARLY_VARS)

    assert result.ok, result.render()
    # The counts of sensor 99 lack a location row: reported as a warning, not a failure.
    relationship = next(n for n in result.nodes if n.name.startswith("source_relationships"))
    assert (relationship.status, relationship.failures) == ("warn", 4)

    daily: dict[tuple[int, date], int] = defaultdict(int)
    monthly: dict[tuple[int, date], int] = defaultdict(int)
    for lid, day, _hour, n in counts:
        daily[lid, day] += n
        monthly[lid, day.replace(day=1)] += n

    def name(lid: int) -> str:
        return f"sensor {lid}" if lid == NO_LOCATION else f"Place {lid}"

    got_daily = fetch(
        pg,
        "SELECT location_id, location_name, sensing_date, pedestrian_count"
        " FROM analytics.pedestrian_daily_totals",
    )
    assert sorted(got_daily) == sorted((k[0], name(k[0]), k[1], v) for k, v in daily.items())

    got_monthly = fetch(
        pg,
        "SELECT location_id, month_start, pedestrian_count"
        " FROM analytics.pedestrian_monthly_totals",
    )
    assert sorted(got_monthly) == sorted((k[0], k[1], v) for k, v in monthly.items())
    assert (13, date(2024, 1, 1), 2410) in got_monthly  # 2400 on the 15th + 10 on the 31st

    got_top_daily = fetch(
        pg,
        "SELECT sensing_date, rank, location_id, location_name, pedestrian_count"
        " FROM analytics.pedestrian_top10_daily ORDER BY sensing_date, rank",
    )
    expected_daily = [
        (period, rank, lid, name(lid), total)
        for period, rows in sorted(top10(daily).items())
        for rank, lid, total in rows
    ]
    assert got_top_daily == expected_daily
    jan31 = [row for row in got_top_daily if row[0] == JAN_31]
    assert len(jan31) == 10 and jan31[-1][1:3] == (10, 4)  # the tie at rank 10
    assert next(row[2:4] for row in got_top_daily if row[0] == FEB_1) == (99, "sensor 99")

    got_top_monthly = fetch(
        pg,
        "SELECT month_start, rank, location_id, pedestrian_count"
        " FROM analytics.pedestrian_top10_monthly ORDER BY month_start, rank",
    )
    expected_monthly = [
        (period, rank, lid, total)
        for period, rows in sorted(top10(monthly).items())
        for rank, lid, total in rows
    ]
    assert got_top_monthly == expected_monthly
    january = [row for row in got_top_monthly if row[0] == date(2024, 1, 1)]
    assert january[0][2] == 13  # ranked on the whole month, not on daily winners
    assert len(january) == 10 and len([r for r in got_top_monthly if r[0] == FEB_1]) == 3

    got_change = fetch(
        pg,
        "SELECT location_id, location_name, before_start, after_start, before_count,"
        " after_count, count_change, percent_change FROM analytics.pedestrian_yearly_change"
        " ORDER BY location_id",
    )
    before = defaultdict(int)
    after = defaultdict(int)
    for lid, day, _hour, n in counts:
        if day.year == 2023:
            before[lid] += n
        elif day.year == 2024:
            after[lid] += n
    both = sorted(set(before) & set(after))
    assert ONLY_BEFORE not in both and both == [1, 2, NO_LOCATION]
    assert got_change == [
        (
            lid,
            name(lid),
            date(2023, 1, 1),
            date(2024, 1, 1),
            before[lid],
            after[lid],
            after[lid] - before[lid],
            round(Decimal(100 * (after[lid] - before[lid])) / before[lid], 2),
        )
        for lid in both
    ]
