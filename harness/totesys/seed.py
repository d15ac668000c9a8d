"""Create the totesys source database and fill it with a made-up but plausible history of
a design and sales business (`python -m harness totesys seed`).

The schema comes from `tables.py`: the eleven tables in the `public` schema, keys
(identity columns, so `simulate` can insert), NOT NULL, foreign keys and an index on
(`last_updated`, key) per table, the order the extraction reads in. The data is the same
for the same `seed`: about 30 addresses, GBP/USD/EUR, 8 departments, 50 designs, 20
staff, 20 counterparties, the four payment types, `orders` sales orders and a quarter as
many purchase orders over two years from 2022-11-03, a transaction per order and a
payment for most. Rows come in batches that share one `last_updated` millisecond, as an
application committing many rows at once writes them.

Loading streams generated rows into COPY (sales orders directly, the tables that follow
through temporary files), all in one transaction; keys, foreign keys and indexes are
built after the rows are in. A million orders take well under a minute, in flat memory.

The role `totesys_reader` (LOGIN, SELECT only, also on tables created later) is what the
platform reads as. Seeding a seeded database does nothing; `reset` drops and recreates.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import IO

from psycopg2 import sql
from sqlalchemy.engine import URL

from data_platform import streams
from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import (
    READER_ROLE,
    as_url,
    connect,
    ensure_database,
    shown,
)
from data_platform.errors import DataPlatformError

log = logging.getLogger(__name__)

SCHEMA = "public"
HISTORY_START = datetime(2022, 11, 3, 14, 20, 49, 962000)
HISTORY_DAYS = 730
PAYMENT_TYPES = ("SALES_RECEIPT", "SALES_REFUND", "PURCHASE_PAYMENT", "PURCHASE_REFUND")
CURRENCIES = ("GBP", "USD", "EUR")
_LOCK = 7_401_952_113  # pg_advisory_xact_lock: one seed of a database at a time
_SPOOL_BYTES = 16 * 1024 * 1024  # temporary files stay in memory up to this size
_CHUNK_ROWS = 2000


class SeedError(DataPlatformError):
    """The source database holds some totesys tables but not all (exit code 1)."""


@dataclass
class SeedResult:
    database: str  # the source URL, password masked
    seeded: bool  # False: it was seeded already and nothing was done
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    reset: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def render(self) -> str:
        if not self.seeded:
            total = sum(self.rows.values())
            return (
                f"{self.database} is seeded already ({total} rows in {len(self.rows)} tables): "
                "nothing done (--reset drops and recreates it)"
            )
        counts = ", ".join(f"{name} {count}" for name, count in self.rows.items())
        verb = "re-seeded" if self.reset else "seeded"
        return f"{verb} {self.database} in {self.seconds:.1f} s: {counts}"


def seed(
    *,
    orders: int = 2000,
    seed: int = 1,
    url: URL | str | None = None,
    reset: bool = False,
) -> SeedResult:
    """Create the source schema and fill it (the same rows for the same `seed`), creating
    the database and the reader role if missing. A seeded database is left as it is
    unless `reset`, which drops the eleven tables first.

    Raises SeedError when only some of the tables exist (and not `reset`)."""
    if orders < 0:
        raise ValueError("orders must be >= 0")
    started = time.monotonic()
    url = ensure_database(as_url(url))
    ensure_reader_role(url)
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            present = existing_tables(cur)
            if present and not reset:
                if len(present) < len(T.TABLES):
                    missing = [t.name for t in T.TABLES if t.name not in present]
                    raise SeedError(
                        f"{shown(url)} holds some totesys tables but not {', '.join(missing)}: "
                        "seed with --reset to drop and recreate them"
                    )
                return SeedResult(shown(url), seeded=False, rows=_counts(cur))
            if present:
                for table in reversed(T.TABLES):
                    cur.execute(
                        sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(_ident(table.name))
                    )
                log.info("dropped the totesys tables of %s", shown(url))
            cur.execute("SET LOCAL synchronous_commit = off")
            for table in T.TABLES:
                cur.execute(create_table_sql(table))
            rows = _load(cur, _Generator(seed), orders)
            for statement in constraint_sql():
                cur.execute(statement)
            for table in T.TABLES:
                _restart_identity(cur, table)
            _grant_reader(cur, url.database)
            cur.execute(sql.SQL("ANALYZE"))
    finally:
        conn.close()
    result = SeedResult(shown(url), True, rows, time.monotonic() - started, reset=bool(present))
    log.info("%s", result.render())
    return result


# --- schema ----------------------------------------------------------------------------


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def create_table_sql(table: T.TotesysTable) -> sql.Composed:
    """CREATE TABLE for `table`: columns, types and NOT NULL as tables.py has them; the key
    an identity column (constraints come after the load: `constraint_sql`)."""
    columns = []
    for position, col in enumerate(table.columns):
        parts = [sql.Identifier(col.name), sql.SQL(col.type)]
        if position == 0:
            parts.append(sql.SQL("GENERATED BY DEFAULT AS IDENTITY"))
        if not col.nullable:
            parts.append(sql.SQL("NOT NULL"))
        columns.append(sql.SQL(" ").join(parts))
    return sql.SQL("CREATE TABLE {} ({})").format(_ident(table.name), sql.SQL(", ").join(columns))


def constraint_sql() -> list[sql.Composed]:
    """Primary keys, then foreign keys (`references` in tables.py), then the
    (`last_updated`, key) indexes, for every table."""
    keys, foreign, indexes = [], [], []
    for table in T.TABLES:
        keys.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                _ident(table.name), sql.Identifier(f"{table.name}_pkey"), sql.Identifier(table.key)
            )
        )
        for col in table.columns:
            if col.references:
                target, target_col = col.references.split(".")
                foreign.append(
                    sql.SQL(
                        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})"
                    ).format(
                        _ident(table.name),
                        sql.Identifier(f"{table.name}_{col.name}_fkey"),
                        sql.Identifier(col.name),
                        _ident(target),
                        sql.Identifier(target_col),
                    )
                )
        indexes.append(
            sql.SQL("CREATE INDEX {} ON {} ({}, {})").format(
                sql.Identifier(f"{table.name}_{T.UPDATED}_idx"),
                _ident(table.name),
                sql.Identifier(T.UPDATED),
                sql.Identifier(table.key),
            )
        )
    return keys + foreign + indexes


def existing_tables(cur) -> set[str]:
    """Which of the eleven tables exist in the source's public schema."""
    cur.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = %s AND table_name = ANY(%s)",
        (SCHEMA, [t.name for t in T.TABLES]),
    )
    return {name for (name,) in cur.fetchall()}


