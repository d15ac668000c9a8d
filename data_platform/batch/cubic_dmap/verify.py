"""DMAP tables checked against their files (issue 25): each dataset's rows in its table
against the rows of the file that last replaced them (`loads.rows`: every record of the
file, COPYed whole), and no rows of a dataset no applied file brought. One grouped count
per table: cheap enough for every pass."""

from __future__ import annotations

from psycopg2 import sql
from sqlalchemy import Engine

from data_platform.batch.cubic_dmap import naming
from data_platform.db.engine import dbapi_cursor
from data_platform.loads.verify import Verification, record

CHECK = "dataset_rows"


def verify_dmap(engine: Engine, table: str | None = None) -> list[Verification]:
    """Check and record every DMAP table (or only `table`, as `source_tables.name` holds
    it): one verification per table, the datasets that differ as its keys (`[dataset_id]`;
    missing: a file applied, its rows not there; extra: rows no applied file brought;
    different: another count). Returns what was recorded."""
    found: list[Verification] = []
    with engine.begin() as conn:
        cur = dbapi_cursor(conn)
        cur.execute(
            "SELECT id, s3_prefix, db_schema, db_table FROM source_tables "
            "WHERE source = %s AND db_table IS NOT NULL AND (%s IS NULL OR name = %s) "
            "ORDER BY id",
            (naming.SOURCE, table, table),
        )
        for table_id, prefix, schema, name in cur.fetchall():
            verification = _verify_table(cur, table_id, prefix, schema, name)
            record(cur, verification)
            found.append(verification)
    return found


def _verify_table(cur, table_id: int, prefix: str, schema: str, name: str) -> Verification:
    # The newest applied file of each dataset: the one whose rows the table holds.
    cur.execute(
        "SELECT s3_key, rows FROM loads WHERE table_id = %s AND status = 'archived' ORDER BY id",
        (table_id,),
    )
    expected: dict[str, int] = {}
    for key, rows in cur.fetchall():
        dataset_id = naming.dataset_id_of(key, prefix)
        if dataset_id is not None and rows is not None:
            expected[dataset_id] = rows
    cur.execute(
        sql.SQL("SELECT {id}, count(*) FROM {table} GROUP BY {id}").format(
            id=sql.Identifier(naming.DATASET_ID_COLUMN), table=sql.Identifier(schema, name)
        )
    )
    actual = dict(cur.fetchall())
    keys = []
    for dataset_id in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(dataset_id), actual.get(dataset_id)
        if want == have or (want == 0 and have is None):
            continue
        kind = "extra" if want is None else "missing" if have is None else "different"
        keys.append({"key": [dataset_id], "kind": kind, "expected": want, "actual": have})
    return Verification(
        source=naming.SOURCE,
        check=CHECK,
        subject=f"{schema}.{name}",
        differing=len(keys),
        keys=keys,
        expected=sum(expected.values()),
        actual=sum(actual.values()),
        table_id=table_id,
        detail=None if not keys else "a dataset's rows differ from its file's",
    )
