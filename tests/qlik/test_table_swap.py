"""A new snapshot is loaded beside the live table and swapped in at commit: readers are
never blocked and see the whole old or the whole new snapshot; the swapped-in table keeps
the live one's key, comments, constraints and grants; a table that cannot be swapped is
reloaded in place, still without blocking readers."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy import text

from data_platform.db.engine import get_engine
from harness.samples.qlik import Column
from tests.qlik.conftest import QlikTable, QlikWorld

# No DATETIME: COPYed straight into the fresh table. With one: staged, then converted.
DIRECT = [Column("ID", "INT4", key_pos=1), Column("NAME", "STRING", 40)]
STAGED = [*DIRECT, Column("AT", "DATETIME")]
AT = "2021-12-01 11:20:30.1234567"


def _rows(columns: list[Column], first: int, n: int) -> list[tuple]:
    if len(columns) == 2:
        return [(i, f"name {i}") for i in range(first, first + n)]
    return [(i, f"name {i}", AT) for i in range(first, first + n)]


def _state(conn, table: str) -> tuple[int, int]:
    return tuple(conn.execute(text(f"SELECT count(*), coalesce(sum(id), 0) FROM {table}")).one())


def _copy_running(conn) -> bool:
    return bool(
        conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE 'COPY %' AND pid <> pg_backend_pid()"
            )
        )
    )


@pytest.mark.slow
@pytest.mark.parametrize("columns", [DIRECT, STAGED], ids=["direct", "staged"])
def test_readers_see_old_or_new_snapshot_and_are_never_blocked(
    qlik: QlikWorld, columns: list[Column]
) -> None:
    table = qlik.table("SWAP.READ", columns)
    table.full_load(_rows(columns, 1, 1000))
    table.onboard()
    qlik.run()
    qualified = ".".join(f'"{part}"' for part in table.db_table)
    with get_engine().connect() as conn:
        old = _state(conn, qualified)
    qlik.later()  # a newer LOAD00000001: a new snapshot
    table.full_load(_rows(columns, 5001, 300_000))
    new = (300_000, sum(range(5001, 305_001)))

    seen: list[tuple[tuple[int, int], bool]] = []  # (state, read wholly during a COPY)
    done = threading.Event()
    failures: list[BaseException] = []

    def read() -> None:
        try:
            with get_engine().connect() as conn:
                # A read that waits on the load's lock fails instead of hiding the wait.
                conn.execute(text("SET lock_timeout = '3s'"))
                while not done.is_set():
                    before = _copy_running(conn)
                    state = _state(conn, qualified)
                    conn.commit()
                    seen.append((state, before and _copy_running(conn)))
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        summary = qlik.run()
    finally:
        done.set()
        reader.join()
    assert not failures, failures
    assert summary.ingest.archived == 1
    states = {state for state, _ in seen}
    assert states <= {old, new}, states
    # Reads completed while the new snapshot was being COPYed, and saw the old one.
    assert any(during and state == old for state, during in seen)
    with get_engine().connect() as conn:
        assert _state(conn, qualified) == new


def _catalog(table: QlikTable) -> dict[str, object]:
    schema, name = table.db_table
    regclass = f'"{schema}"."{name}"'
    with get_engine().connect() as conn:
        return {
            "comment": conn.scalar(
                text("SELECT obj_description(CAST(:t AS regclass))"), {"t": regclass}
            ),
            "columns": conn.execute(
                text(
                    "SELECT attname, format_type(atttypid, atttypmod), attnotnull, "
                    "col_description(attrelid, attnum), pg_get_expr(d.adbin, d.adrelid) "
                    "FROM pg_attribute a LEFT JOIN pg_attrdef d "
                    "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                    "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped "
                    "ORDER BY attnum"
                ),
                {"t": regclass},
            ).all(),
            "constraints": sorted(
                conn.execute(
                    text(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = CAST(:t AS regclass)"
                    ),
                    {"t": regclass},
                ).all()
            ),
            "indexes": sorted(
                conn.scalars(
                    text(
                        "SELECT indexrelid::regclass::text FROM pg_index "
                        "WHERE indrelid = CAST(:t AS regclass)"
                    ),
                    {"t": regclass},
                ).all()
            ),
            "reader can select": conn.scalar(
                text(
                    "SELECT has_table_privilege('dp_swap_reader', CAST(:t AS regclass), 'SELECT')"
                ),
                {"t": regclass},
            ),
        }


@pytest.mark.parametrize("composite", [False, True], ids=["primary-key", "unique-key"])
def test_swapped_table_keeps_key_comments_constraints_and_grants(
    qlik: QlikWorld, composite: bool
) -> None:
    columns = (
        [Column("A", "INT4", key_pos=1), Column("B", "INT4", key_pos=2), Column("V", "STRING", 9)]
        if composite
        else [Column("A", "INT4", key_pos=1), Column("V", "STRING", 9)]
    )
    table = qlik.table("SWAP.KEEP", columns)
    first, second = (
        ([(1, 1, "x"), (2, None, "y")], [(3, 3, "z")])
        if composite
        else ([(1, "x"), (2, "y")], [(3, "z")])
    )
    table.full_load(first)
    table.onboard()
    schema, name = table.db_table
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dp_swap_reader')"
                " THEN CREATE ROLE dp_swap_reader; END IF; END $$"
            )
        )
        conn.execute(text(f'GRANT SELECT ON "{schema}"."{name}" TO dp_swap_reader'))
    qlik.run()
    before = _catalog(table)
    assert before["reader can select"]
    qlik.later()
    table.full_load(second)
    summary = qlik.run()
    assert summary.ingest.archived == 1
    assert _catalog(table) == before
    assert [row[0] for row in table.rows()] == [3]
    with get_engine().connect() as conn:
        leftovers = conn.scalar(
            text("SELECT count(*) FROM pg_class WHERE relname LIKE 'dp\\_new\\_%'")
        )
    assert leftovers == 0


def test_a_table_a_view_depends_on_is_reloaded_in_place(
    qlik: QlikWorld, caplog: pytest.LogCaptureFixture
) -> None:
    table = qlik.table("SWAP.VIEWED", DIRECT)
    table.full_load(_rows(DIRECT, 1, 3))
    table.onboard()
    qlik.run()
    schema, name = table.db_table
    with get_engine().begin() as conn:
        conn.execute(text(f'CREATE VIEW "{schema}".names AS SELECT name FROM "{schema}"."{name}"'))
    qlik.later()
    table.full_load(_rows(DIRECT, 10, 2))
    with caplog.at_level(logging.INFO, logger="data_platform.batch.cubic_qlik.full_load"):
        summary = qlik.run()
    assert summary.ingest.archived == 1
    assert "not by a swap: views or rules refer to it" in caplog.text
    with get_engine().connect() as conn:
        assert conn.scalars(text(f'SELECT name FROM "{schema}".names ORDER BY 1')).all() == [
            "name 10",
            "name 11",
        ]


def test_a_key_twice_in_a_new_snapshot_keeps_the_row_read_last(qlik: QlikWorld) -> None:
    table = qlik.table("SWAP.TWICE", DIRECT)
    table.full_load([(1, "first"), (2, "two"), (1, "second"), (3, "three"), (1, "third")])
    table.onboard()
    summary = qlik.run()
    assert summary.ingest.archived == 1
    assert table.rows() == [(1, "third"), (2, "two"), (3, "three")]


def test_a_null_key_copied_straight_in_names_line_and_column(qlik: QlikWorld) -> None:
    table = qlik.table("SWAP.NULLKEY", DIRECT)
    key = table.full_load([(1, "one"), (None, "none")])
    table.onboard()
    qlik.run()
    error = dict((k, e) for k, _, e in qlik.loads())[key]
    assert f"{key}: line 3, column ID: key column is empty (NULL)" in error
    assert "dp_new" not in error
