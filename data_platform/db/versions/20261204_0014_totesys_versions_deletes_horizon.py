"""totesys: versions by content, deletes, microseconds and the source's transaction horizon

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:45:00+00:00

- `extract_marks.horizon`: the oldest transaction still in flight at the source when the
  pass that wrote the mark read it (`pg_snapshot_xmin`, a 64-bit xid8). The next pass
  reads every row version written by a transaction from there on, however late it
  committed; NULL for a source without the facility (the overlap window only).
- `extract_marks.source_identity`: which source (server and database) the horizon is of;
  a pass on another one (a restored dump, a new cluster) reads everything.
- `totesys.<table>` and `totesys_history.<table>` keep microseconds (`timestamp(6)`:
  widening the type rewrites nothing) and gain `dp__version` (md5 of the row's source
  columns as a uuid) and `dp__extracted_at` (the extraction pass). The history is keyed
  by (key, `dp__version`): every distinct version by content, two versions sharing one
  `last_updated` included; `dp__deleted_at` marks a row recording a delete seen at the
  source (the last version's columns, the pass that saw the key gone).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT, HISTORY = "totesys", "totesys_history"
# (table, key, source columns in order) as revision t001 created them.
TABLES = {
    "address": [
        "address_id", "address_line_1", "address_line_2", "district", "city",
        "postal_code", "country", "phone",
    ],
    "currency": ["currency_id", "currency_code"],
    "department": ["department_id", "department_name", "location", "manager"],
    "design": ["design_id", "design_name", "file_location", "file_name"],
    "payment_type": ["payment_type_id", "payment_type_name"],
    "counterparty": [
        "counterparty_id", "counterparty_legal_name", "legal_address_id",
        "commercial_contact", "delivery_contact",
    ],
    "staff": ["staff_id", "first_name", "last_name", "department_id", "email_address"],
    "sales_order": [
        "sales_order_id", "design_id", "staff_id", "counterparty_id", "units_sold",
        "unit_price", "currency_id", "agreed_delivery_date", "agreed_payment_date",
        "agreed_delivery_location_id",
    ],
    "purchase_order": [
        "purchase_order_id", "staff_id", "counterparty_id", "item_code", "item_quantity",
        "item_unit_price", "currency_id", "agreed_delivery_date", "agreed_payment_date",
        "agreed_delivery_location_id",
    ],
    "transaction": ["transaction_id", "transaction_type", "sales_order_id", "purchase_order_id"],
    "payment": [
        "payment_id", "transaction_id", "counterparty_id", "payment_amount", "currency_id",
        "payment_type_id", "paid", "payment_date", "company_ac_number",
        "counterparty_ac_number",
    ],
}  # fmt: skip
STAMPS = ("created_at", "last_updated")


def _table(schema: str, name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema=schema)


def _version(table: sa.TableClause, columns: list[str]) -> sa.ColumnElement:
    """The loader's dp__version expression (`tables.version_sql`): md5 of the row's
    text, ROW(...)::text, as a uuid. A frozen copy on purpose: a revision must not import
    code that changes after it (it must compute what it computed when it shipped)."""
    row = sa.tuple_(*(table.c[c] for c in [*columns, *STAMPS]))
    return sa.cast(sa.func.md5(sa.cast(row, sa.Text)), postgresql.UUID)


def upgrade() -> None:
    op.add_column(
        "extract_marks",
        sa.Column(
            "horizon",
            sa.BigInteger(),
            nullable=True,
            comment="The source's transaction horizon at the pass that wrote the mark "
            "(pg_snapshot_xmin, xid8): the next pass reads every row version written by a "
            "transaction from there on. NULL: a source without it (by stamp), or a mark written "
            "before it (the next pass on a source with it reads everything).",
        ),
    )
    op.add_column(
        "extract_marks",
        sa.Column(
            "source_identity",
            sa.Text(),
            nullable=True,
            comment="Which source the horizon is of (system identifier, timeline and database oid, "
            "or where pg_control_* is not callable the server address, port, start time and "
            "database oid): a mark of another source, or NULL, makes the next pass read "
            "everything.",
        ),
    )
    # The row text the version hashes must not depend on the session's DateStyle.
    op.execute("SET LOCAL datestyle = 'ISO, YMD'")
    for name, columns in TABLES.items():
        key = columns[0]
        for schema in (CURRENT, HISTORY):
            for stamp in STAMPS:
                op.alter_column(
                    name,
                    stamp,
                    type_=postgresql.TIMESTAMP(precision=6),
                    existing_nullable=False,
                    schema=schema,
                )
            op.add_column(
                name,
                sa.Column(
                    "dp__version",
                    postgresql.UUID(),
                    nullable=True,
                    comment="The version: md5 of the row's source columns as a uuid.",
                ),
                schema=schema,
            )
            op.add_column(
                name,
                sa.Column(
                    "dp__extracted_at",
                    sa.DateTime(timezone=True),
                    nullable=True,
                    comment="The extraction pass (its time) that read this version; a "
                    "row is only replaced by a later pass.",
                ),
                schema=schema,
            )
            table = _table(schema, name, *columns, *STAMPS, "dp__version", "dp__extracted_at")
            op.execute(
                sa.update(table).values(
                    dp__version=_version(table, columns),
                    dp__extracted_at=sa.literal_column("'-infinity'::timestamptz"),
                )
            )
            op.alter_column(name, "dp__version", nullable=False, schema=schema)
            op.alter_column(name, "dp__extracted_at", nullable=False, schema=schema)
        op.add_column(
            name,
            sa.Column(
                "dp__deleted_at",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="Set on a row recording a delete: the pass that found the key gone "
                "from the source (the columns are the last version's). NULL: a version.",
            ),
            schema=HISTORY,
        )
        op.drop_constraint(f"pk_{name}", name, schema=HISTORY, type_="primary")
        op.create_primary_key(f"pk_{name}", name, [key, "dp__version"], schema=HISTORY)
        for schema, what in (
            (HISTORY, "every distinct version seen (by content, dp__version) and every "
             "delete seen (dp__deleted_at)"),
            (CURRENT, "the source's current row of each key as of the last extraction pass "
             "loaded; a deleted key leaves"),
        ):  # fmt: skip
            op.create_table_comment(name, f"totesys.{name}: {what}.", schema=schema)


def downgrade() -> None:
    for name, columns in TABLES.items():
        key = columns[0]
        history = _table(HISTORY, name, key, "last_updated", "dp__extracted_at", "dp__deleted_at")
        op.execute(sa.delete(history).where(history.c.dp__deleted_at.is_not(None)))
        # Versions sharing a last_updated cannot all stay under the old key: keep the last.
        later = history.alias("later")
        op.execute(
            sa.delete(history).where(
                later.c[key] == history.c[key],
                later.c.last_updated == history.c.last_updated,
                later.c.dp__extracted_at > history.c.dp__extracted_at,
            )
        )
        op.drop_constraint(f"pk_{name}", name, schema=HISTORY, type_="primary")
        op.create_primary_key(f"pk_{name}", name, [key, "last_updated"], schema=HISTORY)
        op.drop_column(name, "dp__deleted_at", schema=HISTORY)
        for schema in (CURRENT, HISTORY):
            op.drop_column(name, "dp__extracted_at", schema=schema)
            op.drop_column(name, "dp__version", schema=schema)
            for stamp in STAMPS:
                op.alter_column(
                    name,
                    stamp,
                    type_=postgresql.TIMESTAMP(precision=3),
                    existing_nullable=False,
                    schema=schema,
                )
    op.drop_column("extract_marks", "source_identity")
    op.drop_column("extract_marks", "horizon")
