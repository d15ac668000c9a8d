"""End to end in a real browser: `data-platform web` started as its own process on the test
database, Debian's Chromium (/usr/bin/chromium, headless) driven by Playwright, never a
browser Playwright downloads. An operator logs in, sees the failed table first, follows
its error to the load (file, line, column), retries it and runs the pass, and sees the
load archived: the issue's "three clicks".

Screenshots go to $TEST_ARTIFACTS_DIR/web (default tests/artifacts/web, git-ignored). No
Chromium is a failure, never a skip: `make install` installs it (as root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.web_server import web_server
from tests.web.conftest import TABLE, TOKEN, WebWorld

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _serve(tmp_path: Path, *args: str) -> Iterator[str]:
    """`data-platform web` in a subprocess on this test's settings; its base URL."""
    with (tmp_path / "web.log").open("w") as log:
        try:
            with web_server(*args, env=dict(os.environ), cwd=Path.cwd(), output=log) as base:
                yield base
        except RuntimeError as exc:
            log.flush()
            pytest.fail(f"{exc}:\n{(tmp_path / 'web.log').read_text()}")


@pytest.fixture
def server(
    world: WebWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, WebWorld]]:
    monkeypatch.setenv("WEB_TOKEN", TOKEN)
    monkeypatch.setenv("DATA_PLATFORM_TIMEZONE", "Australia/Melbourne")
    for base in _serve(tmp_path, "--allow-actions"):
        yield base, world


def test_find_why_a_load_failed_retry_it_and_see_it_archived(
    server: tuple[str, WebWorld], browser, artifacts: Path
) -> None:
    base, world = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and "401" not in message.text
            else None
        ),
    )
    page.goto(base + "/")
    # Credentials first: the token, through the login form.
    assert page.locator("h1").inner_text() == "Log in"
    page.fill("input[name=token]", TOKEN)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#tables")
    first = page.locator("#tables tbody tr").first
    assert first.get_attribute("data-table") == TABLE
    assert "failed" in first.locator("td").first.inner_text()
    # The chart is drawn by the vendored Chart.js.
    page.wait_for_selector("canvas#activity[data-drawn=true]")
    assert page.evaluate("() => Chart.getChart(document.getElementById('activity')) !== undefined")
    page.screenshot(path=artifacts / "1-overview.png", full_page=True)

    # Click 1: from the failed table's latest error to its load.
    first.locator(f"a[href='/loads/{world.errored_id}']").click()
    page.wait_for_selector("#error")
    error = page.locator("#error").inner_text()
    assert world.bad_key in error
    assert "Line\n2" in error or "Line 2" in error.replace("\t", " ")
    assert "SAMPLE_ID" in error and "invalid input syntax for type integer" in error
    page.screenshot(path=artifacts / "2-errored-load.png", full_page=True)

    # The operator fixes the file and puts it back in incoming; click 2: retry.
    world.fix_bad_file()
    page.click(f"button[data-action=retry][data-load='{world.errored_id}']")
    page.wait_for_selector("#flash")
    assert "is ready again (using the file put back in incoming)" in page.inner_text("#flash")
    assert "web:token" in page.inner_text("#events")
    page.screenshot(path=artifacts / "3-retried.png", full_page=True)

    # Click 3: run the table's pass; the load is archived, its rows applied.
    page.click("button[data-action=run]")
    page.wait_for_selector("#flash")
    assert "archived 1 (0 superseded), errored 0, 1 row(s) applied" in page.inner_text("#flash")
    assert page.url == f"{base}/tables/{TABLE}"
    page.screenshot(path=artifacts / "4-pass-ran.png", full_page=True)
    page.goto(f"{base}/loads/{world.errored_id}")
    assert page.locator("h1 .status").inner_text() == "archived"
    assert page.inner_text("#file-now").startswith("archive: cubic/ods_qlik/TEST.SAMPLE__ct/")
    page.screenshot(path=artifacts / "5-archived.png", full_page=True)
    assert world.status(world.errored_id) == "archived"
    assert problems == []
    page.close()


def test_read_only_server_shows_no_buttons(
    world: WebWorld, browser, artifacts: Path, tmp_path: Path
) -> None:
    for base in _serve(tmp_path):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/tables/{TABLE}")
        assert page.locator("h1").inner_text().startswith(TABLE)
        assert page.locator("button.action").count() == 0
        assert page.locator(".mode").inner_text() == "read-only"
        assert "SAMPLE_ID" in page.inner_text("#errored")
        page.screenshot(path=artifacts / "6-read-only-table.png", full_page=True)
        page.goto(f"{base}/transform")
        assert "No dbt build ran" in page.inner_text("main")
        page.close()
