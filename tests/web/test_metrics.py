"""`/metrics` scraped and read by Prometheus's own client parser (issue 25): loads by
status, rows, backlog, data age, lateness, verifications and open alerts, on a real
platform; behind the pages' credentials when they are set."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from data_platform.db.engine import get_engine
from data_platform.loads.verify import Verification, record
from data_platform.verify import alert_latest
from tests.web.conftest import BEARER, TABLE, WebWorld

Client = Callable[..., TestClient]


def _samples(body: str) -> dict[tuple, float]:
    """(metric name, sorted label pairs) -> value, as Prometheus reads the page."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_the_state_is_scraped_as_prometheus_reads_it(world: WebWorld, make_client: Client) -> None:
    raw = get_engine().raw_connection()
    try:
        with raw.cursor() as cur:
            record(cur, Verification("cubic_dmap", "dataset_rows", "cubic_dmap.x", differing=3))
        raw.commit()
    finally:
        raw.close()
    alert_latest()  # the mismatch alerted, as `verify` does
    response = make_client().get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    got = _samples(response.text)
    table = (("source", "cubic_qlik"), ("table", TABLE))
    assert got[("data_platform_loads", (*table[:1], ("status", "archived"), table[1]))] == 1
    assert got[("data_platform_loads", (*table[:1], ("status", "errored"), table[1]))] == 1
    assert got[("data_platform_rows_applied", table)] == 2
    assert got[("data_platform_table_rows", table)] == 2
    assert got[("data_platform_backlog_loads", table)] == 0
    assert got[("data_platform_table_late", table)] == 1  # failed
    assert got[("data_platform_data_age_seconds", table)] >= 0
    check = (("check", "dataset_rows"), ("source", "cubic_dmap"), ("subject", "cubic_dmap.x"))
    assert got[("data_platform_verification_mismatch", check)] == 1
    assert got[("data_platform_verification_differing", check)] == 3
    assert got[("data_platform_alerts_open", (("kind", "verify"),))] == 1


def test_metrics_need_the_credentials_the_pages_need(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client()
    assert client.get("/metrics").status_code == 401
    scraped = client.get("/metrics", headers=BEARER)
    assert scraped.status_code == 200
    assert "data_platform_loads" in scraped.text
