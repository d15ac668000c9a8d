"""The sales warehouse (transform/models/warehouse) on a small totesys dataset inserted
straight into the landing tables: versions, splits and joins, and every data test failing
on rows that break it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import date, datetime, time

import pytest
from psycopg2 import sql

from data_platform.settings import Settings
from data_platform.transform import run_transform
from data_platform.transform.dbt import FULL_BUILD, dbt_home
from tests.transform.conftest import connect, fetch

WAREHOUSE = ["path:models/warehouse"]
CREATED = datetime(2024, 1, 30, 9, 15, 0, 123000)
UPDATED = datetime(2024, 2, 2, 17, 45, 30, 456000)  # the second version of sales order 1
EARLY = datetime(2024, 1, 2, 8, 0)


@pytest.fixture
def pg(platform: Settings, db_url: str) -> Iterator:
    conn = connect(db_url)
    conn.autocommit = True
    yield conn
    conn.close()


def insert(conn, table: str, *, history: bool = True, **row: object) -> None:
    """One row into totesys.<table> and (history) totesys_history.<table>."""
    row = {"created_at": EARLY, "last_updated": EARLY, "dp__load_id": 0, **row}
    for schema in ("totesys", "totesys_history") if history else ("totesys",):
        insert_into(conn, schema, table, row)


def version(row: dict[str, object]) -> uuid.UUID:
    """A stand-in for the loader's dp__version: the same for the same content."""
    return uuid.uuid5(uuid.NAMESPACE_OID, repr(sorted((k, str(v)) for k, v in row.items())))


def insert_into(conn, schema: str, table: str, row: dict[str, object]) -> None:
    content = {k: v for k, v in row.items() if not k.startswith("dp__")}
    row = {"dp__version": str(version(content)), "dp__extracted_at": EARLY, **row}
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(schema, table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )
    with conn.cursor() as cur:
        cur.execute(query, list(row.values()))


def record_id(key: int, version: str) -> uuid.UUID:
    """The documented surrogate: md5 of `<key>|<dp__version>`."""
    return uuid.UUID(hashlib.md5(f"{key}|{version}".encode()).hexdigest())


def version_of(conn, table: str, key: int, updated: datetime) -> str:
    query = sql.SQL("SELECT dp__version::text FROM {} WHERE {} = %s AND last_updated = %s")
    with conn.cursor() as cur:
        cur.execute(
            query.format(sql.Identifier("totesys_history", table), sql.Identifier(f"{table}_id")),
            (key, updated),
        )
        return cur.fetchone()[0]


def seed(conn) -> None:
    insert(conn, "department", department_id=1, department_name="Sales", location="Leeds")
    insert(
        conn,
        "staff",
        staff_id=10,
        first_name="Ada",
        last_name="Byron",
        department_id=1,
        email_address="ada@example.com",
    )
    address = {"city": "Leeds", "postal_code": "LS1 1AA", "country": "UK"}
    insert(
        conn,
        "address",
        address_id=100,
        address_line_1="1 Legal Road",
        address_line_2="Suite 2",
        district="Centre",
        phone="0113 000",
        **address,
    )
    insert(conn, "address", address_id=101, address_line_1="9 Dock St", phone="0113 999", **address)
    insert(
        conn,
        "counterparty",
        counterparty_id=20,
        counterparty_legal_name="Acme",
        legal_address_id=100,
    )
    insert(conn, "currency", currency_id=1, currency_code="GBP")
    insert(conn, "design", design_id=30, design_name="Wave", file_location="/d", file_name="w.json")
    insert(conn, "payment_type", payment_type_id=1, payment_type_name="SALES_RECEIPT")
    order = {
        "sales_order_id": 1,
        "design_id": 30,
        "staff_id": 10,
        "counterparty_id": 20,
        "currency_id": 1,
        "agreed_delivery_location_id": 101,
        "agreed_payment_date": "2024-02-10",
        "created_at": CREATED,
        "dp__load_id": 0,
    }
    first = order | {"units_sold": 5, "unit_price": 2.5, "agreed_delivery_date": "2024-02-08"}
    second = order | {"units_sold": 7, "unit_price": 2.5, "agreed_delivery_date": "2024-03-01"}
    insert_into(conn, "totesys_history", "sales_order", first | {"last_updated": CREATED})
    insert_into(conn, "totesys_history", "sales_order", second | {"last_updated": UPDATED})
    insert_into(conn, "totesys", "sales_order", second | {"last_updated": UPDATED})
    insert(
        conn,
        "purchase_order",
        purchase_order_id=2,
        staff_id=10,
        counterparty_id=20,
        item_code="ABC123",
        item_quantity=3,
        item_unit_price=9.99,
        currency_id=1,
        agreed_delivery_date="2024-01-05",
        agreed_payment_date="2024-01-06",
        agreed_delivery_location_id=101,
    )
    insert(conn, "transaction", transaction_id=40, transaction_type="SALE", sales_order_id=1)
    insert(conn, "transaction", transaction_id=41, transaction_type="PURCHASE", purchase_order_id=2)
    insert(
        conn,
        "payment",
        payment_id=50,
        transaction_id=40,
        counterparty_id=20,
        payment_amount=17.5,
        currency_id=1,
        payment_type_id=1,
        paid=False,
        payment_date="2024-02-10",
        company_ac_number=1234,
        counterparty_ac_number=5678,
    )


