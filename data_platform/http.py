"""The one way the platform makes an HTTP session: requests with urllib3's Retry; and the
one way its clients keep secrets out of what they say about a request.

Every client (DMAP, open data, the alert webhook) retries the same statuses, connection
errors and timeouts with exponential backoff and honours Retry-After; each chooses how
many times, how long between, and which methods. The source clients word a failed
request with `describe_failure` and pass every text through `redact`; the alerts scrub
their messages with `redact` too (`data_platform.alerts.scrub`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# Worth another try: rate limited, or the server (or a proxy before it) failing.
RETRY_STATUSES = (429, 500, 502, 503, 504)

# A URL's query string: a signed download link's signature, an API key in a link.
_QUERY = re.compile(r"\?[^\s'\"<>)]+")


def retrying_session(
    *, retries: int, backoff: float, methods: Iterable[str] = ("GET",)
) -> requests.Session:
    """A session whose requests are retried up to `retries` times on RETRY_STATUSES,
    connection errors and timeouts, `backoff` seconds (doubling) apart, Retry-After
    honoured; only `methods` are retried (urllib3 retries no POST by default)."""
    retry = Retry(
        total=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset(methods),
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def redact(text: str, *secrets: str) -> str:
    """`text` with URL query strings and the given secrets replaced by `?…` and `***`."""
    text = _QUERY.sub("?…", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_failure(exc: requests.RequestException) -> str:
    """A short reason for a failed request, without URLs (a download's is signed)."""
    if isinstance(exc, requests.exceptions.RetryError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return f"gave up retrying: {redact(str(reason or exc))}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return f"connection failed: {redact(str(reason or exc))}"
    return f"{type(exc).__name__}: {redact(str(exc))}"
