"""A NUMERIC value that does not fit its declared precision or scale is an error naming
file, line and column on every Postgres path (new snapshot over one COPY or several
streams, a later full-load part, a change file), as it is in the Glue job: never rounded
by PostgreSQL without a word (issue 22)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from data_platform.loads import parallel_copy
from harness.samples.qlik import Column
from tests.qlik.conftest import QlikTable, QlikWorld, seq

T = "2021-12-01 11:20:30"
FARE = [
    Column("FARE_ID", "INT4", key_pos=1),
    Column("AMOUNT", "NUMERIC", precision=8, scale=2),
    Column("UNITS", "UINT8"),
]


@pytest.fixture(params=["one stream", "streams"])
def fare(request: pytest.FixtureRequest, qlik: QlikWorld, monkeypatch: pytest.MonkeyPatch):
    """FARES.FARE onboarded; every new snapshot loads over one COPY, or over 3 COPY streams
    in 64-byte chunks (`loads.parallel_copy`)."""
    if request.param == "streams":
        monkeypatch.setenv("LOAD_COPY_STREAMS", "3")
        monkeypatch.setenv("LOAD_PARALLEL_MIN_ROWS", "0")
        monkeypatch.setattr(parallel_copy, "BLOCK", 64)
    table = qlik.table("FARES.FARE", FARE)
    table.full_load([(1, "1.00", 1)], land=False)
    table.onboard(dfm_path=qlik.files / "FARES.FARE" / "LOAD00000001.dfm")
    return table


def _error(qlik: QlikWorld, key: str) -> str:
    [(status, error)] = [(s, e) for k, s, e in qlik.loads() if k == key]
    assert status == "errored"
    return error


def _rows(n: int) -> list[tuple]:
    return [(i, f"{i}.25", i) for i in range(1, n + 1)]


def test_too_many_decimals_in_a_new_snapshot(qlik: QlikWorld, fare: QlikTable) -> None:
    key = fare.full_load([*_rows(6), (7, "9.999", 7)])
    qlik.run()
    assert _error(qlik, key).startswith(
        f"{key}: line 8, column AMOUNT: '9.999' is not a valid NUMERIC(8,2): more than 2 "
        "digit(s) after the decimal point (PostgreSQL would round it)"
    )
    assert fare.rows() == []


def test_too_many_digits_before_the_point(qlik: QlikWorld, fare: QlikTable) -> None:
    key = fare.full_load([*_rows(3), (4, "1234567.00", 4)])
    qlik.run()
    assert _error(qlik, key).startswith(
        f"{key}: line 5, column AMOUNT: '1234567.00' is not a valid NUMERIC(8,2): more than 6 "
        "digit(s) before the decimal point"
    )


def test_trailing_zeros_beyond_the_scale_fit(qlik: QlikWorld, fare: QlikTable) -> None:
    # The exact value fits: nothing is rounded, so it is taken (the Glue job does too).
    fare.full_load([(1, "9.990", 1), (2, "-0.5000", 2), (3, "123456.00", 3)])
    summary = qlik.run()
    assert summary.ingest.errored == 0
    assert fare.rows() == [
        (1, Decimal("9.99"), 1),
        (2, Decimal("-0.50"), 2),
        (3, Decimal("123456.00"), 3),
    ]


def test_too_many_decimals_in_a_later_part(qlik: QlikWorld, fare: QlikTable) -> None:
    fare.full_load(_rows(2))
    part = fare.full_load([(3, "3.125", 3)], part=2)
    qlik.run()
    assert _error(qlik, part).startswith(f"{part}: line 2, column AMOUNT: '3.125' is not a valid")
    assert fare.rows() == [(1, Decimal("1.25"), 1), (2, Decimal("2.25"), 2)]


def test_too_many_decimals_in_a_change_file(qlik: QlikWorld, fare: QlikTable) -> None:
    fare.full_load(_rows(2))
    qlik.run()
    changes = fare.changes([(seq(1), "U", T, 1, "1.50", 1), (seq(2), "U", T, 2, "2.005", 2)])
    qlik.run()
    assert _error(qlik, changes).startswith(
        f"{changes}: line 3, column AMOUNT: '2.005' is not a valid NUMERIC(8,2)"
    )
    assert fare.rows() == [(1, Decimal("1.25"), 1), (2, Decimal("2.25"), 2)]


def test_an_unsigned_integer_with_a_fraction(qlik: QlikWorld, fare: QlikTable) -> None:
    key = fare.changes([(seq(1), "I", T, 9, "1.00", "1.5")])
    qlik.run()
    assert _error(qlik, key).startswith(
        f"{key}: line 2, column UNITS: '1.5' is not a valid UINT8 (the table's numeric(20,0))"
    )


def test_a_narrower_scale_in_the_dfm_is_checked_too(qlik: QlikWorld, fare: QlikTable) -> None:
    # A .dfm declaring NUMERIC(7,1) loads into numeric(8,2) as is (no schema change), and
    # its values must fit what it declares, as the Glue job checks them.
    narrower = [FARE[0], Column("AMOUNT", "NUMERIC", precision=7, scale=1), FARE[2]]
    key = fare.changes([(seq(1), "I", T, 9, "1.2", 9), (seq(2), "I", T, 10, "1.25", 10)],
                       columns=narrower)  # fmt: skip
    qlik.run()
    assert _error(qlik, key).startswith(
        f"{key}: line 3, column AMOUNT: '1.25' is not a valid NUMERIC(7,1): more than 1 digit(s)"
    )


# --- integer types narrower than their Postgres type -----------------------------------

COUNTS = [
    Column("COUNT_ID", "INT4", key_pos=1),
    Column("TINY", "INT1"),
    Column("SMALL", "UINT1"),
    Column("WORD", "UINT2"),
    Column("HUGE", "UINT8"),
]


@pytest.fixture(params=["one stream", "streams"])
def counts(request: pytest.FixtureRequest, qlik: QlikWorld, monkeypatch: pytest.MonkeyPatch):
    """FARES.COUNTS onboarded: INT1 and UINT1 in smallint, UINT2 in integer, UINT8 in
    numeric(20,0), none of which refuses what the Qlik type cannot hold."""
    if request.param == "streams":
        monkeypatch.setenv("LOAD_COPY_STREAMS", "3")
        monkeypatch.setenv("LOAD_PARALLEL_MIN_ROWS", "0")
        monkeypatch.setattr(parallel_copy, "BLOCK", 64)
    table = qlik.table("FARES.COUNTS", COUNTS)
    table.full_load([(1, 0, 0, 0, 0)], land=False)
    table.onboard(dfm_path=qlik.files / "FARES.COUNTS" / "LOAD00000001.dfm")
    return table


def test_the_ends_of_each_integer_range_are_taken(qlik: QlikWorld, counts: QlikTable) -> None:
    counts.full_load([(1, -128, 0, 0, 0), (2, 127, 255, 65535, 18446744073709551615)])
    assert qlik.run().ingest.errored == 0
    assert counts.rows() == [(1, -128, 0, 0, 0), (2, 127, 255, 65535, 18446744073709551615)]


@pytest.mark.parametrize(
    ("row", "column", "value", "kind"),
    [
        ((7, 0, 300, 0, 0), "SMALL", "300", "UINT1: outside 0..255"),
        ((7, -129, 0, 0, 0), "TINY", "-129", "INT1: outside -128..127"),
        ((7, 0, 0, 65536, 0), "WORD", "65536", "UINT2: outside 0..65535"),
        ((7, 0, 0, 0, -1), "HUGE", "-1", "UINT8: outside 0..18446744073709551615"),
    ],
)
def test_an_integer_outside_its_qlik_type_errors_a_new_snapshot(
    qlik: QlikWorld, counts: QlikTable, row: tuple, column: str, value: str, kind: str
) -> None:
    # Postgres's wider type would take each of these without a word; the Glue job refuses it.
    key = counts.full_load([*[(i, 1, 1, 1, 1) for i in range(1, 7)], row])
    qlik.run()
    assert _error(qlik, key).startswith(
        f"{key}: line 8, column {column}: '{value}' is not a valid {kind}"
    )
    assert counts.rows() == []


def test_an_integer_outside_its_qlik_type_errors_a_later_part(
    qlik: QlikWorld, counts: QlikTable
) -> None:
    counts.full_load([(1, 1, 1, 1, 1)])
    part = counts.full_load([(2, 1, 256, 1, 1)], part=2)
    qlik.run()
    assert _error(qlik, part).startswith(
        f"{part}: line 2, column SMALL: '256' is not a valid UINT1: outside 0..255"
    )
    assert counts.rows() == [(1, 1, 1, 1, 1)]


def test_an_integer_outside_its_qlik_type_errors_a_change_file(
    qlik: QlikWorld, counts: QlikTable
) -> None:
    counts.full_load([(1, 1, 1, 1, 1)])
    qlik.run()
    changes = counts.changes([(seq(1), "U", T, 1, 2, 2, 2, 2), (seq(2), "U", T, 1, 3, -3, 3, 3)])
    qlik.run()
    assert _error(qlik, changes).startswith(
        f"{changes}: line 3, column SMALL: '-3' is not a valid UINT1: outside 0..255"
    )
    assert counts.rows() == [(1, 1, 1, 1, 1)]
