"""totesys landing tables: current state and history of the eleven source tables

The current-state table `totesys.<table>` holds the latest version of each row (merged by
`last_updated`); `totesys_history.<table>` every version seen (key and `last_updated`).
Both are written by the totesys loader from the extracted Parquet files; only the
current-state tables are registered in source_tables (a load applies to both).

Revision ID: t001
Revises: p001
Create Date: 2026-12-01 12:00:00+00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t001"
down_revision: str | Sequence[str] | None = "p001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCE = "totesys"
CURRENT, HISTORY = "totesys", "totesys_history"
PREFIX = "database/totesys/"

source_tables = sa.table(
    "source_tables",
    sa.column("name", sa.Text),
    sa.column("source", sa.Text),
    sa.column("s3_prefix", sa.Text),
    sa.column("db_schema", sa.Text),
    sa.column("db_table", sa.Text),
    sa.column("is_raw", sa.Boolean),
)

# (column, type, nullable) of each source table, key first (tables.py when written).
TABLES: dict[str, list[tuple[str, sa.types.TypeEngine[Any], bool]]] = {
    "address": [
        ("address_id", sa.Integer(), False),
        ("address_line_1", sa.Text(), False),
        ("address_line_2", sa.Text(), True),
        ("district", sa.Text(), True),
        ("city", sa.Text(), False),
        ("postal_code", sa.Text(), False),
        ("country", sa.Text(), False),
        ("phone", sa.Text(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "currency": [
        ("currency_id", sa.Integer(), False),
        ("currency_code", sa.CHAR(3), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "department": [
        ("department_id", sa.Integer(), False),
        ("department_name", sa.Text(), False),
        ("location", sa.Text(), True),
        ("manager", sa.Text(), True),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "design": [
        ("design_id", sa.Integer(), False),
        ("design_name", sa.Text(), False),
        ("file_location", sa.Text(), False),
        ("file_name", sa.Text(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "payment_type": [
        ("payment_type_id", sa.Integer(), False),
        ("payment_type_name", sa.Text(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "counterparty": [
        ("counterparty_id", sa.Integer(), False),
        ("counterparty_legal_name", sa.Text(), False),
        ("legal_address_id", sa.Integer(), False),
        ("commercial_contact", sa.Text(), True),
        ("delivery_contact", sa.Text(), True),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "staff": [
        ("staff_id", sa.Integer(), False),
        ("first_name", sa.Text(), False),
        ("last_name", sa.Text(), False),
        ("department_id", sa.Integer(), False),
        ("email_address", sa.Text(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "sales_order": [
        ("sales_order_id", sa.Integer(), False),
        ("design_id", sa.Integer(), False),
        ("staff_id", sa.Integer(), False),
        ("counterparty_id", sa.Integer(), False),
        ("units_sold", sa.Integer(), False),
        ("unit_price", sa.Numeric(10, 2), False),
        ("currency_id", sa.Integer(), False),
        ("agreed_delivery_date", sa.Text(), False),
        ("agreed_payment_date", sa.Text(), False),
        ("agreed_delivery_location_id", sa.Integer(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "purchase_order": [
        ("purchase_order_id", sa.Integer(), False),
        ("staff_id", sa.Integer(), False),
        ("counterparty_id", sa.Integer(), False),
        ("item_code", sa.Text(), False),
        ("item_quantity", sa.Integer(), False),
        ("item_unit_price", sa.Numeric(12, 2), False),
        ("currency_id", sa.Integer(), False),
        ("agreed_delivery_date", sa.Text(), False),
        ("agreed_payment_date", sa.Text(), False),
        ("agreed_delivery_location_id", sa.Integer(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "transaction": [
        ("transaction_id", sa.Integer(), False),
        ("transaction_type", sa.Text(), False),
        ("sales_order_id", sa.Integer(), True),
        ("purchase_order_id", sa.Integer(), True),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
    "payment": [
        ("payment_id", sa.Integer(), False),
        ("transaction_id", sa.Integer(), False),
        ("counterparty_id", sa.Integer(), False),
        ("payment_amount", sa.Numeric(12, 2), False),
        ("currency_id", sa.Integer(), False),
        ("payment_type_id", sa.Integer(), False),
        ("paid", sa.Boolean(), False),
        ("payment_date", sa.Text(), False),
        ("company_ac_number", sa.Integer(), False),
        ("counterparty_ac_number", sa.Integer(), False),
        ("created_at", postgresql.TIMESTAMP(precision=3), False),
        ("last_updated", postgresql.TIMESTAMP(precision=3), False),
    ],
}


def _columns(name: str) -> list[sa.Column]:
    return [
        sa.Column(column, type_, nullable=nullable, comment=f"{name}.{column} in totesys.")
        for column, type_, nullable in TABLES[name]
    ]


def _lineage() -> sa.Column:
    return sa.Column(
        "dp__load_id",
        sa.BigInteger(),
        server_default=sa.text("current_setting('data_platform.load_id')::bigint"),
        nullable=False,
        comment="Lineage: the load (loads.id) that last wrote this row.",
    )


def upgrade() -> None:
    for schema, what in ((CURRENT, "current state"), (HISTORY, "every version seen")):
        op.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
        op.execute(
            f"COMMENT ON SCHEMA {schema} IS 'totesys (OLTP sales database), {what}; "
            "loaded by the totesys source from its incremental extracts.'"
        )
    for name, columns in TABLES.items():
        key = columns[0][0]
        op.create_table(
            name,
            *_columns(name),
            _lineage(),
            sa.PrimaryKeyConstraint(key),
            schema=CURRENT,
            comment=f"totesys.{name}: the latest version of each row (by last_updated).",
        )
        op.create_table(
            name,
            *_columns(name),
            _lineage(),
            sa.PrimaryKeyConstraint(key, "last_updated"),
            schema=HISTORY,
            comment=f"totesys.{name}: every version seen, one row per key and last_updated.",
        )
    op.bulk_insert(
        source_tables,
        [
            {
                "name": f"{SOURCE}__{name}",
                "source": SOURCE,
                "s3_prefix": f"{PREFIX}{name}/",
                "db_schema": CURRENT,
                "db_table": name,
                "is_raw": False,
            }
            for name in TABLES
        ],
    )


def downgrade() -> None:
    op.execute(source_tables.delete().where(source_tables.c.source == SOURCE))
    for name in reversed(list(TABLES)):
        op.drop_table(name, schema=HISTORY)
        op.drop_table(name, schema=CURRENT)
