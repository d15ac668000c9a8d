"""The DMAP fetch against a real local HTTP server: listing, checks, downloads, marks."""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug import Request, Response

from data_platform.batch.cubic_dmap.client import DmapError, format_mark
from data_platform.batch.cubic_dmap.feeds import add_feed, api_key_for, dataset_type, key_kind
from data_platform.batch.cubic_dmap.fetch import fetch_feeds
from data_platform.cli.main import cli as main_cli
from data_platform.db.engine import get_engine
from data_platform.errors import ConfigError
from data_platform.loads.locks import advisory_lock
from data_platform.settings import Settings
from tests.dmap.conftest import (
    CONTROLLED,
    CONTROLLED_KEY,
    MISSING,
    OLD_CONTROLLED,
    PUBLIC,
    PUBLIC_KEY,
    SIGNATURE,
    FakeDmap,
    csv_body,
    datasets,
    feed_row,
    landed_keys,
    mark,
    read_landed,
)

REPO = Path(__file__).resolve().parents[2]
KEY = "cubic/dmap/agg_x/agg_x_{}.csv.gz"


def fetch(*feeds: str, http: bool = True):
    return fetch_feeds(list(feeds) or None, allow_http_downloads=http)


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main_cli, list(args))
    return result.exit_code, result.stdout, result.stderr


# --- feeds --------------------------------------------------------------------------------


def test_feed_paths_give_the_type_and_the_key_kind(dmap: Settings) -> None:
    assert dataset_type(PUBLIC) == "agg_x"
    assert [key_kind(f) for f in (PUBLIC, CONTROLLED, OLD_CONTROLLED)] == [
        "public",
        "controlled",
        "controlled",
    ]
    assert api_key_for(PUBLIC, dmap) == PUBLIC_KEY
    assert api_key_for(OLD_CONTROLLED, dmap) == CONTROLLED_KEY
    for bad in ("/datasetpublicusersapi/agg_x", "/other/aggregations/x", PUBLIC + "/", "x/../y"):
        with pytest.raises(DmapError, match="not a DMAP feed path"):
            dataset_type(bad)
    with pytest.raises(DmapError, match="not a DMAP dataset type: 'Agg_X'"):
        dataset_type("/datasetpublicusersapi/aggregations/Agg_X")
    with pytest.raises(ConfigError, match=r"^CUBIC_DMAP_CONTROLLED_USER_API_KEY is not set"):
        api_key_for(
            CONTROLLED, dmap.model_copy(update={"cubic_dmap_controlled_user_api_key": None})
        )


def test_add_feed_is_idempotent_and_an_inactive_feed_is_not_fetched(
    dmap: Settings, fake: FakeDmap
) -> None:
    code, out, _ = cli("dmap", "add-feed", PUBLIC)
    assert (code, out.strip()) == (0, f"added feed {PUBLIC} (id 1, active)")
    code, out, _ = cli("dmap", "add-feed", PUBLIC)
    assert (code, out.strip()) == (0, f"feed {PUBLIC} exists already (id 1, active)")
    assert add_feed(PUBLIC) == (1, False)
    code, out, _ = cli("dmap", "add-feed", CONTROLLED, "--inactive")
    assert (code, out.strip()) == (0, f"added feed {CONTROLLED} (id 2, inactive)")
    fake.publish(PUBLIC, "20220516", "2022-05-17T02:10:11.123456")
    fake.publish(CONTROLLED, "20220516", "2022-05-17T02:10:11.123456")

    result = fetch()
    assert [f.feed for f in result.feeds] == [PUBLIC]
    assert fake.requests(CONTROLLED) == []
    assert landed_keys() == [KEY.format("20220516")]
    # Named, an inactive feed is still skipped, and says so.
    result = fetch(CONTROLLED)
    assert [(f.feed, f.skipped) for f in result.feeds] == [(CONTROLLED, "inactive")]
    # Reactivated by adding it again.
    assert add_feed(CONTROLLED) == (2, False) and feed_row(CONTROLLED).is_active

    code, _, err = cli("dmap", "add-feed", "/datasetpublicusersapi/agg_x")
    assert code == 1 and err.strip().startswith("Error: not a DMAP feed path")


# --- listing ------------------------------------------------------------------------------


