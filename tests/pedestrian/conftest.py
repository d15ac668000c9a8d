"""The portal on a real local HTTP server (pytest-httpserver) answering with the demo
API's app (the sample data), and settings for it; a fixed clock."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text
from werkzeug import Request, Response

from data_platform.batch.melbourne_pedestrian import client, fetch
from data_platform.batch.melbourne_pedestrian.naming import COUNTS, LOCATIONS, PREFIX, Dataset
from data_platform.db.engine import get_engine
from data_platform.settings import Settings, get_settings, reset_settings
from data_platform.storage import get_zone
from harness.samples import pedestrian as sample
from harness.stand_ins.pedestrian_api import DemoApi, parse_where

API_KEY = "ods-KEY-0123456789abcdef"
# Noon in Melbourne (AEST, UTC+10) on 2026-09-02, the sample's second day: a first fetch
# asks for [2026-07-04, 2026-09-03), two days of the sample.
NOW = datetime(2026, 9, 2, 2, 0, tzinfo=UTC)
# 13:00 in Melbourne (AEDT, UTC+11) on 2026-10-31, the sample's last day.
LAST = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)


def export_path(dataset: Dataset) -> str:
    return client.EXPORT_PATH.format(dataset_id=dataset.dataset_id)


COUNTS_PATH = export_path(COUNTS)
LOCATIONS_PATH = export_path(LOCATIONS)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def _portal_server() -> Iterator[HTTPServer]:
    # Threaded: a stalled response must not hold the others.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def api(_portal_server: HTTPServer) -> Iterator[HTTPServer]:
    """The server, with the demo app behind every export path (one-shot handlers a test
    adds are served first) and an empty log."""
    _portal_server.clear()
    app = DemoApi()
    _portal_server.expect_request(re.compile(r"^/api/explore/.*")).respond_with_handler(app.respond)
    yield _portal_server
    _portal_server.clear()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock(NOW)
    monkeypatch.setattr(fetch, "_utcnow", fixed)
    return fixed


@pytest.fixture
def portal(
    platform: Settings, api: HTTPServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings on the platform pointing at the server, with the API key; fast retries."""
    monkeypatch.setenv("OPEN_DATA_BASE_URL", f"http://{api.host}:{api.port}")
    monkeypatch.setenv("OPEN_DATA_API_KEY", API_KEY)
    monkeypatch.setattr(client, "RETRIES", 3)
    monkeypatch.setattr(client, "BACKOFF_SECONDS", 0)
    monkeypatch.setattr(client, "TIMEOUT_SECONDS", 5)
    reset_settings()
    return get_settings()


class Publication:
    """What a stand-in portal has published of the hourly counts: `rows` (dicts as
    `sample.hourly_counts` gives them; default the whole sample) filtered by `published`
    (default all). A test changes either between fetches: a portal that publishes late,
    leaves a hole, then catches up."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = sample.hourly_counts()
        self.published: Callable[[dict[str, str]], bool] = lambda row: True

    def respond(self, request: Request) -> Response:
        keep = parse_where(request.args["where"])
        rows = [
            row
            for row in self.rows
            if keep(date.fromisoformat(row["sensing_date"])) and self.published(row)
        ]
        return Response(sample.to_csv(COUNTS, rows), mimetype="text/csv")


@pytest.fixture
def publication(api: HTTPServer) -> Publication:
    """The counts export of the server answered from a Publication the test controls
    (the locations as the demo API has them)."""
    published = Publication()
    api.clear()
    api.expect_request(COUNTS_PATH).respond_with_handler(published.respond)
    api.expect_request(LOCATIONS_PATH).respond_with_handler(DemoApi().respond)
    return published


# --- what the server saw, what landed ------------------------------------------------------


def requests_to(server: HTTPServer, path: str) -> list[Any]:
    return [request for request, _ in server.log if request.path == path]


def landed_keys(prefix: str = PREFIX) -> list[str]:
    return [info.key for info in get_zone("incoming").list(prefix)]


def read_landed(key: str) -> bytes:
    with get_zone("incoming").open(key) as body:
        return gzip.decompress(body.read())


def mark() -> tuple[date, str] | None:
    with get_engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT (mark->>'next_date')::date AS next_date, last_key FROM landing_marks "
                "WHERE source = 'melbourne_pedestrian' AND item = :d"
            ),
            {"d": COUNTS.dataset_id},
        ).one_or_none()
    return (row.next_date, row.last_key) if row else None