def _counts(cur) -> dict[str, int]:
    counts = {}
    for table in T.TABLES:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(table.name)))
        counts[table.name] = cur.fetchone()[0]
    return counts


def _restart_identity(cur, table: T.TotesysTable) -> None:
    """Let inserts after the load (simulate) continue after the loaded keys."""
    cur.execute(
        sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max({key}), 0) + 1, false) "
            "FROM {table}"
        ).format(key=sql.Identifier(table.key), table=_ident(table.name)),
        (_ident(table.name).as_string(cur), table.key),
    )


# --- the reader role -------------------------------------------------------------------


def ensure_reader_role(url: URL) -> None:
    """Create the cluster role `totesys_reader` (LOGIN, read-only transactions) if missing."""
    import psycopg2

    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER_ROLE,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(READER_ROLE)))
                    cur.execute(
                        sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                            sql.Identifier(READER_ROLE)
                        )
                    )
                    log.info("created role %s", READER_ROLE)
                except (psycopg2.errors.DuplicateObject, psycopg2.errors.UniqueViolation):
                    pass  # created by another seed at the same moment
    finally:
        conn.close()


def _grant_reader(cur, database: str) -> None:
    """SELECT on every table of the public schema, now and later; nothing else."""
    role, schema = sql.Identifier(READER_ROLE), sql.Identifier(SCHEMA)
    for statement in (
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), role),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, role),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
            schema, role
        ),
    ):
        cur.execute(statement)


# --- loading ---------------------------------------------------------------------------


def _copy(cur, table: T.TotesysTable, source) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        _ident(table.name), sql.SQL(", ").join(map(sql.Identifier, table.names))
    )
    cur.copy_expert(statement, source, size=65536)


def _generated(chunks: Iterable[str]) -> streams.ChunkReader:
    """Generated text as a file for copy_expert: memory stays flat."""
    return streams.ChunkReader(chunk.encode() for chunk in chunks)


