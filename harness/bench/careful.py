"""A careful hand-written loader of the bench's files: the yardstick `make bench` measures
the platform against, beside raw COPY (issue 24). It is not part of the platform and
checks nothing beyond what PostgreSQL's own parse and the key check.

Every load is one transaction on one connection, fed the same gzip stream as raw COPY:

- the file's records are COPYed (typed) into an unlogged staging table whose columns take
  the target's types, so PostgreSQL parses every value (its own timestamp parse, numeric
  rounded to the column's scale);
- a Qlik full load, a new snapshot of the table (`Peer.snapshot`): one plain
  `INSERT ... SELECT DISTINCT ON (key)` into the fresh, empty keyed target, the last
  record of a repeated key winning (no `ON CONFLICT`: on an empty table it costs 1.3 s
  per 1M rows for nothing);
- pedestrian counts, a window of a table holding others: one `INSERT ... SELECT
  DISTINCT ON (key) ... ON CONFLICT (key) DO UPDATE`;
- a change file: the last change per key (`DISTINCT ON (key) ... ORDER BY key,
  header__change_seq DESC`, before-images `B` left out as Qlik's own apply does) into a
  second unlogged table, one DELETE of the keys whose last change is `D`, one
  `INSERT ... ON CONFLICT DO UPDATE` of the rest;
- a DMAP dataset, whose table has no key but the dataset id (each re-issue replaces its
  dataset's rows): one DELETE of the dataset's rows, one `INSERT ... SELECT`.

The target is a table of the `careful` schema with the file's columns typed as in the
platform's table (`Peer.like`), created afresh before each measured load. After each
measured load its rows are compared with the platform's table (row count and a sum of
row hashes, `careful_compare`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from psycopg2 import sql

SCHEMA = "careful"
# Statements on the loader's own tables: `qlik.statement_seconds` counts them as staging.
SCHEMA_IN_LOG = f'"{SCHEMA.upper()}".'
STAGE = sql.Identifier(SCHEMA, "stage")
LAST = sql.Identifier(SCHEMA, "last")
SEQ, OPER = "header__change_seq", "header__change_oper"
# The columns Qlik puts in front of a change file's table columns, as staged.
CHANGE_HEADERS = {SEQ: "text", OPER: "text", "header__timestamp": "timestamp"}


@dataclass(frozen=True)
class Peer:
    """How the careful loader takes one of the bench's files.

    `like`: the platform's table (schema, table) loaded from the same file: the target's
    column types come from it, and its rows are what the careful target must hold.
    `key`: the upsert's key columns; empty with `partition` (column, value) set: the
    dataset's rows are replaced instead (DMAP). `changes`: the file is a Qlik change file.
    `fill`: a full-load file loaded (unmeasured) into the fresh target before the measured
    load, so that a change file applies to a loaded table. `snapshot`: the file replaces
    the whole table, loaded into the fresh empty target without conflict handling."""

    name: str
    like: tuple[str, str]
    key: tuple[str, ...] = ()
    partition: tuple[str, str] | None = None
    changes: bool = False
    delimiter: str = ","
    fill: str | None = None
    snapshot: bool = False


def _connect(home: str):
    """A psycopg2 connection to the bench's private server (`home` its data home)."""
    from harness.bench.qlik import _configure

    _configure(home)
    from data_platform.db.engine import get_engine

    return get_engine().raw_connection()


def _header(path: str, delimiter: str) -> list[str]:
    """The file's header fields, lower case as the platform names its columns."""
    from data_platform.loads.csv_files import CsvDialect, DataFileReader

    with open(path, "rb") as source, DataFileReader(source, path) as reader:
        return [field.lower() for field in reader.header(CsvDialect(delimiter=delimiter))]


def _types(cur, schema: str, table: str) -> dict[str, str]:
    """Column name -> type as `format_type` spells it (`numeric(12,2)`), in table order."""
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (schema, table),
    )
    return dict(cur.fetchall())


def _columns(cur, peer: Peer, header: list[str]) -> list[tuple[str, str]]:
    """(column, type) of the careful target: the file's table columns typed as in the
    platform's table, then the partition column. Raises RuntimeError when the platform's
    table lacks one."""
    types = _types(cur, *peer.like)
    names = [c for c in header if c not in CHANGE_HEADERS] if peer.changes else list(header)
    names += [peer.partition[0]] if peer.partition else []
    missing = [c for c in names if c not in types]
    if missing:
        raise RuntimeError(f"{'.'.join(peer.like)} has no column {', '.join(missing)}")
    return [(c, types[c]) for c in names]


