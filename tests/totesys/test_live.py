"""The totesys source changed by writers of our own WHILE `run` passes: at the end the copy
equals the source (every key, every column, deletes gone), the history holds every
version a pass could see, and after every pass the copy is one consistent cut (no payment
without its transaction, no transaction without its order).

Writers: a stream of orders, each with its transaction and payment in one commit; bursts
of rows sharing one millisecond stamp across page boundaries (5 rows a page), then a
second version within that millisecond; a version stamped older than the current one;
a transaction held open past several passes; deletes of an order with its transaction
and payment in one commit. The warehouse is built once while the writers go on and once
at the end: its relationship and current-version tests hold, deleted orders have no
current fact."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime

import pytest
from psycopg2 import sql
from sqlalchemy import text

from data_platform.batch.totesys import extract as extract_module
from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import connect
from data_platform.db.engine import get_engine
from data_platform.run import run_once
from data_platform.transform import run_transform

NOW = "(now() AT TIME ZONE 'UTC')::timestamp(3)"


# The passes `run` gets to let the writers finish; they need about 20 (the script's nine
# waits of two passes, the held transaction's six alongside). Passes are counted, never
# timed: a loaded machine only makes the test slower, not red.
MAX_PASSES = 60
STREAM_PER_PASS = 4  # the stream's commits between two passes' ends (throttled)


class Closed(Exception):
    """The passes ended (the test is over or failed) before a writer's wait was met."""


class Passes:
    """The number of passes finished; writers wait for passes that began after a commit.
    No wall-clock timeouts: a wait ends when its passes ran, or when the test closes it."""

    def __init__(self) -> None:
        self.done = 0
        self.closed = False
        self.cond = threading.Condition()

    def finished(self) -> None:
        with self.cond:
            self.done += 1
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, passes: int) -> None:
        """Until `passes` more passes finished; raises Closed when the passes end first."""
        with self.cond:
            target = self.done + passes
            self.cond.wait_for(lambda: self.done >= target or self.closed)
            if self.done < target:
                raise Closed

    def wait_two(self) -> None:
        """Until a whole pass ran after this moment (the one running may have begun
        before it)."""
        self.wait(2)


def _order(cur, stamp: str = NOW, params: tuple = ()) -> tuple[int, int, int]:
    """A sales order, its transaction and its payment, in the caller's transaction."""
    cur.execute(
        sql.SQL(
            "INSERT INTO sales_order (design_id, staff_id, counterparty_id, units_sold, "
            "unit_price, currency_id, agreed_delivery_date, agreed_payment_date, "
            "agreed_delivery_location_id, created_at, last_updated) VALUES "
            "(1, 1, 1, 10, 2.50, 1, '2030-01-02', '2030-01-03', 1, {0}, {0}) "
            "RETURNING sales_order_id"
        ).format(sql.SQL(stamp)),
        params * 2,
    )
    order = cur.fetchone()[0]
    cur.execute(
        sql.SQL(
            "INSERT INTO transaction (transaction_type, sales_order_id, created_at, "
            "last_updated) VALUES ('SALE', %s, {0}, {0}) RETURNING transaction_id"
        ).format(sql.SQL(stamp)),
        (order, *params * 2),
    )
    transaction = cur.fetchone()[0]
    cur.execute(
        sql.SQL(
            "INSERT INTO payment (transaction_id, counterparty_id, payment_amount, currency_id, "
            "payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number, "
            "created_at, last_updated) VALUES (%s, 1, 25.00, 1, 1, false, '2030-01-03', "
            "12345678, 87654321, {0}, {0}) RETURNING payment_id"
        ).format(sql.SQL(stamp)),
        (transaction, *params * 2),
    )
    return order, transaction, cur.fetchone()[0]


def _row(cur, table: str, key: int) -> tuple:
    names = T.BY_NAME[table].names
    cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, names)),
            sql.Identifier(table),
            sql.Identifier(T.BY_NAME[table].key),
        ),
        (key,),
    )
    return cur.fetchone()


