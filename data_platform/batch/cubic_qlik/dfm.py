"""The `.dfm` file Qlik Replicate writes beside every data file: columns, types, dialect."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from data_platform.errors import LoadError
from data_platform.loads.csv_files import CsvDialect

QLIK_TYPES = frozenset(
    {
        "INT1", "INT2", "INT4", "INT8",
        "UINT1", "UINT2", "UINT4", "UINT8",
        "NUMERIC", "REAL4", "REAL8",
        "STRING", "WSTRING", "CLOB", "NCLOB",
        "BYTES", "BLOB",
        "DATE", "TIME", "DATETIME", "BOOLEAN",
    }
)  # fmt: skip

CHANGE_HEADER_PREFIX = "header__"


@dataclass(frozen=True)
class DfmColumn:
    ordinal: int
    name: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    primary_key_pos: int = 0

    @property
    def is_header(self) -> bool:
        return self.name.startswith(CHANGE_HEADER_PREFIX)


@dataclass(frozen=True)
class Dfm:
    source_schema: str
    source_table: str
    target_table: str
    columns: tuple[DfmColumn, ...]
    dialect: CsvDialect
    record_count: int | None = None
    # dataInfo.tableVersion: goes up when the source table's DDL changes (None when absent).
    table_version: int | None = None

    @property
    def is_change_file(self) -> bool:
        return self.target_table.endswith("__ct") or any(c.is_header for c in self.columns)

    @property
    def header_columns(self) -> tuple[DfmColumn, ...]:
        return tuple(c for c in self.columns if c.is_header)

    @property
    def data_columns(self) -> tuple[DfmColumn, ...]:
        return tuple(c for c in self.columns if not c.is_header)

    @property
    def key_columns(self) -> tuple[DfmColumn, ...]:
        keys = [c for c in self.data_columns if c.primary_key_pos > 0]
        return tuple(sorted(keys, key=lambda c: c.primary_key_pos))

    @property
    def qualified_name(self) -> str:
        return f"{self.source_schema}.{self.source_table}"


def _unescape(value: Any, default: str) -> str:
    """formatInfo writes control characters escaped (`\\n`, `\\t`) or as literal text."""
    if value is None:
        return default
    text = str(value)
    return {"\\n": "\n", "\\r\\n": "\r\n", "\\t": "\t", "\\r": "\r"}.get(text, text)


def parse_dfm(raw: bytes | str, *, key: str = "<dfm>") -> Dfm:
    """Parse a .dfm document; errors name the file and the missing field."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoadError(f"not a valid .dfm (JSON): {exc}", key=key) from exc
    try:
        data = doc["dataInfo"]
        columns = tuple(
            DfmColumn(
                ordinal=int(col["ordinal"]),
                name=str(col["name"]),
                type=str(col["type"]).upper(),
                length=int(col.get("length") or 0),
                precision=int(col.get("precision") or 0),
                scale=int(col.get("scale") or 0),
                primary_key_pos=int(col.get("primaryKeyPos") or 0),
            )
            for col in data["columns"]
        )
        source_schema = str(data["sourceSchema"])
        source_table = str(data["sourceTable"])
        target_table = str(data.get("targetTable") or source_table)
        version = data.get("tableVersion")
        table_version = int(version) if version is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise LoadError(f"invalid .dfm: missing or bad field {exc}", key=key) from exc
    if not columns:
        raise LoadError("invalid .dfm: no columns", key=key)
    unknown = sorted({c.type for c in columns} - QLIK_TYPES)
    if unknown:
        raise LoadError(f"invalid .dfm: unknown column type(s) {', '.join(unknown)}", key=key)
    # Postgres names are lower-cased, so names that differ only in case clash too.
    names = [c.name.lower() for c in columns]
    if len(set(names)) != len(names):
        duplicates = sorted({c.name for c in columns if names.count(c.name.lower()) > 1})
        raise LoadError(f"invalid .dfm: duplicate column names {', '.join(duplicates)}", key=key)
    fmt = doc.get("formatInfo") or {}
    if fmt.get("format", "delimited") != "delimited":
        raise LoadError(f"unsupported format {fmt.get('format')!r} (only delimited)", key=key)
    options = fmt.get("options") or {}
    dialect = CsvDialect(
        delimiter=_unescape(options.get("fieldDelimiter"), ","),
        quote=_unescape(options.get("quoteChar"), '"'),
        escape=_unescape(options.get("escapeChar"), "") or None,
        null_value=_unescape(options.get("nullValue"), ""),
        record_delimiter=_unescape(options.get("recordDelimiter"), "\n"),
    )
    for name, value in (("fieldDelimiter", dialect.delimiter), ("quoteChar", dialect.quote)):
        if len(value) != 1:
            raise LoadError(f"invalid .dfm: {name} must be one character, got {value!r}", key=key)
    if dialect.record_delimiter not in ("\n", "\r\n"):
        raise LoadError(
            f"unsupported recordDelimiter {dialect.record_delimiter!r} (only \\n or \\r\\n)",
            key=key,
        )
    record_count = (doc.get("fileInfo") or {}).get("recordCount")
    return Dfm(
        source_schema=source_schema,
        source_table=source_table,
        target_table=target_table,
        columns=tuple(sorted(columns, key=lambda c: c.ordinal)),
        dialect=dialect,
        record_count=int(record_count) if record_count is not None else None,
        table_version=table_version,
    )


def dfm_key(data_key: str) -> str:
    """`.../LOAD00000001.csv.gz` -> `.../LOAD00000001.dfm`."""
    for suffix in (".csv.gz", ".csv", ".gz"):
        if data_key.endswith(suffix):
            return data_key[: -len(suffix)] + ".dfm"
    return data_key + ".dfm"
