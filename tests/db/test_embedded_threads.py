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
