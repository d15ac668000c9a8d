"""Qlik field rules: exact DATETIME parsing, snapshot rebuilds, sparse updates per table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:00:00+00:00

`qlik_datetime(text)` is the one DATETIME rule of the Postgres path (the Glue job applies
the same rule in `data_platform/batch/cubic_qlik/spark/casts.py`): `YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}]` with an
optional `Z` or `+-HH:MM` suffix (converted to UTC); digits 7-9 rounded to the nearest
microsecond in exact decimal arithmetic, ties to even; never later than
9999-12-31 23:59:59.999999. PostgreSQL's own timestamp input rounds through a binary
double and gets about 1% of exact ties wrong, and rounds the SQL Server maximum into
year 10000.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Hours 00-23 and seconds 00-59, as Spark's cast: Postgres alone would take 24:00:00
# and 23:59:60.
PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
MAX = "9999-12-31 23:59:59.999999"

# The general case: surrounding whitespace, a zone suffix, and invalid text (an error
# that quotes the value, so the loader can find its line).
SLOW = rf"""
CREATE FUNCTION qlik_datetime_general(value text) RETURNS timestamp
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $body$
DECLARE
    m text[];
    nanos bigint;
    result timestamp;
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    m := regexp_match(
        btrim(value, E' \t\r\n\f\x0b'),
        '^({PATTERN[1:]})(?:\.([0-9]{{1,9}}))?(Z|[+-][0-9]{{2}}:[0-9]{{2}})?$'
    );
    IF m IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = '22007',
            MESSAGE = format('invalid DATETIME: "%s"', value),
            HINT = 'expected YYYY-MM-DD HH:MM:SS[.fffffffff], optionally with Z or +HH:MM';
    END IF;
    nanos := rpad(coalesce(m[2], ''), 9, '0')::bigint;
    -- Nearest microsecond, ties to even: +500 rounds half up; an exact tie onto an odd
    -- microsecond (nanos % 2000 = 500) goes back down by one.
    result := m[1]::timestamp
        + ((nanos + 500) / 1000 - (nanos % 2000 = 500)::int) * interval '1 microsecond';
    IF m[3] IS NOT NULL AND m[3] <> 'Z' THEN
        result := result - (substr(m[3], 1, 1) || '1')::int
            * make_interval(hours => substr(m[3], 2, 2)::int, mins => substr(m[3], 5, 2)::int);
    END IF;
    RETURN least(result, timestamp '{MAX}');
END
$body$
"""

# The common case, inlined by the planner into the loader's INSERT (a plain SQL
# expression, STABLE like the text-to-timestamp cast it uses): the first 26 characters
# (six fraction digits) parse exactly; digits 7-9 decide the rounding.
FAST = rf"""
CREATE FUNCTION qlik_datetime(value text) RETURNS timestamp
LANGUAGE sql STABLE PARALLEL SAFE AS $body$
SELECT CASE
    WHEN value ~ '{PATTERN}(\.[0-9]{{1,9}})?$' THEN
        least(
            left(value, 26)::timestamp
            + CASE
                WHEN rpad(substr(value, 27), 3, '0')::int > 500
                  OR (rpad(substr(value, 27), 3, '0') = '500'
                      AND substr(value, 26, 1) IN ('1', '3', '5', '7', '9'))
                THEN interval '1 microsecond'
                ELSE interval '0'
              END,
            timestamp '{MAX}')
    ELSE qlik_datetime_general(value)
END
$body$
"""


def upgrade() -> None:
    op.execute(SLOW)
    op.execute(FAST)
    op.execute(
        "COMMENT ON FUNCTION qlik_datetime(text) IS 'A Qlik DATETIME as timestamp: digits "
        "7-9 rounded to the nearest microsecond, ties to even, exact; zone suffixes to UTC; "
        "at most 9999-12-31 23:59:59.999999.'"
    )
    op.add_column(
        "source_tables",
        sa.Column(
            "sparse_updates",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
            comment="A U row leaves untouched columns as they are: NULL in a LOB column "
            "(CLOB, NCLOB, BLOB), or a clear bit in header__change_mask when the file has one.",
        ),
    )
    op.add_column(
        "table_snapshots",
        sa.Column(
            "rebuilds",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="Times the table was rebuilt from this snapshot's parts and changes "
            "because a part became visible after its changes were applied.",
        ),
    )
    op.add_column(
        "table_snapshots",
        sa.Column(
            "rebuilt_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the last rebuild was committed.",
        ),
    )


def downgrade() -> None:
    op.drop_column("table_snapshots", "rebuilt_at")
    op.drop_column("table_snapshots", "rebuilds")
    op.drop_column("source_tables", "sparse_updates")
    op.execute("DROP FUNCTION qlik_datetime(text)")
    op.execute("DROP FUNCTION qlik_datetime_general(text)")
