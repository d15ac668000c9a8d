"""`make demo` end to end: both sources, from sample files and a local API to tables."""

from __future__ import annotations

import pytest

from harness.samples import pedestrian as sample
from tests.demo_world import DemoWorld

# One demo for the whole run (tests/demo_world.py): `demo -v`, then `demo` again.
pytestmark = pytest.mark.slow


def test_the_demo_runs_both_sources_and_again_changes_nothing(demo_world: DemoWorld) -> None:
    first_run, second_run = demo_world.runs
    for run in demo_world.runs:
        assert run["exit_code"] == 0, run["stderr"]
    # The second run: nothing landed or applied twice.
    lines: list[str] = first_run["echoed"] + second_run["echoed"]
    first = len(first_run["echoed"])
    assert demo_world.tables is not None
    tables = {name: [tuple(row) for row in rows] for name, rows in demo_world.tables.items()}
    ids = [sample_id for (sample_id,) in tables["sample_ids"]]
    assert ids == [1, 2, 3, 4, 5, 6, 8, 9]
    datasets, statuses = tables["datasets"], tables["statuses"]
    mark = tables["dmap_mark"][0][0]
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
    ((counts,),), ((top10,),) = tables["hourly_counts"], tables["top10_monthly"]
    assert counts == len(sample.hourly_counts()) and top10 == 20  # two months
    ((taps,),) = tables["taps"]
    assert taps == 594  # 600 produced, 6 malformed ones are dead letters
    assert mark == "2022-05-18T13:39:43.546303"  # its isoformat()
    # Each demo's two passes (steps 5 and 6) are recorded, as `data-platform run`'s are.
    assert [tuple(run) for run in tables["runs"]] == [
        ("cli", "ok", 22, True),
        ("cli", "ok", 1, True),
        ("cli", "ok", 0, True),
        ("cli", "ok", 0, True),
    ]
    assert "   fetched 1 feed(s): 2 dataset(s) landed, 0 feed(s) failed" in lines[:first]
    assert "   fetched 1 feed(s): 1 dataset(s) landed (1 re-issued), 0 feed(s) failed" in lines
    second = lines[first:]
    assert "   uploaded 0, already there or ingested 8" in second
    assert sum("already onboarded" in line for line in second) == 2
    assert "-- top 10 places in 2026-10" in second


def test_the_demo_prints_aligned_tables_and_logs_only_with_v(demo_world: DemoWorld) -> None:
    from wcwidth import wcswidth

    result, again = demo_world.runs
    assert result["args"] == ["demo", "-v"] and again["args"] == ["demo"]
    assert result["exit_code"] == 0, result["stderr"]
    assert " INFO    data_platform.loads.worker: applied " in result["stderr"]
    out = result["stdout"].splitlines()  # the logs go to stderr, the steps and tables here
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
    assert "[snapshot landed " in result["stdout"]
    # It ends by verifying the tables against their sources, and shows it.
    verified = out[
        out.index("== 9. verify every table against its source (data-platform verify)") + 1 :
    ]
    assert verified[:4] == [
        "   cubic_dmap: verified 1 table(s), 0 mismatch(es)",
        "   cubic_kafka: verified 1 table(s), 0 mismatch(es)",  # while its broker lives
        "   melbourne_pedestrian: verified 1 table(s), 0 mismatch(es)",
        "   totesys: verified 11 table(s), 0 mismatch(es)",
    ]
    assert any(line.startswith("verified ") and " ok " in line for line in out)
    # Run again, the demo's broker is a new, empty one: the taps are named, not compared.
    out_again = again["stdout"].splitlines()
    assert (
        "   cubic_kafka: not verified: KAFKA_BOOTSTRAP_SERVERS is not set: the committed "
        "offsets of 1 topic table(s) cannot be read"
    ) in out_again

    assert again["exit_code"] == 0, again["stderr"]
    assert (
        " INFO " not in again["stderr"] and "== 8. transform" in again["stdout"]
    )  # quiet unless -v
