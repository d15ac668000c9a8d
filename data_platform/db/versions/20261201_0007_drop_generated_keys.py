"""Source tables hold the source's keys only: drop sequence defaults from their columns

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00+00:00

Onboarding revisions written before `autoincrement=False` gave an integer key column a
`DEFAULT nextval(...)` (SQLAlchemy makes a lone integer primary key SERIAL): a copy of a
source table must never invent keys. This revision finds every such default on the
tables registered in `source_tables` and drops it with its sequence, instead of editing
revisions that were applied. Tables onboarded since have no default: the downgrade
restores nothing (a generated key was never the source's).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Names from the catalog, quoted by Postgres itself (format %I; pg_get_serial_sequence
# returns a quoted, qualified name).
DROP_GENERATED_KEYS = """
DO $body$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.table_schema, c.table_name, c.column_name,
               pg_get_serial_sequence(
                   format('%I.%I', c.table_schema, c.table_name), c.column_name
               ) AS seq
        FROM information_schema.columns c
        JOIN source_tables s ON s.db_schema = c.table_schema AND s.db_table = c.table_name
        WHERE c.column_default LIKE 'nextval(%'
    LOOP
        EXECUTE format(
            'ALTER TABLE %I.%I ALTER COLUMN %I DROP DEFAULT',
            r.table_schema, r.table_name, r.column_name
        );
        IF r.seq IS NOT NULL THEN
            EXECUTE format('DROP SEQUENCE %s', r.seq);
        END IF;
        RAISE NOTICE 'dropped the generated key default of %.%.%',
            r.table_schema, r.table_name, r.column_name;
    END LOOP;
END
$body$
"""


def upgrade() -> None:
    op.execute(DROP_GENERATED_KEYS)


def downgrade() -> None:
    pass  # nothing to restore: see the docstring
