"""Write files the way Qlik Replicate does (data file + .dfm): for sample data, tests and
benchmarks. Rows are streamed to the file, so large files take no memory."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The header columns Qlik puts in front of a change file's table columns.
CHANGE_HEADERS = (
    ("header__change_seq", "STRING", 35),
    ("header__change_oper", "STRING", 1),
    ("header__timestamp", "DATETIME", 0),
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    key_pos: int = 0


def dfm_document(
    schema: str,
    table: str,
    columns: Sequence[Column],
    *,
    changes: bool,
    file_name: str,
    record_count: int | None,
    null_value: str = "",
    headers: Sequence[tuple[str, str, int]] = CHANGE_HEADERS,
    table_version: int = 1,
) -> dict:
    all_columns = [Column(n, t, length) for n, t, length in headers] if changes else []
    all_columns += list(columns)
    return {
        "dfmVersion": "1.1",
        "taskInfo": {"name": "data_platform", "sourceEndpoint": "", "operation": ""},
        "fileInfo": {
            "name": file_name,
            "extension": "gz" if file_name.endswith(".gz") else "csv",
            "location": f"{schema}.{table}{'__ct' if changes else ''}",
            "content": "data",
            "recordCount": record_count,
            "errorCount": 0,
        },
        "formatInfo": {
            "format": "delimited",
            "options": {
                "fieldDelimiter": ",",
                "recordDelimiter": "\n",
                "nullValue": null_value,
                "quoteChar": '"',
                "escapeChar": "",
            },
        },
        "dataInfo": {
            "sourceSchema": schema,
            "sourceTable": table,
            "targetSchema": schema,
            "targetTable": f"{table}__ct" if changes else table,
            "tableVersion": table_version,
            "columns": [
                {
                    "ordinal": i,
                    "name": c.name,
                    "type": c.type,
                    "length": c.length,
                    "precision": c.precision,
                    "scale": c.scale,
                    "primaryKeyPos": c.key_pos,
                }
                for i, c in enumerate(all_columns, start=1)
            ],
        },
    }


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_EMPTY = "\x00empty\x00"


def write_csv(out: BinaryIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Qlik's dialect: NULL is an empty unquoted field, an empty string is `""`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        # csv writes None and "" alike; mark "" and quote it afterwards.
        writer.writerow([_EMPTY if v == "" else _cell(v) for v in row])
        count += 1
        if count % 10_000 == 0:
            out.write(buffer.getvalue().replace(_EMPTY, '""').encode())
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue().replace(_EMPTY, '""').encode())
    return count


def write_table_file(
    directory: Path,
    schema: str,
    table: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[object]],
    *,
    name: str,
    changes: bool = False,
    gz: bool = True,
    record_count: int | None = None,
    headers: Sequence[tuple[str, str, int]] = CHANGE_HEADERS,
    table_version: int = 1,
) -> Path:
    """Write `<directory>/<SCHEMA.TABLE>[__ct]/<name>.csv[.gz]` and its `.dfm`.

    `name` is `LOAD00000001` or a change file's `20211201-112233444`. For change files,
    each row starts with a value per `headers` (by default change_seq, operation,
    timestamp). Returns the data file path.
    """
    folder = directory / f"{schema}.{table}{'__ct' if changes else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    file_name = f"{name}.csv.gz" if gz else f"{name}.csv"
    path = folder / file_name
    header = [h for h, _, _ in headers] if changes else []
    header += [c.name for c in columns]
    with path.open("wb") as raw:
        target: BinaryIO = (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) if gz else raw
        )
        count = write_csv(target, header, rows)
        if gz:
            target.close()
    doc = dfm_document(
        schema,
        table,
        columns,
        changes=changes,
        file_name=file_name,
        record_count=count if record_count is None else record_count,
        headers=headers,
        table_version=table_version,
    )
    (folder / f"{name}.dfm").write_text(json.dumps(doc, indent=2) + "\n")
    return path
