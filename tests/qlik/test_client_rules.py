"""The DATETIME rule on the client (`client_rules.qlik_datetimes`, issue 24) gives what
the SQL rule and the Glue job give (tests/jobs/test_datetime_parity.py's exact reference
and values), for every value of the common form; every other value it refuses, so the
load falls back to the SQL rule, which converts or names it."""

from __future__ import annotations

import logging
import re
from decimal import Decimal

import pyarrow as pa
import pytest

from data_platform.batch.cubic_qlik.client_rules import COMMON_FORM, numeric_check, qlik_datetimes
from data_platform.loads.arrow_csv import NotConvertible
from data_platform.settings import reset_settings
from harness.samples.qlik import Column
from tests.jobs.test_datetime_parity import (
    EPOCH,
    FIXED,
    MICROSECOND,
    N_RANDOM,
    generated,
    postgres_micros,
    reference,
)
from tests.qlik.conftest import QlikTable, QlikWorld, seq

# fullmatch: Python's `$` also matches before a final newline, RE2's does not.
COMMON = re.compile(COMMON_FORM)


def arrow_micros(values: list[str | None]) -> list[int | None]:
    return qlik_datetimes(pa.array(values, pa.string())).cast(pa.int64()).to_pylist()


def test_the_common_form_gives_the_reference_and_postgres_values(platform) -> None:
    values = [v for v in FIXED + generated(N_RANDOM) if COMMON.fullmatch(v)]
    # Ties, nines carrying into the next second, day and year, the 9999 cap: all there.
    assert len(values) > N_RANDOM // 4
    assert "9999-12-31 23:59:59.9999999" in values and "1969-12-31 23:59:59.9999995" in values
    expected = [reference(v) for v in values]
    assert arrow_micros(values) == expected
    assert postgres_micros(values) == expected


def test_nulls_stay_null_beside_values() -> None:
    assert arrow_micros([None, "2021-12-01 11:20:30.5", None]) == [
        None,
        reference("2021-12-01 11:20:30.5"),
        None,
    ]


@pytest.mark.parametrize(
    "value",
    [
        " 2021-12-01 11:20:30",  # blanks: the SQL rule trims them
        "2021-12-01 11:20:30Z",  # zones: the SQL rule takes them to UTC
        "2021-12-01 11:20:30+01:00",
        "2021-12-01 11:20:30.1234567890",  # ten digits
        "2021-12-01 24:00:00",  # PostgreSQL's own parse would take it
        "2021-12-01 23:59:60",
        "2021-02-29 00:00:00",  # no such day
        "2021-04-31 00:00:00",
        "0000-01-01 00:00:00",  # Arrow's parse would take year 0
        "2021-12-01",
        "",
        "2021-12-01 11:20:30.",
        "2021-12-01 11:20:30\n",  # Python's `$` would take it
    ],
)
def test_every_other_value_is_left_to_the_sql_rule(value: str) -> None:
    with pytest.raises(NotConvertible):
        qlik_datetimes(pa.array(["2021-12-01 11:20:30", value]))


# --- End to end: a new snapshot over COPY streams, its DATETIME converted on the client ---

STAMPED = [Column("ID", "INT8", key_pos=1), Column("AT", "DATETIME"), Column("NOTE", "STRING", 40)]
ROWS = [
    (1, "2021-12-01 11:20:30.1234565", 'a "quoted", note'),
    (2, "9999-12-31 23:59:59.9999999", ""),  # empty text, not NULL
    (3, None, None),
    (4, "2021-12-01T23:59:59.9999995", "line\nbreak"),
    (5, "0001-01-01 00:00:00.0000015", "ünïcode 🔥"),
]


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    """Every new snapshot over 2 COPY streams; the loader's log kept."""
    monkeypatch.setenv("LOAD_COPY_STREAMS", "2")
    monkeypatch.setenv("LOAD_PARALLEL_MIN_ROWS", "0")
    reset_settings()
    caplog.set_level(logging.DEBUG, logger="data_platform.batch.cubic_qlik.new_snapshot")
    return caplog


