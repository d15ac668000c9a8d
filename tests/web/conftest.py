"""A small platform for the operations page: a Qlik table with an archived full load and an
errored change file (its error names file, line and column, and holds HTML), the migration
history in a temporary MIGRATIONS_DIR (so the page finds the table's revision), a table
with a hostile name, and helpers to get the page's CSRF token and log in."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadStatus, SourceTable
from data_platform.settings import Settings, get_settings, reset_settings
from tests.db.sources import allow_any_source
from tests.qlik.conftest import SAMPLE_COLUMNS, QlikTable, QlikWorld, seq

REPO = Path(__file__).resolve().parents[2]
T = "2021-12-01 11:20:30"
TABLE = "cubic_ods_qlik__test_sample"
# A value the loader cannot cast: the error quotes it, HTML and all.
HOSTILE_VALUE = '<script>alert("x")</script>'
HOSTILE_TABLE = "evil<b>\"table'</b>&<script>alert(1)</script>"
HOSTILE_ERROR = "<script>alert('error')</script> & <img src=x onerror=alert(2)>"
TOKEN = "web-test-token-0123456789"
USER, PASSWORD = "ops", "web-test-password-9876"


@dataclass
class WebWorld:
    qlik: QlikWorld
    sample: QlikTable
    bad_key: str
    errored_id: int

    def fix_bad_file(self) -> None:
        """Put a fixed version of the bad change file back in incoming (same key)."""
        name = self.bad_key.rsplit("/", 1)[-1].split(".")[0]
        self.sample.changes([(seq(1), "I", T, 3, "three", T)], name=name)

    def status(self, load_id: int) -> str:
        with get_engine().connect() as conn:
            return conn.scalar(select(Load.status).where(Load.id == load_id))


@pytest.fixture
def web_platform(platform: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The platform with its source revisions in a temporary MIGRATIONS_DIR (a copy of the
    checkout's), where onboarding writes too."""
    migrations = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", migrations)
    monkeypatch.setenv("MIGRATIONS_DIR", str(migrations))
    reset_settings()
    return get_settings()


@pytest.fixture
def world(web_platform: Settings, tmp_path: Path) -> WebWorld:
    """TEST.SAMPLE with two rows applied, then a change file that errors on line 2,
    column SAMPLE_ID (the value is HTML)."""
    qlik = QlikWorld(tmp_path / "qlik")
    assert web_platform.migrations_dir is not None
    qlik.versions = web_platform.migrations_dir / "cubic_qlik"
    sample = qlik.table("TEST.SAMPLE", SAMPLE_COLUMNS)
    sample.full_load([(1, "one", T), (2, "two", T)])
    sample.onboard()
    qlik.run()
    bad = sample.changes([(seq(1), "I", T, HOSTILE_VALUE, "bad", T)], name="20211201-000000001")
    run = qlik.run()
    assert run.ingest.errored == 1, run.render_lines()
    return WebWorld(qlik, sample, bad, qlik.load_ids()[bad])


@pytest.fixture
def hostile(web_platform: Settings) -> tuple[str, int]:
    """A table named with HTML and quotes, whose errored load's error is HTML; inactive,
    of a source the platform does not run (so no scan touches it). Its source name, HTML
    too, is one the database refuses since revision 0017: the pages still escape it."""
    with get_engine().begin() as conn:
        assert allow_any_source(conn)
        table_id = conn.scalar(
            insert(SourceTable)
            .values(
                name=HOSTILE_TABLE,
                source="hostile<i>source</i>",
                s3_prefix="hostile/<b>prefix</b>/",
                is_active=False,
            )
            .returning(SourceTable.id)
        )
        load_id = conn.scalar(
            insert(Load)
            .values(
                table_id=table_id,
                status=LoadStatus.ERRORED,
                s3_key="hostile/<b>prefix</b>/file\"'.csv",
                s3_modified=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                s3_size=1234567,
                error=HOSTILE_ERROR,
            )
            .returning(Load.id)
        )
    return HOSTILE_TABLE, load_id


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token and a user with a password."""
    monkeypatch.setenv("WEB_TOKEN", TOKEN)
    monkeypatch.setenv("WEB_USER", USER)
    monkeypatch.setenv("WEB_PASSWORD", PASSWORD)
    reset_settings()


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """`make_client(allow_actions=False)`: a TestClient on a new app, on the settings as
    they are now."""
    from data_platform.web.app import create_app

    clients: list[TestClient] = []

    def make(allow_actions: bool = False, **kwargs: object) -> TestClient:
        client = TestClient(create_app(get_settings(), allow_actions=allow_actions), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


BEARER = {"Authorization": f"Bearer {TOKEN}"}

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def log_in(client: TestClient, token: str = TOKEN) -> None:
    """Log in through the form, as a browser does."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


# --- the browser tests (test_browser.py, test_accessibility.py) ------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    root = Path(os.environ.get("TEST_ARTIFACTS_DIR") or REPO / "tests" / "artifacts")
    folder = root / "web"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
            "(`make install` as root installs it; else `sudo apt-get install chromium`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()