@pytest.mark.slow
def test_star_schema_and_every_data_test_failing(pg) -> None:
    seed(pg)
    kept = dbt_home() / FULL_BUILD / "run_results.json"
    kept_before = kept.stat().st_mtime_ns if kept.exists() else None

    built = run_transform(WAREHOUSE)

    assert built.ok, built.render()
    # A --select build does not replace the kept build of every model.
    assert (kept.stat().st_mtime_ns if kept.exists() else None) == kept_before
    versions = fetch(
        pg,
        "SELECT sales_record_id, created_date, created_time, last_updated_date,"
        " last_updated_time, units_sold, agreed_delivery_date, agreed_payment_date, is_current"
        " FROM analytics.fact_sales_order WHERE sales_order_id = 1 ORDER BY last_updated_date",
    )
    assert versions == [
        (
            str(record_id(1, version_of(pg, "sales_order", 1, CREATED))),
            date(2024, 1, 30),
            time(9, 15, 0, 123000),
            date(2024, 1, 30),
            time(9, 15, 0, 123000),
            5,
            date(2024, 2, 8),
            date(2024, 2, 10),
            False,
        ),
        (
            str(record_id(1, version_of(pg, "sales_order", 1, UPDATED))),
            date(2024, 1, 30),
            time(9, 15, 0, 123000),
            date(2024, 2, 2),
            time(17, 45, 30, 456000),
            7,
            date(2024, 3, 1),
            date(2024, 2, 10),
            True,
        ),
    ]
    assert fetch(
        pg, "SELECT count(*), bool_and(is_current) FROM analytics.fact_purchase_order"
    ) == [(1, True)]
    assert fetch(
        pg, "SELECT payment_record_id, payment_date, is_current FROM analytics.fact_payment"
    ) == [(str(record_id(50, version_of(pg, "payment", 50, EARLY))), date(2024, 2, 10), True)]
    assert fetch(pg, "SELECT * FROM analytics.dim_staff") == [
        (10, "Ada", "Byron", "Sales", "Leeds", "ada@example.com", None)
    ]
    assert fetch(pg, "SELECT * FROM analytics.dim_counterparty") == [
        (
            20,
            "Acme",
            "1 Legal Road",
            "Suite 2",
            "Centre",
            "Leeds",
            "LS1 1AA",
            "UK",
            "0113 000",
            None,
        )
    ]
    assert fetch(pg, "SELECT * FROM analytics.dim_currency") == [
        (1, "GBP", "British pound sterling", None)
    ]
    assert fetch(
        pg, "SELECT location_id, address_line_2 FROM analytics.dim_location ORDER BY 1"
    ) == [
        (100, "Suite 2"),
        (101, None),
    ]
    # dim_date: every day from the earliest fact date (the purchase order, 2 January) to
    # the latest (the agreed delivery of the order's second version, 1 March).
    first, last = date(2024, 1, 2), date(2024, 3, 1)
    assert fetch(pg, "SELECT min(date_id), max(date_id), count(*) FROM analytics.dim_date") == [
        (first, last, (last - first).days + 1)
    ]
    assert fetch(pg, "SELECT * FROM analytics.dim_date WHERE date_id = '2024-02-29'") == [
        (date(2024, 2, 29), 2024, 2, 29, 4, "Thursday", "February", 1)
    ]

    break_every_test(pg)
    result = run_transform(WAREHOUSE, command="test")

    tests = {node.name: node for node in result.nodes if node.kind == "test"}
    assert len(tests) >= 90 and set(tests) >= MUST_RUN
    passed = {name for name, node in tests.items() if node.status != "fail"}
    assert passed == set()
    assert all(node.failures and node.failures > 0 for node in tests.values())
    assert [n for n in tests if n.startswith("one_current_version_fact_sales_order")] == [ONE]
    assert tests[ONE].failures == 1  # order 1: two current versions


