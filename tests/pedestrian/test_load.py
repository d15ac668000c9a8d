"""Fetched pedestrian files, landed in incoming, become rows of the pedestrian tables:
a re-fetched sensor-day replaces its rows (one the file lacks stays), the locations
dataset replaces all of its rows, and a bad file is errored with its line and column
without touching the table."""

from __future__ import annotations

import gzip
import io
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

from data_platform.batch.melbourne_pedestrian import naming
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.settings import Settings
from data_platform.storage import get_zone

COUNT_HEADER = ";".join(naming.COUNT_COLUMNS)
LOCATION_HEADER = ";".join(naming.LOCATION_COLUMNS)
FETCHED = datetime(2026, 11, 30, 1, 2, 3)


def _count(location: int, day: str, hour: int, count: int) -> str:
    one, two = count // 2, count - count // 2
    fields = (f"{location}{day}{hour}", location, day, hour, one, two, count, f"S{location}")
    return ";".join(map(str, fields)) + ";-37.8, 144.9"


def _land(key: str, lines: list[str]) -> str:
    body = gzip.compress(("\n".join(lines) + "\n").encode())
    get_zone("incoming").put(key, io.BytesIO(body))
    return key


def _counts_file(start: date, end: date, rows: list[str], minutes: int = 0) -> str:
    key = naming.counts_key(start, end, FETCHED + timedelta(minutes=minutes))
    return _land(key, [COUNT_HEADER, *rows])


def _counts() -> list[tuple]:
    with get_engine().connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT location_id, sensing_date::text, hourday, pedestriancount "
                    "FROM pedestrian.hourly_counts ORDER BY 1, 2, 3"
                )
            )
        ]


def _errors() -> dict[str, str]:
    with get_engine().connect() as conn:
        return dict(
            conn.execute(text("SELECT s3_key, error FROM loads WHERE status = 'errored'")).all()
        )


@pytest.fixture
def pedestrian(platform: Settings) -> Settings:
    return platform


def test_a_refetched_day_replaces_its_rows_and_a_sensor_day_not_in_the_file_stays(
    pedestrian: Settings,
) -> None:
    _counts_file(
        date(2026, 11, 1),
        date(2026, 11, 3),
        [
            _count(1, "2026-11-01", 0, 10),
            _count(1, "2026-11-02", 5, 20),
            _count(2, "2026-11-02", 5, 7),
        ],
    )
    summary = run_once().source("melbourne_pedestrian")
    assert (summary.scan.new_loads, summary.ingest.archived) == (1, 1)
    # The next fetch starts on the last, incomplete day: it brings that day again, more of
    # it, but without sensor 2 (the portal has not published it yet): its row stays.
    _counts_file(
        date(2026, 11, 2),
        date(2026, 11, 4),
        [
            _count(1, "2026-11-02", 5, 25),
            _count(1, "2026-11-02", 6, 3),
            _count(1, "2026-11-03", 0, 1),
        ],
        minutes=60,
    )
    run_once()
    assert _counts() == [
        (1, "2026-11-01", 0, 10),
        (1, "2026-11-02", 5, 25),
        (1, "2026-11-02", 6, 3),
        (1, "2026-11-03", 0, 1),
        (2, "2026-11-02", 5, 7),
    ]
    again = run_once().source("melbourne_pedestrian")  # nothing new: nothing changes
    assert (again.scan.new_loads, again.ingest.archived) == (0, 0)
    assert len(_counts()) == 5
    assert list(get_zone("incoming").list(naming.PREFIX)) == []


def test_locations_are_replaced_whole(pedestrian: Settings) -> None:
    row = "{id};Place {id};S{id};2019-01-0{id};;Outdoor;A;North;South;-37.8;144.9;-37.8, 144.9"
    _land(naming.locations_key(FETCHED), [LOCATION_HEADER, row.format(id=1), row.format(id=2)])
    run_once()
    _land(naming.locations_key(FETCHED + timedelta(hours=1)), [LOCATION_HEADER, row.format(id=2)])
    run_once()
    with get_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT location_id, sensor_description, installation_date::text, latitude "
                 "FROM pedestrian.sensor_locations")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(2, "Place 2", "2019-01-02", -37.8)]


