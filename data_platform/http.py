"""The one way the platform makes an HTTP session: requests with urllib3's Retry.

Every client (DMAP, open data, the alert webhook) retries the same statuses, connection
errors and timeouts with exponential backoff and honours Retry-After; each chooses how
many times, how long between, and which methods.
"""

from __future__ import annotations

from collections.abc import Iterable

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# Worth another try: rate limited, or the server (or a proxy before it) failing.
RETRY_STATUSES = (429, 500, 502, 503, 504)


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
