"""The eleven totesys tables: columns, Postgres types, keys. One description serves the
source schema that the harness's `totesys seed` creates, the extraction's queries and the landing
tables' revision (migrations/totesys/), which was written from it and is reviewed as any.

Every table has `created_at` and `last_updated` (timestamp, milliseconds, not null); the
extraction reads rows by the transactions that wrote them (extract.py), the platform keeps
their timestamps to the microsecond."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from psycopg2 import sql

if TYPE_CHECKING:
    from data_platform.db.models import SourceName

SOURCE: Final[SourceName] = "totesys"
DB_SCHEMA = "totesys"  # current state, one row per key
HISTORY_SCHEMA = "totesys_history"  # every distinct version seen (by content), and deletes
UPDATED = "last_updated"
CREATED = "created_at"
TIMESTAMP = "timestamp(3) without time zone"  # the source's; the platform keeps microseconds
# Columns the extracted files carry besides the source's: the pass that read the row (its
# time, UTC, microseconds) and whether the row is a delete (the key only, found gone).
EXTRACTED = "dp__extracted_at"
DELETED = "dp__deleted"
# Columns of the landing tables the loader writes: the version (md5 of the source columns
# as a uuid), and in the history the pass that found the key deleted.
VERSION = "dp__version"
DELETED_AT = "dp__deleted_at"


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    nullable: bool = False
    references: str | None = None  # "table.column"


@dataclass(frozen=True)
class TotesysTable:
    name: str
    columns: tuple[Col, ...]  # the key first; created_at and last_updated last

    @property
    def key(self) -> str:
        return self.columns[0].name

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _table(name: str, *columns: Col) -> TotesysTable:
    return TotesysTable(
        name,
        (Col(f"{name}_id", "integer"), *columns, Col(CREATED, TIMESTAMP), Col(UPDATED, TIMESTAMP)),
    )


TEXT, INT = "text", "integer"
TABLES: tuple[TotesysTable, ...] = (
    _table(
        "address",
        Col("address_line_1", TEXT),
        Col("address_line_2", TEXT, nullable=True),
        Col("district", TEXT, nullable=True),
        Col("city", TEXT),
        Col("postal_code", TEXT),
        Col("country", TEXT),
        Col("phone", TEXT),
    ),
    _table("currency", Col("currency_code", "character(3)")),
    _table(
        "department",
        Col("department_name", TEXT),
        Col("location", TEXT, nullable=True),
        Col("manager", TEXT, nullable=True),
    ),
    _table("design", Col("design_name", TEXT), Col("file_location", TEXT), Col("file_name", TEXT)),
    _table("payment_type", Col("payment_type_name", TEXT)),
    _table(
        "counterparty",
        Col("counterparty_legal_name", TEXT),
        Col("legal_address_id", INT, references="address.address_id"),
        Col("commercial_contact", TEXT, nullable=True),
        Col("delivery_contact", TEXT, nullable=True),
    ),
    _table(
        "staff",
        Col("first_name", TEXT),
        Col("last_name", TEXT),
        Col("department_id", INT, references="department.department_id"),
        Col("email_address", TEXT),
    ),
    _table(
        "sales_order",
        Col("design_id", INT, references="design.design_id"),
        Col("staff_id", INT, references="staff.staff_id"),
        Col("counterparty_id", INT, references="counterparty.counterparty_id"),
        Col("units_sold", INT),
        Col("unit_price", "numeric(10,2)"),
        Col("currency_id", INT, references="currency.currency_id"),
        Col("agreed_delivery_date", TEXT),
        Col("agreed_payment_date", TEXT),
        Col("agreed_delivery_location_id", INT, references="address.address_id"),
    ),
    _table(
        "purchase_order",
        Col("staff_id", INT, references="staff.staff_id"),
        Col("counterparty_id", INT, references="counterparty.counterparty_id"),
        Col("item_code", TEXT),
        Col("item_quantity", INT),
        Col("item_unit_price", "numeric(12,2)"),
        Col("currency_id", INT, references="currency.currency_id"),
        Col("agreed_delivery_date", TEXT),
        Col("agreed_payment_date", TEXT),
        Col("agreed_delivery_location_id", INT, references="address.address_id"),
    ),
    _table(
        "transaction",
        Col("transaction_type", TEXT),  # SALE or PURCHASE
        Col("sales_order_id", INT, nullable=True, references="sales_order.sales_order_id"),
        Col("purchase_order_id", INT, nullable=True, references="purchase_order.purchase_order_id"),
    ),
    _table(
        "payment",
        Col("transaction_id", INT, references="transaction.transaction_id"),
        Col("counterparty_id", INT, references="counterparty.counterparty_id"),
        Col("payment_amount", "numeric(12,2)"),
        Col("currency_id", INT, references="currency.currency_id"),
        Col("payment_type_id", INT, references="payment_type.payment_type_id"),
        Col("paid", "boolean"),
        Col("payment_date", TEXT),
        Col("company_ac_number", INT),
        Col("counterparty_ac_number", INT),
    ),
)
BY_NAME = {table.name: table for table in TABLES}


def table_name(table: TotesysTable) -> str:
    """The platform name of a table's current-state table: totesys__sales_order."""
    return f"{SOURCE}__{table.name}"


def version_sql(table: TotesysTable, alias: str | None = None) -> sql.Composable:
    """The SQL of a row's version (`dp__version`): md5 of its source columns' row text,
    `ROW(...)::text`, as a uuid; `alias` qualifies the columns. The one expression both
    the extraction (on the source) and the loader (on the platform) compute, so a row read
    again hashes as the stored one; revision 0014 keeps a frozen copy of it. The session's
    DateStyle must be ISO (both set it): the row's text must not depend on it."""
    names = [sql.Identifier(alias, n) if alias else sql.Identifier(n) for n in table.names]
    return sql.SQL("md5(ROW({})::text)::uuid").format(sql.SQL(", ").join(names))
