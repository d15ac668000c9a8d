"""The pedestrian fetch against a real local HTTP server: windows, marks, retries, checks,
broken downloads, the API key; and the demo API serving the sample."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from data_platform.batch.melbourne_pedestrian.client import OpenDataClient, PedestrianError
from data_platform.batch.melbourne_pedestrian.fetch import (
    FIRST_FETCH_DAYS,
    fetch_pedestrian,
    melbourne_date,
    validate_export,
)
from data_platform.batch.melbourne_pedestrian.naming import (
    COUNTS,
    LOCATIONS,
    counts_key,
    dataset_prefix,
    locations_key,
)
from data_platform.db.engine import get_engine
from data_platform.errors import StorageError
from data_platform.loads.locks import advisory_lock
from data_platform.settings import Settings, reset_settings
from data_platform.storage import ZoneStore
from harness.samples import pedestrian as sample
from harness.stand_ins.pedestrian_api import demo_api
from tests.pedestrian.conftest import (
    API_KEY,
    COUNTS_PATH,
    LAST,
    LOCATIONS_PATH,
    NOW,
    Clock,
    landed_keys,
    mark,
    read_landed,
    requests_to,
)

SEPTEMBER = (date(2026, 9, 1), date(2026, 10, 1))
FIRST_TWO = (date(2026, 9, 1), date(2026, 9, 3))  # the sample's first two days
FIRST = (date(2026, 7, 4), date(2026, 9, 3))  # the first fetch at NOW
COUNTS_DIR = dataset_prefix(COUNTS)


def where(start: date, end: date) -> str:
    return f"sensing_date >= date'{start}' AND sensing_date < date'{end}'"


def counts_csv(start: date, end: date) -> bytes:
    return sample.export_bytes(COUNTS, start, end)


def csv_response(body: bytes, **headers: str) -> Response:
    return Response(body, mimetype="text/csv", headers=headers)


# --- windows and marks -------------------------------------------------------------------


def test_the_first_fetch_lands_both_datasets_and_sets_the_mark(
    portal: Settings, api: HTTPServer, clock: Clock
) -> None:
    clock.now = LAST
    result = fetch_pedestrian()
    assert not result.failed
    start, end = date(2026, 9, 1), date(2026, 11, 1)  # 60 days before today; tomorrow
    assert start == melbourne_date(LAST) - timedelta(days=FIRST_FETCH_DAYS)
    assert (result.start, result.end, result.mark) == (start, end, date(2026, 10, 31))
    (sent,) = requests_to(api, COUNTS_PATH)
    assert dict(sent.args) == {
        "where": where(start, end),
        "delimiter": ";",
        "with_bom": "false",
    }
    assert dict(requests_to(api, LOCATIONS_PATH)[0].args) == {"delimiter": ";", "with_bom": "false"}
    keys = [locations_key(LAST), counts_key(start, end, LAST)]
    assert [f.key for f in result.landed] == keys
    assert sorted(landed_keys()) == sorted(keys)
    assert result.rows == {keys[0]: 30, keys[1]: 61 * 24 * 30}
    # The bytes as the portal sent them.
    assert read_landed(keys[0]) == sample.to_csv(LOCATIONS, sample.sensor_locations())
    assert read_landed(keys[1]) == counts_csv(start, end)
    assert read_landed(keys[1]) == sample.to_csv(COUNTS, sample.hourly_counts())
    assert mark() == (date(2026, 10, 31), keys[1])
    assert result.new_day is True
    assert result.render().splitlines() == [
        "fetched pedestrian data: 2 file(s) landed; counts [2026-09-01, 2026-11-01), "
        "portal's counts end 2026-10-31; 0 error(s)",
        f"  sensor_locations: 30 row(s) -> {keys[0]}",
        f"  hourly_counts: 43920 row(s) -> {keys[1]}",
    ]
    assert result.to_dict()["landed"][1]["start"] == "2026-09-01"


def test_the_next_fetch_rereads_the_lookback_before_the_mark_and_an_empty_window_lands(
    portal: Settings, api: HTTPServer, clock: Clock
) -> None:
    assert portal.open_data_lookback_days == 7  # the default
    fetch_pedestrian()
    assert mark() == (date(2026, 9, 2), counts_key(*FIRST, NOW))
    api.log.clear()
    clock.now = NOW + timedelta(days=1)  # Melbourne: 2026-09-03
    result = fetch_pedestrian()
    (sent,) = requests_to(api, COUNTS_PATH)
    # From the last day the portal had, minus 7 days, to tomorrow.
    assert sent.args["where"] == where(date(2026, 8, 26), date(2026, 9, 4))
    key = counts_key(date(2026, 8, 26), date(2026, 9, 4), clock.now)
    assert result.rows[key] == 3 * 24 * 30  # the sample's three days so far
    assert result.new_day is True
    assert mark() == (date(2026, 9, 3), key)

    clock.now = LAST + timedelta(days=3)  # 2026-11-03: no counts in [11-01, 11-04)
    result = fetch_pedestrian(since=date(2026, 11, 1))
    empty = counts_key(date(2026, 11, 1), date(2026, 11, 4), clock.now)
    assert not result.failed and result.rows[empty] == 0
    assert read_landed(empty) == counts_csv(date(2026, 11, 1), date(2026, 11, 4))  # the header
    assert read_landed(empty).count(b"\r\n") == 1
    # The portal had no day after the mark: the mark stays, and the fetch says so.
    assert mark() == (date(2026, 9, 3), key) and result.mark == date(2026, 9, 3)
    assert result.new_day is False and result.to_dict()["new_day"] is False
    assert result.render().splitlines()[1] == (
        "  no new day: the portal had no counts after 2026-09-03"
    )


def test_the_lookback_is_a_setting(
    portal: Settings, api: HTTPServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_pedestrian()  # the mark: 2026-09-02
    monkeypatch.setenv("OPEN_DATA_LOOKBACK_DAYS", "0")
    reset_settings()
    result = fetch_pedestrian()
    assert requests_to(api, COUNTS_PATH)[-1].args["where"] == where(
        date(2026, 9, 2), date(2026, 9, 3)
    )
    assert (result.lookback_days, result.new_day) == (0, False)
    monkeypatch.setenv("OPEN_DATA_LOOKBACK_DAYS", "30")
    reset_settings()
    fetch_pedestrian()
    assert requests_to(api, COUNTS_PATH)[-1].args["where"] == where(
        date(2026, 8, 3), date(2026, 9, 3)
    )


def test_today_is_the_melbourne_date(portal: Settings, api: HTTPServer, clock: Clock) -> None:
    assert melbourne_date(datetime(2026, 10, 31, 14, 0, tzinfo=UTC)) == date(2026, 11, 1)  # AEDT
    clock.now = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)  # 01:00 on 2 September there
    fetch_pedestrian()
    (sent,) = requests_to(api, COUNTS_PATH)
    assert sent.args["where"] == where(*FIRST)


def test_since_and_until_and_the_mark_never_moves_back(
    portal: Settings, api: HTTPServer, clock: Clock
) -> None:
    clock.now = LAST
    result = fetch_pedestrian(since=date(2026, 9, 10), until=date(2026, 9, 12))
    assert result.rows[counts_key(date(2026, 9, 10), date(2026, 9, 12), LAST)] == 2 * 24 * 30
    assert mark()[0] == date(2026, 9, 11)  # type: ignore[index]
    fetch_pedestrian(until=date(2026, 9, 20))  # from the mark, less the lookback
    assert requests_to(api, COUNTS_PATH)[-1].args["where"] == where(
        date(2026, 9, 4), date(2026, 9, 20)
    )
    assert mark()[0] == date(2026, 9, 19)  # type: ignore[index]
    # A backfill leaves the mark; a window past the portal's data sets it where data ends.
    fetch_pedestrian(since=date(2026, 9, 1), until=date(2026, 9, 3))
    assert mark()[0] == date(2026, 9, 19)  # type: ignore[index]
    fetch_pedestrian(since=date(2026, 10, 30), until=date(2026, 12, 1))
    assert mark()[0] == date(2026, 10, 31)  # type: ignore[index]
    with pytest.raises(PedestrianError, match=r"since 2026-09-03 is not before until 2026-09-03"):
        fetch_pedestrian(since=date(2026, 9, 3), until=date(2026, 9, 3))
    with pytest.raises(
        PedestrianError,
        match=r"nothing to fetch: \[2026-10-24, 2026-10-01\) is empty \(start from the mark "
        r"minus 7 day\(s\)",
    ):
        fetch_pedestrian(until=date(2026, 10, 1))  # from the mark


def test_the_mark_never_passes_today_whatever_the_portal_sends(
    portal: Settings, api: HTTPServer, clock: Clock
) -> None:
    clock.now = datetime(2026, 9, 10, 2, 0, tzinfo=UTC)  # Melbourne: 2026-09-10
    # A window into the future: the sample has counts there, a real portal would not.
    result = fetch_pedestrian(since=date(2026, 9, 5), until=date(2026, 9, 20))
    assert not result.failed and result.landed[1].last_day == date(2026, 9, 19)
    assert mark()[0] == date(2026, 9, 10)  # type: ignore[index]


def test_the_mark_advances_only_after_the_file_is_in_place(
    portal: Settings, api: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_pedestrian()
    before = mark()
    assert before is not None and before[0] == date(2026, 9, 2)
    put = ZoneStore.put

    def refuse_counts(self: ZoneStore, key: str, body) -> None:
        if key.startswith(COUNTS_DIR):
            raise StorageError("disk full")
        put(self, key, body)

    monkeypatch.setattr(ZoneStore, "put", refuse_counts)
    result = fetch_pedestrian()
    assert result.errors == ["disk full"]
    assert [f.dataset for f in result.landed] == ["sensor_locations"]  # the other went on
    assert mark() == before and result.mark == before[0]
    monkeypatch.setattr(ZoneStore, "put", put)
    result = fetch_pedestrian()  # the same window again
    assert not result.failed and result.start == date(2026, 9, 2) - timedelta(days=7)


def test_a_busy_fetch_is_skipped(portal: Settings, api: HTTPServer) -> None:
    with advisory_lock(get_engine(), "pedestrian_fetch", 1):
        result = fetch_pedestrian()
    assert result.skipped == "busy" and not result.failed and api.log == []
    assert result.render() == "pedestrian fetch skipped: another fetch is running"


# --- retries and HTTP failures ------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
def test_a_transient_error_is_retried(portal: Settings, api: HTTPServer, status: int) -> None:
    api.expect_oneshot_request(COUNTS_PATH).respond_with_data("busy", status=status)
    result = fetch_pedestrian(since=FIRST_TWO[0], until=FIRST_TWO[1])
    assert not result.failed
    assert len(requests_to(api, COUNTS_PATH)) == 2
    assert read_landed(counts_key(*FIRST_TWO, NOW)) == counts_csv(*FIRST_TWO)


def test_retry_after_is_honoured(portal: Settings, api: HTTPServer) -> None:
    api.expect_oneshot_request(LOCATIONS_PATH).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    began = time.monotonic()
    result = fetch_pedestrian(since=SEPTEMBER[0], until=date(2026, 9, 2))
    assert not result.failed and time.monotonic() - began >= 1


def test_retries_run_out_into_one_error_and_nothing_lands(
    portal: Settings, api: HTTPServer
) -> None:
    for _ in range(4):  # a first try and 3 retries
        api.expect_oneshot_request(COUNTS_PATH).respond_with_data("down", status=503)
    result = fetch_pedestrian()
    assert result.errors == [
        f"hourly_counts [2026-07-04, 2026-09-03): GET http://127.0.0.1:{api.port}{COUNTS_PATH}:"
        " gave up retrying: too many 503 error responses"
    ]
    assert landed_keys(COUNTS_DIR) == [] and mark() is None
    assert [f.dataset for f in result.landed] == ["sensor_locations"]


def test_a_refused_request_is_not_retried_and_names_the_reason(
    portal: Settings, api: HTTPServer
) -> None:
    api.expect_oneshot_request(COUNTS_PATH).respond_with_json(
        {"error_code": "ODSQLError", "message": "Unknown field:\n sensing_date"}, status=400
    )
    result = fetch_pedestrian()
    assert result.errors == [
        f"hourly_counts [2026-07-04, 2026-09-03): GET http://127.0.0.1:{api.port}{COUNTS_PATH}:"
        " HTTP 400: Unknown field: sensing_date"
    ]
    assert len(requests_to(api, COUNTS_PATH)) == 1


# --- malformed exports --------------------------------------------------------------------

_GOOD = counts_csv(date(2026, 9, 1), date(2026, 9, 2)).decode()
_HEADER, _FIRST, _SECOND, *_ = _GOOD.split("\r\n")


def _with_second(field: str, value: str) -> str:
    names = _HEADER.split(";")
    values = _SECOND.split(";")
    values[names.index(field)] = value
    return "\r\n".join([_HEADER, _FIRST, ";".join(values), ""])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            _GOOD.replace("pedestriancount", "total", 1),
            "line 1: header: missing column(s) pedestriancount; unexpected column(s) 'total'",
        ),
        (
            _GOOD.replace(";location\r\n", ";location;extra\r\n", 1),
            "line 1: header: unexpected column(s) 'extra'",
        ),
        (
            _with_second("sensing_date", "2026/09/01"),
            "line 3, column sensing_date: not a date (YYYY-MM-DD): '2026/09/01'",
        ),
        (
            _with_second("sensing_date", "2026-02-30"),
            "line 3, column sensing_date: not a date (YYYY-MM-DD): '2026-02-30'",
        ),
        (
            _with_second("sensing_date", "2026-10-01"),
            "line 3, column sensing_date: 2026-10-01 is outside the window "
            "[2026-09-01, 2026-10-01)",
        ),
        (_with_second("hourday", "24"), "line 3, column hourday: not in 0..23: '24'"),
        (
            _with_second("pedestriancount", "-1"),
            "line 3, column pedestriancount: not a non-negative integer: '-1'",
        ),
        (
            _with_second("direction_1", "1.5"),
            "line 3, column direction_1: not a non-negative integer: '1.5'",
        ),
        (_with_second("location_id", "x1"), "line 3, column location_id: not an integer: 'x1'"),
        (_with_second("location_id", ""), "line 3, column location_id: empty"),
        (
            "\r\n".join([_HEADER, _FIRST, _SECOND.rsplit(";", 1)[0], ""]),
            "line 3: 8 field(s), the header has 9",
        ),
        (
            "\r\n".join([_HEADER, _FIRST, _SECOND.replace(";", ';"', 1), ""]),
            "line 3: not CSV: unexpected end of data",
        ),
        ("", "empty (no header line)"),
    ],
    ids=[
        "renamed-column",
        "extra-column",
        "date-format",
        "no-such-date",
        "outside-window",
        "hourday",
        "negative",
        "not-integer",
        "location-id",
        "empty-location",
        "short-record",
        "open-quote",
        "empty-body",
    ],
)
def test_a_malformed_export_lands_nothing_and_names_line_and_column(
    portal: Settings,
    api: HTTPServer,
    body: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPEN_DATA_LOOKBACK_DAYS", "0")  # the window from the mark
    reset_settings()
    fetch_pedestrian(until=SEPTEMBER[0] + timedelta(days=1))  # a mark: 2026-09-01
    before = mark()
    api.expect_oneshot_request(COUNTS_PATH).respond_with_data(body, content_type="text/csv")
    result = fetch_pedestrian(until=SEPTEMBER[1])
    assert result.errors == [f"hourly_counts [2026-09-01, 2026-10-01): {message}: not landed"]
    assert landed_keys(COUNTS_DIR) == [before[1]] and mark() == before  # type: ignore[index]


def test_a_locations_export_is_checked_too(portal: Settings, api: HTTPServer) -> None:
    rows = sample.sensor_locations()
    rows[5]["installation_date"] = "25/09/2019"
    api.expect_oneshot_request(LOCATIONS_PATH).respond_with_data(sample.to_csv(LOCATIONS, rows))
    api.expect_oneshot_request(LOCATIONS_PATH).respond_with_data(sample.to_csv(LOCATIONS, []))
    result = fetch_pedestrian(until=SEPTEMBER[0] + timedelta(days=1))
    assert result.errors == [
        "sensor_locations: line 7, column installation_date: not a date (YYYY-MM-DD): "
        "'25/09/2019': not landed"
    ]
    result = fetch_pedestrian(until=SEPTEMBER[0] + timedelta(days=1))
    assert result.errors == [
        "sensor_locations: no rows (the dataset is never empty; landing it would empty the "
        "table): not landed"
    ]
    assert landed_keys(dataset_prefix(LOCATIONS)) == []


def test_the_header_may_come_in_any_order_and_with_a_bom() -> None:
    names = list(reversed(sample.COLUMNS["hourly_counts"]))
    records = sample.hourly_counts(date(2026, 9, 1), date(2026, 9, 2))
    text = ";".join(names) + "\r\n"
    text += "".join(";".join(r[n] for n in names) + "\r\n" for r in records)
    body = b"\xef\xbb\xbf" + text.encode()
    written = bytearray()

    class Sink:
        def write(self, data: bytes) -> int:
            written.extend(data)
            return len(data)

    chunks = [body[n : n + 7] for n in range(0, len(body), 7)]  # chunks split lines and bytes
    checked = validate_export(COUNTS, chunks, Sink(), window=(date(2026, 9, 1), date(2026, 9, 2)))  # type: ignore[arg-type]
    assert checked == (24 * 30, date(2026, 9, 1), 0) and bytes(written) == body


# --- broken downloads ---------------------------------------------------------------------


def test_an_interrupted_download_lands_nothing(portal: Settings, api: HTTPServer) -> None:
    body = counts_csv(*FIRST_TWO)

    def short(request: Request) -> Response:
        # Says 1000 bytes more than it sends (whole lines), then closes the connection.
        headers = {"Content-Length": str(len(body) + 1000), "Connection": "close"}
        return Response(iter([body]), headers=headers, mimetype="text/csv")

    api.expect_oneshot_request(COUNTS_PATH).respond_with_handler(short)
    result = fetch_pedestrian(since=FIRST_TWO[0], until=FIRST_TWO[1])
    assert result.errors == [
        f"hourly_counts [2026-09-01, 2026-09-03): download broken after {len(body)} byte(s): "
        f"Connection broken: IncompleteRead({len(body)} bytes read, 1000 more expected): "
        "not landed"
    ]
    assert landed_keys(COUNTS_DIR) == [] and mark() is None


# --- the API key --------------------------------------------------------------------------


def test_the_api_key_is_sent_as_a_header_and_never_shown(
    portal: Settings, api: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The CLI's logging setup (earlier tests ran it) keeps urllib3 at WARNING.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    api.expect_oneshot_request(LOCATIONS_PATH).respond_with_json(
        {"error_code": "InvalidAPIKey", "message": "Invalid API key"}, status=401
    )
    for _ in range(4):
        api.expect_oneshot_request(COUNTS_PATH).respond_with_data("down", status=503)
    result = fetch_pedestrian()
    assert result.errors == [
        f"sensor_locations: GET http://127.0.0.1:{api.port}{LOCATIONS_PATH}: HTTP 401 "
        "(OPEN_DATA_API_KEY refused?): Invalid API key",
        f"hourly_counts [2026-07-04, 2026-09-03): GET http://127.0.0.1:{api.port}{COUNTS_PATH}:"
        " gave up retrying: too many 503 error responses",
    ]
    assert {r.headers.get("Authorization") for r, _ in api.log} == {f"Apikey {API_KEY}"}
    assert all(API_KEY not in r.url for r, _ in api.log)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert "Incremented Retry" in logged and API_KEY not in logged
    assert API_KEY not in repr(portal) and API_KEY not in "\n".join(result.errors)


def test_no_key_no_header(
    portal: Settings, api: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPEN_DATA_API_KEY", "")
    reset_settings()
    assert not fetch_pedestrian(until=date(2026, 9, 2)).failed
    assert {r.headers.get("Authorization") for r, _ in api.log} == {None}


def test_the_key_never_travels_over_plain_http_to_another_host() -> None:
    with pytest.raises(PedestrianError, match=r"is plain http: the API key would travel"):
        OpenDataClient("http://data.example.org", api_key=API_KEY)
    OpenDataClient("http://data.example.org")  # no key: fine
    with pytest.raises(PedestrianError, match=r"^OPEN_DATA_BASE_URL is not an http\(s\) URL"):
        OpenDataClient("data.melbourne.vic.gov.au")


# --- the demo API and the sample ----------------------------------------------------------


def test_the_demo_api_serves_the_sample(
    platform: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with demo_api(api_key=API_KEY) as base_url:
        monkeypatch.setenv("OPEN_DATA_BASE_URL", base_url)
        monkeypatch.setenv("OPEN_DATA_API_KEY", API_KEY)
        reset_settings()
        result = fetch_pedestrian()
        assert not result.failed
        key = counts_key(*FIRST, NOW)
        assert read_landed(key) == counts_csv(*FIRST)
        assert result.rows[key] == 2 * 24 * 30
        assert result.rows[locations_key(NOW)] == 30

        monkeypatch.setenv("OPEN_DATA_API_KEY", "wrong")
        reset_settings()
        (error, _) = fetch_pedestrian().errors
        assert error.startswith("sensor_locations: GET ") and ": HTTP 401 " in error


def test_the_sample_has_the_quirks_the_rankings_need() -> None:
    counts = sample.hourly_counts()
    assert sample.hourly_counts() == counts  # deterministic
    located = {int(r["location_id"]) for r in sample.sensor_locations()}
    counted = {int(r["location_id"]) for r in counts}
    assert len(counted) == sample.SENSORS and len(counts) == 61 * 24 * sample.SENSORS
    assert counted - located == {sample.UNLOCATED_ID}
    assert located - counted == {sample.REMOVED_ID}
    assert len({r["id"] for r in counts}) == len(counts)
    late = [r for r in counts if int(r["location_id"]) == sample.LATE_ID]
    assert min(r["sensing_date"] for r in late) < sample.LATE_INSTALLED.isoformat()

    def ranked(keep) -> list[tuple[int, int]]:
        totals: dict[int, int] = {}
        for r in counts:
            if keep(date.fromisoformat(r["sensing_date"])):
                location = int(r["location_id"])
                totals[location] = totals.get(location, 0) + int(r["pedestriancount"])
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))

    for name, keep in (
        ("day", lambda d: d == sample.TIE_DAY),
        ("month", lambda d: (d.year, d.month) == sample.TIE_MONTH),
    ):
        top = ranked(keep)
        assert top[8][1] > top[9][1] == top[10][1] > top[11][1], name
        assert (top[9][0], top[10][0]) == sample.tie_pairs()[name]
        assert {sample.UNLOCATED_ID, sample.LATE_ID}.isdisjoint(t[0] for t in top[:12])
    for r in counts:
        assert int(r["pedestriancount"]) == int(r["direction_1"]) + int(r["direction_2"])
