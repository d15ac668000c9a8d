"""Keep a seeded totesys database busy as the live business would be
(`python -m harness totesys simulate`).

About `rate` actions a second, each one transaction: a new sales order (with its
transaction and payment), a burst of new orders, an update of a few orders (units, price,
agreed dates), payments marked paid, now and then a counterparty, staff or address
update. Every row an action writes gets `last_updated` = the transaction's start
(`now()`, UTC, milliseconds), so the rows of one action share one millisecond. Every
20-40 s (the first after about a second) a long transaction runs beside the others: it
stamps a row early, sleeps a few seconds and commits late, behind rows with newer
timestamps: the row a watermark read by `last_updated` alone would miss.

`apply_updates` updates many orders in one statement (benchmarks).
"""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from psycopg2 import sql
from sqlalchemy.engine import URL

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import as_url, connect, shown
from data_platform.errors import DataPlatformError
from harness.totesys.seed import SCHEMA, existing_tables

log = logging.getLogger(__name__)

# The transaction's start, as the source stores timestamps: UTC, milliseconds.
NOW = sql.SQL("(now() AT TIME ZONE 'UTC')::timestamp(3)")
LONG_EVERY = (20.0, 40.0)  # seconds between two long transactions
LONG_SLEEP = (2.0, 4.0)  # how long one holds its early timestamp


class SimulateError(DataPlatformError):
    """The source database is not seeded (exit code 1)."""


@dataclass(frozen=True)
class LateRow:
    """A row whose `last_updated` is older than its commit: rows stamped later were
    committed before it."""

    table: str
    key: int
    last_updated: str  # as stored
    committed_at: str  # the clock just before COMMIT, same clock and format


