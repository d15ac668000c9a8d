"""Fetch the pedestrian datasets from the portal into the incoming zone.

One run (under an advisory lock: one fetch at a time):
1. the sensor-locations dataset, whole, to `naming.locations_key(now)`;
2. the hourly counts of the window [start, end), to `naming.counts_key(start, end, now)`:
   start = `since`, else the mark minus OPEN_DATA_LOOKBACK_DAYS (default 7), else, on the
   first fetch, FIRST_FETCH_DAYS days before today; end = `until`, else tomorrow. "Today"
   is the Melbourne date (the portal's sensing_date is local), whatever the host's zone.

The mark (the counts' landing mark, `loads.marks`: {"next_date", "portal"}) follows the
data, not the calendar: it is
the last sensing_date the portal actually had counts for. After the file is in place it
moves to that day of the landed file, never back (a backfill of old days leaves it) and
never past today. So a portal that publishes late leaves the mark where its data ends,
and the next fetch asks again from there; the lookback re-reads the days before it, so a
day the portal fills in late (a hole, a sensor published after the others) or corrects
is caught up too. Re-read days never double: a landed file replaces, per sensor and day
it holds, that sensor's day (`source.py`). A window in which the portal had no day after
the mark is "no new day": `PedestrianFetch.new_day` is False, the summary line says so
and the log has it at INFO; it is not a failure (exit 0). The mark's `portal` is the
portal of the last fetch that landed counts (`OpenDataClient.portal`): a fetch from
another portal moves it there, with or without a new day, and verify compares the table
only with that portal (`verify.py`).

Each export is streamed from HTTP into a gzip temporary file, the bytes as sent, while
every record is checked (`validate_export`): the header has exactly the dataset's columns
(`naming.COLUMNS`, in any order), dates are ISO, hourday 0-23, counts non-negative
integers, location_id an integer, and a count's sensing_date lies in the window. Only a
whole, valid file is put in incoming (`put` is atomic); anything wrong lands nothing and
leaves the mark as it was. Memory stays flat: one record at a time.

Awkward rows the real portal has are carried, not refused (README, "Pedestrian counts"):
an empty pedestriancount is kept as NULL (counted in `Checked.empty_counts`, logged as a
warning; the models leave it out of totals and a warning-level dbt test reports it), and
the repeated 02:00 hour when clocks go back is two records with one key, summed at load.

Empty exports: a counts window with no rows is landed (it is normal for today early in the
day; it changes no row). A sensor-locations export with no rows is refused: the dataset is
never empty, and landing it would empty the table.

Before anything lands, temporary files that killed fetches left under the source's prefix
are removed (`ZoneStore.clean_partials`: only those whose writer is gone).

A failed dataset does not stop the other: its error is in `PedestrianFetch.errors` (and
by dataset in `failed_datasets`). A landing of the platform (`lander.PedestrianLander`):
`pedestrian fetch` and `data-platform run` go through it.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import logging
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Engine

from data_platform import streams
from data_platform.batch.melbourne_pedestrian.client import (
    DELIMITER,
    OpenDataClient,
    PedestrianError,
    window_where,
)
from data_platform.batch.melbourne_pedestrian.naming import (
    COLUMNS,
    COUNTS,
    LOCATIONS,
    MELBOURNE,
    PREFIX,
    SOURCE,
    Dataset,
    counts_key,
    locations_key,
)
from data_platform.db.engine import get_engine
from data_platform.errors import DataPlatformError
from data_platform.http import redact
from data_platform.loads import marks
from data_platform.loads.locks import advisory_lock
from data_platform.settings import Settings, get_settings
from data_platform.storage import ZoneStore, get_zone

if TYPE_CHECKING:
    from _typeshed import SupportsWrite  # anything with write(bytes): a file, a gzip stream

log = logging.getLogger(__name__)

# The first fetch (no mark, no `since`) starts this many days before today.
FIRST_FETCH_DAYS = 60
INT32_MAX = 2**31 - 1
_LOCK = ("pedestrian_fetch", 1)


def _utcnow() -> datetime:
    """The clock (tests replace it)."""
    return datetime.now(UTC)


def melbourne_date(moment: datetime) -> date:
    """The date in Melbourne at `moment` (timezone-aware)."""
    return moment.astimezone(MELBOURNE).date()


class InvalidExport(PedestrianError):
    """An export that must not land: the message names the dataset (and window), the CSV
    line (from 1, the header) and the column."""

    def __init__(self, what: str, reason: str, *, line: int | None, column: str | None) -> None:
        self.line = line
        self.column = column
        where = ", ".join(
            part
            for part in (
                f"line {line}" if line is not None else "",
                f"column {column}" if column else "",
            )
            if part
        )
        super().__init__(f"{what}: {where + ': ' if where else ''}{reason}: not landed")


# --- results ------------------------------------------------------------------------------


class Checked(NamedTuple):
    """What `validate_export` saw: records (header excluded), the last sensing_date among
    them (None: no counts, or not the counts), and empty pedestriancount fields."""

    rows: int
    last_day: date | None = None
    empty_counts: int = 0


@dataclass(frozen=True)
class LandedFile:
    dataset: str  # naming.Dataset.name
    key: str  # in the incoming zone
    rows: int  # records, the header not counted
    start: date | None = None  # counts: the window [start, end)
    end: date | None = None
    last_day: date | None = None  # counts: the last sensing_date the file holds
    empty_counts: int = 0  # counts: records whose pedestriancount is empty (kept as NULL)


@dataclass
class PedestrianFetch:
    """What a fetch did. `start`/`end`: the counts window asked for; `mark`: the last
    sensing_date the portal has had counts for, afterwards (None: none yet); `new_day`:
    did the counts bring a day after the mark as it was (None: counts not landed);
    `lookback_days`: OPEN_DATA_LOOKBACK_DAYS; `partials_removed`: temporary files of killed
    fetches cleaned; `skipped`: "busy" when another fetch held the lock (nothing done)."""

    start: date | None = None
    end: date | None = None
    landed: list[LandedFile] = field(default_factory=list)
    mark: date | None = None
    new_day: bool | None = None
    lookback_days: int = 0
    partials_removed: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: str | None = None
    failed_datasets: dict[str, str] = field(default_factory=dict)  # name -> its error

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def rows(self) -> dict[str, int]:
        """Rows per landed key."""
        return {f.key: f.rows for f in self.landed}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings."""
        return _jsonable(dataclasses.asdict(self))

    def render(self) -> str:
        """One summary line, a line per landed file, a line per error."""
        if self.skipped:
            return "pedestrian fetch skipped: another fetch is running"
        line = f"fetched pedestrian data: {len(self.landed)} file(s) landed"
        if self.start and self.end:
            line += f"; counts [{self.start}, {self.end})"
        if self.mark:
            line += f", portal's counts end {self.mark}"
        line += f"; {len(self.errors)} error(s)"
        lines = [line]
        if self.new_day is False:
            after = f"after {self.mark}" if self.mark else "in the window"
            lines.append(f"  no new day: the portal had no counts {after}")
        for f in self.landed:
            note = f", {f.empty_counts} empty count(s) kept as NULL" if f.empty_counts else ""
            lines.append(f"  {f.dataset}: {f.rows} row(s){note} -> {f.key}")
        if self.partials_removed:
            lines.append(f"  removed {self.partials_removed} temporary file(s) of killed fetches")
        lines += [f"  error: {message}" for message in self.errors]
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return value


