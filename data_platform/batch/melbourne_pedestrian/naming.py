"""Names of the pedestrian source: its datasets, schema, tables, incoming keys.

Incoming keys (one immutable gzip CSV per fetch, as the Opendatasoft export wrote it):
- `open_data/melbourne_pedestrian/sensor_locations/fetched=<UTC stamp>.csv.gz`: the
  whole sensor-locations dataset;
- `open_data/melbourne_pedestrian/hourly_counts/from=<date>_to=<date>/fetched=<UTC
  stamp>.csv.gz`: the hourly counts whose `sensing_date` is in [from, to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from data_platform.db.models import SourceName

SOURCE: Final[SourceName] = "melbourne_pedestrian"
DB_SCHEMA = "pedestrian"
PREFIX = "open_data/melbourne_pedestrian/"
LOAD_ID_COLUMN = "dp__load_id"
SUFFIX = ".csv.gz"
STAMP = "%Y%m%dT%H%M%S.%fZ"
# The portal's sensing_date and hourday are local to the city.
MELBOURNE = ZoneInfo("Australia/Melbourne")


@dataclass(frozen=True)
class Dataset:
    """One Opendatasoft dataset the source fetches."""

    name: str  # the platform's short name, also the table and the key folder
    dataset_id: str  # the portal's dataset id
    key: tuple[str, ...]  # the table's key columns


LOCATIONS = Dataset(
    "sensor_locations", "pedestrian-counting-system-sensor-locations", ("location_id",)
)
COUNTS = Dataset(
    "hourly_counts",
    "pedestrian-counting-system-monthly-counts-per-hour",
    ("location_id", "sensing_date", "hourday"),
)
DATASETS = (LOCATIONS, COUNTS)

# The columns each landed file must have (the export's field names), in the table.
LOCATION_COLUMNS = (
    "location_id",
    "sensor_description",
    "sensor_name",
    "installation_date",
    "note",
    "location_type",
    "status",
    "direction_1",
    "direction_2",
    "latitude",
    "longitude",
    "location",
)
COUNT_COLUMNS = (
    "id",
    "location_id",
    "sensing_date",
    "hourday",
    "direction_1",
    "direction_2",
    "pedestriancount",
    "sensor_name",
    "location",
)
COLUMNS = {LOCATIONS.name: LOCATION_COLUMNS, COUNTS.name: COUNT_COLUMNS}

_WINDOW = re.compile(r"from=(\d{4}-\d{2}-\d{2})_to=(\d{4}-\d{2}-\d{2})/fetched=[0-9T.]+Z\.csv\.gz$")
_WHOLE = re.compile(r"fetched=[0-9T.]+Z\.csv\.gz$")


def table_name(dataset: Dataset) -> str:
    """The platform name of a dataset's table: melbourne_pedestrian__hourly_counts."""
    return f"{SOURCE}__{dataset.name}"


def dataset_prefix(dataset: Dataset) -> str:
    return f"{PREFIX}{dataset.name}/"


def locations_key(fetched: datetime) -> str:
    return f"{dataset_prefix(LOCATIONS)}fetched={fetched.strftime(STAMP)}{SUFFIX}"


def counts_key(start: date, end: date, fetched: datetime) -> str:
    """The key of a counts file holding sensing_date in [start, end)."""
    return (
        f"{dataset_prefix(COUNTS)}from={start.isoformat()}_to={end.isoformat()}/"
        f"fetched={fetched.strftime(STAMP)}{SUFFIX}"
    )


def window_of(key: str) -> tuple[date, date] | None:
    """[start, end) of a counts key; None when the key is not one."""
    match = _WINDOW.search(key) if key.startswith(dataset_prefix(COUNTS)) else None
    if match is None:
        return None
    return date.fromisoformat(match[1]), date.fromisoformat(match[2])


def is_locations_key(key: str) -> bool:
    rest = key[len(dataset_prefix(LOCATIONS)) :]
    return (
        key.startswith(dataset_prefix(LOCATIONS)) and "/" not in rest and bool(_WHOLE.match(rest))
    )


def is_repeated_hour(day: date, hour: int) -> bool:
    """Does the local hour `hour` (0-23) of `day` happen twice in Melbourne, because the
    clocks go back in it (03:00 AEDT -> 02:00 AEST on the first Sunday of April: hour 2)?
    From the tz database (zoneinfo), so a changed rule is followed. The hour skipped when
    the clocks go forward (02:00 on the first Sunday of October) is not repeated: PEP 495
    gives it the earlier offset for fold 0, the later for fold 1, the other way round."""
    first = datetime(day.year, day.month, day.day, hour, tzinfo=MELBOURNE)
    earlier, later = first.utcoffset(), first.replace(fold=1).utcoffset()
    assert earlier is not None and later is not None
    return earlier > later