def test_pages_until_an_empty_page(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    fake.page_size = 2  # the server caps pages below our limit: 3 pages, then an empty one
    days = ["20220510", "20220511", "20220512", "20220513", "20220514"]
    for n, day in enumerate(days):
        fake.publish(PUBLIC, day, f"2022-05-15T00:00:0{n}.000001")
    result = fetch()
    assert [(a["limit"], a["offset"]) for a in fake.listing_args(PUBLIC)] == [
        ("100", "0"),
        ("100", "2"),
        ("100", "4"),
        ("100", "5"),
    ]
    assert all("last_updated" not in a for a in fake.listing_args(PUBLIC))  # no mark yet
    assert [d.dataset_id for d in result.landed] == [f"agg_x_{d}" for d in days]
    assert (result.feeds[0].listed, result.feeds[0].landed) == (5, 5)


def test_the_mark_itself_is_sent_and_older_results_are_dropped(
    dmap: Settings, fake: FakeDmap
) -> None:
    add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220517", "2022-05-18T13:39:43.546303")
    fetch()
    assert mark(PUBLIC) == datetime(2022, 5, 18, 13, 39, 43, 546303)
    # Same day, earlier and later: the server sends both (it honours the date only).
    fake.publish(PUBLIC, "20220516", "2022-05-18T01:00:00.000000")
    fake.publish(PUBLIC, "20220518", "2022-05-18T20:00:00.5")
    fake.server.log.clear()
    result = fetch()
    assert [a["last_updated"] for a in fake.listing_args(PUBLIC)] == [
        "2022-05-18T13:39:43.546303",
        "2022-05-18T13:39:43.546303",
    ]
    # The dataset that set the mark comes back (the mark is included) but is not landed again.
    assert [d.dataset_id for d in result.landed] == ["agg_x_20220518"]
    assert (result.feeds[0].older, result.feeds[0].listed) == (1, 1)
    assert mark(PUBLIC) == datetime(2022, 5, 18, 20, 0, 0, 500000)
    assert format_mark(datetime(2022, 5, 18, 23, 59, 59, 999999)) == "2022-05-18T23:59:59.999999"
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests("/files/")] == [
        "agg_x_20220518.csv.gz"
    ]


def test_a_dataset_sharing_the_marks_stamp_is_landed_after_a_stopped_fetch(
    dmap: Settings, fake: FakeDmap
) -> None:
    """Two datasets published in the same microsecond: the fetch lands the first, then
    stops at the second (its download fails). The mark now equals the second's stamp; the
    next fetch must still land it, not take it for the one already landed."""
    add_feed(PUBLIC)
    stamp = "2022-05-18T13:39:43.546303"
    a = fake.publish(PUBLIC, "20220516", stamp)
    b = fake.publish(PUBLIC, "20220517", stamp)
    fake.file_handlers[b] = lambda request: Response("busy", 404)
    result = fetch()
    assert [d.dataset_id for d in result.landed] == [a] and result.failed
    assert mark(PUBLIC) == datetime(2022, 5, 18, 13, 39, 43, 546303)

    del fake.file_handlers[b]
    fake.server.log.clear()
    result = fetch()
    assert not result.failed
    assert [d.dataset_id for d in result.landed] == [b]
    assert sorted(d.dataset_id for d in datasets()) == [a, b]
    assert landed_keys("cubic/dmap/agg_x/") == [KEY.format("20220516"), KEY.format("20220517")]
    # And a third fetch finds nothing new: neither is landed again.
    fake.server.log.clear()
    assert fetch().landed == [] and fake.requests("/files/") == []


