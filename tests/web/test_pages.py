"""Every page and API endpoint through FastAPI's TestClient, on a real platform: what the
overview ranks first, a table's errored load with file, line and column, its schema and
revision, a load's history, the last dbt build, times in the operator's zone."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadStatus
from data_platform.settings import get_settings, reset_settings
from data_platform.web.render import duration, number, size
from tests.web.conftest import HOSTILE_VALUE, TABLE, WebWorld

Client = Callable[..., TestClient]


def _rows(html: str, table_id: str) -> list[str]:
    """The text of each body row of table `table_id`, tags stripped."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def test_overview_puts_the_failed_table_first_and_lists_every_source(
    world: WebWorld, make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second table, fine but stale: late, after the failed one.
    other = world.qlik.table("TEST.OTHER", world.sample.columns)
    other.full_load([(1, "one", "2021-12-01 11:20:30")])
    other.onboard()
    world.qlik.run()
    with get_engine().begin() as conn:  # its file landed, and was archived, an hour ago
        conn.execute(
            update(Load)
            .where(Load.s3_key.like("cubic/ods_qlik/TEST.OTHER/%"))
            .values(
                updated_at=datetime.now(UTC) - timedelta(hours=1),
                s3_modified=datetime.now(UTC) - timedelta(hours=1),
            )
        )
    monkeypatch.setenv("FRESHNESS_HOURS_BY_TABLE", '{"TEST.OTHER": 0.5, "nosuch": 3}')
    reset_settings()
    response = make_client().get("/")
    assert response.status_code == 200
    rows = _rows(response.text, "tables")
    assert rows[0].startswith(f"failed {TABLE}"), rows
    assert rows[1].startswith("late cubic_ods_qlik__test_other"), rows
    assert f"load {world.errored_id} : line 2, column SAMPLE_ID invalid input syntax" in rows[0]
    assert "archived 1 errored 1" in rows[0]
    assert "0.5 h" in rows[1] and "data 1 h 0 min old" in rows[1]
    sources = _rows(response.text, "sources")
    from data_platform.run import all_sources

    assert [row.split()[0] for row in sources] == [source.name for source in all_sources()]
    assert sources[0].startswith("cubic_qlik failed 2")
    assert "FRESHNESS_HOURS_BY_TABLE names no table: nosuch" in response.text
    # The chart's data and the vendored Chart.js, served from here.
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in response.text
    chart = json.loads(response.text.split('id="activity-data">', 1)[1].split("</script>", 1)[0])
    assert len(chart["hours"]) == 48 and sum(chart["archived"]) == 2
    assert sum(chart["errored"]) == 1 and sum(chart["rows"]) == 3


def test_the_api_overview_says_the_same(world: WebWorld, make_client: Client) -> None:
    data = make_client().get("/api/overview").json()
    (table,) = [t for t in data["tables"] if t["name"] == TABLE]
    assert table["state"] == "failed"
    assert table["loads"] == {"archived": 1, "errored": 1}
    assert table["rows"] == {"value": 2, "exact": True}
    assert table["rows_applied"] == 2
    assert table["latest_error_load_id"] == world.errored_id
    error = table["latest_error"]
    assert (error["file"], error["line"], error["column"]) == (world.bad_key, 2, "SAMPLE_ID")
    assert error["reason"] == f'invalid input syntax for type integer: "{HOSTILE_VALUE}"'
    assert table["latest_error_file"].startswith("cubic/ods_qlik/TEST.SAMPLE__ct/landed=")
    assert data["at_head"] is True
    assert {s["name"] for s in data["sources"]} >= {"cubic_qlik", "cubic_dmap", "totesys"}


def test_table_page_shows_the_error_loads_schema_and_revision(
    world: WebWorld, make_client: Client
) -> None:
    client = make_client()
    for name in (TABLE, "TEST.SAMPLE", "cubic_ods_qlik.test_sample"):
        response = client.get(f"/tables/{name}")
        assert response.status_code == 200, name
    html = response.text
    errored = html.split('id="errored"', 1)[1].split("</section>", 1)[0]
    assert f"<code>{world.bad_key}</code>" in errored
    assert "<dt>Line</dt><dd>2</dd>" in errored
    assert "<dt>Column</dt><dd><code>SAMPLE_ID</code></dd>" in errored
    assert "landed=" in errored  # where the file lies in the error zone
    assert "Retry" not in html and "Run this table" not in html  # read-only
    loads = _rows(html, "loads")
    assert loads[0].startswith(f"{world.errored_id} errored")
    assert re.search(r"archived .* 2 .* \d+ ms", loads[1]), loads[1]
    columns = _rows(html, "columns")
    assert columns[0] == "sample_id key INTEGER no TEST.SAMPLE.SAMPLE_ID (INT4)"
    assert any(row.startswith("dp__load_id BIGINT no Lineage") for row in columns)
    (revision,) = _rows(html, "revisions")
    assert "onboard TEST.SAMPLE as cubic_ods_qlik.test_sample" in revision
    assert revision.endswith("alembic_version yes")
    api = client.get("/api/tables/TEST.SAMPLE").json()
    assert api["table"]["name"] == TABLE
    assert [load["status"] for load in api["loads"]] == ["errored", "archived"]
    assert api["errored"][0]["error"]["line"] == 2
    assert api["loads"][1]["apply_seconds"] > 0 and api["loads"][1]["rows"] == 2
    assert [c["name"] for c in api["columns"]][:3] == [
        "sample_id",
        "sample_name",
        "edw_inserted_dtm",
    ]


