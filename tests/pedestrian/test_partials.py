"""No temporary file left behind: a writer killed mid-write leaves a `.dp-partial` file in a
counts window's folder, which no later write may ever visit; the next fetch removes it,
whatever its age, but never the file of a writer that is still writing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from data_platform.batch.melbourne_pedestrian.fetch import fetch_pedestrian
from data_platform.batch.melbourne_pedestrian.naming import COUNTS, counts_key, dataset_prefix
from data_platform.settings import Settings
from data_platform.storage.local import STALE_PARTIAL_SECONDS
from harness.samples import pedestrian as sample
from tests.pedestrian.conftest import COUNTS_PATH, NOW, landed_keys, mark

REPO = Path(__file__).resolve().parents[2]
# A writer of the source's prefix, as the fetch's put is: the body streamed from a URL
# into an incoming key through the storage layer.
WRITER = textwrap.dedent(
    """
    import sys, urllib.request
    from data_platform.storage import get_zone
    get_zone("incoming").put(sys.argv[2], urllib.request.urlopen(sys.argv[1]))
    """
)


@pytest.fixture
def stall(api: HTTPServer) -> Iterator[tuple[str, threading.Event]]:
    """`/stall` on the server: sends some bytes, then nothing until the event is set."""
    release = threading.Event()

    def handler(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b"location_id;sensing_date\r\n" * 1000
            release.wait(60)

        return Response(body(), mimetype="text/csv")

    api.expect_request("/stall").respond_with_handler(handler)
    yield f"http://{api.host}:{api.port}/stall", release
    release.set()


def _incoming(settings: Settings) -> Path:
    return settings.home / "storage" / "incoming"


def _partials(settings: Settings) -> set[Path]:
    return set(_incoming(settings).rglob("*.dp-partial"))


def _start_writer(settings: Settings, url: str, key: str) -> tuple[subprocess.Popen, Path]:
    """A writer process stalled in its put; returns it and its partial file."""
    before = _partials(settings)
    env = {**os.environ, "DATA_PLATFORM_HOME": str(settings.home), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, key], env=env)
    deadline = time.monotonic() + 30
    while not (new := _partials(settings) - before):
        assert proc.poll() is None, "the writer ended"
        assert time.monotonic() < deadline, "the writer never started its put"
        time.sleep(0.05)
    (partial,) = new
    assert partial.name.startswith(f".{proc.pid}-")  # the writer is named in it
    return proc, partial


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def test_the_next_fetch_removes_a_killed_writers_file_but_not_a_live_ones(
    portal: Settings, stall: tuple[str, threading.Event]
) -> None:
    url, _ = stall
    window = (date(2026, 8, 1), date(2026, 8, 3))  # a folder no later fetch writes into
    killed, left = _start_writer(portal, url, counts_key(*window, NOW - timedelta(days=30)))
    _kill(killed)
    assert left.exists()
    # Another window's folder: a writer's first put into a folder cleans it too.
    other = (date(2026, 8, 5), date(2026, 8, 7))
    live, writing = _start_writer(portal, url, counts_key(*other, NOW - timedelta(days=29)))
    # Files whose writer cannot be checked (no pid in the name): by their age only.
    folder = left.parent
    fresh, stale = folder / ".legacy1.dp-partial", folder / ".legacy2.dp-partial"
    fresh.write_bytes(b"maybe being written")
    stale.write_bytes(b"old")
    old = time.time() - STALE_PARTIAL_SECONDS - 10
    os.utime(stale, (old, old))
    try:
        result = fetch_pedestrian()
        assert not result.failed, result.errors
        assert result.partials_removed == 2
        assert "  removed 2 temporary file(s) of killed fetches" in result.render()
        assert _partials(portal) == {writing, fresh}  # the live writer's file, and fresh
        assert live.poll() is None
        _kill(live)
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    again = fetch_pedestrian()
    assert again.partials_removed == 1
    assert _partials(portal) == {fresh}
    assert landed_keys(f"{dataset_prefix(COUNTS)}from=2026-08-01") == []


# The window of the rows the stalled server sends (the fetch process has the real clock).
WINDOW = ("--since", "2026-09-01", "--until", "2026-09-02")


def test_a_fetch_killed_mid_download_lands_nothing_and_leaves_nothing(
    portal: Settings, api: HTTPServer, stall: tuple[str, threading.Event], tmp_path: Path
) -> None:
    # The fetch spools a download to an unlinked temporary file and puts it in incoming
    # only when whole and checked: killed mid-download, it leaves nothing there.
    _, release = stall
    sent = threading.Event()

    def stalled_counts(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield sample.export_bytes(COUNTS, date(2026, 9, 1), date(2026, 9, 2))
            sent.set()
            release.wait(60)

        return Response(body(), mimetype="text/csv")

    api.expect_oneshot_request(COUNTS_PATH).respond_with_handler(stalled_counts)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    work = tmp_path / "sub"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "data_platform", "pedestrian", "fetch", *WINDOW],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sent.wait(60), "the fetch never asked for the counts"
        time.sleep(0.2)
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert landed_keys(dataset_prefix(COUNTS)) == [] and mark() is None
    assert _partials(portal) == set()
    result = fetch_pedestrian()
    assert not result.failed and result.new_day is True
    assert _partials(portal) == set()