def test_results_are_landed_oldest_first(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220503", "2022-05-04T00:00:00.000003")
    fake.publish(PUBLIC, "20220501", "2022-05-04T00:00:00.000001")
    fake.publish(PUBLIC, "20220502", "2022-05-04T00:00:00.000002")
    result = fetch()
    assert [d.dataset_id for d in result.landed] == [
        "agg_x_20220501",
        "agg_x_20220502",
        "agg_x_20220503",
    ]
    downloads = [r.path.rsplit("/", 1)[-1] for r in fake.requests("/files/")]
    assert downloads == [f"agg_x_2022050{n}.csv.gz" for n in (1, 2, 3)]
    first = datasets()[0]
    assert (first.dataset_id, first.s3_key, str(first.start_date), str(first.end_date)) == (
        "agg_x_20220501",
        KEY.format("20220501"),
        "2022-05-01",
        "2022-05-01",
    )
    assert read_landed(KEY.format("20220502")) == csv_body("agg_x_20220502")


# --- keys and secrets -----------------------------------------------------------------


def test_each_feed_sends_its_key_in_the_header_only(dmap: Settings, fake: FakeDmap) -> None:
    for feed in (PUBLIC, CONTROLLED, OLD_CONTROLLED):
        add_feed(feed)
        fake.publish(feed, "20220516", "2022-05-17T00:00:00.000001")
    result = fetch()
    assert not result.failed and len(result.landed) == 3
    sent = {
        feed: {r.headers.get("apikey") for r in fake.requests(feed)}
        for feed in (PUBLIC, CONTROLLED, OLD_CONTROLLED)
    }
    assert sent == {
        PUBLIC: {PUBLIC_KEY},
        CONTROLLED: {CONTROLLED_KEY},
        OLD_CONTROLLED: {CONTROLLED_KEY},
    }
    for request in fake.server.log:
        assert PUBLIC_KEY not in request[0].url and CONTROLLED_KEY not in request[0].url
    # Download links are signed and may be another host's: no key sent there.
    assert {r.headers.get("apikey") for r in fake.requests("/files/")} == {None}


def test_the_key_and_the_signature_are_never_logged_or_shown(
    dmap: Settings, fake: FakeDmap, caplog: pytest.LogCaptureFixture, unused_port: int
) -> None:
    caplog.set_level(logging.DEBUG)
    add_feed(PUBLIC)
    add_feed(CONTROLLED)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    # A link to a closed port: urllib3 retries the connection and logs the URL each time.
    fake.publish(
        CONTROLLED,
        "20220516",
        "2022-05-17T00:00:00.000001",
        url=f"http://127.0.0.1:{unused_port}/x.csv.gz?X-Amz-Signature={SIGNATURE}",
    )
    fake.server.expect_oneshot_request(PUBLIC).respond_with_data("busy", status=503)
    result = fetch()
    assert len(result.landed) == 1
    (error,) = result.errors
    assert error.startswith(
        f"feed {CONTROLLED}: device_event_20220516: download: connection failed"
    )
    # Ours and the libraries' (the fake server's own access log aside).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert "Retrying" in logged  # urllib3 logged the retries, with the URL redacted
    for secret in (PUBLIC_KEY, CONTROLLED_KEY, SIGNATURE):
        assert secret not in logged
        assert secret not in error
        assert secret not in (feed_row(CONTROLLED).last_error or "")
    code, out, err = cli("--debug", "dmap", "fetch", "--allow-http-downloads")
    assert code == 1
    for secret in (PUBLIC_KEY, CONTROLLED_KEY, SIGNATURE):
        assert secret not in out + err


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429, 500])
def test_transient_errors_are_retried(dmap: Settings, fake: FakeDmap, status: int) -> None:
    add_feed(PUBLIC)
    day = fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    for _ in range(2):
        fake.server.expect_oneshot_request(PUBLIC).respond_with_data("slow down", status=status)
    fake.server.expect_oneshot_request(f"/files/1/{day}.csv.gz").respond_with_data(
        "", status=status
    )
    result = fetch()
    assert not result.failed and [d.dataset_id for d in result.landed] == [day]
    assert len(fake.requests(PUBLIC)) == 4  # 2 refused, the page, the empty page
    assert len(fake.requests("/files/")) == 2


