"""Generated sample data in the portal's shape, for the demo API and tests: 30 sensors, the
hourly counts of September and October 2026 (43,920 rows), the same every time (seeded).

Made to exercise what the real data does and the rankings must get right:
- `UNLOCATED_ID` has counts but no sensor-locations row (names NULL after a join);
- `REMOVED_ID` has a location row (status R) but no counts;
- `LATE_ID` was installed on `LATE_INSTALLED`, yet has counts from the first day;
- on `TIE_DAY` the daily totals ranked 10th and 11th are equal, and so are the October
  (`TIE_MONTH`) totals ranked 10th and 11th (`tie_pairs()` names the sensors);
- one note holds a `;` and a `"`, so a reader must honour CSV quoting.
UNLOCATED_ID and LATE_ID count little, so they never reach the top 11 and the ties hold
whether or not a ranking keeps them.

`sensor_locations()` and `hourly_counts(start, end)` give the rows, values as the CSV
export writes them; `to_csv(dataset, rows)` writes rows as the portal's export would
(`;`-separated, CRLF, header = the field names in naming.COLUMNS order); `export` and
`export_bytes` give a dataset's whole export body that way (cached per day: fast).
"""

from __future__ import annotations

import csv
import functools
import io
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from data_platform.batch.melbourne_pedestrian.naming import COLUMNS, COUNTS, LOCATIONS, Dataset

SEED = 20260901
FIRST_DAY = date(2026, 9, 1)
END_DAY = date(2026, 11, 1)  # exclusive: the counts cover [FIRST_DAY, END_DAY)
SENSORS = 30
TIE_DAY = date(2026, 9, 15)
TIE_MONTH = (2026, 10)
UNLOCATED_ID = 98
REMOVED_ID = 99
LATE_ID = 57
LATE_INSTALLED = date(2026, 10, 15)

_PLACES = (
    "Bourke Street Mall (North)",
    "Bourke Street Mall (South)",
    "Melbourne Central",
    "Town Hall (West)",
    "Princes Bridge",
    "Flinders Street Station Underpass",
    "Southern Cross Station",
    "Flinders St-Elizabeth St (East)",
    "Collins Place (South)",
    "Collins Place (North)",
    "Chinatown-Swanston St (North)",
    "QV Market-Elizabeth St (West)",
    "State Library - New",
    "Webb Bridge",
    "Sandridge Bridge",
    "Birrarung Marr",
    "Lonsdale St (South)",
    "Lygon St (West)",
    "Faraday St-Lygon St (West)",
    "Melbourne Convention Exhibition Centre",
    "Spencer St-Collins St (North)",
    "Queen St (West)",
    "Flagstaff Station",
    "The Arts Centre",
    "Alfred Place",
    "New Quay",
    "Waterfront City",
    "Victoria Point",
    "Tin Alley-Swanston St (West)",
    "Shrine Of Remembrance",
)
_TYPES = ("Outdoor", "Outdoor", "Indoor", "Outdoor Blix", "Indoor Blix")
_DIRECTIONS = (("North", "South"), ("East", "West"), ("In", "Out"))
# Share of a day's pedestrians in each hour (0-23), roughly a city-centre day.
_HOURS = (
    1, 1, 1, 1, 1, 2, 4, 8, 12, 9, 8, 9, 12, 11, 9, 9, 10, 12, 10, 7, 5, 4, 3, 2,
)  # fmt: skip
# Monday to Sunday.
_WEEKDAYS = (1.0, 1.0, 1.05, 1.1, 1.25, 1.15, 0.85)


def days() -> list[date]:
    """Every sensing_date of the sample, in order."""
    return [FIRST_DAY + timedelta(n) for n in range((END_DAY - FIRST_DAY).days)]


@dataclass(frozen=True)
class _Sample:
    locations: tuple[dict[str, str], ...]
    names: dict[int, str]  # sensor_name per location_id with counts
    places: dict[int, str]  # `location` per location_id with a location row
    # counts[(location_id, day)][hour] = [direction_1, direction_2]
    counts: dict[tuple[int, date], list[list[int]]]


