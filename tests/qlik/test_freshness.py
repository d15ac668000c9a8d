"""Freshness by backlog (issue 25), on a clock the test controls: a table turns `stale`
when its newest applied data is older than its expectation and `behind` when a file has
waited too long; each is alerted once, and cleared when the table catches up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from data_platform.alerts.freshness import alert_freshness
from data_platform.batch.cubic_qlik.scan import scan_incoming
from data_platform.db.engine import get_engine, session_factory
from data_platform.db.models import Load
from data_platform.loads.freshness import freshness
from data_platform.settings import get_settings
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def _at(now: datetime):
    with session_factory()() as session:
        (found,) = [
            f for f in freshness(session, get_settings(), now) if f.table.endswith("sample")
        ]
    return found


def _open() -> list[str]:
    with get_engine().connect() as conn:
        return list(
            conn.scalars(
                text("SELECT fingerprint FROM alert_events WHERE resolved_at IS NULL ORDER BY 1")
            )
        )


def _landed() -> datetime:
    with get_engine().connect() as conn:
        return conn.scalar(select(func.max(Load.s3_modified)))


def test_stale_then_behind_then_caught_up_each_alerted_once(
    qlik: QlikWorld, sample: QlikTable
) -> None:
    qlik.run()
    landed = _landed()
    fresh = _at(landed + timedelta(minutes=1))
    assert (fresh.state, fresh.backlog_files) == ("ok", 0)
    assert 59 <= fresh.data_age_seconds <= 61

    day_later = landed + timedelta(hours=25)
    stale = _at(day_later)
    assert stale.state == "stale" and stale.expected_hours == 24
    alert_freshness([stale])
    alert_freshness([_at(day_later + timedelta(minutes=5))])  # still stale: not again
    name = stale.table
    assert _open() == [f"fresh:{name}:stale"]
    with get_engine().connect() as conn:
        sent = conn.scalar(text("SELECT count(*) FROM alert_events WHERE kind = 'fresh'"))
    assert sent == 1

    sample.changes([(seq(1), "U", T, 1, "ONE", T)])
    scan_incoming()  # recorded, waiting
    waiting = _landed()
    behind = _at(waiting + timedelta(minutes=45))
    assert behind.state == "behind", behind.line()
    assert behind.backlog_files == 1 and behind.backlog_bytes > 0
    assert 45 * 60 <= behind.oldest_waiting_seconds <= 45 * 60 + 1
    alert_freshness([behind])
    assert _open() == [f"fresh:{name}:behind"]  # stale resolved, behind alerted

    qlik.run()
    caught_up = _at(datetime.now(UTC))
    assert (caught_up.state, caught_up.backlog_files) == ("ok", 0)
    alert_freshness([caught_up])
    assert _open() == []