def _converted(caplog: pytest.LogCaptureFixture) -> bool:
    return any("on the client" in r.getMessage() for r in caplog.records)


def _fell_back(caplog: pytest.LogCaptureFixture) -> bool:
    return any("loading over one connection" in r.getMessage() for r in caplog.records)


def test_a_new_snapshot_converts_on_the_client_every_value_exact(qlik: QlikWorld, streamed) -> None:
    table = qlik.table("ARROW.STAMPS", STAMPED)
    table.full_load(ROWS)
    table.onboard()
    assert qlik.run().ingest.archived == 1
    assert _converted(streamed) and not _fell_back(streamed)
    got = {row[0]: row[1:] for row in table.rows()}
    for key, stamp, note in ROWS:
        expected = None if stamp is None else EPOCH + reference(stamp) * MICROSECOND
        assert got[key] == (expected, note)


@pytest.mark.parametrize("stamp", ["2021-12-01 11:20:30+01:00", " 2021-12-01 11:20:30"])
def test_a_value_the_client_leaves_to_sql_loads_the_exact_way(
    qlik: QlikWorld, streamed, stamp: str
) -> None:
    table = qlik.table("ARROW.ZONED", STAMPED)
    table.full_load([*ROWS, (6, stamp, "zoned")])
    table.onboard()
    assert qlik.run().ingest.archived == 1
    assert _fell_back(streamed) and not _converted(streamed)
    assert dict((r[0], r[1]) for r in table.rows())[6] == EPOCH + reference(stamp) * MICROSECOND


def test_a_bad_value_names_its_record_and_column_as_on_one_connection(
    qlik: QlikWorld, streamed
) -> None:
    table = qlik.table("ARROW.BAD", STAMPED)
    key = table.full_load([*ROWS, (6, "2021-02-29 00:00:00", "no such day")])
    table.onboard()
    qlik.run()
    error = dict((k, e) for k, _, e in qlik.loads())[key]
    # CSV record 7: the header is record 1 (one record spans two lines).
    assert "line 7, column AT" in error and "2021-02-29" in error, error


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        ("1234567890.12", True),
        ("-0.5", True),
        ("+7", True),
        ("9.990", True),  # zeros past the scale change nothing
        ("0", True),
        ("12345678901.5", False),  # eleven digits before the point
        ("9.999", False),  # PostgreSQL would round it to 10.00
        ("007", False),  # leading zeros, spaces, exponents: left to SQL
        (" 7", False),
        ("1e3", False),
        ("NaN", False),
        (".5", False),
        ("", False),
    ],
)
def test_the_numeric_check_takes_only_values_that_fit_as_written(value: str, fits: bool) -> None:
    check = numeric_check(10, 2)  # numeric(12,2)
    assert check is not None
    values = pa.array(["1.00", None, value])
    if fits:
        assert check(values) is values
    else:
        with pytest.raises(NotConvertible):
            check(values)
    assert numeric_check(0, 2) is None  # numeric(2,2): left to SQL


PRICED = [*STAMPED, Column("PRICE", "NUMERIC", precision=12, scale=2)]


def test_numerics_checked_on_the_client_keep_their_type_and_misfits_name_their_record(
    qlik: QlikWorld, streamed
) -> None:
    table = qlik.table("ARROW.PRICED", PRICED)
    table.full_load([(*row, "12.50") for row in ROWS])
    table.onboard()
    assert qlik.run().ingest.archived == 1
    assert _converted(streamed) and not _fell_back(streamed)
    assert {r[0]: r[3] for r in table.rows()}[1] == Decimal("12.50")
    qlik.later()
    key = table.full_load([*((*row, "12.50") for row in ROWS), (6, ROWS[0][1], "x", "9.999")])
    qlik.run()
    error = dict((k, e) for k, _, e in qlik.loads())[key]
    assert "line 7, column PRICE" in error and "9.999" in error, error


