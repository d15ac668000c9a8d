"""totesys tables verified against the source database (issue 25): a corrupted row, a
deleted row and an extra row here are each named by key; rows changed at the source
since the last pass are behind, not wrong."""

from __future__ import annotations

import pytest

from data_platform.batch.totesys.extract import extract
from data_platform.batch.totesys.verify import verify_totesys
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from tests.totesys.sql import on_platform as _platform
from tests.totesys.sql import on_source as _source


@pytest.fixture
def loaded(platform, seeded: str) -> str:
    extract()
    run_once()
    return seeded


def _by_table() -> dict:
    return {v.subject: v for v in verify_totesys(get_engine())}


def test_every_table_equals_the_source_after_a_pass(loaded: str) -> None:
    found = _by_table()
    assert len(found) == 11
    assert {v.verdict for v in found.values()} == {"ok"}
    orders = found["totesys.sales_order"]
    assert (
        orders.expected
        == orders.actual
        == _platform("SELECT count(*) FROM totesys.sales_order")[0][0]
    )


def test_a_corrupted_a_lost_and_an_extra_row_are_named(loaded: str) -> None:
    _platform("UPDATE totesys.sales_order SET units_sold = units_sold + 1 WHERE sales_order_id = 5")
    _platform("DELETE FROM totesys.sales_order WHERE sales_order_id = 7")
    _platform(
        "INSERT INTO totesys.sales_order (sales_order_id, design_id, staff_id, counterparty_id, "
        "units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date, "
        "agreed_delivery_location_id, created_at, last_updated, dp__version, dp__extracted_at, "
        "dp__load_id) SELECT 99999, design_id, staff_id, counterparty_id, units_sold, unit_price, "
        "currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id, "
        "created_at, last_updated, dp__version, dp__extracted_at, dp__load_id "
        "FROM totesys.sales_order WHERE sales_order_id = 8"
    )
    found = _by_table()
    orders = found["totesys.sales_order"]
    assert orders.verdict == "mismatch"
    assert orders.keys == [
        {"key": [5], "kind": "different"},
        {"key": [7], "kind": "missing"},
        {"key": [99999], "kind": "extra"},
    ]
    assert {v.verdict for s, v in found.items() if s != "totesys.sales_order"} == {"ok"}


def test_rows_changed_since_the_last_pass_are_behind_not_wrong(loaded: str) -> None:
    _source(
        loaded,
        "UPDATE sales_order SET units_sold = units_sold + 1, "
        "last_updated = (now() AT TIME ZONE 'UTC') WHERE sales_order_id = 3",
    )
    _source(loaded, "DELETE FROM payment WHERE payment_id = 1")
    found = _by_table()
    assert found["totesys.sales_order"].verdict == "ok"
    assert found["totesys.payment"].keys == [{"key": [1], "kind": "extra"}]  # until the next pass
    run_once()
    assert {v.verdict for v in _by_table().values()} == {"ok"}