def test_a_bad_value_names_line_and_column_and_leaves_the_table(pedestrian: Settings) -> None:
    _counts_file(date(2026, 11, 1), date(2026, 11, 2), [_count(1, "2026-11-01", 0, 10)])
    run_once()
    bad = _counts_file(
        date(2026, 11, 1),
        date(2026, 11, 2),
        [
            _count(1, "2026-11-01", 0, 11),
            _count(1, "2026-11-01", 1, 5).replace(";5;S1", ";five;S1"),
        ],
        minutes=5,
    )
    summary = run_once().source("melbourne_pedestrian")
    assert summary.ingest.errored == 1
    assert f"{bad}: line 3, column pedestriancount: invalid input syntax" in _errors()[bad]
    assert _counts() == [(1, "2026-11-01", 0, 10)]  # the old window stays whole
    # A later window waits for the errored one: applied first, a retry would undo it.
    _counts_file(date(2026, 11, 1), date(2026, 11, 2), [_count(1, "2026-11-01", 0, 12)], minutes=9)
    waiting = run_once().source("melbourne_pedestrian")
    assert waiting.ingest.blocked_tables == ["melbourne_pedestrian__hourly_counts"]


def test_rows_outside_the_window_are_refused(pedestrian: Settings) -> None:
    key = _counts_file(date(2026, 11, 1), date(2026, 11, 2), [_count(1, "2026-11-02", 0, 1)])
    run_once()
    error = _errors()[key]
    assert "column sensing_date: sensing_date 2026-11-02 to 2026-11-02 is outside" in error
    assert _counts() == []


def test_a_header_that_is_not_the_datasets_is_refused(pedestrian: Settings) -> None:
    key = naming.counts_key(date(2026, 11, 1), date(2026, 11, 2), FETCHED)
    _land(key, [COUNT_HEADER.replace("hourday", "hour"), _count(1, "2026-11-01", 0, 1)])
    run_once()
    assert "line 1: header is not pedestrian-counting-system-monthly-counts-per-hour's: " \
        "missing: hourday; not in the dataset: hour" in _errors()[key]  # fmt: skip


def test_a_byte_order_mark_and_crlf_records_load(pedestrian: Settings) -> None:
    key = naming.counts_key(date(2026, 11, 1), date(2026, 11, 2), FETCHED)
    lines = ["\ufeff" + COUNT_HEADER, _count(1, "2026-11-01", 0, 4), _count(1, "2026-11-01", 1, 6)]
    get_zone("incoming").put(key, io.BytesIO(gzip.compress(("\r\n".join(lines) + "\r\n").encode())))
    summary = run_once().source("melbourne_pedestrian")
    assert summary.ingest.archived == 1, summary.ingest.errors
    assert _counts() == [(1, "2026-11-01", 0, 4), (1, "2026-11-01", 1, 6)]


def test_the_repeated_hour_is_summed_an_empty_count_kept_a_repeat_elsewhere_errors(
    pedestrian: Settings,
) -> None:
    # 2026-04-05: clocks go back at 03:00 AEDT to 02:00 AEST, so 02:00 comes twice.
    fall_back = _counts_file(
        date(2026, 4, 5),
        date(2026, 4, 6),
        [
            _count(1, "2026-04-05", 1, 4),
            _count(1, "2026-04-05", 2, 6),
            _count(1, "2026-04-05", 2, 9).replace("12026-04-052;", "12026-04-052b;"),
            _count(1, "2026-04-05", 3, 5).replace(";5;S1", ";;S1"),  # an empty count
        ],
    )
    summary = run_once().source("melbourne_pedestrian")
    assert summary.ingest.archived == 1, _errors()
    assert _counts() == [
        (1, "2026-04-05", 1, 4),
        (1, "2026-04-05", 2, 15),
        (1, "2026-04-05", 3, None),
    ]
    with get_engine().connect() as conn:
        summed = conn.execute(
            text(
                "SELECT id, direction_1, direction_2, portal_records FROM "
                "pedestrian.hourly_counts WHERE hourday = 2"
            )
        ).one()
    assert tuple(summed) == ("12026-04-052 12026-04-052b", 7, 8, 2)
    # Two records of one key at any other hour: the portal re-issued one; refused whole.
    bad = _counts_file(
        date(2026, 4, 6),
        date(2026, 4, 7),
        [_count(1, "2026-04-06", 2, 6), _count(1, "2026-04-06", 2, 9)],
        minutes=5,
    )
    run_once()
    assert set(_errors()) == {bad}
    assert (
        "column hourday: location_id 1, sensing_date 2026-04-06, hourday 2: 2 records with "
        "one key (only the local hour repeated when clocks go back may have two)"
    ) in _errors()[bad]
    assert fall_back not in _errors()