@dataclass
class SimulateResult:
    database: str
    seconds: float = 0.0
    orders_created: int = 0
    orders_updated: int = 0
    payments_paid: int = 0
    others_updated: int = 0  # counterparty, staff, address
    long_transactions: int = 0
    late_rows: list[LateRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def render(self) -> str:
        return (
            f"simulated {self.seconds:.0f} s on {self.database}: "
            f"{self.orders_created} order(s) created, {self.orders_updated} updated, "
            f"{self.payments_paid} payment(s) paid, {self.others_updated} other update(s), "
            f"{self.long_transactions} long transaction(s)"
        )


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


class _Business:
    """The actions, on one connection; ids drawn from the current key ranges."""

    def __init__(self, conn, rng: random.Random, lock: threading.Lock) -> None:
        self.conn, self.rng, self.lock = conn, rng, lock
        self.busy: set[int] = set()  # orders a long transaction holds: the others skip them
        with conn, conn.cursor() as cur:
            self.max_id = {}
            for name in ("address", "design", "staff", "counterparty", "sales_order", "payment"):
                table = T.BY_NAME[name]
                cur.execute(
                    sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
                        sql.Identifier(table.key), _ident(name)
                    )
                )
                self.max_id[name] = cur.fetchone()[0]
            cur.execute("SELECT currency_id FROM public.currency ORDER BY currency_id")
            self.currencies = [row[0] for row in cur.fetchall()]
            cur.execute("SELECT payment_type_name, payment_type_id FROM public.payment_type")
            self.payment_types = dict(cur.fetchall())
        for name in ("address", "design", "staff", "counterparty", "sales_order"):
            if not self.max_id[name]:
                raise SimulateError(f"the source has no {name} rows: seed it first")

    def on(self, conn, rng: random.Random) -> _Business:
        """The same business (shared key ranges) on another connection."""
        other = copy.copy(self)
        other.conn, other.rng = conn, rng
        return other

    def pick_locked(self, name: str) -> int:
        """One id of `name` not held by a long transaction; the caller holds the lock."""
        while True:
            key = self.rng.randint(1, self.max_id[name])
            if key not in self.busy:
                return key

    def pick(self, name: str, k: int = 1) -> list[int]:
        with self.lock:
            top = self.max_id[name]
            busy = set(self.busy) if name == "sales_order" else set()
        ids = self.rng.sample(range(1, top + 1), min(k, top)) if top else []
        return [i for i in ids if i not in busy]

    def _insert(self, cur, name: str, values: dict[str, object]) -> int:
        table = T.BY_NAME[name]
        unknown = set(values) - set(table.names)
        assert not unknown, unknown
        columns = [sql.Identifier(c) for c in values] + [
            sql.Identifier(T.CREATED),
            sql.Identifier(T.UPDATED),
        ]
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({}, {}, {}) RETURNING {}").format(
                _ident(name),
                sql.SQL(", ").join(columns),
                sql.SQL(", ").join(sql.Placeholder() * len(values)),
                NOW,
                NOW,
                sql.Identifier(table.key),
            ),
            list(values.values()),
        )
        return cur.fetchone()[0]

    def new_order(self, cur) -> int:
        """A sales order, its transaction and (mostly) its payment; returns the order id."""
        rng = self.rng
        today = datetime.now(UTC).date()
        units, price = rng.randint(1000, 100_000), round(rng.uniform(2.0, 4.0), 2)
        counterparty, currency = self.pick("counterparty")[0], rng.choice(self.currencies)
        payment_date = (today + timedelta(days=rng.randint(1, 30))).isoformat()
        order = self._insert(
            cur,
            "sales_order",
            {
                "design_id": self.pick("design")[0],
                "staff_id": self.pick("staff")[0],
                "counterparty_id": counterparty,
                "units_sold": units,
                "unit_price": price,
                "currency_id": currency,
                "agreed_delivery_date": (today + timedelta(days=rng.randint(2, 14))).isoformat(),
                "agreed_payment_date": payment_date,
                "agreed_delivery_location_id": self.pick("address")[0],
            },
        )
        transaction = self._insert(
            cur,
            "transaction",
            {"transaction_type": "SALE", "sales_order_id": order, "purchase_order_id": None},
        )
        if rng.random() < 0.9:
            payment = self._insert(
                cur,
                "payment",
                {
                    "transaction_id": transaction,
                    "counterparty_id": counterparty,
                    "payment_amount": round(units * price, 2),
                    "currency_id": currency,
                    "payment_type_id": self.payment_types["SALES_RECEIPT"],
                    "paid": False,
                    "payment_date": payment_date,
                    "company_ac_number": rng.randint(10_000_000, 99_999_999),
                    "counterparty_ac_number": rng.randint(10_000_000, 99_999_999),
                },
            )
            with self.lock:
                self.max_id["payment"] = max(self.max_id["payment"], payment)
        with self.lock:
            self.max_id["sales_order"] = max(self.max_id["sales_order"], order)
        return order

    def update_orders(self, cur, ids: list[int]) -> int:
        """New units, price and agreed dates for `ids`, all in one statement."""
        rng = self.rng
        shift = rng.randint(-3, 7)
        cur.execute(
            sql.SQL(
                "UPDATE {} SET units_sold = greatest(1, units_sold + %s), "
                "unit_price = greatest(0.01, unit_price + %s), "
                "agreed_delivery_date = to_char(agreed_delivery_date::date + %s, 'YYYY-MM-DD'), "
                "agreed_payment_date = to_char(agreed_payment_date::date + %s, 'YYYY-MM-DD'), "
                "{} = {} WHERE sales_order_id = ANY(%s)"
            ).format(_ident("sales_order"), sql.Identifier(T.UPDATED), NOW),
            (rng.randint(-500, 2000), round(rng.uniform(-0.2, 0.3), 2), shift, shift, ids),
        )
        return cur.rowcount

    def pay(self, cur, k: int) -> int:
        """Mark up to `k` unpaid payments (from a random point on) paid."""
        start = self.pick("payment")
        if not start:
            return 0
        cur.execute(
            sql.SQL(
                "UPDATE {t} SET paid = true, {u} = {now} WHERE payment_id IN "
                "(SELECT payment_id FROM {t} WHERE NOT paid AND payment_id >= %s "
                "ORDER BY payment_id LIMIT %s)"
            ).format(t=_ident("payment"), u=sql.Identifier(T.UPDATED), now=NOW),
            (start[0], k),
        )
        return cur.rowcount

    def update_other(self, cur) -> int:
        """A counterparty's contact, a staff member's e-mail or an address's phone."""
        rng = self.rng
        name, column, value = rng.choice(
            (
                ("counterparty", "commercial_contact", f"Contact {rng.randint(1, 9999)}"),
                ("staff", "email_address", f"staff{rng.randint(1, 9999)}@terrifictotes.com"),
                ("address", "phone", f"{rng.randint(1000, 9999)} {rng.randint(100000, 999999)}"),
            )
        )
        table = T.BY_NAME[name]
        cur.execute(
            sql.SQL("UPDATE {} SET {} = %s, {} = {} WHERE {} = %s").format(
                _ident(name),
                sql.Identifier(column),
                sql.Identifier(T.UPDATED),
                NOW,
                sql.Identifier(table.key),
            ),
            (value, self.pick(name)[0]),
        )
        return cur.rowcount


