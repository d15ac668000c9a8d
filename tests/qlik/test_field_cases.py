"""The field cases of `tests/qlik/cases/` (copied from shared/cases/qlik, README there):
each lands its batches in order as a user would (upload, onboard, run, next batch) and
asserts the right rows or the right error on a real server."""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text

from data_platform.batch.cubic_qlik.evolve import evolve_table
from data_platform.batch.cubic_qlik.onboarding import onboard_table
from data_platform.db.engine import get_engine
from data_platform.db.models import Load, SourceTable, TableSnapshot
from data_platform.loads import parallel_copy
from data_platform.run import run_once
from data_platform.settings import Settings
from data_platform.status import platform_status
from data_platform.storage import get_zone
from data_platform.storage.transfer import upload_tree

CASES = Path(__file__).parent / "cases"


class Case:
    def __init__(self, name: str, tmp_path: Path) -> None:
        self.root = CASES / name / "input"
        self.versions = tmp_path / "versions"
        self.versions.mkdir()

    def land(self, batch: str) -> list[str]:
        upload_tree(self.root / batch, "incoming")
        return [
            p.relative_to(self.root / batch).as_posix()
            for p in sorted((self.root / batch).rglob("*"))
            if p.is_file()
        ]

    def onboard(self, table: str) -> None:
        onboard_table(table, apply=True, versions_dir=self.versions)

    def rows(self, table: str, order: str = "1") -> list[tuple]:
        with get_engine().connect() as conn:
            schema, name = conn.execute(
                select(SourceTable.db_schema, SourceTable.db_table).where(
                    SourceTable.s3_prefix == f"cubic/ods_qlik/{table}/"
                )
            ).one()
            result = conn.execute(
                text(f'SELECT * FROM "{schema}"."{name}" ORDER BY {order}')  # names from a test
            )
            keep = [i for i, k in enumerate(result.keys()) if not k.startswith("dp__")]
            return [tuple(row[i] for i in keep) for row in result]

    def loads(self) -> list[tuple[str, str, str | None]]:
        with get_engine().connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    select(Load.s3_key, Load.status, Load.error).order_by(Load.id)
                )
            ]