def test_a_table_without_datetime_has_its_numerics_checked_on_the_client(
    qlik: QlikWorld, streamed
) -> None:
    table = qlik.table("ARROW.PRICES", [Column("ID", "INT8", key_pos=1), PRICED[-1]])
    table.full_load([(1, "12.50"), (2, "-0.5"), (3, None)])
    table.onboard()
    assert qlik.run().ingest.archived == 1
    assert _converted(streamed) and not _fell_back(streamed)
    assert table.rows() == [(1, Decimal("12.50")), (2, Decimal("-0.50")), (3, None)]
    qlik.later()
    key = table.full_load([(1, "12.50"), (2, "123456789012.5")])
    qlik.run()
    error = dict((k, e) for k, _, e in qlik.loads())[key]
    assert "line 3, column PRICE" in error and "123456789012.5" in error, error


# --- A change file: staged with its DATETIME values converted on the client -----------------

STAGED = "data_platform.batch.cubic_qlik.staging"
HEADER_TIME = "2021-12-01 11:22:33.440000"


def _changed(
    qlik: QlikWorld, caplog: pytest.LogCaptureFixture, name: str, stamp: str
) -> tuple[QlikTable, str]:
    caplog.set_level(logging.DEBUG, logger=STAGED)
    table = qlik.table(name, STAMPED)
    table.full_load(ROWS[:2])
    table.onboard()
    qlik.run()
    return table, table.changes(
        [
            (seq(1), "U", HEADER_TIME, 1, "2021-12-01 11:20:30.0000005", "updated"),
            (seq(2), "I", HEADER_TIME, 7, stamp, "inserted"),
            (seq(3), "U", HEADER_TIME, 7, "9999-12-31 23:59:59.9999999", "updated twice"),
            (seq(4), "I", HEADER_TIME, 8, stamp, "inserted"),
        ]
    )


def _staged_exactly(caplog: pytest.LogCaptureFixture) -> bool:
    return any("staging the exact way" in r.getMessage() for r in caplog.records)


def test_a_change_file_stages_its_datetimes_converted_on_the_client(
    qlik: QlikWorld, caplog: pytest.LogCaptureFixture
) -> None:
    table, _ = _changed(qlik, caplog, "ARROW.CHANGED", "2021-12-01 11:20:30.0000015")
    assert qlik.run().ingest.archived == 1
    assert _converted(caplog) and not _staged_exactly(caplog)
    got = {row[0]: row[1:] for row in table.rows()}
    at = lambda text: EPOCH + reference(text) * MICROSECOND  # noqa: E731
    assert got[1] == (at("2021-12-01 11:20:30.0000005"), "updated")
    assert got[7] == (at("9999-12-31 23:59:59.9999999"), "updated twice")
    assert got[8] == (at("2021-12-01 11:20:30.0000015"), "inserted")


def test_a_change_file_the_client_leaves_to_sql_is_staged_the_exact_way(
    qlik: QlikWorld, caplog: pytest.LogCaptureFixture
) -> None:
    table, _ = _changed(qlik, caplog, "ARROW.ZONED_CHANGE", "2021-12-01 11:20:30+01:00")
    assert qlik.run().ingest.archived == 1
    assert _staged_exactly(caplog)
    got = {row[0]: row[1] for row in table.rows()}
    assert got[8] == EPOCH + reference("2021-12-01 11:20:30+01:00") * MICROSECOND


def test_a_bad_datetime_in_a_change_file_names_its_record_and_column(
    qlik: QlikWorld, caplog: pytest.LogCaptureFixture
) -> None:
    _, key = _changed(qlik, caplog, "ARROW.BAD_CHANGE", "2021-02-29 00:00:00")
    qlik.run()
    error = dict((k, e) for k, _, e in qlik.loads())[key]
    assert "line 3, column AT" in error and "2021-02-29" in error, error
