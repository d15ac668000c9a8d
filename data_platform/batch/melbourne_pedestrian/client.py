"""The City of Melbourne's Opendatasoft portal over HTTP: one `requests` session with
retries, and a dataset's CSV export streamed as the portal sends it.

Endpoint: `GET <base>/api/explore/v2.1/catalog/datasets/<dataset_id>/exports/csv`, with
`delimiter=;` and `with_bom=false` asked for explicitly (the portal's defaults are `;` and
a byte-order mark) and an optional ODSQL `where` (see `window_where`). The export is the
whole (filtered) dataset in one response, not paged.

Secrets: the optional API key travels in the `Authorization: Apikey <key>` header only,
never in a URL, a log line or an error (requests drops the header on a redirect to another
host). Messages name the dataset and the URL without its query string.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions

from data_platform.batch.melbourne_pedestrian.naming import Dataset
from data_platform.errors import DataPlatformError
from data_platform.http import describe_failure, redact, retrying_session

log = logging.getLogger(__name__)

EXPORT_PATH = "/api/explore/v2.1/catalog/datasets/{dataset_id}/exports/csv"
# The records endpoint, for the portal's own aggregates (`daily_totals`).
RECORDS_PATH = "/api/explore/v2.1/catalog/datasets/{dataset_id}/records"
# What `daily_totals` asks the portal: per sensing_date, its records and their total.
DAILY_SELECT = "sensing_date, count(*) as records, sum(pedestriancount) as total"
PAGE = 100  # the records endpoint's largest page
DELIMITER = ";"
# Defaults of a client (not settings yet): seconds to connect and between two reads;
# retries of a request on RETRY_STATUSES, connection errors and timeouts, the first at
# once, then after backoff * 2, 4, 8, ... seconds (at most 120 s), Retry-After honoured.
TIMEOUT_SECONDS = 60.0
RETRIES = 5
BACKOFF_SECONDS = 1.0
CHUNK_SIZE = 1 << 16
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PedestrianError(DataPlatformError):
    """The pedestrian data could not be fetched: the portal refused or failed, a download
    broke off, or an export is not what the source expects. The message names the dataset
    (and the window, line and column); never the API key. Exit code 1."""

    exit_code = 1


def window_where(start: date, end: date) -> str:
    """The ODSQL filter of counts whose sensing_date is in [start, end)."""
    return f"sensing_date >= date'{start.isoformat()}' AND sensing_date < date'{end.isoformat()}'"


def _shown(url: str) -> str:
    """`url` without user info and query: fit for a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = str(parts.port or "")
    except ValueError:  # not a number: shown as given, for the error that names it
        port = parts.netloc.rpartition(":")[2]
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def portal_of(base_url: str) -> str:
    """Which portal OPEN_DATA_BASE_URL names, fit to keep and show (no user info, query or
    trailing slash): the counts' mark records it (fetch) and verify compares a table only
    with the portal it was fetched from."""
    return _shown(base_url).rstrip("/")