def test_load_page_shows_its_history_and_error(world: WebWorld, make_client: Client) -> None:
    client = make_client()
    response = client.get(f"/loads/{world.errored_id}")
    assert response.status_code == 200
    html = response.text
    assert f"Load {world.errored_id}" in html and "status-errored" in html
    events = _rows(html, "events")
    assert [" ".join(row.split()[3:5]) for row in events] == [
        "ready ingesting",
        "ingesting ready_for_erroring",
        "ready_for_erroring erroring",
        "erroring errored",
    ]
    assert 'id="file-now">error: cubic/ods_qlik/TEST.SAMPLE__ct/landed=' in html
    assert world.bad_key.replace(".csv.gz", ".dfm") in html  # travels with it
    api = client.get(f"/api/loads/{world.errored_id}").json()
    assert api["error"]["column"] == "SAMPLE_ID" and len(api["events"]) == 4
    assert api["companions"] == [world.bad_key.replace(".csv.gz", ".dfm")]


def test_unknown_table_and_load_are_404_with_close_matches(
    world: WebWorld, make_client: Client
) -> None:
    client = make_client()
    page = client.get("/tables/TEST.SAMPEL")
    assert page.status_code == 404
    assert "no table &#39;TEST.SAMPEL&#39;; did you mean cubic_ods_qlik__test_sample?" in page.text
    assert client.get("/api/tables/TEST.SAMPEL").json()["error"].startswith("no table")
    assert client.get("/loads/999999").status_code == 404
    assert client.get("/api/loads/999999").json() == {"error": "no load 999999", "exit_code": 2}
    assert client.get("/loads/abc").status_code == 422
    assert client.get("/nothing-here").status_code == 404


def test_times_are_in_the_operators_zone_and_numbers_readable(
    world: WebWorld, make_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed = datetime(2026, 7, 1, 3, 4, 5, tzinfo=UTC)
    with get_engine().begin() as conn:
        conn.execute(
            update(Load)
            .where(Load.id == world.errored_id)
            .values(s3_modified=landed, s3_size=12345678)
        )
    monkeypatch.setenv("DATA_PLATFORM_TIMEZONE", "Australia/Melbourne")
    reset_settings()
    html = make_client().get(f"/loads/{world.errored_id}").text
    assert "2026-07-01 13:04:05 AEST" in html  # UTC+10 in July
    assert "12,345,678 bytes" in html
    assert "Times in Australia/Melbourne" in html
    assert (number(1234567), number(None), size(1234567), duration(0.0123)) == (
        "1,234,567",
        "\u2014",
        "1.2 MB",
        "12 ms",
    )
    assert (duration(5.25), duration(184), duration(7500), duration(3 * 86400)) == (
        "5.2 s",
        "3 min 4 s",
        "2 h 5 min",
        "3 d 0 h",
    )


def test_transform_page_shows_each_data_test(web_platform, make_client: Client) -> None:
    client = make_client()
    assert "No dbt build ran on this data home yet" in client.get("/transform").text
    assert client.get("/api/transform").json()["found"] is False
    target = get_settings().home / "dbt" / "target"
    target.mkdir(parents=True)
    (target / "run_results.json").write_text(json.dumps(_RUN_RESULTS))
    (target / "manifest.json").write_text(json.dumps(_MANIFEST))
    html = client.get("/transform").text
    assert (
        "transform FAILED (1 failed): 1 model (1 success), 3 tests (1 fail, 1 pass, 1 warn)" in html
    )
    tests = _rows(html, "tests")
    assert tests[0].startswith("fail not_null_dim_date_date_id not_null dim_date date_id 3")
    assert tests[1].startswith("warn assert_top10_complete singular daily_totals, top10 1")
    assert tests[2].startswith("pass unique_dim_date_date_id unique dim_date date_id 0")
    assert _rows(html, "models")[0].startswith("success dim_date")
    api = client.get("/api/transform").json()
    assert api["ok"] is False and api["command"] == "build"
    assert [t["status"] for t in api["tests"]] == ["fail", "warn", "pass"]


def test_a_later_select_run_never_hides_the_last_full_build(
    web_platform, make_client: Client
) -> None:
    """`transform --select` (or a failed run) writes dbt's target/ too; the page shows the
    last build of every model, kept beside it, and names the later run."""
    from data_platform.transform.dbt import FULL_BUILD

    home = get_settings().home / "dbt"
    for folder in (home / FULL_BUILD, home / "target"):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps(_MANIFEST))
    (home / FULL_BUILD / "run_results.json").write_text(json.dumps(_RUN_RESULTS))
    selected = {
        "metadata": {"dbt_version": "1.11.16", "generated_at": "2026-12-01T14:00:00.000000Z"},
        "elapsed_time": 0.4,
        "args": {"which": "build", "select": ["no_such_model"]},
        "results": [],
    }
    (home / "target" / "run_results.json").write_text(json.dumps(selected))
    page = make_client().get("/transform").text
    assert "1 model (1 success), 3 tests (1 fail, 1 pass, 1 warn)" in page
    assert _rows(page, "tests")[0].startswith("fail not_null_dim_date_date_id")
    assert "A later run on part of them" in page
    assert "dbt build --select no_such_model: transform ok: nothing selected" in page
    api = make_client().get("/api/transform").json()
    assert api["full_build"] is True and api["later_run"].startswith("dbt build --select")


