"""Many readers at once (issue 26 item 8): 200 concurrent loopback clients on the overview,
its API and a table's page while a `run` pass works, against `data-platform web` as its
own process: every one answered, none with an error, and the pass unharmed. The latency
figure (p95) is `make bench`'s, not a timed test's."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from fastapi.testclient import TestClient

from data_platform.cli.main import cli
from data_platform.settings import get_settings, reset_settings
from tests.web.conftest import TABLE, WebWorld, seq
from tests.web.test_browser import _serve

CLIENTS = 200
PATHS = ("/", "/api/overview", f"/tables/{TABLE}", "/runs", "/metrics")


def _read(base: str, start: threading.Barrier, i: int) -> tuple[int, float, str]:
    """One client: all start at once; (status, seconds, the body's start or the error)."""
    start.wait()
    began = time.monotonic()
    try:
        response = requests.get(base + PATHS[i % len(PATHS)], timeout=60)
        return response.status_code, time.monotonic() - began, response.text[:200]
    except requests.RequestException as exc:
        return -1, time.monotonic() - began, str(exc)


@pytest.mark.slow
def test_two_hundred_readers_during_a_run(world: WebWorld, tmp_path: Path) -> None:
    world.fix_bad_file()
    assert CliRunner().invoke(cli, ["retry", str(world.errored_id)]).exit_code == 0
    for n in range(3):  # work for the pass: three change files
        world.sample.changes(
            [(seq(10 + n), "I", "2021-12-01 11:20:30", 10 + n, "x", "2021-12-01 11:20:30")],
            name=f"20211202-00000000{n}",
        )
    for base in _serve(tmp_path):
        start = threading.Barrier(CLIENTS)
        ran = subprocess.Popen(
            [sys.executable, "-m", "data_platform.cli.main", "run", "--no-transform"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(functools.partial(_read, base, start), range(CLIENTS)))
        output, _ = ran.communicate(timeout=120)
        failed = [(code, body) for code, _, body in answers if code != 200]
        assert failed == [], f"{len(failed)} of {CLIENTS} failed; first: {failed[:3]}"
        assert ran.returncode == 0, output
        assert "archived 4 (0 superseded), errored 0" in output


def test_the_page_computes_its_overview_before_the_first_reader(
    web_platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started, the page has its overview's imports, Alembic heads and first connection
    behind it: 200 readers just after a start do not all wait for them."""
    from data_platform.web import queries
    from data_platform.web.app import create_app

    real, calls = queries.overview, []
    monkeypatch.setattr(queries, "overview", lambda s: calls.append(1) or real(s))
    with TestClient(create_app(get_settings())) as client:
        assert calls == [1]
        assert client.get("/api/overview").status_code == 200


def test_the_page_starts_with_its_database_down(
    web_platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from data_platform.web.app import create_app

    monkeypatch.setenv("DATABASE_URL", "postgresql://ops:s3cret-pw@127.0.0.1:1/nowhere")
    reset_settings()
    try:
        with TestClient(create_app(get_settings()), raise_server_exceptions=False) as client:
            assert client.get("/healthz").status_code == 503
            page = client.get("/api/overview")
            assert page.status_code == 503 and "Connection refused" in page.text, page.text
    finally:
        reset_settings()
    warned = [r.getMessage() for r in caplog.records if "started without" in r.getMessage()]
    assert len(warned) == 1 and "Connection refused" in warned[0], warned


def test_the_warm_up_logs_no_secret_and_waits_a_bounded_time(
    web_platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from data_platform.web import app as web_app
    from data_platform.web import queries

    def leaky(settings):
        raise RuntimeError("cannot reach postgresql://ops:s3cret-pw@db.internal/x")

    monkeypatch.setattr(queries, "overview", leaky)
    with TestClient(web_app.create_app(get_settings())):
        pass
    (warned,) = [r.getMessage() for r in caplog.records if "started without" in r.getMessage()]
    assert "db.internal" in warned and "s3cret" not in warned, warned

    def hung(settings):  # a database host that drops packets: no answer, no error
        time.sleep(3)

    monkeypatch.setattr(queries, "overview", hung)
    monkeypatch.setattr(web_app, "WARM_UP_SECONDS", 0.2)
    began = time.monotonic()
    with TestClient(web_app.create_app(get_settings())):
        assert time.monotonic() - began < 2
    assert any("started before its overview" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("fails", [False, True])
def test_readers_asking_at_once_share_one_computation(fails: bool) -> None:
    """The callers that ask while a computation runs get its answer (or its error); the
    next caller after it ends computes anew."""
    from data_platform.web.shared import SingleFlight

    flights, started, release = SingleFlight(), threading.Event(), threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        started.set()
        release.wait(10)
        if fails:
            raise RuntimeError("the database went away")
        return len(calls)

    entered = threading.Semaphore(0)

    def ask() -> object:
        entered.release()
        try:
            return flights.run("overview", compute)
        except RuntimeError as exc:
            return str(exc)

    with ThreadPoolExecutor(20) as pool:
        first = pool.submit(ask)
        started.wait(10)
        others = [pool.submit(ask) for _ in range(19)]
        for _ in range(20):
            assert entered.acquire(timeout=10)
        time.sleep(0.2)  # from asking to waiting on the first one's computation
        release.set()
        answers = {first.result(), *(f.result() for f in others)}
    assert calls == [1]
    assert answers == ({"the database went away"} if fails else {1})
    release.set()
    assert ask() == ("the database went away" if fails else 2)  # after it: computed anew
