"""Write dispositions: how a staged file's rows reach their table, as set operations in
PostgreSQL, inside the caller's transaction (so readers see all of a load or none).

A source COPYs a file into a staging table (`create_stage`, `copy_csv`), then calls one:

- `replace_partition`: the rows of one partition value (a DMAP dataset id, a date
  window) are replaced by the file's: a re-issued partition never doubles.
- `replace_range`: the rows whose column falls in [start, end) (a fetched date window)
  are replaced by the file's, which must all fall in it; `replace_all`: every row.
- `append`: rows added; with `unique`, a row whose unique key is there already is
  skipped (a replayed file, a record delivered twice).
- `merge_by_key`: the newest row per key by an ordering column wins, and a stored row is
  only overwritten by a newer one (re-applying a file changes nothing); without an
  ordering column, the row staged last wins over the stored one.
- `delete_keys`: rows whose key the stage marks as deleted go, optionally leaving
  tombstones so an older change cannot bring them back.

Qlik's change apply has rules of its own on top (key renames, sparse updates, tombstones
by change sequence): `data_platform/batch/cubic_qlik/change_apply.py`.

Every identifier goes through psycopg2.sql; values are bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg2 import sql

STAGE = "dp_stage"


def create_stage(cur, target: sql.Composable, columns: Sequence[str]) -> sql.Composable:
    """A temporary table (dropped at commit) with `columns` typed as in `target`, no
    constraints, so COPY checks each value's type and nothing else. Returns its name."""
    stage = sql.Identifier(STAGE)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
    cur.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            stage, _columns(columns), target
        )
    )
    return stage


def replace_partition(
    cur,
    target: sql.Composable,
    stage: sql.Composable,
    columns: Sequence[str],
    partition: Mapping[str, object],
) -> tuple[int, int]:
    """Delete `target`'s rows where every `partition` column equals its value, then
    insert the staged rows with those values. Returns (rows deleted, rows inserted)."""
    where = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder()) for name in partition
    )
    values = list(partition.values())
    cur.execute(sql.SQL("DELETE FROM {} WHERE {}").format(target, where), values)
    deleted = cur.rowcount
    cur.execute(
        sql.SQL("INSERT INTO {} ({}, {}) SELECT {}, {} FROM {}").format(
            target,
            _columns(columns),
            _columns(list(partition)),
            _columns(columns),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
            stage,
        ),
        values,
    )
    return deleted, cur.rowcount


def replace_range(
    cur,
    target: sql.Composable,
    stage: sql.Composable,
    columns: Sequence[str],
    column: str,
    start: object,
    end: object,
) -> tuple[int, int]:
    """Delete `target`'s rows whose `column` is in [start, end), then insert the staged
    rows. Returns (rows deleted, rows inserted).

    Raises ValueError naming the staged values outside the range: such a row would
    outlive the next replacement of its own range."""
    col = sql.Identifier(column)
    cur.execute(
        sql.SQL("SELECT min({c}), max({c}) FROM {s} WHERE NOT ({c} >= %s AND {c} < %s)").format(
            c=col, s=stage
        ),
        (start, end),
    )
    low, high = cur.fetchone()
    if low is not None:
        raise ValueError(f"{column} {low} to {high} is outside the file's range [{start}, {end})")
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE {c} >= %s AND {c} < %s").format(target, c=col), (start, end)
    )
    deleted = cur.rowcount
    return deleted, _insert_all(cur, target, stage, columns)


def replace_all(
    cur, target: sql.Composable, stage: sql.Composable, columns: Sequence[str]
) -> tuple[int, int]:
    """Every row of `target` replaced by the staged rows (a dataset fetched whole), by
    DELETE: readers keep the old rows, unblocked, until the commit. Returns (rows
    deleted, rows inserted)."""
    cur.execute(sql.SQL("DELETE FROM {}").format(target))
    deleted = cur.rowcount
    return deleted, _insert_all(cur, target, stage, columns)


def _insert_all(cur, target: sql.Composable, stage: sql.Composable, columns: Sequence[str]) -> int:
    cur.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            target, _columns(columns), _columns(columns), stage
        )
    )
    return cur.rowcount


def append(
    cur,
    target: sql.Composable,
    stage: sql.Composable,
    columns: Sequence[str],
    unique: Sequence[str] | None = None,
) -> int:
    """Insert the staged rows; with `unique` (columns of a unique index of `target`),
    rows whose key is stored already are skipped. Returns rows inserted."""
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        target, _columns(columns), _columns(columns), stage
    )
    if unique:
        statement += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(_columns(unique))
    cur.execute(statement)
    return cur.rowcount


