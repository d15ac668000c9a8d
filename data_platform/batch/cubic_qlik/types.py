"""Qlik Replicate column types to PostgreSQL types that lose no valid value.

Each mapping gives the Postgres type of the column onboarding creates (`pg_type`).
Values reach Postgres through COPY in their text form; Postgres parses them, so a value
that does not fit fails the load with the line and column instead of being changed.
"""

from __future__ import annotations

from data_platform.batch.cubic_qlik.dfm import DfmColumn

# The values each Qlik integer type holds (Replicate's type list: INT1..INT8 signed,
# UINT1..UINT8 unsigned, of 1, 2, 4 and 8 bytes). The Glue job checks them; the Postgres
# apply checks those whose Postgres type is wider (RANGE_CHECKED).
INTEGER_RANGES = {
    "INT1": (-(2**7), 2**7 - 1),
    "INT2": (-(2**15), 2**15 - 1),
    "INT4": (-(2**31), 2**31 - 1),
    "INT8": (-(2**63), 2**63 - 1),
    "UINT1": (0, 2**8 - 1),
    "UINT2": (0, 2**16 - 1),
    "UINT4": (0, 2**32 - 1),
    "UINT8": (0, 2**64 - 1),
}
# Stored in a wider Postgres type (no Postgres type has 1 byte, none is unsigned): COPY
# would take 300 for a UINT1 or -1 for a UINT8 without a word.
RANGE_CHECKED = frozenset({"INT1", "UINT1", "UINT2", "UINT4", "UINT8"})

# Binary columns arrive as hex text without Postgres's `\x` prefix, so they are staged
# as text and decoded; every other type is parsed by COPY directly.
HEX_TYPES = frozenset({"BYTES", "BLOB"})
# Large objects: an Oracle source's U row leaves them NULL when the update did not touch
# them (Qlik Replicate, "Oracle source limitations").
LOB_TYPES = frozenset({"CLOB", "NCLOB", "BLOB"})


def describe_type(column: DfmColumn) -> str:
    """The source type as Qlik names it, for column comments: `NUMERIC(12,2)`, `STRING(100)`."""
    if column.type == "NUMERIC":
        return f"NUMERIC({column.precision},{column.scale})"
    if column.type in ("STRING", "WSTRING", "BYTES") and column.length:
        return f"{column.type}({column.length})"
    return column.type


# --- the Postgres type of a declared type (onboarding creates it; schema_change compares) ---

# DATETIME carries up to 9 fractional digits; Postgres keeps microseconds and rounds the
# 7th-9th digits half-up to the nearest microsecond.
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
