"""What an operator looks for on the page (issue 26 item 3): tables found by name, source
and state; an overview that refreshes itself when asked; a table's newest rows; an
errored load skipped with a reason beside Retry."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from data_platform.db.engine import get_engine
from data_platform.db.models import LoadEvent
from tests.web.conftest import BEARER, TABLE, WebWorld, csrf_of, log_in

Client = Callable[..., TestClient]


def _rows_shown(html: str) -> list[str]:
    return re.findall(r'<tr class="row-[a-z]+" data-table="([^"]+)"', html)


def test_tables_are_found_by_name_source_and_state(world: WebWorld, make_client: Client) -> None:
    client = make_client()
    every = _rows_shown(client.get("/").text)
    assert TABLE in every and len(every) > 10  # every source's tables are registered
    assert _rows_shown(client.get("/?state=failed").text) == [TABLE]
    assert _rows_shown(client.get("/?q=SAMPLE").text) == [TABLE]
    by_source = _rows_shown(client.get("/?source=totesys").text)
    assert by_source and all(name.startswith("totesys__") for name in by_source)
    page = client.get("/?source=totesys&q=order")
    assert set(_rows_shown(page.text)) == {"totesys__purchase_order", "totesys__sales_order"}
    assert f"2 of {len(every)} tables" in page.text
    assert "No table matches." in client.get("/?q=no-such-table").text
    assert 'value="order"' in page.text  # the form keeps what was asked


def test_the_overview_refreshes_itself_when_asked(world: WebWorld, make_client: Client) -> None:
    client = make_client()
    assert 'http-equiv="refresh"' not in client.get("/").text
    assert '<meta http-equiv="refresh" content="30">' in client.get("/?refresh=30").text
    assert 'http-equiv="refresh"' not in client.get("/?refresh=1").text  # never flat out


def test_a_table_shows_its_newest_rows(world: WebWorld, make_client: Client) -> None:
    html = make_client().get(f"/tables/{TABLE}").text
    section = html[html.index('<section id="preview">') : html.index('<section id="schema">')]
    assert '<th scope="col">sample_name</th>' in section
    assert ">one<" in section and ">two<" in section
    api = make_client().get(f"/api/tables/{TABLE}").json()
    names = [c["name"] for c in api["columns"]]
    assert sorted(row[names.index("sample_name")] for row in api["preview"]) == ["one", "two"]


def test_an_errored_load_is_skipped_with_a_reason_beside_retry(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client(allow_actions=True)
    log_in(client)
    page = client.get(f"/loads/{world.errored_id}")
    assert f'data-action="retry" data-load="{world.errored_id}"' in page.text
    assert f'data-action="skip" data-load="{world.errored_id}"' in page.text
    refused = client.post(
        f"/loads/{world.errored_id}/skip", data={"csrf_token": csrf_of(page.text), "reason": " "}
    )
    assert "Error: a skip needs a reason" in refused.text
    assert world.status(world.errored_id) == "errored"
    page = client.get(f"/loads/{world.errored_id}")
    done = client.post(
        f"/loads/{world.errored_id}/skip",
        data={"csrf_token": csrf_of(page.text), "reason": "resent as a new file"},
    )
    assert done.status_code == 200 and "status-skipped" in done.text
    assert world.status(world.errored_id) == "skipped"
    with get_engine().connect() as conn:
        actor, reason = conn.execute(
            select(LoadEvent.actor, LoadEvent.reason)
            .where(LoadEvent.load_id == world.errored_id)
            .order_by(LoadEvent.id.desc())
            .limit(1)
        ).one()
    assert (actor, reason) == ("web:token", "resent as a new file")
    again = client.post(
        f"/api/loads/{world.errored_id}/skip", json={"reason": "twice"}, headers=BEARER
    )
    assert again.status_code == 409
    assert "only ready or errored loads can be skipped" in again.json()["error"]
