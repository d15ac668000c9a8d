"""The embedded server asked for by many threads of a new process at once (the page's
first readers of a new worker process): each gets the URL, none an error. pgserver alone
is not safe for threads: some saw a server half set up (AssertionError, HTTP 500)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROBE = """
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from data_platform.db.embedded import server_url

home = Path(sys.argv[1])
with ThreadPoolExecutor(32) as pool:
    urls = list(pool.map(lambda _: server_url(home), range(32)))
assert len(set(urls)) == 1, urls
print("ok", len(urls))
"""


@pytest.mark.slow
def test_many_threads_of_a_new_process_get_one_server() -> None:
    from data_platform.db.embedded import stop

    home = Path(tempfile.mkdtemp(prefix="dp-test-threads-"))
    try:
        for _ in range(2):  # a new cluster, then the running one from a new process
            done = subprocess.run(
                [sys.executable, "-c", PROBE, str(home)],
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            assert done.stdout.strip() == "ok 32"
    finally:
        stop(home)


def test_a_new_empty_home_names_where_the_projects_data_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Run from elsewhere, a command starts a new, empty home: it says so, and names the
    checkout's data when there is some (issue 26, first contact)."""
    from data_platform.db.embedded import warn_new_home

    checkout = tmp_path / "project" / ".data"
    (checkout / "postgres").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / ".data"
    warn_new_home(elsewhere, checkout)
    warn_new_home(elsewhere, tmp_path / "no-project" / ".data")
    first, second = (r.getMessage() for r in caplog.records)
    assert first == (
        f"no embedded database in {elsewhere} yet: creating a new, empty one (set "
        f"DATA_PLATFORM_HOME, or run from {checkout.parent}, whose data is in {checkout}, to "
        "use an existing one)"
    )
    assert second.endswith("(set DATA_PLATFORM_HOME, or run from the project's directory, to "
                           "use an existing one)")  # fmt: skip