def _load(cur, gen: _Generator, orders: int) -> dict[str, int]:
    rows: dict[str, int] = {}
    for name, data in gen.reference_tables():
        rows[name] = len(data)
        _copy(cur, T.BY_NAME[name], _generated(["".join(_line(r) for r in data)]))
    with contextlib.ExitStack() as stack:
        spools = {
            name: stack.enter_context(
                tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8")
            )
            for name in ("purchase_order", "transaction", "payment")
        }
        counts: dict[str, int] = {}
        _copy(cur, T.BY_NAME["sales_order"], _generated(gen.orders(orders, spools, counts)))
        rows["sales_order"] = counts["sales_order"]
        for name, spool in spools.items():
            spool.seek(0)
            _copy(cur, T.BY_NAME[name], spool)
            rows[name] = counts[name]
    log.debug("copied %s", rows)
    return {t.name: rows[t.name] for t in T.TABLES}


def _line(values) -> str:
    return "\t".join(r"\N" if v is None else str(v) for v in values) + "\n"


# --- the data --------------------------------------------------------------------------

_STREETS = (
    "Avenue Road", "Alexie Cliffs", "Crescent Way", "High Street", "Mill Lane",
    "Station Road", "Church Street", "Park Avenue", "Victoria Road", "Kings Road",
    "Queens Walk", "Harbour View", "Market Square", "Orchard Close", "Riverside Drive",
)  # fmt: skip
_LINE_2 = ("Flat 2", "Suite 100", "Unit 7", "Apartment 14", "Floor 3", "Building B")
_DISTRICTS = (
    "Avon", "Bedfordshire", "Cambridgeshire", "Buckinghamshire", "Surrey", "Kent",
    "Lancashire", "Yorkshire", "Merseyside", "Cheshire",
)  # fmt: skip
_CITIES = (
    ("Leeds", "United Kingdom"), ("Manchester", "United Kingdom"),
    ("London", "United Kingdom"), ("Bristol", "United Kingdom"),
    ("New York", "United States"), ("Chicago", "United States"),
    ("Austin", "United States"), ("Paris", "France"), ("Lyon", "France"),
    ("Berlin", "Germany"), ("Munich", "Germany"), ("Madrid", "Spain"),
    ("Dublin", "Ireland"), ("Amsterdam", "Netherlands"),
)  # fmt: skip
_DEPARTMENTS = (
    ("Sales", "Manchester"), ("Purchasing", "Manchester"), ("Production", "Leeds"),
    ("Dispatch", "Leeds"), ("Finance", "Manchester"), ("Facilities", "Manchester"),
    ("Communications", "Leeds"), ("HR", "Leeds"),
)  # fmt: skip
_FIRST = (
    "Jeremie", "Deron", "Jeanette", "Ana", "Magdalena", "Korey", "Raphael", "Oswaldo",
    "Brody", "Jazmyn", "Meda", "Imani", "Stan", "Rigoberto", "Tom", "Pierre", "Yolanda",
    "Carmen", "Nadia", "Omar", "Priya", "Sofia", "Henrik", "Aoife",
)  # fmt: skip
_LAST = (
    "Franey", "Beier", "Erdman", "Glover", "Zieme", "Walsh", "Rath", "Bergstrom",
    "Ratke", "Hauck", "Cremin", "Schmidt", "Lehner", "Fahey", "Kiehn", "Bashirian",
    "Moen", "Ortiz", "Kowalski", "Nguyen", "Okafor", "Murphy",
)  # fmt: skip
_COMPANIES = (
    "Fahey and Sons", "Leannon, Predovic and Morar", "Armstrong Inc", "Kohler Inc",
    "Frami, Yundt and Macejkovic", "Mraz LLC", "Padberg, Lueilwitz and Johnson",
    "Grant - Lakin", "Price LLC", "Bosco - Grady", "Hartmann Ltd", "Yost and Daughters",
    "Northwind Totes", "Bayer Group", "Lowe Holdings", "Marks Trading", "Kunze plc",
    "Rowe & Baxter", "Emmerich GmbH", "Quigley SARL", "Torp Industries", "Crist Partners",
)  # fmt: skip
_DESIGN_WORDS = (
    "Wooden", "Steel", "Granite", "Bronze", "Cotton", "Plastic", "Rubber", "Frozen",
    "Soft", "Fresh", "Concrete", "Marble", "Linen", "Leather", "Silk", "Velvet",
    "Canvas", "Denim", "Hemp", "Jute",
)  # fmt: skip
_FILE_LOCATIONS = (
    "/usr/share", "/private", "/usr/local/src", "/home/user/dir", "/System",
    "/opt/include", "/var/lib", "/usr/X11R6",
)  # fmt: skip
_ITEM_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@functools.lru_cache(maxsize=8192)
def _day(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class _Generator:
    """The rows of one seed, table by table, always the same for the same seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.counts = {"address": 30, "department": len(_DEPARTMENTS), "design": 50}
        self.counts |= {"staff": 20, "counterparty": 20}
        self.start = _stamp_text(HISTORY_START)

    def reference_tables(self) -> list[tuple[str, list[tuple]]]:
        """address, currency, department, design, payment_type, counterparty, staff: all
        created in one millisecond (one import), a few updated later."""
        rng, start = self.rng, self.start
        tables: list[tuple[str, list[tuple]]] = []

        def stamps() -> tuple[str, str]:
            if rng.random() < 0.2:
                later = HISTORY_START + timedelta(days=rng.randint(1, 400), seconds=rng.random())
                return start, _stamp_text(later)
            return start, start

        address = []
        for i in range(1, self.counts["address"] + 1):
            city, country = rng.choice(_CITIES)
            address.append(
                (
                    i,
                    f"{rng.randint(1, 250)} {rng.choice(_STREETS)}",
                    rng.choice(_LINE_2) if rng.random() < 0.4 else None,
                    rng.choice(_DISTRICTS) if rng.random() < 0.6 else None,
                    city,
                    f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
                    country,
                    f"{rng.randint(1000, 9999)} {rng.randint(100000, 999999)}",
                    *stamps(),
                )
            )
        tables.append(("address", address))
        tables.append(("currency", [(i, c, start, start) for i, c in enumerate(CURRENCIES, 1)]))
        department = [
            (i, name, place, f"{rng.choice(_FIRST)} {rng.choice(_LAST)}", *stamps())
            for i, (name, place) in enumerate(_DEPARTMENTS, 1)
        ]
        tables.append(("department", department))
        design = []
        for i in range(1, self.counts["design"] + 1):
            name = rng.choice(_DESIGN_WORDS)
            file_name = f"{name.lower()}-{rng.getrandbits(32):08x}.json"
            design.append((i, name, rng.choice(_FILE_LOCATIONS), file_name, *stamps()))
        tables.append(("design", design))
        types = [(i, name, start, start) for i, name in enumerate(PAYMENT_TYPES, 1)]
        tables.append(("payment_type", types))
        counterparty = []
        for i, name in enumerate(rng.sample(_COMPANIES, self.counts["counterparty"]), 1):
            contact = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
            delivery = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" if rng.random() < 0.9 else None
            legal_address = rng.randint(1, self.counts["address"])
            counterparty.append((i, name, legal_address, contact, delivery, *stamps()))
        tables.append(("counterparty", counterparty))
        staff, emails = [], set()
        for i in range(1, self.counts["staff"] + 1):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            email = f"{first}.{last}".lower()
            if email in emails:
                email += str(i)
            emails.add(email)
            department_id = rng.randint(1, len(_DEPARTMENTS))
            staff.append((i, first, last, department_id, f"{email}@terrifictotes.com", *stamps()))
        tables.append(("staff", staff))
        return tables

    def orders(self, orders: int, spools: dict[str, IO[str]], counts: dict[str, int]):
        """Yield the sales_order rows as COPY text, writing the purchase orders,
        transactions and payments into `spools`; `counts` gets the row counts at the end.

        Orders arrive in batches of 1-23 sharing one millisecond; about a third are
        updated later, at the millisecond of a later batch (so sharing it too)."""
        rng = self.rng
        rand, randint = rng.random, rng.randint
        purchases = orders // 4
        total = orders + purchases
        batches = max(1, total // 12)
        step = HISTORY_DAYS * 86_400_000 / batches
        origin = HISTORY_START + timedelta(days=1)
        # An update lands on a later batch's millisecond, within the history.
        reach = max(1, min(400, batches // 4))

        def later(batch: int) -> int:
            target = batch + 1 + int(rand() * reach)
            return target if target <= batches else batch

        @functools.lru_cache(maxsize=2048)
        def stamp(batch: int) -> str:
            return _stamp_text(origin + timedelta(milliseconds=int(batch * step)))

        c = self.counts
        n_address, n_design, n_staff, n_cp = (
            c["address"],
            c["design"],
            c["staff"],
            c["counterparty"],
        )
        so_id = po_id = tx_id = pay_id = 0
        sales_left, purchases_left = orders, purchases
        batch, in_batch = 0, randint(1, 23)
        chunk: list[str] = []
        po_out, tx_out, pay_out = [], [], []
        out_po, out_tx, out_pay = spools["purchase_order"], spools["transaction"], spools["payment"]
        origin_ordinal = origin.toordinal()
        while sales_left or purchases_left:
            if in_batch == 0:
                batch += 1
                in_batch = randint(1, 23)
            in_batch -= 1
            created = stamp(batch)
            day = origin_ordinal + int(batch * step / 86_400_000)
            delivery = _day(day + 2 + int(rand() * 12))
            payment_date = _day(day + 1 + int(rand() * 30))
            updated = stamp(later(batch)) if rand() < 0.3 else created
            counterparty = 1 + int(rand() * n_cp)
            r = rand()
            currency = 1 if r < 0.5 else (2 if r < 0.8 else 3)
            location = 1 + int(rand() * n_address)
            staff = 1 + int(rand() * n_staff)
            tx_id += 1
            if rand() * (sales_left + purchases_left) < sales_left:
                sales_left -= 1
                so_id += 1
                units = 1000 + int(rand() * 99_000)
                price = 200 + int(rand() * 200)
                design = 1 + int(rand() * n_design)
                chunk.append(
                    f"{so_id}\t{design}\t{staff}\t{counterparty}\t{units}\t{_money(price)}\t"
                    f"{currency}\t{delivery}\t{payment_date}\t{location}\t{created}\t{updated}\n"
                )
                tx_out.append(f"{tx_id}\tSALE\t{so_id}\t\\N\t{created}\t{created}\n")
                amount, kind = units * price, 2 if rand() < 0.03 else 1
            else:
                purchases_left -= 1
                po_id += 1
                code = "".join(rng.choices(_ITEM_CHARS, k=7))
                quantity = 1 + int(rand() * 1000)
                price = 100 + int(rand() * 99_900)
                po_out.append(
                    f"{po_id}\t{staff}\t{counterparty}\t{code}\t{quantity}\t{_money(price)}\t"
                    f"{currency}\t{delivery}\t{payment_date}\t{location}\t{created}\t{updated}\n"
                )
                tx_out.append(f"{tx_id}\tPURCHASE\t\\N\t{po_id}\t{created}\t{created}\n")
                amount, kind = quantity * price, 4 if rand() < 0.03 else 3
            if rand() < 0.9:
                pay_id += 1
                paid = rand() < 0.7
                paid_at = stamp(later(batch)) if paid else created
                pay_out.append(
                    f"{pay_id}\t{tx_id}\t{counterparty}\t{_money(amount)}\t{currency}\t{kind}\t"
                    f"{'t' if paid else 'f'}\t{payment_date}\t{randint(10_000_000, 99_999_999)}\t"
                    f"{randint(10_000_000, 99_999_999)}\t{created}\t{paid_at}\n"
                )
            if len(tx_out) >= _CHUNK_ROWS:
                out_po.write("".join(po_out))
                out_tx.write("".join(tx_out))
                out_pay.write("".join(pay_out))
                po_out.clear(), tx_out.clear(), pay_out.clear()
                if chunk:
                    yield "".join(chunk)
                    chunk.clear()
        out_po.write("".join(po_out))
        out_tx.write("".join(tx_out))
        out_pay.write("".join(pay_out))
        counts.update(sales_order=so_id, purchase_order=po_id, transaction=tx_id, payment=pay_id)
        if chunk:
            yield "".join(chunk)


def _stamp_text(value: datetime) -> str:
    return value.isoformat(sep=" ", timespec="milliseconds")
