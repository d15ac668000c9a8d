"""DMAP as a source of the one worker: each fetched dataset file is a load, whose rows
replace the dataset's rows in its type's table (a re-issue never doubles them).

Scan: per onboarded type, the files `cubic/dmap/<type>/<dataset_id>.csv.gz` in incoming
not recorded yet. Apply: the header must name columns of the table (a column the table
lacks is a schema change, refused naming it and `dmap evolve-type`); the file is COPYed into a
staging table typed like the table (each value checked, errors name file, record and
column), then the dataset's rows are replaced in one statement pair
(`dispositions.replace_partition`). Datasets are independent: a failed one does not hold
up the others; a new version of a failed dataset waits for `retry`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg2 import sql
from sqlalchemy import Connection

from data_platform.batch.cubic_dmap import naming
from data_platform.db.engine import dbapi_cursor, get_engine
from data_platform.loads import dispositions
from data_platform.loads.copy_csv import copy_csv
from data_platform.loads.csv_files import CsvDialect, DataFileReader
from data_platform.loads.scan import FileScanResult, record_source_files, waiting_folders
from data_platform.loads.schema_changes import (
    SchemaChangeError,
    evolve_command,
    schema_change_message,
)
from data_platform.loads.source import FileSource, PendingLoad, TableLoader
from data_platform.settings import get_settings

log = logging.getLogger(__name__)

DIALECT = CsvDialect()  # the vendor's files: RFC 4180, comma, empty = NULL


@dataclass
class DmapScanResult(FileScanResult):
    # Files of dataset types not onboarded yet, by type.
    waiting: dict[str, int] = field(default_factory=dict)

    def notes(self) -> list[str]:
        return [
            f"  {dataset_type}: {count} file(s) wait for onboarding: "
            f"data-platform dmap onboard --type {dataset_type} --apply"
            for dataset_type, count in sorted(self.waiting.items())
        ]


def scan_dmap() -> DmapScanResult:
    """Record every new dataset file of every active DMAP table as a `ready` load."""
    result = DmapScanResult()
    result.new_loads, result.tables = record_source_files(
        naming.SOURCE, lambda prefix, key: naming.dataset_id_of(key, prefix) is not None
    )
    engine = get_engine()
    root = get_settings().cubic_dmap_prefix
    with engine.connect() as conn:
        result.waiting = waiting_folders(conn, naming.SOURCE, root, lambda key: _type_of(root, key))
    return result


def _type_of(root: str, key: str) -> str:
    """`cubic/dmap/<type>/<dataset_id>.csv.gz` -> `<type>`; "" for any other key."""
    folder = key[len(root) :].partition("/")[0]
    return folder if naming.dataset_id_of(key, f"{root}{folder}/") else ""


class DmapTableLoader(TableLoader):
    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        return False  # datasets are independent; a failed one waits alone

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        # Landing order: a re-issue lands after the copy it replaces.
        return sorted(ready, key=lambda load: (load.modified, load.key))

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        table = self.table
        # The scan records only keys that name a dataset.
        dataset_id = naming.dataset_id_of(load.key, load.key.rsplit("/", 1)[0] + "/")
        assert dataset_id is not None

        error = self.load_error(load)
        target = sql.Identifier(table.db_schema, table.db_table)
        body, reopen = self.open_file(conn, load)
        cur = dbapi_cursor(conn)
        try:
            columns = stored_columns(cur, table.db_schema, table.db_table)
            with DataFileReader(body, load.key) as reader:
                header = reader.header(DIALECT)
                file_columns = [naming.column_name(field) for field in header]
                unknown = [f for f, c in zip(header, file_columns, strict=True) if c not in columns]
                if unknown:
                    dataset_type = table.db_table
                    raise SchemaChangeError(
                        schema_change_message(
                            f"DMAP {dataset_type}",
                            f"{table.db_schema}.{table.db_table}",
                            [f"{name} is new" for name in unknown],
                            command=evolve_command(naming.SOURCE, dataset_type),
                        ),
                        key=load.key,
                        line=1,
                        column=unknown[0] if len(unknown) == 1 else None,
                        table=table.name,
                        load_id=load.id,
                    )
                if len(set(file_columns)) != len(file_columns):
                    raise error(f"header names a column twice: {header}", line=1)
                stage = dispositions.create_stage(cur, target, file_columns)
                rows = copy_csv(
                    cur,
                    stage,
                    file_columns,
                    reader,
                    DIALECT,
                    file_columns=header,
                    error=error,
                    reopen=reopen,
                )
            deleted, _ = dispositions.replace_partition(
                cur, target, stage, file_columns, {naming.DATASET_ID_COLUMN: dataset_id}
            )
        finally:
            cur.close()
        if deleted:
            log.info(
                "dataset %s re-issued: %d row(s) replaced by %d",
                dataset_id,
                deleted,
                rows,
                extra={**self.worker.extra, "load_id": load.id},
            )
        return rows


def stored_columns(cur, schema: str, table: str) -> list[str]:
    """The table's data columns: all but the dataset id and lineage."""
    cur.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    )
    keep = {naming.DATASET_ID_COLUMN, naming.LOAD_ID_COLUMN}
    return [name for (name,) in cur.fetchall() if name not in keep]


DMAP = FileSource(
    naming.SOURCE,
    scan_dmap,
    DmapTableLoader,
    relanded="a new load: the dataset's rows are replaced by the file's",
)
