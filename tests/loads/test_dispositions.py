"""The write dispositions on a real PostgreSQL: replace a partition, append with a unique
key, merge by key with an ordering column, delete keys with tombstones."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from psycopg2 import sql

from data_platform.loads import dispositions

T = sql.Identifier("t")


@pytest.fixture
def cur(platform) -> Iterator:
    """A cursor in one transaction on the test database, rolled back at the end."""
    from data_platform.db.engine import get_engine

    conn = get_engine().raw_connection()
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.rollback()
        conn.close()


def _stage(cur, columns: list[str], rows: list[tuple]) -> sql.Composable:
    stage = dispositions.create_stage(cur, T, columns)
    for row in rows:
        cur.execute(
            sql.SQL("INSERT INTO {} VALUES ({})").format(
                stage, sql.SQL(", ").join(sql.Placeholder() * len(row))
            ),
            row,
        )
    return stage


def _rows(cur, order: str = "1, 2") -> list[tuple]:
    cur.execute(f"SELECT * FROM t ORDER BY {order}")
    return cur.fetchall()


def test_replace_partition_replaces_only_that_partitions_rows(cur) -> None:
    cur.execute("CREATE TABLE t (part text NOT NULL, v int)")
    cur.execute("INSERT INTO t VALUES ('a', 1), ('a', 2), ('b', 3)")
    stage = _stage(cur, ["v"], [(10,)])
    assert dispositions.replace_partition(cur, T, stage, ["v"], {"part": "a"}) == (2, 1)
    assert _rows(cur) == [("a", 10), ("b", 3)]
    # The same again: still one row for the partition, never two.
    assert dispositions.replace_partition(cur, T, stage, ["v"], {"part": "a"}) == (1, 1)
    assert _rows(cur) == [("a", 10), ("b", 3)]


def test_append_skips_rows_whose_unique_key_is_stored(cur) -> None:
    cur.execute("CREATE TABLE t (k int UNIQUE, v text)")
    cur.execute("INSERT INTO t VALUES (1, 'stored')")
    stage = _stage(cur, ["k", "v"], [(1, "again"), (2, "new")])
    assert dispositions.append(cur, T, stage, ["k", "v"], unique=["k"]) == 1
    assert _rows(cur) == [(1, "stored"), (2, "new")]
    with pytest.raises(psycopg2.errors.UniqueViolation):
        dispositions.append(cur, T, stage, ["k", "v"])


def test_merge_by_key_takes_the_newest_row_and_never_goes_back(cur) -> None:
    cur.execute("CREATE TABLE t (k int PRIMARY KEY, v text, at int)")
    cur.execute("INSERT INTO t VALUES (1, 'stored', 5), (2, 'stored', 5)")
    rows = [
        (1, "older", 4),  # older than the stored row: ignored
        (2, "newer", 6),
        (2, "newest", 7),
        (3, "first", 1),
        (3, "last of equals", 1),  # equal ordering: the row staged last wins
    ]
    stage = _stage(cur, ["k", "v", "at"], rows)
    assert dispositions.merge_by_key(cur, T, stage, ["k", "v", "at"], ["k"], "at") == 2
    assert _rows(cur) == [(1, "stored", 5), (2, "newest", 7), (3, "last of equals", 1)]
    # Applying the same stage again changes nothing.
    dispositions.merge_by_key(cur, T, stage, ["k", "v", "at"], ["k"], "at")
    assert _rows(cur) == [(1, "stored", 5), (2, "newest", 7), (3, "last of equals", 1)]


def test_merge_by_key_a_stored_row_without_an_order_is_older_than_any(cur) -> None:
    cur.execute("CREATE TABLE t (k int PRIMARY KEY, v text, at int)")
    cur.execute("INSERT INTO t VALUES (1, 'from a snapshot', NULL)")
    stage = _stage(cur, ["k", "v", "at"], [(1, "changed", 1)])
    assert dispositions.merge_by_key(cur, T, stage, ["k", "v", "at"], ["k"], "at") == 1
    assert _rows(cur) == [(1, "changed", 1)]


def test_merge_by_key_newer_only_over_one_row_per_key_filtered_and_computed(cur) -> None:
    cur.execute("CREATE TABLE t (k int PRIMARY KEY, v text, at int)")
    cur.execute("INSERT INTO t VALUES (1, 'stored', 5), (2, 'stored', 5)")
    # The staged ordering column has another name: `values` maps it, and adds a suffix.
    cur.execute("CREATE TEMP TABLE s (k int, v text, seq int, op text)")
    cur.execute(
        "INSERT INTO s VALUES (1, 'same change', 5, 'U'), (2, 'newer', 6, 'U'), "
        "(3, 'deleted', 7, 'D'), (4, 'new', 1, 'I')"
    )
    merge = dict(
        values={"at": sql.SQL("s.seq"), "v": sql.SQL("s.v || %(suffix)s")},
        where=sql.SQL("s.op <> 'D'"),
        args={"suffix": "!"},
        one_per_key=True,
        newer_only=True,
    )
    S = sql.Identifier("s")
    assert dispositions.merge_by_key(cur, T, S, ["k", "v", "at"], ["k"], "at", **merge) == 2
    assert _rows(cur) == [(1, "stored", 5), (2, "newer!", 6), (4, "new!", 1)]
    cur.execute("INSERT INTO s VALUES (5, 'twice', 1, 'I'), (5, 'twice', 2, 'U')")
    with pytest.raises(psycopg2.errors.CardinalityViolation):
        dispositions.merge_by_key(cur, T, S, ["k", "v", "at"], ["k"], "at", **merge)


def test_merge_by_key_without_an_order_the_row_staged_last_replaces_the_stored(cur) -> None:
    cur.execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
    cur.execute("INSERT INTO t VALUES (1, 'stored'), (2, 'stored')")
    cur.execute("CREATE TEMP TABLE s (k int, v text, n int)")
    cur.execute("INSERT INTO s VALUES (1, 'last', 3), (1, 'first', 1), (3, 'new', 2)")
    S = sql.Identifier("s")
    assert dispositions.merge_by_key(cur, T, S, ["k", "v"], ["k"], None, then_by="n") == 2
    assert _rows(cur) == [(1, "last"), (2, "stored"), (3, "new")]


def test_delete_keys_leaves_tombstones(cur) -> None:
    cur.execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
    cur.execute("CREATE TABLE gone (k int PRIMARY KEY)")
    cur.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    stage = _stage(cur, ["k", "v"], [(1, "D"), (3, "U"), (4, "D")])
    deleted = dispositions.delete_keys(
        cur, T, stage, ["k"], sql.SQL("s.v = 'D'"), tombstones=sql.Identifier("gone")
    )
    assert deleted == 1
    assert _rows(cur) == [(2, "b"), (3, "c")]
    cur.execute("SELECT k FROM gone")
    assert cur.fetchall() == [(1,)]
