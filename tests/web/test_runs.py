"""Every pass of `run` is recorded (issue 26 item 2; issue 25's pass durations): from the
CLI, `--json`, the page's Run; the runs list and a run's page show it, /metrics gives
the durations, secrets never reach the record, and old passes go."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text, update

from data_platform import runs
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import Run
from data_platform.errors import StorageError
from tests.web.conftest import BEARER, TABLE, WebWorld

Client = Callable[..., TestClient]


def _runs() -> list[dict]:
    with get_engine().connect() as conn:
        return [dict(r) for r in conn.execute(select(Run.__table__).order_by(Run.id)).mappings()]


def test_a_pass_from_the_command_line_is_recorded(world: WebWorld, make_client: Client) -> None:
    world.fix_bad_file()
    CliRunner().invoke(cli, ["retry", str(world.errored_id)])
    done = CliRunner().invoke(cli, ["run", "--no-transform"])
    assert done.exit_code == 0, done.output
    (run,) = _runs()
    assert (run["trigger"], run["status"], run["exit_code"]) == ("cli", "ok", 0)
    assert (run["recorded"], run["archived"], run["errored"], run["rows"]) == (0, 1, 0, 1)
    assert run["seconds"] > 0 and run["finished_at"] is not None
    assert run["output"] == done.stdout.rstrip("\n")
    assert f"table={TABLE}" in run["log"]  # the worker's lines, with their ids
    assert run["summary"]["sources"]["cubic_qlik"]["ingest"]["archived"] == 1
    page = make_client().get("/runs")
    assert page.status_code == 200
    assert f'<a href="/runs/{run["id"]}">{run["id"]}</a>' in page.text
    detail = make_client().get(f"/runs/{run['id']}")
    assert "archived 1" in detail.text and f"table={TABLE}" in detail.text
    api = make_client().get(f"/api/runs/{run['id']}").json()
    assert (api["status"], api["archived"], api["output"]) == ("ok", 1, run["output"])
    assert make_client().get("/runs/999999").status_code == 404


def test_a_failed_pass_and_json(world: WebWorld) -> None:
    """A pass that errors a load ends `failed` with exit 1; `--json` carries the pass's
    id and what it verified beside the sources."""
    CliRunner().invoke(cli, ["retry", str(world.errored_id)])  # not fixed: it errors again
    done = CliRunner().invoke(cli, ["run", "--json", "--no-transform"])
    assert done.exit_code == 1
    printed = json.loads(done.stdout)
    (run,) = _runs()
    assert printed["run"]["id"] == run["id"] and printed["run"]["exit_code"] == 1
    assert printed["cubic_qlik"]["ingest"]["errored"] == 1
    assert "verify" in printed and "late" in printed
    assert (run["status"], run["exit_code"], run["errored"]) == ("failed", 1, 1)
    assert "line 2, column SAMPLE_ID" in run["output"]


def test_a_pass_that_stops_is_recorded_with_its_cause(world: WebWorld, monkeypatch) -> None:
    from data_platform import run as run_module

    def broken(*args, **kwargs):
        raise StorageError("the store is down: https://user:s3cret@store.example/x")

    monkeypatch.setattr(run_module, "run_once", broken)
    done = CliRunner().invoke(cli, ["run"])
    assert done.exit_code == 4
    (run,) = _runs()
    assert (run["status"], run["exit_code"]) == ("stopped", 4)
    assert "Error: the store is down" in run["output"]
    assert "s3cret" not in run["output"] and "s3cret" not in run["log"]


def test_the_page_s_run_is_recorded_with_who_and_which_table(
    world: WebWorld, credentials: None, make_client: Client
) -> None:
    client = make_client(allow_actions=True)
    world.fix_bad_file()
    client.post(f"/api/loads/{world.errored_id}/retry", headers=BEARER)
    ran = client.post("/api/tables/TEST.SAMPLE/run", headers=BEARER).json()
    assert ran["ok"] is True
    (run,) = _runs()
    assert (run["trigger"], run["actor"], run["subject"]) == ("web", "web:token", TABLE)
    assert (run["status"], run["archived"]) == ("ok", 1)
    listed = client.get("/api/runs", headers=BEARER).json()
    assert [r["id"] for r in listed["runs"]] == [run["id"]] and listed["older"] is None


def test_durations_in_metrics_and_old_passes_go(world: WebWorld, make_client: Client) -> None:
    for _ in range(3):
        runs.begin("cli").finish(exit_code=0)
    runs.begin("watch").finish(exit_code=1)
    killed = runs.begin("watch")  # never finished: running, or killed
    assert killed.id is not None
    logging.getLogger("data_platform").removeHandler(killed.capture)
    body = make_client().get("/metrics").text
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    assert got[("data_platform_runs", (("status", "ok"), ("trigger", "cli")))] == 3
    assert got[("data_platform_runs", (("status", "running"), ("trigger", "watch")))] == 1
    assert got[("data_platform_run_seconds_count", (("trigger", "cli"),))] == 3
    assert got[("data_platform_run_seconds_count", (("trigger", "watch"),))] == 1
    assert got[("data_platform_run_seconds_sum", (("trigger", "cli"),))] >= 0
    assert ("data_platform_run_last_seconds", (("trigger", "watch"),)) in got
    with get_engine().begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.trigger == "cli")
            .values(started_at=text("now() - interval '31 days'"))
        )
    runs.begin("cli").finish(exit_code=0)  # RUNS_KEEP_DAYS is 30
    assert [(r["trigger"], r["status"]) for r in _runs()] == [
        ("watch", "failed"),
        ("watch", "running"),
        ("cli", "ok"),
    ]


def test_the_log_kept_is_the_pass_s_own_thread(world: WebWorld) -> None:
    import threading

    record = runs.begin("cli")
    logging.getLogger("data_platform.test").warning("in the pass")
    other = threading.Thread(
        target=lambda: logging.getLogger("data_platform.test").warning("another request")
    )
    other.start()
    other.join()
    record.finish(exit_code=0)
    (run,) = _runs()
    assert "in the pass" in run["log"] and "another request" not in run["log"]
