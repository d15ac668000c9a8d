"""A fake DMAP API on a real local HTTP server (pytest-httpserver), and settings for it."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, text
from werkzeug import Request, Response

from data_platform.db.engine import get_engine
from data_platform.db.models import DmapDataset, DmapFeed
from data_platform.settings import Settings, get_settings, reset_settings
from data_platform.storage import get_zone

PUBLIC = "/datasetpublicusersapi/aggregations/agg_x"
CONTROLLED = "/datasetcontrolleduserapi/transactional/device_event"
OLD_CONTROLLED = "/controlledresearchusersapi/transactional/use_transaction"
PUBLIC_KEY = "pub-KEY-0123456789"
CONTROLLED_KEY = "ctl-KEY-9876543210"
# In every download link, as in the vendor's signed links: never to be logged or shown.
SIGNATURE = "SIG-abcdef0123456789"
MISSING = object()


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def csv_body(dataset_id: str, count: int = 1) -> bytes:
    return gz(f"date,count\n{dataset_id[-8:]},{count}\n")


@dataclass
class Entry:
    feed: str
    dataset_id: str
    last_updated: str
    body: bytes
    fields: dict[str, Any]  # overrides of the listed result; MISSING drops a field


class FakeDmap:
    """The vendor's API: listings paged by limit/offset, honouring only the date part of
    `last_updated` (as the real one may), and files under /files/<listing>/<id>.csv.gz.

    `page_size` caps a page below the requested limit; `refuse` holds (listing number,
    dataset_id) pairs whose link answers 403 (expired); `file_handlers` replaces a
    dataset's file response."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.base_url = f"http://{server.host}:{server.port}"
        self.entries: dict[str, dict[str, Entry]] = {}
        self.page_size = 100
        self.listings = 0
        self.refuse: set[tuple[int, str]] = set()
        self.file_handlers: dict[str, Callable[[Request], Response]] = {}
        server.expect_request(re.compile(r"^/files/.*")).respond_with_handler(self._file)
        server.expect_request(re.compile(r"^/[a-z]+api/.*")).respond_with_handler(self._listing)

    def publish(
        self,
        feed: str,
        day: str,
        last_updated: str,
        /,
        body: bytes | None = None,
        **fields: Any,
    ) -> str:
        """Publish (or re-issue) dataset `<type>_<day>`; returns its dataset_id. `fields`
        override the listed result's (MISSING drops one)."""
        dataset_id = f"{feed.rsplit('/', 1)[-1]}_{day}"
        self.entries.setdefault(feed, {})[dataset_id] = Entry(
            feed,
            dataset_id,
            last_updated,
            body if body is not None else csv_body(dataset_id),
            fields,
        )
        return dataset_id

    def _result(self, entry: Entry) -> dict[str, Any]:
        day = entry.dataset_id[-8:]
        iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        result = {
            "id": entry.feed.rsplit("/", 1)[-1],
            "dataset_id": entry.dataset_id,
            "url": f"{self.base_url}/files/{self.listings}/{entry.dataset_id}.csv.gz"
            f"?X-Amz-Expires=3600&X-Amz-Signature={SIGNATURE}",
            "start_date": iso,
            "end_date": iso,
            "last_updated": entry.last_updated,
        }
        for name, value in entry.fields.items():
            if value is MISSING:
                result.pop(name, None)
            else:
                result[name] = value
        return result

    def _listing(self, request: Request) -> Response:
        entries = list(self.entries.get(request.path, {}).values())
        since = request.args.get("last_updated")
        if since:
            day = datetime.fromisoformat(since).date()
            entries = [e for e in entries if datetime.fromisoformat(e.last_updated).date() >= day]
        limit = min(int(request.args["limit"]), self.page_size)
        offset = int(request.args["offset"])
        if offset == 0:
            self.listings += 1
        page = [self._result(e) for e in entries[offset : offset + limit]]
        body = json.dumps({"success": True, "results": page})
        return Response(body, mimetype="application/json")

    def _file(self, request: Request) -> Response:
        _, _, listing, name = request.path.split("/")
        dataset_id = name.removesuffix(".csv.gz")
        if dataset_id in self.file_handlers:
            return self.file_handlers[dataset_id](request)
        if (int(listing), dataset_id) in self.refuse:
            return Response("<Error>Request has expired</Error>", 403)
        for entries in self.entries.values():
            if dataset_id in entries:
                return Response(entries[dataset_id].body, mimetype="application/gzip")
        return Response("no such file", 404)

    # --- what the server saw ----------------------------------------------------------

    def requests(self, prefix: str) -> list[Request]:
        return [r for r, _ in self.server.log if r.path.startswith(prefix)]

    def listing_args(self, feed: str) -> list[dict[str, str]]:
        return [dict(r.args) for r in self.requests(feed)]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure logging (root handlers, library levels): undo it after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in ("urllib3", "botocore")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, value in libraries.items():
        logging.getLogger(name).setLevel(value)


@pytest.fixture(scope="session")
def _api_server() -> Iterator[HTTPServer]:
    # Threaded: a stalled response must not hold the others.
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def api(_api_server: HTTPServer) -> Iterator[HTTPServer]:
    """A real HTTP server on 127.0.0.1, without handlers or log from other tests."""
    _api_server.clear()
    yield _api_server
    _api_server.clear()


@pytest.fixture
def fake(api: HTTPServer) -> FakeDmap:
    return FakeDmap(api)


@pytest.fixture
def dmap(platform: Settings, fake: FakeDmap, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on the platform pointing at the fake API, both keys set, retries fast."""
    for name, value in {
        "CUBIC_DMAP_BASE_URL": fake.base_url,
        "CUBIC_DMAP_PUBLIC_USER_API_KEY": PUBLIC_KEY,
        "CUBIC_DMAP_CONTROLLED_USER_API_KEY": CONTROLLED_KEY,
        "CUBIC_DMAP_RETRIES": "3",
        "CUBIC_DMAP_BACKOFF_SECONDS": "0",
        "CUBIC_DMAP_TIMEOUT_SECONDS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    return get_settings()


# --- reading the platform back ------------------------------------------------------------


def mark(feed: str) -> datetime | None:
    """The feed's stored mark (its landing mark, the vendor's naive time)."""
    with get_engine().connect() as conn:
        return conn.scalar(
            text(
                "SELECT (mark->>'last_updated')::timestamp FROM landing_marks "
                "WHERE source = 'cubic_dmap' AND item = :feed"
            ),
            {"feed": feed},
        )


def feed_row(feed: str) -> Any:
    with get_engine().connect() as conn:
        return conn.execute(select(DmapFeed).where(DmapFeed.relative_url == feed)).one()


def datasets() -> list[Any]:
    with get_engine().connect() as conn:
        return list(conn.execute(select(DmapDataset).order_by(DmapDataset.dataset_id)))


def landed_keys(prefix: str = "cubic/dmap/") -> list[str]:
    return [info.key for info in get_zone("incoming").list(prefix)]


def read_landed(key: str) -> bytes:
    with get_zone("incoming").open(key) as body:
        return body.read()