def test_openapi_describes_the_api(web_platform, make_client: Client) -> None:
    spec = make_client().get("/openapi.json").json()
    assert spec["info"]["title"] == "data-platform operations"
    paths = set(spec["paths"])
    assert {
        "/api/overview",
        "/api/tables/{name}",
        "/api/loads/{load_id}",
        "/api/transform",
        "/api/loads/{load_id}/retry",
        "/api/tables/{name}/run",
    } <= paths
    assert not any(path.startswith(("/tables", "/loads", "/login")) for path in paths)
    schema = spec["paths"]["/api/overview"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["$ref"].endswith("/Overview")


def test_static_files_are_served_and_chart_js_is_the_vendored_release(
    web_platform, make_client: Client
) -> None:
    client = make_client()
    script = client.get("/static/vendor/chartjs/chart.umd.min.js")
    assert script.status_code == 200
    digest = "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2"
    assert hashlib.sha256(script.content).hexdigest() == digest
    assert script.text.startswith("/*!\n * Chart.js v4.6.1")
    license_file = Path(__file__).resolve().parents[2] / "data_platform/web/static/vendor/chartjs"
    assert "MIT" in (license_file / "LICENSE.md").read_text()
    assert client.get("/static/charts.js").status_code == 200
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_healthz(web_platform, make_client: Client) -> None:
    assert make_client().get("/healthz").json() == {"status": "ok"}


def test_an_error_without_parts_shows_its_whole_message_as_the_reason() -> None:
    from data_platform.loads.state import LoadErrorParts
    from data_platform.web.queries import Scrubber, error_text

    # A load errored before revision 0010 stored only the message.
    old = LoadErrorParts("cubic/x/a.csv: line 3: bad (load 2)")
    error = error_text(old, Scrubber(get_settings()))
    assert error is not None and (error.file, error.line, error.column) == (None, None, None)
    assert error.reason == error.text == old.text
    assert error_text(None, Scrubber(get_settings())) is None


def test_a_table_stale_beyond_its_expectation_is_late(world: WebWorld, make_client: Client) -> None:
    with get_engine().begin() as conn:  # the error is fixed (skipped), the data is old
        conn.execute(
            update(Load)
            .where(Load.id == world.errored_id)
            .values(status=LoadStatus.SKIPPED, updated_at=datetime.now(UTC))
        )
        conn.execute(  # its newest file applied landed 25 hours ago
            update(Load)
            .where(Load.status == LoadStatus.ARCHIVED)
            .values(s3_modified=datetime.now(UTC) - timedelta(hours=25))
        )
    (table,) = [
        t for t in make_client().get("/api/overview").json()["tables"] if t["name"] == TABLE
    ]
    assert table["state"] == "late" and table["expected_hours"] == 24
    assert 25 * 3600 <= table["age_seconds"] < 26 * 3600
    assert (table["backlog_files"], table["oldest_waiting_seconds"]) == (0, None)


def test_a_table_with_a_file_waiting_too_long_is_behind(
    world: WebWorld, make_client: Client
) -> None:
    """Fresh data, but a file has waited longer than FRESHNESS_BEHIND_MINUTES (30): the
    backlog, not the last success, makes it behind."""
    with get_engine().begin() as conn:
        conn.execute(
            update(Load)
            .where(Load.id == world.errored_id)
            .values(
                status=LoadStatus.READY,
                s3_modified=datetime.now(UTC) - timedelta(minutes=45),
                error=None,
                error_file=None,
                error_line=None,
                error_column=None,
                error_reason=None,
            )
        )
    (table,) = [
        t for t in make_client().get("/api/overview").json()["tables"] if t["name"] == TABLE
    ]
    assert table["state"] == "behind"
    assert table["backlog_files"] == 1 and table["backlog_bytes"] > 0
    assert 45 * 60 <= table["oldest_waiting_seconds"] < 46 * 60


_RUN_RESULTS = {
    "metadata": {"dbt_version": "1.11.16", "generated_at": "2026-12-01T13:34:57.825074Z"},
    "elapsed_time": 3.7,
    "args": {"which": "build"},
    "results": [
        {
            "unique_id": "model.data_platform.dim_date",
            "status": "success",
            "execution_time": 0.16,
            "failures": None,
            "message": "SELECT 30",
        },
        {
            "unique_id": "test.data_platform.unique_dim_date_date_id.1a",
            "status": "pass",
            "execution_time": 0.05,
            "failures": 0,
            "message": None,
        },
        {
            "unique_id": "test.data_platform.not_null_dim_date_date_id.2b",
            "status": "fail",
            "execution_time": 0.04,
            "failures": 3,
            "message": "Got 3 results, configured to fail if != 0",
        },
        {
            "unique_id": "test.data_platform.assert_top10_complete",
            "status": "warn",
            "execution_time": 0.09,
            "failures": 1,
            "message": "Got 1 result, configured to warn if != 0",
        },
    ],
}
_MANIFEST = {
    "nodes": {
        "test.data_platform.unique_dim_date_date_id.1a": {
            "name": "unique_dim_date_date_id",
            "test_metadata": {"name": "unique"},
            "column_name": "date_id",
            "attached_node": "model.data_platform.dim_date",
        },
        "test.data_platform.not_null_dim_date_date_id.2b": {
            "name": "not_null_dim_date_date_id",
            "test_metadata": {"name": "not_null"},
            "column_name": "date_id",
            "attached_node": "model.data_platform.dim_date",
        },
        "test.data_platform.assert_top10_complete": {
            "name": "assert_top10_complete",
            "test_metadata": None,
            "attached_node": None,
            "depends_on": {
                "nodes": ["model.data_platform.daily_totals", "model.data_platform.top10"]
            },
        },
    }
}


def test_a_table_waiting_on_a_schema_change_says_what_resolves_it(
    world: WebWorld, make_client: Client
) -> None:
    from sqlalchemy import insert, select

    from data_platform.db.models import SchemaChange, SourceTable
    from data_platform.loads.schema_changes import MARKER

    message = f"{world.bad_key}: {MARKER}TEST.SAMPLE differs from table x: A is new"
    with get_engine().begin() as conn:
        conn.execute(update(Load).where(Load.id == world.errored_id).values(error=message))
        table_id = conn.scalar(select(SourceTable.id).where(SourceTable.name == TABLE))
        conn.execute(
            insert(SchemaChange).values(
                table_id=table_id,
                revision="abc123",
                column_name="fare",
                change="widened",
                from_type="numeric(10,2)",
                to_type="numeric(12,4)",
                table_version=3,
            )
        )
    client = make_client()
    (row, *_) = _rows(client.get("/").text, "tables")
    command = "data-platform cubic-qlik evolve-table --table TEST.SAMPLE --apply"
    assert f"waiting on a schema change (1 load): {command}" in row
    page = client.get(f"/tables/{TABLE}").text
    assert f"<code>{command}</code> writes the reviewed revision" in page
    (change,) = _rows(page, "schema-changes")
    assert change.endswith("abc123 fare widened numeric(10,2) numeric(12,4) 3")


def test_a_table_waiting_on_a_schema_change_shows_the_command_then_its_history(
    web_platform, tmp_path: Path, make_client: Client
) -> None:
    from data_platform.batch.cubic_qlik.evolve import evolve_table
    from harness.samples.qlik import Column
    from tests.qlik.conftest import QlikWorld, seq

    qlik = QlikWorld(tmp_path / "evolve")
    assert web_platform.migrations_dir is not None
    qlik.versions = web_platform.migrations_dir / "cubic_qlik"
    fare = qlik.table(
        "FARES.FARE", [Column("FARE_ID", "INT4", key_pos=1), Column("NAME", "STRING", 5)]
    )
    fare.full_load([(1, "a")])
    fare.onboard()
    qlik.run()
    fare.changes([(seq(1), "U", "2024-03-01 10:00:00", 1, "a", "z1")],
                 columns=[*fare.columns, Column("ZONE", "STRING", 4)], table_version=2)  # fmt: skip
    qlik.run()
    client = make_client()
    overview = client.get("/api/overview").json()
    (table,) = [t for t in overview["tables"] if t["name"] == "cubic_ods_qlik__fares_fare"]
    assert table["schema_change_loads"] == 1
    assert table["evolve_command"] == (
        "data-platform cubic-qlik evolve-table --table FARES.FARE --apply"
    )
    assert (
        "data-platform cubic-qlik evolve-table --table FARES.FARE --apply" in client.get("/").text
    )
    result = evolve_table("FARES.FARE", apply=True, versions_dir=qlik.versions)
    qlik.run()
    page = client.get("/api/tables/cubic_ods_qlik__fares_fare").json()
    assert [(c["column"], c["change"]) for c in page["schema_changes"]] == [("zone", "added")]
    assert result.revision in {r["revision"] for r in page["revisions"]}


def test_dead_letters_are_counted_on_the_overview_and_listed_on_their_load(
    web_platform, make_client: Client
) -> None:
    from data_platform.run import run_once
    from tests.kafka.test_load import _land, _tap

    key = _land(
        0,
        0,
        [_tap(0), _tap(1, tapId="<b>x</b>\u0000"), _tap(2, fare=2**40), "not json", _tap(4)],
    )
    assert run_once().source("cubic_kafka").ingest.archived == 1
    with get_engine().connect() as conn:
        load_id = conn.scalar(select(Load.id).where(Load.s3_key == key))
    client = make_client()
    overview = client.get("/").text
    (taps,) = [row for row in _rows(overview, "tables") if "cubic_kafka__taps" in row]
    assert "3 dead letters" in taps
    assert f'href="/loads/{load_id}#dead-letters"' in overview
    api = client.get("/api/overview").json()
    (summary,) = [t for t in api["tables"] if t["name"] == "cubic_kafka__taps"]
    assert (summary["dead_letters"], summary["latest_dead_letter_load_id"]) == (3, load_id)
    table = client.get("/tables/cubic_kafka__taps").text
    assert "3 records that are not rows" in table
    page = client.get(f"/loads/{load_id}").text
    listed = _rows(page, "dead-letter-rows")
    assert [row.split()[:3] for row in listed] == [
        ["2", "taps", "/"],
        ["3", "taps", "/"],
        ["4", "taps", "/"],
    ]
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page  # escaped
    detail = client.get(f"/api/loads/{load_id}").json()
    assert detail["dead_letter_count"] == 3
    assert [(d["record_key"], d["field"]) for d in detail["dead_letters"]] == [
        (["taps", 0, 1], "tapId"),
        (["taps", 0, 2], "fare"),
        (["taps", 0, 3], "value"),
    ]
    assert "out of range for type integer" in detail["dead_letters"][1]["reason"]


def test_verifications_are_shown_mismatches_first_their_keys_escaped(
    web_platform, make_client: Client
) -> None:
    from data_platform.loads.verify import Verification, record

    raw = get_engine().raw_connection()
    try:
        with raw.cursor() as cur:
            record(
                cur,
                Verification("cubic_dmap", "dataset_rows", "cubic_dmap.a", expected=5, actual=5),
            )
            record(
                cur,
                Verification(
                    "cubic_qlik",
                    "snapshot_drift",
                    "cubic_ods_qlik.b",
                    differing=2,
                    keys=[
                        {"key": ["<script>x</script>"], "kind": "extra"},
                        {"key": [7], "kind": "missing"},
                    ],
                    expected=10,
                    actual=11,
                ),
            )
        raw.commit()
    finally:
        raw.close()
    client = make_client()
    html = client.get("/").text
    assert _rows(html, "verifications")[0].endswith(
        "mismatch snapshot_drift cubic_ods_qlik.b 10 / 11 2 "
        "extra &lt;script&gt;x&lt;/script&gt;; missing 7"
    )
    assert _rows(html, "verifications")[1].endswith("ok dataset_rows cubic_dmap.a 5 / 5 0")
    assert "<script>x</script>" not in html
    data = client.get("/api/overview").json()
    assert [v["verdict"] for v in data["verifications"]] == ["mismatch", "ok"]