class Writers:
    def __init__(self, url: str, passes: Passes) -> None:
        self.url, self.passes = url, passes
        self.stop = threading.Event()
        self.versions: list[tuple[str, tuple]] = []  # each seen by a whole pass
        self.deleted: list[tuple[int, int, int]] = []
        self.errors: list[BaseException] = []
        self.commits = 0

    def run(self, target) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except Closed:
                if target != self.stream:  # the stream waits until the end by design
                    self.errors.append(Closed(f"{target.__name__}: passes ended first"))
            except BaseException as exc:
                self.errors.append(exc)
                self.stop.set()

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        return thread

    def stream(self) -> None:
        """Orders with their transaction and payment, one commit each: a few while each
        pass runs, then a wait for its end (throttled: a loaded machine's passes are not
        starved, and every pass still has commits landing during it)."""
        conn = connect(self.url)
        try:
            while not self.stop.is_set():
                for _ in range(STREAM_PER_PASS):
                    with conn, conn.cursor() as cur:
                        _order(cur)
                    self.commits += 1
                    time.sleep(0.01)
                self.passes.wait(1)
        finally:
            conn.close()

    def script(self) -> None:
        conn = connect(self.url)
        rng = random.Random(7)
        try:
            for cycle in range(3):
                stamp = datetime(2031, 1, 1, 0, 0, cycle, 123000)
                with conn, conn.cursor() as cur:
                    burst = [_order(cur, "%s", (stamp,)) for _ in range(12)]  # one millisecond
                    first = _row(cur, "sales_order", burst[0][0])
                self.passes.wait_two()
                self.versions.append(("sales_order", first))
                with conn, conn.cursor() as cur:
                    # A second version within the same millisecond.
                    cur.execute(
                        "UPDATE sales_order SET units_sold = units_sold + 1 "
                        "WHERE sales_order_id = %s",
                        (burst[0][0],),
                    )
                    second = _row(cur, "sales_order", burst[0][0])
                    # A payment stamped older than its current version.
                    cur.execute(
                        "UPDATE payment SET paid = true, last_updated = '2001-01-01' "
                        "WHERE payment_id = %s",
                        (burst[1][2],),
                    )
                    older = _row(cur, "payment", burst[1][2])
                self.passes.wait_two()
                self.versions += [("sales_order", second), ("payment", older)]
                with conn, conn.cursor() as cur:
                    # An order, its transaction and its payment deleted in one commit.
                    order, transaction, payment = burst[rng.randrange(2, 12)]
                    cur.execute("DELETE FROM payment WHERE payment_id = %s", (payment,))
                    cur.execute("DELETE FROM transaction WHERE transaction_id = %s", (transaction,))
                    cur.execute("DELETE FROM sales_order WHERE sales_order_id = %s", (order,))
                self.deleted.append((order, transaction, payment))
                self.passes.wait_two()
        finally:
            conn.close()

    def held_open(self) -> None:
        """A transaction stamped at its start, committed four passes later."""
        conn = connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    f"UPDATE sales_order SET units_sold = 4242, last_updated = {NOW} "
                    "WHERE sales_order_id = 3"
                )
                order, transaction, payment = _order(cur)
                for _ in range(2):
                    self.passes.wait_two()
                late = [
                    ("sales_order", _row(cur, "sales_order", 3)),
                    ("sales_order", _row(cur, "sales_order", order)),
                    ("transaction", _row(cur, "transaction", transaction)),
                    ("payment", _row(cur, "payment", payment)),
                ]
            conn.commit()
            self.passes.wait_two()
            self.versions += late
        finally:
            conn.close()


def _inconsistent() -> list[tuple]:
    """Payments without their transaction, transactions without their order, in the copy."""
    with get_engine().connect() as conn:
        return conn.execute(
            text(
                "SELECT 'payment', p.payment_id FROM totesys.payment p WHERE NOT EXISTS "
                "(SELECT FROM totesys.transaction t WHERE t.transaction_id = p.transaction_id) "
                "UNION ALL SELECT 'transaction', t.transaction_id FROM totesys.transaction t "
                "WHERE t.sales_order_id IS NOT NULL AND NOT EXISTS (SELECT FROM "
                "totesys.sales_order o WHERE o.sales_order_id = t.sales_order_id)"
            )
        ).all()


