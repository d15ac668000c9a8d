"""Retry and a table's pass from the page and the API: the CLI's results, the operator
recorded in load_events and in the log."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from data_platform.db.engine import get_engine
from data_platform.db.models import LoadEvent
from tests.web.conftest import BEARER, TABLE, USER, WebWorld, csrf_of, log_in

Client = Callable[..., TestClient]


def _last_event(load_id: int) -> tuple[str, str, str | None, str | None]:
    with get_engine().connect() as conn:
        row = conn.execute(
            select(LoadEvent.from_status, LoadEvent.to_status, LoadEvent.actor, LoadEvent.reason)
            .where(LoadEvent.load_id == load_id)
            .order_by(LoadEvent.id.desc())
            .limit(1)
        ).one()
    return tuple(row)  # type: ignore[return-value]


def test_retry_then_run_the_pass_from_the_page(
    world: WebWorld,
    credentials: None,
    make_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="data_platform.web")
    client = make_client(allow_actions=True)
    log_in(client)
    world.fix_bad_file()
    page = client.get(f"/loads/{world.errored_id}")
    response = client.post(
        f"/loads/{world.errored_id}/retry",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/loads/{world.errored_id}"
    shown = client.get(response.headers["location"]).text
    assert f"load {world.errored_id} is ready again (using the file put back in incoming)" in shown
    assert "status-ready" in shown and f"Run {TABLE}" in shown
    assert "is ready again" not in client.get(f"/loads/{world.errored_id}").text  # shown once
    assert _last_event(world.errored_id) == (
        "errored",
        "ready",
        "web:token",
        "using the file put back in incoming",
    )
    # The table's pass: the source's scan and this table's ingest, as `run` prints them.
    page = client.get(f"/tables/{TABLE}")
    assert "Run this table's pass" in page.text
    response = client.post(
        f"/tables/{TABLE}/run", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == f"/tables/{TABLE}"
    shown = client.get(f"/tables/{TABLE}").text
    assert "cubic_qlik: " in shown
    assert "archived 1 (0 superseded), errored 0, 1 row(s) applied" in shown
    assert world.status(world.errored_id) == "archived"
    assert sorted(r[0] for r in world.sample.rows()) == [1, 2, 3]
    assert (
        "archive: cubic/ods_qlik/TEST.SAMPLE__ct/load="
        in client.get(f"/loads/{world.errored_id}").text
    )
    logged = [r.getMessage() for r in caplog.records if r.name == "data_platform.web.actions"]
    assert f"web:token retried load {world.errored_id} (using the file put back in incoming)" in (
        logged
    )
    assert f"web:token ran the pass of {TABLE}: archived 1, errored 0, 1 row(s)" in logged
    record = next(r for r in caplog.records if r.getMessage().startswith("web:token retried"))
    assert record.__dict__["client"] == "testclient"
    assert record.__dict__["load_id"] == world.errored_id


def test_a_refused_action_says_why_and_changes_nothing(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client(allow_actions=True)
    log_in(client)
    page = client.get("/")
    archived_id = world.errored_id - 1
    response = client.post(f"/loads/{archived_id}/retry", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 200  # after the redirect
    assert f"Error: load {archived_id} is archived; only errored loads can be retried" in (
        response.text
    )
    token = csrf_of(client.get("/").text)
    assert client.post("/loads/999999/retry", data={"csrf_token": token}).status_code == 404
    assert client.post("/tables/NO.SUCH/run", data={"csrf_token": token}).status_code == 404


def test_the_api_retries_and_runs_with_a_bearer_token(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client(allow_actions=True)
    world.fix_bad_file()
    retried = client.post(f"/api/loads/{world.errored_id}/retry", headers=BEARER)
    assert retried.status_code == 200
    assert retried.json() == {
        "ok": True,
        "action": "retry",
        "subject": f"load {world.errored_id}",
        "actor": "web:token",
        "lines": [f"load {world.errored_id} is ready again (using the file put back in incoming)"],
    }
    again = client.post(f"/api/loads/{world.errored_id}/retry", headers=BEARER)
    assert again.status_code == 409
    assert again.json() == {
        "error": f"load {world.errored_id} is ready; only errored loads can be retried",
        "exit_code": 1,
    }
    ran = client.post("/api/tables/TEST.SAMPLE/run", headers=BEARER).json()
    assert ran["ok"] is True and ran["subject"] == TABLE
    assert any("archived 1" in line for line in ran["lines"])
    assert world.status(world.errored_id) == "archived"
    assert client.post("/api/tables/NO.SUCH/run", headers=BEARER).status_code == 404


def test_basic_auth_is_recorded_as_the_user(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    import base64

    from tests.web.conftest import PASSWORD

    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    client = make_client(allow_actions=True)
    done = client.post(
        f"/api/loads/{world.errored_id}/retry", headers={"Authorization": f"Basic {basic}"}
    )
    assert done.status_code == 200 and done.json()["actor"] == f"web:{USER}"
    assert _last_event(world.errored_id)[2] == f"web:{USER}"
