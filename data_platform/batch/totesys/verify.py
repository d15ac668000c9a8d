"""totesys tables checked against the source database (issue 25): per table, the row
count and a sum of row hashes over 64 key ranges, the source read in one snapshot (as a
pass reads it), the platform's current state (`totesys.<table>`) beside it; the ranges
that differ narrowed to their keys: `missing` (in the source, not here), `extra` (here,
not in the source) or `different` (another version).

A row's hash is the md5 of its columns the extraction and the loader already compute for
its version (`tables.version_sql`), computed afresh on both sides: a value changed here
behind the loader's back shows, whatever `dp__version` says. Left out: the source rows the next
pass would read (written since the table's mark: `extract._changed`), and their keys
here; they are behind, not wrong. A key deleted at the source since the last pass shows
as `extra` until the next pass carries the delete: `run` verifies right after its pass.
"""

from __future__ import annotations

import contextlib

import psycopg2
from psycopg2 import sql
from sqlalchemy import Engine

from data_platform.batch.totesys import tables as T
from data_platform.batch.totesys.connection import reader_url
from data_platform.batch.totesys.extract import LOCK, OVERLAP, _begin, _changed, _read_marks
from data_platform.db.engine import dbapi_cursor
from data_platform.errors import DatabaseError
from data_platform.loads.locks import advisory_lock
from data_platform.loads.verify import KEY_LIMIT, Verification, record

CHECK = "key_ranges"
RANGES = 64


def _hash(version: sql.Composable) -> sql.Composable:
    """60 bits of a version (a uuid of md5 hex) as a bigint, to sum over a range."""
    return sql.SQL("('x' || substr(replace(({})::text, '-', ''), 1, 15))::bit(60)::bigint").format(
        version
    )


def verify_totesys(engine: Engine, table: str | None = None) -> list[Verification]:
    """Check and record every extracted totesys table (or only `table`: `sales_order` or
    `totesys__sales_order`) against the source, after any pass in flight (the
    extraction's lock is waited for). Returns what was recorded.

    Raises DatabaseError (exit 3) when the source cannot be reached."""
    wanted = table.removeprefix(f"{T.SOURCE}__") if table else None
    found: list[Verification] = []
    url = reader_url().render_as_string(hide_password=False).replace("+psycopg2", "")
    with advisory_lock(engine, *LOCK, wait=True):
        marks = _read_marks()
        chosen = [t for t in T.TABLES if t.name in marks and wanted in (None, t.name)]
        if not chosen:
            return []
        try:
            source = psycopg2.connect(
                url, options="-c default_transaction_read_only=on -c datestyle=ISO,YMD"
            )
        except psycopg2.OperationalError as exc:
            raise DatabaseError("totesys source unreachable for verify") from exc
        try:
            snapshot = _begin(source, marks)
            with engine.begin() as conn, dbapi_cursor(conn) as here, source.cursor() as there:
                here.execute("SET LOCAL datestyle = 'ISO, YMD'")
                for one in chosen:
                    where, params = _changed(one, marks[one.name], snapshot, OVERLAP)
                    verification = _verify_table(there, here, one, where, params)
                    record(here, verification)
                    found.append(verification)
        finally:
            with contextlib.suppress(psycopg2.Error):
                source.rollback()
            source.close()
    return found


def _verify_table(
    there, here, table: T.TotesysTable, changed: sql.Composable, params: tuple
) -> Verification:
    key = sql.Identifier(table.key)
    src = sql.Identifier(table.name)  # the source's table, in its search path
    dst = sql.Identifier(T.DB_SCHEMA, table.name)
    # The keys the next pass reads: left out on both sides.
    if changed.as_string(there):
        there.execute(sql.SQL("SELECT {} FROM {} {}").format(key, src, changed), params)
        behind = sorted(row[0] for row in there.fetchall())
    else:  # the pass reads the whole table: nothing is behind that it would not fix
        behind = []
    there.execute(sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(key, src))
    here.execute(sql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(key, dst))
    width = max(there.fetchone()[0], here.fetchone()[0]) // RANGES + 1
    not_behind = sql.SQL("NOT ({} = ANY(%(behind)s))").format(key)
    args = {"behind": behind, "width": width}

    def ranges(cur, table_ref: sql.Composable, version: sql.Composable) -> dict[int, tuple]:
        cur.execute(
            sql.SQL(
                "SELECT {k} / %(width)s, count(*), sum({h}) FROM {t} WHERE {nb} GROUP BY 1"
            ).format(k=key, h=_hash(version), t=table_ref, nb=not_behind),
            args,
        )
        return {r[0]: (r[1], r[2]) for r in cur.fetchall()}

    source_ranges = ranges(there, src, T.version_sql(table))
    here_ranges = ranges(here, dst, T.version_sql(table))
    bad = sorted(
        r
        for r in source_ranges.keys() | here_ranges.keys()
        if source_ranges.get(r) != here_ranges.get(r)
    )
    differing, keys = 0, list[dict]()
    if bad:

        def versions(cur, table_ref: sql.Composable, version: sql.Composable) -> dict:
            cur.execute(
                sql.SQL(
                    "SELECT {k}, ({v})::text FROM {t} WHERE {nb} AND {k} / %(width)s = ANY(%(bad)s)"
                ).format(k=key, v=version, t=table_ref, nb=not_behind),
                {**args, "bad": bad},
            )
            return dict(cur.fetchall())

        theirs = versions(there, src, T.version_sql(table))
        ours = versions(here, dst, T.version_sql(table))
        for k in sorted(theirs.keys() | ours.keys()):
            if theirs.get(k) == ours.get(k):
                continue
            kind = "missing" if k not in ours else "extra" if k not in theirs else "different"
            differing += 1
            if len(keys) < KEY_LIMIT:
                keys.append({"key": [k], "kind": kind})
    return Verification(
        source=T.SOURCE,
        check=CHECK,
        subject=f"{T.DB_SCHEMA}.{table.name}",
        differing=differing,
        keys=keys,
        expected=sum(count for count, _ in source_ranges.values()),
        actual=sum(count for count, _ in here_ranges.values()),
        detail=None
        if not differing
        else f"{len(bad)} key range(s) differ; {len(behind)} key(s) newer than the last pass "
        "left out",
    )
