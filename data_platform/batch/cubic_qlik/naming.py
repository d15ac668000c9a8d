"""Source names to Postgres names: `EDW.SAMPLE` -> schema `cubic_ods_qlik`, table `edw_sample`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from data_platform.errors import OnboardingError

if TYPE_CHECKING:
    from data_platform.db.models import SourceName

DB_SCHEMA = "cubic_ods_qlik"
SOURCE: Final[SourceName] = "cubic_qlik"
# Columns the platform adds to every current-state table; no source column may use the prefix.
LINEAGE_PREFIX = "dp__"
LOAD_ID_COLUMN = "dp__load_id"
CHANGE_SEQ_COLUMN = "dp__change_seq"
# Postgres truncates identifiers at 63 bytes; leave room for "pk_" and index suffixes.
MAX_NAME_BYTES = 55


def split_source_name(qualified: str) -> tuple[str, str]:
    """`EDW.SAMPLE` -> (`EDW`, `SAMPLE`). The table part may itself contain dots."""
    schema, dot, table = qualified.partition(".")
    if not dot or not schema or not table:
        raise OnboardingError(f"table must be SCHEMA.TABLE, got {qualified!r}")
    if "/" in qualified or "\x00" in qualified:
        raise OnboardingError(f"table name {qualified!r} contains '/' or NUL")
    return schema, table


def db_table_name(source_schema: str, source_table: str) -> str:
    name = f"{source_schema}_{source_table}".lower()
    _check_length(name, f"{source_schema}.{source_table}")
    return name


def db_column_name(source_column: str) -> str:
    name = source_column.lower()
    _check_length(name, source_column)
    if name.startswith(LINEAGE_PREFIX):
        raise OnboardingError(
            f"column {source_column!r} uses the prefix {LINEAGE_PREFIX!r} reserved for lineage"
        )
    return name


def platform_table_name(source_schema: str, source_table: str) -> str:
    """The name in source_tables, e.g. `cubic_ods_qlik__edw_sample`."""
    return f"{DB_SCHEMA}__{db_table_name(source_schema, source_table)}"


def revision_slug(qualified: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", qualified.lower()).strip("_")[:40] or "table"


def _check_length(name: str, source: str) -> None:
    if len(name.encode()) > MAX_NAME_BYTES:
        raise OnboardingError(
            f"{source!r} maps to {name!r}, longer than {MAX_NAME_BYTES} bytes: Postgres would "
            "truncate it"
        )
    if not name:
        raise OnboardingError("empty name")