# --- fetch --------------------------------------------------------------------------------


def fetch_pedestrian(
    *,
    since: date | None = None,
    until: date | None = None,
    settings: Settings | None = None,
) -> PedestrianFetch:
    """Land the sensor locations and the hourly counts of [start, end) (see the module's
    doc for start, end and the mark), then advance the counts' mark.

    `settings` (default: get_settings()) gives OPEN_DATA_BASE_URL, OPEN_DATA_API_KEY,
    OPEN_DATA_LOOKBACK_DAYS and the incoming zone; the database is get_engine()'s.
    Returns a PedestrianFetch; a failed dataset is in its `errors`, not raised. Raises
    PedestrianError when the window is empty (start >= end) or the base URL is unusable."""
    settings = settings or get_settings()
    if since is not None and until is not None and since >= until:
        raise PedestrianError(f"hourly_counts: since {since} is not before until {until}")
    secret = settings.open_data_api_key.get_secret_value() if settings.open_data_api_key else ""
    client = OpenDataClient(settings.open_data_base_url, api_key=secret or None)
    engine = get_engine()
    zone = get_zone("incoming", settings)
    result = PedestrianFetch()
    with client, advisory_lock(engine, *_LOCK) as got:
        if not got:
            result.skipped = "busy"
            log.info("another pedestrian fetch is running: skipped")
            return result
        # Under the lock no other fetch writes: a temporary file under the prefix is a
        # killed fetch's (clean_partials still spares any whose writer process lives).
        result.partials_removed = zone.clean_partials(PREFIX)
        now = _utcnow()
        today = melbourne_date(now)
        mark = _read_mark(engine)
        result.mark = mark
        result.lookback_days = lookback = settings.open_data_lookback_days
        if since is not None:
            start = since
        elif mark is not None:
            start = mark - timedelta(days=lookback)
        else:
            start = today - timedelta(days=FIRST_FETCH_DAYS)
        end = until or today + timedelta(days=1)
        if start >= end:
            origin = (
                "since"
                if since
                else f"the mark minus {lookback} day(s)"
                if mark
                else "the first-fetch default"
            )
            raise PedestrianError(
                f"hourly_counts: nothing to fetch: [{start}, {end}) is empty (start from "
                f"{origin}, end {'until' if until else 'tomorrow'})"
            )
        result.start, result.end = start, end
        steps: list[tuple[str, Callable[[], None]]] = [
            (LOCATIONS.name, lambda: _locations(client, zone, now, result)),
            (COUNTS.name, lambda: _counts(engine, client, zone, now, today, start, end, result)),
        ]
        for name, step in steps:
            try:
                step()
            except DataPlatformError as exc:
                # Ours never hold the key; redact anyway, as a library's text might.
                message = redact(str(exc), secret)
                result.errors.append(message)
                result.failed_datasets[name] = message
                log.error("not fetched: %s", message, extra={"dataset": name})
    return result


