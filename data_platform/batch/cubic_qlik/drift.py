"""CDC drift made visible: a Qlik table, as its change files kept it, against the next
full load of the source (issue 25).

A new snapshot is the source's whole truth at the time its full load started. Just
before one replaces a table whose rows change files have written, `capture` keeps what
the table held: each key, its change sequence and a hash of its columns, in an unlogged
table `dp_pre_<table_id>` beside it (one pass over the table, in the load's transaction:
a rollback leaves nothing). Once every part of the snapshot is applied (no load of the
table is waiting), `compare` sets the captured rows against the rows the snapshot wrote
and records a `snapshot_drift` verification, naming each key that differs:

- `missing`: in the snapshot, not in the table the change files kept (an insert lost);
- `extra`: in that table, not in the snapshot, and no change since deleted it (a delete
  lost);
- `different`: in both, with other values (an update lost or applied wrongly).

Left out, since they are not drift: captured rows whose change sequence is at or after
the snapshot's start (`table_snapshots.snapshot`, to the second: a change newer than the
full load), and snapshot rows a change file has written since (compared by the next
snapshot). Change sequences are read as Replicate writes them, a timestamp first
(YYYYMMDDHHMMSS), in the same clock as the snapshot's file times. Tables whose key may
be NULL are not compared (the comparison joins on plain equality).
"""

from __future__ import annotations

import json
import logging

from psycopg2 import sql

from data_platform.batch.cubic_qlik.naming import CHANGE_SEQ_COLUMN, SOURCE
from data_platform.batch.cubic_qlik.target import TargetTable, describe_target
from data_platform.db.engine import dbapi_cursor
from data_platform.loads.locks import table_lock
from data_platform.loads.verify import KEY_LIMIT, Verification, record

log = logging.getLogger(__name__)

CHECK = "snapshot_drift"
_SEQ, _HASH = "dp__seq", "dp__hash"  # the captured change sequence and row hash


def pre_table(schema: str, table_id: int) -> sql.Identifier:
    """Where `capture` keeps a table's rows before its new snapshot."""
    return sql.Identifier(schema, f"dp_pre_{table_id}")


def _row_hash(columns: tuple[str, ...], alias: str) -> sql.Composable:
    """md5 of the row's columns as one text: the same value for the same typed values."""
    return sql.SQL("md5(ROW({})::text)").format(
        sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns)
    )


def capture(cur, target: TargetTable, table_id: int, load_id: int) -> bool:
    """Before load `load_id` starts a new snapshot of `target`: keep each key, change
    sequence and row hash of the table in `dp_pre_<table_id>`, when change files have
    written some of its rows (else the table is its last snapshot, and there is no drift
    to see). An earlier capture not compared yet is compared first (its snapshot is
    complete: a newer one starts) and recorded. Returns whether it captured."""
    if not target.key or not all(c in target.not_null for c in target.key):
        return False
    pre = pre_table(target.schema, table_id)
    earlier = compare(cur, target.schema, target.name, table_id)
    if earlier is not None:
        record(cur, earlier)
    cur.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {} IS NOT NULL)").format(
            target.ident, sql.Identifier(CHANGE_SEQ_COLUMN)
        )
    )
    if not cur.fetchone()[0]:
        return False
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {pre} AS SELECT {keys}, t.{seq} AS {pseq}, {hash} AS {phash} "
            "FROM {target} t"
        ).format(
            pre=pre,
            keys=sql.SQL(", ").join(sql.Identifier("t", c) for c in target.key),
            seq=sql.Identifier(CHANGE_SEQ_COLUMN),
            pseq=sql.Identifier(_SEQ),
            hash=_row_hash(target.columns, "t"),
            phash=sql.Identifier(_HASH),
            target=target.ident,
        )
    )
    about = {"columns": list(target.columns), "key": list(target.key), "load_id": load_id}
    cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(pre, sql.Literal(json.dumps(about))))
    # Every column of the platform's tables says what it is, this one's too while it waits.
    for column, comment in [
        *(
            (c, f"The key column {c} of {target.qualified} before the new snapshot.")
            for c in target.key
        ),
        (_SEQ, "dp__change_seq of the row before the new snapshot."),
        (_HASH, "md5 of the row's columns before the new snapshot (drift.compare)."),
    ]:
        cur.execute(
            sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(
                pre, sql.Identifier(column), sql.Literal(comment)
            )
        )
    return True


def compare(cur, schema: str, table: str, table_id: int) -> Verification | None:
    """Compare the rows captured before the table's latest snapshot with the rows that
    snapshot wrote (see the module docstring), record nothing, drop the capture, and
    return the verification (None when there was no capture, or the table's columns
    changed since it: then nothing can be compared)."""
    name = f"dp_pre_{table_id}"
    if not _exists(cur, schema, name):
        return None
    pre = pre_table(schema, table_id)
    cur.execute("SELECT obj_description(%s::regclass, 'pg_class')", (pre.as_string(cur),))
    about = json.loads(cur.fetchone()[0] or "{}")
    target = describe_target(cur, schema, table)
    if list(target.columns) != about.get("columns") or list(target.key) != about.get("key"):
        log.info("%s.%s: columns changed since the capture: not compared", schema, table)
        cur.execute(sql.SQL("DROP TABLE {}").format(pre))
        return None
    cur.execute(
        "SELECT to_char(s.snapshot AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISS') "
        "FROM load_snapshots l JOIN table_snapshots s ON s.id = l.snapshot_id "
        "WHERE l.load_id = %s",
        (about["load_id"],),
    )
    row = cur.fetchone()
    cutoff = row[0] if row else None
    differing, keys, expected, actual = _differences(cur, target, pre, table_id, cutoff)
    cur.execute(sql.SQL("DROP TABLE {}").format(pre))
    return Verification(
        source=SOURCE,
        check=CHECK,
        subject=f"{schema}.{table}",
        differing=differing,
        keys=keys,
        expected=expected,
        actual=actual,
        table_id=table_id,
        load_id=about["load_id"],
        detail=None
        if differing == 0
        else "the table as change files kept it differs from the next full load",
    )


