"""`make demo` end to end: both sources, from sample files and a local API to tables."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from data_platform.db.engine import get_engine
from data_platform.settings import Settings
from harness.demo import REPO_SAMPLE_DIR, run_demo
from harness.samples import pedestrian as sample

pytestmark = pytest.mark.slow  # a whole demo each, dbt included: 20-45 s


def test_the_demo_runs_both_sources_and_again_changes_nothing(platform: Settings) -> None:
    lines: list[str] = []
    run_demo(REPO_SAMPLE_DIR, echo=lines.append)
    first = len(lines)
    run_demo(REPO_SAMPLE_DIR, echo=lines.append)  # again: nothing landed or applied twice
    with get_engine().connect() as conn:
        ids = conn.scalars(text("SELECT sample_id FROM cubic_ods_qlik.edw_sample ORDER BY 1"))
        assert list(ids) == [1, 2, 3, 4, 5, 6, 8, 9]
        datasets = conn.execute(
            text(
                "SELECT dataset_id, count(*), sum(count) FROM cubic_dmap.agg_daily_fareprod "
                "GROUP BY 1 ORDER BY 1"
            )
        ).all()
        statuses = conn.execute(
            text(
                "SELECT t.source, l.status, count(*) FROM loads l "
                "JOIN source_tables t ON t.id = l.table_id GROUP BY 1, 2 ORDER BY 1, 2"
            )
        ).all()
        mark = conn.scalar(  # the feed's landing mark (revision 0016)
            text(
                "SELECT (mark->>'last_updated')::timestamp FROM landing_marks "
                "WHERE source = 'cubic_dmap'"
            )
        )
    # The 17th as re-issued in round 2 (its counts), never both copies.
    assert datasets == [
        ("agg_daily_fareprod_20220516", 5, 43396),
        ("agg_daily_fareprod_20220517", 5, 44705),
    ]
    # 4 Qlik files, 3 DMAP files (one a re-issue), 2 pedestrian files, 11 totesys extracts
    # and 3 Kafka batch files (one per partition): the second demo lands nothing.
    assert statuses == [
        ("cubic_dmap", "archived", 3),
        ("cubic_kafka", "archived", 3),
        ("cubic_qlik", "archived", 4),
        ("melbourne_pedestrian", "archived", 2),
        ("totesys", "archived", 11),
    ]
    with get_engine().connect() as conn:
        counts = conn.scalar(text("SELECT count(*) FROM pedestrian.hourly_counts"))
        top10 = conn.scalar(text("SELECT count(*) FROM analytics.pedestrian_top10_monthly"))
    assert counts == len(sample.hourly_counts()) and top10 == 20  # two months
    with get_engine().connect() as conn:
        taps = conn.scalar(text("SELECT count(*) FROM cubic_kafka.taps"))
    assert taps == 594  # 600 produced, 6 malformed ones are dead letters
    assert mark.isoformat() == "2022-05-18T13:39:43.546303"
    assert "   fetched 1 feed(s): 2 dataset(s) landed, 0 feed(s) failed" in lines[:first]
    assert "   fetched 1 feed(s): 1 dataset(s) landed (1 re-issued), 0 feed(s) failed" in lines
    second = lines[first:]
    assert "   uploaded 0, already there or ingested 8" in second
    assert sum("already onboarded" in line for line in second) == 2
    assert "-- top 10 places in 2026-10" in second


def test_the_demo_prints_aligned_tables_and_logs_only_with_v(platform: Settings) -> None:
    from click.testing import CliRunner
    from wcwidth import wcswidth

    from harness.cli import cli

    result = CliRunner().invoke(cli, ["demo", "-v"])
    assert result.exit_code == 0, result.stderr
    assert " INFO    data_platform.loads.worker: applied " in result.stderr
    out = result.stdout.splitlines()  # the logs go to stderr, the steps and tables here
    assert next(line for line in out if line.startswith("== ")).startswith("== 1. migrate")
    start = out.index("-- cubic_ods_qlik.edw_sample") + 1
    end = next(i for i in range(start, len(out)) if out[i].startswith(("-- ", "== ")))
    table = out[start:end]
    assert len(table) == 10  # header, rule, 8 rows

    def bars(line: str) -> list[int]:
        return [wcswidth(line[:i]) for i, ch in enumerate(line) if ch in "|+"]

    header = bars(table[0])
    assert all(bars(line)[: len(header)] == header for line in table[1:])
    assert any("🔥" in line for line in table)  # a wide character, and still aligned
    assert any(" | true " in line for line in table) and any(" | false " in line for line in table)
    assert "[snapshot landed " in result.stdout

    again = CliRunner().invoke(cli, ["demo"])
    assert again.exit_code == 0, again.stderr
    assert " INFO " not in again.stderr and "== 8. transform" in again.stdout  # quiet unless -v