def _names(columns: Iterable[str]) -> sql.Composable:
    """`a, b, c`: the column names quoted as identifiers."""
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def _definitions(columns: Iterable[tuple[str, str]]) -> list[sql.Composable]:
    """`name type` per (column, type); the types are `format_type`'s, read from the
    catalog, never from the file."""
    return [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns]


def careful_reset(home: str, path: str, peer: Peer) -> None:
    """A fresh target for `peer` (dropped if there), typed from the platform's table and
    the header of the file at `path`; then `peer.fill` loaded into it, if set."""
    raw = _connect(home)
    try:
        with raw.cursor() as cur:
            columns = _columns(cur, peer, _header(path, peer.delimiter))
            target = sql.Identifier(SCHEMA, peer.name)
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            items = _definitions(columns)
            if peer.key:
                items.append(sql.SQL("PRIMARY KEY ({})").format(_names(peer.key)))
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(items)))
            if peer.partition:
                # As the platform's table: a re-issue finds its dataset's rows by this index.
                cur.execute(
                    sql.SQL("CREATE INDEX ON {} ({})").format(
                        target, sql.Identifier(peer.partition[0])
                    )
                )
        raw.commit()
        if peer.fill:
            _load(raw, peer.fill, replace(peer, changes=False, fill=None))
    finally:
        raw.close()


def careful_load(home: str, path: str, peer: Peer) -> float:
    """The measured step: seconds of the careful load of `path` into `peer`'s target, from
    the staging table's creation to the commit."""
    raw = _connect(home)
    try:
        return _load(raw, path, peer)
    finally:
        raw.close()


def careful_compare(home: str, peer: Peer) -> int:
    """The rows of `peer`'s target, once checked to be the platform's table's (its
    columns; for a dataset, the platform's rows of that dataset): a yardstick that loaded
    other rows would measure nothing. Raises RuntimeError when they differ."""
    raw = _connect(home)
    try:
        with raw.cursor() as cur:
            columns = list(_types(cur, SCHEMA, peer.name))
            ours = digest(cur, SCHEMA, peer.name, columns)
            theirs = digest(cur, *peer.like, columns, peer.partition)
        raw.commit()
    finally:
        raw.close()
    if ours != theirs:
        raise RuntimeError(
            f"the careful loader's {SCHEMA}.{peer.name} holds {ours[0]:,} rows (hash sum "
            f"{ours[1]}), the platform's {'.'.join(peer.like)} {theirs[0]:,} ({theirs[1]})"
        )
    return ours[0]


def _load(raw, path: str, peer: Peer) -> float:
    """Load the file at `path` into `peer`'s target in one transaction; returns its seconds."""
    from data_platform.loads.csv_files import CsvDialect, DataFileReader

    target = sql.Identifier(SCHEMA, peer.name)
    with open(path, "rb") as source, DataFileReader(source, path) as reader:
        header = [f.lower() for f in reader.header(CsvDialect(delimiter=peer.delimiter))]
        with raw.cursor() as cur:
            types = _types(cur, SCHEMA, peer.name)
            staged = [(c, CHANGE_HEADERS.get(c) or types[c]) for c in header]
            raw.commit()
            started = time.perf_counter()
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(STAGE))
            cur.execute(
                sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(
                    STAGE, sql.SQL(", ").join(_definitions(staged))
                )
            )
            cur.copy_expert(
                sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, DELIMITER {})").format(
                    STAGE, _names(header), sql.Literal(peer.delimiter)
                ),
                reader,
                size=1 << 20,
            )
            columns = [c for c in types if c not in CHANGE_HEADERS]
            if peer.changes:
                _apply_changes(cur, target, columns, peer.key)
            elif peer.key and peer.snapshot:
                cur.execute(
                    sql.SQL("INSERT INTO {} ({}) {}").format(
                        target, _names(columns), _last_per_key(columns, peer.key)
                    )
                )
            elif peer.key:
                _upsert(cur, target, columns, peer.key, _last_per_key(columns, peer.key))
            else:
                _replace_partition(cur, target, columns, peer.partition)
            cur.execute(sql.SQL("DROP TABLE {}").format(STAGE))
            raw.commit()
            return time.perf_counter() - started


