"""Landing as one protocol (`loads.landing`), with a source of its own: a landing is due by
its interval on a clock the test controls; `run` lands, then scans and ingests, in one
pass, and `--no-land` skips the landing; a failed landing is recorded and alerted once,
and resolved by the next that goes through."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from data_platform import run as run_module
from data_platform.alerts import register_alerts
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import AlertEvent, Landing
from data_platform.errors import StorageError
from data_platform.loads.landing import LandResult, land, land_due
from data_platform.loads.scan import FileScanResult
from data_platform.run import run_once
from data_platform.settings import Settings
from data_platform.status import platform_status
from tests.loads.test_worker import PREFIX, FakeSource, _items, _land, fake  # noqa: F401

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class ScannedSource(FakeSource):
    """The fake source, its scan a result `run` can print."""

    def scan(self) -> FileScanResult:
        return FileScanResult(new_loads=super().scan(), tables=1)


@dataclass
class FakeLander:
    """Lands the files of `waiting` ((name, value) pairs) into the fake source's folder;
    `interval` is its schedule, `error` fails it as a whole, `failing` fails items."""

    interval: float | None = 60
    waiting: list[tuple[str, int]] = field(default_factory=list)
    error: str | None = None
    failing: dict[str, str] = field(default_factory=dict)
    calls: int = 0
    source: str = "fake"

    def every(self, settings: Settings) -> float | None:
        return self.interval

    def land(self) -> LandResult:
        self.calls += 1
        if self.error:
            raise StorageError(self.error)
        keys = []
        for name, value in self.waiting:
            _land(name, value)
            keys.append(PREFIX + name)
        self.waiting = []
        return LandResult(
            summary=f"{len(keys)} file(s) landed",
            files=keys,
            items=["north", "south"],
            failures=dict(self.failing),
            notes=[f"  failed: {item}" for item in self.failing],
        )

    def position(self, mark: dict[str, Any]) -> str:
        return str(mark)


@pytest.fixture
def source(fake: FakeSource, monkeypatch: pytest.MonkeyPatch) -> ScannedSource:  # noqa: F811
    """The fake source and its lander, as `run` sees them."""
    scanned = ScannedSource()
    lander = FakeLander()
    monkeypatch.setattr(run_module, "all_sources", lambda: [scanned])
    monkeypatch.setattr(run_module, "all_landers", lambda: [lander])
    scanned.lander = lander  # type: ignore[attr-defined]
    return scanned


def _landing() -> Landing | None:
    with get_engine().connect() as conn:
        return conn.execute(select(Landing).where(Landing.source == "fake")).one_or_none()


def _alerts() -> list[tuple[str, bool]]:
    """(fingerprint, open) of the landing's alerts, oldest first."""
    with get_engine().connect() as conn:
        return [
            (fingerprint, resolved is None)
            for fingerprint, resolved in conn.execute(
                select(AlertEvent.fingerprint, AlertEvent.resolved_at)
                .where(AlertEvent.fingerprint.startswith("land:fake"))
                .order_by(AlertEvent.id)
            )
        ]


def test_a_source_lands_when_its_interval_has_passed_on_the_clock(source: ScannedSource) -> None:
    lander = source.lander
    assert list(land_due([lander], now=T0)) == ["fake"]  # never landed: due
    assert _landing().started_at == T0
    assert land_due([lander], now=T0 + timedelta(seconds=59)) == {}
    assert land_due([lander], now=T0 + timedelta(seconds=60))["fake"].summary == "0 file(s) landed"
    assert lander.calls == 2 and _landing().started_at == T0 + timedelta(seconds=60)
    lander.interval = 0  # every run
    land_due([lander], now=T0 + timedelta(seconds=61))
    assert lander.calls == 3
    lander.interval = None  # not set up: never, however long ago it landed
    assert land_due([lander], now=T0 + timedelta(days=9)) == {}
    assert lander.calls == 3


def test_run_lands_then_scans_and_ingests_in_one_pass(source: ScannedSource) -> None:
    source.lander.waiting = [("a", 7)]
    summary = run_once(now=T0)
    ran = summary.source("fake")
    assert isinstance(ran.land, LandResult) and ran.land.files == [PREFIX + "a"]
    assert (ran.scan.new_loads, ran.ingest.archived) == (1, 1)
    assert _items() == [7]
    assert ran.render_lines()[0].startswith(
        "fake: 1 file(s) landed, 1 new load(s); archived 1 (0 superseded), errored 0"
    )
    assert summary.to_dict()["fake"]["land"]["files"] == [PREFIX + "a"]
    # Not due a minute later: nothing landed, the rest of the pass still runs.
    source.lander.waiting = [("b", 8)]
    later = run_once(now=T0 + timedelta(seconds=30)).source("fake")
    assert later.land is None and source.lander.calls == 1


def test_no_land_only_scans_and_ingests(source: ScannedSource) -> None:
    _land("a", 1)  # landed by someone else
    source.lander.waiting = [("b", 2)]
    result = CliRunner().invoke(cli, ["run", "--no-land", "--no-transform"])
    assert result.exit_code == 0, result.output
    assert source.lander.calls == 0 and _landing() is None
    assert _items() == [1]
    assert "fake: 1 new load(s); archived 1" in result.stdout
    result = CliRunner().invoke(cli, ["run", "--no-transform"])
    assert result.exit_code == 0, result.output
    assert source.lander.calls == 1 and _items() == [1, 2]
    assert "fake: 1 file(s) landed, 1 new load(s); archived 1" in result.stdout


def test_a_failed_landing_is_recorded_alerted_once_and_resolved_by_the_next(
    source: ScannedSource,
) -> None:
    register_alerts()  # as the CLI does at startup
    lander = source.lander
    lander.interval = 0
    lander.error = "bucket gone"
    _land("a", 1)  # already in incoming: still loaded although the landing failed
    first = run_once(now=T0)
    assert isinstance(first.landings["fake"], StorageError)
    assert first.exit_code == 4  # the landing's own cause: storage
    assert "  landing failed: bucket gone" in first.source("fake").render_lines()
    assert _items() == [1]
    recorded = _landing()
    assert (recorded.started_at, recorded.files, recorded.error) == (T0, None, "bucket gone")
    assert recorded.succeeded_at is None and recorded.ended_at >= T0
    run_once(now=T0 + timedelta(seconds=1))  # fails again: not alerted again
    assert _alerts() == [("land:fake", True)]
    shown = platform_status().render().splitlines()
    assert "landing fake: last 2026-12-01 08:00:01 UTC, failed" in shown
    assert "  error: bucket gone" in shown

    # An item fails while the other goes through: its own alert; the whole one resolved.
    lander.error = None
    lander.failing = {"south": "HTTP 503"}
    partial = run_once(now=T0 + timedelta(seconds=2))
    assert partial.exit_code == 1 and partial.landing_failures == 1
    assert _alerts() == [("land:fake", False), ("land:fake:south", True)]
    assert _landing().error == "south: HTTP 503"

    # Through: every alert of the landing resolved; a recurrence alerts again.
    lander.failing = {}
    assert run_once(now=T0 + timedelta(seconds=3)).exit_code == 0
    assert _alerts() == [("land:fake", False), ("land:fake:south", False)]
    recorded = _landing()
    assert recorded.error is None and recorded.files == 0
    assert recorded.succeeded_at == recorded.ended_at
    lander.error = "bucket gone"
    with pytest.raises(StorageError):
        land(lander, now=T0 + timedelta(seconds=4))
    assert _alerts()[-1] == ("land:fake", True) and len(_alerts()) == 3
