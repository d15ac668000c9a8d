"""totesys as a source of the one worker: each extracted Parquet file is a load.

Scan: first the extraction (`extract.extract`), when the source is in use (the setting
TOTESYS_DATABASE_URL is set, or a table was extracted before), then the files under
`database/totesys/<table>/` not recorded yet. Apply: the file's columns must be the
table's; its rows are COPYed into a staging table typed like the table (every value
checked), then in one transaction every version goes into `totesys_history.<table>`
(one row per key and `last_updated`: a repeat is skipped) and the newest version of each
key into `totesys.<table>`, replacing a stored row only when not older
(`dispositions.append`, `dispositions.merge_by_key`). Re-ingesting a file changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg2
from psycopg2 import sql
from sqlalchemy import Connection, text

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.extract import PREFIX, ExtractResult
from data_platform.db.engine import get_engine
from data_platform.db.models import ERROR_STATES
from data_platform.errors import LoadError
from data_platform.loads import dispositions
from data_platform.loads.copy_csv import copy_csv
from data_platform.loads.parquet_files import DIALECT, ParquetCsvReader
from data_platform.loads.scan import FileScanResult, record_source_files
from data_platform.loads.source import FileSource, PendingLoad, TableLoader
from data_platform.settings import get_settings

log = logging.getLogger(__name__)
SUFFIX = ".parquet"


@dataclass
class TotesysScanResult(FileScanResult):
    extract: ExtractResult | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        landed = f"{self.extract.landed} file(s) extracted, " if self.extract else ""
        return f"{landed}{self.new_loads} new load(s)"

    def notes(self) -> list[str]:
        return [f"  extraction failed: {error}" for error in self.errors]


def in_use() -> bool:
    """Does `run` extract? When TOTESYS_DATABASE_URL is set or a table was extracted."""
    if get_settings().totesys_database_url is not None:
        return True
    with get_engine().connect() as conn:
        return bool(
            conn.scalar(
                text("SELECT EXISTS (SELECT FROM extract_marks WHERE source = :s)"), {"s": T.SOURCE}
            )
        )


def scan_totesys(*, extract: bool | None = None) -> TotesysScanResult:
    """Extract (when in use, or `extract`), then record every new extracted file."""
    result = TotesysScanResult()
    if extract if extract is not None else in_use():
        from data_platform.alerts import alert_extract
        from data_platform.batch.totesys.extract import extract as run_extract

        result.extract = run_extract()
        result.errors = [f"{t.table}: {t.error}" for t in result.extract.failed]
        for extracted in result.extract.tables:
            alert_extract(T.SOURCE, extracted.table, extracted.error)
    result.new_loads, result.tables = record_source_files(
        T.SOURCE, lambda prefix, key: key.endswith(SUFFIX) and "/" not in key[len(prefix) :]
    )
    return result


class TotesysTableLoader(TableLoader):
    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        return self.worker.has_load_in(ERROR_STATES)

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: load.key)  # extracted=<UTC stamp>: time order

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        table = T.BY_NAME[self.table.db_table]

        error = self.load_error(load)
        current = sql.Identifier(T.DB_SCHEMA, table.name)
        history = sql.Identifier(T.HISTORY_SCHEMA, table.name)
        body, _ = self.open_file(conn, load)
        cur = conn.connection.dbapi_connection.cursor()
        try:
            try:
                reader = ParquetCsvReader(body, load.key)
            except LoadError as exc:
                raise error(exc.reason) from exc
            with reader:
                if reader.columns != table.names:
                    raise error(
                        f"columns are not totesys.{table.name}'s: {', '.join(reader.columns)}"
                    )
                stage = dispositions.create_stage(cur, current, table.names)
                rows = copy_csv(
                    cur,
                    stage,
                    table.names,
                    reader,
                    DIALECT,
                    file_columns=table.names,
                    error=error,
                )
            versions = dispositions.append(
                cur, history, stage, table.names, unique=[table.key, T.UPDATED]
            )
            merged = dispositions.merge_by_key(
                cur, current, stage, table.names, [table.key], T.UPDATED
            )
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            raise
        except psycopg2.Error as exc:
            raise error((exc.diag.message_primary or str(exc)).strip()) from exc
        finally:
            cur.close()
        log.info(
            "%d row(s): %d new version(s), %d current row(s) written",
            rows,
            versions,
            merged,
            extra={**self.worker.extra, "load_id": load.id},
        )
        return rows


# The warehouse models read its tables: `data-platform run` rebuilds them after new loads.
TOTESYS = FileSource(T.SOURCE, scan_totesys, TotesysTableLoader, transforms=True)

__all__ = ["PREFIX", "TOTESYS", "scan_totesys"]