@functools.cache
def _generate() -> _Sample:
    rng = random.Random(SEED)
    ids = sorted([*rng.sample([n for n in range(1, 90) if n != LATE_ID], SENSORS - 2), LATE_ID])
    quiet = {UNLOCATED_ID, LATE_ID}
    locations = []
    names = {UNLOCATED_ID: f"Unk{100 + UNLOCATED_ID * 3}_T"}
    places = {}
    for n, location_id in enumerate([*ids, REMOVED_ID]):
        place = "Old Market (Removed)" if location_id == REMOVED_ID else _PLACES[n % len(_PLACES)]
        name = f"{place.replace(' ', '')[:3]}{100 + location_id * 3}_T"
        lat = -37.80 - rng.random() * 0.03
        lon = 144.94 + rng.random() * 0.04
        first, second = _DIRECTIONS[n % len(_DIRECTIONS)]
        installed = LATE_INSTALLED if location_id == LATE_ID else date(2009 + n % 15, 1 + n % 12, 1)
        note = ""
        if n == 4:
            note = 'Sensor relocated; was "Town Hall (East)" until 2022'
        elif location_id == LATE_ID:
            note = "Counts before installation are from a temporary sensor"
        row = {
            "location_id": str(location_id),
            "sensor_description": place,
            "sensor_name": name,
            "installation_date": installed.isoformat(),
            "note": note,
            "location_type": _TYPES[n % len(_TYPES)],
            "status": "R" if location_id == REMOVED_ID else "A",
            "direction_1": first,
            "direction_2": second,
            "latitude": f"{lat:.8f}",
            "longitude": f"{lon:.8f}",
            "location": f"{lat:.8f}, {lon:.8f}",
        }
        locations.append(row)
        places[location_id] = row["location"]
        if location_id != REMOVED_ID:
            names[location_id] = name
    counts: dict[tuple[int, date], list[list[int]]] = {}
    for location_id in sorted([*ids, UNLOCATED_ID]):
        daily = rng.randint(150, 400) if location_id in quiet else rng.randint(2_000, 40_000)
        for day in days():
            hours = []
            for share in _HOURS:
                mean = daily * _WEEKDAYS[day.weekday()] * share / sum(_HOURS)
                total = max(0, round(mean * rng.uniform(0.8, 1.2)))
                first = round(total * rng.uniform(0.35, 0.65))
                hours.append([first, total - first])
            counts[(location_id, day)] = hours
    # The ties: raise the 11th to the 10th, on TIE_DAY, then on a day of TIE_MONTH (not
    # TIE_DAY's month, so the day's tie stays).
    for bump_day, in_period in (
        (TIE_DAY, lambda d: d == TIE_DAY),
        (date(*TIE_MONTH, 20), lambda d: (d.year, d.month) == TIE_MONTH),
    ):
        ranked = _ranked(counts, in_period)
        (_, target), (eleventh, total) = ranked[9], ranked[10]
        counts[(eleventh, bump_day)][12][0] += target - total
    return _Sample(tuple(locations), names, places, counts)


def _ranked(counts: dict, in_period: Callable[[date], bool]) -> list[tuple[int, int]]:
    """(location_id, total) over the days in the period, the largest first (then by id)."""
    totals: dict[int, int] = {}
    for (location_id, day), hours in counts.items():
        if in_period(day):
            totals[location_id] = totals.get(location_id, 0) + sum(a + b for a, b in hours)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def tie_pairs() -> dict[str, tuple[int, int]]:
    """The two location_ids tied at ranks 10 and 11: {"day": ..., "month": ...}."""
    counts = _generate().counts
    pairs = {}
    for name, in_period in (
        ("day", lambda d: d == TIE_DAY),
        ("month", lambda d: (d.year, d.month) == TIE_MONTH),
    ):
        ranked = _ranked(counts, in_period)
        pairs[name] = (ranked[9][0], ranked[10][0])
    return pairs


def sensor_locations() -> list[dict[str, str]]:
    """The sensor-locations dataset: one row per location (REMOVED_ID included)."""
    return [dict(row) for row in _generate().locations]


def hourly_counts(start: date | None = None, end: date | None = None) -> list[dict[str, str]]:
    """The hourly counts whose sensing_date is in [start, end) (default: all), ordered by
    sensing_date, hourday and location_id."""
    return [
        dict(row)
        for day in days()
        if (start is None or day >= start) and (end is None or day < end)
        for row in _day_rows(day)
    ]


@functools.cache
def _day_rows(day: date) -> tuple[dict[str, str], ...]:
    sample = _generate()
    located = sorted(location_id for location_id, when in sample.counts if when == day)
    rows = []
    for hour in range(24):
        for location_id in located:
            first, second = sample.counts[(location_id, day)][hour]
            rows.append(
                {
                    "id": f"{location_id}{day:%Y%m%d}{hour:02d}",
                    "location_id": str(location_id),
                    "sensing_date": day.isoformat(),
                    "hourday": str(hour),
                    "direction_1": str(first),
                    "direction_2": str(second),
                    "pedestriancount": str(first + second),
                    "sensor_name": sample.names[location_id],
                    "location": sample.places.get(location_id, ""),
                }
            )
    return tuple(rows)


@functools.cache
def _day_csv(day: date) -> bytes:
    return to_csv(COUNTS, _day_rows(day)).split(b"\r\n", 1)[1]


def export(dataset: Dataset, keep: Callable[[date], bool] | None = None) -> Iterator[bytes]:
    """The body of `dataset`'s CSV export (counts: of the sensing_dates `keep` keeps, all
    when None) in chunks, as `to_csv` writes it; the counts' chunks are cached per day."""
    if dataset == LOCATIONS:
        yield from csv_chunks(LOCATIONS, sensor_locations())
        return
    yield from csv_chunks(COUNTS, [])  # the header
    for day in days():
        if keep is None or keep(day):
            yield _day_csv(day)


def export_bytes(dataset: Dataset, start: date | None = None, end: date | None = None) -> bytes:
    """The whole export body (counts: of sensing_date in [start, end))."""
    return b"".join(
        export(dataset, lambda d: (start is None or d >= start) and (end is None or d < end))
    )


def csv_chunks(
    dataset: Dataset, records: Iterable[dict[str, str]], batch: int = 2_000
) -> Iterator[bytes]:
    """`records` as the portal's CSV export: `;`-separated, CRLF, the header first (the
    field names, in naming.COLUMNS order), minimal quoting; in chunks of `batch` rows."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS[dataset.name], delimiter=";", lineterminator="\r\n")
    writer.writeheader()
    for n, record in enumerate(records, 1):
        writer.writerow(record)
        if n % batch == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def to_csv(dataset: Dataset, records: Iterable[dict[str, str]]) -> bytes:
    """`records` as one CSV export body (see csv_chunks)."""
    return b"".join(csv_chunks(dataset, records))