def fetched_from(engine: Engine) -> str | None:
    """The portal (OpenDataClient.portal) whose counts last moved the counts' mark; None
    before the first fetch, or for a mark written before the portal was recorded."""
    with engine.connect() as conn:
        mark = marks.read_mark(conn, SOURCE, COUNTS.dataset_id)
    return mark.get("portal") if mark else None


def _read_mark(engine: Engine) -> date | None:
    with engine.connect() as conn:
        mark = marks.read_mark(conn, SOURCE, COUNTS.dataset_id)
    return date.fromisoformat(mark["next_date"]) if mark else None


def _locations(
    client: OpenDataClient, zone: ZoneStore, now: datetime, result: PedestrianFetch
) -> None:
    key = locations_key(now)
    checked = land_export(client, zone, LOCATIONS, key)
    result.landed.append(LandedFile(LOCATIONS.name, key, checked.rows))


def _counts(
    engine: Engine,
    client: OpenDataClient,
    zone: ZoneStore,
    now: datetime,
    today: date,
    start: date,
    end: date,
    result: PedestrianFetch,
) -> None:
    key = counts_key(start, end, now)
    checked = land_export(client, zone, COUNTS, key, window=(start, end))
    result.landed.append(
        LandedFile(
            COUNTS.name, key, checked.rows, start, end, checked.last_day, checked.empty_counts
        )
    )
    # The file is in place: now the mark, to the last day the portal had counts for. Not
    # back, not past today (see the module's doc).
    before = result.mark
    last = min(checked.last_day, today) if checked.last_day is not None else None
    result.new_day = last is not None and (before is None or last > before)
    extra = {"dataset": COUNTS.dataset_id, "key": key}
    if not result.new_day:
        log.info(
            "hourly counts [%s, %s): no new day: the portal's counts still end %s",
            start,
            end,
            before or "before the window",
            extra=extra,
        )
    other_portal = client.portal != fetched_from(engine)
    if before is not None and other_portal:
        # Another portal's file, new day or not: it is the one compared with from now;
        # the day never goes back.
        last = before if last is None else max(last, before)
    elif last is None or (before is not None and last <= before):
        return  # the mark stays (and names the last file that moved it)
    with engine.begin() as conn:
        marks.write_mark(
            conn,
            SOURCE,
            COUNTS.dataset_id,
            {"next_date": last.isoformat(), "portal": client.portal},
            last_key=key,
        )
    result.mark = last
    log.info(
        "hourly counts [%s, %s) landed: %d row(s); the portal's counts end %s",
        start,
        end,
        checked.rows,
        last,
        extra=extra,
    )


