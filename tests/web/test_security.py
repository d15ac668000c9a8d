"""What the page must never do: run a script from a table name or an error message, show a
secret, let anyone in without the configured credentials, or act without a valid CSRF
token or `--allow-actions`."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url

from data_platform.db.engine import get_engine
from data_platform.db.models import AlertEvent, DmapFeed, Load, LoadStatus
from data_platform.errors import ConfigError
from data_platform.settings import get_settings, reset_settings
from tests.web.conftest import (
    BEARER,
    HOSTILE_TABLE,
    HOSTILE_VALUE,
    PASSWORD,
    TOKEN,
    USER,
    WebWorld,
    csrf_of,
    log_in,
)

Client = Callable[..., TestClient]


def _pages(load_id: int, table: str) -> list[str]:
    return [
        "/",
        f"/tables/{quote(table, safe='')}",
        f"/loads/{load_id}",
        "/transform",
        "/api/overview",
        f"/api/tables/{quote(table, safe='')}",
        f"/api/loads/{load_id}",
        "/api/transform",
    ]


def test_hostile_table_names_and_errors_are_escaped(
    world: WebWorld, hostile: tuple[str, int], make_client: Client
) -> None:
    name, load_id = hostile
    client = make_client()
    for path in ["/", f"/tables/{quote(name, safe='')}", f"/loads/{load_id}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.text
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "<b>" not in html and "<i>source" not in html, path
    overview = client.get("/").text
    assert (
        "evil&lt;b&gt;&#34;table&#39;&lt;/b&gt;&amp;&lt;script&gt;alert(1)&lt;/script&gt;"
        in overview
    )
    # Its link goes to its page, the name percent-encoded.
    assert f'href="/tables/{quote(name, safe="")}"' in overview
    assert "&lt;script&gt;alert(&#39;error&#39;)&lt;/script&gt; &amp; &lt;img src=x" in (
        client.get(f"/loads/{load_id}").text
    )
    # The real loader's error quotes the bad value, HTML and all: escaped too.
    table_page = client.get("/tables/TEST.SAMPLE").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in table_page
    assert HOSTILE_VALUE not in table_page
    # JSON carries the text as it is (a JSON string cannot run).
    api = client.get(f"/api/tables/{quote(name, safe='')}").json()
    assert api["table"]["name"] == HOSTILE_TABLE
    assert api["table"]["source"] == "hostile<i>source</i>"


def test_every_page_refuses_without_credentials(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client()
    for path in _pages(world.errored_id, "TEST.SAMPLE"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="data-platform"'
        assert "cubic_ods_qlik" not in response.text and "SAMPLE_ID" not in response.text, path
    assert "<h1>Log in</h1>" in client.get("/").text
    assert client.get("/api/overview").json()["error"].startswith("credentials required")
    # Wrong ones are refused alike; static files and the health check need none.
    assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    wrong = base64.b64encode(f"{USER}:nope".encode()).decode()
    assert client.get("/", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_bearer_basic_and_the_login_form_let_in(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client()
    assert client.get("/api/overview", headers=BEARER).status_code == 200
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert client.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    # The form: a wrong token is refused, the right one sets a session.
    page = client.get("/login")
    refused = client.post(
        "/login", data={"csrf_token": csrf_of(page.text), "token": "nope", "next": "/"}
    )
    assert refused.status_code == 401 and "Wrong credentials." in refused.text
    log_in(client)
    assert client.get("/").status_code == 200
    assert client.get(f"/loads/{world.errored_id}").status_code == 200
    # User and password through the form too; the session names the user.
    other = make_client()
    page = other.get("/login")
    done = other.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "user": USER, "password": PASSWORD},
        follow_redirects=False,
    )
    assert done.status_code == 303
    cookie = done.headers["set-cookie"]
    assert "dp_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert f'<span class="user">{USER}</span>' in other.get("/").text
    # A forged or tampered session is no session.
    forged = make_client(cookies={"dp_session": "eyJ4Ijoi.deadbeef"})
    assert forged.get("/").status_code == 401


def test_login_redirects_only_to_this_site(credentials: None, web_platform, make_client) -> None:
    client = make_client()
    page = client.get("/login")
    for target, expected in [("/transform", "/transform"), ("//evil.example/x", "/"),
                             ("https://evil.example/", "/"), ("/\\evil", "/")]:  # fmt: skip
        client.cookies.clear()
        page = client.get("/login")
        done = client.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "token": TOKEN, "next": target},
            follow_redirects=False,
        )
        assert done.headers["location"] == expected, target


def test_changing_the_credentials_ends_the_sessions(
    world: WebWorld, credentials: None, make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_SECRET_KEY", "a-fixed-key-for-two-apps")
    reset_settings()
    client = make_client()
    log_in(client)
    session = client.cookies["dp_session"]
    same = make_client(cookies={"dp_session": session})
    assert same.get("/").status_code == 200  # the same key and credentials: still valid
    monkeypatch.setenv("WEB_TOKEN", "a-new-token-0000")
    reset_settings()
    assert make_client(cookies={"dp_session": session}).get("/").status_code == 401


def test_actions_are_refused_when_the_server_is_read_only(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client(allow_actions=False)
    log_in(client)
    page = client.get(f"/loads/{world.errored_id}")
    assert "Retry load" not in page.text and "read-only" in page.text
    token = csrf_of(page.text)  # the logout form's: valid, yet refused
    response = client.post(f"/loads/{world.errored_id}/retry", data={"csrf_token": token})
    assert response.status_code == 403
    assert "actions are off" in response.text
    assert client.post("/tables/TEST.SAMPLE/run", data={"csrf_token": token}).status_code == 403
    api = client.post(f"/api/loads/{world.errored_id}/retry", headers=BEARER)
    assert api.status_code == 403 and "--allow-actions" in api.json()["error"]
    assert world.status(world.errored_id) == "errored"


def test_actions_without_credentials_are_401_and_without_csrf_403(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client(allow_actions=True)
    retry = f"/loads/{world.errored_id}/retry"
    assert client.post(retry).status_code == 401
    assert client.post(f"/api/loads/{world.errored_id}/retry").status_code == 401
    log_in(client)
    page = client.get(f"/loads/{world.errored_id}")
    assert f"Retry load {world.errored_id}" in page.text
    assert client.post(retry).status_code == 403  # no token
    assert client.post(retry, data={"csrf_token": "x.y"}).status_code == 403
    good = csrf_of(page.text)
    nonce, _, _signature = good.rpartition(".")
    assert client.post(retry, data={"csrf_token": f"{nonce}.{'0' * 64}"}).status_code == 403
    # A token of another visitor (another nonce cookie) is refused.
    stranger = make_client(allow_actions=True)
    log_in(stranger)
    theirs = csrf_of(stranger.get("/").text)
    assert client.post(retry, data={"csrf_token": theirs}).status_code == 403
    # The API refuses a session cookie: only an Authorization header acts there.
    assert client.post(f"/api/loads/{world.errored_id}/retry").status_code == 401
    assert world.status(world.errored_id) == "errored"
    response = client.post(retry, data={"csrf_token": good}, follow_redirects=False)
    assert response.status_code == 303


def test_actions_need_credentials_configured() -> None:
    from data_platform.web.app import create_app

    with pytest.raises(ConfigError, match="--allow-actions needs credentials"):
        create_app(get_settings(), allow_actions=True)


def test_user_without_password_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_platform.web.app import create_app

    monkeypatch.setenv("WEB_USER", "ops")
    reset_settings()
    with pytest.raises(ConfigError, match="WEB_USER and WEB_PASSWORD go together"):
        create_app(get_settings())


def test_no_secret_is_ever_shown(
    world: WebWorld,
    hostile: tuple[str, int],
    monkeypatch: pytest.MonkeyPatch,
    make_client: Client,
) -> None:
    db_password = "pg-secret-Pw-4242"
    url = make_url(get_settings().database_url).set(password=db_password)
    secrets = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "WEB_TOKEN": "tok-secret-1111",
        "WEB_USER": "ops",
        "WEB_PASSWORD": "web-secret-pw-2222",
        "WEB_SECRET_KEY": "signing-secret-3333",
        "CUBIC_DMAP_PUBLIC_USER_API_KEY": "dmap-secret-key-4444",
        "OPEN_DATA_API_KEY": "open-data-secret-5555",
        "KAFKA_SASL_PASSWORD": "kafka-secret-6666",
        "ALERT_WEBHOOK_URL": "https://hooks.example/services/hook-secret-7777",
        "ALERT_SMTP_PASSWORD": "smtp-secret-8888",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    leaked = [
        db_password,
        *(v for k, v in secrets.items() if k not in ("DATABASE_URL", "WEB_USER")),
    ]
    # Secrets where they should never be, yet might end up: an error, a feed's error, an alert.
    text = " ".join(leaked) + " https://u:url-secret-9999@host/x?signature=sig-secret-0000"
    leaked += ["url-secret-9999", "sig-secret-0000"]
    with get_engine().begin() as conn:
        conn.execute(update(Load).where(Load.id == hostile[1]).values(error=text))
        conn.execute(insert(DmapFeed).values(relative_url="/feed/x", last_error=text))
        conn.execute(
            insert(AlertEvent).values(
                fingerprint="load:1", kind="load", subject=text, message=text, channels="log"
            )
        )
    client = make_client(allow_actions=True)
    seen = []
    for path in [*_pages(hostile[1], hostile[0]), *_pages(world.errored_id, "TEST.SAMPLE")]:
        response = client.get(path, headers={"Authorization": "Bearer tok-secret-1111"})
        assert response.status_code == 200, path
        seen.append(response.text)
        found = [secret for secret in leaked if secret in response.text]
        assert found == [], path
    assert any("***" in body for body in seen)
    login = make_client().get("/login").text
    assert [secret for secret in leaked if secret in login] == []


def test_security_headers(web_platform, make_client: Client) -> None:
    response = make_client().get("/")
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    # No inline script: the chart's data is JSON, not code.
    html = response.text
    assert "<script>" not in html
    tags = re.findall(r"<script[^>]*>", html)
    assert tags and all(
        tag.startswith(("<script src=", '<script type="application/json"')) for tag in tags
    ), tags


def test_read_only_pages_need_no_credentials_when_none_are_set(
    world: WebWorld, make_client: Client
) -> None:
    client = make_client()
    assert client.get("/").status_code == 200
    assert client.get("/login", follow_redirects=False).status_code == 303
    assert client.post(f"/loads/{world.errored_id}/retry").status_code == 403
    assert world.status(world.errored_id) == LoadStatus.ERRORED.value
