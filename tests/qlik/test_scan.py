"""The Qlik scan (`cubic-qlik scan`, once `process-incoming`): each new file recorded once."""

from __future__ import annotations

import io
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from data_platform.batch.cubic_qlik.scan import active_tables, scan_incoming
from data_platform.cli.main import cli
from data_platform.db.engine import get_engine
from data_platform.db.models import Load, LoadSnapshot, TableSnapshot
from data_platform.status import platform_status
from data_platform.storage import get_zone
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"


def test_scan_records_data_files_once(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.full_load([(3, "x", T)], part=2)
    sample.changes([(seq(1), "I", T, 4, "y", T)], gz=False)
    first = scan_incoming()
    assert (first.new_loads, first.new_snapshots) == (3, 1)
    again = scan_incoming()
    assert (again.new_loads, again.new_snapshots) == (0, 0)
    with get_engine().connect() as conn:
        rows = conn.execute(
            select(Load.s3_key, Load.status, Load.s3_size > 0, LoadSnapshot.snapshot_id)
            .join(LoadSnapshot, LoadSnapshot.load_id == Load.id)
            .order_by(Load.s3_key)
        ).all()
        snapshot = conn.execute(select(TableSnapshot.id, TableSnapshot.snapshot_s3_key)).one()
    assert rows == [
        ("cubic/ods_qlik/TEST.SAMPLE/LOAD00000001.csv.gz", "ready", True, snapshot.id),
        ("cubic/ods_qlik/TEST.SAMPLE/LOAD00000002.csv.gz", "ready", True, snapshot.id),
        ("cubic/ods_qlik/TEST.SAMPLE__ct/20211201-112233444.csv", "ready", True, snapshot.id),
    ]
    assert snapshot.snapshot_s3_key == "cubic/ods_qlik/TEST.SAMPLE/LOAD00000001.csv.gz"


def test_unknown_files_are_reported_and_left_in_place(qlik: QlikWorld, sample: QlikTable) -> None:
    incoming = get_zone("incoming")
    for key in (
        "cubic/ods_qlik/TEST.SAMPLE/notes.txt",
        "cubic/ods_qlik/TEST.SAMPLE__ct/sub/20211201-112233444.csv",
        "cubic/ods_qlik/EDW.UNREGISTERED/LOAD00000001.csv.gz",
    ):
        incoming.put(key, io.BytesIO(b"x"))
    result = CliRunner().invoke(cli, ["cubic-qlik", "process-incoming"])  # the older name
    assert result.exit_code == 0
    with get_engine().connect() as conn:
        tables = len(active_tables(conn))  # TEST.SAMPLE, and tables onboarded in the checkout
    assert result.stdout.splitlines() == [
        f"scanned {tables} table(s): 1 new load(s), 1 new snapshot(s)",
        "  not a Qlik data file, left in place: cubic/ods_qlik/TEST.SAMPLE/notes.txt",
        "  not a Qlik data file, left in place: "
        "cubic/ods_qlik/TEST.SAMPLE__ct/sub/20211201-112233444.csv",
    ]
    qlik.run()
    status = platform_status()
    assert status.unregistered_keys == ["cubic/ods_qlik/EDW.UNREGISTERED/LOAD00000001.csv.gz"]
    by_name = {t.name: t for t in status.tables}
    assert by_name["cubic_ods_qlik__test_sample"].counts == {"archived": 1}
    assert by_name["cubic_ods_qlik__test_sample"].snapshot is not None
    assert "cubic_ods_qlik__edw_sample" not in by_name
    assert "table cubic_ods_qlik__test_sample [snapshot landed " in status.render()
    assert "cubic/ods_qlik/TEST.SAMPLE/notes.txt" in qlik.keys("incoming")


def test_inactive_tables_are_not_scanned(qlik: QlikWorld, sample: QlikTable) -> None:
    from sqlalchemy import text

    with get_engine().begin() as conn:
        conn.execute(text("UPDATE source_tables SET is_active = false"))
    assert scan_incoming().new_loads == 0


@pytest.mark.slow
def test_ten_thousand_objects(qlik: QlikWorld, sample: QlikTable) -> None:
    incoming = get_zone("incoming")
    for n in range(10_000):
        incoming.put(f"cubic/ods_qlik/TEST.SAMPLE__ct/20211201-{n:09d}.csv.gz", io.BytesIO(b""))
    started = time.perf_counter()
    result = scan_incoming()
    elapsed = time.perf_counter() - started
    assert result.new_loads == 10_001
    with get_engine().connect() as conn:
        assert conn.scalar(select(func.count()).select_from(LoadSnapshot)) == 10_001
    assert scan_incoming().new_loads == 0
    print(f"scanned 10,001 objects in {elapsed:.2f}s")


def test_run_says_which_files_wait_for_onboarding(qlik: QlikWorld, sample: QlikTable) -> None:
    sample.changes([(seq(1), "I", "2021-12-01 11:20:30", 3, "three", "2021-12-01 11:20:30")])
    incoming = get_zone("incoming")
    for key in (
        "cubic/ods_qlik/EDW.NEW/LOAD00000001.csv.gz",
        "cubic/ods_qlik/EDW.NEW/LOAD00000001.dfm",
        "cubic/ods_qlik/EDW.NEW__ct/20211201-000000001.csv",
        "cubic/dmap/agg_new_type/agg_new_type_20220101.csv.gz",
    ):
        incoming.put(key, io.BytesIO(b"x"))
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 0, result.stderr
    assert (
        "  EDW.NEW: 3 file(s) wait for onboarding: "
        "data-platform cubic-qlik process-new-table --table EDW.NEW"
    ) in result.stdout.splitlines()
    assert (
        "  agg_new_type: 1 file(s) wait for onboarding: "
        "data-platform dmap onboard --type agg_new_type --apply"
    ) in result.stdout.splitlines()
    # The onboarded table's own files are not waiting.
    assert "TEST.SAMPLE:" not in result.stdout
