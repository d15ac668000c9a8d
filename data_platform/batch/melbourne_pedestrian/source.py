"""The pedestrian open data as a source of the one worker: each fetched file is a load.

Scan: the files under `open_data/melbourne_pedestrian/<dataset>/` in incoming whose keys
follow `naming` and are not recorded yet. Apply: the header must hold exactly the
dataset's columns; the file (`;`-separated, as Opendatasoft exports) is COPYed into a
staging table typed like the table (every value checked; errors name file, record and
column), then a counts file replaces the rows of its date window
(`dispositions.replace_range`: a re-fetched window never doubles) and a locations file
replaces every row (`dispositions.replace_all`). Files apply in the order they were
fetched, so the later fetch of a date wins; a table with an errored load waits for it
(`retry` or `loads skip`), because a newer window applied first would be overwritten
when the older one is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg2
from psycopg2 import sql
from sqlalchemy import Connection

from data_platform.batch.melbourne_pedestrian import naming
from data_platform.db.models import ERROR_STATES
from data_platform.loads import dispositions
from data_platform.loads.copy_csv import copy_csv
from data_platform.loads.csv_files import CsvDialect, DataFileReader
from data_platform.loads.scan import FileScanResult, scan_files
from data_platform.loads.source import FileSource, PendingLoad, TableLoader

log = logging.getLogger(__name__)

# Opendatasoft's CSV export: `;` between fields, RFC 4180 quoting, empty = NULL.
DIALECT = CsvDialect(delimiter=";")
_BY_TABLE = {naming.table_name(d): d for d in naming.DATASETS}


def is_load_key(key: str) -> bool:
    """Is `key` a fetched file of one of the datasets (see `naming`)?"""
    return naming.is_locations_key(key) or naming.window_of(key) is not None


def scan_pedestrian() -> FileScanResult:
    """Record every new fetched file of the source's active tables as a `ready` load."""
    return scan_files(naming.SOURCE, lambda prefix, key: is_load_key(key))


def fetched_stamp(key: str) -> str:
    """The `fetched=<UTC stamp>` of a key: its files sort by it into fetch order."""
    return key.rsplit("fetched=", 1)[-1]


class PedestrianTableLoader(TableLoader):
    def blocked(self, loads: Sequence[PendingLoad]) -> bool:
        return self.worker.has_load_in(ERROR_STATES)

    def order(self, ready: Sequence[PendingLoad]) -> list[PendingLoad]:
        return sorted(ready, key=lambda load: (fetched_stamp(load.key), load.key))

    def apply(self, conn: Connection, load: PendingLoad) -> int:
        table = self.table
        dataset = _BY_TABLE[table.name]
        window = naming.window_of(load.key)

        error = self.load_error(load)
        target = sql.Identifier(table.db_schema, table.db_table)
        expected = naming.COLUMNS[dataset.name]
        body, reopen = self.open_file(conn, load)
        cur = conn.connection.dbapi_connection.cursor()
        try:
            with DataFileReader(body, load.key) as reader:
                header = reader.header(DIALECT)
                if header and header[0].startswith("\ufeff"):
                    # Opendatasoft can start its export with a byte-order mark.
                    header[0] = header[0][1:]
                missing = [c for c in expected if c not in header]
                extra = [c for c in header if c not in expected]
                if missing or extra or len(set(header)) != len(header):
                    parts = [f"missing: {', '.join(missing)}"] if missing else []
                    parts += [f"not in the dataset: {', '.join(extra)}"] if extra else []
                    parts += [] if parts else ["a column named twice"]
                    raise error(f"header is not {dataset.dataset_id}'s: {'; '.join(parts)}", 1)
                stage = dispositions.create_stage(cur, target, header)
                rows = copy_csv(
                    cur,
                    stage,
                    header,
                    reader,
                    DIALECT,
                    file_columns=header,
                    error=error,
                    reopen=reopen,
                )
            if window is None:
                deleted, _ = dispositions.replace_all(cur, target, stage, header)
            else:
                try:
                    deleted, _ = dispositions.replace_range(
                        cur, target, stage, header, "sensing_date", *window
                    )
                except ValueError as exc:
                    raise error(str(exc), column="sensing_date") from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            raise  # the connection, not the file
        except psycopg2.IntegrityError as exc:
            # A key twice in the file (the portal re-issuing a record): refused whole.
            raise error((exc.diag.message_detail or str(exc)).strip()) from exc
        finally:
            cur.close()
        log.info(
            "%s: %d row(s) replaced by %d%s",
            dataset.dataset_id,
            deleted,
            rows,
            f" for sensing_date in [{window[0]}, {window[1]})" if window else "",
            extra={**self.worker.extra, "load_id": load.id},
        )
        return rows


# The dbt models read its tables: `data-platform run` rebuilds them after new loads.
PEDESTRIAN = FileSource(naming.SOURCE, scan_pedestrian, PedestrianTableLoader, transforms=True)
