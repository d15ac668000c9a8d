"""Every page in Debian's Chromium on a laptop's and a phone's window (issue 26 item 4):
axe-core (through axe-playwright-python) finds no accessibility violation, and nothing
is wider than the window (wide tables and the lineage scroll in their own box).
Screenshots go to the test artifacts, as the other browser tests'."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_platform.settings import get_settings
from data_platform.transform.dbt import FULL_BUILD
from tests.web.conftest import TABLE, TOKEN, WebWorld
from tests.web.test_browser import _serve
from tests.web.test_lineage import MANIFEST, RESULTS

pytestmark = pytest.mark.slow

WINDOWS = {"laptop": (1366, 768), "phone": (390, 844)}


@pytest.fixture
def site(
    world: WebWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, WebWorld]]:
    kept = get_settings().home / "dbt" / FULL_BUILD
    kept.mkdir(parents=True)
    (kept / "manifest.json").write_text(json.dumps(MANIFEST))
    (kept / "run_results.json").write_text(json.dumps(RESULTS))
    monkeypatch.setenv("WEB_TOKEN", TOKEN)
    for base in _serve(tmp_path, "--allow-actions"):
        yield base, world


@pytest.mark.parametrize("window", sorted(WINDOWS))
def test_every_page_is_accessible_and_fits_the_window(
    site: tuple[str, WebWorld],
    browser,
    artifacts: Path,
    window: str,
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    base, world = site
    width, height = WINDOWS[window]
    # axe-core is injected by the test, not served: the page's CSP rightly refuses it.
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    page = context.new_page()
    page.goto(base + "/login")
    found = {"/login": Axe().run(page)}
    page.fill("input[name=token]", TOKEN)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#tables")
    page.goto(base + "/runs")
    run_link = page.locator("#runs a").first
    pages = [
        "/",
        "/?state=failed",
        f"/tables/{TABLE}",
        f"/loads/{world.errored_id}",
        "/transform",
        "/lineage",
        "/runs",
    ]
    if run_link.count():
        pages.append(run_link.get_attribute("href"))
    wide = []
    for path in pages:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        found[path] = Axe().run(page)
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 1:
            wide.append(f"{path}: {overflow}px wider than the window")
        name = path.strip("/").replace("/", "_").replace("?", "_") or "overview"
        page.screenshot(path=artifacts / f"a11y-{window}-{name}.png", full_page=True)
    context.close()
    violations = {
        path: [
            f"{v['id']} ({v['impact']}): {v['help']}: "
            + "; ".join(str(n["target"]) for n in v["nodes"][:4])
            for v in result.response["violations"]
        ]
        for path, result in found.items()
        if result.violations_count
    }
    assert violations == {}, json.dumps(violations, indent=1)
    assert wide == []


def test_from_the_overview_to_why_a_test_fails_and_the_file_behind_it(
    site: tuple[str, WebWorld],
    browser,
    artifacts: Path,
) -> None:
    """The issue's three clicks: overview -> Transform (the failing test, fed by the
    table) -> the table -> its load, with the file; then the table found by name, and the
    errored load skipped with a reason, all in the browser."""
    base, world = site
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.goto(base + "/login")
    page.fill("input[name=token]", TOKEN)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#tables")
    page.click("header nav a[href='/transform']")  # 1
    row = page.locator("#tests tr#not_null_daily")
    assert "fail" in row.inner_text()
    row.locator(f"td.fed-by a[href='/tables/{TABLE}']").click()  # 2
    page.wait_for_selector("#loads")
    page.locator(f"#errored a[href='/loads/{world.errored_id}']").first.click()  # 3
    page.wait_for_selector("#error")
    assert world.bad_key in page.inner_text("#error")
    page.screenshot(path=artifacts / "three-clicks-load.png", full_page=True)
    page.goto(base + "/")
    page.fill("#filter-q", "sample")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("#shown-count")
    assert page.locator("#tables tbody tr").count() == 1
    page.goto(f"{base}/loads/{world.errored_id}")
    page.fill(f"#skip-reason-{world.errored_id}", "sent again as a new file")
    page.click(f"button[data-action=skip][data-load='{world.errored_id}']")
    page.wait_for_selector("#flash")
    assert page.locator("h1 .status").inner_text() == "skipped"
    page.screenshot(path=artifacts / "skipped.png", full_page=True)
    page.close()
