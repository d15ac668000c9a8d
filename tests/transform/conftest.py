"""Fixtures of the transform tests: a migrated database (pedestrian tables included) and
helpers to insert pedestrian rows directly with SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from data_platform.settings import Settings

# (location_id, sensing_date, hourday, pedestriancount)
Count = tuple[int, date | str, int, int]


def connect(url: str):
    parsed = make_url(url)
    return psycopg2.connect(
        dbname=parsed.database,
        user=parsed.username,
        password=parsed.password,
        host=parsed.host or parsed.query.get("host"),
        port=parsed.port,
    )


@pytest.fixture
def pg(platform: Settings, db_url: str) -> Iterator:
    """An autocommit connection to the platform's (migrated) test database."""
    conn = connect(db_url)
    conn.autocommit = True
    yield conn
    conn.close()


def insert_location(conn, location_id: int, **columns: object) -> None:
    row = {
        "location_id": location_id,
        "sensor_description": f"Place {location_id}",
        "sensor_name": f"S{location_id}_T",
        "installation_date": date(2019, 1, 1),
        "location_type": "Outdoor",
        "status": "A",
        "direction_1": "North",
        "direction_2": "South",
        "latitude": -37.81,
        "longitude": 144.96,
        "dp__load_id": 0,
        **columns,
    }
    names = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO pedestrian.sensor_locations ({names}) VALUES ({marks})",
            list(row.values()),
        )


def insert_counts(conn, counts: Iterable[Count]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO pedestrian.hourly_counts (id, location_id, sensing_date, hourday,"
            " direction_1, direction_2, pedestriancount, sensor_name, dp__load_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0)",
            [
                (f"{lid}-{day}-{hour}", lid, day, hour, n // 2, n - n // 2, n, f"S{lid}")
                for lid, day, hour, n in counts
            ],
        )


def fetch(conn, query: str) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()
