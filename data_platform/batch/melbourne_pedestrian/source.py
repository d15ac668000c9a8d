"""The pedestrian open data as a source of the one worker: each fetched file is a load.

Scan: the files under `open_data/melbourne_pedestrian/<dataset>/` in incoming whose keys
follow `naming` and are not recorded yet. Apply: the header must hold exactly the
dataset's columns; the file (`;`-separated, as Opendatasoft exports) is COPYed into a
staging table typed like the table (every value checked; errors name file, record and
column), then a locations file replaces every row (`dispositions.replace_all`) and a
counts file replaces, for each sensor and day it holds, that sensor's day
(`replace_sensor_days`): a re-fetched day never doubles, a corrected one is taken whole,
and a sensor-day the file lacks (the portal publishing late, or a window re-read while the
portal had less) is left as it was, never deleted. Two records of one key are summed into
one row only for the local hour repeated when clocks go back (`naming.is_repeated_hour`,
`portal_records` = 2); anywhere else a repeated key errors the load. Files apply in the
order they were fetched, so the later fetch of a day wins; a table with an errored load
waits for it (`retry` or `loads skip`), because a newer file applied first would be
overwritten when the older one is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date

import psycopg2
import psycopg2.errors
from psycopg2 import sql
from sqlalchemy import Connection

from data_platform.batch.melbourne_pedestrian import naming
from data_platform.db.engine import dbapi_cursor
from data_platform.db.models import ERROR_STATES
from data_platform.errors import LoadError
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
        cur = dbapi_cursor(conn)
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
                deleted, _ = replace_sensor_days(cur, target, stage, window, error)
        finally:
            # A database error goes on as it is: the worker decides whose fault it is (a
            # key twice in a locations file, the portal re-issuing a record, is the file's).
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


def replace_sensor_days(
    cur,
    target: sql.Composable,
    stage: sql.Composable,
    window: tuple[date, date],
    error: Callable[..., LoadError],
) -> tuple[int, int]:
    """Replace, for each (location_id, sensing_date) among the staged counts, the rows of
    `target` by the staged ones, one row per key; returns (rows deleted, rows inserted).

    The two records of the local hour repeated when clocks go back become one row: counts
    summed (NULL when either is), its distinct ids joined by a space, portal_records = 2. Raises the
    LoadError of `error` when a staged sensing_date lies outside the file's `window`
    [start, end) (its key promised none there) or a key has more than one record at any
    other hour, or more than two (column hourday: the portal re-issued a record, which
    the platform cannot tell from a correction)."""
    start, end = window
    cur.execute(
        sql.SQL(
            "SELECT min(sensing_date), max(sensing_date) FROM {} "
            "WHERE NOT (sensing_date >= %s AND sensing_date < %s)"
        ).format(stage),
        (start, end),
    )
    low, high = cur.fetchone()
    if low is not None:
        raise error(
            f"sensing_date {low} to {high} is outside the file's range [{start}, {end})",
            column="sensing_date",
        )
    # The sensor-days of the file: the target's rows of the window that the stage has.
    cur.execute(
        sql.SQL(
            "DELETE FROM {t} AS t WHERE t.sensing_date >= %s AND t.sensing_date < %s "
            "AND EXISTS (SELECT FROM {s} AS s WHERE s.location_id = t.location_id "
            "AND s.sensing_date = t.sensing_date)"
        ).format(t=target, s=stage),
        (start, end),
    )
    deleted = cur.rowcount
    # A key twice is rare (one hour a year): insert as staged, and only when the key
    # index refuses, look at the repeated keys and insert them summed. Measured on 1M rows:
    # grouping every load took 1.8x the time of the load.
    cur.execute("SAVEPOINT pedestrian_counts")
    try:
        cur.execute(
            sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM {s}").format(
                t=target, s=stage, c=sql.SQL(", ").join(map(sql.Identifier, naming.COUNT_COLUMNS))
            )
        )
        return deleted, cur.rowcount
    except psycopg2.errors.UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT pedestrian_counts")
    cur.execute(
        sql.SQL(
            "SELECT location_id, sensing_date, hourday, count(*) FROM {} "
            "GROUP BY location_id, sensing_date, hourday HAVING count(*) > 1 "
            "ORDER BY sensing_date, location_id, hourday"
        ).format(stage)
    )
    for location_id, day, hour, records in cur.fetchall():
        if records > 2 or not naming.is_repeated_hour(day, hour):
            raise error(
                f"location_id {location_id}, sensing_date {day}, hourday {hour}: {records} "
                "records with one key (only the local hour repeated when clocks go back may "
                "have two)",
                column="hourday",
            )

    def total(column: str) -> sql.Composable:
        # NULL when any record of the key has none: a partial sum would pass for a count.
        return sql.SQL("CASE WHEN count({c}) = count(*) THEN sum({c}) END").format(
            c=sql.Identifier(column)
        )

    cur.execute(
        sql.SQL(
            "INSERT INTO {t} (id, location_id, sensing_date, hourday, direction_1, "
            "direction_2, pedestriancount, sensor_name, location, portal_records) "
            "SELECT string_agg(DISTINCT id, ' '), location_id, sensing_date, hourday, "
            "{d1}, {d2}, {n}, min(sensor_name), min(location), count(*) "
            "FROM {s} GROUP BY location_id, sensing_date, hourday"
        ).format(
            t=target,
            s=stage,
            d1=total("direction_1"),
            d2=total("direction_2"),
            n=total("pedestriancount"),
        )
    )
    return deleted, cur.rowcount


# The dbt models read its tables: `data-platform run` rebuilds them after new loads.
PEDESTRIAN = FileSource(naming.SOURCE, scan_pedestrian, PedestrianTableLoader, transforms=True)
