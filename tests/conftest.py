"""Shared fixtures: a real PostgreSQL, a real S3 endpoint (moto server), isolated settings.

PostgreSQL: TEST_DATABASE_URL when set, else an embedded server (pgserver) started for the
test session. Every test that touches the database gets its own database, created from a
migrated template (fast: a file copy inside Postgres).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy.engine import make_url

from data_platform.settings import ZONES, Settings, get_settings, reset_settings
from tests.demo_world import DemoWorld, make_demo
from tests.shared import isolate, once_per_run

REPO = Path(__file__).resolve().parent.parent


def _admin_connect(url: str):
    parsed = make_url(url)
    conn = psycopg2.connect(
        dbname=parsed.database or "postgres",
        user=parsed.username,
        password=parsed.password,
        host=parsed.host or parsed.query.get("host"),
        port=parsed.port,
    )
    conn.autocommit = True
    return conn


def _start_cluster(folder: Path) -> dict[str, str | None]:
    """The test run's PostgreSQL: TEST_DATABASE_URL, or an embedded cluster in a folder of
    its own (outside pytest's temporary root, which a pytest started by a test makes
    private again, and the server may run as another user)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return {"url": make_url(url).set(drivername="postgresql+psycopg2").render_as_string(False),
                "home": None}  # fmt: skip
    from data_platform.db.embedded import server_url

    home = Path(tempfile.mkdtemp(prefix="dp-test-pg-"))
    url = server_url(home)
    # A cluster thrown away after the run: nothing it writes needs to survive a crash,
    # so no fsync and no full pages in the WAL (every test creates and drops a database).
    conn = _admin_connect(url)
    with conn.cursor() as cur:
        for setting in ("fsync", "full_page_writes"):
            cur.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    return {"url": url, "home": str(home)}


def _make_template(pg_admin_url: str) -> dict[str, str]:
    """A database migrated to head, which each test's database copies."""
    from data_platform.db import migrations

    name = f"dp_test_template_{uuid.uuid4().hex[:12]}"
    conn = _admin_connect(pg_admin_url)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    url = make_url(pg_admin_url).set(database=name).render_as_string(False)
    migrations.upgrade("head", migrations.alembic_config(url))
    return {"name": name}


@pytest.fixture(scope="session")
def pg_admin_url(request: pytest.FixtureRequest) -> str:
    """URL of a database on the test server we may create databases from: one server for
    the whole run, shared by its xdist workers (stopped in pytest_sessionfinish)."""
    _, facts = once_per_run(request, "postgres", _start_cluster)
    return facts["url"]


@pytest.fixture(scope="session")
def template_db(request: pytest.FixtureRequest, pg_admin_url: str) -> str:
    """The migrated template, made once per run (Alembic to head takes seconds)."""
    _, facts = once_per_run(request, "template", lambda _folder: _make_template(pg_admin_url))
    return facts["name"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """After the last worker: drop the template and stop the embedded cluster. (The
    controller's temporary folder is the run folder the workers share.)"""
    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or factory._basetemp is None:  # no test asked for a folder
        return
    run = factory.getbasetemp()
    postgres = run / "postgres.json"
    if not postgres.is_file():
        return
    facts = json.loads(postgres.read_text())
    template = run / "template.json"
    if template.is_file():
        _drop_database(facts["url"], make_url(facts["url"]).set(
            database=json.loads(template.read_text())["name"]).render_as_string(False))  # fmt: skip
    if facts["home"]:
        from data_platform.db.embedded import stop

        stop(Path(facts["home"]))
        shutil.rmtree(facts["home"], ignore_errors=True)


def _create_database(pg_admin_url: str, template: str | None) -> str:
    name = f"dp_test_{uuid.uuid4().hex[:12]}"
    conn = _admin_connect(pg_admin_url)
    with conn.cursor() as cur:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        cur.execute(query)
        # A commit does not wait for the WAL to reach the disk: the test sees the same
        # data, sooner (a crash could lose the last commits of a database thrown away).
        cur.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
            sql.Identifier(name)))  # fmt: skip
    conn.close()
    return make_url(pg_admin_url).set(database=name).render_as_string(False)


def _drop_database(pg_admin_url: str, url: str) -> None:
    from data_platform.db.engine import reset_engine

    reset_engine()
    conn = _admin_connect(pg_admin_url)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(make_url(url).database)
            )
        )
    conn.close()


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """A new database with no migrations applied."""
    url = _create_database(pg_admin_url, None)
    yield url
    _drop_database(pg_admin_url, url)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A new database migrated to head, dropped after the test."""
    url = _create_database(pg_admin_url, template_db)
    yield url
    _drop_database(pg_admin_url, url)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No developer .env or environment leaks into a test; the data home is per test."""
    work = tmp_path / "work"
    work.mkdir()
    isolate(monkeypatch, tmp_path / "home", work)
    # A CLI test configures logging (data_platform.log.configure): the next test starts
    # with the root logger as it was, not with that test's handlers and level.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    reset_settings()


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Settings:
    """Settings for a platform on a migrated test database and the local object store."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    # Starlette's test client asks for Host `testserver`; the page answers only the
    # hosts it is told of.
    monkeypatch.setenv("WEB_ALLOWED_HOSTS", "localhost,127.0.0.1,::1,testserver")
    reset_settings()
    return get_settings()


@pytest.fixture(scope="session")
def demo_world(request: pytest.FixtureRequest) -> DemoWorld:
    """The demo, run twice (`demo -v`, then `demo`) once for the whole test run, on a
    data home of its own: what tests/demo_world.py keeps of it."""
    folder, facts = once_per_run(request, "demo", make_demo)
    return DemoWorld(folder, facts["runs"], facts["tables"])


# --- S3 through a real HTTP endpoint -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    # The server runs in this process; its request log would mix with the CLI's stderr.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> dict[str, str]:
    """Zone buckets, new for this test, on the moto server; settings point at them."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("S3_ENDPOINT_URL", moto_endpoint)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    run = uuid.uuid4().hex[:8]
    buckets = {}
    for zone in ZONES:
        bucket = f"dp-{zone}-{run}"
        client.create_bucket(Bucket=bucket)
        monkeypatch.setenv(f"S3_BUCKET_{zone.upper()}", bucket)
        buckets[zone] = bucket
    # One prefix, so zone prefixes are exercised too.
    monkeypatch.setenv("S3_BUCKET_PREFIX_INCOMING", "dev/incoming/")
    reset_settings()
    return buckets


@pytest.fixture(params=["local", "s3"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    """Run a test once on the local directory store and once on S3 (moto server)."""
    if request.param == "s3":
        request.getfixturevalue("s3_env")
    return request.param


def assert_ruff_clean(path: Path, as_if: str) -> None:
    """`ruff check` and `ruff format --check` pass on `path` as written, with the project's
    configuration, as if it lay at `as_if` (a path in the repository, e.g.
    migrations/cubic_qlik/x.py): how a generated revision is judged once committed."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    source = path.read_text()
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", as_if, "-"],
            input=source,
            cwd=repo,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"ruff {' '.join(command)}: {done.stdout}{done.stderr}"


# --- Spark ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local SparkSession (one JVM) per test process, for every test that runs Spark:
    the job tests and the Qlik ingest's hand-off to the job (tests/qlik/test_springboard.py)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("data_platform-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    # Failed casts are expected in tests; Spark would log each task's stack trace.
    session.sparkContext.setLogLevel("FATAL")
    yield session
    session.stop()
