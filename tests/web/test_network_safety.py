"""The operations page safe on a network (issue 26 item 9): logins rate-limited, Log out
ends the session for good, /healthz says only up or down, a Host not configured is
refused, the API's description needs the API's credentials, and cookies are Secure
over HTTPS, behind a proxy that says so too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from data_platform.settings import reset_settings
from data_platform.web.auth import SESSION_COOKIE
from data_platform.web.sessions import LOGIN_ATTEMPTS
from tests.web.conftest import BEARER, TOKEN, csrf_of, log_in

Client = Callable[..., TestClient]


def _login(client: TestClient, token: str, **headers: str):
    form = client.get("/login", headers=headers)
    return client.post(
        "/login",
        data={"csrf_token": csrf_of(form.text), "token": token, "next": "/"},
        headers=headers,
        follow_redirects=False,
    )


def test_logins_are_rate_limited_per_address(
    credentials: None, web_platform, make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_TRUSTED_PROXIES", "testclient")  # two addresses, via a proxy
    reset_settings()
    client = make_client()
    attacker = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(LOGIN_ATTEMPTS):
        assert _login(client, "wrong", **attacker).status_code == 401
    refused = _login(client, TOKEN, **attacker)  # even the right token, for a while
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many failed logins" in refused.text
    assert SESSION_COOKIE not in refused.cookies
    other = make_client()
    assert _login(other, TOKEN, **{"X-Forwarded-For": "198.51.100.8"}).status_code == 303


def test_logging_out_ends_the_session_for_good(
    credentials: None, web_platform, make_client: Client
) -> None:
    client = make_client()
    log_in(client)
    kept = client.cookies.get(SESSION_COOKIE)
    assert kept and client.get("/").status_code == 200
    thief = TestClient(client.app)  # elsewhere, on the same server
    stolen = {"Cookie": f"{SESSION_COOKIE}={kept}"}  # the cookie, copied before the logout
    assert thief.get("/api/overview", headers=stolen).status_code == 200
    page = client.get("/")
    out = client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert thief.get("/api/overview", headers=stolen).status_code == 401
    again = TestClient(client.app)
    log_in(again)  # a new login is a new session
    assert again.get("/api/overview").status_code == 200
    thief.close()
    again.close()


def test_healthz_says_up_or_down_and_nothing_else(
    credentials: None, web_platform, make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = make_client().get("/healthz")
    assert (up.status_code, up.json()) == (200, {"status": "ok"})
    monkeypatch.setenv("DATABASE_URL", "postgresql://ops:s3cret-pw@127.0.0.1:1/nowhere")
    reset_settings()
    down = make_client().get("/healthz")
    assert (down.status_code, down.json()) == (503, {"status": "down"})
    assert "s3cret" not in down.text and "127.0.0.1" not in down.text


def test_a_host_not_configured_is_refused(web_platform, make_client: Client) -> None:
    client = make_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8050"}).status_code == 200


def test_the_api_description_needs_the_api_s_credentials(
    credentials: None, web_platform, make_client: Client
) -> None:
    client = make_client()
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/api/overview").status_code == 401
    described = client.get("/openapi.json", headers=BEARER)
    assert described.status_code == 200 and "/api/overview" in described.json()["paths"]


@pytest.mark.parametrize(
    ("proxies", "headers", "secure"),
    [
        ("127.0.0.1", {}, False),  # plain http
        ("testclient", {"X-Forwarded-Proto": "https"}, True),  # a trusted proxy's https
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, False),  # anyone else's word: no
    ],
)
def test_cookies_are_secure_over_https_behind_a_proxy_that_says_so(
    credentials: None,
    web_platform,
    make_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    proxies: str,
    headers: dict[str, str],
    secure: bool,
) -> None:
    monkeypatch.setenv("WEB_TRUSTED_PROXIES", proxies)
    reset_settings()
    form = make_client().get("/login", headers=headers)
    (cookie,) = [v for k, v in form.headers.multi_items() if k == "set-cookie"]
    assert cookie.startswith("dp_csrf=") and ("; secure" in cookie.lower()) is secure


def test_the_session_cookie_is_secure_over_https(
    credentials: None, web_platform, make_client: Client
) -> None:
    client = make_client(base_url="https://testserver")
    response = _login(client, TOKEN)
    assert response.status_code == 303
    (cookie,) = [
        v for k, v in response.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v
    ]
    assert "; secure" in cookie.lower() and "; httponly" in cookie.lower()
