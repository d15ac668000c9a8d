"""`make bench` code on a small file: every step runs and reports (no timing asserted)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from harness.bench import qlik
from harness.bench.qlik import run_qlik_bench
from harness.bench.run import report
from tests.shared import platform_command


def in_this_process(target, *args) -> tuple[object, float]:
    """`in_fresh_process` without the spawned interpreter (about 30 of them in a run):
    the step and its arguments pickled and unpickled as spawning does, run here, its
    result pickled too; the peak RSS is this process's. The spawning itself is tested
    by the other benchmarks' tests below."""
    target, args = pickle.loads(pickle.dumps((target, args)))
    value = target(*args)
    pickle.dumps(value)
    return value, qlik._peak_rss_mb()


@pytest.mark.slow
def test_qlik_bench_runs_every_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qlik, "in_fresh_process", in_this_process)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")  # what each step sets: undone after the test
    # One bracketed run of each step (`make bench` makes two): the median of repeats is
    # arithmetic.
    try:
        steps = run_qlik_bench(tmp_path, rows=3000, echo=lambda _: None, repeats=1)
        measured = ("full_load", "full_load_2x", "full_load_plain", "changes", "dmap",
                    "pedestrian")  # fmt: skip
        assert set(steps) == {
            *measured, *(f"raw_copy_{key}" for key in measured),
            *(f"careful_{key}" for key in measured), "transform",
        }  # fmt: skip
        assert steps["full_load_2x"].rows == steps["careful_full_load_2x"].rows == 6000
        assert all(s.seconds > 0 for s in steps.values())
        for key in ("full_load", "full_load_2x", "changes", "dmap", "pedestrian"):
            step = steps[key]
            # A bracketed run each, and where its time went.
            assert step.peak_rss_mb > 0 and len(step.ratios) == 1 and all(step.ratios)
            assert step.breakdown["COPY (read + parse + check)"] > 0
            assert step.breakdown["insert / upsert"] > 0
        for key in measured:
            # The careful loader's run of each step: bracketed too, its time placed.
            step = steps[f"careful_{key}"]
            assert step.name.startswith("careful loader, ") and step.rows == steps[key].rows
            assert step.peak_rss_mb > 0 and len(step.ratios) == 1 and all(step.ratios)
            assert step.breakdown["COPY (read + parse + check)"] > 0
            assert step.breakdown["insert / upsert"] > 0
        # The careful loader's change apply: the last change per key, one DELETE, one
        # upsert; its staging tables' drops are not taken for a snapshot swap.
        careful_changes = steps["careful_changes"].breakdown
        assert careful_changes["dedup (last change per key)"] > 0
        assert careful_changes["delete / tombstones"] > 0
        assert not any(
            "swap" in kind for key in measured for kind in steps[f"careful_{key}"].breakdown
        )
        _assert_careful_rows(str(tmp_path / "home"), steps["pedestrian"].rows)
        # A new snapshot with nothing to convert: COPYed straight in, key built, swapped.
        plain = steps["full_load_plain"].breakdown
        assert plain["COPY (read + parse + check)"] > 0
        assert plain["key build (new snapshot)"] > 0 and plain["swap (new snapshot)"] > 0
        report(steps)
        out = capsys.readouterr().out
        assert "full load vs raw COPY:" in out and "change apply vs raw COPY:" in out
        assert "bracketed run(s)" in out and "where the time of full load" in out
        assert "full load, no DATETIME vs raw COPY:" in out
        assert "pedestrian counts window vs raw COPY:" in out and "dbt build over" in out
        # Beside each step's ratio to raw COPY, the careful loader's and the platform's to it.
        assert out.count("careful loader vs raw COPY:") == len(measured)
        assert out.count("platform / careful:") == len(measured)
        assert "careful loader, change apply (3,000 changes)" in out
        assert (tmp_path / "parquet_input" / "LOAD00000001.csv.gz").exists()
    finally:
        platform_command(tmp_path / "home", "db", "stop")  # started by this process


def _assert_careful_rows(home: str, counts: int) -> None:
    """The careful loader's tables hold the rows its files hold, and the same rows as the
    platform's tables where those still hold the same file's load."""
    from dataclasses import replace

    from harness.bench import careful
    from harness.bench.careful import Peer, careful_compare, target_rows

    assert target_rows(home, "full_load") == target_rows(home, "full_load_plain") == 3000
    assert target_rows(home, "full_load_2x") == 6000
    # The platform's table last took the change file over the 1x full load, whose D rows
    # removed some of the 3,000 keys: the careful loader's holds the same rows.
    peer = replace(qlik._peer("changes", qlik.TABLE), changes=True)
    assert 0 < careful_compare(home, peer) < 3000
    dmap = Peer("dmap", ("cubic_dmap", "agg_daily_fareprod"),
                partition=("dataset_id", "agg_daily_fareprod_20220516"))  # fmt: skip
    assert careful_compare(home, dmap) == 3000
    pedestrian = Peer("pedestrian", ("pedestrian", "hourly_counts"),
                      ("location_id", "sensing_date", "hourday"), delimiter=";")  # fmt: skip
    assert careful_compare(home, pedestrian) == counts
    # One value changed: the comparison sees it.
    raw = careful._connect(home)
    try:
        with raw.cursor() as cur:
            cur.execute(
                "UPDATE careful.changes SET note = 'other' "
                "WHERE fare_id = (SELECT min(fare_id) FROM careful.changes)"
            )
            assert cur.rowcount == 1
        raw.commit()
    finally:
        raw.close()
    with pytest.raises(RuntimeError, match=r"careful loader's careful\.changes holds"):
        careful_compare(home, peer)


@pytest.mark.slow
def test_warehouse_bench_seeds_builds_and_times_the_updates(tmp_path: Path) -> None:
    from harness.bench.qlik import in_fresh_process
    from harness.bench.warehouse import warehouse_bench

    try:
        figures, _ = in_fresh_process(warehouse_bench, str(tmp_path / "home"), 300)
        assert figures["updates"] == 3
        assert figures["current fact rows"] == 300
        assert figures["fact rows"] >= 303  # every seeded version plus the three updates
        assert figures["updates visible after"] > 0 and figures["first dbt build"] > 0
    finally:
        from data_platform.db.embedded import stop

        stop(tmp_path / "home")


@pytest.mark.slow
def test_kafka_bench_takes_taps_from_the_broker_to_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.bench.kafka import kafka_bench, report_kafka
    from harness.bench.qlik import in_fresh_process

    try:
        figures, rss = in_fresh_process(kafka_bench, str(tmp_path / "home"), 2000)
        assert figures["rows"] == 2000 and figures["files"] >= 3  # three partitions
        report_kafka(figures, rss)
        assert "broker to table" in capsys.readouterr().out
    finally:
        from data_platform.db.embedded import stop

        stop(tmp_path / "home")


def test_a_step_whose_interpreter_dies_fails_instead_of_waiting_forever() -> None:
    import os

    from harness.bench.qlik import in_fresh_process

    with pytest.raises(RuntimeError, match=r"_exit ended without a result \(exit code 3\)"):
        in_fresh_process(os._exit, 3)