ONE = "one_current_version_fact_sales_order_is_current__source_totesys_sales_order___sales_order_id"
# A few of the tests the selection must hold (the test asserts every one of them fails).
MUST_RUN = {
    "unique_fact_sales_order_sales_record_id",
    ONE,
    "relationships_fact_sales_order_agreed_delivery_date__date_id__ref_dim_date_",
    "relationships_fact_sales_order_sales_staff_id__staff_id__ref_dim_staff_",
    "relationships_fact_sales_order_agreed_delivery_location_id__location_id__ref_dim_location_",
    "relationships_fact_payment_payment_type_id__payment_type_id__ref_dim_payment_type_",
    "accepted_values_dim_currency_currency_code__GBP__USD__EUR",
    "not_null_dim_currency_currency_name",
    "accepted_values_dim_transaction_transaction_type__SALE__PURCHASE",
    "value_between_fact_sales_order_units_sold__2147483647__0",
    "warehouse_transaction_matches_its_order",
}


def break_every_test(conn) -> None:
    """Rows in the built tables that the models would never produce, one for each test:
    in every table a copy of a row (unique keys, two current versions) and a row of
    NULLs (not_null), plus out-of-range and unknown values. A fact's copy is of its
    current row: order 1 has two current versions, the NULL row and order 99 none."""
    bad_day = date(1999, 1, 1)  # no row of dim_date
    with conn.cursor() as cur:
        for table in TABLES:
            target = sql.Identifier("analytics", table)
            current = sql.SQL("WHERE is_current" if table.startswith("fact_") else "")
            cur.execute(
                sql.SQL("INSERT INTO {0} SELECT * FROM {0} {1} LIMIT 1").format(target, current)
            )
            cur.execute(sql.SQL("INSERT INTO {} DEFAULT VALUES").format(target))
        cur.execute(
            "INSERT INTO analytics.dim_date VALUES ('2024-01-01', 2024, 13, 0, 8, 'x', 'y', 5)"
        )
        cur.execute("INSERT INTO analytics.dim_currency VALUES (9, 'JPY', NULL)")
        cur.execute("INSERT INTO analytics.dim_payment_type VALUES (9, 'CASH')")
        cur.execute(
            "INSERT INTO analytics.dim_transaction VALUES (9, 'REFUND', NULL, NULL),"
            " (8, 'SALE', NULL, 2), (7, 'PURCHASE', 1, NULL)"
        )
        cur.execute(
            "INSERT INTO analytics.fact_sales_order VALUES (gen_random_uuid(), 99,"
            " %(d)s, '00:00', %(d)s, '00:00', 999, 999, -1, -0.01, 999, 999, %(d)s, %(d)s,"
            " 999, false)",
            {"d": bad_day},
        )
        cur.execute(
            "INSERT INTO analytics.fact_purchase_order VALUES (gen_random_uuid(), 99,"
            " %(d)s, '00:00', %(d)s, '00:00', 999, 999, 'X', -1, -0.01, 999, %(d)s, %(d)s,"
            " 999, false)",
            {"d": bad_day},
        )
        cur.execute(
            "INSERT INTO analytics.fact_payment VALUES (gen_random_uuid(), 99,"
            " %(d)s, '00:00', %(d)s, '00:00', 999, 999, 999, -0.01, 999, true, %(d)s, false)",
            {"d": bad_day},
        )


TABLES = (
    "dim_date",
    "dim_staff",
    "dim_location",
    "dim_design",
    "dim_currency",
    "dim_counterparty",
    "dim_payment_type",
    "dim_transaction",
    "fact_sales_order",
    "fact_purchase_order",
    "fact_payment",
)