def land_export(
    client: OpenDataClient,
    zone: ZoneStore,
    dataset: Dataset,
    key: str,
    *,
    window: tuple[date, date] | None = None,
) -> Checked:
    """Stream `dataset`'s export (counts: of the window [start, end)) into a gzip temporary
    file, checking it, then put it at `key` in `zone`; returns what `validate_export` saw.
    Nothing is put unless the whole body arrived and passed (PedestrianError otherwise)."""
    what = dataset.name
    where = None
    if window is not None:
        what = f"{dataset.name} [{window[0]}, {window[1]})"
        where = window_where(*window)
    with tempfile.TemporaryFile(prefix="pedestrian-") as spool:
        with (
            gzip.GzipFile(fileobj=spool, mode="wb", compresslevel=6, mtime=0) as sink,
            client.export_csv(dataset, where=where, what=what) as chunks,
        ):
            checked = validate_export(dataset, chunks, sink, what=what, window=window)
        rows = checked.rows
        if rows == 0 and dataset == LOCATIONS:
            raise InvalidExport(
                what,
                "no rows (the dataset is never empty; landing it would empty the table)",
                line=None,
                column=None,
            )
        if rows == 0:
            log.warning("%s: no rows: landed empty (it changes no row)", what)
        if checked.empty_counts:
            log.warning(
                "%s: %d record(s) with an empty pedestriancount: kept as NULL (left out of totals)",
                what,
                checked.empty_counts,
            )
        spool.seek(0)
        zone.put(key, spool)
    log.info("landed %s: %d row(s)", what, rows, extra={"dataset": dataset.dataset_id, "key": key})
    return checked


# --- checks -------------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NATURAL = re.compile(r"\d+")
_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")

# A check takes a field's text and returns why it is wrong, or None.
Check = Callable[[str], str | None]


def _date(required: bool) -> Check:
    def check(value: str) -> str | None:
        if not value:
            return "empty" if required else None
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            date.fromisoformat(value)
        except ValueError:
            return f"not a date (YYYY-MM-DD): {_show(value)}"
        return None

    return check


def _integer(required: bool, low: int | None = None, high: int = INT32_MAX) -> Check:
    pattern = _NATURAL if low is not None and low >= 0 else _INTEGER
    kind = "a non-negative integer" if pattern is _NATURAL else "an integer"
    lowest = -INT32_MAX - 1 if low is None else low

    def check(value: str) -> str | None:
        if not value:
            return "empty" if required else None
        if not pattern.fullmatch(value):
            return f"not {kind}: {_show(value)}"
        if not lowest <= int(value) <= high:
            return f"not in {lowest}..{high}: {_show(value)}"
        return None

    return check


