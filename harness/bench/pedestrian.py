"""Pedestrian counts at the size of the city's legacy export: 4.4 million hourly rows in one
fetched window, loaded against raw COPY of the same file, then the dbt models built over
them (run by `harness.bench.qlik.run_qlik_bench`, same private server)."""

from __future__ import annotations

import gzip
import time
from datetime import date, timedelta
from pathlib import Path

from data_platform.batch.melbourne_pedestrian import naming

SENSORS = 70
FIRST_DAY = date(2009, 5, 1)


def write_counts(directory: Path, rows: int) -> tuple[Path, int]:
    """A `;`-separated gzip export of about `rows` hourly counts (SENSORS sensors, every
    hour of consecutive days from FIRST_DAY), shaped like the portal's. Returns the file,
    named by its window `<start>_<end>.csv.gz`, and its row count."""
    directory.mkdir(parents=True, exist_ok=True)
    days = max(1, rows // (SENSORS * 24))
    end = FIRST_DAY + timedelta(days=days)
    path = directory / f"{FIRST_DAY}_{end}.csv.gz"  # the window, read back by the land step
    with gzip.open(path, "wt", newline="", compresslevel=1) as out:
        out.write(";".join(naming.COUNT_COLUMNS) + "\r\n")
        day = FIRST_DAY
        for index in range(days):
            stamp = day.isoformat()
            for sensor in range(1, SENSORS + 1):
                for hour in range(24):
                    count = (sensor * 37 + hour * 101 + index * 7) % 4000
                    out.write(
                        f"{sensor}{stamp}{hour};{sensor};{stamp};{hour};{count // 2};"
                        f'{count - count // 2};{count};S{sensor:03d}_T;"-37.81, 144.96"\r\n'
                    )
            day += timedelta(days=1)
    return path, days * SENSORS * 24


def _configure(home: Path) -> None:
    from harness.bench.qlik import _configure as configure

    configure(str(home))


def pedestrian_reset(home: Path) -> None:
    """No counts yet: every measured load replaces an empty window."""
    _configure(home)
    from sqlalchemy import text

    from data_platform.db.engine import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("TRUNCATE pedestrian.hourly_counts"))


def pedestrian_land(home: Path, path: Path, files: Path) -> None:
    """Put the export in incoming under a new fetch stamp, then scan."""
    _configure(home)
    from datetime import UTC, datetime

    from data_platform.batch.melbourne_pedestrian.source import scan_pedestrian
    from data_platform.storage import get_zone

    start, end = (date.fromisoformat(part) for part in path.with_suffix("").stem.split("_"))
    key = naming.counts_key(start, end, datetime.now(UTC))
    with path.open("rb") as body:
        get_zone("incoming").put(key, body)
    scan_pedestrian()


def pedestrian_ingest(home: str) -> float:
    _configure(Path(home))
    from data_platform.batch.melbourne_pedestrian.source import PEDESTRIAN
    from data_platform.loads.worker import ingest

    started = time.perf_counter()
    result = ingest(PEDESTRIAN)
    elapsed = time.perf_counter() - started
    if result.errored or result.archived == 0:
        raise RuntimeError(f"pedestrian ingest failed: {result.errors}")
    return elapsed


def pedestrian_transform(home: str) -> float:
    """Seconds of `dbt build` (models and data tests) over the loaded counts, every
    sensor located (unmeasured: a count without a location row is a data test's warning,
    and millions of them its error, the locations not loaded)."""
    _configure(Path(home))
    from sqlalchemy import text

    from data_platform.db.engine import get_engine
    from data_platform.transform import run_transform

    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pedestrian.sensor_locations (location_id, sensor_description, "
                "sensor_name, installation_date, location_type, status, direction_1, "
                "direction_2, latitude, longitude, dp__load_id) SELECT n, 'Place ' || n, "
                "format('S%s_T', lpad(n::text, 3, '0')), DATE '2019-01-01', 'Outdoor', 'A', "
                "'North', 'South', -37.81, 144.96, 0 FROM generate_series(1, :sensors) AS n "
                "ON CONFLICT DO NOTHING"
            ),
            {"sensors": SENSORS},
        )
    started = time.perf_counter()
    result = run_transform()
    elapsed = time.perf_counter() - started
    if not result.ok:
        raise RuntimeError(f"transform failed: {result.summary()}")
    return elapsed
