"""The totesys source database: schema from tables.py, generated rows, the reader role,
idempotent seeding, the simulated business. Against the real test PostgreSQL, a new
source database per test."""

from __future__ import annotations

import re
import uuid

import psycopg2
import pytest
from click.testing import CliRunner
from psycopg2 import sql
from sqlalchemy.engine import make_url

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import (
    READER_ROLE,
    connect,
    reader_url,
    shown,
    source_url,
)
from data_platform.errors import ConfigError
from data_platform.settings import reset_settings
from harness.cli import cli
from harness.totesys.seed import SeedError, seed
from harness.totesys.simulate import SimulateError, apply_updates, simulate
from tests.totesys.conftest import ORDERS, _drop_database, _new_database


def _query(url: str, query, params=None) -> list[tuple]:
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        conn.close()


def _scalar(url: str, query, params=None):
    return _query(url, query, params)[0][0]


# --- settings and URLs ------------------------------------------------------------------


def test_the_default_source_is_a_totesys_database_on_the_platform_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TOTESYS_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://owner:s3cret@db.example:5433/platform")
    reset_settings()
    url = source_url()
    assert (url.host, url.port, url.database, url.username) == (
        "db.example",
        5433,
        "totesys",
        "owner",
    )
    assert url.password == "s3cret"
    assert "s3cret" not in shown(url)
    reader = reader_url()
    assert (reader.username, reader.password, reader.database) == (READER_ROLE, None, "totesys")
    assert reader.host == "db.example"


def test_totesys_database_url_wins_and_a_bad_one_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOTESYS_DATABASE_URL", "postgresql://u:pw@src.example/sales")
    reset_settings()
    assert source_url().database == "sales"
    assert source_url().drivername == "postgresql+psycopg2"
    monkeypatch.setenv("TOTESYS_DATABASE_URL", "postgresql://u:p@ss@src.example/sales")
    reset_settings()
    with pytest.raises(ConfigError) as caught:
        source_url()
    assert "TOTESYS_DATABASE_URL" in str(caught.value)
    assert "p@ss" not in str(caught.value)


def test_seed_creates_a_missing_database(pg_admin_url: str, monkeypatch) -> None:
    name = f"totesys_test_{uuid.uuid4().hex[:12]}"
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("TOTESYS_DATABASE_URL", url)
    reset_settings()
    try:
        assert seed(orders=10).seeded
        assert _scalar(url, "SELECT count(*) FROM sales_order") == 10
    finally:
        _drop_database(pg_admin_url, url)


# --- the schema -------------------------------------------------------------------------


def test_the_schema_is_tables_py(seeded: str) -> None:
    columns = _query(
        seeded,
        "SELECT c.table_name, c.column_name, c.is_nullable, "
        "format_type(a.atttypid, a.atttypmod) "
        "FROM information_schema.columns c "
        "JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)"
        "::regclass AND a.attname = c.column_name "
        "WHERE c.table_schema = 'public' ORDER BY c.table_name, c.ordinal_position",
    )
    found: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, nullable, type_ in columns:
        found.setdefault(table, []).append((column, type_, nullable == "YES"))
    assert found == {t.name: [(c.name, c.type, c.nullable) for c in t.columns] for t in T.TABLES}

    keys = _query(
        seeded,
        "SELECT tc.table_name, k.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY'",
    )
    assert sorted(keys) == sorted((t.name, t.key) for t in T.TABLES)

    foreign = _query(
        seeded,
        "SELECT k.table_name, k.column_name, u.table_name || '.' || u.column_name "
        "FROM information_schema.referential_constraints r "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "JOIN information_schema.constraint_column_usage u "
        "USING (constraint_schema, constraint_name) WHERE r.constraint_schema = 'public'",
    )
    expected = [(t.name, c.name, c.references) for t in T.TABLES for c in t.columns if c.references]
    assert sorted(foreign) == sorted(expected)

    indexes = dict(
        _query(
            seeded,
            "SELECT tablename, indexdef FROM pg_indexes WHERE indexname LIKE %s",
            ("%_last_updated_idx",),
        )
    )
    for table in T.TABLES:
        assert indexes[table.name].endswith(f"(last_updated, {table.key})"), table.name


# --- the rows ---------------------------------------------------------------------------