def _differences(
    cur, target: TargetTable, pre: sql.Identifier, table_id: int, cutoff: str | None
) -> tuple[int, list[dict], int, int]:
    """(keys that differ, the first KEY_LIMIT of them as {key, kind}, rows the snapshot
    wrote, rows captured), comparing `pre` with `target` (see the module docstring)."""
    seq = sql.Identifier(CHANGE_SEQ_COLUMN)
    names = {
        "target": target.ident,
        "pre": pre,
        "seq": seq,
        "pseq": sql.Identifier(_SEQ),
        "phash": sql.Identifier(_HASH),
        "hash": _row_hash(target.columns, "t"),
        "join": sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("c", k), sql.Identifier("p", k))
            for k in target.key
        ),
        "key_array": sql.SQL("jsonb_build_array({})").format(
            sql.SQL(", ").join(
                sql.SQL("coalesce({}, {})").format(sql.Identifier("c", k), sql.Identifier("p", k))
                for k in target.key
            )
        ),
        "c_keys": sql.SQL(", ").join(sql.Identifier("t", k) for k in target.key),
    }
    cur.execute(
        sql.SQL(
            "WITH c AS (SELECT {c_keys}, {hash} AS h, t.{seq} IS NULL AS from_snapshot "
            "FROM {target} t), "
            "d AS (SELECT {key_array} AS key, CASE WHEN p.{phash} IS NULL THEN 'missing' "
            "WHEN c.h IS NULL THEN 'extra' ELSE 'different' END AS kind "
            "FROM c FULL JOIN {pre} p ON {join} "
            "WHERE (c.h IS NULL OR c.from_snapshot) "
            "AND (p.{phash} IS NULL OR p.{pseq} IS NULL OR %(cutoff)s IS NULL "
            "OR p.{pseq} < %(cutoff)s) "
            "AND (p.{phash} IS NULL OR c.h IS NULL OR p.{phash} <> c.h)) "
            "SELECT (SELECT count(*) FROM d WHERE NOT (kind = 'extra' AND EXISTS ("
            "SELECT FROM deleted_keys k WHERE k.table_id = %(table_id)s AND k.key = d.key))), "
            "(SELECT coalesce(jsonb_agg(x ORDER BY x.kind, x.key), '[]'::jsonb) FROM ("
            "SELECT key, kind FROM d WHERE NOT (kind = 'extra' AND EXISTS ("
            "SELECT FROM deleted_keys k WHERE k.table_id = %(table_id)s AND k.key = d.key)) "
            "ORDER BY kind, key LIMIT %(limit)s) x), "
            "(SELECT count(*) FROM {target} WHERE {seq} IS NULL), (SELECT count(*) FROM {pre})"
        ).format(**names),
        {"cutoff": cutoff, "table_id": table_id, "limit": KEY_LIMIT},
    )
    differing, keys, expected, actual = cur.fetchone()
    return differing, keys, expected, actual


def _exists(cur, schema: str, name: str) -> bool:
    cur.execute(
        "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s)",
        (schema, name),
    )
    return bool(cur.fetchone()[0])


def verify_qlik(engine, table: str | None = None) -> list[Verification]:
    """Compare and record every Qlik table captured before a snapshot whose parts are all
    applied (every load of the table archived or skipped), or only `table` (its name as
    `source_tables.name` holds it: `EDW.SAMPLE`). A table whose worker is busy is left for
    the next time (its lock is tried, never waited on). Returns what was recorded."""
    with engine.connect() as conn:
        tables = conn.exec_driver_sql(
            "SELECT t.id, t.db_schema, t.db_table FROM source_tables t "
            "WHERE t.source = %(source)s AND t.db_table IS NOT NULL "
            "AND (%(table)s IS NULL OR t.name = %(table)s) "
            "AND to_regclass(quote_ident(t.db_schema) || '.' || quote_ident('dp_pre_' || t.id)) "
            "IS NOT NULL "
            "AND NOT EXISTS (SELECT FROM loads l WHERE l.table_id = t.id "
            "AND l.status NOT IN ('archived', 'skipped')) ORDER BY t.id",
            {"source": SOURCE, "table": table},
        ).all()
    found: list[Verification] = []
    for table_id, schema, name in tables:
        with table_lock(engine, table_id) as got:
            if not got:
                continue
            with engine.begin() as conn:
                cur = dbapi_cursor(conn)
                verification = compare(cur, schema, name, table_id)
                if verification is not None:
                    record(cur, verification)
                    found.append(verification)
    return found