def _number(value: str) -> str | None:
    if value and not _NUMBER.fullmatch(value):
        return f"not a number: {_show(value)}"
    return None


CHECKS: dict[str, dict[str, Check]] = {
    COUNTS.name: {
        "location_id": _integer(required=True),
        "sensing_date": _date(required=True),
        "hourday": _integer(required=True, low=0, high=23),
        "direction_1": _integer(required=False, low=0),
        "direction_2": _integer(required=False, low=0),
        # Empty in the real data now and then: kept as NULL (the module's doc).
        "pedestriancount": _integer(required=False, low=0),
    },
    LOCATIONS.name: {
        "location_id": _integer(required=True),
        "installation_date": _date(required=False),
        "latitude": _number,
        "longitude": _number,
    },
}


def validate_export(
    dataset: Dataset,
    chunks: Iterable[bytes],
    sink: SupportsWrite[bytes] | None = None,
    *,
    what: str | None = None,
    window: tuple[date, date] | None = None,
) -> Checked:
    """Check an export body (`;`-separated UTF-8 CSV; a leading byte-order mark is
    allowed) record by record, writing its bytes unchanged to `sink` as they are read;
    returns the number of records (header excluded).

    The header must hold each of `naming.COLUMNS[dataset.name]` once, in any order, and
    nothing else; every record as many fields as the header; fields pass `CHECKS`; with
    `window`, sensing_date is in [start, end). Returns the records' count, the last
    sensing_date and the empty pedestriancounts (`Checked`). Raises InvalidExport naming
    `what` (default: the dataset's name), the line and the column."""
    what = what or dataset.name
    if sink is not None:
        chunks = streams.tee(chunks, sink.write)
    text = io.TextIOWrapper(streams.reader(chunks), "utf-8", newline="")
    reader = csv.reader(text, delimiter=DELIMITER, strict=True)
    line = 1  # the first line of the record being read

    def fail(reason: str, column: str | None = None) -> InvalidExport:
        return InvalidExport(what, reason, line=line, column=column)

    def records() -> Iterator[list[str]]:
        nonlocal line
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise fail(f"not CSV: {exc}") from None
            except UnicodeDecodeError:
                raise fail("not UTF-8 (here or a little after)") from None
            yield record
            line = reader.line_num + 1

    rows = records()
    header = next(rows, None)
    if header is None:
        raise InvalidExport(what, "empty (no header line)", line=None, column=None)
    if header:
        header[0] = header[0].removeprefix("\ufeff")
    expected = COLUMNS[dataset.name]
    problems = []
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    doubled = sorted({c for c in header if header.count(c) > 1})
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) {', '.join(map(_show, extra))}")
    if doubled:
        problems.append(f"repeated column(s) {', '.join(doubled)}")
    if problems:
        raise fail(f"header: {'; '.join(problems)}")
    checks = [(n, name, CHECKS[dataset.name].get(name)) for n, name in enumerate(header)]
    day_at = header.index("sensing_date") if dataset == COUNTS else None
    count_at = header.index("pedestriancount") if dataset == COUNTS else None
    count = empty = 0
    last_day: date | None = None
    for record in rows:
        if len(record) != len(header):
            raise fail(f"{len(record)} field(s), the header has {len(header)}")
        for n, name, check in checks:
            if check is not None and (why := check(record[n])) is not None:
                raise fail(why, name)
        if day_at is not None:
            day = date.fromisoformat(record[day_at])
            if window is not None and not window[0] <= day < window[1]:
                raise fail(
                    f"{day} is outside the window [{window[0]}, {window[1]})", "sensing_date"
                )
            last_day = day if last_day is None or day > last_day else last_day
        if count_at is not None and not record[count_at]:
            empty += 1
        count += 1
    return Checked(count, last_day, empty)


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