def _last_per_key(columns: list[str], key: tuple[str, ...]) -> sql.Composable:
    """The staged rows, the last of each key: a staging table filled by one COPY in a new
    transaction holds its rows in file order, so `ctid` is the record's place in the file."""
    return sql.SQL(
        "SELECT DISTINCT ON ({key}) {cols} FROM {stage} ORDER BY {key}, ctid DESC"
    ).format(key=_names(key), cols=_names(columns), stage=STAGE)


def _upsert(
    cur, target: sql.Composable, columns: list[str], key: tuple[str, ...], rows: sql.Composable
) -> None:
    """`INSERT ... ON CONFLICT (key) DO UPDATE` of `rows` (one per key) into `target`."""
    others = [c for c in columns if c not in key]
    action = (
        sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others
            )
        )
        if others
        else sql.SQL("DO NOTHING")
    )
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) {} ON CONFLICT ({}) {}").format(
            target, _names(columns), rows, _names(key), action
        )
    )


def _apply_changes(cur, target: sql.Composable, columns: list[str], key: tuple[str, ...]) -> None:
    """The last change per key (by change sequence, then file order; B rows left out) into
    LAST, then one DELETE of the keys last deleted and one upsert of the others."""
    cur.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {last} AS SELECT DISTINCT ON ({key}) {oper}, {cols} "
            "FROM {stage} WHERE {oper} <> 'B' ORDER BY {key}, {seq} DESC, ctid DESC"
        ).format(
            last=LAST,
            key=_names(key),
            oper=sql.Identifier(OPER),
            cols=_names(columns),
            stage=STAGE,
            seq=sql.Identifier(SEQ),
        )
    )
    # Row counts for the planner: the DELETE joins on it.
    cur.execute(sql.SQL("ANALYZE {}").format(LAST))
    cur.execute(
        sql.SQL("DELETE FROM {target} t USING {last} l WHERE l.{oper} = 'D' AND {match}").format(
            target=target,
            last=LAST,
            oper=sql.Identifier(OPER),
            match=sql.SQL(" AND ").join(
                sql.SQL("t.{0} = l.{0}").format(sql.Identifier(c)) for c in key
            ),
        )
    )
    rows = sql.SQL("SELECT {} FROM {} WHERE {} <> 'D'").format(
        _names(columns), LAST, sql.Identifier(OPER)
    )
    _upsert(cur, target, columns, key, rows)
    cur.execute(sql.SQL("DROP TABLE {}").format(LAST))


def _replace_partition(
    cur, target: sql.Composable, columns: list[str], partition: tuple[str, str] | None
) -> None:
    """The dataset's rows (partition column = value) deleted, the staged rows inserted."""
    if partition is None:
        raise ValueError("a peer without a key needs a partition")
    column, value = partition
    data = [c for c in columns if c != column]
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {} = %s").format(target, sql.Identifier(column)), (value,)
    )
    cur.execute(
        sql.SQL("INSERT INTO {} ({}, {}) SELECT {}, %s FROM {}").format(
            target, _names(data), sql.Identifier(column), _names(data), STAGE
        ),
        (value,),
    )


def digest(
    cur, schema: str, table: str, columns: list[str], where: tuple[str, str] | None = None
) -> tuple[int, int]:
    """(rows, sum of a 64-bit hash of each row's `columns` as text) of `schema.table`,
    only the rows whose `where` column equals its value if given: equal for two tables
    holding the same rows (in any order) with the same column types."""
    condition = sql.SQL("WHERE {} = %s").format(sql.Identifier(where[0])) if where else sql.SQL("")
    cur.execute(
        sql.SQL(
            "SELECT count(*), coalesce(sum(hashtextextended(ROW({})::text, 0)), 0) FROM {} {}"
        ).format(_names(columns), sql.Identifier(schema, table), condition),
        (where[1],) if where else None,
    )
    count, total = cur.fetchone()
    return int(count), int(total)


def target_rows(home: str, name: str) -> int:
    """Rows of the careful loader's table `name` (for the tests)."""
    raw = _connect(home)
    try:
        with raw.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, name)))
            return int(cur.fetchone()[0])
    finally:
        raw.close()
