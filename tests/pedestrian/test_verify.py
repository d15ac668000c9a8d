"""Pedestrian counts verified against the portal's own aggregates (issue 25), through the
stand-in portal's records endpoint (`select`, `group_by`): a row lost, a count changed
and a day the table holds that the portal does not are each named by day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from data_platform.batch.melbourne_pedestrian.fetch import fetch_pedestrian
from data_platform.batch.melbourne_pedestrian.verify import verify_pedestrian
from data_platform.db.engine import get_engine
from data_platform.loads.verify import NotCompared
from data_platform.run import run_once
from data_platform.settings import Settings, get_settings
from harness.samples import pedestrian as sample
from harness.stand_ins.pedestrian_api import demo_api

UNTIL = date(2026, 9, 8)


@pytest.fixture
def loaded(platform: Settings):
    with demo_api() as base_url:
        settings = get_settings().model_copy(update={"open_data_base_url": base_url})
        fetched = fetch_pedestrian(since=sample.FIRST_DAY, until=UNTIL, settings=settings)
        assert not fetched.failed, fetched.render()
        run_once()
        yield settings


def test_every_day_equals_the_portals_totals(loaded: Settings) -> None:
    (found,) = verify_pedestrian(get_engine(), settings=loaded)
    counts = sample.hourly_counts(sample.FIRST_DAY, UNTIL)
    assert (found.verdict, found.expected, found.actual) == ("ok", len(counts), len(counts))
    assert found.subject == "pedestrian.hourly_counts"


def test_a_lost_row_a_changed_count_and_an_extra_day_are_named(loaded: Settings) -> None:
    first = sample.FIRST_DAY.isoformat()
    before = sample.FIRST_DAY - timedelta(days=1)
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "DELETE FROM pedestrian.hourly_counts WHERE ctid = (SELECT ctid FROM "
                "pedestrian.hourly_counts WHERE sensing_date = :d LIMIT 1)"
            ),
            {"d": first},
        )
        conn.execute(
            text(
                "UPDATE pedestrian.hourly_counts SET pedestriancount = pedestriancount + 1 "
                "WHERE sensing_date = '2026-09-03' AND hourday = 12 AND location_id = ("
                "SELECT min(location_id) FROM pedestrian.hourly_counts "
                "WHERE sensing_date = '2026-09-03')"
            )
        )
        conn.execute(  # a day before the portal's first
            text(
                "INSERT INTO pedestrian.hourly_counts (location_id, sensing_date, hourday, "
                "pedestriancount, dp__load_id) VALUES (1, :d, 5, 10, 0)"
            ),
            {"d": before},
        )
    (found,) = verify_pedestrian(get_engine(), settings=loaded)
    assert found.verdict == "mismatch"
    assert [(k["key"], k["kind"]) for k in found.keys] == [
        ([before.isoformat()], "extra"),
        ([first], "different"),
        (["2026-09-03"], "different"),
    ]
    (lost,) = [k for k in found.keys if k["key"] == [first]]
    assert lost["table"][0] == lost["portal"][0] - 1  # one record short


def test_counts_are_compared_only_with_the_portal_they_came_from(loaded: Settings) -> None:
    """After the demo, OPEN_DATA_BASE_URL names the real portal while the counts came from
    its stand-in: not a mismatch on every day, nor minutes of retries to a portal that
    is not the source, but a refusal that names both. A fetch from the new portal, even
    one with no new day, makes it the one compared with."""
    with demo_api() as other:  # another portal (the same sample at another address)
        elsewhere = loaded.model_copy(update={"open_data_base_url": other})
        with pytest.raises(NotCompared) as refused:
            verify_pedestrian(get_engine(), settings=elsewhere)
        assert str(refused.value) == (
            f"hourly_counts was fetched from {loaded.open_data_base_url}, not from "
            f"OPEN_DATA_BASE_URL ({other}): fetch from it first"
        )
        fetched = fetch_pedestrian(since=sample.FIRST_DAY, until=UNTIL, settings=elsewhere)
        assert not fetched.failed and not fetched.new_day, fetched.render()
        run_once()
        (found,) = verify_pedestrian(get_engine(), settings=elsewhere)
        assert found.verdict == "ok"
    with pytest.raises(NotCompared, match="was fetched from"):
        verify_pedestrian(get_engine(), settings=loaded)


def test_a_fetch_from_another_portal_without_counts_makes_it_the_one_compared(
    loaded: Settings,
) -> None:
    with demo_api() as other:
        elsewhere = loaded.model_copy(update={"open_data_base_url": other})
        empty = (date(2025, 1, 1), date(2025, 1, 3))  # before the sample's first day
        fetched = fetch_pedestrian(since=empty[0], until=empty[1], settings=elsewhere)
        assert not fetched.failed and not fetched.new_day, fetched.render()
        run_once()
        (found,) = verify_pedestrian(get_engine(), settings=elsewhere)
        assert found.verdict == "ok"


def test_the_cli_offers_every_source_with_checks() -> None:
    from data_platform.cli.verify import verify as command
    from data_platform.verify import CHECKS

    (option,) = [p for p in command.params if p.name == "source"]
    assert sorted(option.type.choices) == sorted(CHECKS)


@pytest.mark.slow  # a dbt run
def test_dbt_source_freshness_reads_the_platforms_landing_times(loaded: Settings) -> None:
    """dbt's source freshness and the platform's agree: both read when the newest file
    applied to the table landed (loads.s3_modified)."""
    from datetime import UTC, datetime

    from data_platform.db.engine import session_factory
    from data_platform.loads.freshness import freshness
    from data_platform.transform import run_transform

    fresh = run_transform(["source:pedestrian"], command="freshness")
    assert {(n.name, n.status) for n in fresh.nodes} == {
        ("sensor_locations", "pass"),
        ("hourly_counts", "pass"),
    }, fresh.render()
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE loads SET s3_modified = s3_modified - interval '30 hours'"))
    late = run_transform(["source:pedestrian"], command="freshness")
    assert {n.status for n in late.nodes} == {"warn"} and late.ok
    with session_factory()() as session:
        states = {
            f.table: f.state
            for f in freshness(session, get_settings(), datetime.now(UTC))
            if f.source == "melbourne_pedestrian"
        }
    assert set(states.values()) == {"stale"}
