"""Qlik Replicate column types to PostgreSQL types that lose no valid value.

Each mapping gives the SQLAlchemy type expression written into the generated migration.
Values reach Postgres through COPY in their text form; Postgres parses them, so a value
that does not fit fails the load with the line and column instead of being changed.
"""

from __future__ import annotations

import re

from data_platform.batch.cubic_qlik.dfm import DfmColumn

# DATETIME carries up to 9 fractional digits; Postgres keeps microseconds and rounds the
# 7th-9th digits half-up to the nearest microsecond.
_FIXED = {
    "INT1": "sa.SmallInteger()",
    "INT2": "sa.SmallInteger()",
    "INT4": "sa.Integer()",
    "INT8": "sa.BigInteger()",
    "UINT1": "sa.SmallInteger()",
    "UINT2": "sa.Integer()",
    "UINT4": "sa.BigInteger()",
    "UINT8": "sa.Numeric(20, 0)",
    "REAL4": "sa.REAL()",
    "REAL8": "sa.Double()",
    "CLOB": "sa.Text()",
    "NCLOB": "sa.Text()",
    "BYTES": "postgresql.BYTEA()",
    "BLOB": "postgresql.BYTEA()",
    "DATE": "sa.Date()",
    "TIME": "sa.Time()",
    "DATETIME": "sa.DateTime()",
    "BOOLEAN": "sa.Boolean()",
}

# Binary columns arrive as hex text without Postgres's `\x` prefix, so they are staged
# as text and decoded; every other type is parsed by COPY directly.
HEX_TYPES = frozenset({"BYTES", "BLOB"})
# Large objects: an Oracle source's U row leaves them NULL when the update did not touch
# them (Qlik Replicate, "Oracle source limitations").
LOB_TYPES = frozenset({"CLOB", "NCLOB", "BLOB"})


def sa_type(column: DfmColumn, *, raw: bool = False) -> str:
    """The SQLAlchemy type, as source code, for a column of the generated migration."""
    if raw:
        return "sa.Text()"
    if column.type in _FIXED:
        return _FIXED[column.type]
    if column.type == "NUMERIC":
        if column.precision > 0:
            return f"sa.Numeric({column.precision}, {max(column.scale, 0)})"
        return "sa.Numeric()"
    if column.type in ("STRING", "WSTRING"):
        return f"sa.String({column.length})" if column.length > 0 else "sa.Text()"
    raise ValueError(f"no Postgres type for Qlik type {column.type}")


def describe_type(column: DfmColumn) -> str:
    """The source type as Qlik names it, for column comments: `NUMERIC(12,2)`, `STRING(100)`."""
    if column.type == "NUMERIC":
        return f"NUMERIC({column.precision},{column.scale})"
    if column.type in ("STRING", "WSTRING", "BYTES") and column.length:
        return f"{column.type}({column.length})"
    return column.type


# --- type drift: does a file's declared type still fit the table's column? -----------

_PG_FIXED = {
    "INT1": "smallint",
    "INT2": "smallint",
    "UINT1": "smallint",
    "INT4": "integer",
    "UINT2": "integer",
    "INT8": "bigint",
    "UINT4": "bigint",
    "UINT8": "numeric(20,0)",
    "REAL4": "real",
    "REAL8": "double precision",
    "CLOB": "text",
    "NCLOB": "text",
    "BYTES": "bytea",
    "BLOB": "bytea",
    "DATE": "date",
    "TIME": "time without time zone",
    "DATETIME": "timestamp without time zone",
    "BOOLEAN": "boolean",
}
_INTEGER_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}
_NUMERIC_RE = re.compile(r"^numeric\((\d+),(\d+)\)$")
_VARCHAR_RE = re.compile(r"^character varying\((\d+)\)$")


def pg_type(column: DfmColumn) -> str:
    """The Postgres type onboarding gives `column`, as `format_type()` spells it."""
    if column.type in _PG_FIXED:
        return _PG_FIXED[column.type]
    if column.type == "NUMERIC":
        if column.precision > 0:
            return f"numeric({column.precision},{max(column.scale, 0)})"
        return "numeric"
    if column.type in ("STRING", "WSTRING"):
        return f"character varying({column.length})" if column.length > 0 else "text"
    raise ValueError(f"no Postgres type for Qlik type {column.type}")


def drift(column: DfmColumn, table_type: str) -> str | None:
    """Why values of `column` (as a file's .dfm declares it) could be stored changed in, or
    no longer belong to, a table column of `table_type` (`format_type()` text); None when
    every value either fits unchanged or is refused by Postgres on its own line.

    Rules (README, "Type drift"): a larger scale would be rounded, and a longer string, a
    wider integer, a wider float or another kind of type needs the table to change first;
    a smaller length or scale, and a NUMERIC precision either way, load (Postgres checks the
    digits of every value). A `text` column takes anything.
    """
    declared = pg_type(column)
    if declared == table_type or table_type == "text":
        return None
    declared_num = _numeric_shape(declared)
    table_num = _numeric_shape(table_type)
    if declared_num is not None and table_num is not None:
        if table_num[1] is None or declared_num[1] is None:
            # Unconstrained numeric: any scale fits it; into numeric(p,s) scale may round.
            if table_num[1] is None:
                return None
            return "the table's scale would round values"
        if declared_num[1] > table_num[1]:
            return f"scale {declared_num[1]} > the table's {table_num[1]}: values would be rounded"
        if (
            declared in _INTEGER_DIGITS
            and table_type in _INTEGER_DIGITS
            and _INTEGER_DIGITS[declared] > _INTEGER_DIGITS[table_type]
        ):
            return "a wider integer than the table's"
        return None
    declared_len, table_len = _varchar_length(declared), _varchar_length(table_type)
    if declared_len is not None and table_len is not None:
        if declared_len > table_len:
            return f"length {declared_len} > the table's {table_len}"
        return None
    if declared == "text" and table_len is not None:
        return "unbounded text into a bounded column"
    if declared == "real" and table_type == "double precision":
        return None
    return "a different type"


def _numeric_shape(pg: str) -> tuple[int | None, int | None] | None:
    """(precision, scale) of an exact number type; None parts when unconstrained."""
    if pg in _INTEGER_DIGITS:
        return _INTEGER_DIGITS[pg], 0
    if pg == "numeric":
        return None, None
    match = _NUMERIC_RE.match(pg)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _varchar_length(pg: str) -> int | None:
    match = _VARCHAR_RE.match(pg)
    return int(match.group(1)) if match else None