class OpenDataClient:
    """A session against one Opendatasoft portal (`base_url`, e.g.
    https://data.melbourne.vic.gov.au).

    `api_key` (optional, empty = none) is sent as `Authorization: Apikey <key>`; it is
    refused over plain http except to a loopback host (the demo API, tests). `timeout`,
    `retries` and `backoff` default to the module's TIMEOUT_SECONDS, RETRIES and
    BACKOFF_SECONDS (read when the client is made)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PedestrianError(
                f"OPEN_DATA_BASE_URL is not an http(s) URL: {_shown(self.base_url)!r}"
            )
        self.portal = portal_of(base_url)
        self._api_key = api_key or None
        if self._api_key and parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise PedestrianError(
                f"OPEN_DATA_BASE_URL {_shown(self.base_url)} is plain http: the API key "
                "would travel unencrypted (use https)"
            )
        self.timeout = TIMEOUT_SECONDS if timeout is None else timeout
        self.session = retrying_session(
            retries=RETRIES if retries is None else retries,
            backoff=BACKOFF_SECONDS if backoff is None else backoff,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> OpenDataClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def export_url(self, dataset: Dataset) -> str:
        return self.base_url + EXPORT_PATH.format(dataset_id=dataset.dataset_id)

    def _scrub(self, text: str) -> str:
        return redact(text, self._api_key or "")

    @contextmanager
    def export_csv(
        self, dataset: Dataset, *, where: str | None = None, what: str | None = None
    ) -> Iterator[Iterator[bytes]]:
        """The dataset's CSV export (filtered by the ODSQL `where`) as an iterator of byte
        chunks, as sent (`;`-separated, header = field names; content-encoding undone).

        `what` names the request in messages (default: the dataset's name). Raises
        PedestrianError `<what>: GET <url>: HTTP <status>` (retries spent first for 429
        and 5xx) or `...: <reason>` on opening; while iterating, `<what>: download broken
        after <n> byte(s): <reason>: not landed` when the body ends early (short of its
        Content-Length, a chunked body cut off) or the connection fails."""
        what = what or dataset.name
        url = self.export_url(dataset)
        params = {"delimiter": DELIMITER, "with_bom": "false"}
        if where is not None:
            params["where"] = where
        headers = {"Accept": "text/csv"}
        if self._api_key:
            headers["Authorization"] = f"Apikey {self._api_key}"
        shown = f"GET {_shown(url)}"
        try:
            response = self.session.get(
                url,
                params=params,
                headers=headers,
                stream=True,
                timeout=(self.timeout, self.timeout),
            )
        except requests.RequestException as exc:
            why = self._scrub(describe_failure(exc))
            raise PedestrianError(f"{what}: {shown}: {why}") from None
        with response:
            if response.status_code != 200:
                hint = " (OPEN_DATA_API_KEY refused?)" if response.status_code in (401, 403) else ""
                raise PedestrianError(
                    f"{what}: {shown}: HTTP {response.status_code}{hint}{self._reason(response)}"
                )
            log.debug("exporting %s", what, extra={"dataset": dataset.dataset_id})
            yield self._chunks(response, what)

    def daily_totals(
        self, dataset: Dataset, *, where: str | None = None
    ) -> dict[str, tuple[int, int | None]]:
        """The portal's own aggregates of the counts: sensing_date (ISO text) -> (its
        records, the sum of their pedestriancount; None when every one is empty), from
        the records endpoint (`select`, `group_by`), page by page. Raises PedestrianError
        as `export_csv` does, or when the answer is not the JSON asked for."""
        url = self.base_url + RECORDS_PATH.format(dataset_id=dataset.dataset_id)
        shown = f"GET {_shown(url)}"
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Apikey {self._api_key}"
        found: dict[str, tuple[int, int | None]] = {}
        offset = 0
        while True:
            params: dict[str, str | int] = {
                "select": DAILY_SELECT,
                "group_by": "sensing_date",
                "order_by": "sensing_date",
                "limit": PAGE,
                "offset": offset,
            }
            if where is not None:
                params["where"] = where
            try:
                response = self.session.get(
                    url, params=params, headers=headers, timeout=(self.timeout, self.timeout)
                )
            except requests.RequestException as exc:
                why = self._scrub(describe_failure(exc))
                raise PedestrianError(f"{dataset.name} totals: {shown}: {why}") from None
            if response.status_code != 200:
                raise PedestrianError(
                    f"{dataset.name} totals: {shown}: HTTP {response.status_code}"
                    f"{self._reason(response)}"
                )
            try:
                results = response.json()["results"]
                page = {
                    str(r["sensing_date"]): (
                        int(r["records"]),
                        None if r["total"] is None else int(r["total"]),
                    )
                    for r in results
                }
            except (ValueError, KeyError, TypeError) as exc:
                raise PedestrianError(
                    f"{dataset.name} totals: {shown}: not the aggregates asked for ({exc})"
                ) from None
            found.update(page)
            if len(results) < PAGE:
                return found
            offset += PAGE

    def _reason(self, response: requests.Response) -> str:
        """The portal's error message (JSON `message`), if it sent one: a short suffix."""
        try:
            message = response.json().get("message")
        except (ValueError, AttributeError, requests.RequestException):
            return ""
        if not isinstance(message, str) or not message:
            return ""
        message = self._scrub(" ".join(message.split()))
        return f": {message[:200]}"

    def _chunks(self, response: requests.Response, what: str) -> Iterator[bytes]:
        try:
            yield from response.iter_content(CHUNK_SIZE)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The bytes as they came over the wire (what a Content-Length counts).
            received = response.raw.tell()
            raise PedestrianError(
                f"{what}: download broken after {received} byte(s): {self._scrub(_cause(exc))}: "
                "not landed"
            ) from None


def _cause(exc: BaseException) -> str:
    """The innermost reason of a broken body, e.g. `Connection broken: IncompleteRead(...)`
    (requests and urllib3 wrap it in one another)."""
    while exc.args and isinstance(exc.args[0], BaseException):
        exc = exc.args[0]
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError):
        return "timed out"
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    return " ".join(text.split())