def merge_by_key(
    cur,
    target: sql.Composable,
    stage: sql.Composable,
    columns: Sequence[str],
    key: Sequence[str],
    order_by: str | None,
    *,
    values: Mapping[str, sql.Composable] | None = None,
    where: sql.Composable | None = None,
    args: Mapping[str, object] | None = None,
    one_per_key: bool = False,
    then_by: str | None = None,
    newer_only: bool = False,
) -> int:
    """Upsert the newest staged row per `key` (by `order_by`, the last staged row among
    equals) into `target`, whose `key` is its primary key or a unique index; a stored row
    is replaced only by a row whose `order_by` is not older (a stored NULL is older than
    any). Returns rows written.

    - `values`: the SQL expression of a column over the staged row `s`, for a column not
      staged as is (a converted value, a bound parameter from `args`); the others are
      the staged column of the same name.
    - `where`: only the staged rows `s` matching it.
    - `one_per_key`: the stage holds at most one row per key, so no sort picks the
      newest (a key staged twice raises CardinalityViolation when both rows write).
    - `order_by` None: no column orders the rows: the staged row last (by `then_by`)
      wins, and replaces the stored row whatever it holds.
    - `then_by`: the staged column ordering a key's rows among equals (the highest
      wins); by default the stage's physical order (ctid), its insertion order.
    - `newer_only`: a stored row is replaced only by a strictly newer one (a change
      applied twice writes nothing, and counts no row)."""
    others = [column for column in columns if column not in key]
    rows = _staged_rows(stage, columns, key, order_by, values, where, one_per_key, then_by)
    statement = sql.SQL("INSERT INTO {} AS t ({}) {} ON CONFLICT ({}) ").format(
        target, _columns(columns), rows, _columns(key)
    )
    if others:
        statement += sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                for c in others
            )
        )
        if order_by is not None:
            statement += sql.SQL(" WHERE t.{o} IS NULL OR t.{o} {op} EXCLUDED.{o}").format(
                o=sql.Identifier(order_by), op=sql.SQL("<" if newer_only else "<=")
            )
    else:
        statement += sql.SQL("DO NOTHING")
    cur.execute(statement, args)
    return cur.rowcount


def _staged_rows(
    stage: sql.Composable,
    columns: Sequence[str],
    key: Sequence[str],
    order_by: str | None,
    values: Mapping[str, sql.Composable] | None,
    where: sql.Composable | None,
    one_per_key: bool,
    then_by: str | None,
) -> sql.Composable:
    """The SELECT of `merge_by_key`: its `columns` from the staged rows, the newest per
    key unless `one_per_key`."""
    filtered = sql.SQL("") if where is None else sql.SQL(" WHERE {}").format(where)
    if values is None:
        items: sql.Composable = sql.SQL("*") if not one_per_key else _columns(columns)
    else:
        items = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(
                values.get(c, sql.SQL("s.{}").format(sql.Identifier(c))), sql.Identifier(c)
            )
            for c in columns
        )
    if one_per_key:
        return sql.SQL("SELECT {} FROM {} s{}").format(items, stage, filtered)
    last = sql.SQL("ctid") if then_by is None else sql.SQL("s.{}").format(sql.Identifier(then_by))
    order = (
        sql.SQL("") if order_by is None else sql.SQL("{} DESC, ").format(sql.Identifier(order_by))
    )
    return sql.SQL(
        "SELECT DISTINCT ON ({key}) {cols} FROM (SELECT {items}, {last} AS dp__ctid FROM {stage} s"
        "{where}) s ORDER BY {key}, {order}dp__ctid DESC"
    ).format(
        key=_columns(key),
        cols=_columns(columns),
        items=items,
        last=last,
        stage=stage,
        where=filtered,
        order=order,
    )


def delete_keys(
    cur,
    target: sql.Composable,
    stage: sql.Composable,
    key: Sequence[str],
    where: sql.Composable,
    tombstones: sql.Composable | None = None,
) -> int:
    """Delete `target`'s rows whose `key` a staged row matching `where` holds; with
    `tombstones` (a table with the key columns), record each deleted key there too.
    Returns rows deleted."""
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = s.{0}").format(sql.Identifier(column)) for column in key
    )
    deleted = sql.SQL("DELETE FROM {} t USING {} s WHERE {} AND {}").format(
        target, stage, match, where
    )
    if tombstones is None:
        cur.execute(deleted)
        return cur.rowcount
    cur.execute(
        sql.SQL(
            "WITH gone AS ({} RETURNING {}) INSERT INTO {} ({}) SELECT {} FROM gone "
            "ON CONFLICT DO NOTHING"
        ).format(
            deleted,
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in key),
            tombstones,
            _columns(key),
            _columns(key),
        )
    )
    return cur.rowcount


def _columns(names: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))