def simulate(
    *,
    minutes: float,
    rate: float = 5.0,
    seed: int | None = None,
    url: URL | str | None = None,
    stop: Callable[[], bool] | None = None,
) -> SimulateResult:
    """Insert and update rows as the business would, about `rate` actions a second, until
    `minutes` have passed or `stop()` returns True. A long transaction still sleeping
    then is waited for (at most a few seconds).

    Raises SimulateError when the source is not seeded."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    url = as_url(url)
    result = SimulateResult(shown(url))
    rng = random.Random(seed)
    lock = threading.Lock()
    conn = connect(url)
    long_threads: list[threading.Thread] = []
    started = time.monotonic()
    deadline = started + minutes * 60
    try:
        with conn, conn.cursor() as cur:
            present = existing_tables(cur)
        if len(present) < len(T.TABLES):
            raise SimulateError(
                f"{result.database} is not seeded: run `python -m harness totesys seed` first"
            )
        business = _Business(conn, rng, lock)
        next_long = started + 1.0
        next_report, minute = started + 60, 0
        interval = 1.0 / rate
        while True:
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop()):
                break
            if now >= next_long:
                thread = threading.Thread(
                    target=_long_transaction,
                    args=(url, random.Random(rng.random()), lock, business, result),
                    name="totesys-long-transaction",
                    daemon=True,
                )
                thread.start()
                long_threads.append(thread)
                next_long = now + rng.uniform(*LONG_EVERY)
            _act(business, rng, result, lock)
            if now >= next_report:
                minute += 1
                next_report += 60
                log.info(
                    "minute %d: %d order(s) created, %d updated, %d payment(s) paid, "
                    "%d other update(s), %d long transaction(s)",
                    minute,
                    result.orders_created,
                    result.orders_updated,
                    result.payments_paid,
                    result.others_updated,
                    result.long_transactions,
                )
            pause = interval - (time.monotonic() - now)
            if pause > 0:
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
    finally:
        for thread in long_threads:
            thread.join()
        conn.close()
    result.seconds = time.monotonic() - started
    log.info("%s", result.render())
    return result


def _act(business: _Business, rng: random.Random, result: SimulateResult, lock) -> None:
    conn = business.conn
    r = rng.random()
    with conn, conn.cursor() as cur:
        if r < 0.35:
            business.new_order(cur)
            created = 1
        elif r < 0.45:
            burst = rng.randint(3, 15)  # one import: every row in one millisecond
            for _ in range(burst):
                business.new_order(cur)
            created = burst
        else:
            created = 0
            if r < 0.70:
                updated = business.update_orders(
                    cur, business.pick("sales_order", rng.randint(1, 20))
                )
                with lock:
                    result.orders_updated += updated
            elif r < 0.90:
                paid = business.pay(cur, rng.randint(1, 10))
                with lock:
                    result.payments_paid += paid
            else:
                other = business.update_other(cur)
                with lock:
                    result.others_updated += other
    if created:
        with lock:
            result.orders_created += created


def _long_transaction(url: URL, rng, lock, business: _Business, result: SimulateResult) -> None:
    """Stamp a row early (update an order, or create one), sleep, commit late. An updated
    order is held aside meanwhile, so the other actions go on and commit newer rows."""
    conn = connect(url)
    held: int | None = None
    try:
        own = business.on(conn, rng)
        with conn, conn.cursor() as cur:
            if rng.random() < 0.5:
                with lock:
                    held = own.pick_locked("sales_order")
                    own.busy.add(held)
                own.update_orders(cur, [held])
                key, verb = held, "updated"
            else:
                key, verb = own.new_order(cur), "created"
            cur.execute(
                sql.SQL("SELECT {}::text FROM {} WHERE sales_order_id = %s").format(
                    sql.Identifier(T.UPDATED), _ident("sales_order")
                ),
                (key,),
            )
            stamped = cur.fetchone()[0]
            time.sleep(rng.uniform(*LONG_SLEEP))
            cur.execute("SELECT (clock_timestamp() AT TIME ZONE 'UTC')::timestamp(3)::text")
            committed = cur.fetchone()[0]
        log.info(
            "long transaction: sales_order %d %s at %s, committed at %s",
            key,
            verb,
            stamped,
            committed,
        )
        with lock:
            result.long_transactions += 1
            result.late_rows.append(LateRow("sales_order", key, stamped, committed))
            if verb == "created":
                result.orders_created += 1
            else:
                result.orders_updated += 1
    finally:
        if held is not None:
            with lock:
                business.busy.discard(held)
        conn.close()


def apply_updates(n: int, url: URL | str | None = None, *, seed: int | None = None) -> int:
    """Update `n` random existing sales orders (units, price, dates) in one statement, all
    sharing one `last_updated`; returns how many were updated."""
    url = as_url(url)
    conn = connect(url)
    try:
        business = _Business(conn, random.Random(seed), threading.Lock())
        with conn, conn.cursor() as cur:
            updated = business.update_orders(cur, business.pick("sales_order", n))
    finally:
        conn.close()
    log.info("updated %d sales order(s) of %s", updated, shown(url))
    return updated
