"""DMAP over HTTP: one `requests` session with retries, the listing of a feed page by page,
results checked into `DmapResult`, and downloads streamed through a checking reader.

Secrets: the API key travels in the `apikey` header of listing requests only (never to a
download host, never in a URL, a log line or an error message), and download URLs, which
are signed, are never logged or echoed: messages name the dataset_id instead.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from data_platform import streams
from data_platform.errors import DataPlatformError
from data_platform.http import describe_failure, redact, retrying_session

log = logging.getLogger(__name__)

# The API's maximum page size.
PAGE_SIZE = 100
# How the mark is sent back: the vendor's naive time, to the microsecond.
MARK_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
# A server that ignores `offset` would page forever; no feed comes near this.
MAX_PAGES = 10_000
GZIP_MAGIC = b"\x1f\x8b"

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class DmapError(DataPlatformError):
    """A feed could not be fetched: the API refused, answered what cannot be used, or a
    download failed. The message names the feed (and the result, field or dataset_id); it
    never holds the API key or a signed URL. Exit code 1, as any failed feed."""

    exit_code = 1


class LinkExpired(DmapError):
    """A download link was refused (HTTP 403): links expire after about an hour, so the
    feed is to be listed again for fresh ones."""


@dataclass(frozen=True)
class DmapResult:
    """One dataset of a listing, checked.

    `url` is the (signed) download link: kept out of repr so that logging a result never
    shows the signature. Times are the vendor's naive times, as given."""

    type: str
    dataset_id: str  # <type>_YYYYMMDD
    url: str = field(repr=False)
    start_date: date
    end_date: date
    last_updated: datetime


@dataclass(frozen=True)
class Listing:
    """A feed's listing from the mark on: `results` stamped at or after it, oldest first
    (one per dataset_id, its newest); `older` counts results the server sent that are
    older (it may honour only the date part of `last_updated`)."""

    results: list[DmapResult]
    older: int
    pages: int


def format_mark(mark: datetime) -> str:
    """The `last_updated` query value asking for results from `mark` on, the mark itself
    included, as `YYYY-MM-DDTHH:MM:SS.ffffff`.

    Inclusive because two datasets can share one `last_updated`: a fetch that stopped
    after landing the first (a failed download, a kill) must still be shown the second.
    The datasets already landed at that version are left out by the fetch, which knows
    them (`dmap_datasets`)."""
    return mark.strftime(MARK_FORMAT)