def test_rows_counts_links_and_shared_milliseconds(seeded: str) -> None:
    counts = dict(
        _query(
            seeded,
            sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {}, count(*) FROM {}").format(
                    sql.Literal(t.name), sql.Identifier("public", t.name)
                )
                for t in T.TABLES
            ),
        )
    )
    assert counts["sales_order"] == ORDERS
    assert counts["purchase_order"] == ORDERS // 4
    assert counts["transaction"] == ORDERS + ORDERS // 4
    assert 0.8 * counts["transaction"] <= counts["payment"] <= counts["transaction"]
    assert counts["currency"] == 3 and counts["payment_type"] == 4
    assert 25 <= counts["address"] <= 40 and 15 <= counts["staff"] <= 25
    assert 15 <= counts["counterparty"] <= 25 and 40 <= counts["design"] <= 60
    assert {r[0] for r in _query(seeded, "SELECT currency_code FROM currency")} == {
        "GBP",
        "USD",
        "EUR",
    }
    names = {r[0] for r in _query(seeded, "SELECT payment_type_name FROM payment_type")}
    assert names == {"SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND"}

    # Every order has exactly one transaction of its kind; a transaction names one order.
    assert _query(
        seeded,
        "SELECT count(*) FILTER (WHERE transaction_type = %s AND sales_order_id IS NOT NULL "
        "AND purchase_order_id IS NULL), count(DISTINCT sales_order_id), "
        "count(*) FILTER (WHERE transaction_type = %s AND purchase_order_id IS NOT NULL "
        'AND sales_order_id IS NULL), count(DISTINCT purchase_order_id) FROM "transaction"',
        ("SALE", "PURCHASE"),
    ) == [(ORDERS, ORDERS, ORDERS // 4, ORDERS // 4)]
    # A payment's counterparty and currency are its order's.
    assert (
        _scalar(
            seeded,
            'SELECT count(*) FROM payment p JOIN "transaction" t USING (transaction_id) '
            "JOIN sales_order s USING (sales_order_id) "
            "WHERE p.counterparty_id <> s.counterparty_id OR p.currency_id <> s.currency_id "
            "OR p.payment_amount <> s.units_sold * s.unit_price",
        )
        == 0
    )

    dates = _query(seeded, "SELECT agreed_delivery_date, agreed_payment_date FROM sales_order")
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for row in dates for d in row)
    # Many rows share one millisecond; milliseconds are really there; updated rows exist.
    assert (
        _scalar(
            seeded,
            "SELECT count(*) FROM (SELECT last_updated FROM sales_order GROUP BY 1 "
            "HAVING count(*) > 1) shared",
        )
        > 5
    )
    assert (
        _scalar(
            seeded, "SELECT max(count) FROM (SELECT count(*) FROM address GROUP BY last_updated) c"
        )
        > 10
    )
    assert (
        _scalar(
            seeded,
            "SELECT count(*) FROM sales_order "
            "WHERE extract(milliseconds FROM last_updated)::int % 1000 <> 0",
        )
        > 0
    )
    assert _scalar(seeded, "SELECT count(*) FROM sales_order WHERE last_updated > created_at") > 0
    assert _scalar(seeded, "SELECT bool_and(last_updated >= created_at) FROM payment")


def test_the_same_seed_gives_the_same_rows(seeded: str, pg_admin_url: str) -> None:
    fingerprint = "SELECT md5(string_agg(s::text, ',' ORDER BY sales_order_id)) FROM sales_order s"
    other = _new_database(pg_admin_url)
    try:
        seed(orders=ORDERS, seed=1, url=other)
        assert _scalar(other, fingerprint) == _scalar(seeded, fingerprint)
        seed(orders=ORDERS, seed=2, url=other, reset=True)
        assert _scalar(other, fingerprint) != _scalar(seeded, fingerprint)
    finally:
        _drop_database(pg_admin_url, other)


# --- the reader -------------------------------------------------------------------------


def test_the_reader_can_select_and_nothing_else(seeded: str) -> None:
    conn = connect(reader_url())
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW default_transaction_read_only")
            assert cur.fetchone()[0] == "on"
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == READER_ROLE
            for table in T.TABLES:
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name)))
                assert cur.fetchone()[0] > 0
        conn.rollback()
        # Not only read-only by default: without privileges even with that switched off.
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
            for statement in (
                "INSERT INTO currency (currency_code, created_at, last_updated) "
                "VALUES ('JPY', now(), now())",
                "UPDATE sales_order SET units_sold = 1",
                'DELETE FROM "transaction"',
                "CREATE TABLE public.mine (x int)",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        conn.close()


# --- idempotence ------------------------------------------------------------------------


def test_seeding_a_seeded_database_does_nothing_unless_reset(seeded: str) -> None:
    again = seed(orders=50, seed=9)
    assert not again.seeded
    assert again.rows["sales_order"] == ORDERS
    assert "seeded already" in again.render()
    assert _scalar(seeded, "SELECT count(*) FROM sales_order") == ORDERS

    reset = seed(orders=50, seed=9, reset=True)
    assert reset.seeded and reset.reset
    assert _scalar(seeded, "SELECT count(*) FROM sales_order") == 50
    # The reader still reads the recreated tables.
    conn = connect(reader_url())
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM payment")
            assert cur.fetchone()[0] > 0
    finally:
        conn.close()


def test_a_partly_present_schema_is_refused(seeded: str) -> None:
    conn = connect(seeded)
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE payment")
    conn.close()
    with pytest.raises(SeedError, match="payment"):
        seed(orders=10)
    assert seed(orders=10, reset=True).seeded


def test_cli_seed_twice_and_help(source_db: str) -> None:
    # Through the root command (the harness's, `python -m harness`): click keeps the help
    # option a command was first shown with, and the root gives `-h, --help`.
    runner = CliRunner()
    first = runner.invoke(cli, ["totesys", "seed", "--orders", "20", "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("seeded ") and "sales_order 20" in first.stdout
    password = make_url(source_db).password
    assert not password or password not in first.output  # stdout and the logs
    second = runner.invoke(cli, ["totesys", "seed", "--orders", "20"])
    assert second.exit_code == 0 and "seeded already" in second.stdout
    for command in ("seed", "simulate"):
        shown_help = runner.invoke(cli, ["totesys", command, "--help"])
        assert shown_help.exit_code == 0 and "Examples:" in shown_help.output


# --- the simulated business -------------------------------------------------------------


def _max_updated(url: str) -> dict[str, object]:
    return {
        t.name: _scalar(
            url, sql.SQL("SELECT max(last_updated) FROM {}").format(sql.Identifier(t.name))
        )
        for t in T.TABLES
    }


def test_simulate_inserts_updates_and_commits_a_row_late(seeded: str) -> None:
    before = _max_updated(seeded)
    result = simulate(minutes=0.075, rate=25, seed=5)  # 4.5 s
    assert result.orders_created > 0 and result.orders_updated > 0
    assert result.long_transactions == 1 and len(result.late_rows) == 1

    assert _scalar(seeded, "SELECT count(*) FROM sales_order") == ORDERS + result.orders_created
    moved = _scalar(
        seeded,
        "SELECT count(*) FROM sales_order WHERE last_updated > %s AND created_at <= %s",
        (before["sales_order"], before["sales_order"]),
    )
    assert moved > 0  # existing orders were updated
    assert (
        _scalar(
            seeded,
            'SELECT count(*) FROM "transaction" WHERE last_updated > %s',
            (before["transaction"],),
        )
        > 0
    )
    # Rows of one action share one millisecond.
    assert (
        _scalar(
            seeded,
            "SELECT max(n) FROM (SELECT count(*) AS n FROM sales_order WHERE last_updated > %s "
            "GROUP BY last_updated) c",
            (before["sales_order"],),
        )
        > 1
    )
    # The late row: stamped before rows that were committed before it.
    late = result.late_rows[0]
    assert (
        _scalar(
            seeded,
            "SELECT last_updated::text FROM sales_order WHERE sales_order_id = %s",
            (late.key,),
        )
        == late.last_updated
    )
    assert late.committed_at > late.last_updated
    assert (
        _scalar(
            seeded,
            "SELECT count(*) FROM sales_order WHERE last_updated > %s AND last_updated < %s",
            (late.last_updated, late.committed_at),
        )
        > 0
    )


def test_simulate_stops_when_asked_and_needs_a_seeded_database(source_db: str) -> None:
    with pytest.raises(SimulateError, match="not seeded"):
        simulate(minutes=1, stop=lambda: True)
    seed(orders=20)
    result = simulate(minutes=5, stop=lambda: True)
    assert result.seconds < 1 and result.orders_created == 0


def test_apply_updates_updates_n_orders_in_one_millisecond(seeded: str) -> None:
    assert apply_updates(50, seed=1) == 50
    newest = _query(
        seeded,
        "SELECT count(*) FROM sales_order WHERE last_updated = "
        "(SELECT max(last_updated) FROM sales_order)",
    )
    assert newest == [(50,)]
    assert apply_updates(10 * ORDERS) == ORDERS