def test_retries_run_out_into_one_error_and_the_mark_stays(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    for _ in range(4):  # a first try and 3 retries
        fake.server.expect_oneshot_request(PUBLIC).respond_with_data("down", status=503)
    result = fetch()
    assert result.errors == [
        f"feed {PUBLIC}: listing at offset 0: gave up retrying: too many 503 error responses"
    ]
    assert mark(PUBLIC) is None and landed_keys() == []
    row = feed_row(PUBLIC)
    assert row.last_error == result.errors[0] and row.last_fetched_at is not None
    # The next run goes through and clears the error.
    assert len(fetch().landed) == 1 and feed_row(PUBLIC).last_error is None


# --- expired links --------------------------------------------------------------------


def test_an_expired_link_lists_the_feed_again_from_the_mark(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    first = fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    second = fake.publish(PUBLIC, "20220517", "2022-05-18T00:00:00.000001")
    fake.refuse = {(1, second)}  # the first listing's link to the second has expired
    result = fetch()
    assert not result.failed and [d.dataset_id for d in result.landed] == [first, second]
    assert result.feeds[0].relisted == 1
    listings = [a for a in fake.listing_args(PUBLIC) if a["offset"] == "0"]
    assert [a.get("last_updated") for a in listings] == [None, "2022-05-17T00:00:00.000001"]
    assert [r.path for r in fake.requests("/files/")] == [
        f"/files/1/{first}.csv.gz",
        f"/files/1/{second}.csv.gz",
        f"/files/2/{second}.csv.gz",
    ]


def test_links_that_stay_refused_fail_the_feed_clearly(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    day = fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    fake.refuse = {(n, day) for n in range(1, 10)}
    result = fetch()
    assert result.errors == [
        f"feed {PUBLIC}: {day}: download: HTTP 403 (link expired?); still refused after "
        "listing the feed again 2 time(s)"
    ]
    assert len(fake.requests("/files/")) == 3 and mark(PUBLIC) is None


# --- malformed answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dataset_id": MISSING}, "result 2: dataset_id: missing"),
        ({"url": "https://files.example"}, "result 2: url: no path"),
        (
            {"start_date": "2022-13-01"},
            "result 2: start_date: not a date (YYYY-MM-DD): '2022-13-01'",
        ),
        ({"end_date": "17/05/2022"}, "result 2: end_date: not a date (YYYY-MM-DD): '17/05/2022'"),
        ({"last_updated": "yesterday"}, "result 2: last_updated: not a timestamp: 'yesterday'"),
        (
            {"last_updated": "2022-05-18T01:00:00+02:00"},
            "result 2: last_updated: not a timestamp: '2022-05-18T01:00:00+02:00'",
        ),
        ({"last_updated": 5}, "result 2: last_updated: not a string: 5"),
        ({"id": "agg_y"}, "result 2: id: 'agg_y' is not the feed's type 'agg_x'"),
        ({"dataset_id": "agg_x_2022"}, "result 2: dataset_id: not agg_x_YYYYMMDD: 'agg_x_2022'"),
    ],
)
def test_a_malformed_result_is_one_error_naming_feed_and_field(
    dmap: Settings, fake: FakeDmap, fields: dict, message: str
) -> None:
    add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    fake.publish(PUBLIC, "20220517", "2022-05-18T00:00:00.000001", **fields)
    result = fetch()
    assert result.errors == [f"feed {PUBLIC}: {message}"]
    assert mark(PUBLIC) is None and landed_keys() == [] and datasets() == []
    assert feed_row(PUBLIC).last_error == result.errors[0]


def test_a_listing_redirect_is_not_followed_with_the_key(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    fake.server.expect_oneshot_request(PUBLIC).respond_with_data(
        "", status=302, headers={"Location": "http://elsewhere.example/"}
    )
    assert fetch().errors == [
        f"feed {PUBLIC}: listing at offset 0: HTTP 302, a redirect: not followed with the API "
        "key (is CUBIC_DMAP_BASE_URL right?)"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "<html>Service Unavailable</html>",
            "listing at offset 0: response: not JSON: '<html>Service Unavailable</html>'",
        ),
        (json.dumps({"success": False, "message": "nope"}), "success: expected true, got False"),
        (json.dumps({"results": []}), "success: expected true, got None"),
        (json.dumps({"success": True}), "results: missing"),
        (json.dumps({"success": True, "results": {}}), "results: not a list"),
        (json.dumps([1]), "response: not a JSON object"),
        (json.dumps({"success": True, "results": ["x"]}), "result 1: not a JSON object"),
    ],
)
def test_a_malformed_response_is_one_error(
    dmap: Settings, fake: FakeDmap, body: str, message: str
) -> None:
    add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    fake.server.expect_oneshot_request(PUBLIC).respond_with_data(
        body, content_type="application/json"
    )
    result = fetch()
    assert result.errors == [f"feed {PUBLIC}: {message}"]
    assert mark(PUBLIC) is None and landed_keys() == []


