"""Lineage (issue 26 item 1): sources, their tables, the dbt models that read them and the
tests that did not pass, from the source registry and dbt's last full build; each node
linked and coloured by its state; a failing test names the tables that feed it."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient

from data_platform.settings import get_settings
from data_platform.transform.dbt import FULL_BUILD
from tests.web.conftest import TABLE, WebWorld

Client = Callable[..., TestClient]

MANIFEST = {
    "sources": {
        "source.dp.qlik.sample": {
            "schema": "cubic_ods_qlik",
            "name": "sample",
            "identifier": "test_sample",
        },
        "source.dp.totesys_history.design": {
            "schema": "totesys_history",
            "name": "design",
            "identifier": "design",
        },
    },
    "nodes": {
        "model.dp.stg_sample": {
            "resource_type": "model",
            "name": "stg_sample",
            "depends_on": {"nodes": ["source.dp.qlik.sample"]},
        },
        "model.dp.sample_daily": {
            "resource_type": "model",
            "name": "sample_daily",
            "depends_on": {"nodes": ["model.dp.stg_sample"]},
        },
        "model.dp.dim_design": {
            "resource_type": "model",
            "name": "dim_design",
            "depends_on": {"nodes": ["source.dp.totesys_history.design"]},
        },
        "test.dp.not_null_daily": {
            "resource_type": "test",
            "name": "not_null_daily",
            "depends_on": {"nodes": ["model.dp.sample_daily"]},
        },
        "test.dp.unique_stg": {
            "resource_type": "test",
            "name": "unique_stg",
            "depends_on": {"nodes": ["model.dp.stg_sample"]},
        },
    },
}
RESULTS = {
    "metadata": {"generated_at": "2026-12-01T13:00:00Z"},
    "args": {"which": "build"},
    "results": [
        {"unique_id": "model.dp.stg_sample", "status": "success"},
        {"unique_id": "model.dp.sample_daily", "status": "success"},
        {"unique_id": "model.dp.dim_design", "status": "success"},
        {"unique_id": "test.dp.not_null_daily", "status": "fail", "failures": 2},
        {"unique_id": "test.dp.unique_stg", "status": "pass", "failures": 0},
    ],
}


def test_sources_and_tables_before_any_build(world: WebWorld, make_client: Client) -> None:
    graph = make_client().get("/api/lineage").json()
    assert graph["built"] is False
    ids = {n["id"]: n for n in graph["nodes"]}
    assert ids[f"table:{TABLE}"]["state"] == "failed" and ids["source:cubic_qlik"]["layer"] == 0
    assert ["source:cubic_qlik", f"table:{TABLE}"] in graph["edges"]
    assert "No dbt build yet" in make_client().get("/lineage").text


def test_models_and_a_failing_test_with_the_tables_that_feed_it(
    world: WebWorld, make_client: Client
) -> None:
    kept = get_settings().home / "dbt" / FULL_BUILD
    kept.mkdir(parents=True)
    (kept / "manifest.json").write_text(json.dumps(MANIFEST))
    (kept / "run_results.json").write_text(json.dumps(RESULTS))
    graph = make_client().get("/api/lineage").json()
    assert graph["built"] is True
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = graph["edges"]
    assert [f"table:{TABLE}", "model.dp.stg_sample"] in edges  # the dbt source is the table
    assert ["model.dp.stg_sample", "model.dp.sample_daily"] in edges
    # totesys_history.design is written by the loader of totesys.design.
    assert ["table:totesys__design", "model.dp.dim_design"] in edges
    assert (nodes["model.dp.stg_sample"]["layer"], nodes["model.dp.sample_daily"]["layer"]) == (
        2,
        3,
    )
    assert nodes["model.dp.sample_daily"]["state"] == "failed"  # its test failed
    assert nodes["model.dp.stg_sample"]["detail"] == "1 of 1 test(s) passed"
    failing = nodes["test.dp.not_null_daily"]
    assert (failing["state"], failing["fed_by"]) == ("fail", [TABLE])
    assert ["model.dp.sample_daily", "test.dp.not_null_daily"] in edges
    assert "test.dp.unique_stg" not in nodes  # a test that passed is counted on its model
    html = make_client().get("/lineage").text
    assert f'<a href="/tables/{TABLE}" class="node node-table node-state-failed"' in html
    assert 'href="/transform#not_null_daily"' in html
    assert f'fed by <a href="/tables/{TABLE}">{TABLE}</a>' in html
    built = make_client().get("/api/transform").json()
    (test,) = [t for t in built["tests"] if t["name"] == "not_null_daily"]
    assert test["fed_by"] == [TABLE]  # the transform page names what feeds a failing test