def _rows(cur, schema: str | None, table: T.TotesysTable) -> list[tuple]:
    name = sql.Identifier(schema, table.name) if schema else sql.Identifier(table.name)
    cur.execute(
        sql.SQL("SELECT {} FROM {} ORDER BY 1").format(
            sql.SQL(", ").join(map(sql.Identifier, table.names)), name
        )
    )
    return cur.fetchall()


@pytest.mark.slow
def test_live_writes_while_run_passes(
    platform, seeded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract_module, "PAGE_ROWS", 5)  # bursts of 12 cross page boundaries
    run_once()
    passes = Passes()
    writers = Writers(seeded, passes)
    stream = writers.run(writers.stream)
    scripted = [writers.run(writers.script), writers.run(writers.held_open)]
    cuts: list[list[tuple]] = []
    built_under_writes = None
    try:
        while any(t.is_alive() for t in scripted) and len(cuts) < MAX_PASSES:
            run_once()
            cuts.append(_inconsistent())
            if len(cuts) == 6:
                # The warehouse built while the writers go on (the held transaction is
                # open, the stream commits): between two passes, no writer waits on a
                # clock, so however long dbt takes changes nothing but the duration.
                built_under_writes = run_transform(["path:models/warehouse"])
            passes.finished()
    finally:
        writers.stop.set()
        passes.close()  # a writer still waiting ends (and is reported below)
    stream.join()
    for thread in scripted:
        thread.join()
    assert not writers.errors, writers.errors  # a writer unfinished after MAX_PASSES too
    assert writers.commits >= STREAM_PER_PASS * len(cuts) and len(cuts) >= 12, (
        writers.commits,
        len(cuts),
    )
    assert [cut for cut in cuts if cut] == []  # every pass one consistent cut
    assert built_under_writes is not None and built_under_writes.ok, built_under_writes.render()

    run_once()  # the source is quiet now: the copy catches up in one pass

    source = connect(seeded)
    platform_conn = get_engine().raw_connection()
    try:
        with source.cursor() as src, platform_conn.cursor() as dst:
            for table in T.TABLES:
                assert _rows(src, None, table) == _rows(dst, T.DB_SCHEMA, table), table.name
            for table, row in writers.versions:
                names = T.BY_NAME[table].names
                dst.execute(
                    sql.SQL("SELECT {} FROM {} WHERE {} = %s AND {} IS NULL").format(
                        sql.SQL(", ").join(map(sql.Identifier, names)),
                        sql.Identifier(T.HISTORY_SCHEMA, table),
                        sql.Identifier(names[0]),
                        sql.Identifier(T.DELETED_AT),
                    ),
                    (row[0],),
                )
                assert row in dst.fetchall(), (table, row)
            for keys in writers.deleted:
                for table, key in zip(("sales_order", "transaction", "payment"), keys, strict=True):
                    dst.execute(
                        sql.SQL("SELECT count(*) FROM {} WHERE {} = %s AND {} IS NOT NULL").format(
                            sql.Identifier(T.HISTORY_SCHEMA, table),
                            sql.Identifier(f"{table}_id"),
                            sql.Identifier(T.DELETED_AT),
                        ),
                        (key,),
                    )
                    assert dst.fetchone() == (1,), (table, key)
    finally:
        source.close()
        platform_conn.close()

    built = run_transform(["path:models/warehouse"])
    assert built.ok, built.render()
    deleted_orders = [order for order, _, _ in writers.deleted]
    with get_engine().connect() as conn:
        facts = conn.execute(
            text(
                "SELECT sales_order_id, bool_or(is_current) FROM analytics.fact_sales_order "
                "WHERE sales_order_id = ANY(:o) GROUP BY 1"
            ),
            {"o": deleted_orders},
        ).all()
    assert sorted(facts) == [(order, False) for order in sorted(deleted_orders)]
