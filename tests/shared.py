"""What several tests read, made once per test run, however many xdist workers run it.

`once_per_run` is pytest-xdist's recipe for a session-scoped resource shared by the
workers (https://pytest-xdist.readthedocs.io, "Making session-scoped fixtures execute
only once"): the first worker to need it makes it under an inter-process lock, in the
folder all workers' temporary folders share, and writes what the tests read to a JSON
file; the others read that file. Without xdist it is made in the session's own folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fasteners  # pgserver's inter-process lock (pinned in requirements.txt)
import pytest

# The prefixes of the platform's settings: none of the developer's leaks into a test.
ENV_PREFIXES = (
    "ALERT_",
    "DATABASE_",
    "KAFKA_",
    "OPEN_DATA_",
    "TOTESYS_",
    "S3_",
    "DATA_PLATFORM_",
    "SPRINGBOARD_",
    "LOG_",
    "GLUE_",
    "CUBIC_",
    "MIGRATIONS_",
    "FRESHNESS_",
    "WEB_",
)


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path, work: Path) -> None:
    """No developer .env or environment: the platform's settings unset (TEST_DATABASE_URL
    kept), the data home `home`, the working directory `work` (which must exist)."""
    from data_platform.settings import reset_settings

    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES) and name != "TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(work)
    monkeypatch.setenv("DATA_PLATFORM_HOME", str(home))
    reset_settings()


def platform_command(home: Path, *args: str) -> str:
    """`python -m data_platform *args` on data home `home` (no other setting); its stdout.

    For the embedded server of a data home the tests share or started in this process:
    pgserver keeps one handle per process (a stopped server's, once stopped), and a new
    handle makes the folders above the data home traversable for the server's user again
    (as root, pgserver runs the server as another user; a pytest starting meanwhile makes
    its temporary root private again)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    done = subprocess.run(
        [sys.executable, "-m", "data_platform", *args],
        env={**env, "DATA_PLATFORM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_folder(request: pytest.FixtureRequest) -> Path:
    """The folder of this test run: shared by its xdist workers, else the session's own.
    (A worker has `workerinput`; PYTEST_XDIST_WORKER would also be set in a pytest that
    a test runs in a subprocess.)"""
    base = request.getfixturevalue("tmp_path_factory").getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base


@contextmanager
def held(folder: Path) -> Iterator[None]:
    """The lock of `folder`'s resource, held by one process of the test run at a time."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = fasteners.InterProcessLock(str(folder) + ".lock")
    with lock:
        yield


def once_per_run(
    request: pytest.FixtureRequest, name: str, make: Callable[[Path], Any]
) -> tuple[Path, Any]:
    """(folder, facts): `make(folder)` ran once in this test run, in `folder` (named
    `name`), and returned `facts` (JSON: tuples come back as lists). When it raised, the
    next caller makes it again, in an empty folder."""
    folder = run_folder(request) / name
    facts_file = folder.with_suffix(".json")
    with held(folder):
        if facts_file.is_file():
            return folder, json.loads(facts_file.read_text())
        shutil.rmtree(folder, ignore_errors=True)  # what an earlier make left when it failed
        folder.mkdir()
        facts = make(folder)
        facts_file.write_text(json.dumps(facts))
    return folder, json.loads(facts_file.read_text())