@pytest.fixture(params=["one stream", "streams"])
def copy_streams(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each case twice: as files this small load (one COPY), and with every new snapshot
    loaded over 3 COPY streams in 64-byte chunks (`loads.parallel_copy`), whose results
    and errors must be the same."""
    if request.param == "streams":
        monkeypatch.setenv("LOAD_COPY_STREAMS", "3")
        monkeypatch.setenv("LOAD_PARALLEL_MIN_ROWS", "0")
        monkeypatch.setattr(parallel_copy, "BLOCK", 64)
    return request.param


@pytest.fixture
def case(
    request: pytest.FixtureRequest, copy_streams: str, platform: Settings, tmp_path: Path
) -> Case:
    return Case(request.param, tmp_path)


def _set_mtime(key: str, seconds: float) -> None:
    incoming = get_zone("incoming")
    os.utime(incoming.store.root / incoming.bucket / key, (seconds, seconds))


@pytest.mark.parametrize("case", ["01-pk-update-before-image"], indirect=True)
def test_01_key_update_removes_the_old_key(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.FARE_PRODUCT")
    run_once()
    assert case.rows("FARES.FARE_PRODUCT") == [
        ("ADULT-7DAY", "7-day adult pass", Decimal("22.50")),
        ("YOUTH-1M", "Monthly youth pass", Decimal("30.00")),
    ]
    assert {status for _, status, _ in case.loads()} == {"archived"}


@pytest.mark.parametrize("case", ["02-sparse-update-lob-null"], indirect=True)
def test_02_untouched_lob_keeps_its_value(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.INCIDENT")
    run_once()
    assert case.rows("FARES.INCIDENT") == [
        (1001, "CLOSED", "Gate 4 jammed, technician called."),
        (1002, "OPEN", "Fare box display blank."),
    ]


@pytest.mark.parametrize("case", ["03-datetime2-max-sentinel"], indirect=True)
def test_03_datetime2_maximum_stays_in_year_9999(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.FARE_PRICE")
    run_once()
    # psycopg2 hands back Python datetimes: year 10000 would not even be readable.
    assert case.rows("FARES.FARE_PRICE") == [
        (1, Decimal("2.40"), datetime(2019, 7, 1), datetime(9999, 12, 31, 23, 59, 59, 999999))
    ]


@pytest.mark.parametrize("case", ["04-numeric-scale-drift"], indirect=True)
def test_04_wider_numeric_scale_errors_the_table_waits_then_evolves(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.FARE_TXN")
    run_once()
    case.land("001")
    run_once()
    assert case.rows("FARES.FARE_TXN") == [(1, Decimal("2.40"))]
    (_key, status, error) = case.loads()[-1]
    assert status == "errored"
    assert error.startswith(
        "cubic/ods_qlik/FARES.FARE_TXN__ct/20240302-090000000.csv: column AMOUNT: schema "
        "change: FARES.FARE_TXN (table version 2) differs from table "
        "cubic_ods_qlik.fares_fare_txn: AMOUNT is NUMERIC(12,4), which the table's "
        "numeric(10,2) cannot hold (scale 4 > 2: values would be rounded): widen it to "
        "numeric(12,4)"
    )
    # The one reviewed command; the waiting load then applies by itself, unrounded.
    result = evolve_table("FARES.FARE_TXN", apply=True, versions_dir=case.versions)
    assert result.requeued
    run_once()
    assert case.rows("FARES.FARE_TXN") == [(1, Decimal("2.4125"))]
    assert case.loads()[-1][1] == "archived"


@pytest.mark.parametrize("case", ["05-late-load-part-after-cdc"], indirect=True)
def test_05_late_full_load_part_does_not_undo_applied_changes(case: Case) -> None:
    t = datetime(2024, 3, 1, 10, 0).timestamp()
    keys = case.land("000")
    for key in keys:
        _set_mtime(key, t + 60 if "__ct/" in key else t)
    case.onboard("FARES.TAP")
    run_once()
    for key in case.land("001"):
        _set_mtime(key, t + 1)  # S3 dates a multipart upload by its start
    summary = run_once().source("cubic_qlik")
    assert summary.ingest.rebuilds == 1
    assert [r[0] for r in case.rows("FARES.TAP")] == [1, 2, 4, 5]
    assert {status for _, status, _ in case.loads()} == {"archived"}
    with get_engine().connect() as conn:
        assert conn.scalar(select(TableSnapshot.rebuilds)) == 1
    assert "  snapshot rebuilt 1 time(s), last at " in platform_status().render()
    # Nothing left to do: a second run changes nothing.
    run_once()
    assert [r[0] for r in case.rows("FARES.TAP")] == [1, 2, 4, 5]


@pytest.mark.parametrize("case", ["08-nul-byte-in-text"], indirect=True)
def test_08_nul_byte_is_one_error_naming_line_and_column(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.CUSTOMER_NOTE")
    run_once()
    [(_key, status, error)] = case.loads()
    assert status == "errored"
    assert error.startswith(
        "cubic/ods_qlik/FARES.CUSTOMER_NOTE/LOAD00000001.csv: line 3, column NOTE_TEXT: "
    )
    assert "NUL byte" in error


@pytest.mark.parametrize("case", ["09-seven-digit-fraction-rounding"], indirect=True)
def test_09_exact_ties_round_to_even(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.VALIDATION")
    run_once()
    micros = [r[1].microsecond for r in case.rows("FARES.VALIDATION")]
    assert micros == [123456, 126, 126, 260208, 129330, 502920, 520566, 62772]


@pytest.mark.parametrize("case", ["13-null-in-key-column"], indirect=True)
def test_13_null_key_parts_match_null_safely(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.PAYMENT_SUMMARY")
    run_once()
    assert case.rows("FARES.PAYMENT_SUMMARY", order="1, 2 NULLS LAST") == [
        (100, 1, Decimal("5.00")),
        (100, None, Decimal("3.00")),
        (101, None, Decimal("7.00")),
    ]
    assert {status for _, status, _ in case.loads()} == {"archived"}


@pytest.mark.parametrize("case", ["18-change-mask-bit-numbering"], indirect=True)
def test_18_change_mask_bits_count_the_header_columns(case: Case) -> None:
    case.land("000")
    case.onboard("FARES.INCIDENT_LOG")
    run_once()
    assert case.rows("FARES.INCIDENT_LOG") == [
        (1001, "CLOSED", None),
        (1002, "IN PROGRESS", "Fare box display blank."),
        (1003, "OPEN", "Escalator fixed."),
        (1005, "OPEN", None),
    ]
    assert {status for _, status, _ in case.loads()} == {"archived"}