class _RedactQueries(logging.Filter):
    """urllib3 logs request URLs (retry warnings, debug lines) with their query string,
    which for a download is its signature: keep everything but the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


def _install_log_filter() -> None:
    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactQueries) for f in logger.filters):
            logger.addFilter(_RedactQueries())


class DmapClient:
    """A session against one DMAP deployment.

    `timeout` (seconds) bounds connecting and every wait between two reads; `retries`
    retries a request on 429, 5xx, connection errors and timeouts (urllib3's Retry, with
    exponential `backoff` seconds and the server's Retry-After honoured).
    `allow_http_downloads` accepts http:// download links: only for the local demo API
    (`harness/stand_ins/dmap_api.py`) and tests, which cannot sign https links; the
    vendor's are https."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60,
        retries: int = 5,
        backoff: float = 1.0,
        allow_http_downloads: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.allow_http_downloads = allow_http_downloads
        self.session = retrying_session(retries=retries, backoff=backoff)
        _install_log_filter()

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> DmapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- listing --------------------------------------------------------------------------

    def list_feed(
        self, relative_url: str, dataset_type: str, api_key: str, mark: datetime | None
    ) -> Listing:
        """Every result of the feed from `mark` on, the mark included (all when None),
        oldest first.

        Pages of PAGE_SIZE from offset 0 until an empty page. Raises DmapError naming the
        feed and, for a malformed answer, the result and field."""
        params: dict[str, Any] = {"last_updated": format_mark(mark)} if mark else {}
        seen: dict[str, DmapResult] = {}
        count = offset = pages = 0
        while True:
            if pages >= MAX_PAGES:
                raise DmapError(f"feed {relative_url}: more than {MAX_PAGES} pages")
            page = self._page(
                relative_url, api_key, {**params, "limit": PAGE_SIZE, "offset": offset}
            )
            pages += 1
            if not page:
                break
            for raw in page:
                count += 1
                result = parse_result(
                    raw,
                    feed=relative_url,
                    position=count,
                    dataset_type=dataset_type,
                    allow_http=self.allow_http_downloads,
                )
                known = seen.get(result.dataset_id)
                # Paging while the vendor publishes can show a dataset twice: keep its newest.
                if known is None or result.last_updated > known.last_updated:
                    seen[result.dataset_id] = result
            offset += len(page)
        newer = [r for r in seen.values() if mark is None or r.last_updated >= mark]
        newer.sort(key=lambda r: (r.last_updated, r.dataset_id))
        log.debug(
            "listed %d result(s) in %d page(s), %d newer than the mark",
            count,
            pages,
            len(newer),
            extra={"feed": relative_url},
        )
        return Listing(newer, len(seen) - len(newer), pages)

    def _page(self, relative_url: str, api_key: str, params: dict[str, Any]) -> list[Any]:
        where = f"feed {relative_url}: listing at offset {params['offset']}"
        try:
            response = self.session.get(
                self.base_url + relative_url,
                params=params,
                headers={"apikey": api_key, "Accept": "application/json"},
                timeout=(self.timeout, self.timeout),
                # requests would send the apikey header on to wherever a redirect points.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise DmapError(f"{where}: {redact(describe_failure(exc), api_key)}") from None
        with response:
            if response.status_code in (401, 403):
                raise DmapError(f"{where}: HTTP {response.status_code} (API key refused?)")
            if response.is_redirect:
                raise DmapError(
                    f"{where}: HTTP {response.status_code}, a redirect: not followed with the "
                    "API key (is CUBIC_DMAP_BASE_URL right?)"
                )
            if response.status_code != 200:
                raise DmapError(f"{where}: HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                start = redact(response.text[:40], api_key)
                raise DmapError(f"{where}: response: not JSON: {start!r}") from None
        if not isinstance(body, dict):
            raise DmapError(f"feed {relative_url}: response: not a JSON object")
        if body.get("success") is not True:
            raise DmapError(
                f"feed {relative_url}: success: expected true, got {_show(body.get('success'))}"
            )
        if "results" not in body:
            raise DmapError(f"feed {relative_url}: results: missing")
        if not isinstance(body["results"], list):
            raise DmapError(f"feed {relative_url}: results: not a list")
        return body["results"]

    # --- download -------------------------------------------------------------------------

    @contextmanager
    def download(self, relative_url: str, result: DmapResult) -> Iterator[BinaryIO]:
        """The dataset's file as a reader of the bytes as sent (gzip, not decoded), for
        `ZoneStore.put`. The first bytes are checked on open (DmapError unless gzip); a
        body shorter or longer than its Content-Length raises DmapError when read, so a
        put of it never completes.

        Raises LinkExpired on HTTP 403 (list the feed again), DmapError otherwise."""
        where = f"feed {relative_url}: {result.dataset_id}"
        try:
            # No API key: the link is signed, and its host may not be the API's.
            response = self.session.get(
                result.url, stream=True, timeout=(self.timeout, self.timeout)
            )
        except requests.RequestException as exc:
            # `from None`: the cause's text holds the signed URL.
            raise DmapError(f"{where}: download: {describe_failure(exc)}") from None
        with response:
            if response.status_code == 403:
                raise LinkExpired(f"{where}: download: HTTP 403 (link expired?)")
            if response.status_code != 200:
                raise DmapError(f"{where}: download: HTTP {response.status_code}")
            length = response.headers.get("Content-Length")
            if length is not None and not length.isdigit():
                raise DmapError(f"{where}: download: bad Content-Length {length!r}")
            yield checked_body(response.raw, int(length) if length else None, where)


def checked_body(raw: Any, expected: int | None, where: str) -> io.BufferedReader:
    """A reader over a response's raw body (bytes as sent) that refuses what must not
    land: not gzip (checked here, from the first two bytes), or a byte count other than
    the Content-Length `expected` (checked at the end, so it raises before the consumer
    sees the end).

    `read(n)` returns exactly n bytes unless at the end (S3 uploads treat a short read as
    the end of a part); closing it closes `raw`. Errors are DmapError, naming `where`,
    never the URL."""
    chunks = _checked_chunks(raw, expected, where)
    head = next(chunks)  # the gzip check
    return streams.reader(itertools.chain([head], chunks), on_close=raw.close)


def _checked_chunks(raw: Any, expected: int | None, where: str) -> Iterator[bytes]:
    """The body in chunks: first its two gzip bytes, checked, then the rest, then (at
    the end) its length checked against `expected`."""
    count = 0
    of = f" of {expected} (Content-Length)" if expected is not None else ""

    def read(size: int) -> bytes:
        nonlocal count
        try:
            chunk = raw.read(size, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DmapError(
                f"{where}: download broken after {count} byte(s){of}: "
                f"{type(exc).__name__}: not landed"
            ) from None
        count += len(chunk)
        if expected is not None and count > expected:
            raise DmapError(f"{where}: more bytes than the Content-Length {expected}: not landed")
        return chunk

    head = b""
    while len(head) < len(GZIP_MAGIC) and (chunk := read(len(GZIP_MAGIC) - len(head))):
        head += chunk
    if head != GZIP_MAGIC:
        shown = f"starts with {head!r}" if head else "empty"
        raise DmapError(f"{where}: not a gzip file ({shown}): not landed")
    yield head
    while chunk := read(streams.BUFFER):
        yield chunk
    if expected is not None and count != expected:
        raise DmapError(f"{where}: got {count} byte(s){of}: not landed")


# --- results ------------------------------------------------------------------------------


def parse_result(
    raw: Any, *, feed: str, position: int, dataset_type: str, allow_http: bool = False
) -> DmapResult:
    """Check one listed result (`position` counts from 1 through the whole listing).

    Raises DmapError `feed <f>: result <n>: <field>: <why>`."""

    def fail(name: str, why: str) -> DmapError:
        return DmapError(f"feed {feed}: result {position}: {name}: {why}")

    if not isinstance(raw, dict):
        raise DmapError(f"feed {feed}: result {position}: not a JSON object")

    def text(name: str) -> str:
        if name not in raw or raw[name] is None:
            raise fail(name, "missing")
        if not isinstance(raw[name], str):
            raise fail(name, f"not a string: {_show(raw[name])}")
        return raw[name]

    kind = text("id")
    if kind != dataset_type:
        raise fail("id", f"{_show(kind)} is not the feed's type {dataset_type!r}")
    dataset_id = text("dataset_id")
    if not re.fullmatch(re.escape(dataset_type) + r"_\d{8}", dataset_id):
        raise fail("dataset_id", f"not {dataset_type}_YYYYMMDD: {_show(dataset_id)}")
    url = text("url")
    _check_url(url, allow_http, fail)

    def day(name: str) -> date:
        value = text(name)
        try:
            if not _DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise fail(name, f"not a date (YYYY-MM-DD): {_show(value)}") from None

    start, end = day("start_date"), day("end_date")
    if end < start:
        raise fail("end_date", f"{end} is before start_date {start}")
    value = text("last_updated")
    try:
        if not _TIMESTAMP.fullmatch(value):
            raise ValueError
        last_updated = datetime.fromisoformat(value)
    except ValueError:
        raise fail("last_updated", f"not a timestamp: {_show(value)}") from None
    return DmapResult(kind, dataset_id, url, start, end, last_updated)


def _check_url(url: str, allow_http: bool, fail: Any) -> None:
    # The URL itself is never echoed: it is signed.
    try:
        parts = urlsplit(url)
    except ValueError:
        raise fail("url", "not a URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise fail("url", f"not https ({parts.scheme or 'no scheme'})")
    if not parts.netloc:
        raise fail("url", "no host")
    if parts.path in ("", "/"):
        raise fail("url", "no path")


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