def test_links_must_be_https_unless_allowed_for_the_demo(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")  # an http:// link
    assert fetch(http=False).errors == [f"feed {PUBLIC}: result 1: url: not https (http)"]
    assert mark(PUBLIC) is None and landed_keys() == []
    assert not fetch(http=True).failed


def test_an_https_link_is_downloaded_by_default(dmap: Settings, fake: FakeDmap) -> None:
    """The https rule is on unless asked off: a listed https link passes the checks (and
    fails only at the download here, the local server speaking http)."""
    add_feed(PUBLIC)
    url = f"https://127.0.0.1:{fake.server.port}/files/1/agg_x_20220516.csv.gz?sig=1"
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001", url=url)
    (error,) = fetch(http=False).errors
    assert error.startswith(f"feed {PUBLIC}: agg_x_20220516: download: ")


# --- downloads ----------------------------------------------------------------------------


def test_what_is_not_gzip_or_not_whole_is_not_landed(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    day = fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001", body=b"date,count\n")
    (error,) = fetch().errors
    assert error == f"feed {PUBLIC}: {day}: not a gzip file (starts with b'da'): not landed"

    body = csv_body(day)

    def short(request: Request) -> Response:
        # Says 100 bytes more than it sends, then closes the connection.
        headers = {"Content-Length": str(len(body) + 100), "Connection": "close"}
        return Response(iter([body]), headers=headers, mimetype="application/gzip")

    fake.file_handlers[day] = short
    (error,) = fetch().errors
    assert error.startswith(f"feed {PUBLIC}: {day}: download broken after {len(body)} byte(s) of ")
    assert error.endswith(": not landed")

    def empty(request: Request) -> Response:
        return Response(b"", mimetype="application/gzip")

    fake.file_handlers[day] = empty
    assert fetch().errors == [f"feed {PUBLIC}: {day}: not a gzip file (empty): not landed"]
    assert landed_keys() == [] and mark(PUBLIC) is None

    del fake.file_handlers[day]
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001", body=body)
    assert not fetch().failed and landed_keys() == [KEY.format("20220516")]


def test_a_reissue_replaces_the_file_and_the_row(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    day = fake.publish(PUBLIC, "20220517", "2022-05-18T02:09:58.654321", body=csv_body("x", 1))
    assert [d.replaced for d in fetch().landed] == [False]
    fake.publish(PUBLIC, "20220517", "2022-05-18T13:39:43.546303", body=csv_body("x", 2))
    result = fetch()
    assert [(d.dataset_id, d.replaced) for d in result.landed] == [(day, True)]
    assert landed_keys() == [KEY.format("20220517")]
    assert gzip.decompress(read_landed(KEY.format("20220517"))) == b"date,count\nx,2\n"
    (row,) = datasets()
    assert row.last_updated == datetime(2022, 5, 18, 13, 39, 43, 546303)
    assert mark(PUBLIC) == row.last_updated


def test_a_failure_stops_the_feed_and_the_next_run_resumes(dmap: Settings, fake: FakeDmap) -> None:
    add_feed(PUBLIC)
    add_feed(CONTROLLED)
    a = fake.publish(PUBLIC, "20220501", "2022-05-02T00:00:00.000001")
    b = fake.publish(PUBLIC, "20220502", "2022-05-03T00:00:00.000001")
    fake.publish(PUBLIC, "20220503", "2022-05-04T00:00:00.000001")
    other = fake.publish(CONTROLLED, "20220501", "2022-05-02T00:00:00.000001")
    fake.file_handlers[b] = lambda request: Response("gone", 404)
    result = fetch()
    assert result.errors == [f"feed {PUBLIC}: {b}: download: HTTP 404"]
    # The other feed went on.
    assert sorted(d.dataset_id for d in result.landed) == sorted([a, other])
    assert mark(PUBLIC) == datetime(2022, 5, 2, 0, 0, 0, 1)
    assert landed_keys("cubic/dmap/agg_x/") == [KEY.format("20220501")]
    assert feed_row(PUBLIC).last_error == result.errors[0]
    assert feed_row(CONTROLLED).last_error is None

    del fake.file_handlers[b]
    fake.server.log.clear()
    result = fetch()
    assert not result.failed
    assert [d.dataset_id for d in result.landed] == [b, "agg_x_20220503"]
    assert fake.listing_args(PUBLIC)[0]["last_updated"] == "2022-05-02T00:00:00.000001"
    assert mark(PUBLIC) == datetime(2022, 5, 4, 0, 0, 0, 1) and feed_row(PUBLIC).last_error is None


def test_a_feed_another_fetch_holds_is_skipped(dmap: Settings, fake: FakeDmap) -> None:
    feed_id, _ = add_feed(PUBLIC)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    with advisory_lock(get_engine(), "dmap_feed", feed_id) as got:
        assert got
        result = fetch()
    assert [(f.feed, f.skipped) for f in result.feeds] == [(PUBLIC, "busy")]
    assert not result.failed and fake.requests(PUBLIC) == []


# --- the command --------------------------------------------------------------------------


def test_fetch_command_output_and_exit_codes(dmap: Settings, fake: FakeDmap, monkeypatch) -> None:
    code, out, _ = cli("dmap", "fetch")
    assert (code, out.strip()) == (0, "fetched 0 feed(s): 0 dataset(s) landed, 0 feed(s) failed")
    add_feed(PUBLIC)
    add_feed(CONTROLLED)
    fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    bad = fake.publish(CONTROLLED, "20220516", "2022-05-17T00:00:00.000001", body=b"nope")
    code, out, _ = cli("dmap", "fetch", "--allow-http-downloads")
    assert code == 1
    assert out.splitlines() == [
        "fetched 2 feed(s): 1 dataset(s) landed, 1 feed(s) failed",
        f"  error: feed {CONTROLLED}: {bad}: not a gzip file (starts with b'no'): not landed",
    ]
    fake.publish(CONTROLLED, "20220516", "2022-05-17T00:00:00.000001")
    code, out, _ = cli("dmap", "fetch", "--json", "--feed", CONTROLLED, "--allow-http-downloads")
    report = json.loads(out)
    assert code == 0 and report["errors"] == []
    assert [d["dataset_id"] for d in report["landed"]] == [bad]
    assert report["feeds"][0]["mark"] == "2022-05-17T00:00:00.000001"
    code, _, err = cli("dmap", "fetch", "--feed", "/datasetpublicusersapi/aggregations/nope")
    assert code == 1 and "Error: no such feed: /datasetpublicusersapi/aggregations/nope" in err
    monkeypatch.delenv("CUBIC_DMAP_BASE_URL")
    from data_platform.settings import reset_settings

    reset_settings()
    code, _, err = cli("dmap", "fetch")
    assert (code, err.strip()) == (
        2,
        "Error: CUBIC_DMAP_BASE_URL is not set: where is the DMAP API?",
    )
    for args in (["dmap", "--help"], ["dmap", "fetch", "--help"], ["dmap", "add-feed", "--help"]):
        code, out, _ = cli(*args)
        assert code == 0 and "Usage: " in out
    assert "--allow-http-downloads" not in cli("dmap", "fetch", "--help")[1]


# --- a fetch killed mid-download --------------------------------------------------------


def test_a_fetch_killed_mid_download_lands_nothing(
    dmap: Settings, fake: FakeDmap, tmp_path: Path
) -> None:
    add_feed(PUBLIC)
    # Incompressible, so the file is ~3 MB: the local store writes its first MB to a temp
    # file before the stall.
    body = gzip.compress(os.urandom(3 << 20), mtime=0)
    day = fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001", body=body)
    half_sent, release = threading.Event(), threading.Event()

    def stall(request: Request) -> Response:
        def chunks():
            yield body[: len(body) // 2]
            half_sent.set()
            release.wait(60)
            yield body[len(body) // 2 :]

        headers = {"Content-Length": str(len(body))}
        return Response(chunks(), headers=headers, mimetype="application/gzip")

    fake.file_handlers[day] = stall
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CUBIC_"))}
    env.update(
        DATABASE_URL=str(dmap.database_url),
        DATA_PLATFORM_HOME=str(dmap.home),
        CUBIC_DMAP_BASE_URL=fake.base_url,
        CUBIC_DMAP_PUBLIC_USER_API_KEY=PUBLIC_KEY,
        CUBIC_DMAP_TIMEOUT_SECONDS="60",
        PYTHONPATH=str(REPO),
    )
    work = tmp_path / "sub"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "data_platform.batch.cubic_dmap.fetch", "--allow-http-downloads"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    partial_dir = dmap.home / "storage" / "incoming" / "cubic" / "dmap" / "agg_x"
    try:
        deadline = time.monotonic() + 60
        while not (half_sent.is_set() and _partial_bytes(partial_dir) >= 1 << 20):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download never got going"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert _partial_bytes(partial_dir) >= 1 << 20  # a half file, but not an object
    assert landed_keys() == [] and mark(PUBLIC) is None and datasets() == []

    del fake.file_handlers[day]
    result = fetch()
    assert [d.dataset_id for d in result.landed] == [day]
    assert read_landed(KEY.format("20220516")) == body
    assert mark(PUBLIC) == datetime(2022, 5, 17, 0, 0, 0, 1)
    assert _partial_bytes(partial_dir) == 0  # the killed fetch's file: gone (issue 22)


def _partial_bytes(directory: Path) -> int:
    if not directory.is_dir():
        return 0
    return sum(p.stat().st_size for p in directory.glob("*.dp-partial"))


# --- on S3 --------------------------------------------------------------------------------


def test_the_fetch_on_s3(s3_env: dict[str, str], dmap: Settings, fake: FakeDmap) -> None:
    import boto3

    assert dmap.uses_s3
    add_feed(PUBLIC)
    day = fake.publish(PUBLIC, "20220516", "2022-05-17T00:00:00.000001")
    short = fake.publish(PUBLIC, "20220517", "2022-05-18T00:00:00.000001")
    body = csv_body(short)
    fake.file_handlers[short] = lambda request: Response(
        iter([body[:10]]),
        headers={"Content-Length": str(len(body)), "Connection": "close"},
        mimetype="application/gzip",
    )
    result = fetch()
    assert [d.dataset_id for d in result.landed] == [day]
    (error,) = result.errors
    assert error.startswith(f"feed {PUBLIC}: {short}: download broken after 10 byte(s)")
    client = boto3.client("s3", endpoint_url=dmap.s3_endpoint_url)
    listed = client.list_objects_v2(Bucket=s3_env["incoming"], Prefix="dev/incoming/cubic/dmap/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [
        "dev/incoming/cubic/dmap/agg_x/agg_x_20220516.csv.gz"
    ]
    assert read_landed(KEY.format("20220516")) == csv_body(day)
    del fake.file_handlers[short]
    assert [d.dataset_id for d in fetch().landed] == [short]
    assert read_landed(KEY.format("20220517")) == body


# --- the demo API -------------------------------------------------------------------------


def test_the_demo_api_serves_two_rounds(platform: Settings) -> None:
    from pydantic import SecretStr

    from harness.stand_ins.dmap_api import demo_api, load_rounds

    feed, _ = load_rounds()
    add_feed(feed)
    prefix = "cubic/dmap/agg_daily_fareprod/"

    def run(round_number: int):
        with demo_api(round_number) as base_url:
            settings = platform.model_copy(
                update={
                    "cubic_dmap_base_url": base_url,
                    "cubic_dmap_public_user_api_key": SecretStr("demo"),
                }
            )
            return fetch_feeds(settings=settings, allow_http_downloads=True)

    first = run(1)
    assert not first.failed
    assert landed_keys(prefix) == [
        prefix + "agg_daily_fareprod_20220516.csv.gz",
        prefix + "agg_daily_fareprod_20220517.csv.gz",
    ]
    assert run(1).landed == []  # the server sends 20220517 again (same day): dropped
    second = run(2)
    assert [(d.dataset_id, d.replaced) for d in second.landed] == [
        ("agg_daily_fareprod_20220517", True)
    ]
    text = gzip.decompress(read_landed(prefix + "agg_daily_fareprod_20220517.csv.gz")).decode()
    assert text.splitlines()[0] == (
        "date,service,day_of_week,rider_class_name,fare_product_type,ride_type_name,count,weekend"
    )
    assert "15901" in text
    assert mark(feed) == datetime(2022, 5, 18, 13, 39, 43, 546303)
    with pytest.raises(ValueError, match="rounds 1 to 2"), demo_api(3):
        pass
